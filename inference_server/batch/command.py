"""The batch driver: `img2maya scene PHOTOS_OR_FOLDERS... -o OUT/` (cli.cmd_scene hands it over).

Plan the photos and their outputs, check everything that can be checked before any work (the output
folder writable, no output replacing an input, the manifest readable, the Ray address answering), skip
the photos that are up to date, run the rest on the chosen executor, record each result in the manifest
as it arrives, and report: the failures' one-line errors at the end, status 0 (all written or up to
date), 2 (some failed), 1 (one failed on an internal error).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import interrupts
from ..errors import UserError
from . import MANIFEST_NAME
from .local import InProcess, ProcessPool
from .manifest import Manifest, models_of, now_iso, options_of
from .plan import Job, check_outputs_spare_inputs, plan
from .progress import BatchBar
from .work import Request, Result, message

PROG = "img2maya"
THREADS_ENV = "IMG2MAYA_BATCH_THREADS"
_TEMP_STEM = re.compile(r"^\.(?P<stem>.+)\.[0-9a-f]{8}\.part(\.[A-Za-z0-9_]+)?$")  # scene.TEMP_RE, with its stem


def wants_batch(args: argparse.Namespace, images: list[str], folder_target: bool) -> bool:
    """Whether this `scene` run is a batch (into a folder, with its manifest): a folder output (`folder_target`,
    the CLI's rule), a folder among the photos, or a batch flag. UserError for a batch aimed at a file."""
    flags = [flag for flag, on in (("--workers", bool(args.workers)), ("--ray", args.ray is not None),
                                   ("--recursive", args.recursive), ("--force", args.force)) if on]
    folders = any(os.path.isdir(i) for i in images)
    if folder_target:
        return True
    if not (folders or flags):
        return False
    from ..cli import FORMATS

    if Path(args.output).suffix.lower().lstrip(".") in FORMATS:
        what = "a folder of photos" if folders else "/".join(flags)
        raise UserError(f"{what} writes into a folder: give -o OUT/ (not the file {args.output})")
    return True


def threads_per_worker(workers: int) -> int:
    """The threads each network of a worker runs: $IMG2MAYA_BATCH_THREADS, else this machine's cores shared out
    among the workers (measured: benchmarks/bench_batch.py --threads-check, docs/BATCH.md)."""
    given = os.environ.get(THREADS_ENV, "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def make_executor(args: argparse.Namespace, req: Request, todo: int) -> Any:
    """The executor the flags ask for; none that starts anything when there is nothing to do."""
    if todo == 0:
        return InProcess(req)
    if args.ray is not None:
        from .ray_exec import RayExecutor

        given = os.environ.get(THREADS_ENV, "")
        return RayExecutor(req, address=args.ray, in_flight=args.workers,
                           threads=int(given) if given.isdigit() and int(given) > 0 else 1)
    if args.workers:
        n = min(args.workers, todo)
        return ProcessPool(n, req, threads=threads_per_worker(args.workers))
    return InProcess(req)


class _Lock:
    """One batch at a time writes into an output folder: an advisory lock on the folder itself (no file left
    behind). None where the system has no flock or the file system refuses it on a folder (some NFS)."""

    def __init__(self, folder: Path) -> None:
        self.fd: int | None = None
        try:
            import fcntl
        except ImportError:
            return
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"another img2maya batch is writing into {folder}; wait for it to end or choose "
                            f"another -o") from None
        except OSError:
            os.close(fd)
            return
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _hash(job: Job) -> tuple[str | None, str | None]:
    """(sha256 of the photo, None) or (None, the one-line error of a photo that cannot be read)."""
    from ..imageio import sha256_file
    from ..userpaths import check_input_file

    try:
        check_input_file(job.source, "photo")
        return sha256_file(job.source), None
    except (UserError, OSError) as exc:
        return None, message(exc)


def _inputs(req: Request, jobs: list[Job]) -> list[tuple[str, str | None]]:
    names = req.label_names if req.label_names is not None and os.path.lexists(req.label_names) else None
    return [*(("photo", j.source) for j in jobs), ("labels", req.labels), ("label names", names),
            ("depth", req.depth_file), ("shapes table", req.options.shapes_table)]


def _mode(args: argparse.Namespace) -> str:
    if args.ray is not None:
        return f"ray {args.ray}" + (f", {args.workers} in flight" if args.workers else "")
    return f"workers {args.workers}" if args.workers else "in process"


def run_batch(args: argparse.Namespace, req: Request) -> int:
    """The batch the parsed `scene` arguments describe; returns the exit status."""
    from ..scene import remove_stale_temps
    from ..userpaths import make_folder

    fmt = args.format or "json"
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} is a file, not a folder: several photos (or --format without a suffix, or a "
                        f"folder of photos) write FOLDER/<photo name>.<format>")
    if args.ray is not None:
        from .ray_exec import check_address, import_ray

        check_address(args.ray)
        import_ray()
    jobs = plan(args.images, out, fmt, recursive=args.recursive)
    if len(jobs) > 1 and (req.labels or req.label_names or req.depth_file):
        raise UserError("--labels/--label-names/--depth FILE belong to one photo: give one IMAGE with them")
    manifest_path = Path(os.path.abspath(out)) / MANIFEST_NAME
    check_outputs_spare_inputs([*(j.output for j in jobs), manifest_path], _inputs(req, jobs))
    folder = make_folder(out, "output folder")
    lock = _Lock(folder)
    try:
        return _run(args, req, jobs, manifest_path, fmt, remove_stale_temps)
    finally:
        lock.release()


def _run(args: argparse.Namespace, req: Request, jobs: list[Job], manifest_path: Path, fmt: str,
         remove_stale_temps: Any) -> int:
    t0 = time.monotonic()
    manifest = Manifest.load(manifest_path, force=args.force)
    remove_our_temps(jobs, manifest_path, remove_stale_temps)
    options, models = options_of(req, fmt), models_of(req)
    show_bar = not args.quiet and sys.stderr.isatty()
    bar = BatchBar(len(jobs), enabled=show_bar)
    by_index = {j.index: j for j in jobs}
    todo: list[Job] = []
    unreadable: list[Result] = []
    for job in jobs:
        sha, error = _hash(job)
        if error is not None:
            unreadable.append(Result(job.index, job.key, False, 0.0, error=error))
        elif not args.force and manifest.up_to_date(job, sha, options, models):
            bar.skip()
        else:
            todo.append(replace(job, sha256=sha))
    manifest.run = {"started": now_iso(), "mode": _mode(args), "photos": len(jobs)}
    manifest.save()  # proves the folder writable before any work, and a valid manifest from the start
    failures: list[tuple[Job, Result]] = []
    bar.start()
    executor = make_executor(args, req, len(todo))

    def on_interrupt() -> None:
        executor.close(now=True)
        manifest.flush()

    remove_hook = interrupts.on_interrupt(on_interrupt)
    stop_now = True  # an error (or KeyboardInterrupt where the handler is not installed): stop the workers at once
    try:
        for result in _chain(unreadable, executor.results(todo)):
            job = by_index[result.index]
            manifest.record(job, result, options, models)
            try:
                manifest.save(final=False)
            except OSError as exc:
                raise UserError(f"cannot write the batch manifest {manifest_path}: {exc.strerror or exc}") from None
            bar.finish(result.ok)
            if not result.ok:
                failures.append((job, result))
            elif not args.quiet and not show_bar:
                _report(job, result, Path(args.output))
        stop_now = False
    finally:
        remove_hook()
        executor.close(now=stop_now)
        bar.close()
    remove_our_temps(jobs, manifest_path, remove_stale_temps)  # a killed worker's, whatever its age
    seconds = time.monotonic() - t0
    manifest.run.update(finished=now_iso(), seconds=round(seconds, 3), done=bar.done,
                        skipped=bar.skipped, failed=bar.failed, photos_per_minute=round(bar.per_minute(), 2))
    try:
        manifest.save()
    except OSError as exc:
        raise UserError(f"cannot write the batch manifest {manifest_path}: {exc.strerror or exc}") from None
    return _summary(args, jobs, failures, bar, seconds, manifest_path)


def remove_our_temps(jobs: list[Job], manifest_path: Path, remove_stale_temps: Any) -> None:
    """Temporary files of this batch's outputs (and of the manifest) left by a killed worker or run: this
    batch holds the folder's lock, so they are nobody's now, whatever their age. Other stale temps of ours
    (an hour old) go too, as in every `scene` run."""
    stems: dict[Path, set[str]] = {manifest_path.parent: {manifest_path.stem}}
    for j in jobs:
        out = Path(j.output)
        stems.setdefault(out.parent, set()).add(out.stem)
    for folder, names in stems.items():
        remove_stale_temps(folder)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            m = _TEMP_STEM.match(e.name)
            if m is not None and m["stem"] in names:
                try:
                    os.unlink(e.path)
                except OSError:
                    pass


def _chain(first: list[Result], rest: Iterator[Result]) -> Iterator[Result]:
    yield from first
    yield from rest


def _report(job: Job, result: Result, out: Path) -> None:
    for w in result.warnings:
        print(f"{PROG}: warning: {job.source}: {w}", file=sys.stderr)
    print(f"{PROG}: wrote {out / job.key} ({result.objects} objects, {result.seconds:.1f} s)", file=sys.stderr)


def _summary(args: argparse.Namespace, jobs: list[Job], failures: list[tuple[Job, Result]], bar: BatchBar,
             seconds: float, manifest_path: Path) -> int:
    for job, result in sorted(failures, key=lambda f: f[0].index):
        if result.trace:
            print(result.trace.rstrip(), file=sys.stderr)
        text = result.error or "failed"
        print(f"{PROG}: error: {text if job.source in text else f'{job.source}: {text}'}", file=sys.stderr)
    if failures:
        print(f"{PROG}: error: {len(failures)} of {len(jobs)} photos failed", file=sys.stderr)
    if not args.quiet:
        print(f"{PROG}: batch: {bar.done} written, {bar.skipped} up to date, {bar.failed} failed of {len(jobs)} "
              f"photos in {seconds:.1f} s ({bar.per_minute():.1f} photos/min); manifest {manifest_path}",
              file=sys.stderr)
    sys.stderr.flush()
    return 1 if any(r.bug for _, r in failures) else 2 if failures else 0
