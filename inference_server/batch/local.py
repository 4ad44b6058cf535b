"""Executors on this machine: `InProcess` (the default: this process, one photo after another) and
`ProcessPool` (`--workers N`: N worker processes, each loading the networks once, for its life).

A worker takes one job at a time, so the pool always knows which photo a worker holds. A worker that
dies (killed, out of memory, a crash in native code) is replaced; its photo is tried again on a fresh
worker, and after `MAX_ATTEMPTS` deaths on it the photo fails with a one-line error while the batch goes
on. Ctrl-C or SIGTERM reach the workers too (interrupts.install in each): each removes the temporary
file it was writing and exits; `close()` ends the rest.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from .plan import Job
from .work import Request, Result, process

MAX_ATTEMPTS = 2  # a photo whose worker dies is tried once more, then fails
POLL_S = 0.5  # the longest a wait blocks (signals are acted on between waits)
JOIN_S = 5.0


def exit_how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by signal {-exitcode} ({signal.Signals(-exitcode).name})"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


def died_message(how: str, attempts: int) -> str:
    times = "once" if attempts == 1 else f"{attempts} times"
    return (f"the worker process died while making this scene ({how}), {times}: the photo may need more memory "
            f"than a worker has")


class InProcess:
    """One photo after another in this process (the default)."""

    def __init__(self, req: Request) -> None:
        self.req = req

    def results(self, jobs: Sequence[Job]) -> Iterator[Result]:
        for job in jobs:
            yield process(job, self.req)

    def close(self, now: bool = False) -> None:
        pass


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads(threads: int | None) -> None:
    """Each network's threads in this process: LiteRT's interpreters, and OpenMP / BLAS (torch, TensorFlow,
    numpy) when numpy is not imported yet (they read the variables once)."""
    if not threads:
        return
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    try:
        from ..inference import tflite_models
    except ImportError:
        return  # no networks here: a photo that needs them fails with the pipeline's own message
    tflite_models.NUM_THREADS = threads


def worker_main(conn: Connection, request: bytes, threads: int | None) -> None:
    """A worker process: jobs in, results out, until None or the pipe closes (the driver is gone). The
    request comes pickled: unpickling it imports numpy, which must see the thread limit first (measured:
    2 workers with numpy's default 2 BLAS threads each are 20 % slower, docs/BATCH.md)."""
    from .. import interrupts

    interrupts.MESSAGE = ""  # Ctrl-C: the driver says `interrupted` once, not every worker
    interrupts.install()
    limit_threads(threads)
    req: Request = pickle.loads(request)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        result = process(job, req)
        try:
            conn.send(result)
        except (BrokenPipeError, OSError):
            return


@dataclass
class _Worker:
    proc: Any  # multiprocessing.Process (spawn context)
    conn: Connection
    job: Job | None = None
    attempt: int = 0


class ProcessPool:
    """N worker processes on this machine (`--workers N`)."""

    def __init__(self, workers: int, req: Request, threads: int | None = None) -> None:
        self.size = max(1, int(workers))
        self.request = pickle.dumps(req)
        self.threads = threads
        self.ctx = multiprocessing.get_context("spawn")  # no inherited threads or network state
        self.workers: list[_Worker] = []

    def _start(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=worker_main, args=(child, self.request, self.threads), daemon=True,
                                name="img2maya-worker")
        proc.start()
        child.close()
        w = _Worker(proc, parent)
        self.workers.append(w)
        return w

    def _drop(self, w: _Worker) -> None:
        self.workers.remove(w)
        w.conn.close()
        w.proc.join(timeout=JOIN_S)

    def results(self, jobs: Sequence[Job]) -> Iterator[Result]:
        queue: deque[tuple[Job, int]] = deque((j, 1) for j in jobs)
        while queue or any(w.job is not None for w in self.workers):
            for w in [w for w in self.workers if w.job is None and not w.proc.is_alive()]:
                self._drop(w)  # died idle (killed between photos): replaced below, nothing lost
            while queue and len(self.workers) < self.size:
                self._start()
            for w in list(self.workers):
                if w.job is None and queue:
                    job, attempt = queue.popleft()
                    try:
                        w.conn.send(job)
                    except (BrokenPipeError, OSError):  # died before it took the photo: not an attempt
                        queue.appendleft((job, attempt))
                        self._drop(w)
                        continue
                    w.job, w.attempt = job, attempt
            busy = [w for w in self.workers if w.job is not None]
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=POLL_S)
            done: list[Result] = []
            for w in busy:
                if w.conn in ready or w.proc.sentinel in ready:
                    result = self._collect(w, queue)
                    if result is not None:
                        done.append(result)
            yield from done

    def _collect(self, w: _Worker, queue: deque[tuple[Job, int]]) -> Result | None:
        """The result `w` sent, or (when it died) its job queued again or failed."""
        try:
            if w.conn.poll():
                result: Result = w.conn.recv()
                w.job = None
                return result
        except (EOFError, OSError):
            pass
        if w.proc.is_alive():
            return None
        job, attempt = w.job, w.attempt
        self._drop(w)
        assert job is not None
        if attempt < MAX_ATTEMPTS:
            queue.appendleft((job, attempt + 1))
            return None
        return Result(job.index, job.key, False, 0.0, error=died_message(exit_how(w.proc.exitcode), attempt),
                      sha256=job.sha256)

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w.proc.pid is not None]

    def close(self, now: bool = False) -> None:
        """Stop every worker: ask them to finish (or, `now`, SIGTERM them: each removes its temp file)."""
        workers, self.workers = list(self.workers), []
        for w in workers:
            try:
                if now:
                    w.proc.terminate()
                else:
                    w.conn.send(None)
            except (OSError, ValueError):
                pass
        for w in workers:
            w.proc.join(timeout=JOIN_S if not now else 2.0)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(timeout=JOIN_S)
            w.conn.close()
