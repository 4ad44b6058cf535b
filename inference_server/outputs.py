"""The files of one network output, written alike by `img2maya analyze` and the server (docs/PROTOCOL.md).

`NETWORK_FILES` (key -> file name; the keys are the server's `files` keys):

* ``preview.png``: the labels coloured over the photo (`class_colours`: a fixed colour per class id);
* ``labels.png``: class ids, 8-bit when the label set has at most 256 classes, else 16-bit, and
  ``label_names.txt``: line k = the name of id k. The pair is what `img2maya scene --labels L
  --label-names N` takes back;
* ``confidence.png``: 8-bit, 255 = the network's probability 1 for its class (not written without one);
* ``depth.npy``: float32, the depth network's map (NaN = no depth, e.g. sky), ``depth_kind.txt`` its
  kind ("relative", "metric" or "disparity": `scene --depth-kind`), and ``depth_preview.png``: 8-bit,
  near = bright (none of the three without depth).

Everything is at the analysed resolution unless `full_size` is given (`analyze`: the photo's full size;
labels nearest neighbour, confidence and depth bilinear); the previews always are. Every file is written
atomically (inference_server.scene.atomic_write_bytes). numpy and Pillow are imported on first use.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from .inference.types import DepthMap, Segmentation

NETWORK_FILES: dict[str, str] = {
    "preview": "preview.png", "labels": "labels.png", "label_names": "label_names.txt",
    "confidence": "confidence.png", "depth": "depth.npy", "depth_kind": "depth_kind.txt",
    "depth_preview": "depth_preview.png"}
_DEPTH_KEYS = ("depth", "depth_kind", "depth_preview")


def network_paths(out_dir: Path, seg: Segmentation, depth: DepthMap | None) -> dict[str, str | None]:
    """Key -> path of every file `write_network_files` writes for this output (None: not written)."""
    paths: dict[str, str | None] = {k: str(out_dir / name) for k, name in NETWORK_FILES.items()}
    if seg.confidence is None:
        paths["confidence"] = None
    if depth is None:
        for k in _DEPTH_KEYS:
            paths[k] = None
    return paths


def write_network_files(out_dir: Path, rgb: np.ndarray, seg: Segmentation, depth: DepthMap | None, *,
                        full_size: tuple[int, int] | None = None) -> dict[str, str | None]:
    """Write the files of `network_paths` into `out_dir` (made when missing); returns their paths.

    `rgb` is the analysed photo (the preview's background), `seg` and `depth` at its resolution;
    `full_size` (width, height): labels, confidence and depth are written at that size instead."""
    from .scene import atomic_write_bytes

    out_dir.mkdir(parents=True, exist_ok=True)
    for key, data in network_file_bytes(rgb, seg, depth, full_size=full_size).items():
        atomic_write_bytes(out_dir / NETWORK_FILES[key], data)
    return network_paths(out_dir, seg, depth)


def network_file_bytes(rgb: np.ndarray, seg: Segmentation, depth: DepthMap | None, *,
                       full_size: tuple[int, int] | None = None) -> dict[str, bytes]:
    """Key -> the bytes of each file (in writing order)."""
    import numpy as np

    labels = np.asarray(seg.labels)
    files = {"preview": png_bytes(preview(rgb, labels))}
    full_labels, conf, d = _at_size(labels, seg.confidence, None if depth is None else depth.depth, full_size)
    files["labels"] = labels_png(full_labels, len(seg.names))
    files["label_names"] = "".join(f"{name}\n" for name in seg.names).encode("utf-8")
    if conf is not None:
        conf = np.nan_to_num(np.asarray(conf, dtype=np.float32), nan=0.0)
        files["confidence"] = png_bytes((np.clip(conf, 0, 1) * 255 + 0.5).astype(np.uint8))
    if depth is not None and d is not None:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(d, dtype=np.float32), allow_pickle=False)
        files["depth"] = buf.getvalue()
        files["depth_kind"] = f"{depth.kind}\n".encode("ascii")
        view = depth_preview(np.asarray(depth.depth, dtype=np.float32), depth.kind)
        files["depth_preview"] = png_bytes(view)
    return files


def class_colours(n: int) -> np.ndarray:
    """(n, 3) uint8 colours, a fixed one per class id (a golden-ratio-like walk of each channel): the
    same class has the same colour on every photo, and ids below 256 never share one."""
    import numpy as np

    k = np.arange(max(n, 0))
    rgb = [(k * 97 + 40) % 256, (k * 57 + 120) % 256, (k * 151 + 200) % 256]
    return np.stack(rgb, axis=1).astype(np.uint8)


def preview(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8: each pixel's class colour averaged with the photo (the colours alone when the
    photo is of another size)."""
    import numpy as np

    n = int(labels.max()) + 1 if labels.size else 1
    # uint16: the sum with the photo cannot overflow
    colours = class_colours(max(n, 1)).astype(np.uint16)[np.clip(labels, 0, None)]
    photo = np.asarray(rgb)
    if photo.shape[:2] == labels.shape:
        colours += photo[:, :, :3]
        colours >>= 1
    return colours.astype(np.uint8)


def depth_preview(d: np.ndarray, kind: str) -> np.ndarray:
    """(h, w) uint8, near = bright (20..255 between the 1st and 99th percentiles), 0 = no depth."""
    import numpy as np

    valid = np.isfinite(d) & (d > 0)
    view = np.zeros(d.shape, np.uint8)
    if valid.any():
        v = d[valid]
        if kind == "disparity":
            v = 1.0 / np.maximum(v, 1e-6)
        sample = v[:: max(1, v.size // 250_000)]  # the percentiles of a preview: a sample will do
        lo, hi = (float(q) for q in np.percentile(sample, (1, 99)))
        near = 1.0 - np.clip((v - lo) / max(hi - lo, 1e-6), 0, 1)
        view[valid] = (near * 235 + 20).astype(np.uint8)
    return view


def labels_png(labels: np.ndarray, n_classes: int) -> bytes:
    """PNG of class ids: 8-bit grey when `n_classes` <= 256, else 16-bit (ids clipped to the label set)."""
    import numpy as np

    from .errors import UserError

    if n_classes > 65536:
        raise UserError(f"{n_classes} classes do not fit a 16-bit label PNG")
    dtype = np.uint8 if n_classes <= 256 else np.uint16
    return png_bytes(np.clip(labels, 0, max(n_classes, 1) - 1).astype(dtype))


def png_bytes(a: Any) -> bytes:
    """A PNG of a uint8 grey (h, w), uint8 RGB (h, w, 3) or uint16 grey (h, w) array (Pillow, zlib level 1:
    these images are read back by programs, and level 6 takes about 4x as long for files ~15 % smaller)."""
    import numpy as np
    from PIL import Image

    a = np.asarray(a)
    if a.dtype not in (np.uint8, np.uint16) or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)) \
            or (a.ndim == 3 and a.dtype != np.uint8) or a.size == 0:
        raise ValueError(f"png_bytes: unsupported array {a.dtype} {a.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _at_size(labels: np.ndarray, conf: np.ndarray | None, depth: np.ndarray | None,
             size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The maps at `size` (width, height): labels nearest neighbour, the float maps bilinear."""
    import numpy as np
    from PIL import Image

    if size is None or labels.shape == (size[1], size[0]):
        return labels, conf, depth
    from .inference.tflite_models import resize_float

    w, h = size
    lab = np.asarray(Image.fromarray(labels.astype(np.int32)).resize((w, h), Image.Resampling.NEAREST))
    return (lab.astype(np.int32), None if conf is None else resize_float(conf, w, h),
            None if depth is None else resize_float(depth, w, h))
