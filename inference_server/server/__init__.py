"""The local inference server: newline-delimited JSON over stdin/stdout (see docs/PROTOCOL.md).

Why a subprocess: Maya's Python cannot host torch/TensorFlow/LiteRT reliably (different Python,
clashing Qt/OpenSSL/libstdc++), so Maya starts this server under the system Python, once, and keeps
it: models stay warm between requests, network outputs are cached (inference_server.cache), and
`regenerate` re-runs only the cheap analysis when the user changes options.

Threads: the reader (main thread) parses requests and answers `hello`/`cancel`/`shutdown` at once;
jobs (`analyze`, `regenerate`) go to a FIFO served by one worker thread, so a `cancel` is read while a
job runs. Cancellation is cooperative: the worker checks a flag in every progress callback and between
stages and raises `Cancelled`.

stdout carries protocol lines only. `main()` duplicates the real stdout for the protocol and points
fd 1 at stderr, so anything a library prints (TF/LiteRT banners, print() calls) goes to stderr.

Modules, by concern:
    loop     Server: the NDJSON loop, dispatch, hello / cancel / shutdown, the worker thread
    jobs     Job, the queue, cancel and supersede, progress events
    runner   what analyze and regenerate do (cache, networks, analysis, files)
    warm     warm engines (an LRU bounded in memory) and the re-segmentation answers
    adapter  Pipeline (what the server needs from the engine) and RealPipeline
    checks   request checks (types, ranges, paths) and the fields read from requests
    wire     request lines in, reply lines out
    files    a job's output folder (inference_server.outputs + scene.json)
    command  `img2maya serve` / `python -m inference_server`: flags and start-up
"""

from .adapter import Pipeline, RealPipeline
from .checks import RequestError, check_job_fields
from .command import add_arguments, main, register, run, start_warm_up
from .jobs import JOB_TYPES, Cancelled, Job
from .loop import PROTOCOL_VERSION, Server
from .warm import ENGINE_MAX_BYTES, ResegmentMemo
from .wire import encode_scene, parse_request

_check_job_fields = check_job_fields  # the names tests have always imported
_parse_request = parse_request

__all__ = ["ENGINE_MAX_BYTES", "JOB_TYPES", "PROTOCOL_VERSION", "Cancelled", "Job", "Pipeline",
           "RealPipeline", "RequestError", "ResegmentMemo", "Server", "add_arguments", "check_job_fields",
           "encode_scene", "main", "parse_request", "register", "run", "start_warm_up"]
