"""Batches into a folder: inputs and outputs, the manifest, resume, failures, workers (inference_server/batch)."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from batch_support import MainThread, leftovers, manifest, small_photos, wait_for
from PIL import Image
from test_cli_support import street

from inference_server.analysis.engine import SceneOptions
from inference_server.batch import manifest as manifest_mod
from inference_server.batch import plan as plan_mod
from inference_server.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _run(capsys, *argv) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def _errors(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("img2maya: error:")]


def _fake_networks(monkeypatch, s):
    from test_cli import _fake_networks as fake

    return fake(monkeypatch, s)


def _photo(path: Path, s, flip: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(s.rgb[:, ::-1] if flip else s.rgb).save(path)
    return path


# ---- plan: folders, order, relative outputs -----------------------------------------------------------------


def test_folders_give_their_photos_sorted_and_outputs_keep_relative_paths(tmp_path):
    shots = tmp_path / "shots"
    for rel in ["b.jpg", "a.png", "A/IMG_1.jpg", "B/IMG_1.jpg", "B/deep/c.tif", ".hidden.jpg", "notes.txt",
                "x.jpg", "x.png"]:
        (shots / rel).parent.mkdir(parents=True, exist_ok=True)
        (shots / rel).write_bytes(b"x")
    flat = plan_mod.plan([str(shots)], tmp_path / "out", "usda")
    assert [j.key for j in flat] == ["a.usda", "b.usda", "x.jpg.usda", "x.png.usda"]
    deep = plan_mod.plan([str(shots)], tmp_path / "out", "usda", recursive=True)
    assert [j.key for j in deep] == ["a.usda", "b.usda", "x.jpg.usda", "x.png.usda", "A/IMG_1.usda",
                                     "B/IMG_1.usda", "B/deep/c.usda"]
    assert deep[4].source == str(shots / "A" / "IMG_1.jpg") and deep[4].output == str(tmp_path / "out/A/IMG_1.usda")
    # two folders: relative to the folder holding both; files given one by one: the same rule
    two = plan_mod.plan([str(shots / "A"), str(shots / "B")], tmp_path / "o", "json")
    assert [j.key for j in two] == ["A/IMG_1.json", "B/IMG_1.json"]
    files = plan_mod.plan([str(shots / "b.jpg"), str(shots / "A/IMG_1.jpg"), str(shots / "b.jpg")], tmp_path / "o", "glb")
    assert [(j.index, j.key) for j in files] == [(0, "b.glb"), (1, "A/IMG_1.glb")]


def test_the_output_folder_inside_an_input_folder_is_not_searched(tmp_path):
    shots = tmp_path / "shots"
    (shots / "out" / "old").mkdir(parents=True)
    (shots / "a.jpg").write_bytes(b"x")
    (shots / "out" / "old" / "z.jpg").write_bytes(b"x")
    jobs = plan_mod.plan([str(shots)], shots / "out", "json", recursive=True)
    assert [j.key for j in jobs] == ["a.json"]


def test_empty_and_unreadable_folders_are_one_line_errors(tmp_path, capsys, monkeypatch):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "a.jpg").write_bytes(b"x")
    rc, err = _run(capsys, "scene", tmp_path / "empty", "-o", tmp_path / "out")
    assert rc == 2 and err.strip().splitlines() == [
        f"img2maya: error: folder {tmp_path / 'empty'} holds no photos (.jpg, .jpeg, .jpe, .jfif, .png, .tif, .tiff, "
        ".webp, .bmp); --recursive to look into its subfolders"]
    real_scandir = os.scandir

    def denied(path):
        if str(path).endswith("sub"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(plan_mod.os, "scandir", denied)
    rc, err = _run(capsys, "scene", tmp_path / "empty", "--recursive", "-o", tmp_path / "out")
    assert rc == 2 and err.strip().splitlines() == [
        f"img2maya: error: cannot read folder {tmp_path / 'empty' / 'sub'}: permission denied"]
    assert not (tmp_path / "out").exists()


def test_batch_flags_need_a_folder_output(tmp_path, capsys):
    s = street(tmp_path)
    rc, err = _run(capsys, "scene", s.photo, "--workers", "2", "-o", tmp_path / "s.usda")
    assert rc == 2 and _errors(err) == [f"img2maya: error: --workers writes into a folder: give -o OUT/ (not the "
                                        f"file {tmp_path / 's.usda'})"]
    rc, err = _run(capsys, "scene", tmp_path, "-o", tmp_path / "s.json")
    assert rc == 2 and "a folder of photos writes into a folder" in err
    rc, err = _run(capsys, "scene", s.photo, "--workers", "0", "-o", tmp_path / "o/")
    assert rc == 2 and "must be >= 1, got 0" in err


# ---- the manifest -----------------------------------------------------------------------------------------


def _request(**kw):
    from inference_server.batch.work import Request

    return Request(options=SceneOptions(**kw.pop("options", {})), **kw)


def test_manifest_options_hold_every_scene_option_and_the_camera_flags(tmp_path):
    table = tmp_path / "t.json"
    table.write_text('{"classes": []}')
    opts = manifest_mod.options_of(_request(options={"shapes_table": str(table), "ignore_exif": True,
                                                     "estimate_camera": False}, focal_px=800.0), "usdz")
    for f in dataclasses.fields(SceneOptions):
        assert f.name in opts, f.name
    assert opts["ignore_exif"] is True and opts["estimate_camera"] is False and opts["focal_px"] == 800.0
    assert opts["fov_deg"] is None and opts["format"] == "usdz" and opts["look"] == "color"
    assert opts["shapes_table_sha256"] == manifest_mod._file_sha256(str(table))
    models = manifest_mod.models_of(_request(depth_model="none"))
    assert models["segmentation"] == "deeplabv3-mnv2-ade20k150" and models["depth"] == "none"
    assert len(models["weights"]["deeplabv3-mnv2-ade20k150"]) == 64
    assert manifest_mod.models_of(_request(labels="l.png", depth_file="d.npy"))["segmentation"] == "user"


def test_a_manifest_that_is_not_one_is_refused_unless_force(tmp_path, capsys):
    s = street(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "img2maya-batch.json").write_text("{not json")
    argv = ["scene", s.photo, "--labels", s.labels, "--label-names", s.names, "--depth", s.depth, "-o", f"{out}/"]
    rc, err = _run(capsys, *argv)
    assert rc == 2 and len(_errors(err)) == 1 and "cannot read the batch manifest" in err and "--force" in err
    assert (out / "img2maya-batch.json").read_text() == "{not json"
    rc, err = _run(capsys, *argv, "--force", "-q")
    assert rc == 0 and manifest(out)["photos"]["street.json"]["status"] == "ok"


def test_resume_skips_what_is_up_to_date_and_redoes_what_changed(tmp_path, capsys):
    s = street(tmp_path / "in")
    out = tmp_path / "out"
    argv = ["scene", s.photo, "--labels", s.labels, "--label-names", s.names, "--depth", s.depth, "-o", f"{out}/"]
    rc, err = _run(capsys, *argv)
    assert rc == 0, err
    doc = manifest(out)
    e = doc["photos"]["street.json"]
    assert e["status"] == "ok" and e["error"] is None and e["output"] == "street.json" and e["objects"] == 3
    assert e["sha256"] == manifest_mod._file_sha256(str(s.photo)) and e["source"] == str(s.photo)
    assert e["models"]["segmentation"] == "user" and e["models"]["depth"] == "user"
    assert e["options"]["labels"]["sha256"] == manifest_mod._file_sha256(str(s.labels))
    assert doc["run"]["done"] == 1 and doc["run"]["skipped"] == 0 and doc["run"]["mode"] == "in process"
    assert "img2maya: batch: 1 written, 0 up to date, 0 failed of 1 photos" in err
    scene_file = out / "street.json"
    before = scene_file.stat().st_mtime_ns
    rc, err = _run(capsys, *argv)
    assert rc == 0 and manifest(out)["run"]["skipped"] == 1 and scene_file.stat().st_mtime_ns == before
    rc, _ = _run(capsys, *argv, "--recursion", "1", "-q")  # another option: made again
    assert rc == 0 and manifest(out)["run"]["done"] == 1
    assert manifest(out)["photos"]["street.json"]["options"]["recursion"] == 1
    rc, _ = _run(capsys, *argv, "--recursion", "1", "--force", "-q")
    assert rc == 0 and manifest(out)["run"]["done"] == 1
    scene_file.unlink()  # a missing output is made again
    rc, _ = _run(capsys, *argv, "--recursion", "1", "-q")
    assert rc == 0 and manifest(out)["run"]["done"] == 1 and scene_file.is_file()
    Image.fromarray(s.rgb[:, ::-1]).save(s.photo)  # other bytes: made again
    rc, _ = _run(capsys, *argv, "--recursion", "1", "-q")
    assert rc == 0 and manifest(out)["run"]["done"] == 1
    assert leftovers(out) == []


def test_one_bad_photo_never_stops_the_batch_and_a_rerun_finishes_it(tmp_path, capsys, monkeypatch):
    s = street(tmp_path / "data")
    api = _fake_networks(monkeypatch, s)
    shots = tmp_path / "shots"
    for k in range(3):
        _photo(shots / f"p{k}.png", s, flip=bool(k % 2))
    (shots / "bad.jpg").write_bytes(b"nope")
    out = tmp_path / "out"
    rc, err = _run(capsys, "scene", shots, "-o", out, "--format", "usda")
    assert rc == 2
    assert _errors(err) == [f"img2maya: error: cannot read photo {shots / 'bad.jpg'}: not an image file Pillow "
                            f"can read (JPEG, PNG, TIFF, WebP, BMP, ...)", "img2maya: error: 1 of 4 photos failed"]
    photos = manifest(out)["photos"]
    assert {k: v["status"] for k, v in photos.items()} == {"bad.usda": "failed", "p0.usda": "ok", "p1.usda": "ok",
                                                          "p2.usda": "ok"}
    assert photos["bad.usda"]["error"].startswith("cannot read photo")
    assert photos["bad.usda"]["sha256"] == manifest_mod._file_sha256(str(shots / "bad.jpg"))
    assert sorted(p.name for p in out.iterdir()) == ["img2maya-batch.json", "p0.usda", "p1.usda", "p2.usda"]
    assert len([c for c in api.calls if c[0] == "segment"]) == 3
    _photo(shots / "bad.jpg", s)  # fixed: the rerun makes only that one
    api.calls.clear()
    rc, err = _run(capsys, "scene", shots, "-o", out, "--format", "usda", "-q")
    assert rc == 0 and err == ""
    assert len([c for c in api.calls if c[0] == "segment"]) == 1
    doc = manifest(out)
    assert doc["run"]["done"] == 1 and doc["run"]["skipped"] == 3 and doc["photos"]["bad.usda"]["status"] == "ok"


def test_a_photo_that_vanishes_mid_batch_fails_alone(tmp_path, capsys, monkeypatch):
    from inference_server import pipeline

    s = street(tmp_path / "data")
    _fake_networks(monkeypatch, s)
    shots = tmp_path / "shots"
    for k in range(3):
        _photo(shots / f"p{k}.png", s, flip=bool(k % 2))
    real_run = pipeline.run

    def run_then_remove_the_last(photo, **kw):
        (shots / "p2.png").unlink(missing_ok=True)
        return real_run(photo, **kw)

    monkeypatch.setattr(pipeline, "run", run_then_remove_the_last)
    out = tmp_path / "out"
    rc, err = _run(capsys, "scene", shots, "-o", out, "-q")
    assert rc == 2
    assert _errors(err) == [f"img2maya: error: photo not found: {shots / 'p2.png'}",
                            "img2maya: error: 1 of 3 photos failed"]
    photos = manifest(out)["photos"]
    assert [photos[k]["status"] for k in ("p0.json", "p1.json", "p2.json")] == ["ok", "ok", "failed"]
    assert photos["p2.json"]["sha256"] == manifest_mod._file_sha256(str(shots / "p0.png"))  # hashed before


def test_a_full_disk_stops_the_batch_with_one_line_and_a_valid_manifest(tmp_path, capsys, monkeypatch):
    s = street(tmp_path / "data")
    _fake_networks(monkeypatch, s)
    shots = tmp_path / "shots"
    for k in range(3):
        _photo(shots / f"p{k}.png", s, flip=bool(k % 2))
    real_write = manifest_mod._write_atomic
    writes = []

    def full(path, data, register):
        writes.append(len(data))
        if len(writes) > 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, data, register)

    monkeypatch.setattr(manifest_mod, "_write_atomic", full)
    monkeypatch.setattr(manifest_mod, "COST_FACTOR", 0.0)  # a write after every photo
    out = tmp_path / "out"
    rc, err = _run(capsys, "scene", shots, "-o", out, "-q")
    assert rc == 2
    assert _errors(err) == [f"img2maya: error: cannot write the batch manifest {out / 'img2maya-batch.json'}: No "
                            f"space left on device"]
    doc = manifest(out)  # the last complete version: the first photo
    assert list(doc["photos"]) == ["p0.json"] and doc["photos"]["p0.json"]["status"] == "ok"
    assert leftovers(out) == []


def test_a_read_only_output_folder_is_refused_before_any_work(tmp_path, capsys):
    s = street(tmp_path)
    rc, err = _run(capsys, "scene", s.photo, "--depth", "none", "-o", "/proc/img2maya-batch-test/")
    assert rc == 2 and len(_errors(err)) == 1 and "cannot use output folder /proc/img2maya-batch-test" in err


def test_two_batches_into_one_folder_at_once(tmp_path, capsys):
    import fcntl

    s = street(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    held = os.open(out, os.O_RDONLY)  # what a running batch holds: a lock on the folder
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        rc, err = _run(capsys, "scene", s.photo, "--depth", "none", "-o", f"{out}/")
    finally:
        os.close(held)
    assert rc == 2 and _errors(err) == [f"img2maya: error: another img2maya batch is writing into {out}; wait for "
                                        f"it to end or choose another -o"]
    assert list(out.iterdir()) == []


def test_the_bar_counts_done_skipped_failed(capsys):
    import io

    from inference_server.batch.progress import BatchBar

    sink = io.StringIO()
    bar = BatchBar(5, enabled=True, file=sink)
    bar.skip(2)
    bar.start()
    bar.finish(True)
    bar.finish(False)
    assert (bar.done, bar.skipped, bar.failed) == (1, 2, 1)
    assert bar.text().startswith("1 done, 2 skipped, 1 failed, ") and bar.text().endswith(" photos/min")
    bar.close()
    assert "1 done, 2 skipped, 1 failed" in sink.getvalue() and "4/5" in sink.getvalue()
    silent = BatchBar(3, enabled=False)
    silent.finish(True)
    silent.close()
    assert silent.bar is None and silent.done == 1


# ---- worker processes (real networks) -----------------------------------------------------------------------


@pytest.mark.shared
def test_workers_kill_one_mid_batch_and_the_batch_completes(samples_dir, models_dir, tmp_path):
    import multiprocessing

    shots = tmp_path / "shots"
    small_photos(samples_dir, shots, 5)
    out = tmp_path / "out"
    run = MainThread(["scene", str(shots), "-o", str(out), "--workers", "2", "--models-dir", str(models_dir), "-q"])
    victim = wait_for(lambda: next((p for p in multiprocessing.active_children() if p.name == "img2maya-worker"
                                    and p.pid), None), timeout=60)
    assert victim is not None, "no worker process started"
    os.kill(victim.pid, signal.SIGKILL)
    assert run.join(timeout=180) == 0
    doc = manifest(out)
    assert sorted(doc["photos"]) == [f"p{k:02d}.json" for k in range(5)]
    assert all(e["status"] == "ok" and e["error"] is None and e["objects"] > 0 for e in doc["photos"].values())
    pids = {int(e["worker"].rsplit(":", 1)[1]) for e in doc["photos"].values()}
    assert victim.pid not in pids and 1 <= len(pids) <= 3  # two workers, one of them replaced
    assert doc["run"] == {**doc["run"], "done": 5, "failed": 0, "skipped": 0, "mode": "workers 2"}
    assert leftovers(out) == [] and all((out / k).stat().st_size > 100 for k in doc["photos"])
    assert wait_for(lambda: not [p for p in multiprocessing.active_children() if p.name == "img2maya-worker"], 10)


@pytest.mark.shared
def test_ctrl_c_keeps_finished_outputs_and_a_rerun_finishes_the_rest(samples_dir, models_dir, tmp_path):
    shots = tmp_path / "shots"
    small_photos(samples_dir, shots, 6)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "inference_server.cli", "scene", str(shots), "-o", str(out), "--workers", "2",
            "--models-dir", str(models_dir), "-q"]
    proc = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        def some_done():
            try:
                return any(e["status"] == "ok" for e in manifest(out)["photos"].values())
            except (OSError, ValueError):
                return False

        assert wait_for(some_done, timeout=90, step=0.05), "no photo finished"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "img2maya: error: interrupted"
    doc = manifest(out)  # valid JSON, and what it says is on disk
    done = [k for k, e in doc["photos"].items() if e["status"] == "ok"]
    assert done and all((out / k).stat().st_size > 100 for k in done)
    assert leftovers(out) == []
    pids = [int(e["worker"].rsplit(":", 1)[1]) for e in doc["photos"].values()]
    assert wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in pids), timeout=10), "a worker outlived Ctrl-C"
    rerun = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    doc = manifest(out)
    assert doc["run"]["skipped"] >= len(done) and doc["run"]["done"] + doc["run"]["skipped"] == 6
    assert sorted(doc["photos"]) == [f"p{k:02d}.json" for k in range(6)]
    assert all(e["status"] == "ok" for e in doc["photos"].values())
    json.dumps(doc)


def test_ray_missing_is_one_line(tmp_path, capsys, monkeypatch):
    s = street(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    rc, err = _run(capsys, "scene", s.photo, "--labels", s.labels, "--label-names", s.names, "--depth", s.depth,
                   "-o", f"{tmp_path / 'out'}/", "--ray")
    assert rc == 2 and len(_errors(err)) == 1
    assert _errors(err)[0].startswith("img2maya: error: --ray needs Ray, which is not installed (")
    assert _errors(err)[0].endswith("pip install 'img2maya[ray]' (or pip install ray)")
    assert not (tmp_path / "out").exists()  # checked before anything is written
