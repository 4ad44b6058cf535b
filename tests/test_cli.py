"""`img2maya` command line: outputs, batch, bad inputs (one line, exit 2, no output), lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_cli_support import exif_bytes, png_claiming, street

from inference_server import __version__, scene
from inference_server.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _scene_args(s, out: Path, *extra: str) -> list[str]:
    return ["scene", str(s.photo), "--labels", str(s.labels), "--label-names", str(s.names),
            "--depth", str(s.depth), "-o", str(out), *extra]


def _assert_one_line_error(rc: int, err: str, pattern: str) -> None:
    import re

    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("img2maya: error: ") and re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in err


def _no_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part") or p.name.startswith("out"))


# ---- basics -----------------------------------------------------------------------------------------


def test_version_and_help(capsys):
    rc, out, _ = _run(capsys, "--version")
    assert rc == 0 and out.strip() == f"img2maya {__version__}"
    rc, out, _ = _run(capsys, "scene", "--help")
    assert rc == 0
    for needle in ("--labels", "--label-names", "--depth D.npy|MODEL", "--depth-kind", "--focal-px", "--fov-deg",
                   "--recursion", "--min-area", "--color-stat", "--camera-height", "--shapes", "--seg",
                   "--depth-model", "--models-dir", "--format", "examples:", "img2maya scene a.jpg b.jpg"):
        assert needle in out, needle
    rc, _, err = _run(capsys)
    assert rc == 2 and "scene" in err


@pytest.mark.parametrize("fmt", ["json", "usda", "glb"])
def test_scene_with_own_inputs_writes_each_format(tmp_path, capsys, fmt):
    s = street(tmp_path)
    out = tmp_path / f"out.{fmt}"
    rc, _, err = _run(capsys, *_scene_args(s, out, "--fov-deg", "60"))
    assert rc == 0, err
    assert out.stat().st_size > 200
    assert f"wrote {out} (3 objects" in err
    if fmt == "json":
        sc = scene.load(out)
        assert sc["camera"]["fov_horizontal_deg"] == pytest.approx(60.0)
        assert {o["label"] for o in sc["objects"]} == {"sky", "road", "car"}


def test_options_reach_the_scene(tmp_path, capsys):
    s = street(tmp_path)
    shapes = tmp_path / "shapes.json"
    out = tmp_path / "out.json"
    rc, _, err = _run(capsys, *_scene_args(s, out, "--focal-px", "70", "--recursion", "2", "--min-area", "12",
                                            "--color-stat", "median", "--camera-height", "1.2", "-q"))
    assert rc == 0 and err == ""
    st = json.loads(out.read_text())["settings"]
    assert (st["recursion"], st["min_area_px"], st["color_stat"], st["camera_height_m"]) == (2, 12, "median", 1.2)
    assert json.loads(out.read_text())["camera"]["focal_px"] == pytest.approx(70.0)
    rc, _, err = _run(capsys, *_scene_args(s, tmp_path / "out2.json", "--shapes", str(shapes)))
    _assert_one_line_error(rc, err, "shapes table not found")
    assert not (tmp_path / "out2.json").exists()


# ---- output paths ------------------------------------------------------------------------------------


def test_unknown_suffix_and_output_under_a_file(tmp_path, capsys):
    s = street(tmp_path)
    rc, _, err = _run(capsys, *_scene_args(s, tmp_path / "out.obj"))
    _assert_one_line_error(rc, err, r"unknown output format '\.obj'.*use one of \.json")
    assert not (tmp_path / "out.obj").exists()
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    rc, _, err = _run(capsys, *_scene_args(s, blocker / "out.json"))
    _assert_one_line_error(rc, err, "cannot write into .*file.txt is a file")


def test_unwritable_folder(tmp_path, capsys, monkeypatch):
    s = street(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root writes anywhere: make the check see what a user would
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == ro else real_access(p, mode))
    try:
        rc, _, err = _run(capsys, *_scene_args(s, ro / "sub" / "out.json"))
    finally:
        ro.chmod(0o755)
    _assert_one_line_error(rc, err, r"cannot write into .*ro/sub: permission denied")
    assert not (ro / "sub").exists()


def test_failure_leaves_no_output(tmp_path, capsys):
    s = street(tmp_path)
    out = tmp_path / "out.usda"
    out_json = tmp_path / "out.json"
    out_json.write_text("previous")  # an existing output survives a failed run untouched
    np.save(s.depth, np.ones((10, 10), np.float32))
    for o in (out, out_json):
        rc, _, err = _run(capsys, *_scene_args(s, o))
        _assert_one_line_error(rc, err, r"depth .* is 10x10 but the photo is 96x64")
    assert not out.exists() and out_json.read_text() == "previous"
    assert _no_leftovers(tmp_path) == ["out.json"]


# ---- bad inputs ----------------------------------------------------------------------------------------


def test_missing_photo(tmp_path, capsys):
    rc, _, err = _run(capsys, "scene", str(tmp_path / "nope.jpg"), "--depth-model", "none", "-o",
                      str(tmp_path / "out.json"))
    _assert_one_line_error(rc, err, r"photo not found: .*nope.jpg")


@pytest.mark.parametrize("kind", ["jpg", "png"])
def test_corrupt_and_truncated_photo(tmp_path, capsys, kind):
    s = street(tmp_path)
    img = tmp_path / f"p.{kind}"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(img)
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 3])
    s.photo = img
    rc, _, err = _run(capsys, *_scene_args(s, tmp_path / "out.json"))
    _assert_one_line_error(rc, err, rf"cannot read photo .*p\.{kind}: corrupt or truncated")
    img.write_bytes(b"\0" * 100)
    rc, _, err = _run(capsys, *_scene_args(s, tmp_path / "out.json"))
    _assert_one_line_error(rc, err, "not an image file")
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("mode", ["P", "I;16", "CMYK", "RGBA", "L", "LA"])
def test_photo_modes_give_scenes(tmp_path, capsys, mode):
    s = street(tmp_path)
    rgb = Image.fromarray(s.rgb)
    if mode == "P":
        im = rgb.quantize(16)
    elif mode == "I;16":
        im = Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257)
    elif mode == "RGBA":
        a = np.dstack([s.rgb, np.full(s.rgb.shape[:2], 200, np.uint8)])
        im = Image.fromarray(a, "RGBA")
    else:
        im = rgb.convert(mode)
    photo = tmp_path / ("p.jpg" if mode == "CMYK" else "p.png")
    im.save(photo)
    s.photo = photo
    out = tmp_path / "out.json"
    rc, _, err = _run(capsys, *_scene_args(s, out, "-q"))
    assert rc == 0, err
    sc = scene.load(out)
    assert (sc["source"]["width"], sc["source"]["height"]) == (96, 64)
    (car,) = [o for o in sc["objects"] if o["label"] == "car"]
    if mode in ("P", "CMYK", "RGBA"):
        assert car["color_srgb"][0] > car["color_srgb"][1] + 0.2  # still red
    else:
        assert car["color_srgb"][0] == pytest.approx(car["color_srgb"][1], abs=0.02)  # grey


def test_exif_rotated_photo(tmp_path, capsys):
    s = street(tmp_path)  # the street as displayed is 96 wide, 64 high
    stored = np.rot90(s.rgb, k=1)  # stored rotated 90 deg counter-clockwise; orientation 6 turns it back
    photo = tmp_path / "rot.jpg"
    Image.fromarray(np.ascontiguousarray(stored)).save(photo, exif=exif_bytes(orientation=6), quality=95)
    s.photo = photo
    out = tmp_path / "out.json"
    rc, _, err = _run(capsys, *_scene_args(s, out, "-q"))
    assert rc == 0, err
    sc = scene.load(out)
    assert (sc["source"]["width"], sc["source"]["height"]) == (96, 64)
    assert (sc["camera"]["width"], sc["camera"]["height"]) == (96, 64)
    assert sc["ground"]["found"] and abs(sc["ground"]["roll_deg"]) < 2.0
    # labels drawn on the stored (unrotated) pixels do not match the photo as displayed
    Image.fromarray(np.ascontiguousarray(np.rot90(s.label_ids, k=1)), "L").save(s.labels)
    rc, _, err = _run(capsys, *_scene_args(s, tmp_path / "out2.json"))
    _assert_one_line_error(rc, err, r"is 64x96 but the photo is 96x64 \(rotated\?")


def test_decompression_bomb(tmp_path, capsys):
    s = street(tmp_path)
    s.photo = png_claiming(tmp_path / "bomb.png", 60_000, 60_000)
    rc, _, err = _run(capsys, *_scene_args(s, tmp_path / "out.json"))
    _assert_one_line_error(rc, err, r"bomb.png: .*3600 MP is over the 200 MP limit")


def test_labels_and_depth_of_another_size(tmp_path, capsys):
    s = street(tmp_path)
    Image.new("L", (50, 40)).save(s.labels)
    rc, _, err = _run(capsys, *_scene_args(s, tmp_path / "out.json"))
    _assert_one_line_error(rc, err, r"labels .* is 50x40 but the photo is 96x64$")


def test_ids_beyond_names(tmp_path, capsys):
    s = street(tmp_path)
    s.names.write_text("sky\n")
    rc, _, err = _run(capsys, *_scene_args(s, tmp_path / "out.json"))
    _assert_one_line_error(rc, err, r"use id\(s\) 1, 2 but label names .* list only 1 name \(ids 0..0\)")


@pytest.mark.parametrize("fill", [np.nan, np.inf, 0.0])
def test_invalid_depth_everywhere_still_gives_scene(tmp_path, capsys, fill):
    s = street(tmp_path)
    np.save(s.depth, np.full(s.z.shape, fill, np.float32))
    out = tmp_path / "out.json"
    rc, _, err = _run(capsys, *_scene_args(s, out))
    assert rc == 0 and "warning" in err and "no valid" in err
    assert any("no valid" in w for w in scene.load(out)["warnings"])


def test_all_sky(tmp_path, capsys):
    Image.new("RGB", (48, 32), (110, 160, 220)).save(tmp_path / "sky.jpg")
    Image.new("L", (48, 32), 0).save(tmp_path / "l.png")
    (tmp_path / "n.txt").write_text("sky\n")
    out = tmp_path / "out.json"
    rc, _, err = _run(capsys, "scene", tmp_path / "sky.jpg", "--labels", tmp_path / "l.png", "--label-names",
                      tmp_path / "n.txt", "--depth-model", "none", "-o", out)
    assert rc == 0, err
    assert [o["label"] for o in scene.load(out)["objects"]] == ["sky"]


def test_depth_kind_and_scale_of_a_png(tmp_path, capsys):
    s = street(tmp_path)
    mm = np.where(np.isfinite(s.z), np.round(s.z * 1000), 0).astype(np.uint16)  # millimetres, 0 = none
    Image.fromarray(mm).save(tmp_path / "mm.png")
    outs = {}
    for scale in ("1000", "100"):
        out = tmp_path / f"out{scale}.json"
        rc, _, err = _run(capsys, "scene", s.photo, "--labels", s.labels, "--label-names", s.names, "--depth",
                          tmp_path / "mm.png", "--depth-scale", scale, "--fov-deg", "60", "-o", out, "-q")
        assert rc == 0, err
        outs[scale] = scene.load(out)
    car = {k: next(o for o in v["objects"] if o["label"] == "car") for k, v in outs.items()}
    assert car["1000"]["depth_m"]["median"] == pytest.approx(6.0, abs=0.01)
    assert car["100"]["depth_m"]["median"] == pytest.approx(60.0, abs=0.1)
    assert outs["1000"]["source"]["inputs"]["depth_scale"] == 1000.0
    out = tmp_path / "disp.json"
    np.save(tmp_path / "disp.npy", 1.0 / s.z)
    rc, _, err = _run(capsys, "scene", s.photo, "--labels", s.labels, "--label-names", s.names, "--depth",
                      tmp_path / "disp.npy", "--depth-kind", "disparity", "-o", out, "-q")
    assert rc == 0, err
    sc = scene.load(out)
    assert sc["settings"]["depth_kind"] == "disparity" and sc["source"]["inputs"]["depth_kind"] == "disparity"


def test_depth_file_versus_model(tmp_path, capsys):
    s = street(tmp_path)
    rc, _, err = _run(capsys, "scene", s.photo, "--labels", s.labels, "--label-names", s.names, "--depth",
                      tmp_path / "missing.npy", "-o", tmp_path / "out.json")
    _assert_one_line_error(rc, err, "depth file not found: .*missing.npy")
    rc, _, err = _run(capsys, *_scene_args(s, tmp_path / "out.json", "--depth-model", "m"))
    _assert_one_line_error(rc, err, "--depth FILE and --depth-model exclude each other")
    rc, _, err = _run(capsys, "scene", s.photo, "--depth-kind", "relative", "-o", tmp_path / "out.json")
    _assert_one_line_error(rc, err, "--depth-kind describes your --depth FILE, and none was given")
    rc, _, err = _run(capsys, "scene", s.photo, "--depth", "nosuchthing", "-o", tmp_path / "out.json")
    _assert_one_line_error(rc, err, r"--depth nosuchthing: no such file, and not a depth model id \(known: .*none\)")
    # `--depth none` is the model id 'none': no depth, no network
    out = tmp_path / "out.json"
    rc, _, err = _run(capsys, "scene", s.photo, "--labels", s.labels, "--label-names", s.names, "--depth", "none",
                      "-o", out)
    assert rc == 0, err
    assert scene.load(out)["source"]["models"]["depth"] == "none"


def test_argparse_rejects_bad_numbers(tmp_path, capsys):
    s = street(tmp_path)
    for extra in (["--recursion", "6"], ["--min-area", "-1"], ["--focal-px", "0"], ["--fov-deg", "x"]):
        rc, _, err = _run(capsys, *_scene_args(s, tmp_path / "out.json", *extra))
        assert rc == 2 and "img2maya scene: error:" in err and "Traceback" not in err
    rc, _, err = _run(capsys, *_scene_args(s, tmp_path / "out.json", "--focal-px", "5", "--fov-deg", "50"))
    assert rc == 2 and "not allowed with argument" in err
    assert not (tmp_path / "out.json").exists()


# ---- batch -------------------------------------------------------------------------------------------------


def _fake_networks(monkeypatch, s):
    from test_pipeline import _FakeApi

    import inference_server.inference as pkg

    api = _FakeApi(s.label_ids, s.z)
    monkeypatch.setitem(sys.modules, "inference_server.inference.api", api)
    monkeypatch.setattr(pkg, "api", api, raising=False)
    return api


def test_batch_reports_each_failure_and_writes_the_rest(tmp_path, capsys, monkeypatch):
    s = street(tmp_path)
    api = _fake_networks(monkeypatch, s)
    a = tmp_path / "a.png"
    Image.fromarray(s.rgb).save(a)
    (tmp_path / "sub").mkdir()
    a2 = tmp_path / "sub" / "a.png"
    Image.fromarray(s.rgb).save(a2)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    outdir = tmp_path / "outdir"
    rc, _, err = _run(capsys, "scene", a, bad, a2, "-o", f"{outdir}/", "--format", "usda")
    assert rc == 2
    # outputs keep the photos' paths relative to the folder holding them all (docs/BATCH.md): no name clash
    assert sorted(str(p.relative_to(outdir)) for p in outdir.rglob("*.usda")) == ["a.usda", "sub/a.usda"]
    assert json.loads((outdir / "img2maya-batch.json").read_text())["photos"]["bad.usda"]["status"] == "failed"
    errors = [ln for ln in err.splitlines() if ln.startswith("img2maya: error:")]
    assert len(errors) == 2 and "bad.jpg" in errors[0] and "not an image file" in errors[0]
    assert errors[1] == "img2maya: error: 1 of 3 photos failed"
    assert len([c for c in api.calls if c[0] == "segment"]) == 2


def test_batch_rules(tmp_path, capsys):
    s = street(tmp_path)
    rc, _, err = _run(capsys, "scene", s.photo, s.photo, "--labels", s.labels, "--label-names", s.names,
                      "-o", tmp_path / "o/")
    _assert_one_line_error(rc, err, "belong to one photo")
    (tmp_path / "f.json").write_text("{}")
    rc, _, err = _run(capsys, "scene", s.photo, s.photo, "-o", tmp_path / "f.json")
    _assert_one_line_error(rc, err, "is a file, not a folder: several photos")
    rc, _, err = _run(capsys, *_scene_args(s, tmp_path / "x.usda", "--format", "glb"))
    _assert_one_line_error(rc, err, "--format glb does not match")
    # one photo into a folder
    rc, _, err = _run(capsys, *_scene_args(s, tmp_path / "folder/", "--format", "gltf", "-q"))
    assert rc == 0 and (tmp_path / "folder" / "street.gltf").stat().st_size > 100


def test_internal_error_is_one_line_and_batch_goes_on(tmp_path, capsys, monkeypatch):
    from inference_server import pipeline

    s = street(tmp_path)
    real_run = pipeline.run

    def flaky(photo, **kw):
        if "boom" in str(photo):
            raise ZeroDivisionError("a bug")
        return real_run(photo, **kw)

    monkeypatch.setattr(pipeline, "run", flaky)
    boom = tmp_path / "boom.png"
    boom.write_bytes(s.photo.read_bytes())
    rc, _, err = _run(capsys, "scene", boom, "--depth", "none", "-o", tmp_path / "one.json")
    assert rc == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("img2maya: error: internal error (ZeroDivisionError: a bug); rerun with IMG2MAYA_DEBUG=1")
    monkeypatch.setenv("IMG2MAYA_DEBUG", "1")
    rc, _, err = _run(capsys, "scene", boom, "--depth", "none", "-o", tmp_path / "one.json")
    assert rc == 1 and "Traceback" in err
    monkeypatch.delenv("IMG2MAYA_DEBUG")
    _fake_networks(monkeypatch, s)
    rc, _, err = _run(capsys, "scene", boom, s.photo, "--depth", "none", "-o", tmp_path / "out/")
    assert rc == 1
    assert f"img2maya: error: {boom}: internal error (ZeroDivisionError" in err
    assert "img2maya: error: 1 of 2 photos failed" in err


# ---- 50 megapixels -----------------------------------------------------------------------------------------


def test_50_megapixel_photo_analysed_downscaled(tmp_path, capsys):
    W, H = 8660, 5774
    photo = tmp_path / "big.jpg"
    Image.new("RGB", (W, H), (90, 90, 90)).save(photo, quality=80)
    labels = np.zeros((H, W), np.uint8)
    labels[H // 2:, :] = 1
    labels[3000:4000, 2000:3500] = 2  # a block at known full-resolution pixels
    Image.fromarray(labels, "L").save(tmp_path / "l.png", compress_level=1)
    (tmp_path / "n.txt").write_text("sky\nroad\ncar\n")
    out = tmp_path / "out.json"
    rc, _, err = _run(capsys, "scene", photo, "--labels", tmp_path / "l.png", "--label-names", tmp_path / "n.txt",
                      "--depth", "none", "--focal-px", "7000", "-o", out, "-q")
    assert rc == 0, err
    sc = scene.load(out)
    src, cam = sc["source"], sc["camera"]
    assert (src["width"], src["height"], cam["width"], cam["height"]) == (W, H, W, H)
    assert src["analysis_width"] * src["analysis_height"] <= 4_000_000 and src["analysis_width"] == 2449
    assert cam["focal_px"] == pytest.approx(7000.0) and cam["principal_px"] == pytest.approx([W / 2, H / 2])
    (car,) = [o for o in sc["objects"] if o["label"] == "car"]
    x0, y0, x1, y1 = car["bbox_px"]
    tol = 1 / src["analysis_width"] * W + 1  # one analysed pixel
    assert abs(x0 - 2000) <= tol and abs(x1 - 3500) <= tol and abs(y0 - 3000) <= tol and abs(y1 - 4000) <= tol


# ---- real processes ----------------------------------------------------------------------------------------

_DRIVER = """
import json, sys
from inference_server.cli import main
rc = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "tensorflow", "ai_edge_litert", "keras", "jax") if m in sys.modules)
print(json.dumps({"rc": rc, "heavy": heavy}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("IMG2MAYA_DEBUG", None)
    return env


def test_subprocess_scene_imports_no_framework(tmp_path):
    s = street(tmp_path)
    out = tmp_path / "out.usda"
    proc = subprocess.run([sys.executable, "-c", _DRIVER, *_scene_args(s, out, "-q")], capture_output=True,
                          text=True, cwd=ROOT, env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res == {"rc": 0, "heavy": []}
    assert out.read_text().startswith("#usda")


def test_console_script_error_is_one_line(tmp_path):
    exe = Path(sys.executable).with_name("img2maya")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "inference_server.cli"]
    s = street(tmp_path)
    (tmp_path / "t.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    s.photo = tmp_path / "t.jpg"
    proc = subprocess.run([*cmd, *_scene_args(s, tmp_path / "out.glb")], capture_output=True, text=True,
                          env=_env(), timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("img2maya: error: cannot read photo ")
    assert "t.jpg" in proc.stderr and not (tmp_path / "out.glb").exists()
    proc = subprocess.run([sys.executable, "-m", "inference_server.cli", "--version"], capture_output=True,
                          text=True, env=_env(), timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"img2maya {__version__}"


def test_broken_sibling_command_module_does_not_break_scene(tmp_path, capsys, monkeypatch):
    from inference_server import cli

    (tmp_path / "broken_cmds.py").write_text("raise RuntimeError('half-written module')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "_OTHER_COMMANDS", ("broken_cmds", "no_such_module_xyz"))
    s = street(tmp_path)
    rc, _, err = _run(capsys, *_scene_args(s, tmp_path / "out.json", "-q"))
    assert rc == 0 and (tmp_path / "out.json").exists()
    assert err.strip() == ("img2maya: warning: commands of broken_cmds unavailable "
                           "(RuntimeError: half-written module)")


@pytest.mark.shared
def test_kitti_network_labels_with_lidar_depth_png(samples_dir, models_dir, tmp_path, capsys):
    """Network labels + the user's sparse LiDAR depth (KITTI uint16 PNG, value / 256 m, 0 = none) +
    the calibrated focal: the camera lands at KITTI's 1.65 m and the pedestrian where its label box is."""
    from inference_server.inference import api

    if not api.available(api.DEFAULT_SEG, models_dir):
        pytest.skip(f"{api.DEFAULT_SEG} not in {models_dir}")
    out = tmp_path / "kitti.json"
    rc, _, err = _run(capsys, "scene", samples_dir / "kitti_000000_rgb.png", "--depth",
                      samples_dir / "kitti_000000_depth_lidar.png", "--focal-px", "707.0493", "--models-dir",
                      models_dir, "-o", out, "-q")
    assert rc == 0, err
    sc = scene.load(out)
    assert sc["source"]["models"] == {"segmentation": api.DEFAULT_SEG, "depth": "user",
                                      "instances": api.DEFAULT_INSTANCES}  # network labels: instances too
    assert sc["ground"]["found"] and sc["ground"]["camera_height_m"] == pytest.approx(1.65, abs=0.1)
    gt = (712.40, 143.00, 810.73, 307.92)  # label_2: Pedestrian 2D box

    def iou(b):
        ix = max(0.0, min(b[2], gt[2]) - max(b[0], gt[0]))
        iy = max(0.0, min(b[3], gt[3]) - max(b[1], gt[1]))
        inter = ix * iy
        return inter / ((b[2] - b[0]) * (b[3] - b[1]) + (gt[2] - gt[0]) * (gt[3] - gt[1]) - inter)

    # the segmentation's pedestrian is not exactly the label box (instance splits vary with the engine):
    # what matters here is that bbox_px come back in the photo's own pixels
    best = max((o["bbox_px"] for o in sc["objects"] if o["label"] == "person"), key=iou)
    cx, cy = (gt[0] + gt[2]) / 2, (gt[1] + gt[3]) / 2
    assert iou(best) > 0.4 and best[0] <= cx <= best[2] and best[1] <= cy <= best[3]
