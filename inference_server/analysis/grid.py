"""Stage 0: the inputs checked, and the analysis grid every later stage works on.

The analysed image (w0 x h0, camera intr0) is sampled onto a grid of at most `max_pixels` pixels
(nearest pixel, so labels and depth edges stay sharp: docs/SHAPES.md); grid pixel j samples analysed
pixel floor((j + 0.5) / scale), so the grid camera is the analysed one scaled by `scale`. Bounding
boxes are refined back to analysed pixels by the objects stage (objects._refine_bbox).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import UserError
from .camera import Intrinsics

MAX_GRID_PIXELS = 640_000  # default analysis grid: ~1000 x 650 whatever the photo's size (docs/SHAPES.md)


@dataclass(frozen=True)
class Checked:
    """The label, depth and confidence arrays checked against the photo (analysed resolution)."""

    labels: np.ndarray
    depth: np.ndarray | None
    confidence: np.ndarray | None


@dataclass(frozen=True)
class Grid:
    """The analysed image and its analysis grid (`scale` = grid / analysed, 1.0 when not sampled)."""

    w0: int  # the analysed image
    h0: int
    intr0: Intrinsics
    labels0: np.ndarray  # checked labels, analysed resolution (objects._refine_bbox)
    scale: float
    rows: np.ndarray | None  # analysed row / column of each grid row / column (None: not sampled)
    cols: np.ndarray | None
    rgb: np.ndarray  # (h, w, 3) uint8
    labels: np.ndarray  # (h, w) int32, -1 = no class
    depth: np.ndarray | None  # z-depth (up to scale for relative / disparity), NaN = none
    confidence: np.ndarray | None
    intr: Intrinsics  # the grid's camera

    @property
    def h(self) -> int:
        return int(self.labels.shape[0])

    @property
    def w(self) -> int:
        return int(self.labels.shape[1])

    @property
    def px_scale(self) -> float:
        """Analysed pixels per grid pixel."""
        return (self.w0 * self.h0) / max(self.w * self.h, 1)


def photo_size(rgb: np.ndarray) -> tuple[int, int]:
    """(h, w) of the photo, or a UserError for an array that is no image."""
    a = np.asarray(rgb)
    if a.ndim not in (2, 3):
        raise UserError(f"photo must be an (h, w, 3) RGB image, got shape {a.shape}")
    return int(a.shape[0]), int(a.shape[1])


def check_maps(labels: np.ndarray, names: list[str], depth: np.ndarray | None, confidence: np.ndarray | None,
               shape: tuple[int, int]) -> Checked:
    return Checked(_check_labels(labels, names, shape), _as_map(depth, "depth", shape),
                   _as_map(confidence, "confidence", shape))


def analysed_intrinsics(intr: Intrinsics, shape: tuple[int, int]) -> Intrinsics:
    """`intr` for the analysed image (h, w): rescaled when it is for another size of the same aspect."""
    h, w = shape
    if (intr.width, intr.height) != (w, h):
        if abs(intr.width / w - intr.height / h) > 0.02 * intr.width / w:
            raise UserError(f"intrinsics are for {intr.width}x{intr.height} but the analysed image is "
                            f"{w}x{h}")
        intr = intr.scaled(w / intr.width, width=w, height=h)
    return intr


def make_grid(rgb: np.ndarray, checked: Checked, intr0: Intrinsics, max_pixels: int, depth_kind: str) -> Grid:
    """The grid of at most `max_pixels` pixels (0 = every pixel) sampled from the analysed image."""
    h0, w0 = checked.labels.shape
    gs, rows, cols = _grid(h0, w0, max_pixels)
    labels = _as_labels(_sample_array(checked.labels, rows, cols))
    h, w = labels.shape
    intr = intr0.scaled(gs, width=w, height=h) if gs != 1.0 else intr0
    return Grid(w0=w0, h0=h0, intr0=intr0, labels0=checked.labels, scale=gs, rows=rows, cols=cols,
                rgb=_as_rgb(_sample_array(np.asarray(rgb), rows, cols)), labels=labels,
                depth=_prepare_depth(_sample(checked.depth, rows, cols), depth_kind),
                confidence=_sample(checked.confidence, rows, cols), intr=intr)


def with_camera(grid: Grid, intr0: Intrinsics) -> Grid:
    """The same samples under another camera of the analysed image (a typed FOV): the sampling never
    depends on the camera, so this is what make_grid gives with `intr0`."""
    if grid.intr0 == intr0:
        return grid
    intr = intr0.scaled(grid.scale, width=grid.w, height=grid.h) if grid.scale != 1.0 else intr0
    return replace(grid, intr0=intr0, intr=intr)


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    a = np.asarray(rgb)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise UserError(f"photo must be an (h, w, 3) RGB image, got shape {a.shape}")
    a = a[..., :3]
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.size and float(np.nanmax(a)) <= 1.0:
            a = np.round(np.clip(np.nan_to_num(a), 0, 1) * 255.0)
        a = np.clip(a, 0, 255).astype(np.uint8)
    return a


def _check_labels(labels: np.ndarray, names: list[str], shape: tuple[int, int]) -> np.ndarray:
    """The label array, checked (2-D, the photo's size, integer ids with names); any integer dtype."""
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise UserError(f"labels must be a 2-D array of class ids, got shape {lab.shape}")
    if lab.shape != shape:
        raise UserError(f"labels are {lab.shape[1]}x{lab.shape[0]} but the photo is {shape[1]}x{shape[0]}")
    if not np.issubdtype(lab.dtype, np.integer):
        if not np.all(np.isfinite(lab)) or not np.all(lab == np.round(lab)):
            raise UserError("labels must be integer class ids")
        lab = lab.astype(np.int32)
    if lab.size and int(lab.max()) >= len(names):
        raise UserError(f"label id {int(lab.max())} has no name: only {len(names)} label names given")
    return lab


def _as_labels(lab: np.ndarray) -> np.ndarray:
    """Checked labels as int32, every negative id -1 (no class)."""
    out = lab.astype(np.int32)
    if np.issubdtype(lab.dtype, np.signedinteger):
        out = np.where(out < 0, np.int32(-1), out)
    return out


def _grid(h: int, w: int, max_pixels: int) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """Scale and the rows/columns (nearest pixel) of the analysis grid: at most `max_pixels` pixels
    (0 = no limit)."""
    if max_pixels <= 0 or h * w <= max_pixels:
        return 1.0, None, None
    s = math.sqrt(max_pixels / (h * w))
    h2, w2 = max(1, int(h * s)), max(1, int(w * s))
    rows = np.minimum(((np.arange(h2) + 0.5) / s).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(w2) + 0.5) / s).astype(np.intp), w - 1)
    return s, rows, cols


def _sample_array(a: np.ndarray, rows: np.ndarray | None, cols: np.ndarray | None) -> np.ndarray:
    if rows is None or cols is None:
        return a
    return np.take(np.take(a, rows, axis=0), cols, axis=1)


def _sample(a: np.ndarray | None, rows: np.ndarray | None, cols: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else _sample_array(a, rows, cols)


def _as_map(a: np.ndarray | None, what: str, shape: tuple[int, int]) -> np.ndarray | None:
    if a is None:
        return None
    m = np.asarray(a, dtype=np.float32)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.shape != shape:
        size = "x".join(map(str, m.shape[::-1]))
        raise UserError(f"{what} is {size} but the photo is {shape[1]}x{shape[0]}")
    return m


def _prepare_depth(depth: np.ndarray | None, kind: str) -> np.ndarray | None:
    """z-depth (up to scale for relative/disparity) with NaN where there is no depth."""
    if depth is None:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32)
        if kind == "disparity":
            d = (1.0 / d).astype(np.float32)
    return d
