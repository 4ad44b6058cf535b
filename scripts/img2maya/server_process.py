"""The inference server as the panel runs it: a QProcess, so Maya's main thread never blocks.

`ServerProcess` starts `<system python> -m inference_server` (the command line and the clean environment
come from `img2maya.protocol`, as for the blocking `img2maya.client`), sends `hello`, writes requests,
decodes the server's stdout into protocol messages (signal `message`), keeps stderr as a log and reports a
death once (signal `died`). It is started again by the panel's next Build after a death, and restarted
when the System Python changes. `split_python`/`join_python` turn the panel's System Python field into
the argv prefix and back.

Qt only through `img2maya.qt`; no widget here. Python 3.7+.
"""

from __future__ import annotations

import collections
import os
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from . import protocol
from .qt import QtCore  # typed Any: written against what PySide2 and 6 share


def split_python(text: str) -> list[str]:
    """The system-Python command typed by the user as an argv prefix: an existing file as is (spaces
    allowed), else shell words (`py -3`, `/opt/conda/bin/python -X utf8`)."""
    text = text.strip()
    if not text:
        return []
    if os.path.isfile(text):
        return [text]
    return shlex.split(text, posix=os.name != "nt")


def join_python(cmd: Sequence[str]) -> str:
    """An argv prefix as one editable line (the inverse of split_python for ordinary paths)."""
    if len(cmd) == 1:
        return cmd[0]
    return " ".join(shlex.quote(c) if os.name != "nt" else c for c in cmd)


def _bytes(data: Any) -> bytes:
    """QByteArray (PySide2 or 6) -> bytes."""
    return bytes(data.data()) if hasattr(data, "data") else bytes(data)


class ServerProcess(QtCore.QObject):
    """The inference server as a QProcess: started once and kept, stdout decoded into protocol
    messages (signal `message`), stderr kept as a log, death reported once (signal `died`)."""

    message = QtCore.Signal(object)  # a protocol message dict
    died = QtCore.Signal(str)  # one line: exit code and last stderr line
    log = QtCore.Signal(str)  # each stderr line

    def __init__(self, parent: Any = None, stderr_lines: int = 200) -> None:
        super().__init__(parent)
        self.process: Any = None
        self.command: list[str] = []
        self.info: dict[str, Any] | None = None  # the hello reply
        self.stderr: collections.deque[str] = collections.deque(maxlen=stderr_lines)
        self._decoder = protocol.LineDecoder()
        self._err_buffer = b""
        self._stopping = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QtCore.QProcess.ProcessState.NotRunning

    @property
    def pid(self) -> int | None:
        return int(self.process.processId()) if self.running else None

    def last_stderr(self) -> str:
        return self.stderr[-1] if self.stderr else ""

    def start(self, command: Sequence[str], env: Mapping[str, str]) -> None:
        """Start the server (asynchronously) and send `hello`; a no-op when it already runs with
        this command."""
        command = [str(c) for c in command]
        if self.running and command == self.command:
            return
        self.stop()
        self.command = command
        self.info = None
        self.stderr.clear()
        self._decoder = protocol.LineDecoder()
        self._err_buffer = b""
        self._stopping = False
        proc = QtCore.QProcess(self)
        qenv = QtCore.QProcessEnvironment()
        for key, value in env.items():
            qenv.insert(key, value)
        proc.setProcessEnvironment(qenv)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._error)
        self.process = proc
        proc.start(command[0], command[1:])
        self.send(protocol.request(protocol.HELLO))  # QProcess buffers it until the process runs

    def send(self, message: Mapping[str, Any]) -> bool:
        """Write one request; False when the server is not running."""
        if not self.running:
            return False
        self.process.write(protocol.encode(message))
        return True

    def kill(self, quiet: bool = False) -> None:
        """Kill the server now; its death is reported through `died` unless `quiet`."""
        if self.running:
            self._stopping = self._stopping or quiet
            self.process.kill()

    def stop(self, timeout_ms: int = 3000) -> None:
        """Shut the server down quietly (shutdown request, killed after `timeout_ms`)."""
        proc, self._stopping = self.process, True
        if proc is None:
            return
        if proc.state() != QtCore.QProcess.ProcessState.NotRunning:
            proc.write(protocol.encode(protocol.request(protocol.SHUTDOWN)))
            proc.closeWriteChannel()
            if not proc.waitForFinished(timeout_ms):
                proc.kill()
                proc.waitForFinished(1000)
        self.process = None
        proc.deleteLater()

    # ---------------------------------------------------------------- QProcess slots
    def _read_stdout(self) -> None:
        proc = self.sender() if self.sender() is not None else self.process
        if proc is None:
            return
        for item in self._decoder.feed(_bytes(proc.readAllStandardOutput())):
            if isinstance(item, protocol.ProtocolError):
                self._stderr_line(f"[stdout] {item}")
                continue
            if item.get("type") == protocol.HELLO:
                self.info = item
            self.message.emit(item)

    def _read_stderr(self) -> None:
        proc = self.sender() if self.sender() is not None else self.process
        if proc is None:
            return
        self._err_buffer += _bytes(proc.readAllStandardError())
        *lines, self._err_buffer = self._err_buffer.split(b"\n")
        for raw in lines:
            self._stderr_line(raw.decode("utf-8", "replace").rstrip())

    def _stderr_line(self, line: str) -> None:
        if line.strip():
            self.stderr.append(line)
            self.log.emit(line)

    def _finished(self, code: int, status: Any = None) -> None:
        proc = self.sender()
        if proc is not None and proc is not self.process:
            return  # an old process
        self._read_stdout()
        self._read_stderr()
        if self._err_buffer.strip():
            self._stderr_line(self._err_buffer.decode("utf-8", "replace").rstrip())
            self._err_buffer = b""
        if self._stopping:
            return
        crashed = status == QtCore.QProcess.ExitStatus.CrashExit
        what = "crashed or was killed" if crashed else f"exited with code {code}"
        self.died.emit(f"inference server {what}; last stderr line: {self.last_stderr() or '(none)'}")

    def _error(self, error: Any) -> None:
        if error == QtCore.QProcess.ProcessError.FailedToStart and not self._stopping:
            proc = self.process
            detail = proc.errorString() if proc is not None else ""
            self._stopping = True  # no finished() follows a failed start
            self.died.emit("cannot start the inference server ({}): {}".format(" ".join(self.command),
                                                                                detail))
