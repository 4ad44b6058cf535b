"""`img2maya models download HUB_ID`: a pinned revision's files through ``huggingface_hub``.

The files land under their own names in ``<models-dir>/<hub id>/`` (``hf_hub_download(local_dir=...)``:
a partial file is kept in the folder's ``.cache/huggingface/download/`` and resumed by the next try).
Before anything is fetched the hub is asked for the revision's file list with sizes and sha256
(``model_info(files_metadata=True)``); each weights file is checked against the hub's sha256 after the
download, and the list is kept as ``.img2maya-hf.json`` so that ``models verify`` and every later load
check size and hash against it. Without network (or with ``HF_HUB_OFFLINE=1``) it fails with one line
that says which files of which revision to put where.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from inference_server.errors import UserError
from inference_server.inference.hf import files, specs


def _reason(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text[:200] + ("..." if len(text) > 200 else "")


def by_hand(hf: specs.HFModel, folder: Path) -> str:
    """Where to put the files when the download cannot run."""
    return (f"put {', '.join(specs.FILES)} of {hf.tree_url} (revision {hf.revision}) into {folder} by hand")


def download(spec: Any, folder: Path, progress: bool = True, *, force: bool = False,
             timeout: float = 20.0) -> Path:
    """Fetch the model's files into ``folder``; UserError with one line when that is not possible."""
    hf = specs.get(spec.id)
    if hf is None:
        raise UserError(f"model {spec.id} is not a Hugging Face model")
    try:
        import huggingface_hub
        from huggingface_hub.utils import disable_progress_bars
    except ImportError:
        raise UserError(f"could not download {hf.id}: it needs the package huggingface_hub "
                        f"(pip install 'img2maya[hf]'); or {by_hand(hf, folder)}") from None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the models folder {folder}: {exc.strerror or exc}") from None
    if not progress:
        disable_progress_bars()
    try:
        info = huggingface_hub.HfApi().model_info(hf.id, revision=hf.revision, files_metadata=True,
                                                  timeout=timeout)
        listed = {s.rfilename: s for s in (info.siblings or [])}
        missing = [n for n in specs.FILES if n not in listed]
        if missing:
            raise UserError(f"could not download {hf.id}: revision {hf.revision} has no {', '.join(missing)}; "
                            f"{by_hand(hf, folder)}")
        manifest: dict[str, Any] = {"id": hf.id, "revision": hf.revision, "files": {}}
        for name in specs.FILES:
            sib = listed[name]
            lfs = getattr(sib, "lfs", None)
            sha = getattr(lfs, "sha256", None) if lfs is not None else None
            manifest["files"][name] = {"size": getattr(sib, "size", None), "sha256": sha}
            huggingface_hub.hf_hub_download(hf.id, name, revision=hf.revision, local_dir=str(folder),
                                            force_download=force, etag_timeout=timeout)
    except UserError:
        raise
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"could not download {hf.id} ({_reason(exc)}); {by_hand(hf, folder)}") from None
    tmp = folder / (files.MANIFEST + ".part")
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(tmp, folder / files.MANIFEST)
    for name in specs.FILES:
        if name.endswith(".safetensors"):
            problem = files.safetensors_problem(folder / name)
            if problem:
                raise UserError(f"downloaded {folder / name} but it is {problem}; delete it and run the "
                                f"download again, or {by_hand(hf, folder)}")
    return folder
