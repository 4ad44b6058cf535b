"""A blocking client of the img2maya inference server, for batch Maya, the `img2maya` command in
non-interactive sessions and scripting (the interactive panel uses QProcess with protocol.py instead).

The server is started once under the system Python (protocol.find_system_python) with Maya's
variables stripped (protocol.clean_environment) and kept, so models stay warm. If it dies (crash,
kill -9, out of memory) the call in flight raises a one-line ServerError naming the exit code and the
last stderr line, and the next call starts a fresh server.

Pure standard library, Python 3.7+.
"""

from __future__ import annotations

import collections
import io
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import protocol

_EOF = object()
_POLL_S = 0.25


class ServerError(RuntimeError):
    """The server could not be started, died, or answered with an error. `code` is the protocol error
    code for error replies ("user_error", "not_cached", ...), "exited" for a dead server, None else."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(" ".join(str(message).split()))
        self.code = code


class JobCancelled(ServerError):
    """The request was cancelled (by `cancel()` or a shutdown) before it finished."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message, code="cancelled")


if TYPE_CHECKING:  # collections.abc.Callable[...] is not subscriptable at runtime before Python 3.9
    ProgressCallback = Callable[[str, float], Any]


class ServerClient:
    """One server subprocess, started on first use and kept.

    One request runs at a time per client (calls are serialised by a lock); `cancel()` may be called
    from another thread or from inside an `on_progress` callback.
    """

    def __init__(self, python: str | Sequence[str] | None = None, extra_args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None, engine_root: str | None = None,
                 start_timeout: float = 60.0, stderr_lines: int = 50,
                 on_stderr: Callable[[str], Any] | None = None) -> None:
        self.python = python
        self.extra_args = list(extra_args)
        self.env = dict(env) if env is not None else None
        self.engine_root = engine_root if engine_root is not None else protocol.default_engine_root(env)
        self.start_timeout = start_timeout
        self.on_stderr = on_stderr
        self.info: dict[str, Any] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=stderr_lines)
        self._proc: subprocess.Popen[bytes] | None = None
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._call_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._current_id: str | None = None

    # ------------------------------------------------------------ lifecycle
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        """The argv that starts the server."""
        python = self.python
        if python is None:
            candidates = protocol.find_system_python(self.env)
            if not candidates:
                raise ServerError("no system Python 3 found on PATH: install Python 3.10+ with the img2maya "
                                  "engine or set IMG2MAYA_PYTHON to its python executable")
            python = candidates[0]
        return protocol.server_command(python, self.extra_args)

    def start(self) -> dict[str, Any]:
        """Start the server (if not running) and return its `hello` reply."""
        with self._call_lock:
            self._ensure()
            assert self.info is not None
            return self.info

    def _ensure(self) -> None:
        if self.running:
            return
        self._discard()
        cmd = self.command()
        flags = 0x08000000 if sys.platform == "win32" else 0  # CREATE_NO_WINDOW: no console pops up
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=protocol.clean_environment(self.env, self.engine_root),
                                    bufsize=0, creationflags=flags)
        except OSError as exc:
            raise ServerError("cannot start the inference server ({}): {}".format(" ".join(cmd), exc)) from None
        self._proc = proc
        self._inbox = queue.Queue()
        self._stderr.clear()
        threading.Thread(target=self._pump_stdout, args=(proc, self._inbox), daemon=True).start()
        threading.Thread(target=self._pump_stderr, args=(proc,), daemon=True).start()
        self.info = self._roundtrip(protocol.request(protocol.HELLO), None, timeout=self.start_timeout)

    def _pump_stdout(self, proc: subprocess.Popen, inbox: queue.Queue) -> None:
        assert proc.stdout is not None
        # bufsize=0 makes proc.stdout a raw file whose line iteration reads ONE BYTE per system call
        # (~60 ms for a 110 KB scene line); a buffered reader returns each line as soon as it is complete.
        for raw in io.BufferedReader(proc.stdout, 1 << 16):  # type: ignore[type-var]
            try:
                inbox.put(protocol.parse_line(raw))
            except protocol.ProtocolError as exc:
                self._stderr.append(f"[stdout] {exc}")
        inbox.put(_EOF)

    def _pump_stderr(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr.append(line)
                if self.on_stderr is not None:
                    self.on_stderr(line)

    def last_stderr(self) -> str:
        """The last non-empty line the server wrote to stderr ('' when none)."""
        return self._stderr[-1] if self._stderr else ""

    def _died(self, doing: str) -> ServerError:
        """The error for a server that went away; waits briefly for its exit code and last words."""
        proc = self._proc
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            time.sleep(0.05)  # let the stderr pump take the last lines
        self._discard()
        last = self.last_stderr() or "(none)"
        return ServerError(f"inference server exited with code {code} during {doing}; it will be restarted on the next "
                           f"call; last stderr line: {last}", code="exited")

    def _discard(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for fh in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if fh is not None:
                    fh.close()
            except OSError:
                pass

    def close(self, timeout: float = 5.0) -> int | None:
        """Ask the server to shut down (kill it after `timeout`); returns its exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                self._send(protocol.request(protocol.SHUTDOWN))
                proc.wait(timeout=timeout)
            except (ServerError, subprocess.TimeoutExpired):
                pass
        code = proc.poll()
        self._discard()
        return code if code is not None else -9

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -------------------------------------------------------------- requests
    def _send(self, message: Mapping[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise ServerError("inference server is not running")
        data = protocol.encode(message)
        with self._write_lock:
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (OSError, ValueError):
                raise self._died("{} request".format(message.get("type"))) from None

    def _roundtrip(self, message: dict[str, Any], on_progress: ProgressCallback | None,
                   timeout: float | None = None) -> dict[str, Any]:
        """Send a request and wait for its terminal reply, feeding progress events to `on_progress`."""
        req_id = message["id"]
        self._current_id = req_id
        try:
            self._send(message)
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                try:
                    msg = self._inbox.get(timeout=_POLL_S)
                except queue.Empty:
                    if self._proc is None or self._proc.poll() is not None:
                        raise self._died("{} request".format(message["type"])) from None
                    if deadline is not None and time.monotonic() > deadline:
                        self._discard()
                        raise ServerError(f"inference server did not answer {message['type']} within "
                                          f"{timeout or 0:.0f} s; last stderr line: "
                                          f"{self.last_stderr() or '(none)'}") from None
                    continue
                if msg is _EOF:
                    raise self._died("{} request".format(message["type"]))
                if msg.get("id") != req_id:
                    continue  # acks of cancels, replies to abandoned requests
                kind = msg.get("type")
                if kind == protocol.PROGRESS:
                    if on_progress is not None:
                        on_progress(str(msg.get("stage", "")), float(msg.get("fraction", 0.0)))
                elif kind == protocol.ERROR:
                    raise ServerError(protocol.error_text(msg), code=msg.get("code"))
                elif kind == protocol.CANCELLED:
                    raise JobCancelled("{} request cancelled".format(message["type"]))
                elif kind in protocol.TERMINAL:
                    return msg
        finally:
            self._current_id = None

    def _call(self, message: dict[str, Any], on_progress: ProgressCallback | None = None,
              timeout: float | None = None) -> dict[str, Any]:
        with self._call_lock:
            self._ensure()
            return self._roundtrip(message, on_progress, timeout)

    def hello(self) -> dict[str, Any]:
        """Server version, schema, models and devices (starts the server if needed)."""
        info = self._call(protocol.request(protocol.HELLO), timeout=self.start_timeout)
        self.info = info
        return info

    def analyze(self, photo: str, recursion: int = 0, options: Mapping[str, Any] | None = None,
                on_progress: ProgressCallback | None = None, timeout: float | None = None,
                **fields: Any) -> dict[str, Any]:
        """Run networks (or reuse their cached output) and the analysis; returns the `result` message:
        {scene, files, timings, cached, photo_sha256}. Fields: seg_model, depth_model, instances_model
        (a model id or "none"), focal_px, fov_deg, out_dir."""
        photo, fields = _absolute(photo, fields)
        return self._call(protocol.analyze_request(photo, recursion, options, **fields), on_progress, timeout)

    def regenerate(self, photo: str | None = None, recursion: int = 0,
                   options: Mapping[str, Any] | None = None, ref: str | None = None,
                   photo_sha256: str | None = None, on_progress: ProgressCallback | None = None,
                   timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Re-run only the analysis on the cached network output (never a network): fast option changes.
        Raises ServerError(code="not_cached") when the photo was not analysed with these models."""
        if photo is not None:
            photo, fields = _absolute(photo, fields)
        msg = protocol.regenerate_request(photo, ref, photo_sha256, recursion, options, **fields)
        return self._call(msg, on_progress, timeout)

    def cancel(self, target: str | None = None) -> None:
        """Cancel the request in flight (or `target`); the blocked call then raises JobCancelled.
        Safe from another thread and from an on_progress callback; a no-op when nothing runs."""
        target = target if target is not None else self._current_id
        proc = self._proc
        if target is None or proc is None or proc.stdin is None or proc.poll() is not None:
            return
        data = protocol.encode(protocol.request(protocol.CANCEL, target=target))
        with self._write_lock:
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (OSError, ValueError):
                pass  # the server is gone: the blocked call reports it


def _absolute(photo: str, fields: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Paths made absolute here: the server's working folder need not be Maya's."""
    fields = dict(fields)
    for name in ("out_dir",):
        if fields.get(name):
            fields[name] = os.path.abspath(os.path.expanduser(str(fields[name])))
    return os.path.abspath(os.path.expanduser(str(photo))), fields
