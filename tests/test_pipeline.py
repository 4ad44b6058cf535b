"""The pipeline: user inputs and/or (fake) networks -> the real scene engine -> a valid scene@1."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from PIL import Image
from test_cli_support import CAM_HEIGHT, NAMES, street

from inference_server import pipeline, scene
from inference_server.analysis.engine import SceneOptions
from inference_server.errors import UserError
from inference_server.imageio import load_photo
from inference_server.inference.types import DepthMap, Segmentation


def _by_label(sc: dict, label: str) -> list[dict]:
    return [o for o in scene.iter_objects(sc["objects"]) if o["label"] == label]


def test_run_with_user_inputs_gives_valid_scene(tmp_path):
    s = street(tmp_path)
    sc = pipeline.run(s.photo, labels_path=s.labels, names_path=s.names, depth_path=s.depth, fov_deg=60.0)
    scene.validate(sc)
    src = sc["source"]
    assert (src["width"], src["height"], src["analysis_width"], src["analysis_height"]) == (96, 64, 96, 64)
    assert src["models"] == {"segmentation": "user", "depth": "user"}
    assert src["inputs"] == {"labels": str(s.labels), "label_names": str(s.names), "depth": str(s.depth),
                             "depth_kind": "metric"}
    assert len(src["sha256"]) == 64
    assert sc["camera"]["fov_horizontal_deg"] == pytest.approx(60.0)
    assert sc["camera"]["focal_source"] == "user"
    assert sc["ground"]["found"] and sc["ground"]["camera_height_m"] == pytest.approx(CAM_HEIGHT, abs=0.02)
    (car,) = _by_label(sc, "car")
    assert car["translate"][2] < -5.5  # the car stands ~6 m in front of the camera (box centre a bit further)
    assert car["color_srgb"][0] > 0.7 and car["color_srgb"][1] < 0.2


def test_downscaled_photo_reports_full_resolution(tmp_path):
    s = street(tmp_path, w=200, h=120)
    sc = pipeline.run(s.photo, labels_path=s.labels, names_path=s.names, depth_path=s.depth, focal_px=150.0,
                      max_analysis_pixels=6000)
    src, cam = sc["source"], sc["camera"]
    assert (src["width"], src["height"]) == (200, 120)
    assert src["analysis_width"] * src["analysis_height"] <= 6000 and src["analysis_width"] == 100
    assert (cam["width"], cam["height"], cam["focal_px"]) == (200, 120, pytest.approx(150.0))
    assert cam["principal_px"] == pytest.approx([100.0, 60.0])
    (car,) = _by_label(sc, "car")
    x0, y0, x1, y1 = car["bbox_px"]
    ys, xs = np.nonzero(s.label_ids == 2)
    assert abs(x0 - xs.min()) <= 2 and abs(x1 - (xs.max() + 1)) <= 2  # full-resolution pixels
    assert abs(y0 - ys.min()) <= 2 and abs(y1 - (ys.max() + 1)) <= 2


def test_ids_beyond_names(tmp_path):
    s = street(tmp_path)
    s.names.write_text("sky\nroad\n")
    with pytest.raises(UserError, match=r"labels .* use id\(s\) 2 but label names .* list only 2 names"):
        pipeline.run(s.photo, labels_path=s.labels, names_path=s.names, depth_path=s.depth)


def test_labels_with_no_class_at_all(tmp_path):
    s = street(tmp_path)
    np.save(tmp_path / "neg.npy", np.full(s.label_ids.shape, -1, np.int32))
    with pytest.raises(UserError, match=r"labels .*neg.npy give no pixel a class"):
        pipeline.run(s.photo, labels_path=tmp_path / "neg.npy", names_path=s.names, depth_path=s.depth)


def test_degenerate_shapes_and_depths_give_scenes(tmp_path):
    """1x1 and one-row photos, one class everywhere, a depth beyond float32 (inf: no depth); a metric
    depth of 1e-30 m everywhere is no photo's and is refused (limits.DEPTH_MIN_M)."""
    (tmp_path / "n.txt").write_text("sky\nroad\ncar\n")
    rng = np.random.default_rng(0)
    cases = [((1, 1), np.array([[2]]), np.array([[5.0]])),
             ((1, 50), np.full((1, 50), 2), np.full((1, 50), 5.0)),
             ((20, 30), np.full((20, 30), 2), np.full((20, 30), 5.0)),
             ((20, 30), rng.integers(0, 3, (20, 30)), np.full((20, 30), np.finfo(np.float64).max))]
    Image.fromarray(np.full((20, 30, 3), 120, np.uint8)).save(tmp_path / "tiny.png")
    np.save(tmp_path / "tiny_l.npy", rng.integers(0, 3, (20, 30)))
    np.save(tmp_path / "tiny_d.npy", np.full((20, 30), 1e-30))
    with pytest.raises(UserError, match=r"tiny_d.npy holds no value within 0.001..100000 m"):
        pipeline.run(tmp_path / "tiny.png", labels_path=tmp_path / "tiny_l.npy", names_path=tmp_path / "n.txt",
                     depth_path=tmp_path / "tiny_d.npy")
    for k, ((h, w), lab, dep) in enumerate(cases):
        Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(tmp_path / f"{k}.png")
        np.save(tmp_path / f"{k}_l.npy", lab)
        np.save(tmp_path / f"{k}_d.npy", dep)
        sc = pipeline.run(tmp_path / f"{k}.png", labels_path=tmp_path / f"{k}_l.npy", names_path=tmp_path / "n.txt",
                          depth_path=tmp_path / f"{k}_d.npy")
        scene.validate(sc)
        assert (sc["source"]["width"], sc["source"]["height"]) == (w, h)


def test_labels_without_names_and_names_without_labels(tmp_path):
    s = street(tmp_path)
    with pytest.raises(UserError, match="--labels needs --label-names"):
        pipeline.run(s.photo, labels_path=s.labels, depth_path=s.depth)
    with pytest.raises(UserError, match="--label-names needs --labels"):
        pipeline.run(s.photo, names_path=s.names, depth_path=s.depth)


@pytest.mark.parametrize("fill", [np.nan, np.inf, 0.0, -1.0])
def test_all_invalid_depth_is_a_warning(tmp_path, fill):
    s = street(tmp_path)
    np.save(s.depth, np.full(s.z.shape, fill, np.float32))
    sc = pipeline.run(s.photo, labels_path=s.labels, names_path=s.names, depth_path=s.depth)
    scene.validate(sc)
    assert any("no valid" in w for w in sc["warnings"])
    assert len(_by_label(sc, "car")) == 1


def test_all_sky_photo(tmp_path):
    Image.new("RGB", (40, 30), (120, 170, 230)).save(tmp_path / "sky.png")
    Image.new("L", (40, 30), 0).save(tmp_path / "l.png")
    (tmp_path / "n.txt").write_text("sky\n")
    np.save(tmp_path / "d.npy", np.full((30, 40), np.inf, np.float32))
    sc = pipeline.run(tmp_path / "sky.png", labels_path=tmp_path / "l.png", names_path=tmp_path / "n.txt",
                      depth_path=tmp_path / "d.npy")
    scene.validate(sc)
    assert [o["label"] for o in sc["objects"]] == ["sky"]


def test_analyse_direct_and_depth_kind_from_depthmap(tmp_path):
    s = street(tmp_path)
    photo = load_photo(s.photo)
    seg = Segmentation(labels=s.label_ids.astype(np.int32), names=list(NAMES), model="m-seg")
    depth = DepthMap(depth=1.0 / s.z, kind="disparity", model="m-depth")
    sc = pipeline.analyse(photo, seg, depth, SceneOptions(), fov_deg=60.0)
    assert sc["settings"]["depth_kind"] == "disparity"
    assert sc["source"]["models"] == {"segmentation": "m-seg", "depth": "m-depth"}
    assert sc["ground"]["found"]
    bad = Segmentation(labels=np.full(s.label_ids.shape, 7, np.int32), names=list(NAMES), model="x")
    with pytest.raises(UserError, match=r"use id\(s\) 7 .*\(ids 0..2\)"):
        pipeline.analyse(photo, bad, None, SceneOptions())
    with pytest.raises(UserError, match="field of view"):
        pipeline.analyse(photo, seg, None, SceneOptions(), fov_deg=200.0)


class _FakeApi(types.ModuleType):
    """Stands in for inference_server.inference.api: records calls, returns the street's truth."""

    DEFAULT_SEG = "fake-seg"
    DEFAULT_DEPTH = "fake-depth"

    def __init__(self, labels: np.ndarray, z: np.ndarray) -> None:
        super().__init__("inference_server.inference.api")
        self.calls: list[tuple[str, str, tuple[int, ...]]] = []
        self._labels, self._z = labels, z

    def segment(self, rgb, model, models_dir=None):
        self.calls.append(("segment", model, rgb.shape))
        return Segmentation(labels=self._labels.astype(np.int32), names=list(NAMES), model=model)

    def estimate_depth(self, rgb, model, models_dir=None, sky_mask=None, *, focal_px=None):
        self.calls.append(("depth", model, rgb.shape))
        self.depth_kwargs = {"sky_mask": sky_mask, "focal_px": focal_px}
        return DepthMap(depth=self._z, kind="metric", model=model)


@pytest.fixture
def fake_api(tmp_path, monkeypatch):
    s = street(tmp_path)
    api = _FakeApi(s.label_ids, s.z)
    monkeypatch.setenv("IMG2MAYA_MODELS", str(tmp_path / "no-models"))  # no instance model installed
    monkeypatch.setitem(sys.modules, "inference_server.inference.api", api)
    import inference_server.inference as pkg

    monkeypatch.setattr(pkg, "api", api, raising=False)
    return s, api


def test_networks_fill_in_what_the_user_did_not_bring(fake_api):
    s, api = fake_api
    sc = pipeline.run(s.photo)
    assert [c[:2] for c in api.calls] == [("segment", "fake-seg"), ("depth", "fake-depth")]
    assert api.depth_kwargs["sky_mask"].model == "fake-seg"  # this run's segmentation
    assert api.depth_kwargs["focal_px"] == pytest.approx(48 * 3**0.5)  # default 60 degrees at 96 px
    assert api.calls[0][2] == (64, 96, 3)
    assert sc["source"]["models"] == {"segmentation": "fake-seg", "depth": "fake-depth"}
    api.calls.clear()
    sc = pipeline.run(s.photo, labels_path=s.labels, names_path=s.names, depth_model="other-depth", fov_deg=90.0)
    assert [c[:2] for c in api.calls] == [("depth", "other-depth")]
    # the user's labels tell the depth network where the sky is; the focal is in analysed pixels
    assert api.depth_kwargs["sky_mask"].model == "user"
    assert np.array_equal(api.depth_kwargs["sky_mask"].labels, s.label_ids)
    assert api.depth_kwargs["focal_px"] == pytest.approx(48.0)
    assert sc["source"]["models"] == {"segmentation": "user", "depth": "other-depth"}
    api.calls.clear()
    sc = pipeline.run(s.photo, depth_path=s.depth, seg_model="other-seg")
    assert [c[:2] for c in api.calls] == [("segment", "other-seg")]
    api.calls.clear()
    sc = pipeline.run(s.photo, labels_path=s.labels, names_path=s.names, depth_model="none")
    assert api.calls == [] and sc["source"]["models"]["depth"] == "none"


def test_missing_weights_say_how_to_do_without(fake_api, monkeypatch):
    s, api = fake_api

    def segment(rgb, model, models_dir=None):
        raise UserError(f"model {model}: /m/{model}/w.tflite is missing; run `img2maya models download {model}`")

    monkeypatch.setattr(api, "segment", segment, raising=False)
    monkeypatch.setattr(api, "available", lambda model, models_dir=None: False, raising=False)
    with pytest.raises(UserError, match=r"w.tflite is missing; run `img2maya models download fake-seg`; "
                                        r"or skip the networks with --labels/--label-names/--depth$"):
        pipeline.run(s.photo)


def test_progress_is_monotonic_and_ends_near_one(fake_api):
    s, _ = fake_api
    seen: list[tuple[str, float]] = []
    pipeline.run(s.photo, progress=lambda stage, frac: seen.append((stage, frac)))
    fracs = [f for _, f in seen]
    assert fracs == sorted(fracs) and fracs[-1] >= 0.9 and 0.0 <= fracs[0] <= 0.05
    assert {"segmentation", "depth"} <= {st for st, _ in seen}


def test_networks_unavailable_says_how_to_go_on(tmp_path, monkeypatch):
    s = street(tmp_path)
    import inference_server.inference as pkg

    monkeypatch.setitem(sys.modules, "inference_server.inference.api", None)  # import fails
    monkeypatch.delattr(pkg, "api", raising=False)
    with pytest.raises(UserError, match=r"networks are not available .*pass --labels/--label-names/--depth, "
                                        r"or install the models: img2maya models list"):
        pipeline.run(s.photo)
    # the user's own labels and depth need no network at all
    sc = pipeline.run(s.photo, labels_path=s.labels, names_path=s.names, depth_path=s.depth)
    assert sc["source"]["models"]["depth"] == "user"


@pytest.mark.shared
def test_real_networks_on_a_sample(samples_dir, models_dir):
    """The shipped default networks (LiteRT) end to end on a real photo; recursion uses resegment."""
    from inference_server.inference import api

    if not (api.available(api.DEFAULT_SEG, models_dir) and api.available(api.DEFAULT_DEPTH, models_dir)):
        pytest.skip(f"default models not in {models_dir}")
    photo = samples_dir / "landscape_sunflowers_sky.jpg"
    sc = pipeline.run(photo, models_dir=str(models_dir), options=SceneOptions(recursion=1))
    scene.validate(sc)
    expected = {"segmentation": api.DEFAULT_SEG, "depth": api.DEFAULT_DEPTH}
    if api.available(api.DEFAULT_INSTANCES, models_dir):  # on by default when installed
        expected["instances"] = api.DEFAULT_INSTANCES
    assert sc["source"]["models"] == expected
    assert (sc["source"]["width"], sc["source"]["height"]) == (2047, 1362)
    labels = {o["label"] for o in sc["objects"]}
    assert "sky" in labels and len(sc["objects"]) >= 3
    assert any(o.get("children") for o in sc["objects"])


def test_the_labels_digest_is_the_contents_hash_once_per_array() -> None:
    """The camera memo's key: hash(labels.tobytes()), kept per array object (never recomputed for
    the same one; another array of other contents gets its own, and a dead array's entry goes)."""
    import gc

    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    assert pipeline._digest(a) == hash(a.tobytes())
    assert pipeline._digest(a) == hash(a.tobytes())
    b = a.copy()
    b[0, 0] = 7
    assert pipeline._digest(b) == hash(b.tobytes()) != pipeline._digest(a)
    key = id(b)
    del b
    gc.collect()
    assert key not in pipeline._DIGESTS or pipeline._DIGESTS[key][0]() is not None
