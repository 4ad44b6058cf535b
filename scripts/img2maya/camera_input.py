"""Camera values a user types (panel fields, the `img2maya` command's flags): a horizontal field of view
in degrees or a focal length in mm (35 mm film back: 36 mm horizontal aperture), a camera height in
metres and "ignore EXIF". Checked here with one-line errors, with the engine's limits
(inference_server/limits.py): a field of view strictly inside (1, 179) degrees (a focal length is held
to it through the film back), a camera height in (0, 1000] m.

What goes on the wire (docs/PROTOCOL.md): `fov_deg` (a focal length in mm is sent as the field of view
it gives: `fov = 2 atan(36 / (2 f))`, exact and independent of the photo's width), and the analysis
options `camera_height_m` and `ignore_exif` (sent only when on, so an older server is not sent a key it
does not know). An empty field is "automatic": nothing is sent and the engine estimates (EXIF, the
photo's vanishing points, the ground, the 60 degree default).

Pure standard library, Python 3.7+.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

FOV_MIN_DEG = 1.0  # exclusive bounds (inference_server/limits.py)
FOV_MAX_DEG = 179.0
CAMERA_HEIGHT_MAX_M = 1000.0  # (0, CAMERA_HEIGHT_MAX_M]
FILM_BACK_MM = 36.0  # horizontal aperture of the 35 mm film back the scene's camera uses


class CameraInputError(ValueError):
    """A typed camera value that cannot be used; the message is one line for the user."""


def fov_from_focal_mm(focal_mm: float, film_back_mm: float = FILM_BACK_MM) -> float:
    """Horizontal field of view (degrees) of a focal length in mm on the film back."""
    return math.degrees(2.0 * math.atan(film_back_mm / (2.0 * focal_mm)))


def focal_mm_from_fov(fov_deg: float, film_back_mm: float = FILM_BACK_MM) -> float:
    """Focal length in mm on the film back of a horizontal field of view in degrees."""
    return film_back_mm / (2.0 * math.tan(math.radians(fov_deg) / 2.0))


def parse_number(value: Any, what: str) -> float | None:
    """A typed number: None for an empty field (automatic), a float otherwise (a decimal comma is read
    as a point); CameraInputError when it is not a number."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise CameraInputError(f"{what}: not a number: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        return float(text)
    except (ValueError, OverflowError):
        raise CameraInputError(f"{what}: not a number: {str(value).strip()[:40]!r}") from None


def check_fov(fov_deg: float, what: str = "field of view") -> float:
    if not (math.isfinite(fov_deg) and FOV_MIN_DEG < fov_deg < FOV_MAX_DEG):
        raise CameraInputError(f"{what} must be between {FOV_MIN_DEG:g} and {FOV_MAX_DEG:g} degrees "
                               f"(exclusive), got {fov_deg:g}")
    return float(fov_deg)


def check_focal_mm(focal_mm: float, what: str = "focal length") -> float:
    """A positive, finite focal length (mm) whose field of view on the film back is inside the limits."""
    if not (math.isfinite(focal_mm) and focal_mm > 0):
        raise CameraInputError(f"{what} must be a positive number of mm, got {focal_mm:g}")
    fov = fov_from_focal_mm(focal_mm)
    if not FOV_MIN_DEG < fov < FOV_MAX_DEG:
        lo, hi = focal_mm_from_fov(FOV_MAX_DEG), focal_mm_from_fov(FOV_MIN_DEG)
        raise CameraInputError(f"{what} {focal_mm:g} mm gives a {fov:.4g} degree field of view on the "
                               f"{FILM_BACK_MM:g} mm film back: it must lie between {lo:.3g} and {hi:.4g} mm "
                               f"(exclusive)")
    return float(focal_mm)


def check_camera_height(height_m: float, what: str = "camera height") -> float:
    if not (math.isfinite(height_m) and 0.0 < height_m <= CAMERA_HEIGHT_MAX_M):
        raise CameraInputError(f"{what} must be more than 0 and at most {CAMERA_HEIGHT_MAX_M:g} m, "
                               f"got {height_m:g}")
    return float(height_m)


@dataclass(frozen=True)
class CameraRequest:
    """Checked camera values; None = automatic."""

    fov_deg: float | None = None  # typed as a field of view
    focal_mm: float | None = None  # typed as a focal length (sent as its field of view)
    camera_height_m: float | None = None
    ignore_exif: bool = False

    @property
    def wire_fov_deg(self) -> float | None:
        """The `fov_deg` request field: the typed one, or the one of the typed focal length."""
        if self.fov_deg is not None:
            return self.fov_deg
        if self.focal_mm is not None:
            return fov_from_focal_mm(self.focal_mm)
        return None

    def fields(self) -> dict[str, Any]:
        """Request fields (`analyze` and `regenerate`): {"fov_deg": ...} or nothing."""
        fov = self.wire_fov_deg
        return {} if fov is None else {"fov_deg": fov}

    def options(self) -> dict[str, Any]:
        """Analysis options: camera_height_m when typed, ignore_exif only when on."""
        out: dict[str, Any] = {}
        if self.camera_height_m is not None:
            out["camera_height_m"] = self.camera_height_m
        if self.ignore_exif:
            out["ignore_exif"] = True
        return out


def camera_request(fov: Any = None, focal_mm: Any = None, camera_height_m: Any = None,
                   ignore_exif: bool = False) -> CameraRequest:
    """Typed values (text or numbers; empty/None = automatic) -> CameraRequest, or CameraInputError with
    one line. A field of view and a focal length together are refused (they say the same thing)."""
    fov_v = parse_number(fov, "field of view")
    focal_v = parse_number(focal_mm, "focal length")
    height_v = parse_number(camera_height_m, "camera height")
    if fov_v is not None:
        check_fov(fov_v)
    if focal_v is not None:
        check_focal_mm(focal_v)
    if fov_v is not None and focal_v is not None:
        raise CameraInputError("give a field of view or a focal length, not both")
    if height_v is not None:
        check_camera_height(height_v)
    return CameraRequest(fov_v, focal_v, height_v, bool(ignore_exif))
