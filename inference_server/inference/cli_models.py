"""CLI sub-commands `img2maya models list|verify|download` and `img2maya analyze PHOTO --out-dir DIR`.

``register(subparsers)`` is called by ``inference_server/cli.py``; each handler takes the parsed
arguments and returns an exit code (0 = fine, 1 = a model failed its check). Problems the user can fix
raise UserError (the CLI prints one line and exits 2). No network framework is imported to register.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from inference_server.errors import UserError
from inference_server.inference import registry
from inference_server.outputs import NETWORK_FILES


def _add_models_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", default=None,
                   help=f"models folder (default: ${registry.ENV_VAR} or {registry.DEFAULT_DIR})")


def _ids(requested: list[str] | None) -> list[str]:
    if not requested:
        return list(registry.MODELS)
    for m in requested:
        registry.get(m)  # UserError for an unknown id
    return requested


def cmd_list(args: argparse.Namespace) -> int:
    """One line per model: id, task, backend, installed or not, licence; then the folder used."""
    folder = registry.models_dir(args.models_dir)
    rows = registry.list_models(args.models_dir)
    width = max(len(str(r["id"])) for r in rows)
    for r in rows:
        state = "installed" if r["installed"] else "missing"
        default = " (default)" if r["default"] else ""
        notice = f"  [{r['notice']}]" if r.get("notice") else ""
        print(f"{str(r['id']):<{width}}  {r['task']:<12} {r['backend']:<12} {state:<9}{default}{notice}")
        if args.verbose:
            print(f"    {r['description']}\n    licence: {r['licence']}\n    source: {r['source']}")
            if r.get("revision"):  # a Hugging Face checkpoint (inference/hf/specs.py)
                nbytes = r.get("download_bytes")
                size = f", about {float(nbytes) / 1e6:.0f} MB" if isinstance(nbytes, int | float) and nbytes else ""
                print(f"    output: {r['output']}{size}; revision {r['revision']}")
            for f in r["files"]:  # type: ignore[attr-defined]
                print(f"    {f['name']}  {f['status']}  sha256 {f['sha256'] or 'unknown'}")
    print(f"models folder: {folder}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Check presence, size and sha256 of every file; exit 1 when any required file is wrong or missing.

    Without model ids: the default models and every model whose folder exists (an optional model that
    was never installed is not an error).
    """
    bad = 0
    ids = args.model or [m for m in registry.MODELS if m in (registry.DEFAULT_SEG, registry.DEFAULT_DEPTH)
                         or registry.model_folder(m, args.models_dir).is_dir()]
    for mid in _ids(ids):
        for name, state in registry.status(mid, args.models_dir).items():
            path = registry.model_folder(mid, args.models_dir) / name
            print(f"{'ok  ' if state == 'ok' else 'FAIL'} {mid}: {path}{'' if state == 'ok' else ' ' + state}")
            bad += state != "ok"
    return 1 if bad else 0


def cmd_download(args: argparse.Namespace) -> int:
    """Fetch the named models (default: the two default models) into the models folder."""
    ids = args.model or [registry.DEFAULT_SEG, registry.DEFAULT_DEPTH]
    for mid in _ids(ids):
        folder = registry.download(mid, args.models_dir, progress=not args.quiet, force=args.force)
        print(f"ok   {mid}: {folder}")
    return 0


ANALYZE_FILES = tuple(NETWORK_FILES.values())  # inference_server/outputs.py: a server analyze writes them too


def cmd_analyze(args: argparse.Namespace) -> int:
    """Run the networks on a photo and write their files (inference_server/outputs.py)."""
    from inference_server.inference.analyze import analyze_photo
    from inference_server.scene import remove_stale_temps
    from inference_server.userpaths import check_folder, check_outputs_spare_inputs

    # before any network runs: a usable folder, and no file written there may be the photo itself
    out = check_folder(args.out_dir, "--out-dir")
    check_outputs_spare_inputs([out / name for name in ANALYZE_FILES], [("photo", args.photo)])
    remove_stale_temps(out)
    depth = None if args.depth in ("none", "") else args.depth
    written = analyze_photo(args.photo, args.out_dir, seg_model=args.seg, depth_model=depth,
                            models_dir=args.models_dir)
    for name, path in written.items():
        print(f"wrote {path}" if name else path)
    return 0


def register(subparsers: Any) -> None:
    """Add `models` (list, verify, download) and `analyze` to the img2maya CLI."""
    p = subparsers.add_parser("models", help="list, verify or download the networks' weight files",
                              description="Manage the network weight files (docs/MODELS.md).")
    sub = p.add_subparsers(dest="models_command", metavar="{list,verify,download}")
    sub.required = True
    pl = sub.add_parser("list", help="show every known model and whether it is installed")
    pl.add_argument("-v", "--verbose", action="store_true", help="also licences, sources and file hashes")
    _add_models_dir(pl)
    pl.set_defaults(func=cmd_list)
    pv = sub.add_parser("verify", help="check the files (size, sha256); exit 1 when one is bad")
    pv.add_argument("model", nargs="*", help="model ids (default: the defaults and every installed model)")
    _add_models_dir(pv)
    pv.set_defaults(func=cmd_verify)
    pd = sub.add_parser("download", help="fetch model files from their public sources")
    pd.add_argument("model", nargs="*", help="model ids (default: the default segmentation and depth models)")
    pd.add_argument("--force", action="store_true", help="download again even when the files are fine")
    pd.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_models_dir(pd)
    pd.set_defaults(func=cmd_download)

    pa = subparsers.add_parser("analyze", help="run the networks on a photo and write their raw outputs",
                               description="Write labels.png + label_names.txt, confidence.png, depth.npy + "
                                           "depth_kind.txt at the photo's resolution, and preview.png + "
                                           "depth_preview.png (the files a server analyze writes).")
    pa.add_argument("photo", help="the photograph")
    pa.add_argument("--out-dir", required=True, help="output folder (created if needed)")
    pa.add_argument("--seg", default=registry.DEFAULT_SEG, choices=[m.id for m in registry.MODELS.values()
                                                                     if m.task == "segmentation"],
                    help=f"segmentation model (default {registry.DEFAULT_SEG})")
    pa.add_argument("--depth", default=registry.DEFAULT_DEPTH,
                    choices=[m.id for m in registry.MODELS.values() if m.task == "depth"] + ["none"],
                    help=f"depth model, or none (default {registry.DEFAULT_DEPTH})")
    _add_models_dir(pa)
    pa.set_defaults(func=cmd_analyze)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (tests, or before cli.py exists): the same sub-commands, same error handling."""
    parser = argparse.ArgumentParser(prog="img2maya")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"img2maya: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
