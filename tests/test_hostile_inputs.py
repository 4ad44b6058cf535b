"""Hostile inputs, generated at test time (issue 15): each gives exit 2 and one line (CLI) or a
non-internal error code (server), writes or changes no file, and the server still answers afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hostile_support import InProcessServer, assert_one_line_error, make_inputs, scene_argv, snapshot
from test_server_support import FakePipeline

from inference_server import scene
from inference_server.cli import main
from inference_server.errors import UserError
from inference_server.server import RealPipeline

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    _out, err = capsys.readouterr()
    return rc, err


@pytest.fixture()
def inp(tmp_path: Path):
    return make_inputs(tmp_path / "in")


# ---- outputs never replace an input ------------------------------------------------------------------


def _as_json_copy(path: Path) -> Path:
    """The same bytes under a .json name (a photo or a label-names file that is also a valid -o target)."""
    target = path.with_suffix(".json")
    target.write_bytes(path.read_bytes())
    return target


@pytest.mark.parametrize("which", ["names", "shapes", "photo", "hardlink", "symlink"])
def test_the_output_never_replaces_an_input(capsys, inp, which: str) -> None:
    if which == "names":
        inp.names = _as_json_copy(inp.names)
        out = inp.names
    elif which == "photo":
        inp.photo = _as_json_copy(inp.photo)
        out = inp.photo
    elif which == "hardlink":
        inp.names = _as_json_copy(inp.names)
        out = inp.folder / "linked.json"
        os.link(inp.names, out)
    elif which == "symlink":
        out = inp.folder / "pointing.json"
        out.symlink_to(inp.shapes)
    else:
        out = inp.shapes
    before = snapshot(inp.folder)
    rc, err = _run(capsys, scene_argv(inp, out, "--shapes", str(inp.shapes)))
    assert_one_line_error(rc, err, r"the output .* is the (label names|shapes table|photo) .*destroy that input")
    assert snapshot(inp.folder) == before


def test_a_batch_output_folder_holding_a_photo_is_refused(capsys, tmp_path: Path) -> None:
    inp = make_inputs(tmp_path / "in")
    a = _as_json_copy(inp.photo)  # photo.json: its scene would be in/photo.json
    b = inp.folder / "b.png"
    b.write_bytes(inp.photo.read_bytes())
    before = snapshot(inp.folder)
    rc, err = _run(capsys, ["scene", str(a), str(b), "-o", str(inp.folder) + "/", "--depth-model", "none", "-q"])
    assert_one_line_error(rc, err, r"is the photo")
    assert snapshot(inp.folder) == before


# ---- JSON: shapes tables -------------------------------------------------------------------------------

SHAPES_CASES = {
    "nested 1100 deep": '{"classes": ' + "[" * 1100 + "]" * 1100 + "}",
    "no classes": '{"roles": {}}',
    "empty object": "{}",
    "200000 unknown keys": json.dumps({"classes": [], **{f"k{i}": i for i in range(200_000)}}),
    "not an object": "[1, 2, 3]",
    "classes not a list": '{"classes": {"name": "car"}}',
    "class not an object": '{"classes": ["car"]}',
    "class without name": '{"classes": [{"role": "vehicle"}]}',
    "unknown role": '{"classes": [{"name": "car", "role": "spaceship"}]}',
    "unknown shape": '{"classes": [{"name": "car", "shape": "torus"}]}',
    "size of strings": '{"classes": [{"name": "car", "size": ["a", "b", "c"]}]}',
    "size of two": '{"classes": [{"name": "car", "size": [1, 2]}]}',
    "negative size": '{"classes": [{"name": "car", "size": [1, -2, 3]}]}',
    "synonyms not strings": '{"classes": [{"name": "car", "synonyms": [1, {}]}]}',
    "standing maybe": '{"classes": [{"name": "car", "standing": "maybe"}]}',
    "roles a list": '{"classes": [], "roles": ["vehicle"]}',
    "role entry a number": '{"classes": [], "roles": {"vehicle": 3}}',
    "families without use": '{"classes": [], "families": [{"match": "x-*"}]}',
    "skip not strings": '{"classes": [], "skip": [null]}',
    "NaN": '{"classes": [{"name": "car", "size": [NaN, 1, 1]}]}',
    "1e999": '{"classes": [{"name": "car", "size": [1e999, 1, 1]}]}',
    "5000 digits": '{"classes": [{"name": "car", "size": [' + "9" * 5000 + ", 1, 1]}]}",
    "not JSON": "classes: [car]",
    "truncated": '{"classes": [{"name": "car"',
    "wrong schema": '{"schema": "img2maya/shapes@9", "classes": []}',
}


@pytest.mark.parametrize("case", sorted(SHAPES_CASES))
def test_a_hostile_shapes_table_is_one_line_in_the_cli(capsys, inp, case: str) -> None:
    inp.shapes.write_text(SHAPES_CASES[case], encoding="utf-8")
    before = snapshot(inp.folder)
    rc, err = _run(capsys, scene_argv(inp, inp.folder / "out.json", "--shapes", str(inp.shapes)))
    assert_one_line_error(rc, err, r"shapes table")
    assert snapshot(inp.folder) == before


def test_shapes_table_bytes_and_encodings(capsys, inp) -> None:
    for data in (b"\xff\xfe{\x00}", b"", b"{" + b" " * (5 << 20) + b"}", b'{"classes": []}\x00'):
        inp.shapes.write_bytes(data)
        before = snapshot(inp.folder)
        rc, err = _run(capsys, scene_argv(inp, inp.folder / "out.json", "--shapes", str(inp.shapes)))
        assert_one_line_error(rc, err, r"shapes table")
        assert snapshot(inp.folder) == before


def test_a_good_shapes_table_still_works(capsys, inp) -> None:
    rc, err = _run(capsys, scene_argv(inp, inp.folder / "out.json", "--shapes", str(inp.shapes)))
    assert rc == 0, err
    assert [o["label"] for o in scene.load(inp.folder / "out.json")["objects"]].count("car") == 1


def test_a_deep_scene_file_is_a_scene_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"schema": "img2maya/scene@1", "x": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(scene.SceneError, match="nested 5001 levels deep"):
        scene.load(deep)
    deep.write_text('{"schema": "img2maya/scene@1", "x": 1e999}')
    with pytest.raises(scene.SceneError, match="out of range"):
        scene.load(deep)


# ---- paths ---------------------------------------------------------------------------------------------


def test_symlink_loops_broken_links_folders_and_pipes(capsys, inp) -> None:
    f = inp.folder
    (f / "loop_a").symlink_to(f / "loop_b")
    (f / "loop_b").symlink_to(f / "loop_a")
    (f / "broken.png").symlink_to(f / "nowhere.png")
    (f / "dir.png").mkdir()
    os.mkfifo(f / "fifo.png")
    expect = {"loop_a": r"photo .*loop_a: a symbolic link loop",
              "broken.png": r"photo not found: .*broken symbolic link to .*nowhere.png",
              "dir.png": r"a folder of photos writes into a folder",  # a folder is a batch input (docs/BATCH.md)
              "fifo.png": r"photo is not a regular file"}
    before = snapshot(f)
    for name, pattern in expect.items():
        argv = scene_argv(inp, f / "out.json")
        argv[1] = str(f / name)
        rc, err = _run(capsys, argv)
        assert_one_line_error(rc, err, pattern)
    argv = scene_argv(inp, f / "out.json")
    argv[argv.index("--labels") + 1] = str(f / "loop_a")
    rc, err = _run(capsys, argv)
    assert_one_line_error(rc, err, r"labels .*loop_a: a symbolic link loop")
    assert snapshot(f) == before


# ---- physical ranges -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fill, pattern", [(1e38, r"no value within 0.001..100000 m .*1e\+38"),
                                           (1e-30, r"no value within 0.001..100000 m"),
                                           (2e5, r"no value within")])
def test_metric_depth_out_of_any_physical_range_is_refused(capsys, inp, fill: float, pattern: str) -> None:
    np.save(inp.depth, np.full((48, 64), fill, np.float32))
    before = snapshot(inp.folder)
    rc, err = _run(capsys, scene_argv(inp, inp.folder / "out.json"))
    assert_one_line_error(rc, err, pattern)
    assert snapshot(inp.folder) == before


def test_far_background_markers_are_no_depth(capsys, inp) -> None:
    """A renderer's 1e10 background is sky (no depth), like inf: the rest of the map is used as is."""
    d = np.load(inp.depth)
    out_plain, out_marked = inp.folder / "plain.json", inp.folder / "marked.json"
    d[:10] = np.nan
    np.save(inp.depth, d)
    assert _run(capsys, scene_argv(inp, out_plain))[0] == 0
    d[:10] = 1e10
    np.save(inp.depth, d)
    assert _run(capsys, scene_argv(inp, out_marked))[0] == 0
    a, b = scene.load(out_plain), scene.load(out_marked)
    a["source"]["inputs"] = b["source"]["inputs"] = None
    assert a["objects"] == b["objects"] and a["ground"] == b["ground"]


@pytest.mark.parametrize("kind", ["relative", "disparity"])
def test_unitless_depth_far_from_one_is_rescaled_not_overflowed(capsys, inp, kind: str) -> None:
    d = np.load(inp.depth)
    out1, out2 = inp.folder / "one.json", inp.folder / "huge.json"
    np.save(inp.depth, d / np.median(d))
    assert _run(capsys, scene_argv(inp, out1, "--depth-kind", kind))[0] == 0
    np.save(inp.depth, (d / np.median(d) * 1e37).astype(np.float32))
    rc, err = _run(capsys, scene_argv(inp, out2, "--depth-kind", kind))
    assert rc == 0 and "overflow" not in err, err
    g1, g2 = scene.load(out1)["ground"], scene.load(out2)["ground"]
    assert g2["camera_height_m"] == pytest.approx(g1["camera_height_m"], rel=1e-3)
    assert g2["pitch_deg"] == pytest.approx(g1["pitch_deg"], abs=0.05)
    assert 0 < g2["scale"] < 1e6


@pytest.mark.parametrize("flags, pattern", [
    (["--focal-px", "1e300"], r"focal length 1e\+300 px gives a .* degree field of view on the 64 px wide photo"),
    (["--focal-px", "1e-300"], r"focal length 1e-300 px gives a 180 degree field of view"),
    (["--focal-px", "0.2"], r"lie between 0.2793 and 3667 px"),
    (["--fov-deg", "179"], r"--fov-deg must be between 1 and 179 degrees \(exclusive\), got 179"),
    (["--fov-deg", "1"], r"--fov-deg must be between 1 and 179"),
    (["--fov-deg", "0.5"], r"--fov-deg must be between 1 and 179"),
    (["--camera-height", "1e38"], r"--camera-height must be more than 0 and at most 1000 m"),
    (["--camera-height", "1000.5"], r"at most 1000 m"),
])
def test_camera_values_outside_physical_ranges(capsys, inp, flags: list[str], pattern: str) -> None:
    before = snapshot(inp.folder)
    rc, err = _run(capsys, scene_argv(inp, inp.folder / "out.usda", *flags))
    assert_one_line_error(rc, err, pattern)
    assert snapshot(inp.folder) == before


def test_camera_values_just_inside_the_ranges_work(capsys, inp) -> None:
    for flags in (["--fov-deg", "178.9"], ["--fov-deg", "1.01"], ["--focal-px", "3600"], ["--camera-height", "1000"]):
        out = inp.folder / "ok.json"
        rc, err = _run(capsys, scene_argv(inp, out, *flags))
        assert rc == 0, (flags, err)
        assert 0 < scene.load(out)["camera"]["focal_px"] < 3667


# ---- the server ------------------------------------------------------------------------------------------


class ShapesCheckingPipeline(FakePipeline):
    """The fake networks, with the real pipeline's option checks (shapes table included)."""

    def make_options(self, recursion: int, options: dict) -> dict:
        RealPipeline().make_options(recursion, options)
        return super().make_options(recursion, options)


@pytest.fixture()
def srv(tmp_path: Path):
    s = InProcessServer(ShapesCheckingPipeline(), tmp_path / "cache")
    yield s
    s.close()


def _server_cases(inp, tmp_path: Path) -> list[tuple[str, object]]:
    photo = str(inp.photo)
    (tmp_path / "file").write_text("x")
    deep_table = tmp_path / "deep.json"
    deep_table.write_text('{"classes": ' + "[" * 1100 + "]" * 1100 + "}")
    (tmp_path / "empty.json").write_text("{}")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    return [
        ('{"id":1,"type":"hello","x":' + "[" * 1100 + "]" * 1100 + "}", None),
        ('{"id":2,"type":"hello","x":' + "9" * 5000 + "}", None),
        ('{"id":3,"type":"analyze","photo":"' + photo + '","focal_px":1e999}', None),
        ('{"id":4,"type":"analyze","photo":"' + photo + '","focal_px":NaN}', None),
        (json.dumps({"id": 5, "type": "analyze", "photo": photo, "out_dir": str(tmp_path / "file")}), 5),
        (json.dumps({"id": 6, "type": "analyze", "photo": photo, "out_dir": str(tmp_path / "file" / "sub")}), 6),
        (json.dumps({"id": 7, "type": "analyze", "photo": photo, "out_dir": "/proc/1/nope"}), 7),
        (json.dumps({"id": 8, "type": "analyze", "photo": photo, "options": {"shapes_table": str(deep_table)}}), 8),
        (json.dumps({"id": 9, "type": "analyze", "photo": photo,
                     "options": {"shapes_table": str(tmp_path / "empty.json")}}), 9),
        (json.dumps({"id": 10, "type": "analyze", "photo": photo, "focal_px": 1e300}), 10),
        (json.dumps({"id": 11, "type": "analyze", "photo": photo, "fov_deg": 179}), 11),
        (json.dumps({"id": 12, "type": "analyze", "photo": photo, "options": {"camera_height_m": 1e38}}), 12),
        (json.dumps({"id": 13, "type": "analyze", "photo": photo, "options": {"camera_height_m": "high"}}), 13),
        (json.dumps({"id": 14, "type": "analyze", "photo": photo, "options": {"min_area_px": -5}}), 14),
        (json.dumps({"id": 15, "type": "analyze", "photo": "a\x00b"}), 15),
        (json.dumps({"id": 16, "type": "analyze", "photo": str(loop)}), 16),
        (json.dumps({"id": 17, "type": "cancel", "target": {"a": 1}}), 17),
        (json.dumps({"id": 18, "type": "cancel", "target": [1]}), 18),
        (json.dumps({"id": 19, "type": "regenerate", "ref": {"x": 1}}), 19),
        (json.dumps({"id": 21, "type": "analyze", "photo": "x" * 5000}), 21),
        ('{"id": 22, "type": "analyze", "photo": "' + photo + '", "recursion": 1e400}', None),
    ]


def test_the_server_survives_every_hostile_request(srv: InProcessServer, inp, tmp_path: Path) -> None:
    cases = _server_cases(inp, tmp_path)
    before = snapshot(inp.folder)
    for line, req_id in cases:
        msg = srv.ask(line, req_id)
        assert msg["type"] == "error", (line[:80], msg)
        assert msg["code"] not in ("internal", None), (line[:80], msg)
        assert "\n" not in msg["message"] and len(msg["message"]) < 400
        assert srv.alive()
    assert snapshot(inp.folder) == before
    good = {"id": 20, "type": "analyze", "photo": str(inp.photo), "out_dir": str(tmp_path / "o"),
            "options": {"shapes_table": str(inp.shapes)}}
    assert srv.ask(json.dumps(good), 20)["type"] == "result"


def test_an_out_dir_holding_the_photo_under_an_output_name_is_refused(srv: InProcessServer, inp) -> None:
    photo = inp.folder / "preview.png"  # the name of one of the files the server writes
    photo.write_bytes(inp.photo.read_bytes())
    before = snapshot(inp.folder)
    msg = srv.ask(json.dumps({"id": 1, "type": "analyze", "photo": str(photo), "out_dir": str(inp.folder)}), 1)
    assert (msg["type"], msg["code"]) == ("error", "user_error") and "is the photo" in msg["message"]
    assert snapshot(inp.folder) == before


def test_an_oversized_request_line_is_skipped_and_the_next_answered(tmp_path: Path) -> None:
    import io

    from inference_server.cache import NetworkCache
    from inference_server.limits import REQUEST_MAX_BYTES
    from inference_server.server import Server

    out = io.StringIO()
    server = Server(pipeline=FakePipeline(), cache=NetworkCache(tmp_path / "c"), out=out)
    stdin = io.BytesIO(b'{"id": 1, "type": "hello"}\n' + b"x" * (REQUEST_MAX_BYTES + 10) + b"\n"
                       + b'{"id": 2, "type": "hello", "pad": "' + b"y" * 1000 + b'"}\n'
                       + b'{"id": 3, "type": "hello", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}\n")
    assert server.serve(stdin) == 0
    msgs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(m["type"], m.get("id"), m.get("code")) for m in msgs] == [
        ("hello", 1, None), ("error", None, "bad_request"), ("hello", 2, None), ("error", None, "bad_request")]
    assert "byte limit" in msgs[1]["message"] and "nested 2001 levels deep" in msgs[3]["message"]


def _serve(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "inference_server", "--no-warm-up",
                           "--pipeline", "test_server_support:FakePipeline", *flags],
                          input='{"id": 1, "type": "hello"}\n', capture_output=True, text=True, env=env, timeout=60)


def test_serve_refuses_bad_cache_flags_at_start(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    for flags, pattern in ((["--cache-dir", str(tmp_path / "f")], "it is a file, not a folder"),
                           (["--cache-dir", str(tmp_path / "f" / "sub")], "is a file, not a folder"),
                           (["--cache-dir", "/proc/1/img2maya-cache"], "cannot use the cache folder"),
                           (["--models-dir", str(tmp_path / "f")], "--models-dir")):
        res = _serve(tmp_path, *flags)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and res.stdout == "", res
        assert len(lines) == 1 and lines[0].startswith("img2maya serve: error: ") and pattern in lines[0], lines
    res = _serve(tmp_path, "--cache-size-mb", "-1", "--cache-dir", str(tmp_path / "c"))
    assert res.returncode == 2 and "--cache-size-mb: must be >= 0" in res.stderr
    assert (tmp_path / "f").read_text() == "x"


# ---- the cache: a regenerate equals a fresh build ---------------------------------------------------------


def test_a_scene_from_the_disk_cache_equals_the_fresh_one(tmp_path: Path) -> None:
    """Confidence that float16 would round (0.94915 -> 0.9492) comes back exactly, so the scene built from a
    later session's disk entry is the very JSON of the fresh build."""
    from inference_server import pipeline
    from inference_server.analysis.engine import SceneOptions
    from inference_server.cache import NetworkCache
    from inference_server.imageio import load_depth, load_labels, load_photo
    from inference_server.inference.types import DepthMap, Segmentation
    from inference_server.server import encode_scene

    inp = make_inputs(tmp_path / "in")
    photo = load_photo(inp.photo)
    labels = load_labels(inp.labels, photo.shape)
    conf = np.full(labels.shape, 0.94915, np.float32)
    conf[::2] = 0.50013
    seg = Segmentation(labels=labels, names=["sky", "road", "car"], model="m", confidence=conf)
    depth = DepthMap(depth=load_depth(inp.depth, photo.shape), kind="metric", model="d")
    fresh = encode_scene(pipeline.analyse(photo, seg, depth, SceneOptions()))
    NetworkCache(tmp_path / "c").put("k", seg, depth)
    entry = NetworkCache(tmp_path / "c").get("k")  # a new process: from disk
    assert entry is not None and np.array_equal(entry.seg.confidence, conf)
    assert encode_scene(pipeline.analyse(photo, entry.seg, entry.depth, SceneOptions())) == fresh


def test_the_real_pipeline_options_refuse_bad_tables_with_one_line(tmp_path: Path) -> None:
    table = tmp_path / "t.json"
    table.write_text('{"classes": [{"name": "car", "size": "big"}]}')
    with pytest.raises(UserError, match=r"classes\[0\]: 'size' must be \[width, height, depth\]"):
        RealPipeline().make_options(0, {"shapes_table": str(table)})


# ---- interrupts -------------------------------------------------------------------------------------------


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=120)


def test_sigterm_during_a_usd_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The signal comes after USD has written our temp file and before the rename: exit 143, one line, and
    neither the output nor any `.<name>.<hex>.part*` file is left."""
    make_inputs(tmp_path / "in")
    code = f"""
import os, signal, sys, time
from contextlib import contextmanager
from hostile_support import make_inputs, scene_argv
from inference_server.builders import usd
real = usd.atomic_path
@contextmanager
def killed(path):
    with real(path) as tmp:
        yield tmp
        assert os.path.getsize(tmp) > 0
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
usd.atomic_path = killed
from inference_server.cli import main
inputs = make_inputs(__import__("pathlib").Path({str(tmp_path / "in")!r}))
sys.exit(main(scene_argv(inputs, {str(tmp_path / "out" / "s.usda")!r})))
"""
    res = _python(code, tmp_path)
    assert res.returncode == 143, res
    assert res.stderr.strip().splitlines() == ["img2maya: error: interrupted"]
    assert list((tmp_path / "out").iterdir()) == []


def test_ctrl_c_inside_code_that_swallows_exceptions_still_exits_130(tmp_path: Path) -> None:
    """What USD's plug-in loader does with a KeyboardInterrupt (prints it, carries on) cannot happen: the
    handler exits at once, without a traceback, and removes the temp file being written."""
    code = """
import os, signal, sys, time, traceback
from inference_server import interrupts, scene
restore = interrupts.install()
with scene.atomic_path("out.json") as tmp:
    open(tmp, "w").write("half")
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except BaseException:
        traceback.print_exc()
print("not reached", file=sys.stderr)
"""
    res = _python(code, tmp_path)
    assert res.returncode == 130, res
    assert res.stderr.strip().splitlines() == ["img2maya: error: interrupted"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("final, rc, tail", [(True, 0, "wrote"), (False, 130, "img2maya: error: interrupted")])
def test_a_signal_after_the_rename_waits_for_the_report(tmp_path: Path, final: bool, rc: int, tail: str) -> None:
    """Between an output's rename into place and its `wrote` line a signal is held: after the last output
    the run is complete (exit 0), otherwise it stops there (130) with the written file reported."""
    code = f"""
import os, signal, sys
from inference_server import interrupts, scene
restore = interrupts.install()
interrupts.hold_after_commit()
with scene.atomic_path("out.json") as tmp:
    open(tmp, "w").write("{{}}")
os.kill(os.getpid(), signal.SIGINT)
print("wrote out.json", file=sys.stderr)
interrupts.release(final={final})
sys.exit(0)
"""
    res = _python(code, tmp_path)
    assert res.returncode == rc, res
    assert res.stderr.strip().splitlines()[-1].startswith(tail)
    assert "wrote out.json" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_stale_temporary_files_of_a_killed_run_are_removed(capsys, inp, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    old = time.time() - 2 * 3600
    stale = [".s.0123abcd.part.usda", ".s.89abcdef.part.Ab3xYz", ".s.deadbeef.part.json"]
    keep = [".s.feedf00d.part.usda", ".s.notours.part.usda", "s.0123abcd.part.usda", "mine.txt"]
    for name in stale + keep:
        (out / name).write_text("x")
    for name in stale + keep[1:]:
        os.utime(out / name, (old, old))
    rc, err = _run(capsys, scene_argv(inp, out / "s.json"))
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted([*keep, "s.json"])


def test_the_cli_restores_the_signal_handlers(capsys, inp) -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert _run(capsys, scene_argv(inp, inp.folder / "out.json"))[0] == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_analyze_never_writes_over_its_photo_and_checks_its_folder_first(capsys, inp) -> None:
    """`img2maya analyze`: a photo named like one of its outputs, in --out-dir, is refused before any network
    runs (no weights needed); so is an --out-dir that is a file or lies under one."""
    photo = inp.folder / "preview.png"
    photo.write_bytes(inp.photo.read_bytes())
    before = snapshot(inp.folder)
    for out_dir, pattern in ((inp.folder, r"the output .*preview.png is the photo"),
                             (inp.names, r"cannot use --out-dir .*: it is a file, not a folder"),
                             (inp.names / "x", r"a part of the path is a file")):
        rc, err = _run(capsys, ["analyze", str(photo), "--out-dir", str(out_dir), "--depth", "none"])
        assert_one_line_error(rc, err, pattern)
    assert snapshot(inp.folder) == before
