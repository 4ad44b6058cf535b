"""What the networks hand to the analysis stage (numpy only: no framework types cross this line)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inference_server.errors import UserError


@dataclass
class Segmentation:
    """Hard labels for an image, with the label set and (where the model gives it) per-pixel confidence."""

    labels: np.ndarray  # (h, w) int32 class ids, index into `names`
    names: list[str]  # names[k] = class name of id k
    model: str  # model id, e.g. "deeplabv3-mnv2-ade20k150"
    confidence: np.ndarray | None = None  # (h, w) float32 in 0..1: softmax probability of the chosen class


@dataclass
class DepthMap:
    """Per-pixel depth. kind: "metric" (z-depth in metres), "relative" (larger = farther, unknown scale)
    or "disparity" (larger = nearer). Non-finite or <= 0 means no depth (e.g. sky)."""

    depth: np.ndarray  # (h, w) float32
    kind: str
    model: str
    extras: dict = field(default_factory=dict)


def as_rgb_uint8(rgb: np.ndarray) -> np.ndarray:
    """The image as a (h, w, 3) uint8 array (grey is repeated, alpha dropped); UserError otherwise."""
    a = np.asarray(rgb)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise UserError(f"expected an RGB image (h, w, 3), got an array of shape {a.shape}")
    if a.dtype != np.uint8:
        raise UserError(f"expected uint8 RGB pixels, got {a.dtype}")
    return a[:, :, :3]
