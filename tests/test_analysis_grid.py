"""The analysis grid (SceneOptions.max_pixels) and the recursion lattice: reported numbers keep the
analysed photo's units and stay close to a full-resolution analysis."""

from __future__ import annotations

import numpy as np
import pytest
from test_analysis_synth import street

from inference_server.analysis import children
from inference_server.analysis.camera import Intrinsics
from inference_server.analysis.engine import SceneOptions, build_scene
from inference_server.errors import UserError
from inference_server.scene import iter_objects, validate

SRC = {"image": "street.png", "width": 320, "height": 240, "sha256": "0" * 64}


def _build(s, **kw) -> dict:  # type: ignore[no-untyped-def]
    scene = build_scene(s.rgb, s.labels, s.names, s.depth, s.intr, SceneOptions(**kw), source=dict(SRC))
    validate(scene)
    return scene


def test_grid_keeps_camera_bboxes_counts_and_colours() -> None:
    s = street()
    full = _build(s, max_pixels=0)
    grid = _build(s, max_pixels=20_000)
    assert full["settings"]["analysis_grid_px"] == [320, 240]
    gw, gh = grid["settings"]["analysis_grid_px"]
    assert gw * gh <= 20_000 and gw == 163 and gh == 122
    assert grid["source"]["analysis_width"] == 320 and grid["source"]["analysis_height"] == 240
    for key in ("focal_px", "principal_px", "width", "height", "focal_length_mm", "horizontal_aperture_mm"):
        assert grid["camera"][key] == full["camera"][key]
    by_name = {o["name"]: o for o in full["objects"]}
    assert sorted(by_name) == sorted(o["name"] for o in grid["objects"])
    for o in grid["objects"]:
        f = by_name[o["name"]]
        assert np.abs(np.subtract(o["bbox_px"], f["bbox_px"])).max() <= 1, o["name"]
        assert o["pixels"] == pytest.approx(f["pixels"], rel=0.08), o["name"]
        assert np.abs(np.subtract(o["color_linear"], f["color_linear"])).max() < 0.02, o["name"]
        if o["role"] not in ("sky", "ground"):
            dist = np.linalg.norm(np.subtract(f["translate"], full["camera"]["translate"]))
            assert np.linalg.norm(np.subtract(o["translate"], f["translate"])) < 0.05 * dist, o["name"]
            assert np.allclose(o["size"], f["size"], rtol=0.2), o["name"]


def test_grid_bbox_is_exact_in_analysed_pixels() -> None:
    w, h = 1000, 700
    labels = np.zeros((h, w), np.int32)
    labels[h // 2:] = 1
    labels[211:389, 333:517] = 2  # a block at known pixels, edges between grid samples
    rgb = np.full((h, w, 3), 128, np.uint8)
    rgb[labels == 2] = (200, 40, 30)
    intr = Intrinsics(900.0, w / 2, h / 2, w, h, "user")
    scene = build_scene(rgb, labels, ["sky", "road", "car"], None, intr, SceneOptions(max_pixels=50_000),
                        source={"image": "b.png", "width": w, "height": h, "sha256": "0" * 64},
                        full_size=(2 * w, 2 * h))
    gw, gh = scene["settings"]["analysis_grid_px"]
    assert gw * gh <= 50_000 and gw < w
    (car,) = [o for o in scene["objects"] if o["label"] == "car"]
    assert car["bbox_px"] == [666, 422, 1034, 778]  # full resolution = 2 x analysed
    assert car["pixels"] == pytest.approx(178 * 184, rel=0.05)
    assert car["color_srgb"] == pytest.approx([200 / 255, 40 / 255, 30 / 255], abs=1e-6)
    assert scene["camera"]["focal_px"] == pytest.approx(1800.0)


@pytest.mark.parametrize("bad", [5, 9999, -1])
def test_max_pixels_is_checked(bad: int) -> None:
    s = street()
    with pytest.raises(UserError, match="max_pixels"):
        _build(s, max_pixels=bad)


def test_recursion_on_a_lattice_keeps_children_inside(monkeypatch: pytest.MonkeyPatch) -> None:
    s = street()
    monkeypatch.setattr(children, "MAX_SPLIT_PIXELS", 300)  # every object is split on a lattice
    scene = _build(s, recursion=2, max_pixels=0)
    parents = [o for o in iter_objects(scene["objects"]) if o["children"]]
    assert len(parents) >= 3
    for p in parents:
        kids = p["children"]
        assert sum(c["pixels"] for c in kids) <= 1.1 * p["pixels"]
        for c in kids:
            assert c["pixels"] <= p["pixels"] and c["depth_m"]["valid_pixels"] <= c["pixels"]
            x0, y0, x1, y1 = c["bbox_px"]
            px0, py0, px1, py1 = p["bbox_px"]
            assert px0 <= x0 < x1 <= px1 + 1 and py0 <= y0 < y1 <= py1 + 1
