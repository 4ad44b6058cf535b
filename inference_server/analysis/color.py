"""sRGB <-> linear light, and per-instance colour statistics.

Averaging must happen in linear light: the mean of a red and a blue half is a bright purple
(linear 0.5, 0, 0.5 -> sRGB 0.735, 0, 0.735), not the murky grey-purple that an sRGB average gives.
Renderers (Maya's colour management included) expect `color_linear`; `color_srgb` is for display.
"""

from __future__ import annotations

import numpy as np

COLOR_STATS = ("mean", "median", "trimmed")

# Trimmed mean keeps pixels whose luminance lies between these percentiles of the instance:
# shadows and crevices (dark tail) and specular highlights (bright tail) are dropped.
TRIM_LOW_PCT = 20.0
TRIM_HIGH_PCT = 95.0
_LUMA = np.array([0.2126, 0.7152, 0.0722])


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 decode of values in 0..1."""
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 encode of linear values, clipped to 0..1."""
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1.0 / 2.4) - 0.055)


# 8-bit decode table: one gather per pixel instead of a pow().
LINEAR_LUT = srgb_to_linear(np.arange(256) / 255.0)


def robust_color(lin: np.ndarray, stat: str) -> np.ndarray:
    """Colour of one instance from its (n, 3) linear pixels with a shadow-robust statistic.

    "median" is per channel (the median commutes with the monotone sRGB curve, so it is the same
    in either space); "trimmed" averages the pixels whose luminance is between the 20th and 95th
    percentile, which drops cast shadows covering up to a fifth of the object.
    """
    if len(lin) == 0:
        return np.zeros(3)
    if stat == "median":
        return np.median(lin, axis=0)
    if stat == "trimmed":
        y = lin @ _LUMA
        lo, hi = np.percentile(y, [TRIM_LOW_PCT, TRIM_HIGH_PCT])
        keep = (y >= lo) & (y <= hi)
        return lin[keep].mean(axis=0) if keep.any() else lin.mean(axis=0)
    return lin.mean(axis=0)
