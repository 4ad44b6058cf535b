"""The server as Maya sees it: a real subprocess speaking NDJSON (fake pipeline injected)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_server_support import Wire, make_photo, network_runs, start_server


@pytest.fixture
def wire(tmp_path: Path):
    w = Wire(start_server(tmp_path))
    yield w
    w.close()


def test_hello_reports_version_schema_models_and_pid(wire: Wire) -> None:
    wire.send({"id": "h", "type": "hello"})
    msg = wire.read()
    assert msg["type"] == "hello" and msg["id"] == "h"
    assert msg["schema"] == "img2maya/scene@1"
    assert msg["protocol"] == 1
    assert msg["pid"] == wire.proc.pid
    assert msg["models"]["defaults"] == {"seg": "fake-seg", "depth": "fake-depth"}
    assert msg["devices"]["cpu"] is True


def test_malformed_requests_get_errors_and_the_server_keeps_serving(wire: Wire) -> None:
    wire.send(b"this is not json\n")
    assert wire.read() == {"type": "error", "id": None, "code": "bad_json",
                           "message": "malformed JSON: Expecting value at column 1"}
    wire.send(b"[1, 2]\n")
    assert wire.read()["code"] == "bad_request"
    wire.send(b"\xff\xfe\n")
    assert wire.read()["code"] == "bad_json"
    wire.send({"type": "hello"})
    assert wire.read()["code"] == "bad_request"
    wire.send({"id": 7, "type": "teleport"})
    msg = wire.read()
    assert (msg["id"], msg["code"]) == (7, "unknown_type")
    wire.send({"id": 8, "type": "analyze"})
    msg = wire.read()
    assert (msg["id"], msg["code"]) == (8, "bad_request") and "photo" in msg["message"]
    wire.send({"id": 9, "type": "analyze", "photo": "x.jpg", "recursion": 9})
    assert wire.read()["code"] == "bad_request"
    wire.send({"id": 10, "type": "analyze", "photo": "/nonexistent/photo.jpg"})
    msg, _ = wire.until("error", 10)
    assert msg["code"] == "user_error" and "\n" not in msg["message"]
    wire.send({"id": 11, "type": "hello"})
    assert wire.until("hello", 11)[0]["pid"] == wire.proc.pid


def test_analyze_streams_progress_then_result_and_writes_files(wire: Wire, tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "p.png")
    wire.send({"id": "a1", "type": "analyze", "photo": str(photo), "recursion": 1,
               "options": {"color_stat": "median"}, "focal_px": 50})
    result, before = wire.until("result", "a1")
    progress = [m for m in before if m["type"] == "progress"]
    assert progress and all(m["id"] == "a1" and 0.0 <= m["fraction"] <= 1.0 for m in progress)
    assert {"load", "segmentation", "analysis"} <= {m["stage"] for m in progress}
    assert result["cached"] is False
    assert result["scene"]["options"] == {"recursion": 1, "color_stat": "median"}
    assert result["scene"]["focal_px"] == 50.0
    assert sum(o["pixels"] for o in result["scene"]["objects"]) == 64 * 48
    files = result["files"]
    for name in ("preview", "labels", "depth", "confidence", "scene_json"):
        assert Path(files[name]).is_file(), name
    from PIL import Image

    with Image.open(files["labels"]) as im:
        assert im.size == (64, 48)
    assert set(result["timings"]) >= {"load", "inference", "analysis", "write", "total"}
    assert network_runs(tmp_path) == 1


def test_regenerate_reuses_the_cache_and_runs_no_network(wire: Wire, tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "p.png")
    wire.send({"id": 1, "type": "analyze", "photo": str(photo)})
    first, _ = wire.until("result", 1)
    for n, ref in enumerate([{"ref": 1}, {"photo": str(photo)}, {"photo_sha256": first["photo_sha256"]}]):
        wire.send({"id": 10 + n, "type": "regenerate", "recursion": 2, **ref})
        again, _ = wire.until("result", 10 + n)
        assert again["cached"] is True
        assert again["scene"]["options"]["recursion"] == 2
        assert again["scene"]["objects"] == first["scene"]["objects"]
        assert again["files"]["scene_json"] == first["files"]["scene_json"]
    assert network_runs(tmp_path) == 1
    # A second analyze of the same photo is served from the cache too.
    wire.send({"id": 20, "type": "analyze", "photo": str(photo)})
    assert wire.until("result", 20)[0]["cached"] is True
    assert network_runs(tmp_path) == 1
    wire.send({"id": 21, "type": "regenerate", "ref": "never-sent"})
    assert wire.until("error", 21)[0]["code"] == "not_cached"


def test_regenerate_of_an_unanalysed_photo_is_an_error_not_a_network_run(wire: Wire, tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "p.png")
    wire.send({"id": 1, "type": "regenerate", "photo": str(photo)})
    assert wire.until("error", 1)[0]["code"] == "not_cached"
    assert network_runs(tmp_path) == 0


def test_the_cache_survives_a_server_restart(tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "p.png")
    for attempt in range(2):
        w = Wire(start_server(tmp_path))
        w.send({"id": attempt, "type": "analyze", "photo": str(photo)})
        assert w.until("result", attempt)[0]["cached"] is (attempt == 1)
        assert w.close() == 0
    assert network_runs(tmp_path) == 1


def test_cancel_stops_a_running_job_within_a_second(tmp_path: Path) -> None:
    w = Wire(start_server(tmp_path, IMG2MAYA_FAKE_SLOW="30"))
    try:
        photo = make_photo(tmp_path / "p.png")
        w.send({"id": "slow", "type": "analyze", "photo": str(photo)})
        w.until("progress", "slow")
        w.send({"id": "q", "type": "analyze", "photo": str(photo)})
        assert w.until("queued", "q")[0]
        w.send({"id": "c1", "type": "cancel", "target": "q"})
        assert w.until("cancelled", "q")[0]
        assert w.until("ack", "c1")[0]["state"] == "queued"
        while True:  # wait until the fake is inside its slow "network"
            msg = w.read()
            if msg["type"] == "progress" and msg["stage"] == "segmentation":
                break
        t0 = time.monotonic()
        w.send({"id": "c2", "type": "cancel", "target": "slow"})
        w.until("cancelled", "slow", timeout=5)
        elapsed = time.monotonic() - t0
        assert elapsed < 1.0
        w.send({"id": "h", "type": "hello"})
        assert w.until("hello", "h")[0]["pid"] == w.proc.pid
    finally:
        assert w.close() == 0


def test_shutdown_replies_and_exits_zero(wire: Wire) -> None:
    wire.send({"id": "s", "type": "shutdown"})
    assert wire.read() == {"type": "bye", "id": "s"}
    assert wire.proc.wait(timeout=10) == 0


def test_library_printing_never_reaches_the_protocol_stream(tmp_path: Path) -> None:
    """A pipeline that prints (like TF/LiteRT banners, from Python and from C) leaves stdout clean."""
    proc = start_server(tmp_path)
    w = Wire(proc)
    try:
        w.send({"id": 1, "type": "analyze", "photo": str(make_photo(tmp_path / "p.png")),
                "options": {"shapes_table": "PRINT"}})
        result, before = w.until("result", 1)  # every line parsed as JSON on the way
    finally:
        assert w.close() == 0
    assert all(m["type"] == "progress" for m in before)
    assert "python chatter on stdout" in w.stderr
    assert "C-level chatter on fd 1" in w.stderr


def test_regenerate_replays_resegmentation_without_running_it(tmp_path: Path) -> None:
    w = Wire(start_server(tmp_path, IMG2MAYA_FAKE_RESEGMENT="1"))
    try:
        photo = make_photo(tmp_path / "p.png")
        w.send({"id": 1, "type": "analyze", "photo": str(photo), "recursion": 1})
        first, _ = w.until("result", 1)
        parts = [o["parts"] for o in first["scene"]["objects"]]
        assert all(len(p) == 1 and p[0] is not None for p in parts)
        runs = network_runs(tmp_path)
        assert runs == 1 + len(parts)  # infer + one crop per object
        w.send({"id": 2, "type": "regenerate", "ref": 1, "recursion": 1})
        again, _ = w.until("result", 2)
        assert [o["parts"] for o in again["scene"]["objects"]] == parts
        w.send({"id": 3, "type": "regenerate", "ref": 1, "recursion": 2})
        deeper, _ = w.until("result", 3)
        # Known crops replay; the deeper, never-seen crops get None (the analysis' own split).
        assert [o["parts"] for o in deeper["scene"]["objects"]] == [[p[0], None] for p in parts]
        assert network_runs(tmp_path) == runs
    finally:
        assert w.close() == 0


def test_shutdown_during_a_job_cancels_it_then_says_bye(tmp_path: Path) -> None:
    w = Wire(start_server(tmp_path, IMG2MAYA_FAKE_SLOW="30"))
    photo = make_photo(tmp_path / "p.png")
    w.send({"id": "j1", "type": "analyze", "photo": str(photo)})
    w.send({"id": "j2", "type": "analyze", "photo": str(photo)})
    w.until("progress", "j1")
    w.send({"id": "s", "type": "shutdown"})
    _, before = w.until("bye", "s", timeout=5)
    assert {m["id"] for m in before if m["type"] == "cancelled"} == {"j1", "j2"}
    assert w.proc.wait(timeout=10) == 0
    w.close()


def test_cancel_without_target_cancels_everything(tmp_path: Path) -> None:
    w = Wire(start_server(tmp_path, IMG2MAYA_FAKE_SLOW="30"))
    try:
        photo = make_photo(tmp_path / "p.png")
        w.send({"id": "j1", "type": "analyze", "photo": str(photo)})
        w.until("progress", "j1")  # j1 is running
        w.send({"id": "j2", "type": "analyze", "photo": str(photo)})
        w.until("queued", "j2")
        w.send({"id": "c", "type": "cancel"})
        ack, before = w.until("ack", "c")
        assert ack["state"] == "running"
        assert {m["id"] for m in before if m["type"] == "cancelled"} == {"j1", "j2"}
        w.send({"id": "c2", "type": "cancel", "target": "j1"})
        assert w.until("ack", "c2")[0]["state"] == "not_found"
        # Nothing more for j1 (no progress after its terminal message), and the server serves on.
        w.send({"id": "h", "type": "hello"})
        _, between = w.until("hello", "h", timeout=5)
        assert [m for m in between if m.get("id") in ("j1", "j2")] == []
    finally:
        assert w.close() == 0


def test_register_adds_the_serve_subcommand() -> None:
    import argparse

    from inference_server import server

    parser = argparse.ArgumentParser(prog="img2maya")
    server.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--cache-size-mb", "64", "--models-dir", "/m"])
    assert (args.command, args.cache_size_mb, args.models_dir, args.func) == ("serve", 64, "/m", server.run)


def test_hello_with_the_real_pipeline_imports_no_framework(tmp_path: Path) -> None:
    """`hello` must answer at once: the real pipeline's hello loads no torch/TensorFlow/LiteRT."""
    import subprocess
    import sys

    code = """
import io, json, sys
from inference_server.cache import NetworkCache
from inference_server.server import Server
out = io.StringIO()
server = Server(cache=NetworkCache(sys.argv[1]), out=out)
server.handle_line('{"id": 1, "type": "hello"}')
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tensorflow', 'ai_edge_litert', 'jax'})
print(json.dumps([json.loads(out.getvalue())["type"], heavy]))
"""
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, timeout=120,
                         cwd=str(Path(__file__).resolve().parents[1]))
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout.decode().strip() == '["hello", []]'


def test_cancel_answers_at_once_even_inside_an_uninterruptible_network(tmp_path: Path) -> None:
    w = Wire(start_server(tmp_path, IMG2MAYA_FAKE_BLOCK="3"))
    try:
        photo = make_photo(tmp_path / "p.png")
        w.send({"id": "n", "type": "analyze", "photo": str(photo)})
        w.until("progress", "n")  # "inference" starts; the fake now blocks for 3 s without progress
        time.sleep(0.3)
        t0 = time.monotonic()
        w.send({"id": "c", "type": "cancel", "target": "n"})
        w.until("cancelled", "n", timeout=5)
        assert time.monotonic() - t0 < 1.0
        assert w.until("ack", "c")[0]["state"] == "running"
        # The worker drops the cancelled job at its next check, silently, and serves the next one.
        w.send({"id": "again", "type": "analyze", "photo": str(photo)})
        result, before = w.until("result", "again", timeout=20)
        assert result["type"] == "result" and network_runs(tmp_path) == 2
        assert [m for m in before if m.get("id") == "n"] == []
    finally:
        assert w.close() == 0


def test_the_depth_focal_is_part_of_the_key_but_regenerate_never_reruns(wire: Wire, tmp_path: Path) -> None:
    photo = str(make_photo(tmp_path / "p.png"))
    wire.send({"id": 1, "type": "analyze", "photo": photo, "focal_px": 50})
    assert wire.until("result", 1)[0]["scene"]["depth_max"] == 5.0
    wire.send({"id": 2, "type": "analyze", "photo": photo, "focal_px": 80})  # new focal: depth re-run
    second = wire.until("result", 2)[0]
    assert (second["cached"], second["scene"]["depth_max"]) == (False, 8.0)
    assert network_runs(tmp_path) == 2
    wire.send({"id": 3, "type": "regenerate", "photo": photo, "focal_px": 120})  # last analyze's output
    third = wire.until("result", 3)[0]
    assert (third["cached"], third["scene"]["depth_max"], third["scene"]["focal_px"]) == (True, 8.0, 120.0)
    wire.send({"id": 4, "type": "regenerate", "ref": 1})
    assert wire.until("result", 4)[0]["scene"]["depth_max"] == 5.0
    wire.send({"id": 5, "type": "analyze", "photo": photo, "focal_px": 50, "depth_model": "none"})
    assert wire.until("result", 5)[0]["cached"] is False  # other models: another entry
    assert network_runs(tmp_path) == 3


def test_cache_flags_reach_the_cache(tmp_path: Path) -> None:
    """--cache-dir and --cache-size-mb: a zero cap keeps nothing on disk, so every analyze re-runs."""
    w = Wire(start_server(tmp_path, "--cache-dir", str(tmp_path / "mine"), "--cache-size-mb", "0"))
    try:
        w.send({"id": "h", "type": "hello"})
        assert w.read()["cache"] == str(tmp_path / "mine")
        photo = str(make_photo(tmp_path / "p.png"))
        for n in (1, 2):
            w.send({"id": n, "type": "analyze", "photo": photo})
            assert w.until("result", n)[0]["cached"] is False
        assert network_runs(tmp_path) == 2
        assert list((tmp_path / "mine" / "net").glob("*.npz")) == []
    finally:
        assert w.close() == 0


def test_in_process_server_with_an_injected_pipeline(tmp_path: Path) -> None:
    """Dependency injection without a subprocess: Server(pipeline=...) driven line by line."""
    import io
    import json

    from test_server_support import FakePipeline

    from inference_server.cache import NetworkCache
    from inference_server.server import Server

    out = io.StringIO()
    server = Server(pipeline=FakePipeline(), cache=NetworkCache(tmp_path / "cache"), out=out)
    photo = make_photo(tmp_path / "p.png")
    server.handle_line(json.dumps({"id": 1, "type": "analyze", "photo": str(photo), "recursion": 2}))
    server.handle_line(json.dumps({"id": 2, "type": "regenerate", "ref": 1}).encode())

    def finals() -> list[tuple[str, int]]:
        return [(m["type"], m["id"]) for m in map(json.loads, out.getvalue().splitlines())
                if m["type"] != "progress"]

    deadline = time.monotonic() + 20
    while ("result", 2) not in finals() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.handle_line('{"id": 3, "type": "shutdown"}') is False
    assert [f for f in finals() if f[0] != "queued"] == [("result", 1), ("result", 2), ("bye", 3)]
    results = {m["id"]: m for m in map(json.loads, out.getvalue().splitlines()) if m["type"] == "result"}
    assert (results[1]["cached"], results[2]["cached"]) == (False, True)
    assert results[1]["scene"]["options"] == {"recursion": 2}
    assert results[2]["scene"]["options"] == {"recursion": 0}


def test_a_superseding_regenerate_cancels_the_older_ones(tmp_path: Path) -> None:
    w = Wire(start_server(tmp_path, IMG2MAYA_FAKE_BLOCK="2"))
    try:
        p1, p2 = make_photo(tmp_path / "a.png", seed=1), make_photo(tmp_path / "b.png", seed=2)
        w.send({"id": "a", "type": "analyze", "photo": str(p1)})
        w.until("result", "a")
        w.send({"id": "b", "type": "analyze", "photo": str(p2)})  # keeps the worker busy for 2 s
        w.until("progress", "b")
        w.send({"id": "r1", "type": "regenerate", "ref": "a", "recursion": 1})
        w.send({"id": "r2", "type": "regenerate", "ref": "a", "recursion": 2})
        w.send({"id": "r3", "type": "regenerate", "ref": "a", "recursion": 3, "supersede": True})
        result, before = w.until("result", "r3")
        cancelled = {m["id"]: m for m in before if m["type"] == "cancelled"}
        assert set(cancelled) == {"r1", "r2"} and all(m["superseded"] for m in cancelled.values())
        assert result["scene"]["options"] == {"recursion": 3}
        assert [m["type"] for m in before if m["id"] == "b"][-1] == "result"  # analyze is never superseded
    finally:
        assert w.close() == 0


def test_image_files_are_written_beside_the_analysis_and_complete_at_the_result(tmp_path: Path) -> None:
    """The network-output images are encoded on a second thread during the analysis; the result waits for
    them (every named file exists and decodes), and a failure there is an error reply, not a hang."""
    import io
    import json

    import numpy as np
    from PIL import Image
    from test_server_support import FakePipeline

    from inference_server.cache import NetworkCache
    from inference_server.server import Server

    out = io.StringIO()
    server = Server(pipeline=FakePipeline(), cache=NetworkCache(tmp_path / "cache"), out=out)
    photo = make_photo(tmp_path / "p.png")
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    server.handle_line(json.dumps({"id": 1, "type": "analyze", "photo": str(photo)}))
    server.handle_line(json.dumps({"id": 2, "type": "analyze", "photo": str(photo), "out_dir": str(blocker)}))
    server.handle_line(json.dumps({"id": 3, "type": "regenerate", "ref": 1}))

    def replies() -> dict[int, dict]:
        return {m["id"]: m for m in map(json.loads, out.getvalue().splitlines())
                if m["type"] in ("result", "error")}

    deadline = time.monotonic() + 20
    while len(replies()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.handle_line('{"id": 9, "type": "shutdown"}')
    got = replies()
    assert got[1]["type"] == "result" and got[3]["type"] == "result"
    assert got[2]["type"] == "error" and got[2]["code"] == "user_error"  # out_dir is a file
    files = got[1]["files"]
    rgb = np.asarray(Image.open(photo).convert("RGB")).astype(np.int64)
    with Image.open(files["preview"]) as im:
        preview = np.asarray(im).astype(np.int64)
    labels = np.asarray(Image.open(files["labels"])).astype(np.int64)
    k = labels
    palette = np.stack([(k * 97 + 40) % 256, (k * 57 + 120) % 256, (k * 151 + 200) % 256], axis=-1)
    assert np.array_equal(preview, (palette + rgb) // 2)  # labels coloured over the photo
    assert np.load(files["depth"]).shape == labels.shape
    assert got[1]["timings"]["images"] > 0 and got[3]["timings"]["images"] < got[1]["timings"]["images"]


def test_warm_up_loads_the_default_networks_in_the_background(tmp_path: Path, models_dir: Path) -> None:
    """`img2maya serve` warms the default networks on a thread; a missing model is skipped quietly."""
    from inference_server.inference import api
    from inference_server.server import RealPipeline, start_warm_up

    api.clear_cache()
    start_warm_up(RealPipeline(str(models_dir))).join(timeout=120)
    seg, depth = api.DEFAULT_SEG, api.DEFAULT_DEPTH
    loaded = {(seg, str((models_dir / seg).resolve())), (depth, str((models_dir / depth).resolve()))}
    assert loaded <= set(api._CACHE)
    api.clear_cache()
    start_warm_up(RealPipeline(str(tmp_path / "no_models"))).join(timeout=30)
    assert api._CACHE == {}


@pytest.mark.parametrize("dtype,shape", [("uint8", (37, 53)), ("uint8", (37, 53, 3)), ("uint16", (37, 53)),
                                         ("uint8", (1, 1)), ("uint16", (5, 1))])
def test_png_bytes_round_trips_through_pillow(dtype: str, shape: tuple[int, ...]) -> None:
    import io

    import numpy as np
    from PIL import Image

    from inference_server.outputs import png_bytes

    rng = np.random.default_rng(len(shape) + shape[0])
    a = rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)
    a[0, 0] = np.iinfo(dtype).max  # the Sub filter wraps modulo 256
    with Image.open(io.BytesIO(png_bytes(a))) as im:
        im.load()
        back = np.asarray(im)
    assert back.shape == a.shape and np.array_equal(back.astype(dtype), a)
    with pytest.raises(ValueError):
        png_bytes(np.zeros((4, 4), np.float32))
