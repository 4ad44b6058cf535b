"""`img2maya serve` and `python -m inference_server[.server]`: flags, start-up checks, the protocol's
stdout, the networks' warm-up, then `Server.serve` on stdin."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
import time
from typing import IO, Any

from .. import __version__
from ..errors import UserError
from .adapter import Pipeline, RealPipeline
from .loop import Server
from .wire import one_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's options (shared by `python -m inference_server` and `img2maya serve`)."""
    parser.add_argument("--models-dir", default=None, help="folder of the model weights "
                        "(default: $IMG2MAYA_MODELS, else ~/.img2maya/models)")
    parser.add_argument("--cache-dir", default=None, help="network-output cache "
                        "(default: $IMG2MAYA_CACHE, else ~/.cache/img2maya)")
    parser.add_argument("--cache-size-mb", type=_megabytes, default=None,
                        help="cache size cap in MB, least recently used evicted first (default 2048)")
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                        help="do not load and warm the default networks in the background at start")
    parser.add_argument("--pipeline", default=None, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Start serving on this process's stdin/stdout."""
    from ..cache import DEFAULT_MAX_BYTES, NetworkCache

    try:
        _check_server_paths(args)
    except UserError as exc:
        print(f"img2maya serve: error: {exc}", file=sys.stderr)
        return 2
    proto_out = _claim_stdout()
    max_bytes = DEFAULT_MAX_BYTES if args.cache_size_mb is None else max(0, args.cache_size_mb) * 1024**2
    cache = NetworkCache(args.cache_dir, max_bytes=max_bytes)
    try:
        pipeline = _load_factory(args.pipeline) if args.pipeline else RealPipeline(args.models_dir)
    except Exception as exc:  # noqa: BLE001
        print(f"img2maya serve: error: {one_line(exc)}", file=sys.stderr)
        return 2
    server = Server(pipeline=pipeline, cache=cache, models_dir=args.models_dir, out=proto_out)
    print(f"img2maya inference server {__version__} ready (pid {os.getpid()}, cache {cache.root})",
          file=sys.stderr, flush=True)
    if args.warm_up and isinstance(pipeline, RealPipeline):
        start_warm_up(pipeline)
    return server.serve(sys.stdin.buffer)


def start_warm_up(pipeline: RealPipeline) -> threading.Thread:
    """``pipeline.warm_up()`` on a daemon thread (requests are served meanwhile; a job that needs a
    network still loading waits for it on the model cache's lock)."""

    def run() -> None:
        t = time.perf_counter()
        try:
            pipeline.warm_up()
        except Exception as exc:  # noqa: BLE001 - the first analyze reports it properly
            print(f"img2maya serve: warm-up skipped: {one_line(exc)}", file=sys.stderr, flush=True)
            return
        print(f"img2maya serve: networks warm in {time.perf_counter() - t:.2f} s", file=sys.stderr,
              flush=True)

    thread = threading.Thread(target=run, name="img2maya-warm-up", daemon=True)
    thread.start()
    return thread


def register(subparsers: Any) -> None:
    """Add `img2maya serve` to the CLI."""
    p = subparsers.add_parser("serve", help="run the NDJSON inference server on stdin/stdout (for Maya)",
                              description="Run the local inference server (docs/PROTOCOL.md).")
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    """`python -m inference_server [--models-dir DIR] [--cache-dir DIR] [--cache-size-mb N]`."""
    parser = argparse.ArgumentParser(prog="python -m inference_server",
                                     description="img2maya local inference server (NDJSON over stdio)")
    add_arguments(parser)
    return run(parser.parse_args(argv))


def _load_factory(spec: str) -> Pipeline:
    """`module:attr` -> attr() (the hidden --pipeline flag used by tests to inject a fake pipeline)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UserError(f"--pipeline must be module:factory, got {spec!r}")
    module = importlib.import_module(module_name)
    return getattr(module, attr)()


def _megabytes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of MB: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 keeps nothing on disk), got {text}")
    return value


def _check_server_paths(args: argparse.Namespace) -> None:
    """--cache-dir (made and written once here) and --models-dir, checked at start: UserError."""
    from ..cache import default_cache_dir
    from ..userpaths import check_folder, make_folder

    make_folder(args.cache_dir if args.cache_dir is not None else default_cache_dir(), "the cache folder")
    if args.models_dir is not None and os.path.lexists(args.models_dir):
        check_folder(args.models_dir, "--models-dir")


def _claim_stdout() -> IO[str]:
    """Keep the real stdout for the protocol and send fd 1 (and sys.stdout) to stderr, so libraries
    that print - in Python or in C - can never corrupt the protocol stream."""
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return open(proto_fd, "w", encoding="utf-8", newline="\n", buffering=1, closefd=True)
