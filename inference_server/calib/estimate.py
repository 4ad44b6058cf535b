"""The camera of one photo from its pixels: focal length, pitch, roll and the scene's horizontal axes.

The order of the sources (docs/CAMERA.md): a focal the user gives > EXIF > the vanishing points (when the
lines determine it) > the 60 degree prior; pitch and roll from the vanishing points when a vertical one is
found with enough support, else from the ground (the engine's fit), else level. A weak estimate is never
used: the caller keeps the prior and this says so in one warning line.

Frames: `up` and `horizontals` are in the engine's camera frame (x right, y up, z backward; see
analysis/camera.py); the Manhattan search works in OpenCV's (x right, y down, z forward).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import manhattan, segments

MIN_VERTICAL_SEGMENTS = 3  # a vertical vanishing point needs this many segments ...
MIN_VERTICAL_SUPPORT = 0.25  # ... and this much inlier length (fraction of the image diagonal)
SEMANTIC_STRIDE_PX = 8  # sky / ground sample spacing for the horizon check (analysis pixels)
_CV_TO_ENGINE = np.diag([1.0, -1.0, -1.0])  # OpenCV camera frame -> the engine's (y up, z backward)


@dataclass(frozen=True)
class CameraEstimate:
    """What the photo's lines say about its camera (analysis-resolution pixels)."""

    found: bool  # a Manhattan frame with a trusted vertical
    focal_px: float | None  # the lines' focal, None where they do not determine it
    up: tuple[float, float, float] | None  # world up in the camera frame (engine convention)
    horizontals: tuple[tuple[float, float, float], ...]  # Manhattan horizontal axes (camera frame)
    confidence: float  # 0..1
    segments: int  # line segments used
    support_px: tuple[float, float, float]  # trusted inlier length of (horizontal 0, vertical, horizontal 1)
    seconds: float
    warnings: tuple[str, ...] = field(default_factory=tuple)
    # (mid x, mid y, length, axis) per segment (analysis pixels; axis 0 / 2 horizontal, 1 vertical, -1 none)
    edges: tuple[tuple[float, float, float, int], ...] = ()

    @property
    def pitch_deg(self) -> float | None:
        if self.up is None:
            return None
        return math.degrees(math.atan2(-self.up[2], self.up[1]))

    @property
    def roll_deg(self) -> float | None:
        if self.up is None:
            return None
        return math.degrees(math.asin(max(-1.0, min(1.0, self.up[0]))))

    def record(self, sx: float = 1.0) -> dict[str, Any]:
        """The scene@1 `camera.calibration` entry (`sx`: full-resolution pixels per analysis pixel)."""
        out: dict[str, Any] = {
            "method": "vanishing-points", "found": self.found, "confidence": round(self.confidence, 3),
            "focal_from_lines": self.focal_px is not None, "segments": self.segments,
            "support_px": [round(s * sx, 1) for s in self.support_px], "seconds": round(self.seconds, 4),
        }
        if self.focal_px is not None:
            out["focal_px_lines"] = round(self.focal_px * sx, 3)
        if self.up is not None:
            out["up_camera"] = [round(x, 6) for x in self.up]
            out["horizontal_axes_camera"] = [[round(x, 6) for x in h] for h in self.horizontals]
        return out


def _semantic_points(labels: np.ndarray | None, roles: list[str] | None, shape: tuple[int, int]
                     ) -> tuple[segments.TrustMap | None, np.ndarray | None, np.ndarray | None]:
    """(trust map, sky points, ground points) from the labels (analysis pixels), or Nones."""
    if labels is None or roles is None:
        return None, None, None
    lab = np.asarray(labels)
    trust = segments.TrustMap(lab, tuple(roles))
    role_arr = np.array(list(roles) + [""])
    st = max(1, round(SEMANTIC_STRIDE_PX * lab.shape[0] / shape[0]))
    sub = lab[::st, ::st]
    rr = role_arr[np.where((sub >= 0) & (sub < len(roles)), sub, len(roles))]
    rows, cols = np.mgrid[0:lab.shape[0]:st, 0:lab.shape[1]:st]
    sy, sx = shape[0] / lab.shape[0], shape[1] / lab.shape[1]
    pts = np.column_stack([(cols.ravel() + 0.5) * sx, (rows.ravel() + 0.5) * sy])
    flat = rr.ravel()
    return trust, pts[flat == "sky"], pts[np.isin(flat, ("ground", "water"))]


@dataclass(frozen=True)
class Lines:
    """What the estimate needs of a photo whatever the focal: its weighted segments and where its sky
    and ground are (analysis pixels). Kept by the caller for a new focal (a typed FOV)."""

    segments: segments.Segments
    sky: np.ndarray | None
    ground: np.ndarray | None
    shape: tuple[int, int]
    candidates: manhattan.Candidates | None = None  # the vanishing points' search (None: too few segments)


def _detect_scale(h: int, w: int) -> float:
    return min(1.0, math.sqrt(segments.DETECT_PIXELS / max(h * w, 1)))


def photo_lines(rgb: np.ndarray, labels: np.ndarray | None = None, roles: list[str] | None = None) -> Lines:
    """LSD segments of the photo weighted by the trust of their class, with the sky and ground samples
    and the vanishing point candidates (none of it depends on the focal length)."""
    h, w = int(rgb.shape[0]), int(rgb.shape[1])
    trust, sky, ground = _semantic_points(labels, roles, (h, w))
    seg = segments.detect(rgb, trust)
    try:
        found = manhattan.find_candidates(seg, w, h, detect_scale=_detect_scale(h, w))
    except (np.linalg.LinAlgError, ValueError):  # degenerate: estimate_camera searches again and says why
        found = None
    return Lines(seg, sky, ground, (h, w), found)


def estimate_camera(rgb: np.ndarray, prior_focal_px: float, *, labels: np.ndarray | None = None,
                    roles: list[str] | None = None, focal_known: bool = False,
                    lines: Lines | None = None) -> CameraEstimate:
    """The camera of an RGB photo (analysis resolution, principal point at its centre).

    `prior_focal_px`: the focal the caller has (user, EXIF or the default); `focal_known`: it is the
    user's or EXIF's, so the lines only give the orientation. `labels` (class ids of the photo, any
    resolution of the same aspect) with each id's `roles` weight the segments and check the horizon;
    `lines`: photo_lines of the same photo and labels, made earlier (then `labels` are not needed)."""
    t0 = time.perf_counter()
    h, w = int(rgb.shape[0]), int(rgb.shape[1])
    if lines is None or lines.shape != (h, w):  # made here: their time is in this estimate's
        lines = photo_lines(rgb, labels, roles)
    seg, sky, ground = lines.segments, lines.sky, lines.ground
    scale = _detect_scale(h, w)
    none = CameraEstimate(False, None, None, (), 0.0, len(seg), (0.0, 0.0, 0.0), 0.0)
    if len(seg) < 4:
        return _done(none, t0, f"camera: too few straight lines ({len(seg)} segments) for vanishing points")
    try:
        frame = manhattan.estimate(seg, w, h, prior_focal_px, detect_scale=scale, fixed_focal=focal_known,
                                   sky=sky, ground=ground, found=lines.candidates)
    except (np.linalg.LinAlgError, ValueError) as exc:  # degenerate geometry: keep the prior
        return _done(none, t0, f"camera: vanishing points failed ({exc})")
    diag = math.hypot(w, h)
    if frame is None or not np.isfinite(frame.axes).all() or not math.isfinite(frame.focal_px):
        return _done(none, t0, "camera: no vertical vanishing point consistent with the sky and ground")
    n_vert, sup_vert = frame.segments_per_axis[1], frame.support_px[1]
    confidence = float(min(1.0, n_vert / (2 * MIN_VERTICAL_SEGMENTS)) * min(1.0, sup_vert / (2 * MIN_VERTICAL_SUPPORT * diag)))
    axes = _CV_TO_ENGINE @ frame.axes  # columns: horizontal 0, vertical, horizontal 1 (engine frame)
    up = axes[:, 1] * (1.0 if axes[1, 1] > 0 else -1.0)
    horizontals = tuple((float(axes[0, k]), float(axes[1, k]), float(axes[2, k])) for k in (0, 2))
    est = CameraEstimate(
        found=n_vert >= MIN_VERTICAL_SEGMENTS and sup_vert >= MIN_VERTICAL_SUPPORT * diag,
        focal_px=float(frame.focal_px) if frame.focal_from_lines else None,
        up=(float(up[0]), float(up[1]), float(up[2])), horizontals=horizontals, confidence=confidence,
        segments=len(seg), support_px=frame.support_px, seconds=0.0,
        edges=tuple((float((x1 + x2) / 2), float((y1 + y2) / 2), float(math.hypot(x2 - x1, y2 - y1)), int(a))
                    for (x1, y1, x2, y2), a in zip(seg.xy, frame.assignment, strict=True)))
    if not est.found:  # nothing of it is used: neither the orientation nor the focal
        est = replace(est, focal_px=None)
        return _done(est, t0, f"camera: too little vertical structure ({n_vert} segments): pitch and roll "
                              "from the ground instead")
    return _done(est, t0, None)


def _done(est: CameraEstimate, t0: float, warning: str | None) -> CameraEstimate:
    return replace(est, seconds=time.perf_counter() - t0, warnings=(warning,) if warning else ())
