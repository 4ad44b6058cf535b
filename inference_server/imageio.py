"""Safe image input: photos, label images, label names and depth maps.

Everything a user hands us goes through here, so every failure becomes a one-line UserError
naming the file (never a traceback), and nothing is decoded before its size is checked:

- photos: header read first, then a pixel-count limit (decompression bombs), `verify()` and a
  fresh open for the real decode; truncated or corrupt files are refused rather than padded
  with grey. EXIF orientation is applied, so every size in a scene is the photo as people see it.
- every Pillow mode becomes RGB uint8. Transparent pixels are composited on WHITE (what a
  viewer shows); 16-bit grey is scaled to 8 bits; CMYK/YCbCr/LAB are converted by Pillow.
  ICC profiles are not applied (the networks were trained on untagged sRGB-ish photos).
- huge photos are analysed downscaled to at most `max_analysis_pixels` (JPEG decodes at
  1/2..1/8 scale through `draft`, so a 50 MP photo never exists at full size in memory);
  `Photo.scale` = analysed / full and the scene reports full-resolution numbers.
- labels/depth must be at the photo's full (oriented) size or at the analysed size; full-size
  maps are resampled nearest-neighbour to the analysed size (ids are never blended).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError

DEFAULT_MAX_ANALYSIS_PIXELS = 4_000_000
DEFAULT_MAX_PIXELS = 200_000_000
MAX_PIXELS_ENV = "IMG2MAYA_MAX_PIXELS"  # overrides the decompression-bomb limit (pixels)
DEFAULT_DEPTH_PNG_SCALE = 256.0  # 16-bit PNG depth: metres = value / scale (KITTI convention)
DEPTH_SUFFIXES = (".npy", ".npz", ".png", ".exr", ".pfm", ".tif", ".tiff")
LABEL_SETS_DIR = Path(__file__).with_name("data")

# EXIF tags (Exif IFD 0x8769)
_EXIF_IFD = 0x8769
_FOCAL_LENGTH = 0x920A
_FOCAL_35MM = 0xA405
_FOCAL_PLANE_XRES = 0xA20E
_FOCAL_PLANE_YRES = 0xA20F
_FOCAL_PLANE_UNIT = 0xA210
_PIXEL_X_DIM = 0xA002
_PIXEL_Y_DIM = 0xA003
_ORIENTATION = 0x0112
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # EXIF: 2 inch, 3 cm (4 mm, 5 um: in the wild)


@dataclass
class Photo:
    """A decoded photo, EXIF-oriented, possibly downscaled for analysis (see `scale`)."""

    path: str
    rgb: np.ndarray  # (h, w, 3) uint8 at analysis resolution
    full_width: int  # after EXIF orientation
    full_height: int
    scale: float  # analysed / full (1.0 when not downscaled)
    sha256: str  # of the file bytes
    exif_focal_mm: float | None = None
    exif_focal_35mm: float | None = None
    exif_sensor_width_mm: float | None = None  # sensor extent along the oriented image's width

    @property
    def shape(self) -> tuple[int, int]:
        """(h, w) of the analysed image."""
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])

    @property
    def full_shape(self) -> tuple[int, int]:
        """(h, w) of the photo at full resolution, oriented."""
        return self.full_height, self.full_width


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, streamed (a 50 MP photo is never read into memory twice)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _max_pixels(explicit: int | None) -> int:
    if explicit is not None:
        return int(explicit)
    env = os.environ.get(MAX_PIXELS_ENV)
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise UserError(f"{MAX_PIXELS_ENV} must be a number of pixels, got {env!r}") from None
    return DEFAULT_MAX_PIXELS


def _check_file(path: str | os.PathLike[str], what: str) -> Path:
    """A readable regular file, else a UserError saying why (a symlink loop, a broken link, ...)."""
    from .userpaths import check_input_file

    return check_input_file(path, what)


def _open_image(p: Path, what: str, max_pixels: int) -> Any:
    """Open, check the pixel count from the header, verify, reopen: an Image ready to load.

    Our `max_pixels` is the one limit: Pillow's own bomb check (an error at twice
    Image.MAX_IMAGE_PIXELS) is raised to match it when lower, and its warning is silenced.
    """
    from PIL import Image

    def fail(reason: str) -> UserError:
        return UserError(f"cannot read {what} {p}: {reason}")

    def too_big(size: str) -> UserError:
        return fail(f"{size} MP is over the {_mp(max_pixels)} MP limit "
                    f"(a decompression bomb or a giant scan; raise it with {MAX_PIXELS_ENV})")

    if Image.MAX_IMAGE_PIXELS is not None and 2 * Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels // 2 + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bomb warnings (our limit rules) and broken-tag chatter: not for users
        try:
            with Image.open(p) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise too_big(f"{w}x{h} = {_mp(w * h)}")
                im.verify()
            im = Image.open(p)
        except UserError:
            raise
        except Image.DecompressionBombError as exc:  # Pillow checks the header size inside open()
            m = re.search(r"\((\d+) pixels\)", str(exc))
            raise too_big(_mp(int(m.group(1))) if m else "the image") from None
        except Image.UnidentifiedImageError:
            raise fail("not an image file Pillow can read (JPEG, PNG, TIFF, WebP, BMP, ...)") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
            raise fail(f"corrupt or truncated ({_one_line(exc)})") from None
    return im


def _decode(im: Any, p: Path, what: str) -> None:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bomb warnings (our limit rules) and broken-tag chatter: not for users
        try:
            im.load()
        except Image.DecompressionBombError as exc:
            raise UserError(f"cannot read {what} {p}: {_one_line(exc)}") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
            raise UserError(f"cannot read {what} {p}: corrupt or truncated ({_one_line(exc)})") from None
        except MemoryError:
            raise UserError(f"cannot read {what} {p}: out of memory while decoding") from None


def _mp(pixels: int) -> str:
    """Megapixels for a message: 0.01, 4.2, 200, 10000."""
    mp = pixels / 1e6
    return f"{mp:.0f}" if mp >= 10 else f"{mp:.2g}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _rational(v: Any) -> float | None:
    try:
        if isinstance(v, tuple) and len(v) == 2:
            x = float(v[0]) / float(v[1])
        else:
            x = float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def _exif_focal(im: Any, stored_size: tuple[int, int], orientation: int) -> tuple[float | None, float | None,
                                                                                  float | None]:
    """(focal mm, 35 mm-equivalent focal, sensor extent along the ORIENTED width in mm).

    FocalPlaneX/YResolution are pixels per unit on the sensor as stored (before rotation), for an
    image of PixelX/YDimension pixels (the size when the camera wrote it, which a later resize
    changes). For an orientation that swaps axes (5..8) the oriented width runs along the
    sensor's Y axis, so the sensor width is PixelYDimension / YResolution.
    """
    try:
        exif = im.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:  # noqa: BLE001 - broken EXIF is common and never fatal
        return None, None, None
    focal = _rational(sub.get(_FOCAL_LENGTH))
    f35 = _rational(sub.get(_FOCAL_35MM))
    sensor = None
    unit = _UNIT_MM.get(int(sub.get(_FOCAL_PLANE_UNIT, 2) or 2))
    swapped = orientation in (5, 6, 7, 8)
    res = _rational(sub.get(_FOCAL_PLANE_YRES if swapped else _FOCAL_PLANE_XRES))
    if res is None and swapped:
        res = _rational(sub.get(_FOCAL_PLANE_XRES))  # square sensor pixels
    if unit and res:
        dims = (_rational(sub.get(_PIXEL_X_DIM)), _rational(sub.get(_PIXEL_Y_DIM)))
        px = dims[1 if swapped else 0] or float(stored_size[1 if swapped else 0])
        width_mm = px / res * unit
        if 1.0 <= width_mm <= 100.0:  # a phone sensor .. medium format; anything else is a bogus tag
            sensor = width_mm
    if focal is not None and not 0.5 <= focal <= 5000:
        focal = None
    if f35 is not None and not 5 <= f35 <= 5000:
        f35 = None
    return focal, f35, sensor


def _to_rgb(im: Any) -> Any:
    """Any Pillow mode -> an RGB image (transparent pixels composited on white)."""
    from PIL import Image

    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode == "La":  # premultiplied grey + alpha: Pillow converts it to LA only
        im, mode = im.convert("LA"), "LA"
    if mode in ("PA", "LA", "RGBa", "RGBA"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        a = np.asarray(im, dtype=np.float64)
        top = float(np.nanmax(a)) if a.size else 0.0
        if mode == "F" and top <= 1.0:
            a = a * 255.0
        elif top > 255.0:
            a = a / (257.0 if top <= 65535.0 else top / 255.0)
        g = np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8)
        return Image.fromarray(g, "L").convert("RGB")
    return im.convert("RGB")  # 1, L, CMYK, YCbCr, LAB, HSV, RGBX


def analysis_size(width: int, height: int, max_analysis_pixels: int) -> tuple[int, int]:
    """(w, h) to analyse: the same aspect, at most `max_analysis_pixels` pixels."""
    if max_analysis_pixels <= 0 or width * height <= max_analysis_pixels:
        return width, height
    s = math.sqrt(max_analysis_pixels / (width * height))
    return max(1, int(width * s)), max(1, int(height * s))


def load_photo(path: str | os.PathLike[str], max_analysis_pixels: int = DEFAULT_MAX_ANALYSIS_PIXELS,
               max_pixels: int | None = None) -> Photo:
    """Decode a photo safely (see the module doc). UserError with one line for anything wrong.

    Pillow's warnings (corrupt EXIF, odd tags) are silenced: a broken tag is ignored, not printed.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _load_photo(path, max_analysis_pixels, max_pixels)


def _load_photo(path: str | os.PathLike[str], max_analysis_pixels: int, max_pixels: int | None) -> Photo:
    from PIL import Image, ImageOps

    p = _check_file(path, "photo")
    limit = _max_pixels(max_pixels)
    im = _open_image(p, "photo", limit)
    try:
        stored = im.size
        try:
            orientation = int(im.getexif().get(_ORIENTATION, 1) or 1)
        except Exception:  # noqa: BLE001
            orientation = 1
        focal, f35, sensor = _exif_focal(im, stored, orientation)
        swapped = orientation in (5, 6, 7, 8)
        full_w, full_h = (stored[1], stored[0]) if swapped else stored
        aw, ah = analysis_size(full_w, full_h, max_analysis_pixels)
        if (aw, ah) != (full_w, full_h) and im.format == "JPEG":
            im.draft(None, (ah, aw) if swapped else (aw, ah))  # decode at 1/2..1/8, still >= target
        _decode(im, p, "photo")
        try:
            oriented = ImageOps.exif_transpose(im)
        except Exception:  # noqa: BLE001 - a broken orientation tag: use the pixels as stored
            oriented = im
        try:
            rgb = _to_rgb(oriented)
        except (ValueError, OSError) as exc:
            raise UserError(f"cannot read photo {p}: pixel mode {oriented.mode} ({_one_line(exc)})") from None
        if rgb.size != (aw, ah):
            rgb = rgb.resize((aw, ah), Image.Resampling.LANCZOS, reducing_gap=2.0)
        arr = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    finally:
        im.close()
    if arr.ndim != 3 or arr.shape[2] != 3:  # pragma: no cover - _to_rgb guarantees it
        raise UserError(f"cannot read photo {p}: unexpected pixel layout {arr.shape}")
    return Photo(path=str(path), rgb=arr, full_width=int(full_w), full_height=int(full_h),
                 scale=aw / full_w, sha256=sha256_file(p), exif_focal_mm=focal, exif_focal_35mm=f35,
                 exif_sensor_width_mm=sensor)


def _fit_shape(a: np.ndarray, shape: tuple[int, int], full_shape: tuple[int, int] | None, what: str,
               p: Path) -> np.ndarray:
    """`a` at the analysed shape: as is, or nearest-neighbour from the full shape. Else UserError."""
    shape = (int(shape[0]), int(shape[1]))
    if a.shape == shape:
        return a
    if full_shape is not None and a.shape == tuple(full_shape):
        rows = np.minimum(((np.arange(shape[0]) + 0.5) * a.shape[0] / shape[0]).astype(np.intp), a.shape[0] - 1)
        cols = np.minimum(((np.arange(shape[1]) + 0.5) * a.shape[1] / shape[1]).astype(np.intp), a.shape[1] - 1)
        return a[rows[:, None], cols[None, :]]
    want = full_shape if full_shape is not None else shape
    hint = ""
    if a.shape == (want[1], want[0]):
        hint = " (rotated? the photo's EXIF orientation is applied: make it match the photo as displayed)"
    raise UserError(f"{what} {p} is {a.shape[1]}x{a.shape[0]} but the photo is {want[1]}x{want[0]}{hint}")


def load_labels(path: str | os.PathLike[str], shape: tuple[int, int],
                full_shape: tuple[int, int] | None = None) -> np.ndarray:
    """(h, w) int32 class ids from a label image (PNG L / P / I;16 / I, or .npy).

    A palette (P) image gives its palette INDEX per pixel, never its colour. `shape` is the
    analysed (h, w); `full_shape` the photo's full oriented (h, w): a label image at full size is
    resampled nearest-neighbour, any other size is a UserError.
    """
    p = _check_file(path, "labels")
    if p.suffix.lower() == ".npy":
        a = _load_npy(p, "labels")
    else:
        im = _open_image(p, "labels", _max_pixels(None))
        try:
            _decode(im, p, "labels")
            mode = im.mode
            if mode in ("RGB", "RGBA"):
                rgb = np.asarray(im)[..., :3]
                if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
                    raise UserError(f"labels {p} is a colour image: save class ids as a single-channel PNG "
                                    "(L, P or 16-bit), one id per pixel")
                a = rgb[..., 0]
            elif mode in ("L", "P", "I", "I;16", "I;16L", "I;16B", "1"):
                a = np.asarray(im)  # P: the palette index
            elif mode in ("LA", "PA"):
                a = np.asarray(im)[..., 0]
            else:
                raise UserError(f"labels {p} has pixel mode {mode}: use a single-channel PNG of class ids")
        finally:
            im.close()
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise UserError(f"labels {p} must be a 2-D image of class ids, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a)):
            raise UserError(f"labels {p} must hold integer class ids")
    return _fit_shape(a.astype(np.int32), shape, full_shape, "labels", p)


def label_sets() -> list[str]:
    """Names of the label sets shipped with the engine (usable as --label-names NAME)."""
    return sorted(f.stem[len("labels_"):] for f in LABEL_SETS_DIR.glob("labels_*.txt"))


def load_names(path: str | os.PathLike[str]) -> list[str]:
    """Class names: line k is the name of id k.

    Also accepted: the name of a shipped label set (e.g. `ade20k150`, see `label_sets()`), and
    ADE20K's objectInfo150 table (a tab-separated header starting `Idx`; id 0 becomes `other`,
    each name its first synonym).
    """
    shipped = LABEL_SETS_DIR / f"labels_{path}.txt"
    if not Path(path).exists() and isinstance(path, str) and shipped.is_file():
        p = shipped
    else:
        p = _check_file(path, "label names")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"label names {p} is not UTF-8 text (one class name per line)") from None
    lines = text.splitlines()
    if lines and lines[0].startswith("Idx") and "\t" in lines[0]:
        col = lines[0].split("\t").index("Name") if "Name" in lines[0].split("\t") else -1
        table: dict[int, str] = {0: "other"}
        for line in lines[1:]:
            cells = line.split("\t")
            if len(cells) > 1 and cells[0].strip().isdigit():
                table[int(cells[0])] = cells[col].split(",")[0].strip()
        names = [table.get(k, f"class_{k}") for k in range(max(table) + 1)]
    else:
        while lines and not lines[-1].strip():
            lines.pop()
        names = [line.strip() or f"class_{k}" for k, line in enumerate(lines)]
    if not names:
        raise UserError(f"label names {p} is empty: write one class name per line (line 1 = id 0)")
    return names


def _load_npy(p: Path, what: str) -> np.ndarray:
    try:
        if p.suffix.lower() == ".npz":
            with np.load(p, allow_pickle=False) as z:
                if not z.files:
                    raise UserError(f"{what} {p} holds no arrays")
                return np.asarray(z[z.files[0]])
        return np.asarray(np.load(p, allow_pickle=False))
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile/numpy raise many types for a broken file
        raise UserError(f"cannot read {what} {p}: {type(exc).__name__}: {_one_line(exc)}") from None


def load_depth(path: str | os.PathLike[str], shape: tuple[int, int], full_shape: tuple[int, int] | None = None,
               *, png_scale: float = DEFAULT_DEPTH_PNG_SCALE) -> np.ndarray:
    """(h, w) float32 depth; NaN where there is none (non-finite or <= 0 in the file).

    .npy, .npz (its first array) or a 16-bit PNG / TIFF (depth = value / `png_scale`; 256 is
    KITTI's convention, use 1000 for millimetres). Sizes as in `load_labels`; full-size maps are
    resampled nearest-neighbour (no blending across depth edges).
    """
    p = _check_file(path, "depth")
    suffix = p.suffix.lower()
    if suffix in (".npy", ".npz"):
        a = _load_npy(p, "depth")
    elif suffix in (".exr", ".pfm"):
        raise UserError(f"depth {p}: {suffix} is not supported; save the depth as .npy (float32 metres)")
    else:
        if not (png_scale > 0 and math.isfinite(png_scale)):
            raise UserError(f"depth scale must be positive, got {png_scale}")
        im = _open_image(p, "depth", _max_pixels(None))
        try:
            _decode(im, p, "depth")
            if im.mode not in ("I", "I;16", "I;16L", "I;16B", "F", "L"):
                raise UserError(f"depth {p} has pixel mode {im.mode}: use a single-channel 16-bit PNG or .npy")
            a = np.asarray(im, dtype=np.float64) / png_scale
        finally:
            im.close()
    a = np.asarray(a)
    a = np.squeeze(a) if a.ndim == 3 and 1 in (a.shape[0], a.shape[2]) else a
    if a.ndim != 2:
        raise UserError(f"depth {p} must be a 2-D array, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.number) and not np.iscomplexobj(a)):
        raise UserError(f"depth {p} must hold numbers, got dtype {a.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, i.e. no depth
        d = _fit_shape(a, shape, full_shape, "depth", p).astype(np.float32)
        d[~(np.isfinite(d) & (d > 0))] = np.nan
    return d


def is_depth_file(value: str) -> bool:
    """Whether a `--depth` value names a file (it exists or has a depth-file suffix), not a model id."""
    return os.path.exists(value) or Path(value).suffix.lower() in DEPTH_SUFFIXES
