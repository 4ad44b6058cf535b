"""`img2maya analyze` on a real photo: files, resolution, encodings, and clean errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference_server.inference import cli_models, labelsets
from inference_server.inference.analyze import labels_png
from inference_server.inference.preview_img import class_colours, colour_depth


def test_analyze_writes_outputs(samples_dir: Path, models_dir: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    photo = samples_dir / "harbor_longbeach.jpg"
    w, h = Image.open(photo).size
    out = tmp_path / "out"
    rc = cli_models.main(["analyze", str(photo), "--out-dir", str(out), "--models-dir", str(models_dir)])
    assert rc == 0
    assert "labels.png" in capsys.readouterr().out
    labels = np.asarray(Image.open(out / "labels.png"))
    assert labels.shape == (h, w) and labels.dtype == np.uint8
    names = (out / "label_names.txt").read_text().splitlines()
    assert names == labelsets.names("ade20k150")
    top = np.bincount(labels[: h // 10].ravel(), minlength=151).argmax()
    assert names[top] == "sky"
    depth = np.load(out / "depth.npy")
    conf = np.load(out / "confidence.npy")
    assert depth.shape == conf.shape == (h, w) and depth.dtype == conf.dtype == np.float32
    sky = labels == names.index("sky")
    assert np.isnan(depth[sky]).all() and np.isfinite(depth[~sky]).all()
    assert (out / "depth_kind.txt").read_text().strip() == "relative"
    assert 0 <= np.nanmin(conf) and np.nanmax(conf) <= 1
    prev = Image.open(out / "preview.png")
    assert prev.size[1] == min(480, h) and prev.size[0] > 2.9 * prev.size[1] * w / h


def test_analyze_32_classes_without_depth(samples_dir: Path, models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    rc = cli_models.main(["analyze", str(samples_dir / "person_motorbike_road.jpg"), "--out-dir", str(out),
                          "--seg", "deeplabv3-mnv2-ade20k32", "--depth", "none", "--models-dir", str(models_dir)])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["label_names.txt", "labels.png", "preview.png"]
    assert len((out / "label_names.txt").read_text().splitlines()) == 32


def test_analyze_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli_models.main(["analyze", str(tmp_path / "missing.jpg"), "--out-dir", str(tmp_path / "o"),
                          "--models-dir", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("img2maya: error:") and err.count("\n") == 1
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(photo)
    rc = cli_models.main(["analyze", str(photo), "--out-dir", str(tmp_path / "o"), "--models-dir", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "deeplabv3-mnv2-ade20k150") in err and "missing" in err


def test_label_png_depth_and_colours() -> None:
    import io

    small = np.array([[0, 150]], np.int32)
    assert np.asarray(Image.open(io.BytesIO(labels_png(small, 151)))).dtype == np.uint8
    big = np.array([[0, 300]], np.int32)
    back = np.asarray(Image.open(io.BytesIO(labels_png(big, 400))))
    assert back.tolist() == [[0, 300]]
    cols = class_colours(151)
    assert len({tuple(c) for c in cols}) == 151
    d = np.array([[1.0, 2.0, np.nan]], np.float32)
    c = colour_depth(d)
    assert c[0, 2].tolist() == [0, 0, 0] and c[0, 0].sum() < c[0, 1].sum()


def test_analyze_downscaled_photo_written_at_full_size(samples_dir: Path, models_dir: Path, tmp_path: Path) -> None:
    """A photo over the analysis limit is analysed smaller, but the outputs come back at its full size."""
    big = Image.open(samples_dir / "street_london_bus.jpg").convert("RGB").resize((2600, 1729))
    photo = tmp_path / "big.jpg"
    big.save(photo, quality=90)
    out = tmp_path / "o"
    assert cli_models.main(["analyze", str(photo), "--out-dir", str(out), "--models-dir", str(models_dir)]) == 0
    labels = np.asarray(Image.open(out / "labels.png"))
    assert labels.shape == (1729, 2600)
    assert np.load(out / "depth.npy").shape == np.load(out / "confidence.npy").shape == (1729, 2600)
    names = (out / "label_names.txt").read_text().splitlines()
    assert names[np.bincount(labels[:150].ravel()).argmax()] == "sky"
