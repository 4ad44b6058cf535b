"""Request checks: what a job request may hold (types, ranges, paths), refused before it is queued, and
the fields read from it (recursion, camera, instance model)."""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import UserError


class RequestError(Exception):
    """A request the server refuses, with a machine-readable code (sent as an `error` reply)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
        self.code = code


OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "min_area_px": (int,), "color_stat": (str,), "depth_kind": (str,), "camera_height_m": (int, float),
    "shapes_table": (str,), "max_pixels": (int,), "recursion": (int,), "ignore_exif": (bool,),
    "estimate_camera": (bool,), "camera_height_from_objects": (bool,),
}


def check_job_fields(req: dict[str, Any]) -> None:
    """Reject malformed job requests before queueing them (types, ranges, paths; no file is read)."""
    from ..userpaths import check_folder

    kind = req["type"]
    if kind == "analyze" and not isinstance(req.get("photo"), str):
        raise RequestError("bad_request", "analyze needs 'photo' (a file path)")
    check_path_field(req, "photo")
    if kind == "regenerate" and not any(isinstance(req.get(k), str | int) and not isinstance(req.get(k), bool)
                                        for k in ("photo", "ref", "photo_sha256")):
        raise RequestError("bad_request", "regenerate needs 'photo', 'ref' (a previous request id) "
                                          "or 'photo_sha256'")
    if not isinstance(req.get("supersede", False), bool):
        raise RequestError("bad_request", "'supersede' must be true or false")
    if req.get("look", "color") not in ("color", "projection"):  # applied by the client's builder, echoed
        raise RequestError("bad_request", "'look' must be \"color\" or \"projection\"")
    if "options" in req and req["options"] is not None and not isinstance(req["options"], dict):
        raise RequestError("bad_request", "'options' must be an object")
    if isinstance(req.get("options"), dict):
        check_options_fields(req["options"])
    recursion(req)
    for name in ("focal_px", "fov_deg"):
        num(req, name)
    for name in ("seg_model", "depth_model", "instances_model", "out_dir"):
        if req.get(name) is not None and not isinstance(req[name], str):
            raise RequestError("bad_request", f"'{name}' must be a string")
    check_path_field(req, "out_dir")
    if req.get("out_dir"):
        try:
            check_folder(req["out_dir"], "out_dir")
        except UserError as exc:
            raise RequestError("user_error", str(exc)) from None


def check_options_fields(options: dict[str, Any]) -> None:
    """Types and physical ranges of the known analysis options (unknown keys: the pipeline's make_options)."""
    from ..limits import check_camera_height

    for name, value in options.items():
        types = OPTION_TYPES.get(name)
        if types is None or value is None and name == "shapes_table":
            continue
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            wanted = " or ".join(t.__name__ for t in types)
            got = json.dumps(value)[:60]
            raise RequestError("bad_request", f"option '{name}' must be {wanted}, got {got}")
    if "camera_height_m" in options:
        try:
            check_camera_height(options["camera_height_m"], "option 'camera_height_m'")
        except UserError as exc:
            raise RequestError("bad_request", str(exc)) from None
    for name in ("min_area_px", "max_pixels"):
        if name in options and options[name] < 0:
            raise RequestError("bad_request", f"option '{name}' must be >= 0, got {options[name]}")
    check_path_field(options, "shapes_table")


def check_path_field(req: dict[str, Any], name: str) -> None:
    value = req.get(name)
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise RequestError("bad_request", f"'{name}' must be a non-empty string (a path)")
    if "\x00" in value or len(value) > 4096:
        raise RequestError("bad_request",
                           f"'{name}' is not a valid path (a NUL character or over 4096 characters)")


def check_focal(photo: Any, req: dict[str, Any]) -> None:
    """A `focal_px` must give a field of view inside limits.FOV_* on this photo (UserError)."""
    focal = num(req, "focal_px")
    if focal is not None:
        from ..limits import check_focal_px

        check_focal_px(focal, photo.full_width, "'focal_px'")


def recursion(req: dict[str, Any]) -> int:
    """The request's `recursion` (else its options'), 0..5."""
    value = req.get("recursion", (req.get("options") or {}).get("recursion", 0)
                    if isinstance(req.get("options"), dict) else 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
        raise RequestError("bad_request", "'recursion' must be an integer 0..5")
    return value


def num(req: dict[str, Any], name: str) -> float | None:
    """A positive number field (`focal_px`, `fov_deg` in limits.FOV_*), or None when absent."""
    value = req.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise RequestError("bad_request", f"'{name}' must be a positive number")
    try:
        v = float(value)
    except OverflowError:
        raise RequestError("bad_request", f"'{name}' is out of range") from None
    if name == "fov_deg":
        from ..limits import check_fov_deg

        try:
            check_fov_deg(v, "'fov_deg'")
        except UserError as exc:
            raise RequestError("bad_request", str(exc)) from None
    elif not math.isfinite(v):
        raise RequestError("bad_request", f"'{name}' must be a finite number")
    return v


def networks_camera(req: dict[str, Any]) -> tuple[float | None, float | None]:
    """(focal_px, fov_deg) the networks are given: the request's, else with options.ignore_exif the
    default field of view (a depth model's metric scale follows the focal; EXIF is not to be trusted)."""
    focal_px, fov_deg = num(req, "focal_px"), num(req, "fov_deg")
    if focal_px is None and fov_deg is None and (req.get("options") or {}).get("ignore_exif") is True:
        from ..analysis.camera import DEFAULT_HFOV_DEG

        fov_deg = DEFAULT_HFOV_DEG
    return focal_px, fov_deg


def explicit_instances(req: dict[str, Any]) -> bool:
    """Whether the request names its instance model (its problems are then errors, not warnings)."""
    value = req.get("instances_model")
    return isinstance(value, str) and value.lower() not in ("", "none", "auto", "default")
