"""benchmarks/bench_synthetic.py scoring: a perfect prediction in another world gauge scores exactly."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_synthetic import bbox_iou, match, score_scene
from synthetic_gt import make_scene

from inference_server.analysis.camera import euler_xyz_to_matrix, matrix_to_euler_xyz


def _perfect_prediction(scene, yaw: float, shift: np.ndarray) -> dict:
    """The ground truth as the engine would write it, in a world turned by `yaw` and shifted by `shift`."""
    r = euler_xyz_to_matrix(0.0, yaw, 0.0)
    cam_r = r @ euler_xyz_to_matrix(*scene.camera["rotate"])
    objects = [{"name": "road_1", "label": "road", "role": "ground", "shape": "plane", "bbox_px": [0, 0, 1, 1]}]
    for k, o in enumerate(scene.objects):
        objects.append({
            "name": f"{o.label}_{k}", "label": o.label, "role": "object", "shape": "cube",
            "translate": list(r @ np.asarray(o.translate) + shift), "rotate": [0.0, o.rotate[1] + yaw, 0.0],
            "size": o.size[::-1] if k % 2 else o.size,  # odd ones: x/z swapped ...
            "bbox_px": o.bbox_px, "color_linear": o.color_linear, "color_srgb": o.color_srgb,
        })
        if k % 2:
            objects[-1]["rotate"][1] += 90.0  # ... and turned by 90 deg: the same solid
    cam_t = r @ np.asarray(scene.camera["translate"]) + shift
    return {"camera": {"translate": list(cam_t), "rotate": list(matrix_to_euler_xyz(cam_r))},
            "objects": objects, "warnings": []}


def test_perfect_prediction_in_another_gauge_scores_one() -> None:
    scene = make_scene(2, 320, 214, 5)
    pred = _perfect_prediction(scene, 33.0, np.array([4.0, 0.0, -7.0]))
    res = score_scene(scene, pred, min_px=50)
    assert len(res["rows"]) >= 3 and not res["extras"]
    for row in res["rows"]:
        assert row["matched"]
        assert row["iou"] == pytest.approx(1.0, abs=1e-9)
        assert row["err_yaw"] == pytest.approx(0.0, abs=1e-6) and abs(row["err_long"]) < 1e-9
        assert row["color_err_linear"] == 0.0
        assert 0.0 < row["baseline_iou"] < 1.0
    assert res["camera"]["gauge_yaw"] == pytest.approx(-33.0, abs=1e-9)
    assert abs(res["camera"]["err_pitch"]) < 1e-9 and abs(res["camera"]["err_height"]) < 1e-9


def test_match_is_one_to_one_by_label_and_overlap() -> None:
    gt = [{"label": "car", "bbox_px": [0, 0, 10, 10]}, {"label": "car", "bbox_px": [20, 0, 30, 10]}]
    pred = [{"label": "car", "bbox_px": [21, 0, 30, 10]}, {"label": "box", "bbox_px": [0, 0, 10, 10]},
            {"label": "car", "bbox_px": [0, 0, 9, 10]}, {"label": "car", "bbox_px": [0, 0, 4, 10]}]
    assert match(gt, pred) == {0: 2, 1: 0}
    assert bbox_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(1 / 3)
