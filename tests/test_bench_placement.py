"""benchmarks/bench_placement.py: KITTI label parsing and the measures on a hand-made scene."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_placement import kitti_labels, measure

LABEL = """Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89 0.48 1.20 1.84 1.47 8.41 0.01
DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10
"""


def _scene(translate: list[float], size: list[float], bbox: list[int]) -> dict:
    cam = {"translate": [0.0, 1.6, 0.0], "rotate": [0.0, 0.0, 0.0], "focal_px": 700.0, "width": 1200, "height": 400}
    obj = {"name": "person_1", "label": "person", "role": "person", "translate": translate, "size": size,
           "bbox_px": bbox, "depth_m": {"median": 14.0}}
    return {"camera": cam, "objects": [obj]}


def test_kitti_labels_to_engine_camera_frame(tmp_path: Path) -> None:
    f = tmp_path / "l.txt"
    f.write_text(LABEL)
    gt = kitti_labels(f)
    assert len(gt) == 1 and gt[0]["role"] == "person" and gt[0]["size"] == (1.2, 1.89, 0.48)
    # KITTI: y down, location at the bottom centre; engine camera: y up, looking down -Z
    assert gt[0]["center_cam"] == pytest.approx(np.array([1.84, -(1.47 - 0.945), -8.41]))


def test_measure_ratio_sizes_and_kitti_match() -> None:
    # a person 170 px tall at f = 700 is 7 m away by its 1.7 m prior; the box centre is 7 m deep: ratio 1
    sc = _scene([1.0, 0.85, -7.0], [0.5, 1.7, 0.4], [500, 100, 560, 270])
    gt = [{"type": "Pedestrian", "role": "person", "bbox": [500.0, 100.0, 560.0, 270.0], "size": (0.4, 1.8, 0.5),
           "center_cam": np.array([1.0, 0.9 - 1.6, -8.0])}]
    r = measure(sc, gt)
    assert r["n"] == 1 and r["ratio"] == pytest.approx(1.0) and r["ratio_depth"] == pytest.approx(2.0)
    assert r["sizes"]["person"] == [0.5, 1.7, 0.4]
    m = r["kitti"][0]
    assert m["matched"] == "person_1" and m["dz"] == pytest.approx(-1.0) and m["dh"] == pytest.approx(-0.1)
    assert m["dlong"] == pytest.approx(0.0) and m["dshort"] == pytest.approx(0.0)
    cut = measure(_scene([1.0, 0.85, -7.0], [0.5, 1.7, 0.4], [0, 100, 60, 270]), None)  # cut by the frame
    assert cut["n"] == 0 and cut["ratio"] is None and "kitti" not in cut
