"""benchmarks/prototype.py: both per-pixel variants compute the statistics they claim (vectorised check)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from prototype import prototype_stats, prototype_stats_numpy, soft_masks


def _inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    labels = np.zeros((6, 9), dtype=np.int32)
    labels[:, 3:6], labels[:, 6:] = 1, 2
    rgb = rng.integers(0, 256, size=(6, 9, 3), dtype=np.uint8)
    depth = rng.uniform(2, 30, size=(6, 9)).astype(np.float32)
    depth[0, :2] = np.nan
    return rgb, labels, depth


def test_soft_masks_are_probabilities_peaked_on_the_label() -> None:
    _, labels, _ = _inputs()
    p = soft_masks(labels, 4)
    assert p.shape == (6, 9, 4)
    assert np.allclose(p.sum(axis=-1), 1.0, atol=1e-5) and (p > 0).all()
    assert (p.argmax(axis=-1) == labels).all()
    assert soft_masks(labels, 4, slice(2, 4)).shape == (2, 9, 4)


@pytest.mark.parametrize("fn", [prototype_stats, prototype_stats_numpy])
def test_stats_match_a_vectorised_reference(fn) -> None:
    rgb, labels, depth = _inputs()
    probs = soft_masks(labels, 3)
    row0 = 10
    out = fn(rgb, probs, depth, row0=row0)
    yy, xx = np.mgrid[0:6, 0:9]
    for c, s in enumerate(out):
        p = probs[..., c].astype(np.float64)
        assert s["weight"] == pytest.approx(p.sum(), rel=1e-5)
        assert s["x"] == pytest.approx((p * xx).sum() / p.sum(), rel=1e-5)
        assert s["y"] == pytest.approx((p * (yy + row0)).sum() / p.sum(), rel=1e-5)
        assert s["g"] == pytest.approx((p * rgb[..., 1]).sum() / p.sum(), rel=1e-5)
        ok = ~np.isnan(depth)
        assert s["depth"] == pytest.approx((p * depth)[ok].sum() / p[ok].sum(), rel=1e-5)
        v, u = np.nonzero(p >= 0.5)
        assert s["bbox"] == (u.min(), v.min() + row0, u.max() + 1, v.max() + 1 + row0)
