"""Checks of a Hugging Face checkpoint folder that need no framework (milliseconds, any file size).

* ``safetensors_problem``: a ``.safetensors`` file is an 8-byte little-endian header length, a JSON header
  (tensor name -> dtype, shape, byte range) and the tensor bytes. A file cut short (an interrupted copy)
  or not of that format is found from the header alone: the last byte range must end exactly at the file's
  end. When the folder has the download manifest (written by ``download.py`` from the hub's metadata),
  size and sha256 are checked against it too.
* ``config_problem``: ``config.json`` must be JSON of the expected ``model_type``.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

MANIFEST = ".img2maya-hf.json"  # {"id", "revision", "files": {name: {"size", "sha256"}}}
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
                "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
MAX_HEADER = 100_000_000  # the format's own bound on the JSON header


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    """(header, data offset) of a .safetensors file; ValueError saying what is wrong."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"truncated: {size} bytes, not even the 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise ValueError(f"truncated or not safetensors: header of {n} bytes in a {size}-byte file")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not safetensors: its header is not JSON") from None
    if not isinstance(header, dict):
        raise ValueError("not safetensors: its header is not a JSON object")
    return header, 8 + n


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a complete .safetensors file, None when it is (header and length agree)."""
    try:
        header, start = safetensors_header(path)
    except ValueError as exc:
        return str(exc)
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    size = path.stat().st_size
    end = 0
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        try:
            a, b = (int(v) for v in meta["data_offsets"])
            shape = [int(v) for v in meta["shape"]]
            nbytes = _DTYPE_BYTES.get(str(meta["dtype"]))
        except (KeyError, TypeError, ValueError):
            return f"not safetensors: bad header entry for tensor {name!r}"
        if nbytes is not None and b - a != math.prod(shape) * nbytes:
            return f"not safetensors: tensor {name!r} has {b - a} bytes for shape {shape}"
        end = max(end, b)
    if start + end != size:
        what = "truncated" if start + end > size else "has trailing bytes"
        return f"{what}: {size} bytes, its header needs {start + end}"
    folder = path.parent
    manifest = read_manifest(folder)
    entry = (manifest or {}).get("files", {}).get(path.name) if manifest else None
    if isinstance(entry, dict):
        want_size, want_sha = entry.get("size"), entry.get("sha256")
        if isinstance(want_size, int) and want_size != size:
            return f"wrong size {size} (the hub lists {want_size})"
        if isinstance(want_sha, str):
            from inference_server.inference.registry import _cached_sha

            got = _cached_sha(path)
            if got != want_sha:
                return f"wrong sha256 {got[:12]}... (the hub lists {want_sha})"
    return None


def config_problem(path: Path, model_type: str) -> str | None:
    """Why ``config.json`` is not a config of ``model_type``, None when it is."""
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    except ValueError as exc:
        return f"not JSON ({' '.join(str(exc).split())})"
    if not isinstance(cfg, dict):
        return "not a JSON object"
    got = cfg.get("model_type")
    if got != model_type:
        return f"a config of model_type {got!r}, not {model_type!r}"
    return None

