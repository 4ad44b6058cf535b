"""The YOLOv8n-seg instance runner: decoding, NMS, masks, bad files; real weights from ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference_server.errors import UserError
from inference_server.inference import api, labelsets, registry
from inference_server.inference.types import Instances
from inference_server.inference.yolo_seg import decode, letterbox_geometry, nms

MODEL = "yolov8n-seg-coco-int8"
COCO = labelsets.names("coco80")


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _kitti_boxes(path: Path, kinds: tuple[str, ...]) -> list[list[float]]:
    out = []
    for line in path.read_text().splitlines():
        f = line.split()
        if f and f[0] in kinds:
            out.append([float(v) for v in f[4:8]])
    return out


def _iou(a: np.ndarray | list[float], b: np.ndarray | list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_registry_entry_states_the_licence() -> None:
    spec = registry.get(MODEL)
    assert spec.task == "instances" and spec.backend == "litert" and spec.labels == "coco80"
    assert "AGPL-3.0" in spec.licence and spec.notice == "AGPL-3.0 weights"
    f = spec.main_file
    assert f.sha256 == "ad5a89a78acae95be79a1f6dc7399b952f96a7c767af3fad86b9647fecb0658f" and f.size == 3_779_152
    assert "41fe533ae57f6aa101f03a85f865fa8cc45dc5fe" in f.urls[0]
    assert len(COCO) == 80 and COCO[0] == "person" and COCO[2] == "car" and COCO[79] == "toothbrush"
    row = next(r for r in registry.list_models() if r["id"] == MODEL)
    assert row["notice"] == "AGPL-3.0 weights" and row["default"] is False


def test_models_list_says_agpl(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from inference_server.cli import main

    assert main(["models", "list", "--models-dir", str(tmp_path)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(MODEL))
    assert "instances" in line and "missing" in line and "[AGPL-3.0 weights]" in line


def test_letterbox_geometry() -> None:
    assert letterbox_geometry(375, 1242, 640) == (640 / 1242, 640, 193, 0, 223)
    s, nw, nh, left, top = letterbox_geometry(1362, 2048, 640)
    assert (nw, nh, left, top) == (640, 426, 0, 107)
    assert letterbox_geometry(640, 320, 640)[1:] == (320, 640, 160, 0)


def test_nms_classwise() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    classes = np.array([0, 0, 1, 0])
    keep = nms(boxes, scores, classes, 0.45)
    assert keep.tolist() == [0, 2, 3]  # box 1 suppressed by 0; box 2 is another class
    assert nms(boxes[:0], scores[:0], classes[:0]).size == 0
    assert nms(boxes, scores, classes, 0.45, max_keep=2).tolist() == [0, 2]


def _raw(n_anchor: int = 8400) -> tuple[np.ndarray, np.ndarray]:
    pred = np.zeros((116, n_anchor), np.float32)
    protos = np.zeros((32, 160, 160), np.float32)
    return pred, protos


def test_decode_zero_and_300_detections_and_boxes_outside() -> None:
    pred, protos = _raw()
    none = decode(pred, protos, h=375, w=1242, size=640, model=MODEL, class_names=COCO)
    assert len(none) == 0 and none.boxes.shape == (0, 4) and none.names == []
    # 400 well separated boxes of one class -> at most 300 kept, the best scores
    rng = np.random.default_rng(0)
    k = 400
    gx, gy = np.meshgrid(np.arange(20), np.arange(20))
    pred[0, :k] = (gx.ravel() * 32 + 16) / 640
    pred[1, :k] = (gy.ravel() * 32 + 16) / 640
    pred[2, :k] = pred[3, :k] = 20 / 640
    pred[4 + 2, :k] = rng.uniform(0.3, 0.9, k)
    protos[0] = 1.0
    pred[84, :k] = 5.0  # every mask logit 5 inside its box
    out = decode(pred, protos, h=640, w=640, size=640, model=MODEL, class_names=COCO)
    assert len(out) == 300 and set(out.names) == {"car"}
    assert float(out.scores.min()) >= float(np.sort(pred[6, :k])[-300])
    rs, cs, m = out.mask(0)
    assert m.all() and m.shape == (rs.stop - rs.start, cs.stop - cs.start)
    # boxes outside the photo (in the padding, or past its edge), NaN outputs: no exception
    pred2, protos2 = _raw()
    pred2[:4, 0] = [0.5, 0.02, 0.1, 0.03]  # in the top padding of a 2:1 photo: no area -> dropped
    pred2[:4, 1] = [0.99, 0.5, 0.2, 0.2]  # crosses the right edge: clipped
    pred2[:4, 2] = np.nan
    pred2[4, :3] = 0.8
    pred2[84, :3] = 1.0
    protos2[0] = 1.0
    out2 = decode(pred2, protos2, h=500, w=1000, size=640, model=MODEL, class_names=COCO)
    assert len(out2) == 1 and out2.boxes[0, 2] == 1000.0 and out2.names == ["person"]
    rs, cs, m = out2.mask(0, np.arange(0, 500, 3), np.arange(0, 1000, 3))
    assert m.any() and cs.stop <= len(np.arange(0, 1000, 3))


def test_bad_files_name_the_model(models_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / MODEL
    with pytest.raises(UserError) as exc:  # missing
        api.detect_instances(np.zeros((8, 8, 3), np.uint8), MODEL, tmp_path)
    assert MODEL in str(exc.value) and "missing" in str(exc.value) and "\n" not in str(exc.value)
    folder.mkdir()
    data = (models_dir / MODEL / registry.get(MODEL).main_file.name).read_bytes()
    (folder / registry.get(MODEL).main_file.name).write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(UserError, match=f"model {MODEL}.*wrong size"):
        api.detect_instances(np.zeros((8, 8, 3), np.uint8), MODEL, tmp_path)
    # a foreign (but loadable) file under the right name: the runner refuses it by its shape
    from inference_server.inference.yolo_seg import YoloSeg

    foreign = models_dir / "pydnet-mobile-v1" / "optimized_pydnet++.tflite"
    with pytest.raises(UserError, match=f"model {MODEL}: .* not a YOLOv8-seg file"):
        YoloSeg(foreign, MODEL, COCO)
    with pytest.raises(UserError, match=f"model {MODEL}: .*not a loadable TFLite"):
        bad = tmp_path / "junk.tflite"
        bad.write_bytes(b"\0" * 4096)
        YoloSeg(bad, MODEL, COCO)


@pytest.fixture(scope="module")
def detections(samples_dir: Path, models_dir: Path) -> dict[str, tuple[np.ndarray, Instances]]:
    out = {}
    for name in ("kitti_000000_rgb.png", "kitti_000001_rgb.png", "street_london_bus.jpg", "street_nyc.jpg"):
        rgb = _rgb(samples_dir / name)
        out[name] = (rgb, api.detect_instances(rgb, MODEL, models_dir))
    return out


def test_real_photos(detections: dict, samples_dir: Path) -> None:
    counts = {n: {c: inst.names.count(c) for c in set(inst.names)} for n, (_, inst) in detections.items()}
    # as the model card observed (int8: scores in coarse steps)
    assert counts["street_london_bus.jpg"] == {"person": 16, "car": 6, "bus": 1, "truck": 1}
    assert counts["street_nyc.jpg"] == {"car": 9, "person": 3, "traffic light": 3, "bicycle": 1, "truck": 1}
    assert counts["kitti_000000_rgb.png"] == {"person": 1}
    assert counts["kitti_000001_rgb.png"] == {"car": 2, "train": 1}
    for stem, kinds in (("kitti_000000", ("Pedestrian",)), ("kitti_000001", ("Car",))):
        _, inst = detections[f"{stem}_rgb.png"]
        for gt in _kitti_boxes(samples_dir / f"{stem}_label_2.txt", kinds):
            assert max(_iou(b, gt) for b in inst.boxes) > 0.25  # int8 box edges snap by ~12 px here
    _, ped = detections["kitti_000000_rgb.png"]
    assert _iou(ped.boxes[0], [712.40, 143.00, 810.73, 307.92]) > 0.8 and 0.45 < float(ped.scores[0]) < 0.6
    rs, cs, m = ped.mask(0)  # the pedestrian's mask: a person-shaped share of its box
    assert 0.35 < m.mean() < 0.6 and m.shape == (rs.stop - rs.start, cs.stop - cs.start)
    for _, inst in detections.values():
        assert inst.boxes.dtype == np.float32 and (inst.boxes[:, 2] > inst.boxes[:, 0]).all()
        assert inst.model == MODEL and len(inst.mask_logits) == len(inst)


def test_mask_on_a_lattice_matches_the_full_mask(detections: dict) -> None:
    _, inst = detections["street_london_bus.jpg"]
    i = int(np.argmax(inst.scores))
    rs, cs, full = inst.mask(i)
    rows, cols = np.arange(1, inst.height, 3), np.arange(2, inst.width, 3)
    rs2, cs2, sub = inst.mask(i, rows, cols)
    ref = full[(rows[rs2] - rs.start)][:, (cols[cs2] - cs.start)]
    assert sub.shape == ref.shape and np.mean(sub == ref) == 1.0
