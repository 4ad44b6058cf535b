"""Fuzz: the scene@1 schema and the scene readers (Hypothesis). A scene mutated anywhere is refused with
a one-line SceneError or is valid, and a valid one is written by every builder; scene text of any shape
or depth is read with a SceneError at worst."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import FUZZ, FUZZ_SLOW, json_ish_text, json_values
from hostile_support import make_inputs
from hypothesis import given
from hypothesis import strategies as st

from inference_server import pipeline, scene
from inference_server.builders import export
from inference_server.errors import UserError

_DIR = Path(tempfile.mkdtemp(prefix="img2maya-fuzz-scene-"))


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    inp = make_inputs(_DIR / "in")
    return pipeline.run(inp.photo, labels_path=inp.labels, names_path=inp.names, depth_path=inp.depth)


def _containers(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every dict and list in the scene (where a mutation can happen)."""
    found = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict | list):
                found += _containers(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, dict | list):
                found += _containers(v, (*path, i))
    return found


EXTREMES = [0.0, -0.0, -1.0, 1e-300, 1e300, -1e300, 1e38]


def _like(value: Any) -> st.SearchStrategy[Any]:
    """Values of the same kind as `value` (so that many mutated scenes stay valid), extremes included."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(-10, 10**6) | st.sampled_from([0, -1, 2**53])
    if isinstance(value, float):
        return st.floats(-1e6, 1e6) | st.sampled_from(EXTREMES)
    if isinstance(value, str):
        return st.text(max_size=10) | st.sampled_from(["", "a/b", "x" * 300, "名前"])
    if isinstance(value, list) and value and not isinstance(value[0], dict | list):
        return st.tuples(*[_like(v) for v in value]).map(list)
    return json_values


def _mutate(sc: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    sc = copy.deepcopy(sc)
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(_containers(sc)))
        node: Any = sc
        for key in where:
            node = node[key]
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        action = data.draw(st.sampled_from(["like"] * 6 + ["replace", "delete", "add"] if keys else ["add"]))
        if action == "add":
            if isinstance(node, dict):
                node[data.draw(st.text(max_size=6))] = data.draw(json_values)
            else:
                node.append(copy.deepcopy(node[0]) if node and data.draw(st.booleans()) else data.draw(json_values))
            continue
        key = data.draw(st.sampled_from(keys))
        if action == "delete":
            del node[key]
        else:
            node[key] = data.draw(_like(node[key]) if action == "like" else json_values)
    return sc


@FUZZ_SLOW
@given(data=st.data())
def test_a_mutated_scene_is_refused_in_one_line_or_built_by_every_builder(base: dict[str, Any],
                                                                          data: st.DataObject) -> None:
    sc = _mutate(base, data)
    try:
        scene.validate(sc)
    except scene.SceneError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("invalid scene")
        return
    for suffix in (".json", ".usda", ".glb"):
        out = _DIR / f"fuzz{suffix}"
        try:
            export(sc, out)
        except UserError as exc:  # a number valid in scene@1 that the format cannot hold (int32 in USD)
            assert "does not fit the" in str(exc) and "\n" not in str(exc), exc
            continue
        assert out.stat().st_size > 0
    assert scene.load(_DIR / "fuzz.json") == json.loads(scene.to_json(sc))


@FUZZ
@given(text=json_ish_text | st.text(max_size=100), wrap=st.integers(0, 300))
def test_scene_text_of_any_shape_is_a_scene_error_at_worst(text: str, wrap: int) -> None:
    path = _DIR / "text.json"
    path.write_text("[" * wrap + text + "]" * wrap, encoding="utf-8")
    try:
        scene.load(path)
    except scene.SceneError as exc:
        assert "\n" not in str(exc)
    else:  # pragma: no cover - such text is never a scene
        pytest.fail("random text loaded as a scene")


def test_a_scene_nested_deeper_than_the_limit_is_refused_before_parsing(base: dict[str, Any]) -> None:
    from inference_server.limits import SCENE_MAX_DEPTH

    sc = copy.deepcopy(base)
    node = sc["objects"][0]
    for _ in range(SCENE_MAX_DEPTH):  # a chain of children, each one level deeper
        child = copy.deepcopy(base["objects"][0])
        child["children"] = []
        node["children"] = [child]
        node = child
    path = _DIR / "deep.json"
    path.write_text(json.dumps(sc))
    with pytest.raises(scene.SceneError, match=f"over the limit of {SCENE_MAX_DEPTH}"):
        scene.load(path)
