"""ServerClient against a real server subprocess (fake pipeline): calls, cancel, crash and restart."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from img2maya.client import JobCancelled, ServerClient, ServerError
from test_server_support import FAKE, ROOT, TESTS, make_photo, network_runs, server_env


def make_client(tmp_path: Path, extra: tuple[str, ...] = ("--pipeline", FAKE), **env: str) -> ServerClient:
    """A client whose server runs the fake pipeline. The client replaces PYTHONPATH by the engine root
    (as it does in Maya), so the tests folder rides along in that root."""
    return ServerClient(python=sys.executable, extra_args=list(extra), env=server_env(tmp_path, **env),
                        engine_root=os.pathsep.join([str(ROOT), str(TESTS)]))


@pytest.fixture
def client(tmp_path: Path):
    c = make_client(tmp_path)
    yield c
    c.close()


def test_hello_analyze_regenerate(client: ServerClient, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    info = client.start()
    assert info["schema"] == "img2maya/scene@1" and info["pid"] == client.pid
    photo = make_photo(tmp_path / "p.png")
    events = []
    result = client.analyze(str(photo), recursion=1, on_progress=lambda s, f: events.append((s, f)))
    assert result["type"] == "result" and result["cached"] is False
    assert result["scene"]["options"] == {"recursion": 1}
    assert events and events[-1] == ("done", 1.0)
    monkeypatch.chdir(tmp_path)  # a relative path means Maya's working folder, not the server's
    again = client.regenerate("p.png", recursion=3, options={"min_area_px": 10})
    assert again["cached"] is True
    assert again["scene"]["options"] == {"recursion": 3, "min_area_px": 10}
    assert network_runs(tmp_path) == 1
    with pytest.raises(ServerError) as err:
        client.analyze(str(photo), options={"bogus": 1})
    assert err.value.code == "user_error" and "bogus" in str(err.value)
    assert client.hello()["pid"] == info["pid"]  # still the same server


def test_cancel_from_another_thread(tmp_path: Path) -> None:
    client = make_client(tmp_path, IMG2MAYA_FAKE_SLOW="30")
    try:
        client.start()
        photo = make_photo(tmp_path / "p.png")
        started = threading.Event()

        def on_progress(stage: str, fraction: float) -> None:
            if stage == "segmentation":
                started.set()

        timer = threading.Thread(target=lambda: (started.wait(10), client.cancel()))
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(JobCancelled):
            client.analyze(str(photo), on_progress=on_progress)
        assert time.monotonic() - t0 < 10
        timer.join()
        assert client.hello()["pid"] == client.pid
    finally:
        assert client.close() == 0


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs kill -9")
def test_killed_server_raises_a_clear_error_then_restarts(tmp_path: Path) -> None:
    client = make_client(tmp_path, IMG2MAYA_FAKE_SLOW="30")
    try:
        first_pid = client.start()["pid"]
        photo = make_photo(tmp_path / "p.png")

        def kill(stage: str, fraction: float) -> None:
            if stage == "segmentation" and client.pid == first_pid:
                os.kill(first_pid, signal.SIGKILL)

        with pytest.raises(ServerError) as err:
            client.analyze(str(photo), on_progress=kill)
        message = str(err.value)
        assert err.value.code == "exited"
        assert message.startswith("inference server exited with code -9 during analyze request")
        assert "last stderr line: img2maya inference server 0.1.0 ready" in message
        assert "\n" not in message
        assert not client.running
        info = client.hello()  # restarts
        assert info["pid"] != first_pid and client.running
    finally:
        client.close()


def test_a_server_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    client = make_client(tmp_path, ("--pipeline", "no_such_module:Factory"))
    with pytest.raises(ServerError) as err:
        client.start()
    assert "exited with code 2" in str(err.value)
    assert "No module named 'no_such_module'" in str(err.value)
    missing = ServerClient(python="/nonexistent/python3")
    with pytest.raises(ServerError, match="cannot start the inference server"):
        missing.start()


def _python37() -> str | None:
    import glob
    import shutil

    pyenv = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.7*/bin/python3.7")))
    if pyenv:
        return pyenv[-1]
    found = shutil.which("python3.7")
    return found if found and "shims" not in found else None


def test_the_client_runs_under_python_37_like_maya_2022(tmp_path: Path) -> None:
    """Maya 2022 ships Python 3.7: run the real client there against a server on this Python."""
    import json
    import subprocess

    py37 = _python37()
    if py37 is None:
        pytest.skip("no Python 3.7 interpreter found (python3.7 on PATH or ~/.pyenv/versions/3.7*)")
    photo = make_photo(tmp_path / "p.png")
    script = f"""
import json, sys
sys.path.insert(0, {str(ROOT / 'scripts')!r})
from img2maya.client import ServerClient
c = ServerClient(python={sys.executable!r}, extra_args=["--pipeline", {FAKE!r}], env=json.loads(sys.argv[1]),
                 engine_root={os.pathsep.join([str(ROOT), str(TESTS)])!r})
stages = []
r = c.analyze({str(photo)!r}, recursion=1, on_progress=lambda s, f: stages.append(s))
g = c.regenerate(ref=r["id"], recursion=2)
print(json.dumps([sys.version_info[:2], r["cached"], g["cached"], g["scene"]["options"], "done" in stages,
                  c.close()]))
"""
    env = server_env(tmp_path)
    run = subprocess.run([py37, "-c", script, json.dumps(env)], capture_output=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")})
    assert run.returncode == 0, run.stderr.decode()
    assert json.loads(run.stdout) == [[3, 7], False, True, {"recursion": 2}, True, 0]
