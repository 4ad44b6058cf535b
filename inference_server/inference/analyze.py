"""`img2maya analyze`: run the networks on one photo and write their raw outputs at the photo's resolution.

Outputs (in ``out_dir``, each written atomically):

* ``labels.png``: class ids (8-bit grey when every id < 256, else 16-bit), line k of ``label_names.txt``
  names id k. This pair is exactly what ``img2maya scene --labels/--names`` accepts back.
* ``depth.npy``: float32, larger = farther (NaN = no depth, e.g. sky); ``depth_kind.txt`` says
  "relative" or "metric".
* ``confidence.npy``: float32 softmax probability of each pixel's class (absent for models without scores).
* ``preview.png``: photo | colour-coded segments | depth colour map.

The networks see the photo at the engine's analysis resolution; labels are scaled back to the full
(EXIF-oriented) size by nearest neighbour, depth and confidence bilinearly.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from inference_server.errors import UserError
from inference_server.inference import api
from inference_server.inference.tflite_models import resize_float


def _png_bytes(a: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def labels_png(labels: np.ndarray, n_classes: int) -> bytes:
    """PNG of class ids: 8-bit when they fit, else 16-bit grey."""
    if n_classes > 65536:
        raise UserError(f"{n_classes} classes do not fit a 16-bit label PNG")
    dtype = np.uint8 if n_classes <= 256 else np.uint16
    return _png_bytes(np.clip(labels, 0, n_classes - 1).astype(dtype))


def _to_full(labels: np.ndarray, conf: np.ndarray | None, depth: np.ndarray | None, w: int, h: int
             ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    from PIL import Image

    if labels.shape == (h, w):
        return labels, conf, depth
    lab = np.asarray(Image.fromarray(labels.astype(np.int32), mode="I").resize((w, h), Image.Resampling.NEAREST)).astype(np.int32)
    conf = None if conf is None else resize_float(conf, w, h)
    depth = None if depth is None else resize_float(depth, w, h)
    return lab, conf, depth


def analyze_photo(photo_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                  seg_model: str = api.DEFAULT_SEG, depth_model: str | None = api.DEFAULT_DEPTH,
                  models_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Segment (and estimate depth of) one photo; write the files above. Returns name -> written path."""
    from inference_server.imageio import load_photo
    from inference_server.inference.preview_img import side_by_side
    from inference_server.scene import atomic_write_bytes

    photo = load_photo(photo_path)
    seg = api.segment(photo.rgb, model=seg_model, models_dir=models_dir)
    depth = None
    if depth_model:
        depth = api.estimate_depth(photo.rgb, model=depth_model, models_dir=models_dir, sky_mask=seg)
    w, h = photo.full_width, photo.full_height
    labels, conf, d = _to_full(seg.labels, seg.confidence, None if depth is None else depth.depth, w, h)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out-dir {out} exists and is not a folder")
    files = {"labels.png": labels_png(labels, len(seg.names)),
             "label_names.txt": ("\n".join(seg.names) + "\n").encode("utf-8")}
    if d is not None and depth is not None:
        files["depth.npy"] = _npy_bytes(d.astype(np.float32))
        files["depth_kind.txt"] = (depth.kind + "\n").encode("utf-8")
    if conf is not None:
        files["confidence.npy"] = _npy_bytes(conf.astype(np.float32))
    files["preview.png"] = _png_bytes(side_by_side(photo.rgb, labels, len(seg.names), d))
    written: dict[str, str] = {}
    try:
        for name, data in files.items():
            atomic_write_bytes(out / name, data)
            written[name] = str(out / name)
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return written
