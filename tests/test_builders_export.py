"""export(): dispatch, JSON round trip, user errors, atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from test_builders_usd import all_shapes_scene, example_scene

from inference_server import scene as scene_module
from inference_server.builders import SUFFIXES, export
from inference_server.errors import UserError
from inference_server.scene import load


def test_suffixes() -> None:
    assert SUFFIXES == (".json", ".usda", ".usdc", ".usdz", ".glb", ".gltf")


def test_json_round_trip(tmp_path: Path) -> None:
    scene = all_shapes_scene()
    export(scene, tmp_path / "out" / "scene.JSON")  # folder created, suffix case-insensitive
    assert load(tmp_path / "out" / "scene.JSON") == scene


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_output_has_normal_permissions(tmp_path: Path, suffix: str) -> None:
    old = os.umask(0o022)
    try:
        export(example_scene(), tmp_path / f"scene{suffix}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / f"scene{suffix}").stat().st_mode) == 0o644


@pytest.mark.parametrize("name", ["scene.obj", "scene", "scene.usd.bak"])
def test_unknown_suffix_is_a_user_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(UserError, match="unknown output format"):
        export(example_scene(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_invalid_scene_is_a_user_error(tmp_path: Path) -> None:
    scene = example_scene()
    scene["objects"][0]["shape"] = "torus"
    with pytest.raises(UserError, match="invalid scene at objects/0/shape"):
        export(scene, tmp_path / "scene.usda")
    scene = example_scene()
    scene["objects"][1]["name"] = scene["objects"][0]["name"]
    with pytest.raises(UserError, match="not unique"):
        export(scene, tmp_path / "scene.glb")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_failure_mid_write_leaves_old_file_and_no_temp(tmp_path: Path, suffix: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The temporary file is complete but the final rename fails: the old output survives untouched."""
    target = tmp_path / f"scene{suffix}"
    target.write_bytes(b"previous")
    seen = []

    def failing_replace(src: str, dst: str) -> None:
        seen.append(Path(src).stat().st_size)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scene_module.os, "replace", failing_replace)
    with pytest.raises(UserError, match="cannot write .*No space left on device"):
        export(example_scene(), target)
    assert seen and seen[0] > 100  # it did get as far as a full temporary file
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_failure_inside_usd_writer_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pxr import UsdUtils

    def half_package(layer: str, out: str) -> bool:
        Path(out).write_bytes(b"PK\x03\x04 half a zip")
        raise RuntimeError("packaging failed")

    monkeypatch.setattr(UsdUtils, "CreateNewUsdzPackage", half_package)
    with pytest.raises(RuntimeError):
        export(example_scene(), tmp_path / "scene.usdz")
    assert list(tmp_path.iterdir()) == []
