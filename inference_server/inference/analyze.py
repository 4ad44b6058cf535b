"""`img2maya analyze`: run the networks on one photo and write their outputs at the photo's resolution.

The files are inference_server.outputs' (the very files a server `analyze` writes): ``labels.png`` +
``label_names.txt`` (what ``img2maya scene --labels/--label-names`` accepts back), ``confidence.png``,
``depth.npy`` + ``depth_kind.txt`` (``scene --depth/--depth-kind``), ``preview.png`` and
``depth_preview.png``, each written atomically.

The networks see the photo at the engine's analysis resolution, given exactly as `scene` and the server
give it (pipeline.infer: the sky of the labels, the photo's focal length); labels, confidence and depth
are scaled back to the full (EXIF-oriented) size (labels nearest neighbour, the others bilinearly), the
two previews stay at the analysed size.
"""

from __future__ import annotations

import os
from pathlib import Path

from inference_server.errors import UserError
from inference_server.inference import api


def analyze_photo(photo_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                  seg_model: str = api.DEFAULT_SEG, depth_model: str | None = api.DEFAULT_DEPTH,
                  models_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Segment (and estimate depth of) one photo; write the files above. Returns file name -> path."""
    from inference_server import pipeline
    from inference_server.imageio import load_photo
    from inference_server.outputs import write_network_files

    photo = load_photo(photo_path)
    seg, depth = pipeline.infer(photo, seg_model, depth_model or None,
                                models_dir=None if models_dir is None else str(models_dir))
    assert seg is not None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out-dir {out} exists and is not a folder")
    try:
        paths = write_network_files(out, photo.rgb, seg, depth,
                                    full_size=(photo.full_width, photo.full_height))
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return {Path(p).name: p for p in paths.values() if p is not None}
