"""scene@1: the JSON Schema, validation messages, atomic save/load."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from inference_server import scene as sc

EXAMPLE = Path(__file__).parent / "data" / "example_scene.json"


def example() -> dict:
    return json.loads(EXAMPLE.read_text())


def test_example_scene_is_valid() -> None:
    s = example()
    sc.validate(s)
    names = [o["name"] for o in sc.iter_objects(s["objects"])]
    assert names == ["road_1", "sky_1", "building_1", "building_1_1", "car_1", "person_1", "tree_1"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.update(schema="img2maya/scene@2"), "schema"),
        (lambda s: s["objects"][3].update(shape="teapot"), "objects/3/shape"),
        (lambda s: s["objects"][3].update(color_srgb=[1.2, 0, 0]), "objects/3/color_srgb/0"),
        (lambda s: s["camera"].pop("focal_px"), "camera"),
        (lambda s: s["objects"][4].update(name="car_1"), "not unique"),
    ],
)
def test_invalid_scenes_get_one_line_errors(mutate, message) -> None:
    s = example()
    mutate(s)
    with pytest.raises(sc.SceneError) as info:
        sc.validate(s)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_save_load_roundtrip_is_atomic(tmp_path: Path) -> None:
    s = example()
    out = tmp_path / "scene.json"
    sc.save(s, out)
    assert sc.load(out) == s
    bad = copy.deepcopy(s)
    bad["units"] = "cm"
    with pytest.raises(sc.SceneError):
        sc.save(bad, out)
    assert sc.load(out) == s  # the earlier file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["scene.json"]  # no temp files left


def test_save_honours_umask(tmp_path):
    """Scene files get the user's normal permissions (umask), not mkstemp's 0600."""
    import json as _json
    import os as _os

    from inference_server import scene as scene_mod

    old = _os.umask(0o022)
    try:
        out = tmp_path / "perm.json"
        scene_mod.atomic_write_bytes(out, _json.dumps({"a": 1}).encode())
    finally:
        _os.umask(old)
    assert (out.stat().st_mode & 0o777) == 0o644
    assert _json.loads(out.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["perm.json"]
