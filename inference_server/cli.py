"""`img2maya`: the command line (console script -> main).

`img2maya scene` is owned here; `models`/`analyze` (inference.cli_models) and `serve` (server)
register themselves when their modules are installed. Only argparse is imported at start-up:
numpy, the engine and the networks load inside the command that needs them.

Errors: a UserError, an OSError or any bad input prints `img2maya: error: <one line>` on stderr
and exits 2 (no traceback, no output file). An unexpected exception is a bug: one line, exit 1,
and the traceback only with IMG2MAYA_DEBUG=1.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__, interrupts
from .errors import UserError

PROG = "img2maya"
FORMATS = ("json", "usda", "usdc", "usdz", "glb", "gltf")
DEBUG_ENV = "IMG2MAYA_DEBUG"
_OTHER_COMMANDS = ("inference_server.inference.cli_models", "inference_server.server")

EPILOG = """\
examples:
  img2maya scene photo.jpg -o scene.usda
      networks give labels and depth (default models; see: img2maya models list)
  img2maya scene photo.jpg --labels labels.png --label-names names.txt --depth depth.npy -o scene.json
      your own class ids (line k of names.txt = name of id k) and metric z-depth: no network runs
  img2maya scene photo.jpg --labels ids.png --label-names ade20k150 --depth-model none -o scene.glb
      a shipped label set, no depth (objects placed from class size priors)
  img2maya scene photo.jpg --depth disp.npy --depth-kind disparity --seg deeplabv3-mnv2-ade20k150 -o s.usdz
  img2maya scene a.jpg b.jpg c.jpg -o out/ --format usda
      batch: out/a.usda, out/b.usda, out/c.usda; a failing photo is reported, the others still run

--depth takes a FILE when the path exists or ends in .npy/.npz/.png/.tif (metres; 16-bit PNG:
value / --depth-scale), otherwise a depth MODEL id (same as --depth-model; 'none' = no depth).
Exit status: 0 ok, 2 bad input (one line on stderr, no output written), 1 internal error.
"""


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (v > 0 and v != float("inf")):
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return v


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


def _positive_int(text: str) -> int:
    v = _nonneg_int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return v


def _add_scene(sub: Any) -> None:
    p = sub.add_parser(
        "scene", help="photo(s) -> camera-matched blocking scene (.json/.usda/.usdc/.usdz/.glb/.gltf)",
        description="Turn one photograph (or several) into a camera-matched 3D blocking scene.\nLabels and "
                    "depth come from the networks unless you pass your own files (docs/CLI.md).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photo(s): JPEG, PNG, TIFF, WebP, ... "
                   "(EXIF orientation applied; photos over 4 MP are analysed downscaled)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output file (.json .usda .usdc .usdz .glb .gltf), or a folder (ends in / or exists; "
                        "required for several IMAGEs): FOLDER/<photo name>.<--format>")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="format of outputs written into a folder (default json)")
    p.add_argument("--look", choices=("color", "projection"), default="color",
                   help="color: each object its mean colour (default); projection: the photo projected "
                        "through the camera onto the objects (USD/glTF: textured; the image beside a .usda/.usdc, "
                        "inside a .usdz/.glb/.gltf; .json: says so for the Maya builder)")
    g = p.add_argument_group("your own labels and depth (skip the networks)")
    g.add_argument("--labels", metavar="L.png", help="class-id image at the photo's (oriented) size: PNG L, P "
                   "(palette index), 16-bit, or .npy")
    g.add_argument("--label-names", metavar="N.txt", help="class names, line k = id k; or a shipped set: "
                   "ade20k150, ade20k32, cityscapes19, cocostuff182")
    g.add_argument("--depth", metavar="D.npy|MODEL", help="depth FILE (.npy/.npz float z-depth, 16-bit PNG) or, "
                   "when no such file exists, a depth MODEL id (see below)")
    g.add_argument("--depth-kind", choices=("metric", "disparity", "relative"), default=None,
                   help="what your depth file holds: metric z-depth in metres (default), disparity "
                        "(larger = nearer) or relative depth (larger = farther); relative and disparity "
                        "are made metric on the ground (its flat geometry under a camera at --camera-height), "
                        "and objects standing on it are placed at their footprint (docs/SHAPES.md)")
    g.add_argument("--depth-scale", type=_positive_float, default=None, metavar="S",
                   help="16-bit PNG depth: value / S (default 256, KITTI; 1000 for millimetres)")
    m = p.add_argument_group("networks")
    m.add_argument("--seg", metavar="MODEL", help="segmentation model id (default: the registry's default)")
    m.add_argument("--depth-model", metavar="MODEL", help="depth model id, or 'none' for no depth")
    m.add_argument("--instances", metavar="none|MODEL", default=None,
                   help="instance model fused with the labels, one object per car/person/... (default: "
                        "yolov8n-seg-coco-int8 when installed, AGPL-3.0 weights; not with --labels unless named); "
                        "'none' to turn it off")
    m.add_argument("--models-dir", metavar="DIR", help="model weights folder (default $IMG2MAYA_MODELS, "
                   "else ~/.img2maya/models)")
    c = p.add_argument_group("camera")
    fx = c.add_mutually_exclusive_group()
    fx.add_argument("--focal-px", type=_positive_float, metavar="F",
                    help="focal length in full-resolution pixels (default: EXIF, else the photo's vanishing points, "
                         "else a 60 degree FOV)")
    fx.add_argument("--fov-deg", type=_positive_float, metavar="A", help="horizontal field of view in degrees")
    c.add_argument("--camera-height", type=_positive_float, default=None, metavar="M",
                   help="camera height in metres for relative depth / no ground (default: from people, cars and "
                        "doors under the horizon of the photo's lines, else 1.6)")
    c.add_argument("--ignore-exif", action="store_true",
                   help="ignore the photo's EXIF focal length (a cropped or scanned photo's EXIF lies)")
    c.add_argument("--no-vanishing-points", action="store_true",
                   help="do not estimate the camera from the photo's lines: EXIF or a 60 degree FOV, pitch and "
                        "roll from the ground (docs/CAMERA.md)")
    a = p.add_argument_group("analysis")
    a.add_argument("--recursion", type=int, choices=range(6), default=0, metavar="N",
                   help="levels of child parts inside objects, 0..5 (default 0)")
    a.add_argument("--min-area", type=_nonneg_int, default=0, metavar="PX",
                   help="smallest object in analysed pixels (default 0 = automatic)")
    a.add_argument("--color-stat", choices=("mean", "median", "trimmed"), default="mean",
                   help="object colour statistic (default mean)")
    a.add_argument("--shapes", metavar="TABLE.json", help="your own class -> shape table (docs/SHAPES.md)")
    b = p.add_argument_group("batch (into a folder; docs/BATCH.md)")
    b.add_argument("--recursive", action="store_true", help="folders: their subfolders' photos too")
    b.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="N worker processes on this machine, each loading the networks once (with --ray: at "
                        "most N photos in flight)")
    b.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run the photos as Ray tasks: a local Ray without ADDRESS, 'auto' or host:port or "
                        "ray://host:port for a cluster (pip install 'img2maya[ray]'); put it after the photos")
    b.add_argument("--force", action="store_true",
                   help="make every photo again, even those the manifest OUT/img2maya-batch.json has up to date")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary lines")
    p.set_defaults(func=cmd_scene)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="img2maya: one photograph -> a camera-matched 3D blocking scene "
                     "(Maya, USD, glTF, JSON).", epilog="run `img2maya COMMAND --help` for a command's options",
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_scene(sub)
    for name in _OTHER_COMMANDS:
        _register_optional(name, sub)
    return parser


def _register_optional(module_name: str, sub: Any) -> None:
    """Add another module's sub-commands when it is installed. A missing module is skipped; a
    broken one too (with a warning), so that `img2maya scene` keeps working whatever it is."""
    try:
        if importlib.util.find_spec(module_name) is None:
            return
        module = importlib.import_module(module_name)
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    except ImportError:
        return
    except Exception as exc:  # noqa: BLE001
        print(f"{PROG}: warning: commands of {module_name} unavailable ({type(exc).__name__}: "
              f"{' '.join(str(exc).split())})", file=sys.stderr)


# ---- scene -------------------------------------------------------------------------------------


def _is_folder_target(out: str, many: bool, fmt: str | None) -> bool:
    return many or out.endswith(("/", os.sep)) or os.path.isdir(out) or (fmt is not None and not Path(out).suffix)


def _plan_outputs(images: Sequence[str], out: str, fmt: str | None) -> list[Path]:
    """One output path per photo; UserError for an output that cannot work (checked before any work)."""
    many = len(images) > 1
    if _is_folder_target(out, many, fmt):
        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            raise UserError(f"output {folder} is a file, not a folder: several photos (or --format without a "
                            f"suffix) write FOLDER/<photo name>.<format>")
        suffix = "." + (fmt or "json")
        outputs, used = [], set()
        for img in images:
            stem = Path(img).stem or "scene"
            name, k = stem, 2
            while name in used:
                name, k = f"{stem}_{k}", k + 1
            used.add(name)
            outputs.append(folder / f"{name}{suffix}")
        _check_writable(folder)
        return outputs
    target = Path(out)
    suffix = target.suffix.lower()
    if suffix.lstrip(".") not in FORMATS:
        raise UserError(f"unknown output format {target.suffix or '(no suffix)'!r} for {target}: "
                        f"use one of {', '.join('.' + f for f in FORMATS)}")
    if fmt is not None and suffix != "." + fmt:
        raise UserError(f"--format {fmt} does not match the output {target}")
    _check_writable(target.parent if str(target.parent) else Path("."))
    return [target]


def _check_writable(folder: Path) -> None:
    """The nearest existing ancestor must be a writable folder (the builders create the rest)."""
    probe = folder if str(folder) else Path(".")
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UserError(f"cannot write into {folder}: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"cannot write into {folder}: permission denied")


class _Progress:
    """tqdm on a terminal (one bar per photo), nothing otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def start(self, label: str) -> Callable[[str, float], None] | None:
        if not self.enabled:
            return None
        from tqdm import tqdm

        self.bar = tqdm(total=100, desc=label, file=sys.stderr, leave=False,
                        bar_format="{l_bar}{bar}| {elapsed}{postfix}")

        def update(stage: str, frac: float) -> None:
            n = int(round(100 * min(max(frac, 0.0), 1.0)))
            if n > self.bar.n:
                self.bar.update(n - self.bar.n)
            self.bar.set_postfix_str(stage, refresh=True)

        return update

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _options(args: argparse.Namespace) -> Any:
    from .analysis.engine import SceneOptions

    if args.shapes is not None:
        from .shapes_input import check_shapes_table

        check_shapes_table(args.shapes)
    return SceneOptions(recursion=args.recursion, min_area_px=args.min_area, color_stat=args.color_stat,
                        depth_kind=args.depth_kind or "metric", camera_height_m=args.camera_height or 1.6,
                        camera_height_from_objects=args.camera_height is None, shapes_table=args.shapes,
                        ignore_exif=args.ignore_exif, estimate_camera=not args.no_vanishing_points)


def _depth_args(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(depth file, depth model) from --depth / --depth-model (see EPILOG)."""
    from .imageio import is_depth_file

    depth_file, depth_model = None, args.depth_model
    if args.depth is not None:
        if is_depth_file(args.depth):
            if not os.path.exists(args.depth):
                raise UserError(f"depth file not found: {args.depth}")
            depth_file = args.depth
        else:
            if depth_model is not None and depth_model != args.depth:
                raise UserError(f"--depth {args.depth} (a model id: no such file) contradicts --depth-model "
                                f"{depth_model}")
            depth_model = args.depth
            _check_depth_model_id(args.depth)
    if depth_file is not None and depth_model is not None:
        raise UserError("--depth FILE and --depth-model exclude each other")
    if depth_file is None and (args.depth_kind is not None or args.depth_scale is not None):
        flag = "--depth-kind" if args.depth_kind is not None else "--depth-scale"
        raise UserError(f"{flag} describes your --depth FILE, and none was given (a network's depth has its own kind)")
    return depth_file, depth_model


def _check_camera_args(args: argparse.Namespace) -> None:
    """Physical ranges of the camera flags (inference_server/limits.py), before any work; the focal
    length is checked against each photo's width when it is loaded."""
    from .limits import check_camera_height, check_focal_px, check_fov_deg

    if args.focal_px is not None:
        check_focal_px(args.focal_px, None, "--focal-px")
    if args.fov_deg is not None:
        check_fov_deg(args.fov_deg, "--fov-deg")
    if args.camera_height is not None:
        check_camera_height(args.camera_height, "--camera-height")


def _check_outputs_spare_inputs(outputs: Sequence[Path], images: Sequence[str], args: argparse.Namespace,
                                depth_file: str | None) -> None:
    """No output may replace an input (same resolved path or inode), and stale temporary files of a
    killed earlier run are removed from the output folders."""
    from .scene import remove_stale_temps
    from .userpaths import check_outputs_spare_inputs

    names = args.label_names if args.label_names is not None and os.path.lexists(args.label_names) else None
    inputs = [*(("photo", img) for img in images), ("labels", args.labels), ("label names", names),
              ("depth", depth_file), ("shapes table", args.shapes)]
    check_outputs_spare_inputs(outputs, inputs)
    for folder in dict.fromkeys(out.parent for out in outputs):
        remove_stale_temps(folder)


def _check_depth_model_id(value: str) -> None:
    """`--depth VALUE` that is no file must be a depth model id (or none): say both readings failed."""
    if value.lower() in ("none", ""):
        return
    try:
        from .inference.registry import MODELS
    except ImportError:
        return  # no inference package: the pipeline says the networks are not available
    if value not in MODELS or getattr(MODELS[value], "task", "depth") != "depth":
        known = [m for m, spec in MODELS.items() if getattr(spec, "task", "depth") == "depth"]
        raise UserError(f"--depth {value}: no such file, and not a depth model id "
                        f"(known: {', '.join(known)}, none)")


def _one_photo(image: str, out: Path, args: argparse.Namespace, options: Any, depth_file: str | None,
               depth_model: str | None, progress: _Progress) -> dict[str, Any]:
    from .batch.work import Request, build  # the one per-photo path, the batch's too

    update = progress.start(Path(image).name)
    try:
        scene = build(image, out, Request.from_args(args, depth_file, depth_model, options), update)
    finally:
        progress.close()
    return scene


def _count(objects: list[dict[str, Any]]) -> int:
    return sum(1 + _count(o.get("children", [])) for o in objects)


def cmd_scene(args: argparse.Namespace) -> int:
    """Every photo independently: a failing one is reported and the others still run.

    Status 0 when all were written, 2 when one failed on its input, 1 when one hit a bug.
    """
    images = list(args.images)
    if len(images) > 1 and (args.labels or args.label_names or (args.depth and os.path.exists(args.depth))):
        raise UserError("--labels/--label-names/--depth FILE belong to one photo: give one IMAGE with them")
    _check_camera_args(args)
    from .batch.command import run_batch, wants_batch

    if wants_batch(args, images, _is_folder_target(args.output, len(images) > 1, args.format)):
        from .batch.work import Request

        depth_file, depth_model = _depth_args(args)
        return run_batch(args, Request.from_args(args, depth_file, depth_model, _options(args)))
    outputs = _plan_outputs(images, args.output, args.format)
    depth_file, depth_model = _depth_args(args)
    options = _options(args)
    _check_outputs_spare_inputs(outputs, images, args, depth_file)
    progress = _Progress(enabled=not args.quiet and sys.stderr.isatty())
    failed = bugs = 0
    for k, (image, out) in enumerate(zip(images, outputs, strict=True)):
        t0 = time.perf_counter()
        interrupts.hold_after_commit()  # from the rename into place until the `wrote` line: not cut
        try:
            scene = _one_photo(image, out, args, options, depth_file, depth_model, progress)
        except (UserError, OSError, MemoryError) as exc:
            failed += 1
            msg = _message(exc)
            _error(f"{image}: {msg}" if len(images) > 1 and image not in msg else msg)
            continue
        except Exception as exc:
            if len(images) == 1:
                raise
            failed, bugs = failed + 1, bugs + 1
            _internal(exc, prefix=f"{image}: ")
            continue
        if not args.quiet:
            for w in scene.get("warnings", []):
                print(f"{PROG}: warning: {image}: {w}", file=sys.stderr)
            print(f"{PROG}: wrote {out} ({_count(scene['objects'])} objects, {time.perf_counter() - t0:.1f} s)",
                  file=sys.stderr)
        sys.stderr.flush()
        interrupts.release(final=k == len(images) - 1)  # after the last output the run is complete
    if failed and len(images) > 1:
        _error(f"{failed} of {len(images)} photos failed")
    return 1 if bugs else 2 if failed else 0


# ---- entry point -------------------------------------------------------------------------------


def _message(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller photo)"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _internal(exc: BaseException, prefix: str = "") -> None:
    """A bug: one line, and the traceback only when IMG2MAYA_DEBUG is set."""
    if os.environ.get(DEBUG_ENV):
        traceback.print_exception(exc)
    _error(f"{prefix}internal error ({type(exc).__name__}: {' '.join(str(exc).split())}); "
           f"rerun with {DEBUG_ENV}=1 for the traceback and please report it")


def main(argv: Sequence[str] | None = None) -> int:
    """Run `img2maya` with `argv` (default sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (argparse prints them, status 0 / 2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    # Ctrl-C / SIGTERM: temp files removed, exit 130 / 143, no traceback. Only for the commands whose every
    # temporary file is registered (scene.atomic_path); `models download` cleans up in `finally` blocks and
    # `serve` stops its jobs on KeyboardInterrupt: they keep Python's own handling.
    restore = interrupts.install() if args.command in ("scene", "analyze") else (lambda: None)
    try:
        return int(func(args) or 0)
    except (UserError, OSError, MemoryError) as exc:
        _error(_message(exc))
        return 2
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback on request
        _internal(exc)
        return 1
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
