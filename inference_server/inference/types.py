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


@dataclass(eq=False)
class Instances:
    """Objects found one by one (an instance network): boxes, classes, scores and masks, numpy only.

    Coordinates are pixels of the image the detector saw (``width`` x ``height``; pixel (u, v) has its
    centre at (u + 0.5, v + 0.5)). Masks are kept resolution-free, as each instance's mask LOGITS on a
    window of the network's prototype grid: ``mask_logits[i]`` is a (gh, gw) float32 window whose knot
    (r, c) sits at image point ``(mask_origin[i] + (c, r)) * mask_stride - mask_offset`` (x, y); a pixel
    belongs to the instance where the bilinearly interpolated logit is > 0 and its centre lies in the box.
    ``mask(i, rows, cols)`` evaluates that on any lattice of image rows/columns (the engine's analysis
    grid), so no full-resolution mask is ever stored. Compared by identity (``eq=False``).
    """

    boxes: np.ndarray  # (n, 4) float32 x0, y0, x1, y1 in image pixels (edges, clipped to the image)
    class_ids: np.ndarray  # (n,) int32 index into `class_names`
    scores: np.ndarray  # (n,) float32 0..1
    class_names: list[str]  # the model's label set (COCO 80)
    model: str
    width: int
    height: int
    mask_logits: list[np.ndarray] = field(default_factory=list)  # per instance (gh, gw) float32
    mask_origin: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32))  # (n, 2) knot x, y
    mask_stride: float = 1.0  # image pixels per prototype knot
    mask_offset: tuple[float, float] = (0.0, 0.0)  # (x, y): image point = knot * stride - offset
    box_slack: float = 0.0  # image pixels a box edge may be off by (the int8 file's coarse outputs)

    def __len__(self) -> int:
        return int(len(self.scores))

    @property
    def names(self) -> list[str]:
        """The class name of each instance."""
        return [self.class_names[int(c)] for c in self.class_ids]

    def mask(self, i: int, rows: np.ndarray | None = None, cols: np.ndarray | None = None
             ) -> tuple[slice, slice, np.ndarray]:
        """Instance ``i``'s mask on the lattice of image ``rows`` x ``cols`` (sorted index arrays; None =
        every row/column): (row slice, column slice, bool crop) with the crop covering only the lattice
        points inside the instance's box (empty slices when none is)."""
        r = np.arange(self.height) if rows is None else np.asarray(rows)
        c = np.arange(self.width) if cols is None else np.asarray(cols)
        x0, y0, x1, y1 = (float(b) for b in self.boxes[i])
        ra, rb = int(np.searchsorted(r + 0.5, y0, "left")), int(np.searchsorted(r + 0.5, y1, "right"))
        ca, cb = int(np.searchsorted(c + 0.5, x0, "left")), int(np.searchsorted(c + 0.5, x1, "right"))
        rs, cs = slice(ra, max(ra, rb)), slice(ca, max(ca, cb))
        if rb <= ra or cb <= ca or i >= len(self.mask_logits):
            return rs, cs, np.zeros((max(0, rb - ra), max(0, cb - ca)), bool)
        lg = self.mask_logits[i]
        gx0, gy0 = (int(v) for v in self.mask_origin[i])
        ox, oy = self.mask_offset
        iy0, wy = _taps1(((r[ra:rb] + 0.5 + oy) / self.mask_stride) - gy0, lg.shape[0])
        ix0, wx = _taps1(((c[ca:cb] + 0.5 + ox) / self.mask_stride) - gx0, lg.shape[1])
        iy1, ix1 = np.minimum(iy0 + 1, lg.shape[0] - 1), np.minimum(ix0 + 1, lg.shape[1] - 1)
        top = lg[iy0][:, ix0] * (1 - wx) + lg[iy0][:, ix1] * wx
        bot = lg[iy1][:, ix0] * (1 - wx) + lg[iy1][:, ix1] * wx
        return rs, cs, (top * (1 - wy)[:, None] + bot * wy[:, None]) > 0


def _taps1(s: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Left knot and weight of the next one for fractional knot coordinates ``s`` (edge-clamped)."""
    s = np.clip(s, 0.0, max(n - 1, 0))
    i0 = np.minimum(np.floor(s).astype(np.intp), max(n - 2, 0))
    return i0, (s - i0).astype(np.float32)


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
