"""Instances through the server: chosen per request, cached with the network output (a regenerate and a
later server never run the detector), their problems an error or a warning as the request asked."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_server_support import FakePipeline, make_photo

from inference_server import pipeline
from inference_server.cache import NetworkCache
from inference_server.errors import UserError
from inference_server.inference import registry
from inference_server.inference.types import Instances
from inference_server.server import Job, Server


def _instances(model: str = "fake-inst") -> Instances:
    rng = np.random.default_rng(3)
    return Instances(
        boxes=np.array([[2, 3, 30, 40], [10, 5, 60, 20]], np.float32), class_ids=np.array([2, 0], np.int32),
        scores=np.array([0.9, 0.55], np.float32), class_names=["person", "bicycle", "car"], model=model,
        width=64, height=48, mask_logits=[rng.normal(size=(5, 4)).astype(np.float32),
                                          rng.normal(size=(3, 7)).astype(np.float32)],
        mask_origin=np.array([[0, 0], [2, 1]], np.int32), mask_stride=8.0, mask_offset=(0.0, 0.0),
        box_slack=1.5)


class InstancePipeline(FakePipeline):
    """The fake pipeline with an instance "network" that counts its runs; the scene echoes what it got."""

    def __init__(self) -> None:
        self.detections = 0

    def resolve_instances(self, requested: str | None) -> str | None:
        return None if requested == "none" else (requested or "fake-inst")

    def detect_instances(self, photo: Any, model: str, *, explicit: bool) -> tuple[Any, str | None]:
        self.detections += 1
        if model == "broken":
            if explicit:
                raise UserError("instance model broken: its file is truncated")
            return None, "instances: broken; the scene was built without instances"
        return _instances(model), None

    def analyse(self, photo: Any, seg: Any, depth: Any, options: Any, *, focal_px: Any, fov_deg: Any,
                progress: Any, resegment: Any, instances: Any = None) -> dict[str, Any]:
        scene = super().analyse(photo, seg, depth, options, focal_px=focal_px, fov_deg=fov_deg,
                                progress=progress, resegment=resegment)
        if instances is not None:
            masks = [int(instances.mask(i)[2].sum()) for i in range(len(instances))]
            scene["instances"] = {"model": instances.model, "scores": instances.scores.tolist(),
                                  "masks": masks}
        return scene


def _analyze(server: Server, req_id: str, **fields: Any) -> dict[str, Any]:
    req = {"id": req_id, "type": "analyze", **fields}
    return server._run(Job(req_id, "analyze", req))


def test_instances_are_cached_with_the_network_output_and_survive_a_restart(tmp_path: Path) -> None:
    photo = str(make_photo(tmp_path / "p.png"))
    pipe = InstancePipeline()
    server = Server(pipeline=pipe, cache=NetworkCache(tmp_path / "cache"), out=io.StringIO())
    first = _analyze(server, "a", photo=photo)
    assert first["type"] == "result" and pipe.detections == 1
    got = first["scene"]["instances"]
    assert got["model"] == "fake-inst" and got["scores"] == pytest.approx([0.9, 0.55])
    assert min(got["masks"]) > 0
    again = server._run(Job("r", "regenerate", {"id": "r", "type": "regenerate", "ref": "a", "recursion": 1}))
    assert again["scene"]["instances"] == got and pipe.detections == 1  # a regenerate never detects
    none = _analyze(server, "n", photo=photo, instances_model="none")
    assert "instances" not in none["scene"] and pipe.detections == 1  # another cache entry, no detector
    later_pipe = InstancePipeline()  # a new server on the same disk cache
    later = Server(pipeline=later_pipe, cache=NetworkCache(tmp_path / "cache"), out=io.StringIO())
    res = later._run(Job("r2", "regenerate", {"id": "r2", "type": "regenerate", "photo": photo}))
    assert res["type"] == "result" and res["scene"]["instances"] == got and later_pipe.detections == 0


def test_an_explicit_broken_model_is_an_error_the_default_one_a_warning(tmp_path: Path) -> None:
    photo = str(make_photo(tmp_path / "p.png"))
    out = io.StringIO()
    server = Server(pipeline=InstancePipeline(), cache=NetworkCache(tmp_path / "cache"), out=out)
    err = _analyze(server, "e", photo=photo, instances_model="broken")
    assert err["type"] == "error" and err["code"] == "user_error" and "broken" in err["message"]
    assert "\n" not in err["message"]

    class DefaultBroken(InstancePipeline):
        def resolve_instances(self, requested: str | None) -> str | None:
            return "broken" if requested is None else super().resolve_instances(requested)

    server = Server(pipeline=DefaultBroken(), cache=NetworkCache(tmp_path / "cache2"), out=io.StringIO())
    res = _analyze(server, "w", photo=photo)
    assert res["type"] == "result" and "instances" not in res["scene"]
    assert res["scene"]["warnings"] == ["instances: broken; the scene was built without instances"]
    cached = server._run(Job("r", "regenerate", {"id": "r", "type": "regenerate", "ref": "w"}))
    assert cached["scene"]["warnings"] == res["scene"]["warnings"]  # the warning is cached with it


def test_a_non_string_instances_model_is_a_bad_request(tmp_path: Path) -> None:
    from inference_server.server import RequestError, _check_job_fields

    with pytest.raises(RequestError, match="'instances_model' must be a string"):
        _check_job_fields({"id": "b", "type": "analyze", "photo": str(tmp_path / "p.png"),
                           "instances_model": 3})


def test_cache_round_trip_is_exact(tmp_path: Path) -> None:
    from inference_server.inference.types import DepthMap, Segmentation

    inst = _instances()
    seg = Segmentation(labels=np.zeros((48, 64), np.int32), names=["a"], model="s")
    depth = DepthMap(depth=np.ones((48, 64), np.float32), kind="metric", model="d")
    NetworkCache(tmp_path).put("k" * 64, seg, depth, {"x": 1}, inst)
    back = NetworkCache(tmp_path).get("k" * 64)
    assert back is not None and back.instances is not None
    b = back.instances
    assert (b.model, b.width, b.height, b.class_names, b.mask_stride, b.box_slack) == (
        inst.model, inst.width, inst.height, inst.class_names, inst.mask_stride, inst.box_slack)
    for name in ("boxes", "class_ids", "scores", "mask_origin"):
        assert np.array_equal(getattr(b, name), getattr(inst, name))
    for i in range(len(inst)):
        assert np.array_equal(b.mask(i)[2], inst.mask(i)[2])


def test_pipeline_instance_choice(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    mid = registry.DEFAULT_INSTANCES
    assert pipeline.resolve_instances(None, str(models)) is None  # optional: absent means none
    assert pipeline.resolve_instances("none", str(models)) is None
    assert pipeline.resolve_instances(mid, str(models)) == mid
    from inference_server.imageio import load_photo

    photo = load_photo(str(make_photo(tmp_path / "p.png")))
    folder = models / mid
    folder.mkdir()
    (folder / registry.get(mid).main_file.name).write_bytes(b"TFL3" + os.urandom(100))  # truncated, foreign
    assert pipeline.resolve_instances(None, str(models)) == mid
    inst, note = pipeline.detect_instances(photo, None, str(models))
    assert inst is None and note is not None and mid in note
    assert "without instances" in note and "\n" not in note
    with pytest.raises(UserError, match=mid):
        pipeline.detect_instances(photo, mid, str(models))
