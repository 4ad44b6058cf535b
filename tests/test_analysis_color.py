"""Colour statistics: linear-light averages, robust variants, sRGB round trip."""

from __future__ import annotations

import numpy as np
import pytest

from inference_server.analysis.camera import intrinsics_for
from inference_server.analysis.color import linear_to_srgb, robust_color, srgb_to_linear
from inference_server.analysis.engine import SceneOptions, build_scene

SRC = {"image": "t.png", "width": 64, "height": 48, "sha256": "0" * 64}


def test_srgb_round_trip_and_known_values() -> None:
    x = np.linspace(0, 1, 101)
    assert np.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12)
    assert srgb_to_linear(np.array(0.5)) == pytest.approx(0.214041, abs=1e-6)
    assert linear_to_srgb(np.array(0.5)) == pytest.approx(0.735357, abs=1e-6)


def _scene(rgb: np.ndarray, labels: np.ndarray, names: list[str], stat: str = "mean") -> dict:
    h, w = labels.shape
    return build_scene(rgb, labels, names, None, intrinsics_for(w, h), SceneOptions(color_stat=stat),
                       source=dict(SRC, width=w, height=h))


def test_two_colour_segment_is_averaged_in_linear_light() -> None:
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (255, 0, 0)
    rgb[:, 32:] = (0, 0, 255)
    labels = np.zeros((48, 64), np.int32)
    obj = _scene(rgb, labels, ["car"])["objects"][0]
    assert obj["color_linear"] == pytest.approx([0.5, 0.0, 0.5], abs=1e-6)
    # re-encoded: bright purple 0.735, not the sRGB average 0.5 (which would look greyish)
    assert obj["color_srgb"] == pytest.approx([0.735357, 0.0, 0.735357], abs=1e-5)


def test_median_and_trimmed_reject_a_shadow() -> None:
    lit = np.array([200, 150, 100], np.uint8)
    rgb = np.empty((48, 64, 3), np.uint8)
    rgb[:] = lit
    rgb[30:, :] = (30, 20, 15)  # a cast shadow over 37.5 % of the object
    labels = np.zeros((48, 64), np.int32)
    mean = _scene(rgb, labels, ["car"], "mean")["objects"][0]["color_srgb"]
    median = _scene(rgb, labels, ["car"], "median")["objects"][0]["color_srgb"]
    assert median == pytest.approx(list(lit / 255.0), abs=1e-6)
    assert abs(mean[0] - lit[0] / 255.0) > 0.1
    rgb[36:, :] = lit  # 25 % shadow: the trimmed mean drops it too
    trimmed = _scene(rgb, labels, ["car"], "trimmed")["objects"][0]["color_srgb"]
    assert trimmed == pytest.approx(list(lit / 255.0), abs=0.01)


def test_robust_color_statistics_directly() -> None:
    lin = np.array([[0.5, 0.5, 0.5]] * 8 + [[0.0, 0.0, 0.0]] * 2)
    assert robust_color(lin, "mean") == pytest.approx([0.4] * 3)
    assert robust_color(lin, "median") == pytest.approx([0.5] * 3)
    assert robust_color(lin, "trimmed") == pytest.approx([0.5] * 3)
    assert robust_color(np.zeros((0, 3)), "median") == pytest.approx([0, 0, 0])
