"""The scene engine end to end: schema, names, camera numbers, bad inputs, degenerate depth, recursion."""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_analysis_synth import street

from inference_server.analysis.camera import intrinsics_for
from inference_server.analysis.engine import SceneOptions, build_scene
from inference_server.errors import UserError
from inference_server.scene import iter_objects, validate

SRC = {"image": "street.png", "width": 320, "height": 240, "sha256": "0" * 64}
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def build(s, **kw) -> dict:  # type: ignore[no-untyped-def]
    depth = kw.pop("depth", s.depth)
    labels = kw.pop("labels", s.labels)
    names = kw.pop("names", s.names)
    extra = {k: kw.pop(k) for k in ("full_size", "resegment", "confidence", "progress") if k in kw}
    scene = build_scene(s.rgb, labels, names, depth, s.intr, SceneOptions(**kw), source=dict(SRC), **extra)
    validate(scene)
    return scene


def test_scene_is_valid_and_complete() -> None:
    s = street()
    stages = []
    scene = build(s, confidence=np.full(s.labels.shape, 0.8, np.float32),
                  progress=lambda st, f: stages.append((st, f)))
    assert scene["schema"] == "img2maya/scene@1" and scene["source"]["analysis_width"] == 320
    assert stages[-1] == ("done", 1.0) and all(0 <= f <= 1 for _, f in stages)
    names = [o["name"] for o in iter_objects(scene["objects"])]
    assert len(names) == len(set(names)) and all(NAME.match(n) for n in names)
    assert sorted(names) == ["box_1", "building_1", "building_2", "car_1", "road_1", "sky_1"]
    for o in scene["objects"]:
        assert o["confidence"] == pytest.approx(0.8)
        assert set(o["depth_m"]) >= {"valid_pixels"}
    car = next(o for o in scene["objects"] if o["label"] == "car")
    assert car["depth_m"]["valid_pixels"] == car["pixels"] == int((s.instance == 0).sum())
    assert car["depth_m"]["min"] <= car["depth_m"]["p05"] <= car["depth_m"]["median"] <= car["depth_m"]["p95"]


def test_sky_is_a_backdrop_behind_everything() -> None:
    s = street()
    scene = build(s)
    sky = next(o for o in scene["objects"] if o["role"] == "sky")
    assert sky["shape"] == "plane"
    cam = np.asarray(scene["camera"]["translate"])
    sky_dist = np.linalg.norm(np.asarray(sky["translate"]) - cam)
    for o in scene["objects"]:
        if o["role"] not in ("sky", "ground"):
            assert np.linalg.norm(np.asarray(o["translate"]) - cam) + max(o["size"]) < sky_dist
    assert scene["camera"]["far_clip_m"] > sky_dist


def test_full_resolution_numbers() -> None:
    s = street()
    scene = build(s, full_size=(1280, 960))
    cam = scene["camera"]
    assert cam["width"] == 1280 and cam["height"] == 960
    assert cam["focal_px"] == pytest.approx(s.intr.focal_px * 4, rel=1e-6)
    assert cam["principal_px"] == pytest.approx([640.0, 480.0])
    assert cam["fov_horizontal_deg"] == pytest.approx(60.0, abs=1e-4)
    assert cam["focal_length_mm"] == pytest.approx(36.0 / (2 * np.tan(np.radians(30))), rel=1e-5)
    assert cam["vertical_aperture_mm"] == pytest.approx(27.0)
    car = next(o for o in scene["objects"] if o["label"] == "car")
    v, u = np.nonzero(s.instance == 0)
    assert car["bbox_px"] == [u.min() * 4, v.min() * 4, (u.max() + 1) * 4, (v.max() + 1) * 4]


def test_bad_inputs_are_one_line_user_errors() -> None:
    s = street()
    with pytest.raises(UserError, match="label id 7 has no name"):
        build(s, labels=np.full(s.labels.shape, 7))
    with pytest.raises(UserError, match="labels are 10x10"):
        build(s, labels=np.zeros((10, 10), np.int32))
    with pytest.raises(UserError, match="depth is"):
        build(s, depth=np.ones((5, 5)))
    with pytest.raises(UserError, match="recursion"):
        build(s, recursion=9)
    with pytest.raises(UserError, match="color_stat"):
        build(s, color_stat="mode")


def test_invalid_depth_values_are_ignored() -> None:
    s = street()
    d = s.depth.copy()
    d[::7] = np.nan
    d[3::11] = -1.0
    d[5::13] = 0.0
    scene = build(s, depth=d)
    assert scene["ground"]["pitch_deg"] == pytest.approx(-8.0, abs=0.1)
    car = next(o for o in scene["objects"] if o["label"] == "car")
    assert car["depth_m"]["valid_pixels"] < car["pixels"]
    assert car["size"][1] == pytest.approx(1.5, abs=0.1)


@pytest.mark.parametrize("depth", ["zeros", "none"])
def test_without_depth_objects_are_placed_from_priors(depth: str) -> None:
    s = street()
    scene = build(s, depth=np.zeros_like(s.depth) if depth == "zeros" else None)
    assert scene["ground"]["found"] is False
    assert any("priors" in w for w in scene["warnings"])
    car = next(o for o in scene["objects"] if o["label"] == "car")
    assert car["thickness_source"] == "prior" and car["depth_m"] == {"valid_pixels": 0}
    assert car["size"][1] == pytest.approx(1.5, rel=0.2)  # sized from its prior height (a trusted class)
    assert -40 < car["translate"][2] < -5


def test_an_all_sky_image_is_a_valid_scene() -> None:
    s = street()
    scene = build(s, labels=np.zeros_like(s.labels), depth=np.full(s.depth.shape, np.inf))
    assert [o["name"] for o in scene["objects"]] == ["sky_1"]
    assert scene["objects"][0]["shape"] == "plane"


def test_names_are_sanitised_and_unique() -> None:
    s = street()
    names = ["sky", "road", "Traffic Sign (front)", "3d-thing", "box"]
    scene = build(s, names=names)
    got = sorted(o["name"] for o in iter_objects(scene["objects"]))
    assert "traffic_sign_front_1" in got and "_3d_thing_1" in got and "_3d_thing_2" in got


def _inside(child: dict, parent: dict, tol: float = 1e-4) -> bool:
    from inference_server.analysis.boxes import Box

    pb = Box(tuple(parent["translate"]), parent["rotate"][1], tuple(parent["size"]))
    cb = Box(tuple(child["translate"]), child["rotate"][1], tuple(child["size"]))
    local = pb.to_local(cb.corners())
    return bool(np.all(np.abs(local) <= np.asarray(pb.size) / 2 + tol))


def _depth(o: dict) -> int:
    return 1 + max((_depth(c) for c in o["children"]), default=0)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_recursion_yields_children_inside_parents_to_depth_n(n: int) -> None:
    s = street()
    scene = build(s, recursion=n)
    deep = 0
    for top in scene["objects"]:
        if top["role"] in ("sky", "ground"):
            assert top["children"] == []
            continue
        deep = max(deep, _depth(top) - 1)
        assert _depth(top) - 1 <= n
        for o in iter_objects([top]):
            for c in o["children"]:
                assert _inside(c, o)
                assert c["name"].startswith(o["name"] + "_")
                assert c["pixels"] <= o["pixels"]
    assert deep == n
    building = next(o for o in scene["objects"] if o["label"] == "building")
    assert len(building["children"]) >= 2


def test_resegment_hook_names_the_children_and_none_falls_back() -> None:
    s = street()
    calls = []

    def hook(crop_rgb: np.ndarray, crop_mask: np.ndarray):  # type: ignore[no-untyped-def]
        calls.append(crop_rgb.shape[:2] == crop_mask.shape)
        if crop_mask.sum() < 5000:
            return None
        sub = np.zeros(crop_mask.shape, np.int32)
        sub[: crop_mask.shape[0] // 2] = 1
        return sub, ["wall", "windowpane"]

    scene = build(s, recursion=1, resegment=hook)
    assert calls and all(calls)
    building = max((o for o in scene["objects"] if o["label"] == "building"), key=lambda o: o["pixels"])
    assert sorted(c["label"] for c in building["children"]) == ["wall", "windowpane"]
    car = next(o for o in scene["objects"] if o["label"] == "car")
    assert len(car["children"]) >= 2 and all(c["label"] == "car" for c in car["children"])


@pytest.mark.parametrize(("labels", "names", "with_depth"), [
    (-1, ["sky"], False), (0, ["other"], True), (0, ["other"], False), (-1, [], True), (0, ["car"], True)])
def test_images_without_any_object_give_valid_empty_scenes(labels: int, names: list, with_depth: bool) -> None:
    h, w = 30, 40
    depth = np.ones((h, w), np.float32) if with_depth else None
    scene = build_scene(np.zeros((h, w, 3), np.uint8), np.full((h, w), labels), names, depth,
                        intrinsics_for(w, h), SceneOptions(min_area_px=2000),
                        source={"image": "a", "width": w, "height": h, "sha256": "0" * 64})
    validate(scene)
    assert scene["objects"] == []
