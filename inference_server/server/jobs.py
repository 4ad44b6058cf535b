"""Jobs (`analyze`, `regenerate`): the FIFO one worker serves, cancel, supersede, progress events.

Every victim of a cancel is answered `cancelled` at once, the running job included: the worker stops it
at its next check (a progress callback or a stage boundary, both raise `Cancelled`) and drops what it
computed. A job's terminal message is sent exactly once (`Job.answered`, guarded by the board's lock),
and no progress event follows it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JOB_TYPES = ("analyze", "regenerate")
PROGRESS_INTERVAL_S = 0.05  # progress events of one stage: at most ~20 a second

Send = Callable[[dict[str, Any]], None]
Progress = Callable[..., None]


class Cancelled(Exception):
    """Raised inside a job when its cancel flag is set (checked in progress callbacks and between stages)."""


@dataclass
class Job:
    id: Any
    type: str
    request: dict[str, Any]
    cancel: threading.Event = field(default_factory=threading.Event)
    answered: bool = False  # its terminal message was sent (guarded by JobBoard.lock)

    def check(self) -> None:
        """Raise Cancelled when the job was cancelled (a stage boundary)."""
        if self.cancel.is_set():
            raise Cancelled()


class JobBoard:
    """The queued jobs (in order), the running one, and the lock that guards both and `Job.answered`."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._pending: OrderedDict[Any, Job] = OrderedDict()  # queued, not started
        self._current: Job | None = None

    def submit(self, job: Job) -> None:
        """Queue `job` (answered `queued` when another job is queued or running)."""
        with self.lock:
            busy = self._current is not None or bool(self._pending)
            self._pending[job.id] = job
        if busy:
            self.send({"type": "queued", "id": job.id})
        self._queue.put(job)

    def cancel(self, target: Any) -> str:
        """Cancel `target` (a job id) or, when None, every queued and running job; each victim is
        answered `cancelled`. Returns the target's state: running, queued or not_found."""
        with self.lock:
            if target is None:
                victims = list(self._pending.values())
                self._pending.clear()
                running = self._current
            else:
                victims = [self._pending.pop(target)] if target in self._pending else []
                running = self._current if self._current is not None and self._current.id == target else None
            running = self._claim(running)
            if running is not None:
                victims.append(running)
        self._answer(victims)
        return "running" if running is not None else ("queued" if victims else "not_found")

    def supersede(self) -> None:
        """Cancel every queued or running `regenerate` (a slider being dragged: only the latest counts)."""
        with self.lock:
            victims = [j for j in self._pending.values() if j.type == "regenerate"]
            for job in victims:
                del self._pending[job.id]
            current = self._current
            running = self._claim(current if current is not None and current.type == "regenerate" else None)
            if running is not None:
                victims.append(running)
        self._answer(victims, superseded=True)

    def close(self) -> None:
        """Cancel everything (each answered `cancelled`) and tell the worker to stop after its job."""
        self.cancel(None)
        self._queue.put(None)

    def next(self) -> Job | None:
        """The next job to run, now the running one (blocks); None: stop. Jobs cancelled while queued
        (already answered) are skipped."""
        while True:
            job = self._queue.get()
            if job is None:
                return None
            with self.lock:
                if self._pending.pop(job.id, None) is not job or job.cancel.is_set():
                    continue
                self._current = job
                return job

    def finish(self, job: Job, reply: dict[str, Any]) -> None:
        """`job` ended with `reply`: no longer running *before* the answer (a later cancel says
        not_found), and `reply` sent unless a cancel already answered it."""
        with self.lock:
            self._current = None
            answered, job.answered = job.answered, True
        if not answered:
            self.send(reply)

    def progress(self, job: Job) -> Progress:
        """A callback that streams `progress` events (throttled) and raises Cancelled when asked to stop."""
        last: list[Any] = [0.0, ""]

        def progress(stage: Any = "", fraction: Any = None, *_args: Any, **_kwargs: Any) -> None:
            if job.cancel.is_set():
                raise Cancelled()
            if fraction is None and isinstance(stage, int | float):
                stage, fraction = "", stage
            try:
                frac = min(1.0, max(0.0, float(fraction if fraction is not None else 0.0)))
            except (TypeError, ValueError):
                frac = 0.0
            now = time.monotonic()
            if stage == last[1] and 0.0 < frac < 1.0 and now - last[0] < PROGRESS_INTERVAL_S:
                return
            last[0], last[1] = now, str(stage)
            with self.lock:  # never an event after the job's terminal message
                if job.answered:
                    raise Cancelled()
                self.send({"type": "progress", "id": job.id, "stage": str(stage), "fraction": round(frac, 4)})

        return progress

    @staticmethod
    def _claim(running: Job | None) -> Job | None:
        """`running` marked answered (the caller answers it), or None when it already was (lock held)."""
        if running is None or running.answered:
            return None
        running.answered = True
        return running

    def _answer(self, victims: list[Job], superseded: bool = False) -> None:
        for job in victims:
            job.cancel.set()
            self.send({"type": "cancelled", "id": job.id, **({"superseded": True} if superseded else {})})
