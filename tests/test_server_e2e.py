"""The server with the real pipeline and real models on a sample photo (needs ../shared)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.shared, pytest.mark.slow]


@pytest.fixture(scope="module")
def real_client(models_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("inference_server.pipeline", reason="inference_server/pipeline.py not there yet")
    from img2maya.client import ServerClient

    cache = tmp_path_factory.mktemp("cache")
    env = dict(os.environ, IMG2MAYA_CACHE=str(cache), IMG2MAYA_MODELS=str(models_dir))
    client = ServerClient(python=sys.executable, env=env, engine_root=str(ROOT), start_timeout=120)
    yield client
    assert client.close() == 0


def test_analyze_then_regenerate_a_real_photo(real_client, samples_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    from inference_server import scene as scene_mod

    photo = samples_dir / "voc_sheep_grass_rgb.png"
    info = real_client.hello()
    assert info["schema"] == "img2maya/scene@1"
    assert info["models"]["defaults"]["seg"]
    stages = []
    first = real_client.analyze(str(photo), out_dir=str(tmp_path / "out"),
                                on_progress=lambda s, f: stages.append(s))
    assert first["cached"] is False
    scene_mod.validate(first["scene"])
    assert first["scene"]["objects"], "no objects found in the sheep photo"
    assert {"load", "analysis", "done"} <= set(stages)
    with Image.open(photo) as im, Image.open(first["files"]["labels"]) as lab:
        assert lab.size == im.size
    assert json.loads(Path(first["files"]["scene_json"]).read_text()) == first["scene"]

    again = real_client.regenerate(ref=first["id"], recursion=2)
    assert again["cached"] is True
    scene_mod.validate(again["scene"])
    assert again["scene"]["camera"] == first["scene"]["camera"]
    assert again["files"]["labels"] == first["files"]["labels"]


def test_analyze_without_depth_and_regenerate_by_path(real_client, samples_dir: Path) -> None:
    from inference_server import scene as scene_mod

    photo = samples_dir / "voc_sheep_grass_rgb.png"
    first = real_client.analyze(str(photo), depth_model="none", recursion=1)
    scene_mod.validate(first["scene"])
    assert first["scene"]["source"]["models"]["depth"] == "none"
    assert first["files"]["depth"] is None and first["files"]["depth_preview"] is None
    again = real_client.regenerate(str(photo), depth_model="none", options={"color_stat": "median"})
    assert again["cached"] is True and again["photo_sha256"] == first["photo_sha256"]
    scene_mod.validate(again["scene"])
