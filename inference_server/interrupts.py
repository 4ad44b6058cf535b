"""Ctrl-C (SIGINT) and SIGTERM in the command line: handled once, early, the same way everywhere.

Why not KeyboardInterrupt: it surfaces wherever Python happens to be, and some places swallow it
(USD's plug-in loader prints it as a traceback and carries on; a `finally` may print `wrote ...` before
it propagates). So `install()` replaces both signals' handlers for the run: the handler removes every
temporary file registered here (atomic outputs being written, USD's work folder), prints
`img2maya: error: interrupted` and exits at once with 128 + the signal (130 for Ctrl-C, 143 for
SIGTERM), from whatever Python was doing. A signal that arrives while a C call runs (a network, a USD
export) is handled when that call returns.

Commits: the moment an output is renamed into place (scene.atomic_path) is not interruptible, and a
CLI that asked for it (`hold_after_commit`) keeps the signal held after the rename until it has
reported the file (`release`): so a `wrote` line and the exit status always agree.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

MESSAGE = "img2maya: error: interrupted\n"
_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)

_lock = threading.Lock()
_temps: dict[str, bool] = {}  # path -> is a folder
_hooks: list[Callable[[], None]] = []  # run by the handler before the temps are removed (on_interrupt)
_state: dict[str, Any] = {"installed": False, "held": 0, "pending": None, "hold_after_commit": False}


def register_temp(path: str | os.PathLike[str], folder: bool = False) -> None:
    """Remove `path` if the process is interrupted before `forget_temp(path)`."""
    with _lock:
        _temps[os.fspath(path)] = folder


def forget_temp(path: str | os.PathLike[str]) -> None:
    with _lock:
        _temps.pop(os.fspath(path), None)


@contextmanager
def temp_registered(path: str | os.PathLike[str], folder: bool = False) -> Iterator[None]:
    register_temp(path, folder)
    try:
        yield
    finally:
        forget_temp(path)


def remove_temps() -> None:
    """Remove every registered temporary file or folder (best effort; used by the handler)."""
    with _lock:
        items = list(_temps.items())
        _temps.clear()
    for path, folder in items:
        try:
            if folder:
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass


def on_interrupt(hook: Callable[[], None]) -> Callable[[], None]:
    """Run `hook` when the process is interrupted, before the temporary files are removed (a batch stops
    its worker processes and saves its manifest there); returns the function that unregisters it."""
    with _lock:
        _hooks.append(hook)

    def remove() -> None:
        with _lock:
            if hook in _hooks:
                _hooks.remove(hook)

    return remove


def _die(signum: int) -> None:
    for hook in list(reversed(_hooks)):  # no lock: the handler may have cut into a holder of _lock
        try:
            hook()
        except BaseException:  # noqa: BLE001 - the exit below must happen whatever a hook does
            pass
    remove_temps()
    try:
        sys.stderr.flush()
        os.write(2, MESSAGE.encode())
    except (OSError, ValueError):
        pass
    os._exit(128 + int(signum))


def _handler(signum: int, _frame: FrameType | None) -> None:
    if _state["held"]:
        _state["pending"] = signum
        return
    _die(signum)


def install() -> Callable[[], None]:
    """Handle SIGINT and SIGTERM as described above until the returned function is called (which puts
    the previous handlers back). Does nothing off the main thread (signals cannot be set there)."""
    if threading.current_thread() is not threading.main_thread() or _state["installed"]:
        return lambda: None
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    for s in _SIGNALS:
        signal.signal(s, _handler)
    _state.update(installed=True, held=0, pending=None, hold_after_commit=False)

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        _state.update(installed=False, held=0, pending=None, hold_after_commit=False)

    return restore


@contextmanager
def held() -> Iterator[None]:
    """A block that is never cut in two: a signal arriving inside is acted on when it ends."""
    _state["held"] += 1
    try:
        yield
    finally:
        _state["held"] -= 1
        if not _state["held"] and _state["pending"] is not None:
            signum, _state["pending"] = _state["pending"], None
            _die(signum)


def hold_after_commit(enabled: bool = True) -> None:
    """From now on, a commit (`committed()`) holds signals until `release()`."""
    _state["hold_after_commit"] = enabled and _state["installed"]


def committed() -> None:
    """Called by atomic writers right after the rename (inside `held()`)."""
    if _state["hold_after_commit"]:
        _state["held"] += 1
        _state["hold_after_commit"] = False
        _state["committed"] = True


def release(final: bool = False) -> None:
    """End the hold a commit started. `final`: the run is complete, so a signal that came meanwhile is
    dropped and later ones are ignored (the status says what happened: every output was written)."""
    if not _state.pop("committed", False):
        return
    if final:
        for s in _SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        _state["pending"] = None
    _state["held"] = max(0, _state["held"] - 1)
    if not _state["held"] and _state["pending"] is not None:
        signum, _state["pending"] = _state["pending"], None
        _die(signum)
