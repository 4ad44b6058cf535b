"""A job's output folder: the network-output files (inference_server.outputs, the very files
`img2maya analyze` writes) plus scene.json, and `.key`, the cache key those files were written for."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..outputs import NETWORK_FILES, network_paths, write_network_files

SCENE_JSON = "scene.json"
_KEY_FILE = ".key"


def check_out_dir(out_dir: Path, photo: Any, options: Any) -> None:
    """The job's output folder: usable (UserError otherwise), none of its files an input of the job (the
    photo, the shapes table), and cleared of temporary files a killed server left there long ago."""
    from ..scene import remove_stale_temps
    from ..userpaths import check_folder, check_outputs_spare_inputs

    check_folder(out_dir, "out_dir")
    files = [out_dir / name for name in (*NETWORK_FILES.values(), SCENE_JSON, _KEY_FILE)]
    check_outputs_spare_inputs(files, [("photo", photo.path),
                                       ("shapes table", getattr(options, "shapes_table", None))])
    remove_stale_temps(out_dir)


def result_files(out_dir: Path, seg: Any, depth: Any) -> dict[str, str | None]:
    """The reply's `files`: key -> path (None: not written for this network output)."""
    return {**network_paths(out_dir, seg, depth), "scene_json": str(out_dir / SCENE_JSON)}


def write_network_outputs(out_dir: Path, photo: Any, seg: Any, depth: Any, key: str) -> bool:
    """Write the network-output files unless `out_dir` already holds them for `key` (a regenerate);
    True when written."""
    from ..scene import atomic_write_bytes

    marker = out_dir / _KEY_FILE
    try:
        fresh = marker.read_text(encoding="utf-8").strip() == key and all(
            os.path.exists(p) for p in network_paths(out_dir, seg, depth).values() if p)
    except OSError:
        fresh = False
    if fresh:
        return False
    write_network_files(out_dir, photo.rgb, seg, depth)
    atomic_write_bytes(marker, key.encode("ascii"))
    return True


def write_outputs(out_dir: Path, photo: Any, seg: Any, depth: Any, scene_text: str,
                  key: str) -> dict[str, str | None]:
    """The network-output files (rewritten only when the cache key changes: a regenerate writes
    scene.json alone) and scene.json (`scene_text`: wire.encode_scene's); returns `result_files`."""
    from ..scene import atomic_write_bytes

    out_dir.mkdir(parents=True, exist_ok=True)
    write_network_outputs(out_dir, photo, seg, depth, key)
    atomic_write_bytes(out_dir / SCENE_JSON, scene_text.encode("utf-8"))
    return result_files(out_dir, seg, depth)
