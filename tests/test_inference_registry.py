"""Model registry: folder resolution, sha256 verification, clean errors, offline download, CLI commands."""

from __future__ import annotations

import re
import shutil
import socket
import time
import urllib.error
from pathlib import Path

import pytest

from inference_server.errors import UserError
from inference_server.inference import cli_models, labelsets, registry

SHIPPED = ("deeplabv3-mnv2-ade20k150", "deeplabv3-mnv2-ade20k32", "pydnet-mobile-v1")


def test_models_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path / "env"))
    assert registry.models_dir(tmp_path / "flag") == tmp_path / "flag"
    assert registry.models_dir() == tmp_path / "env"
    monkeypatch.delenv(registry.ENV_VAR)
    assert registry.models_dir() == Path.home() / ".img2maya" / "models"
    assert registry.file_path("pydnet-mobile-v1", tmp_path) == tmp_path / "pydnet-mobile-v1" / "optimized_pydnet++.tflite"


def test_table_is_complete() -> None:
    ids = set(registry.MODELS)
    from inference_server.inference.hf import specs as hf_specs

    hf_ids = {spec.id for spec in hf_specs.registry_specs()}
    assert len(hf_ids) >= 5 and all(registry.get(m).backend == "transformers" for m in hf_ids)
    assert all(re.fullmatch(r"[0-9a-f]{40}", registry.get(m).revision or "") for m in hf_ids)  # pinned
    assert ids == {*SHIPPED, "deeplabv2-cocostuff164k", "monodepth-cityscapes", "monodepth-kitti",
                   "yolov8n-seg-coco-int8", *hf_ids}
    assert registry.DEFAULT_SEG == "deeplabv3-mnv2-ade20k150" and registry.DEFAULT_DEPTH == "pydnet-mobile-v1"
    assert registry.DEFAULT_INSTANCES == "yolov8n-seg-coco-int8"
    assert "AGPL-3.0" in registry.get("yolov8n-seg-coco-int8").licence
    for spec in registry.MODELS.values():
        assert spec.task in ("segmentation", "depth", "instances") and spec.licence and spec.source
        assert all(u.startswith(("https://", "http://")) for f in spec.files for u in f.urls)
        if spec.labels and spec.labels != "coco-panoptic133":  # every label set named is shipped (the
            # panoptic checkpoint's 133 names come from its own config.json: hf/runners.py)
            assert len(labelsets.names(spec.labels)) >= 19
    for mid in SHIPPED:  # the shipped models are pinned by hash, URLs at fixed commits
        f = registry.get(mid).main_file
        assert re.fullmatch(r"[0-9a-f]{64}", f.sha256 or "") and f.size and f.size > 1_000_000
        assert all(re.search(r"/[0-9a-f]{40}/", u) for u in f.urls)
    with pytest.raises(UserError, match="unknown model 'nope'.*deeplabv3-mnv2-ade20k150"):
        registry.get("nope")


def test_label_files() -> None:
    ade = labelsets.names("ade20k150")
    assert len(ade) == 151 and ade[:4] == ["other", "wall", "building", "sky"] and len(set(ade)) == 151
    assert ade[137] == "traffic light" and ade[150] == "flag" and ade[59] == "screen door"
    assert labelsets.names("ade20k32") == ade[:32]
    coco = labelsets.names("cocostuff182")
    assert len(coco) == 183 and coco[0] == "person" and coco[156] == "sky-other" and coco[182] == "unlabeled"
    city = labelsets.names("cityscapes19")
    assert len(city) == 19 and city[0] == "road" and city[10] == "sky"
    lut = labelsets.ade_to_cityscapes()
    assert lut[ade.index("sky")] == 10 and lut[ade.index("road")] == 0 and lut[ade.index("bed")] == -1
    assert labelsets.cocostuff_to_cityscapes()[coco.index("pavement")] == 1


def test_verify_shared_models(models_dir: Path) -> None:
    """The files in ../shared are exactly the ones MODEL.md describes (sha256 quoted there)."""
    for mid in SHIPPED:
        folder = registry.verify(mid, models_dir)
        f = registry.get(mid).main_file
        assert registry.sha256_file(folder / f.name) == f.sha256
        assert f.sha256 in (models_dir / mid / "MODEL.md").read_text()
        assert registry.status(mid, models_dir) == {f.name: "ok"}
    listed = {m["id"]: m for m in registry.list_models(models_dir)}
    assert all(listed[m]["installed"] for m in SHIPPED)


def test_missing_and_corrupt_checkpoint(models_dir: Path, tmp_path: Path) -> None:
    mid = "pydnet-mobile-v1"
    f = registry.get(mid).main_file
    expected = tmp_path / mid / f.name
    with pytest.raises(UserError) as exc:
        registry.verify(mid, tmp_path)
    assert str(expected) in str(exc.value) and "missing" in str(exc.value) and f.sha256 in str(exc.value)
    expected.parent.mkdir()
    data = bytearray((models_dir / mid / f.name).read_bytes())
    data[1000] ^= 0xFF  # same size, one byte flipped
    expected.write_bytes(bytes(data))
    with pytest.raises(UserError) as exc:
        registry.verify(mid, tmp_path)
    msg = str(exc.value)
    assert "wrong sha256" in msg and f.sha256 in msg and str(expected) in msg and "\n" not in msg
    expected.write_bytes(b"short")
    with pytest.raises(UserError, match="wrong size 5"):
        registry.verify(mid, tmp_path)
    import numpy as np

    from inference_server.inference import api

    with pytest.raises(UserError, match="wrong size"):  # the api refuses to run it, with the same message
        api.estimate_depth(np.zeros((8, 8, 3), np.uint8), mid, tmp_path)


def test_download_offline_fails_cleanly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def offline(url: str, timeout: float) -> None:
        assert timeout <= registry.DOWNLOAD_TIMEOUT_S
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(registry, "_urlopen", offline)
    mid = "deeplabv3-mnv2-ade20k32"
    with pytest.raises(UserError) as exc:
        registry.download(mid, tmp_path, progress=False)
    msg = str(exc.value)
    target = tmp_path / mid / registry.get(mid).main_file.name
    assert str(target) in msg and registry.get(mid).main_file.sha256 in msg and "Name or service" in msg
    assert "\n" not in msg
    assert not target.exists() and not list((tmp_path / mid).glob("*.part"))
    with pytest.raises(UserError, match=r"model_kitti\.index, model_kitti\.data-00000-of-00001"):
        registry.download("monodepth-kitti", tmp_path, progress=False)


def test_download_unreachable_does_not_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real urlopen against a closed local port: refused at once, never a hang."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    spec = registry.get("pydnet-mobile-v1")
    f = registry.ModelFile(spec.main_file.name, spec.main_file.sha256, spec.main_file.size,
                           (f"http://127.0.0.1:{port}/x.tflite",))
    monkeypatch.setitem(registry.MODELS, spec.id, registry.ModelSpec(
        spec.id, spec.task, spec.backend, (f,), spec.licence, spec.source))
    t0 = time.monotonic()
    with pytest.raises(UserError, match="could not download pydnet-mobile-v1"):
        registry.download(spec.id, tmp_path, progress=False, timeout=3)
    assert time.monotonic() - t0 < 10


class _FakeResponse:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0
        self.headers = {"Content-Length": str(len(data))}

    def read(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def __enter__(self) -> _FakeResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_download_checks_hash_and_renames(models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mid = "pydnet-mobile-v1"
    good = (models_dir / mid / registry.get(mid).main_file.name).read_bytes()
    served = {"n": 0}

    def fake(url: str, timeout: float) -> _FakeResponse:
        served["n"] += 1
        return _FakeResponse(good)

    monkeypatch.setattr(registry, "_urlopen", fake)
    folder = registry.download(mid, tmp_path, progress=False)
    assert (folder / "optimized_pydnet++.tflite").read_bytes() == good and served["n"] == 1
    assert registry.download(mid, tmp_path, progress=False) == folder and served["n"] == 1  # nothing to do

    monkeypatch.setattr(registry, "_urlopen", lambda url, timeout: _FakeResponse(good[:-1] + b"x"))
    with pytest.raises(UserError, match="wrong sha256"):
        registry.download("pydnet-mobile-v1", tmp_path / "other", progress=False)
    assert not (tmp_path / "other" / mid / "optimized_pydnet++.tflite").exists()


def test_cli_models_commands(models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_models.main(["models", "list", "--models-dir", str(models_dir)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"deeplabv3-mnv2-ade20k150 +segmentation +litert +installed \(default\)", out)
    assert re.search(r"monodepth-kitti +depth +tensorflow +missing", out)
    assert cli_models.main(["models", "verify", "--models-dir", str(models_dir), *SHIPPED]) == 0
    shutil.copytree(models_dir / "pydnet-mobile-v1", tmp_path / "pydnet-mobile-v1")
    assert cli_models.main(["models", "verify", "--models-dir", str(tmp_path), "pydnet-mobile-v1",
                            "deeplabv3-mnv2-ade20k32"]) == 1
    out = capsys.readouterr().out
    assert "ok   pydnet-mobile-v1" in out and "FAIL deeplabv3-mnv2-ade20k32" in out and "missing" in out
    assert cli_models.main(["models", "verify", "bogus"]) == 2
    assert "unknown model 'bogus'" in capsys.readouterr().err
