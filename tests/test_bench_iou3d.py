"""benchmarks/iou3d.py: oriented and axis-aligned 3D IoU on cases with known answers."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from iou3d import (
    aabb_of,
    box_from_aabb,
    clip_convex,
    footprint,
    iou3d,
    iou3d_axis_aligned,
    polygon_area,
)


def box(t=(0.0, 0.5, 0.0), yaw=0.0, size=(1.0, 1.0, 1.0), rx=0.0, rz=0.0) -> dict:
    return {"translate": list(t), "rotate": [rx, yaw, rz], "size": list(size)}


def test_identical_is_one() -> None:
    b = box((3.0, 0.75, -12.0), 33.0, (1.8, 1.5, 4.5))
    assert iou3d(b, b) == pytest.approx(1.0, abs=1e-12)


def test_disjoint_is_zero() -> None:
    assert iou3d(box((0, 0.5, 0)), box((5, 0.5, 0))) == 0.0
    # same footprint, no vertical overlap
    assert iou3d(box((0, 0.5, 0)), box((0, 2.0, 0))) == 0.0


def test_half_overlap_is_one_third() -> None:
    # shifted by half a unit along x: intersection 0.5, union 1.5
    assert iou3d(box((0, 0.5, 0)), box((0.5, 0.5, 0))) == pytest.approx(1 / 3, abs=1e-12)
    # half vertical overlap, same footprint
    assert iou3d(box((0, 0.5, 0)), box((0, 1.0, 0))) == pytest.approx(1 / 3, abs=1e-12)


def test_unit_square_rotated_45_degrees() -> None:
    # intersection of a unit square and the same square rotated 45 deg about its centre: a regular
    # octagon of area 2 * (sqrt(2) - 1); IoU = A / (2 - A)
    a = 2.0 * (math.sqrt(2.0) - 1.0)
    assert iou3d(box(), box(yaw=45.0)) == pytest.approx(a / (2.0 - a), abs=1e-12)


def test_yaw_symmetry_and_swapped_axes() -> None:
    # a box is the same solid after 180 deg, or after 90 deg with x and z extents swapped
    b = box((1.0, 0.75, -4.0), 20.0, (1.8, 1.5, 4.5))
    assert iou3d(b, box((1.0, 0.75, -4.0), 200.0, (1.8, 1.5, 4.5))) == pytest.approx(1.0, abs=1e-9)
    assert iou3d(b, box((1.0, 0.75, -4.0), 110.0, (4.5, 1.5, 1.8))) == pytest.approx(1.0, abs=1e-9)


def test_yaw_direction_matches_camera_convention() -> None:
    # Ry(+90) maps local +x to world -z (R = Rz @ Ry @ Rx, column vectors)
    fp = footprint(box((0, 0.5, 0), 90.0, (2.0, 1.0, 0.0001)))
    assert np.allclose(sorted(fp[:, 1]), [-1, -1, 1, 1], atol=1e-3)
    assert np.abs(fp[:, 0]).max() < 1e-3


def test_tilted_rotate_is_read_through_its_matrix() -> None:
    # rx = 180, rz = 180 is a pure yaw of 180 deg - ry: same footprint as yaw 180 - 30
    a = box((0, 0.5, 0), 30.0, (1.0, 1.0, 3.0), rx=180.0, rz=180.0)
    b = box((0, 0.5, 0), 150.0, (1.0, 1.0, 3.0))
    assert iou3d(a, b) == pytest.approx(1.0, abs=1e-9)


def test_contained_box() -> None:
    big, small = box((0, 1.0, 0), 17.0, (2, 2, 2)), box((0, 0.5, 0), 17.0, (1, 1, 1))
    assert iou3d(big, small) == pytest.approx(1 / 8, abs=1e-12)


def test_clip_and_area_helpers() -> None:
    sq = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    assert polygon_area(sq) == pytest.approx(1.0)
    assert polygon_area(sq[::-1]) == pytest.approx(-1.0)
    half = clip_convex(sq, sq + [0.5, 0.0])
    assert abs(polygon_area(half)) == pytest.approx(0.5)
    assert len(clip_convex(sq, sq + [3.0, 0.0])) == 0


def test_axis_aligned_baseline() -> None:
    lo, hi = np.zeros(3), np.ones(3)
    assert iou3d_axis_aligned(lo, hi, lo, hi) == pytest.approx(1.0)
    assert iou3d_axis_aligned(lo, hi, lo + [0.5, 0, 0], hi + [0.5, 0, 0]) == pytest.approx(1 / 3)
    assert iou3d_axis_aligned(lo, hi, lo + 2, hi + 2) == 0.0
    # the AABB of a 45-deg unit cube is sqrt(2) x 1 x sqrt(2); as a box it scores 1/2 against the cube
    alo, ahi = aabb_of(box(yaw=45.0))
    assert np.allclose(ahi - alo, [math.sqrt(2), 1, math.sqrt(2)])
    assert iou3d(box(yaw=45.0), box_from_aabb(alo, ahi)) == pytest.approx(0.5, abs=1e-9)
