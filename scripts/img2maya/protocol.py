"""The img2maya server protocol, Maya side: message constants, encoding/decoding, and how to start
the server under the *system* Python with a clean environment (docs/PROTOCOL.md).

Pure standard library, Python 3.7+, and free of subprocess and Qt on purpose: `client.py` drives the
server with subprocess (batch Maya, scripting) and the panel drives it with QProcess; both build the
command line, the environment and the messages here, so they cannot drift apart.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any

PROTOCOL_VERSION = 1

# Requests (client -> server).
HELLO = "hello"
ANALYZE = "analyze"
REGENERATE = "regenerate"
CANCEL = "cancel"
SHUTDOWN = "shutdown"

# Replies and events (server -> client).
PROGRESS = "progress"  # {id, stage, fraction}
QUEUED = "queued"  # {id}: the job waits behind another one
RESULT = "result"  # {id, scene, files, timings, cached, photo_sha256}
ERROR = "error"  # {id, code, message}
CANCELLED = "cancelled"  # {id}
ACK = "ack"  # {id, target, state}: answer to a cancel
BYE = "bye"  # {id}: answer to a shutdown, the server then exits 0

#: Messages that end a request: after one of these no more messages carry that id.
TERMINAL = (HELLO, RESULT, ERROR, CANCELLED, ACK, BYE)

_ids = itertools.count(1)


class ProtocolError(ValueError):
    """A line from the server that is not a protocol message."""


def new_id(prefix: str = "m") -> str:
    """A request id unique within this Maya session."""
    return f"{prefix}{os.getpid()}-{next(_ids)}"


def request(kind: str, req_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A request dict; fields whose value is None are left out (the server then uses its default)."""
    msg = {"id": req_id if req_id is not None else new_id(), "type": kind}
    msg.update((k, v) for k, v in fields.items() if v is not None)
    return msg


def analyze_request(photo: str, recursion: int = 0, options: Mapping[str, Any] | None = None,
                    req_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """`analyze`: photo path; optional seg_model, depth_model, instances_model (an instance model id, or
    "none": no instances; left out: the server's default instance model when installed), focal_px,
    fov_deg, out_dir."""
    return request(ANALYZE, req_id, photo=str(photo), recursion=int(recursion),
                   options=dict(options or {}), **fields)


def regenerate_request(photo: str | None = None, ref: str | None = None,
                       photo_sha256: str | None = None, recursion: int = 0,
                       options: Mapping[str, Any] | None = None, req_id: str | None = None,
                       **fields: Any) -> dict[str, Any]:
    """`regenerate`: analysis only on the cached network output of a photo path, a previous request
    id (`ref`) or a photo hash; with a photo path, seg_model, depth_model and instances_model (as in
    `analyze_request`) name the cache entry. Pass supersede=True to cancel older regenerates (slider
    drags)."""
    if photo is None and ref is None and photo_sha256 is None:
        raise ValueError("regenerate needs photo, ref or photo_sha256")
    return request(REGENERATE, req_id, photo=None if photo is None else str(photo), ref=ref,
                   photo_sha256=photo_sha256, recursion=int(recursion), options=dict(options or {}),
                   **fields)


def encode(message: Mapping[str, Any]) -> bytes:
    """One protocol line (UTF-8 JSON + newline). NaN/inf are refused: the server cannot read them."""
    return (json.dumps(dict(message), allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")


def parse_line(line: bytes | str) -> dict[str, Any]:
    """Decode one line from the server; ProtocolError when it is not a JSON object with a type."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("server line is not UTF-8") from None
    text = line.strip()
    try:
        msg = json.loads(text)
    except ValueError:
        raise ProtocolError(f"server line is not JSON: {text[:120]!r}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError(f"server line is not a protocol message: {text[:120]!r}")
    return msg


class LineDecoder:
    """Split a byte stream that arrives in arbitrary chunks (QProcess.readyRead) into messages."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[dict[str, Any] | ProtocolError]:
        """Messages completed by `chunk`; a bad line is returned as its ProtocolError, not raised,
        so one corrupt line never loses the messages around it."""
        self._buffer += bytes(chunk)
        *lines, self._buffer = self._buffer.split(b"\n")
        out: list[dict[str, Any] | ProtocolError] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                out.append(parse_line(line))
            except ProtocolError as exc:
                out.append(exc)
        return out


def error_text(message: Mapping[str, Any]) -> str:
    """One line for the user from an `error` reply."""
    return "{} ({})".format(message.get("message", "unknown error"), message.get("code", "error"))


# --------------------------------------------------------------------------- starting the server

#: Variables removed from the server's environment, and why:
#: - PYTHONPATH, PYTHONHOME, PYTHONSTARTUP, PYTHONEXECUTABLE, __PYVENV_LAUNCHER__ and every other
#:   PYTHON* setting: Maya sets them for *its* interpreter (its site-packages, its stdlib, possibly an
#:   older Python); inherited, they make the system Python load Maya's modules or fail to start.
#:   (PYTHONIOENCODING/PYTHONUNBUFFERED are then set explicitly for the protocol.)
#: - MAYA_* variables that name Python settings (MAYA_PYTHON_VERSION, ...): Maya's only.
#: - QT_PLUGIN_PATH, QT_QPA_PLATFORM_PLUGIN_PATH, QML*_IMPORT_PATH, QT_PREFERRED_BINDING(S), QT_API,
#:   PYSIDE_DESIGNER_PLUGINS: point at Maya's Qt build; a PySide/Qt in the system Python would load
#:   incompatible plug-ins.
#: - From PATH, LD_LIBRARY_PATH, DYLD_LIBRARY_PATH, DYLD_FRAMEWORK_PATH, DYLD_FALLBACK_LIBRARY_PATH:
#:   only the entries inside the Maya installation ($MAYA_LOCATION): Maya's own libpython, OpenSSL,
#:   libstdc++ and Qt would otherwise shadow the system ones that torch/TF were built against.
#:   Entries outside Maya (e.g. the user's CUDA) are kept.
STRIPPED_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "__PYVENV_LAUNCHER__",
                      "QT_PLUGIN_PATH", "QT_QPA_PLATFORM_PLUGIN_PATH", "QML2_IMPORT_PATH", "QML_IMPORT_PATH",
                      "QT_PREFERRED_BINDING", "QT_PREFERRED_BINDINGS", "QT_API", "PYSIDE_DESIGNER_PLUGINS")
PATH_VARIABLES = ("PATH", "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "DYLD_FRAMEWORK_PATH",
                  "DYLD_FALLBACK_LIBRARY_PATH")
_KEPT_PYTHON_VARIABLES = ("PYTHONUTF8", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")


def _maya_roots(env: Mapping[str, str]) -> list[str]:
    roots = []
    for name in ("MAYA_LOCATION",):
        value = env.get(name)
        if value:
            roots.append(os.path.normcase(os.path.realpath(value)))
    return roots


def _inside(path: str, roots: Sequence[str]) -> bool:
    if not path:
        return False
    real = os.path.normcase(os.path.realpath(path))
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _is_maya_dir(directory: str, roots: Sequence[str]) -> bool:
    """A folder of Maya's: inside $MAYA_LOCATION, or holding mayapy (found even without MAYA_LOCATION)."""
    if _inside(directory, roots):
        return True
    return any(os.path.isfile(os.path.join(directory, n)) for n in ("mayapy", "mayapy.exe"))


def clean_environment(env: Mapping[str, str] | None = None,
                      engine_root: str | None = None) -> dict[str, str]:
    """A copy of `env` (default os.environ) fit for the system Python: Maya's Python and Qt settings
    removed (see STRIPPED_VARIABLES), the protocol streams set to UTF-8/unbuffered, and PYTHONPATH set to
    `engine_root` (the folder holding `inference_server/`) when given, so an engine that is not
    pip-installed in the system Python is still found."""
    src = dict(os.environ if env is None else env)
    roots = _maya_roots(src)
    out: dict[str, str] = {}
    for key, value in src.items():
        upper = key.upper()
        if upper in STRIPPED_VARIABLES:
            continue
        if upper.startswith("PYTHON") and upper not in _KEPT_PYTHON_VARIABLES:
            continue
        if upper.startswith("MAYA_") and "PYTHON" in upper:
            continue
        if upper in PATH_VARIABLES:
            kept = [p for p in value.split(os.pathsep) if p and not _is_maya_dir(p, roots)]
            if not kept:
                continue
            value = os.pathsep.join(kept)
        out[key] = value
    out["PYTHONIOENCODING"] = "utf-8"
    out["PYTHONUNBUFFERED"] = "1"
    if engine_root:
        out["PYTHONPATH"] = str(engine_root)
    return out


def default_engine_root(env: Mapping[str, str] | None = None) -> str | None:
    """The folder that holds `inference_server/`: $IMG2MAYA_ROOT (set by img2maya.mod), else the module
    root two levels above this file (scripts/img2maya/ -> root). None when neither has it."""
    src = os.environ if env is None else env
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for root in (src.get("IMG2MAYA_ROOT"), here):
        if root and os.path.isfile(os.path.join(root, "inference_server", "__init__.py")):
            return os.path.abspath(root)
    return None


def find_system_python(env: Mapping[str, str] | None = None) -> list[list[str]]:
    """Commands that start a system Python 3, best first: $IMG2MAYA_PYTHON, the checkout's own `.venv`
    (made by `make install`), `py -3` (Windows launcher), then python3 / python on PATH. Maya's own
    interpreters (mayapy, anything inside $MAYA_LOCATION or beside mayapy) are skipped: they cannot run
    torch/TF. Each candidate is an argv prefix."""
    src = dict(os.environ if env is None else env)
    roots = _maya_roots(src)
    search_path = clean_environment(src).get("PATH", "")
    out: list[list[str]] = []
    seen = set()

    def add(cmd: list[str]) -> None:
        exe = cmd[0]
        name = os.path.basename(exe).lower()
        if name.startswith("mayapy") or _is_maya_dir(os.path.dirname(exe), roots):
            return
        key = (os.path.normcase(os.path.realpath(exe)),) + tuple(cmd[1:])
        if key not in seen:
            seen.add(key)
            out.append(cmd)

    override = src.get("IMG2MAYA_PYTHON")
    if override:
        found = override if os.path.isfile(override) else shutil.which(override, path=search_path)
        if found:
            add([found])
    root = default_engine_root(src)
    if root:  # `make install` puts the engine and its dependencies in <checkout>/.venv
        for rel in (("Scripts", "python.exe"), ("bin", "python3"), ("bin", "python")):
            venv_python = os.path.join(root, ".venv", *rel)
            if os.path.isfile(venv_python):
                add([venv_python])
                break
    if sys.platform == "win32":
        launcher = shutil.which("py", path=search_path)
        if launcher:
            add([launcher, "-3"])
    store_stubs = []
    for name in ("python3", "python"):
        found = shutil.which(name, path=search_path)
        if not found:
            continue
        if "windowsapps" in found.lower():  # the Microsoft Store stub may only open the Store
            store_stubs.append([found])
        else:
            add([found])
    for cmd in store_stubs:
        add(cmd)
    return out


def server_command(python_exe: str | Sequence[str], extra_args: Sequence[str] = ()) -> list[str]:
    """argv that starts the server: `<python> -m inference_server [extra_args]`."""
    prefix = [python_exe] if isinstance(python_exe, str) else list(python_exe)
    return prefix + ["-m", "inference_server"] + [str(a) for a in extra_args]
