"""A scripted stand-in for the inference server, run by tests/test_panel.py through the panel's real
QProcess (as `<python> panel_fake_server.py -m inference_server`; the extra words are ignored).

$PANEL_FAKE_STARTS names a file that gets one line per start; $PANEL_FAKE_REQUESTS (optional) one JSON
line per job request received. Jobs are answered with tests/data/example_scene.json whose camera is what
the engine would make of the request's camera fields, as docs/PROTOCOL.md has them: `fov_deg` or
`focal_px` (focal_source "user"), `options.camera_height_m` (the camera's height), `options.ignore_exif`;
without them the camera "from the photo's lines" (focal_source and orientation_source
"vanishing-points", a `calibration` entry consistent with the camera's rotation). Request fields are
checked as the server checks them (unknown option, a field of view outside (1, 179) degrees, a
non-positive focal or camera height: a `bad_request` error). $PANEL_FAKE_MODELS (optional): the JSON of
the `models` listing its `hello` reply gives (default: no models, no defaults). $PANEL_FAKE_MODE:
- crash_first: the first start writes a line to stderr and exits with code 3 on its first job; later
  starts answer jobs as above;
- deaf: answers hello, sends one progress event per job and then ignores everything (cancel included).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent / "data" / "example_scene.json"
OPTIONS = {"min_area_px", "color_stat", "depth_kind", "camera_height_m", "shapes_table", "max_pixels",
           "ignore_exif"}


def _rotation(rotate: list[float]) -> list[list[float]]:
    """R = Rz Ry Rx (degrees, Maya xyz), camera to world."""
    rx, ry, rz = (math.radians(a) for a in rotate)
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    return [[cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
            [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
            [-sy, cy * sx, cy * cx]]


def check(msg: dict) -> str | None:
    """The server's checks of the camera fields: an error line, or None."""
    options = msg.get("options") or {}
    unknown = set(options) - OPTIONS
    if unknown:
        return f"unknown option(s): {', '.join(sorted(unknown))}"
    fov = msg.get("fov_deg")
    if fov is not None and not (isinstance(fov, (int, float)) and 1.0 < fov < 179.0):
        return f"'fov_deg' must be between 1 and 179 degrees (exclusive), got {fov}"
    focal = msg.get("focal_px")
    if focal is not None and not (isinstance(focal, (int, float)) and focal > 0):
        return "'focal_px' must be a positive number"
    height = options.get("camera_height_m")
    if height is not None and not (isinstance(height, (int, float)) and 0 < height <= 1000):
        return f"option 'camera_height_m' must be more than 0 and at most 1000 m, got {height}"
    if "ignore_exif" in options and not isinstance(options["ignore_exif"], bool):
        return "option 'ignore_exif' must be bool"
    return None


def scene_for(msg: dict) -> dict:
    scene = json.loads(EXAMPLE.read_text())
    cam, options = scene["camera"], msg.get("options") or {}
    width = cam["width"]
    if msg.get("fov_deg") is not None or msg.get("focal_px") is not None:
        focal = msg.get("focal_px") or width / (2 * math.tan(math.radians(msg["fov_deg"]) / 2))
        cam.update(focal_px=round(focal, 3), focal_source="user", orientation_source="ground",
                   focal_length_mm=round(focal * cam["horizontal_aperture_mm"] / width, 4),
                   fov_horizontal_deg=round(math.degrees(2 * math.atan(width / (2 * focal))), 4))
    else:  # the photo's lines
        focal = 1200.0
        r = _rotation(cam["rotate"])
        cam.update(focal_px=focal, focal_source="vanishing-points", orientation_source="vanishing-points",
                   focal_length_mm=round(focal * cam["horizontal_aperture_mm"] / width, 4),
                   fov_horizontal_deg=round(math.degrees(2 * math.atan(width / (2 * focal))), 4),
                   calibration={"method": "vanishing-points", "found": True, "confidence": 0.8,
                                "focal_from_lines": True, "segments": 120, "up_camera": r[1],
                                "horizontal_axes_camera": [r[0], r[2]]})
    if options.get("camera_height_m") is not None:
        cam["translate"][1] = options["camera_height_m"]
        scene["ground"]["camera_height_m"] = options["camera_height_m"]
    scene["fake_request"] = {k: msg.get(k) for k in ("fov_deg", "focal_px", "options")}
    return scene


def send(msg: dict) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main() -> int:
    mode = os.environ.get("PANEL_FAKE_MODE", "")
    counter = Path(os.environ["PANEL_FAKE_STARTS"])
    with counter.open("a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()}\n")
    starts = len(counter.read_text().splitlines())
    log = os.environ.get("PANEL_FAKE_REQUESTS")
    for line in sys.stdin:
        msg = json.loads(line)
        kind, mid = msg.get("type"), msg.get("id")
        if log and kind in ("analyze", "regenerate"):
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(msg) + "\n")
        if kind == "hello":
            models = json.loads(os.environ.get("PANEL_FAKE_MODELS") or '{"defaults": {}, "models": []}')
            send({"type": "hello", "id": mid, "protocol": 1, "models": models})
        elif kind in ("analyze", "regenerate"):
            if mode == "crash_first" and starts == 1:
                sys.stderr.write("fatal: simulated crash in the segmentation network\n")
                sys.stderr.flush()
                return 3
            send({"type": "progress", "id": mid, "stage": "inference", "fraction": 0.25})
            if mode == "deaf":
                continue
            problem = check(msg)
            if problem:
                send({"type": "error", "id": mid, "code": "bad_request", "message": problem})
                continue
            send({"type": "result", "id": mid, "scene": scene_for(msg), "files": {},
                  "cached": kind == "regenerate", "photo_sha256": "0" * 64})
        elif kind == "shutdown":
            send({"type": "bye", "id": mid})
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
