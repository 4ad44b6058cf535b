"""The real shipped networks on real photos from ../shared (skipped when it is absent).

Floors are set a little under what was measured (docs/MODELS.md): they catch a wrong normalisation,
channel order, resize or output choice (each of which drops these numbers to near chance), not noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference_server.errors import UserError
from inference_server.inference import api, labelsets
from inference_server.inference.tflite_models import (
    LOGIT_STRIDE,
    DeepLabV3,
    _cell_taps,
    clean_pydnet,
    upsample_float,
    upsample_labels,
)

SEG150, SEG32, DEPTH = "deeplabv3-mnv2-ade20k150", "deeplabv3-mnv2-ade20k32", "pydnet-mobile-v1"
GROUND = {"road", "sidewalk", "earth", "grass", "floor", "field", "path", "sand", "dirt track"}
STREETS = {  # photo -> classes allowed to dominate the top 10 % of rows
    "street_london_bus.jpg": {"sky"},
    "kitti_000001_rgb.png": {"sky"},
    "cityscapes_aachen_000001_000019_leftImg8bit.jpg": {"sky"},
    "street_nyc.jpg": {"building", "sky"},
    "cityscapes_aachen_000000_000019_leftImg8bit.jpg": {"building", "sky"},
}


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _dominant(labels: np.ndarray, names: list[str]) -> str:
    ids, counts = np.unique(labels, return_counts=True)
    return names[int(ids[np.argmax(counts)])]


@pytest.fixture(scope="module")
def street_results(samples_dir: Path, models_dir: Path) -> dict[str, tuple[np.ndarray, object, object]]:
    out = {}
    for name in STREETS:
        rgb = _rgb(samples_dir / name)
        seg = api.segment(rgb, SEG150, models_dir)
        depth = api.estimate_depth(rgb, DEPTH, models_dir, sky_mask=seg)
        out[name] = (rgb, seg, depth)
    return out


@pytest.mark.parametrize("name", sorted(STREETS))
def test_street_layout(street_results: dict, name: str) -> None:
    rgb, seg, depth = street_results[name]
    h, w = rgb.shape[:2]
    assert seg.labels.shape == (h, w) and seg.labels.dtype == np.int32 and len(seg.names) == 151
    assert seg.confidence is not None and seg.confidence.shape == (h, w)
    assert 0.0 <= float(seg.confidence.min()) and float(seg.confidence.max()) <= 1.0
    top, bottom = seg.labels[: h // 10], seg.labels[h - h // 10:]
    assert _dominant(top, seg.names) in STREETS[name]
    assert _dominant(bottom, seg.names) in GROUND
    # depth: relative, larger = farther; the near ground at the bottom is nearer than the middle band
    d = depth.depth
    assert depth.kind == "relative" and d.shape == (h, w) and d.dtype == np.float32
    bottom_med = np.nanmedian(d[int(0.8 * h):])
    middle_med = np.nanmedian(d[int(0.4 * h):int(0.6 * h)])
    assert bottom_med < 0.9 * middle_med
    # sky has no depth; everything else is finite and positive
    sky = api.sky_mask(seg)
    assert np.isnan(d[sky]).all() and np.isfinite(d[~sky]).all() and (d[~sky] > 0).all()


def _pixel_accuracy(samples_dir: Path, models_dir: Path, model: str, n_classes: int) -> list[float]:
    accs = []
    for i in (1, 3):
        rgb = _rgb(samples_dir / f"ade_val_0000000{i}_rgb.jpg")
        gt = np.asarray(Image.open(samples_dir / f"ade_val_0000000{i}_label.png")).astype(np.int32)
        pred = api.segment(rgb, model, models_dir).labels
        valid = (gt > 0) & (gt < n_classes)
        accs.append(float((pred[valid] == gt[valid]).mean()))
    return accs


def test_ade_val_pixel_accuracy(samples_dir: Path, models_dir: Path) -> None:
    # measured 0.740 / 0.609 (150 classes, letterbox off for 4:3, mirror averaged)
    a1, a3 = _pixel_accuracy(samples_dir, models_dir, SEG150, 151)
    assert a1 > 0.70 and a3 > 0.57
    # 32-class file on GT classes 1..31: measured 0.907 / 0.735 (letterboxed)
    b1, b3 = _pixel_accuracy(samples_dir, models_dir, SEG32, 32)
    assert b1 > 0.87 and b3 > 0.70


def test_ade32_has_no_confidence(samples_dir: Path, models_dir: Path) -> None:
    rgb = _rgb(samples_dir / "harbor_longbeach.jpg")
    seg = api.segment(rgb, SEG32, models_dir)
    assert seg.confidence is None and seg.names == labelsets.names("ade20k32")
    assert seg.labels.shape == rgb.shape[:2] and 0 <= seg.labels.min() and seg.labels.max() < 32
    assert _dominant(seg.labels[:40], seg.names) == "sky"


def test_cityscapes_mapped_accuracy(samples_dir: Path, models_dir: Path) -> None:
    """ADE classes mapped to Cityscapes train ids on the small Frankfurt frame (measured 0.878)."""
    rgb = _rgb(samples_dir / "cityscapes_frankfurt_000000_000294_small_leftImg8bit.png")
    gt = np.asarray(Image.open(samples_dir / "cityscapes_frankfurt_000000_000294_small_gtFine_labelTrainIds.png"))
    pred = labelsets.ade_to_cityscapes()[api.segment(rgb, SEG150, models_dir).labels]
    valid = gt != 255
    assert float((pred[valid] == gt[valid]).mean()) > 0.83


def test_models_stay_warm(models_dir: Path) -> None:
    assert api.load_model(SEG150, models_dir) is api.load_model(SEG150, models_dir)
    assert api.available(SEG150, models_dir) and not api.available("deeplabv2-cocostuff164k", models_dir)
    assert not api.available("nope", models_dir)


def test_task_and_input_errors(models_dir: Path) -> None:
    rgb = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(UserError, match="is a depth model"):
        api.segment(rgb, DEPTH, models_dir)
    with pytest.raises(UserError, match="uint8"):
        api.segment(rgb.astype(np.float32), SEG150, models_dir)
    with pytest.raises(UserError, match="sky mask shape"):
        api.estimate_depth(rgb, DEPTH, models_dir, sky_mask=np.zeros((3, 3), bool))


def test_depth_uses_last_segmentation_sky(samples_dir: Path, models_dir: Path) -> None:
    rgb = _rgb(samples_dir / "harbor_longbeach.jpg")
    seg = api.segment(rgb, SEG150, models_dir)
    auto = api.estimate_depth(rgb, DEPTH, models_dir).depth
    raw = api.estimate_depth(rgb, DEPTH, models_dir, mask_sky=False).depth
    sky = api.sky_mask(seg)
    assert sky.mean() > 0.2 and np.isnan(auto[sky]).all() and np.isfinite(raw).all()
    other = rgb.copy()
    other[0, 0] ^= 1  # a different image: no stale mask
    assert np.isfinite(api.estimate_depth(other, DEPTH, models_dir).depth).all()


def test_resegment_crops(samples_dir: Path, models_dir: Path) -> None:
    rgb = _rgb(samples_dir / "street_london_bus.jpg")
    crop = rgb[400:1000, 200:1200]
    mask = np.zeros(crop.shape[:2], bool)
    mask[50:550, 100:900] = True
    out = api.resegment([crop, crop[:20, :20]], [mask, mask[:20, :20]], SEG150, models_dir)
    assert isinstance(out, list) and len(out) == 2 and out[1] is None  # too small to be worth a network run
    labels, names = out[0]
    assert labels.shape == mask.shape and (labels[~mask] == -1).all() and (labels[mask] >= 0).all()
    assert names == labelsets.names("ade20k150") and len(np.unique(labels[mask])) >= 2
    single = api.resegment(crop, mask, model=SEG150, models_dir=models_dir)  # the engine's hook form
    assert isinstance(single, tuple) and np.array_equal(single[0], labels)


def test_upsample_bilinear_matches_dense_argmax() -> None:
    """The corner-candidate shortcut equals argmax of fully interpolated logits on a random field."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(9, 11, 5)).astype(np.float32)
    labels = logits.argmax(-1)
    out = upsample_labels(logits, labels, 40, 37)
    from inference_server.inference.tflite_models import _taps

    y0, y1, wy = _taps(9, 40)
    x0, x1, wx = _taps(11, 37)
    dense = ((1 - wy)[:, None, None] * ((1 - wx)[None, :, None] * logits[y0][:, x0] + wx[None, :, None] * logits[y0][:, x1])
             + wy[:, None, None] * ((1 - wx)[None, :, None] * logits[y1][:, x0] + wx[None, :, None] * logits[y1][:, x1]))
    agree = (out == dense.argmax(-1)).mean()
    # exact except where a class wins that no corner had as its argmax: rare with smooth network logits,
    # about 5 % with these i.i.d. random ones (the worst case)
    assert agree > 0.93
    assert np.array_equal(upsample_labels(logits, labels, 9, 11), labels)


def _dense(logits: np.ndarray, h: int, w: int, stride: int, valid: tuple[int, int]) -> np.ndarray:
    """Every channel of a knot grid interpolated to (h, w) with upsample_labels' geometry (the slow truth)."""
    i0, wy = _cell_taps(valid[0], h, stride, logits.shape[0])
    j0, wx = _cell_taps(valid[1], w, stride, logits.shape[1])
    rows = logits[i0] * (1 - wy)[:, None, None] + logits[i0 + 1] * wy[:, None, None]
    return rows[:, j0] * (1 - wx)[None, :, None] + rows[:, j0 + 1] * wx[None, :, None]


def test_upsample_knot_grid_matches_dense_argmax() -> None:
    """Knots every 4th network pixel, a photo region ending between knots (letterbox): corner
    candidates give the dense argmax wherever a smooth field's winner is one of the cell's knots."""
    rng = np.random.default_rng(1)
    coarse = rng.normal(size=(5, 6, 7)).astype(np.float32)  # smooth: a 3x bilinear blow-up of a 5x6 field
    logits = _dense(coarse, 14, 17, 1, (5, 6)).astype(np.float32)
    valid = (51, 66)  # knots 0, 4, ..., 52 and 0, ..., 64 cover network rows 0..50 and columns 0..65
    out = upsample_labels(logits, logits.argmax(-1), 123, 151, stride=4, valid=valid)
    dense = _dense(logits, 123, 151, 4, valid).argmax(-1)
    assert out.shape == (123, 151) and out.dtype == np.int32
    assert (out == dense).mean() > 0.995
    near = upsample_labels(logits, logits.argmax(-1), 123, 151, "nearest", stride=4, valid=valid)
    assert 0.8 < (near == dense).mean() < (out == dense).mean()
    # a 1-pixel-high photo: one knot row
    flat = upsample_labels(logits[:1], logits[:1].argmax(-1), 1, 40, stride=4, valid=(1, 66))
    assert flat.shape == (1, 40) and (flat == _dense(np.concatenate([logits[:1]] * 2), 1, 40, 4, (1, 66)).argmax(-1)).all()


def test_upsample_float_geometry() -> None:
    """The PIL box resize puts knots where upsample_labels does (interior pixels; PIL renormalises edges)."""
    rng = np.random.default_rng(2)
    grid = rng.random((14, 17)).astype(np.float32)
    valid = (51, 66)
    out = upsample_float(grid, 123, 151, stride=4, valid=valid)
    ref = _dense(grid[:, :, None], 123, 151, 4, valid)[:, :, 0]
    assert out.shape == (123, 151)
    assert np.abs(out - ref)[3:-3, 3:-3].max() < 1e-4


def test_ade150_logits_are_a_4x_knot_grid(samples_dir: Path, models_dir: Path) -> None:
    """The 513x513 output is an align-corners 4x bilinear upsampling of its every-4th-pixel knots, so
    reading only those loses nothing; predict on the knots equals the dense computation."""
    from inference_server.inference import registry

    net = api.load_model(SEG150, models_dir)
    assert isinstance(net, DeepLabV3) and net.stride == LOGIT_STRIDE == 4
    rgb = _rgb(samples_dir / "ade_val_00000001_rgb.jpg")
    dense, _, valid, st = net.network_output(rgb, stride=1, flip=False)
    assert st == 1 and valid == (513, 513) and dense.shape == (513, 513, 151)
    knots = dense[::4, ::4]
    assert np.abs(_dense(knots, 513, 513, 4, (513, 513)) - dense).max() < 1e-3
    flip1 = net.network_output(rgb, stride=1)[0]
    flip4, lab4, valid4, st4 = net.network_output(rgb)
    assert st4 == 4 and valid4 == valid and np.allclose(flip4, flip1[::4, ::4], atol=1e-4)
    h, w = rgb.shape[:2]
    truth = _dense(flip1, h, w, 1, valid).argmax(-1)
    seg = net.predict(rgb)
    assert (seg.labels == truth).mean() > 0.998
    # a plain (stride 1, nearest) instance is still available for the PLAIN benchmark row
    plain = DeepLabV3(registry.file_path(SEG150, models_dir), SEG150, seg.names, flip=False, upsample="nearest")
    assert plain.network_output(rgb)[3] == 1


def test_pydnet_hot_spot_removed() -> None:
    d = np.full((448, 640), 20.0, np.float32) + np.linspace(0, 5, 640, dtype=np.float32)
    d[9:12, 11:14] = 300.0
    c = clean_pydnet(d)
    assert c[10, 12] < 30 and abs(float(c[300, 300]) - float(d[300, 300])) < 1e-4


def test_seed_models_dispatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """api hands the seed ids to the seed loaders with the registry's paths (fakes: the real files are
    hundreds of MB and not in ../shared)."""
    import importlib.util

    from inference_server.inference import registry
    from inference_server.inference.seed import deeplab_v2, monodepth

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("tensorflow") is None:
        pytest.skip("torch and tensorflow (extra 'seed') are needed for the seed models")
    from inference_server.inference.types import DepthMap, Segmentation

    made: list[tuple[str, str]] = []

    class FakeDeepLab:
        def __init__(self, path: object) -> None:
            made.append(("deeplab", str(path)))

        def predict(self, rgb: np.ndarray) -> Segmentation:
            return Segmentation(np.zeros(rgb.shape[:2], np.int32), labelsets.names("cocostuff182")[:182],
                                "deeplabv2-cocostuff164k", None)

    class FakeMonodepth:
        def __init__(self, prefix: object, dataset: str) -> None:
            made.append((dataset, str(prefix)))

        def predict(self, rgb: np.ndarray, *, focal_px: float | None = None) -> DepthMap:
            return DepthMap(np.ones(rgb.shape[:2], np.float32), "metric" if focal_px else "relative", "m")

    monkeypatch.setattr(deeplab_v2, "DeepLabV2", FakeDeepLab)
    monkeypatch.setattr(monodepth, "Monodepth", FakeMonodepth)
    api.clear_cache()
    rgb = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(UserError, match=r"cocostuff164k_iter100k\.pth is missing"):
        api.segment(rgb, "deeplabv2-cocostuff164k", tmp_path)
    for mid in ("deeplabv2-cocostuff164k", "monodepth-kitti"):
        folder = tmp_path / mid
        folder.mkdir()
        for f in registry.get(mid).files:
            if not f.optional:
                (folder / f.name).write_bytes(b"x")
    seg = api.segment(rgb, "deeplabv2-cocostuff164k", tmp_path)
    assert seg.labels.shape == (20, 30) and seg.names[0] == "person"
    sky = np.zeros((20, 30), bool)
    sky[:5] = True
    d = api.estimate_depth(rgb, "monodepth-kitti", tmp_path, sky_mask=sky, focal_px=700.0)
    assert d.kind == "metric" and np.isnan(d.depth[:5]).all() and (d.depth[5:] == 1).all()
    assert made == [("deeplab", str(tmp_path / "deeplabv2-cocostuff164k" / "cocostuff164k_iter100k.pth")),
                    ("kitti", str(tmp_path / "monodepth-kitti" / "model_kitti"))]
    api.clear_cache()
