"""Warm analysis for `regenerate`: a prepared SceneEngine assembled at any recursion gives exactly the
scene a fresh build gives (same JSON), whatever the sequence of recursions and resegment hooks, and the
server keeps the last few prepared engines (docs/PROTOCOL.md, regenerate)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from test_analysis_synth import street
from test_server_support import FakePipeline, make_photo

from inference_server.analysis.engine import SceneEngine, SceneOptions, build_scene
from inference_server.analysis.stage_cache import StageCache
from inference_server.cache import NetworkCache
from inference_server.inference.types import DepthMap, Segmentation
from inference_server.server import Job, RealPipeline, ResegmentMemo, Server

SRC = {"image": "street.png", "width": 320, "height": 240, "sha256": "0" * 64}


def text(scene: dict[str, Any]) -> str:
    return json.dumps(scene, sort_keys=True, allow_nan=False)


def network(crop_rgb: np.ndarray, crop_mask: np.ndarray) -> tuple[np.ndarray, list[str]] | None:
    """A deterministic stand-in for the re-segmentation network: top/bottom halves of big crops."""
    if crop_mask.sum() < 3000:
        return None
    sub = np.zeros(crop_mask.shape, np.int32)
    sub[: crop_mask.shape[0] // 2] = 1
    return sub, ["wall", "windowpane"]


def fresh(s: Any, names: list[str], recursion: int, hook: Any = None, **kw: Any) -> dict[str, Any]:
    return build_scene(s.rgb, s.labels, names, kw.pop("depth", s.depth), s.intr,
                       SceneOptions(recursion=recursion, **kw), source=dict(SRC), resegment=hook)


def prepared(s: Any, names: list[str], hook: Any = None, **kw: Any) -> SceneEngine:
    engine = SceneEngine(s.rgb, s.labels, names, kw.pop("depth", s.depth), s.intr, SceneOptions(**kw),
                         source=dict(SRC), confidence=None, full_size=None, progress=None, resegment=hook)
    engine.prepare()
    return engine


def count(objects: list[dict[str, Any]]) -> int:
    return sum(1 + count(o["children"]) for o in objects)


@pytest.mark.parametrize("kw", [{}, {"color_stat": "median"}, {"depth_kind": "relative"}, {"depth": None}])
def test_warm_assemble_equals_a_fresh_build_for_any_recursion_sequence(kw: dict[str, Any]) -> None:
    s = street()
    engine = prepared(s, s.names, **dict(kw))
    counts = {}
    for r in (0, 1, 2, 1, 3, 0, 2, 2, 3):
        warm = engine.assemble(r)
        assert text(warm) == text(fresh(s, s.names, r, **dict(kw))), r
        assert warm["settings"]["recursion"] == r
        counts[r] = count(warm["objects"])
    assert counts[0] < counts[1] < counts[2] < counts[3]


def test_levels_are_computed_once_and_the_returned_scene_is_not_the_cache(monkeypatch: Any) -> None:
    from inference_server.analysis import children

    s = street()
    engine = prepared(s, s.names)
    calls: list[int] = []
    child_nodes = children.child_nodes

    def counting(*args: Any) -> Any:
        calls.append(1)
        return child_nodes(*args)

    monkeypatch.setattr(children, "child_nodes", counting)
    first = engine.assemble(2)
    n2 = len(calls)
    assert n2 > 0
    engine.assemble(1)
    engine.assemble(2)
    assert len(calls) == n2  # 2 -> 1 -> 2: nothing recomputed
    engine.assemble(3)
    assert len(calls) > n2  # only the new level
    first["objects"][0]["children"].clear()
    first["objects"][0]["name"] = "changed"
    assert text(engine.assemble(2)) == text(fresh(s, s.names, 2))


def test_warm_children_follow_the_hook_like_a_fresh_build() -> None:
    """analyze (live network, recorded) then regenerate (replayed answers only), as the server does:
    a crop the replay lacks falls back to the colour split, and a later analyze that runs the network
    on it gets the network's answer - warm as fresh."""
    s = street()
    memo = ResegmentMemo()
    engine = prepared(s, s.names)
    steps = [("live", 1), ("replay", 2), ("replay", 1), ("replay", 3), ("live", 3), ("replay", 3), ("live", 0),
             ("replay", 2)]
    labels_seen = set()
    for kind, r in steps:
        hook = memo.recording("k", network) if kind == "live" else memo.replaying("k")
        warm = engine.assemble(r, resegment=hook)
        again = memo.recording("k", network) if kind == "live" else memo.replaying("k")
        assert text(warm) == text(fresh(s, s.names, r, again)), (kind, r)
        labels_seen |= {c["label"] for o in warm["objects"] for c in o["children"]}
    assert {"wall", "windowpane"} <= labels_seen
    # another memo (the server's was evicted): the cached children are dropped, not reused
    other = ResegmentMemo().replaying("k")
    assert other is None
    assert text(engine.assemble(2, resegment=None)) == text(fresh(s, s.names, 2, None))


def test_a_failing_hook_is_retried_like_a_fresh_build() -> None:
    s = street()
    fail = [True]

    def flaky(crop_rgb: np.ndarray, crop_mask: np.ndarray) -> Any:
        if fail[0]:
            raise RuntimeError("busy")
        return network(crop_rgb, crop_mask)

    engine = prepared(s, s.names, flaky)
    assert any("resegment failed" in w for w in engine.assemble(1)["warnings"])
    fail[0] = False
    assert text(engine.assemble(1)) == text(fresh(s, s.names, 1, flaky))


def test_a_child_name_that_takes_a_top_level_name_is_resolved_as_in_a_fresh_build() -> None:
    s = street()
    names = ["sky", "road", "car", "building", "building 1"]  # the crate's top name is building_1_<k>
    engine = prepared(s, names)
    for r in (0, 1, 2, 0, 1):
        warm = engine.assemble(r)
        assert text(warm) == text(fresh(s, names, r)), r
    top = {o["name"] for o in engine.assemble(1)["objects"]}
    assert "building_1_1" not in top and any(n.startswith("building_1_") for n in top)


# ---------------------------------------------------------------------------------------- server
class EnginePipeline(FakePipeline):
    """The real engine on the synthetic street (networks faked), with prepare/assemble."""

    make_options = RealPipeline.make_options
    analyse = RealPipeline.analyse

    def __init__(self) -> None:
        self.s = street()
        self.prepares = 0
        self.cancel_after: tuple[Job, int] | None = None

    def load_photo(self, path: str) -> Any:
        base = super().load_photo(path)
        h, w = self.s.labels.shape
        return SimpleNamespace(path=path, rgb=self.s.rgb, full_width=w, full_height=h, shape=(h, w),
                               sha256=base.sha256, exif_focal_mm=None, exif_focal_35mm=None,
                               exif_sensor_width_mm=None)

    def infer(self, photo: Any, seg_model: str, depth_model: str | None, progress: Any,
              focal_px: float | None = None, fov_deg: float | None = None) -> tuple[Any, Any]:
        return (Segmentation(labels=self.s.labels, names=list(self.s.names), model=seg_model),
                DepthMap(depth=self.s.depth, kind="metric", model=str(depth_model)))

    def resegmenter(self, seg_model: str) -> Any:
        return network

    def prepare(self, *args: Any, **kwargs: Any) -> Any:
        self.prepares += 1
        return RealPipeline.prepare(self, *args, **kwargs)  # type: ignore[arg-type]

    def assemble(self, engine: Any, recursion: int, *, progress: Any, resegment: Any) -> Any:
        if self.cancel_after is not None:
            job, n = self.cancel_after
            calls = [0]

            def cancelling(stage: str, frac: float) -> None:
                calls[0] += 1
                if calls[0] > n:
                    job.cancel.set()
                progress(stage, frac)

            return engine.assemble(recursion, progress=cancelling, resegment=resegment)
        return engine.assemble(recursion, progress=progress, resegment=resegment)


def test_server_regenerates_from_a_warm_engine_identical_to_a_fresh_analysis(tmp_path: Path) -> None:
    pipe = EnginePipeline()
    server = Server(pipeline=pipe, cache=NetworkCache(tmp_path / "cache"), out=io.StringIO())
    photo = str(make_photo(tmp_path / "p.png"))
    res = server._run(Job("a", "analyze", {"id": "a", "type": "analyze", "photo": photo, "recursion": 1}))
    assert res["type"] == "result" and "prepare" in res["timings"]
    assert pipe.prepares == 1
    check = memo_check(pipe)
    assert text(res["scene"]) == check(photo, 1, {}, "live")
    n = 0
    for r, options in ((2, {}), (1, {}), (0, {}), (2, {}), (2, {"color_stat": "median"}), (1, {"color_stat": "median"}),
                       (3, {})):
        n += 1
        req = {"id": f"r{n}", "type": "regenerate", "ref": "a", "recursion": r, "options": options, "supersede": True}
        res = server._run(Job(req["id"], "regenerate", req))
        assert res["type"] == "result", res
        assert text(res["scene"]) == check(photo, r, options, "replay"), (r, options)
        assert ("prepare" in res["timings"]) == (n == 5)
    assert pipe.prepares == 2
    # a cancel in the middle of the children leaves the engine whole: the next answer is still exact
    for r in (4, 5):
        req = {"id": f"c{r}", "type": "regenerate", "ref": "a", "recursion": r}
        job = Job(req["id"], "regenerate", req)
        pipe.cancel_after = (job, 2)
        assert server._run(job)["type"] == "cancelled"
        pipe.cancel_after = None
        req = {"id": f"d{r}", "type": "regenerate", "ref": "a", "recursion": r}
        res = server._run(Job(req["id"], "regenerate", req))
        assert text(res["scene"]) == check(photo, r, {}, "replay")
    assert pipe.prepares == 2
    # scene.json on disk is the same scene
    assert json.loads(Path(res["files"]["scene_json"]).read_text()) == res["scene"]


def memo_check(pipe: EnginePipeline) -> Any:
    """A fresh analysis with the hook a fresh server would give: its own memo, fed like the server's."""
    memo = ResegmentMemo()

    def check(photo_path: str, recursion: int, options: dict[str, Any], kind: str) -> str:
        from inference_server import pipeline

        photo = pipe.load_photo(photo_path)
        seg, depth = pipe.infer(photo, "fake-seg", "fake-depth", None)
        opts = RealPipeline.make_options(pipe, recursion, options)  # type: ignore[arg-type]
        hook = memo.recording("k", network) if kind == "live" else memo.replaying("k")
        return text(pipeline.analyse(photo, seg, depth, opts, resegment=hook))

    return check


def test_engine_memory_is_bounded(tmp_path: Path) -> None:
    pipe = EnginePipeline()
    server = Server(pipeline=pipe, cache=NetworkCache(tmp_path / "cache"), out=io.StringIO(), engine_memory=2)
    photo = str(make_photo(tmp_path / "p.png"))
    assert server._run(Job("a", "analyze", {"id": "a", "type": "analyze", "photo": photo}))["type"] == "result"
    for i, h in enumerate((1.5, 1.7, 1.9)):
        req = {"id": i, "type": "regenerate", "ref": "a", "options": {"camera_height_m": h}}
        assert server._run(Job(i, "regenerate", req))["type"] == "result"
    assert len(server.engines) == 2 and pipe.prepares == 4
    assert all(e.nbytes > 100_000 for e in server.engines.entries())
    server.engines.max_bytes = 1  # over the bound: only the newest stays
    req = {"id": 9, "type": "regenerate", "ref": "a", "options": {"camera_height_m": 1.9}}
    assert server._run(Job(9, "regenerate", req))["type"] == "result"
    assert len(server.engines) == 1 and pipe.prepares == 4


# ------------------------------------------------------------------- new options: shared stages
CHANGES: list[dict[str, Any]] = [
    {}, {"color_stat": "median"}, {"color_stat": "trimmed"}, {"min_area_px": 400}, {"color_stat": "median", "min_area_px": 400},
    {"camera_height_m": 1.4}, {"max_pixels": 40_000}, {}, {"color_stat": "trimmed", "camera_height_m": 1.4},
]


def counting_stages(monkeypatch: Any) -> dict[str, int]:
    """Calls of the stages' costly functions, counted from now on."""
    from inference_server.analysis import depth_stage, engine, fusion, grouping, objects

    calls: dict[str, int] = {}

    def count(module: Any, fn: str, name: str) -> None:
        real = getattr(module, fn)
        calls[name] = 0

        def wrapper(*a: Any, **k: Any) -> Any:
            calls[name] += 1
            return real(*a, **k)

        monkeypatch.setattr(module, fn, wrapper)

    for module, fn, name in ((fusion, "split_with", "split"), (grouping, "instance_stats", "stats"),
                             (depth_stage, "calibrate_depth_map", "calib"), (objects, "merge_groups", "merge"),
                             (engine, "ground_data", "ground"), (engine, "noise_level", "noise"),
                             (engine, "class_components", "components"), (engine, "make_grid", "grid")):
        count(module, fn, name)
    return calls


@pytest.mark.parametrize("kind", ["metric", "relative", "disparity", None])
def test_engines_sharing_stages_equal_fresh_builds_for_option_changes(kind: str | None, monkeypatch: Any) -> None:
    """A chain of option changes, each engine built on the previous one's stages: every scene is the
    fresh build's byte for byte, and what is kept (2 keys per stage) is not computed again."""
    s = street()
    calls = counting_stages(monkeypatch)
    depth = None if kind is None else s.depth if kind != "disparity" else 1.0 / s.depth
    base = {} if kind is None else {"depth_kind": kind}
    stages: StageCache | None = None
    for i, change in enumerate(CHANGES):
        kw = {**base, **change}
        before = dict(calls)
        engine = SceneEngine(s.rgb, s.labels, s.names, depth, s.intr, SceneOptions(**kw), source=dict(SRC),
                             confidence=None, full_size=None, progress=None, resegment=None, stages=stages)
        engine.prepare()
        assert stages is None or engine.stages is stages
        stages = engine.stages
        made = {k: calls[k] - before[k] for k in calls}
        if i == 7:  # the first options again after a new grid: only the objects are made again, and
            # with relative depth the calibration (camera height 1.4 and the new grid were its last 2 keys)
            again = int(kind in ("relative", "disparity"))
            assert made == {**dict.fromkeys(calls, 0), "split": again, "stats": again, "calib": again,
                            "merge": 1}, made
        warm = {r: text(engine.assemble(r)) for r in (0, 2)}
        for r in (0, 2):
            assert warm[r] == text(fresh(s, s.names, r, depth=depth, **kw)), (kind, i, change, r)


@pytest.mark.parametrize("kind", ["metric", "relative", None])
def test_a_camera_height_change_reuses_what_the_height_does_not_touch(kind: str | None, monkeypatch: Any) -> None:
    """The panel's camera-height field (regenerate with `camera_height_m`, which the server sends with
    `camera_height_from_objects` off): metric depth keeps its instances, relative depth keeps the
    calibration's height-independent inputs and the class components; the scene is a fresh build's."""
    s = street()
    depth = None if kind is None else s.depth
    base = {} if kind is None else {"depth_kind": kind}
    first = prepared(s, s.names, depth=depth, **base)
    calls = counting_stages(monkeypatch)
    kw = {**base, "camera_height_m": 1.3, "camera_height_from_objects": False}
    engine = SceneEngine(s.rgb, s.labels, s.names, depth, s.intr, SceneOptions(**kw), source=dict(SRC),
                         confidence=None, full_size=None, progress=None, resegment=None, stages=first.stages)
    engine.prepare()
    relative = kind == "relative"
    assert calls == {"split": int(relative), "stats": int(relative), "calib": int(relative), "merge": 1,
                     "ground": 0, "noise": 0, "components": 0, "grid": 0}
    for r in (0, 2):
        assert text(engine.assemble(r)) == text(fresh(s, s.names, r, depth=depth, **kw)), r
    assert engine.stages is first.stages


@pytest.mark.parametrize("kind", ["metric", "relative", None])
def test_a_typed_fov_reuses_what_the_camera_does_not_touch(kind: str | None, monkeypatch: Any) -> None:
    """The panel's FOV field (another camera on the same network output): the checked maps, the grid's
    samples (under the new camera), the calibration's ground samples, the given depth's noise and the
    class components are kept; the depth and the instances are made for the new camera; the scene is a
    fresh build's."""
    from dataclasses import replace

    s = street()
    depth = None if kind is None else s.depth
    base = {} if kind is None else {"depth_kind": kind}
    first = prepared(s, s.names, depth=depth, **base)
    calls = counting_stages(monkeypatch)
    for k, factor in enumerate((0.8, 1.25, 0.8)):
        typed = replace(s.intr, focal_px=s.intr.focal_px * factor, source="user")
        before = dict(calls)
        engine = SceneEngine(s.rgb, s.labels, s.names, depth, typed, SceneOptions(**base), source=dict(SRC),
                             confidence=None, full_size=None, progress=None, resegment=None, stages=first.stages)
        engine.prepare()
        assert engine.stages is first.stages
        made = {name: calls[name] - before[name] for name in calls}
        new = int(k < 2)  # the third camera is the first one's again: kept (2 keys per stage)
        assert made == {"split": new, "stats": new, "calib": new * int(kind == "relative"), "merge": 1,
                        "ground": 0, "noise": 0, "components": 0, "grid": 0}, (k, made)
        assert engine.grid.intr0.focal_px == pytest.approx(typed.focal_px)
        want = build_scene(s.rgb, s.labels, s.names, depth, typed, SceneOptions(recursion=1, **base),
                           source=dict(SRC))
        assert text(engine.assemble(1)) == text(want), k


def test_stages_of_other_inputs_are_not_used() -> None:
    s = street()
    a = prepared(s, s.names)
    other = s.depth * 1.5  # another depth array: the shared stages are dropped, the scene is exact
    engine = SceneEngine(s.rgb, s.labels, s.names, other, s.intr, SceneOptions(color_stat="median"), source=dict(SRC),
                         confidence=None, full_size=None, progress=None, resegment=None, stages=a.stages)
    engine.prepare()
    assert text(engine.assemble(1)) == text(fresh(s, s.names, 1, depth=other, color_stat="median"))
    assert text(a.assemble(1)) == text(fresh(s, s.names, 1))  # the first engine is untouched


def test_server_regenerate_with_new_options_reuses_stages_and_equals_a_fresh_analysis(tmp_path: Path) -> None:
    pipe = EnginePipeline()
    server = Server(pipeline=pipe, cache=NetworkCache(tmp_path / "cache"), out=io.StringIO())
    photo = str(make_photo(tmp_path / "p.png"))
    res = server._run(Job("a", "analyze", {"id": "a", "type": "analyze", "photo": photo, "recursion": 1}))
    assert res["type"] == "result"
    check = memo_check(pipe)
    check(photo, 1, {}, "live")
    first = server.engines.entries()[0].engine
    for n, (r, options) in enumerate(((0, {"color_stat": "median"}), (2, {"min_area_px": 300}),
                                      (1, {"camera_height_m": 1.3, "color_stat": "trimmed"}), (2, {}))):
        req = {"id": f"o{n}", "type": "regenerate", "ref": "a", "recursion": r, "options": options, "supersede": True}
        res = server._run(Job(req["id"], "regenerate", req))
        assert res["type"] == "result", res
        assert text(res["scene"]) == check(photo, r, options, "replay"), (r, options)
    assert pipe.prepares == 5  # 3 engines kept: the first was dropped (its stages live on in the others)
    assert all(e.engine.stages is first.stages for e in server.engines.entries())
