"""scripts/img2maya/protocol.py: messages, stream decoding, the clean environment, finding Python."""

from __future__ import annotations

import ast
import os
import stat
import sys
from pathlib import Path

import pytest
from img2maya import protocol

ROOT = Path(__file__).resolve().parents[1]
MAYA_SIDE = [ROOT / "scripts" / "img2maya" / "protocol.py", ROOT / "scripts" / "img2maya" / "client.py"]


@pytest.mark.parametrize("path", MAYA_SIDE, ids=lambda p: p.name)
def test_maya_side_parses_as_python_37_and_imports_only_the_stdlib(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 7))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add((node.module or "").split(".")[0])
    assert not imported & {"numpy", "Qt", "PySide2", "PySide6", "maya", "inference_server"}
    if path.name == "protocol.py":
        assert "subprocess" not in imported  # the Qt panel drives the server with QProcess


def test_requests_round_trip_and_leave_out_none_fields() -> None:
    msg = protocol.analyze_request("/p.jpg", recursion=2, options={"color_stat": "median"}, req_id="a",
                                   focal_px=None, seg_model="m")
    assert msg == {"id": "a", "type": "analyze", "photo": "/p.jpg", "recursion": 2,
                   "options": {"color_stat": "median"}, "seg_model": "m"}
    line = protocol.encode(msg)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert protocol.parse_line(line) == msg
    regen = protocol.regenerate_request(ref="a", recursion=1, req_id="r", supersede=True)
    assert regen == {"id": "r", "type": "regenerate", "ref": "a", "recursion": 1, "options": {},
                     "supersede": True}
    with pytest.raises(ValueError):
        protocol.regenerate_request()
    with pytest.raises(ValueError):
        protocol.encode({"id": 1, "type": "analyze", "focal_px": float("nan")})
    assert protocol.new_id() != protocol.new_id()


def test_parse_line_rejects_what_is_not_a_message() -> None:
    for bad in (b"TF banner\n", b"[1]\n", b'{"id": 1}\n', b"\xff\n"):
        with pytest.raises(protocol.ProtocolError):
            protocol.parse_line(bad)


def test_line_decoder_reassembles_chunks_and_isolates_bad_lines() -> None:
    data = b'{"type":"progress","id":1,"stage":"load","fraction":0}\nnoise\n{"type":"result","id":1}\n'
    dec = protocol.LineDecoder()
    out = []
    for i in range(0, len(data), 7):
        out.extend(dec.feed(data[i:i + 7]))
    assert [m["type"] if isinstance(m, dict) else "bad" for m in out] == ["progress", "bad", "result"]
    assert dec.feed(b'{"type":"bye"') == [] and dec.feed(b',"id":2}\n') == [{"type": "bye", "id": 2}]


def test_clean_environment_strips_maya_python_and_qt(tmp_path: Path) -> None:
    maya = tmp_path / "maya2025"
    (maya / "bin").mkdir(parents=True)
    (maya / "lib").mkdir()
    env = {
        "MAYA_LOCATION": str(maya), "PYTHONPATH": "/maya/scripts", "PYTHONHOME": str(maya),
        "PYTHONSTARTUP": "/x.py", "MAYA_PYTHON_VERSION": "3", "MAYA_SCRIPT_PATH": "/keep",
        "QT_PLUGIN_PATH": str(maya / "plugins"), "QML2_IMPORT_PATH": "/q", "PYTHONUTF8": "1",
        "PATH": os.pathsep.join([str(maya / "bin"), "/usr/bin", "/opt/cuda/bin"]),
        "LD_LIBRARY_PATH": str(maya / "lib"), "HOME": "/home/u",
    }
    out = protocol.clean_environment(env)
    assert out["PATH"] == os.pathsep.join(["/usr/bin", "/opt/cuda/bin"])
    for gone in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "MAYA_PYTHON_VERSION", "QT_PLUGIN_PATH",
                 "QML2_IMPORT_PATH", "LD_LIBRARY_PATH"):
        assert gone not in out, gone
    assert out["MAYA_SCRIPT_PATH"] == "/keep" and out["HOME"] == "/home/u" and out["PYTHONUTF8"] == "1"
    assert out["PYTHONIOENCODING"] == "utf-8" and out["PYTHONUNBUFFERED"] == "1"
    assert protocol.clean_environment(env, engine_root="/engine")["PYTHONPATH"] == "/engine"
    assert env["PYTHONPATH"] == "/maya/scripts"  # the input is not modified


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX executables")
def test_find_system_python_skips_maya_interpreters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "default_engine_root", lambda env=None: None)  # no checkout .venv
    maya_bin = tmp_path / "autodesk" / "maya" / "bin"
    _exe(maya_bin / "mayapy")
    _exe(maya_bin / "python3")  # beside mayapy: Maya's own
    other_maya = tmp_path / "elsewhere"
    _exe(other_maya / "mayapy")
    system = _exe(tmp_path / "usr" / "bin" / "python3")
    _exe(tmp_path / "usr" / "bin" / "python")
    env = {"PATH": os.pathsep.join([str(maya_bin), str(other_maya), str(system.parent)])}
    found = protocol.find_system_python(env)
    assert found[0] == [str(system)]
    assert all("maya" not in c[0] for c in found)
    custom = _exe(tmp_path / "custom" / "py311")
    env["IMG2MAYA_PYTHON"] = str(custom)
    assert protocol.find_system_python(env)[0] == [str(custom)]
    assert protocol.find_system_python({"PATH": str(maya_bin)}) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX executables")
def test_find_system_python_prefers_the_checkouts_venv(tmp_path: Path) -> None:
    """`make install` puts the engine's dependencies in <checkout>/.venv: that interpreter comes right
    after an explicit $IMG2MAYA_PYTHON and before whatever python3 is on PATH."""
    root = tmp_path / "img2maya"
    (root / "inference_server").mkdir(parents=True)
    (root / "inference_server" / "__init__.py").write_text("")
    venv_python = _exe(root / ".venv" / "bin" / "python3")
    system = _exe(tmp_path / "usr" / "bin" / "python3")
    env = {"PATH": str(system.parent), "IMG2MAYA_ROOT": str(root)}
    assert protocol.find_system_python(env)[:2] == [[str(venv_python)], [str(system)]]
    custom = _exe(tmp_path / "custom" / "py311")
    env["IMG2MAYA_PYTHON"] = str(custom)
    assert protocol.find_system_python(env)[:2] == [[str(custom)], [str(venv_python)]]


def test_server_command_and_engine_root() -> None:
    assert protocol.server_command("/usr/bin/python3", ["--cache-size-mb", 10]) == [
        "/usr/bin/python3", "-m", "inference_server", "--cache-size-mb", "10"]
    assert protocol.server_command(["py", "-3"])[:3] == ["py", "-3", "-m"]
    assert protocol.default_engine_root({}) == str(ROOT)
    assert protocol.default_engine_root({"IMG2MAYA_ROOT": "/nowhere"}) == str(ROOT)
