"""Batches on a real local Ray (`ray.init(num_cpus=2)`): the same per-photo path, resume, a killed worker.

Ray is the optional extra `.[ray]`; `make test` installs it (the dev extra includes it). Outside CI a
checkout without Ray skips these tests with a message; in CI (`CI` set) a missing Ray is an error.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from batch_support import MainThread, leftovers, manifest, small_photos, wait_for
from test_cli_support import street

try:
    import ray
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("Ray is not installed: pip install -e '.[ray]' to run the Ray batch tests", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
BATCH_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    try:
        yield ray
    finally:
        ray.shutdown()


def _task_pids() -> list[int]:
    """Ray worker processes running one of our tasks now (their title is ray::<function>)."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as fh:
                    if fh.read().startswith(b"ray::_task"):
                        pids.append(int(d))
            except OSError:
                continue
    return pids


def test_ray_runs_the_same_per_photo_path(local_ray, tmp_path):
    s = street(tmp_path / "in")
    argv = ["scene", str(s.photo), "--labels", str(s.labels), "--label-names", str(s.names), "--depth", str(s.depth),
            "-q"]
    assert MainThread([*argv, "-o", f"{tmp_path / 'ray'}/", "--ray"]).join(BATCH_TIMEOUT_S) == 0
    assert MainThread([*argv, "-o", f"{tmp_path / 'here'}/"]).join(BATCH_TIMEOUT_S) == 0
    on_ray, here = manifest(tmp_path / "ray"), manifest(tmp_path / "here")
    e = on_ray["photos"]["street.json"]
    assert e["status"] == "ok" and e["objects"] == 3 and on_ray["run"]["mode"] == "ray local"
    assert int(e["worker"].rsplit(":", 1)[1]) != os.getpid()  # it ran in a Ray worker process
    assert (tmp_path / "ray" / "street.json").read_bytes() == (tmp_path / "here" / "street.json").read_bytes()
    assert {k: v for k, v in e.items() if k not in ("seconds", "worker", "finished")} == \
        {k: v for k, v in here["photos"]["street.json"].items() if k not in ("seconds", "worker", "finished")}


@pytest.mark.shared
def test_ray_kill_a_worker_mid_batch_and_the_batch_completes(local_ray, samples_dir, models_dir, tmp_path):
    shots = tmp_path / "shots"
    small_photos(samples_dir, shots, 6)
    out = tmp_path / "out"
    run = MainThread(["scene", str(shots), "-o", str(out), "--ray", "--models-dir", str(models_dir), "-q"])
    victims = wait_for(_task_pids, timeout=60, step=0.005)
    assert victims, "no Ray task seen running"
    os.kill(victims[0], signal.SIGKILL)
    assert run.join(BATCH_TIMEOUT_S) == 0
    doc = manifest(out)
    assert sorted(doc["photos"]) == [f"p{k:02d}.json" for k in range(6)]
    assert all(e["status"] == "ok" and e["error"] is None and e["objects"] > 0 for e in doc["photos"].values())
    assert victims[0] not in {int(e["worker"].rsplit(":", 1)[1]) for e in doc["photos"].values()}
    assert doc["run"]["done"] == 6 and doc["run"]["failed"] == 0 and doc["run"]["mode"] == "ray local"
    assert leftovers(out) == [] and all((out / k).stat().st_size > 100 for k in doc["photos"])
    # resume: everything is up to date, nothing is sent to Ray
    assert MainThread(["scene", str(shots), "-o", str(out), "--ray", "--models-dir", str(models_dir), "-q"]).join(
        BATCH_TIMEOUT_S) == 0
    assert manifest(out)["run"]["skipped"] == 6 and manifest(out)["run"]["done"] == 0


def test_a_ray_address_that_does_not_answer_is_one_line(tmp_path, capsys):
    from inference_server.cli import main

    s = street(tmp_path)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rc = main(["scene", str(s.photo), "--depth", "none", "-o", f"{tmp_path / 'out'}/", "--ray", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert rc == 2 and err.splitlines() == [f"img2maya: error: Ray cluster 127.0.0.1:{port} does not answer "
                                            f"(Connection refused within 5 s): is it up, and is the port open from here?"]
    rc = main(["scene", str(s.photo), "-o", f"{tmp_path / 'out'}/", "--ray", "not an address"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("img2maya: error: --ray not an address: not a Ray address")
    assert not (tmp_path / "out").exists()


def test_ray_is_imported_only_with_ray(tmp_path):
    s = street(tmp_path)
    code = (f"import sys; from inference_server.cli import main; rc = main(['scene', {str(s.photo)!r}, '--labels', "
            f"{str(s.labels)!r}, '--label-names', {str(s.names)!r}, '--depth', {str(s.depth)!r}, '-q', '--workers', "
            f"'1', '-o', {str(tmp_path / 'o')!r} + '/']); print(rc, 'ray' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.stdout.split() == ["0", "False"], res.stderr
