"""The Ray executor (`--ray [ADDRESS]`): every photo a Ray task running work.process, the same per-photo
code as the other modes. Ray is imported here only, and only when --ray is given (the `ray` extra).

Address: none or `local` starts a Ray on this machine (shut down at the end); `auto` joins the cluster
this machine belongs to (`ray start` / RAY_ADDRESS); `host:port` a cluster's head (GCS), `ray://host:port`
through Ray Client. A Ray already initialised in this process (a test's `ray.init(num_cpus=2)`) is used as
it is. Workers are Ray's own processes, reused from task to task, so each loads the networks once.

A task whose worker process dies is retried by Ray (`max_retries=MAX_ATTEMPTS - 1`); after that the photo
fails with a one-line error and the batch goes on. A task holds one CPU (`num_cpus=1`), so the networks
in it run one thread each (IMG2MAYA_BATCH_THREADS changes that). At most `in_flight` tasks are submitted at a time
(twice the cluster's CPUs, or `--workers N`), so thousands of photos never sit in Ray's queue at once.
"""

from __future__ import annotations

import logging
import re
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import UserError
from .local import MAX_ATTEMPTS, died_message, limit_threads
from .plan import Job
from .work import Request, Result, process, worker_name

WAIT_S = 1.0  # the longest one ray.wait blocks (Ctrl-C is handled between waits)
PROBE_S = 5.0  # how long a cluster address may take to accept a TCP connection
_ADDRESS = re.compile(r"^(?:ray://)?(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")
INSTALL_HINT = "pip install 'img2maya[ray]' (or pip install ray)"


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise UserError(f"--ray needs Ray, which is not installed ({' '.join(str(exc).split())}): "
                        f"{INSTALL_HINT}") from None
    return ray


def check_address(address: str | None) -> None:
    """UserError for an address that is not one (before Ray is imported), and for a host:port that does
    not accept a connection within PROBE_S (Ray itself would retry for minutes)."""
    if address in (None, "local", "auto"):
        return
    m = _ADDRESS.match(address)
    if m is None:
        raise UserError(f"--ray {address}: not a Ray address (local, auto, host:port or ray://host:port); to "
                        f"use the local Ray put --ray after the photos, or write --ray=local")
    host, port = m["host"].strip("[]"), int(m["port"])
    try:
        with socket.create_connection((host, port), timeout=PROBE_S):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise UserError(f"Ray cluster {address} does not answer ({reason} within {PROBE_S:g} s): is it up, and "
                        f"is the port open from here?") from None


_threads_set: list[int] = []  # in a Ray worker process: the thread limit already applied


def _task(job: Job, req: Request, threads: int) -> Result:
    if not _threads_set:
        _threads_set.append(threads)
        try:
            limit_threads(threads)
        except ImportError:
            pass  # no networks on this worker: a photo that needs them fails with the pipeline's message
    return process(job, req)


class RayExecutor:
    """Photos as Ray tasks on a local Ray or a cluster."""

    def __init__(self, req: Request, address: str | None = None, in_flight: int | None = None,
                 num_cpus: int | None = None, threads: int = 1) -> None:
        check_address(address)
        self.ray = import_ray()
        self.req = req
        self.threads = threads  # each network's threads in a task: its one CPU (Ray's num_cpus=1)
        self.started = False
        self.refs: dict[Any, tuple[Job, float]] = {}
        if not self.ray.is_initialized():
            self._connect(address, num_cpus)
        cpus = int(self.ray.cluster_resources().get("CPU", 1)) or 1
        self.in_flight = in_flight or 2 * cpus
        self.remote = self.ray.remote(num_cpus=1, max_retries=MAX_ATTEMPTS - 1, retry_exceptions=False)(_task)
        self.req_ref = self.ray.put(req)

    def _connect(self, address: str | None, num_cpus: int | None) -> None:
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        sigterm = signal.getsignal(signal.SIGTERM)  # ray.init puts its own in (sys.exit): ours removes temps
        try:
            if address in (None, "local"):
                self.ray.init(num_cpus=num_cpus, include_dashboard=False, **kwargs)
            else:
                self.ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = "a local Ray" if address in (None, "local") else f"the Ray cluster {address}"
            raise UserError(f"cannot start or reach {where}: {' '.join(str(exc).split())[:300]}") from None
        finally:
            if threading.current_thread() is threading.main_thread() and sigterm is not None:
                signal.signal(signal.SIGTERM, sigterm)
        self.started = True

    def results(self, jobs: Sequence[Job]) -> Iterator[Result]:
        ray = self.ray
        queue = list(reversed(jobs))
        while queue or self.refs:
            while queue and len(self.refs) < self.in_flight:
                job = queue.pop()
                self.refs[self.remote.remote(job, self.req_ref, self.threads)] = (job, 0.0)
            ready, _ = ray.wait(list(self.refs), num_returns=1, timeout=WAIT_S)
            for ref in ready:
                job, _t = self.refs.pop(ref)
                yield self._get(ref, job)

    def _get(self, ref: Any, job: Job) -> Result:
        ray = self.ray
        try:
            result: Result = ray.get(ref)
            return result
        except ray.exceptions.WorkerCrashedError:
            return Result(job.index, job.key, False, 0.0, error=died_message("Ray: worker crashed", MAX_ATTEMPTS),
                          sha256=job.sha256, worker=worker_name())
        except ray.exceptions.RayError as exc:
            text = " ".join(str(exc).split())[:300]
            return Result(job.index, job.key, False, 0.0, error=f"Ray could not run this photo: "
                          f"{type(exc).__name__}: {text}", sha256=job.sha256, worker=worker_name())

    def close(self, now: bool = False) -> None:
        """Cancel what is still running (Ctrl-C) and shut down the Ray this executor started."""
        ray = self.ray
        for ref in list(self.refs):
            try:
                ray.cancel(ref, force=now)
            except Exception:  # noqa: BLE001 - best effort: Ray's shutdown ends them too
                pass
        self.refs.clear()
        if self.started:
            self.started = False
            ray.shutdown()
