"""`img2maya analyze`: files, resolution, encodings, clean errors, and the very files a server analyze
writes for the same photo (one writer: inference_server/outputs.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_server_support import FakePipeline, make_photo

from inference_server import pipeline
from inference_server.cache import NetworkCache
from inference_server.imageio import load_photo
from inference_server.inference import cli_models, labelsets
from inference_server.inference.preview_img import class_colours as readme_colours
from inference_server.inference.preview_img import colour_depth
from inference_server.outputs import NETWORK_FILES, class_colours, labels_png
from inference_server.server import Job, RealPipeline, Server


def _analyze(photo: Path, out: Path, *flags: str) -> int:
    return cli_models.main(["analyze", str(photo), "--out-dir", str(out), *flags])


def _server_files(pipe: Any, photo: Path, tmp_path: Path, **fields: Any) -> tuple[Path, set[str]]:
    """A server analyze of `photo`: its output folder and the names of the network-output files it names."""
    server = Server(pipeline=pipe, cache=NetworkCache(tmp_path / "cache"), out=io.StringIO())
    out = tmp_path / "served"
    req = {"id": "a", "type": "analyze", "photo": str(photo), "out_dir": str(out), **fields}
    res = server._run(Job("a", "analyze", req))
    assert res["type"] == "result", res
    names = {Path(p).name for p in res["files"].values() if p is not None}
    assert Path(res["files"]["scene_json"]).is_file()
    return out, names - {"scene.json"}


def _listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")}


class Networks(FakePipeline):
    """The fake pipeline's "networks" (3 brightness classes, metric depth, confidence), no depth without
    a depth model."""

    def infer(self, photo: Any, seg_model: str, depth_model: str | None, progress: Any,
              focal_px: float | None = None, fov_deg: float | None = None) -> tuple[Any, Any]:
        seg, depth = super().infer(photo, seg_model, depth_model, progress, focal_px, fov_deg)
        return seg, (depth if depth_model else None)


@pytest.fixture
def fake_networks(monkeypatch: pytest.MonkeyPatch) -> Networks:
    """`analyze` (pipeline.infer) and the returned server pipeline on the same fake networks."""
    fake = Networks()

    def infer(photo: Any, seg_model: Any, depth_model: Any, models_dir: Any = None, progress: Any = None,
              **_kw: Any) -> tuple[Any, Any]:
        return fake.infer(photo, seg_model, depth_model, lambda *a: None)

    monkeypatch.setattr(pipeline, "infer", infer)
    return fake


# ---- one writer: the same files as a server analyze ---------------------------------------------------


@pytest.mark.parametrize("depth", [True, False])
def test_analyze_and_a_server_analyze_write_the_same_files(fake_networks: Networks, tmp_path: Path,
                                                           depth: bool) -> None:
    photo = make_photo(tmp_path / "p.png")
    flags = [] if depth else ["--depth", "none"]
    assert _analyze(photo, tmp_path / "an", "--models-dir", str(tmp_path), *flags) == 0
    fields = {} if depth else {"depth_model": "none"}
    served, named = _server_files(fake_networks, photo, tmp_path, **fields)
    written = _listing(tmp_path / "an")
    assert written == named == _listing(served) - {"scene.json"}
    no_depth = {"depth.npy", "depth_kind.txt", "depth_preview.png"}
    expected = set(NETWORK_FILES.values()) - (set() if depth else no_depth)
    assert written == expected
    for name in written:  # the photo is under the analysis limit: full size = analysed size, same bytes
        assert (tmp_path / "an" / name).read_bytes() == (served / name).read_bytes(), name


def test_analyze_writes_maps_at_full_size_and_previews_at_the_analysed_size(fake_networks: Networks,
                                                                            tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "big.png", w=2600, h=1729)  # 4.5 MP: analysed smaller
    analysed = load_photo(photo).rgb.shape[:2]
    assert analysed != (1729, 2600)
    out = tmp_path / "an"
    assert _analyze(photo, out, "--models-dir", str(tmp_path)) == 0
    labels = np.asarray(Image.open(out / "labels.png"))
    assert labels.shape == (1729, 2600) and labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1, 2}
    assert np.asarray(Image.open(out / "confidence.png")).shape == (1729, 2600)
    depth = np.load(out / "depth.npy")
    assert depth.shape == (1729, 2600) and depth.dtype == np.float32
    assert (out / "depth_kind.txt").read_text() == "metric\n"
    assert (out / "label_names.txt").read_text().splitlines() == ["dark", "mid", "bright"]
    for name in ("preview.png", "depth_preview.png"):
        assert np.asarray(Image.open(out / name)).shape[:2] == analysed, name


def test_analyze_files_go_back_into_scene(fake_networks: Networks, tmp_path: Path) -> None:
    """labels.png + label_names.txt + depth.npy + depth_kind.txt are what `img2maya scene` takes back."""
    from inference_server.cli import main

    photo = make_photo(tmp_path / "p.png")
    an = tmp_path / "an"
    assert _analyze(photo, an, "--models-dir", str(tmp_path)) == 0
    out = tmp_path / "scene.json"
    kind = (an / "depth_kind.txt").read_text().strip()
    rc = main(["scene", str(photo), "--labels", str(an / "labels.png"), "--label-names",
               str(an / "label_names.txt"), "--depth", str(an / "depth.npy"), "--depth-kind", kind,
               "--instances", "none", "-o", str(out), "-q"])
    assert rc == 0
    scene = json.loads(out.read_text())
    assert {o["label"] for o in scene["objects"]} <= {"dark", "mid", "bright"}


def test_the_real_networks_give_analyze_and_the_server_the_same_files(samples_dir: Path, models_dir: Path,
                                                                     tmp_path: Path) -> None:
    photo = samples_dir / "voc_sheep_grass_rgb.png"
    assert _analyze(photo, tmp_path / "an", "--models-dir", str(models_dir)) == 0
    served, named = _server_files(RealPipeline(str(models_dir)), photo, tmp_path, instances_model="none")
    written = _listing(tmp_path / "an")
    assert written == named == set(NETWORK_FILES.values())
    for name in written:
        assert (tmp_path / "an" / name).read_bytes() == (served / name).read_bytes(), name


# ---- analyze on real photos --------------------------------------------------------------------------


def test_analyze_writes_outputs(samples_dir: Path, models_dir: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    photo = samples_dir / "harbor_longbeach.jpg"
    w, h = Image.open(photo).size
    out = tmp_path / "out"
    assert _analyze(photo, out, "--models-dir", str(models_dir)) == 0
    assert "labels.png" in capsys.readouterr().out
    labels = np.asarray(Image.open(out / "labels.png"))
    assert labels.shape == (h, w) and labels.dtype == np.uint8
    names = (out / "label_names.txt").read_text().splitlines()
    assert names == labelsets.names("ade20k150")
    top = np.bincount(labels[: h // 10].ravel(), minlength=151).argmax()
    assert names[top] == "sky"
    depth = np.load(out / "depth.npy")
    conf = np.asarray(Image.open(out / "confidence.png"))
    assert depth.shape == conf.shape == (h, w) and depth.dtype == np.float32 and conf.dtype == np.uint8
    sky = labels == names.index("sky")
    assert np.isnan(depth[sky]).all() and np.isfinite(depth[~sky]).all()
    assert (out / "depth_kind.txt").read_text().strip() == "relative"
    assert 0 < conf.max() <= 255
    analysed = load_photo(photo).rgb.shape[:2]
    for name in ("preview.png", "depth_preview.png"):
        assert np.asarray(Image.open(out / name)).shape[:2] == analysed


def test_analyze_32_classes_without_depth(samples_dir: Path, models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert _analyze(samples_dir / "person_motorbike_road.jpg", out, "--seg", "deeplabv3-mnv2-ade20k32",
                    "--depth", "none", "--models-dir", str(models_dir)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["label_names.txt", "labels.png", "preview.png"]
    assert len((out / "label_names.txt").read_text().splitlines()) == 32


def test_analyze_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _analyze(tmp_path / "missing.jpg", tmp_path / "o", "--models-dir", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("img2maya: error:") and err.count("\n") == 1
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(photo)
    assert _analyze(photo, tmp_path / "o", "--models-dir", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "deeplabv3-mnv2-ade20k150") in err and "missing" in err


def test_analyze_refuses_an_out_dir_where_a_file_would_replace_the_photo(
        fake_networks: Networks, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = make_photo(tmp_path / "depth_preview.png")  # one of the files analyze writes
    before = photo.read_bytes()
    assert _analyze(photo, tmp_path, "--models-dir", str(tmp_path)) == 2
    assert "photo" in capsys.readouterr().err and photo.read_bytes() == before


def test_label_png_depth_and_colours() -> None:
    small = np.array([[0, 150]], np.int32)
    assert np.asarray(Image.open(io.BytesIO(labels_png(small, 151)))).dtype == np.uint8
    big = np.array([[0, 300]], np.int32)
    back = np.asarray(Image.open(io.BytesIO(labels_png(big, 400))))
    assert back.tolist() == [[0, 300]]
    assert len({tuple(c) for c in class_colours(256)}) == 256
    assert len({tuple(c) for c in readme_colours(151)}) == 151
    d = np.array([[1.0, 2.0, np.nan]], np.float32)
    c = colour_depth(d)
    assert c[0, 2].tolist() == [0, 0, 0] and c[0, 0].sum() < c[0, 1].sum()


def test_analyze_downscaled_photo_written_at_full_size(samples_dir: Path, models_dir: Path,
                                                      tmp_path: Path) -> None:
    """A photo over the analysis limit is analysed smaller, but the outputs come back at its full size."""
    big = Image.open(samples_dir / "street_london_bus.jpg").convert("RGB").resize((2600, 1729))
    photo = tmp_path / "big.jpg"
    big.save(photo, quality=90)
    out = tmp_path / "o"
    assert _analyze(photo, out, "--models-dir", str(models_dir)) == 0
    labels = np.asarray(Image.open(out / "labels.png"))
    assert labels.shape == (1729, 2600)
    conf = np.asarray(Image.open(out / "confidence.png"))
    assert np.load(out / "depth.npy").shape == conf.shape == (1729, 2600)
    names = (out / "label_names.txt").read_text().splitlines()
    assert names[np.bincount(labels[:150].ravel()).argmax()] == "sky"
