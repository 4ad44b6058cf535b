"""Synthetic inputs for the imageio / pipeline / CLI tests (no tests here).

`street(...)` writes a small photo with its own labels, names and metric depth: sky on top, road
below the horizon with the exact z-depth of a level camera 1.6 m above it, and a red 'car' block
at a constant depth standing on the road.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

NAMES = ["sky", "road", "car"]
CAM_HEIGHT = 1.6
HFOV_DEG = 60.0


@dataclass
class Street:
    photo: Path
    labels: Path
    names: Path
    depth: Path
    rgb: np.ndarray
    label_ids: np.ndarray
    z: np.ndarray


def street_arrays(w: int = 96, h: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb, labels, depth) of the synthetic street at w x h."""
    f = w / (2.0 * np.tan(np.radians(HFOV_DEG) / 2.0))
    cy = h / 2.0
    v = np.arange(h)[:, None] + 0.5 - cy
    labels = np.where(np.broadcast_to(v, (h, w)) > 0, 1, 0).astype(np.uint8)
    with np.errstate(divide="ignore"):
        z = np.where(v > 0, CAM_HEIGHT * f / np.maximum(v, 1e-9), np.inf) * np.ones((1, w))
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[labels == 0] = (120, 170, 230)
    rgb[labels == 1] = (90, 90, 90)
    # the car: its bottom row sits on the road at depth zc
    zc = 6.0
    bottom = int(round(cy + CAM_HEIGHT * f / zc))
    top = bottom - max(4, int(1.5 * f / zc))
    x0, x1 = w // 3, w // 3 + max(6, int(2.0 * f / zc))
    labels[max(top, 0):bottom, x0:x1] = 2
    z[max(top, 0):bottom, x0:x1] = zc
    rgb[labels == 2] = (200, 30, 30)
    return rgb, labels, z.astype(np.float32)


def street(folder: Path, w: int = 96, h: int = 64, name: str = "street") -> Street:
    folder.mkdir(parents=True, exist_ok=True)
    rgb, labels, z = street_arrays(w, h)
    s = Street(folder / f"{name}.png", folder / f"{name}_labels.png", folder / f"{name}_names.txt",
               folder / f"{name}_depth.npy", rgb, labels, z)
    Image.fromarray(rgb).save(s.photo)
    Image.fromarray(labels, "L").save(s.labels)
    s.names.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    np.save(s.depth, z)
    return s


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height (a decompression bomb's header), with one tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def exif_bytes(orientation: int | None = None, focal_mm: float | None = None, focal_35mm: int | None = None,
               plane_res: float | None = None, plane_unit: int | None = None,
               pixel_dims: tuple[int, int] | None = None) -> bytes:
    """EXIF block with the tags the loader reads (orientation in IFD0, the rest in the Exif IFD)."""
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    ifd = exif.get_ifd(0x8769)
    if focal_mm is not None:
        ifd[0x920A] = focal_mm
    if focal_35mm is not None:
        ifd[0xA405] = focal_35mm
    if plane_res is not None:
        ifd[0xA20E] = plane_res
        ifd[0xA20F] = plane_res
    if plane_unit is not None:
        ifd[0xA210] = plane_unit
    if pixel_dims is not None:
        ifd[0xA002], ifd[0xA003] = pixel_dims
    return exif.tobytes()
