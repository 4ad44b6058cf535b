"""Instance masks fused with semantic labels (analysis/fusion.py) and through the scene engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_analysis_synth import GTBox, render

from inference_server.analysis import fusion
from inference_server.analysis.engine import SceneEngine, SceneOptions
from inference_server.analysis.shapes import load_table
from inference_server.inference import labelsets
from inference_server.inference.types import Instances
from inference_server.scene import validate

COCO = labelsets.names("coco80")
SRC = {"image": "x.png", "width": 320, "height": 240, "sha256": "0" * 64}


def make_instances(masks: list[np.ndarray], classes: list[str], scores: list[float], model: str = "test-inst"
                   ) -> Instances:
    """Instances whose logits are the masks themselves (one knot per pixel), boxes = the masks' extents."""
    h, w = masks[0].shape if masks else (1, 1)
    boxes, logits, origin = [], [], []
    for m in masks:
        ys, xs = np.nonzero(m)
        x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
        boxes.append([x0, y0, x1, y1])
        logits.append(np.where(m[y0:y1, x0:x1], 1.0, -1.0).astype(np.float32))
        origin.append([x0, y0])
    return Instances(boxes=np.array(boxes, np.float32).reshape(-1, 4),
                     class_ids=np.array([COCO.index(c) for c in classes], np.int32),
                     scores=np.array(scores, np.float32), class_names=COCO, model=model, width=w, height=h,
                     mask_logits=logits, mask_origin=np.array(origin, np.int32).reshape(-1, 2), mask_stride=1.0,
                     mask_offset=(-0.5, -0.5))


def two_cars() -> tuple:  # type: ignore[type-arg]
    """Two cars side by side at the same depth (one semantic component), a building behind."""
    names = ["sky", "road", "car", "building"]
    boxes = [GTBox(2, (-1.0, -12.0), 0.0, (1.8, 1.5, 4.5), (0.8, 0.1, 0.1)),
             GTBox(2, (0.75, -12.0), 0.0, (1.8, 1.5, 4.5), (0.1, 0.1, 0.8)),
             GTBox(3, (0.0, -30.0), 0.0, (20.0, 9.0, 7.0), (0.6, 0.5, 0.4))]
    s = render(boxes, names, pitch=-4.0, roll=0.0)
    return s, [s.instance == 0, s.instance == 1]


def scene_of(s, instances, depth=True, **opts) -> dict:  # type: ignore[no-untyped-def]
    eng = SceneEngine(s.rgb, s.labels, s.names, s.depth if depth else None, s.intr, SceneOptions(**opts), source=dict(SRC),
                      confidence=None, full_size=None, progress=None, resegment=None, instances=instances)
    scene = eng.run()
    validate(scene)
    return scene


def test_touching_cars_become_two_objects() -> None:
    s, masks = two_cars()
    assert (s.labels == 2).sum() == masks[0].sum() + masks[1].sum()
    # without depth edges (a network's depth is smooth) the semantic split sees one component
    assert [o["label"] for o in scene_of(s, None, depth=False)["objects"]].count("car") == 1
    inst = make_instances(masks, ["car", "car"], [0.8, 0.7])
    assert [o["label"] for o in scene_of(s, inst, depth=False)["objects"]].count("car") == 2
    plain = scene_of(s, None)
    inst = make_instances(masks, ["car", "car"], [0.8, 0.7])
    fused = scene_of(s, inst)
    cars = [o for o in fused["objects"] if o["label"] == "car"]
    assert len(cars) == 2
    assert sorted(o["instance"]["score"] for o in cars) == [0.7, 0.8]
    assert all(o["instance"] == {"model": "test-inst", "score": o["instance"]["score"], "class": "car"} for o in cars)
    assert sum(o["pixels"] for o in cars) == int(masks[0].sum() + masks[1].sum())
    left = min(cars, key=lambda o: o["translate"][0])
    assert left["translate"][0] == pytest.approx(-1.0, abs=0.4) and left["size"][0] == pytest.approx(1.8, abs=0.5)
    # classes without instances are split as before: the same building, road and sky
    others = lambda sc: sorted((o["label"], o["pixels"]) for o in sc["objects"] if o["label"] != "car")  # noqa: E731
    assert others(fused) == others(plain)
    assert all("instance" not in o for o in fused["objects"] if o["label"] != "car")
    # recursion still works on instance objects
    deep = scene_of(s, inst, recursion=1)
    assert len([o for o in deep["objects"] if o["label"] == "car"]) == 2


def test_mask_spill_stays_with_the_semantic_class_and_zero_instances_change_nothing() -> None:
    s, masks = two_cars()
    grown = masks[0].copy()
    grown[-30:, :] |= True  # a mask reaching down over the road
    inst = make_instances([grown], ["car"], [0.8])
    table = load_table()
    specs = [table.lookup(n) for n in s.names]
    f = fusion.fuse(s.labels, s.names, specs, s.depth, inst, min_area=50)
    assert (f.inst[masks[0]] == 0).all() and (f.inst[grown & (s.labels != 2)] == -1).all()  # road not taken
    assert (f.rest[f.inst == 0] == -1).all() and (f.rest[f.inst < 0] == s.labels[f.inst < 0]).all()
    empty = fusion.fuse(s.labels, s.names, specs, s.depth, make_instances([], [], []), min_area=50)
    assert len(empty.label) == 0 and (empty.rest == s.labels).all()
    assert scene_of(s, make_instances([], [], []))["objects"] == scene_of(s, None)["objects"]


def test_overlap_order_score_then_depth() -> None:
    labels = np.full((60, 80), 1, np.int32)  # "car" everywhere
    names, specs = ["road", "car"], [load_table().lookup(n) for n in ("road", "car")]
    a = np.zeros((60, 80), bool)
    a[10:40, 10:50] = True
    b = np.zeros((60, 80), bool)
    b[20:50, 30:70] = True
    depth = np.where(b, 5.0, 10.0).astype(np.float32)  # b is nearer
    overlap = a & b
    same = fusion.fuse(labels, names, specs, depth, make_instances([a, b], ["car", "car"], [0.52, 0.5]))
    assert (same.inst[overlap] == np.flatnonzero(same.source == 1)[0]).all()  # same score bin: nearer b wins
    apart = fusion.fuse(labels, names, specs, depth, make_instances([a, b], ["car", "car"], [0.9, 0.5]))
    assert (apart.inst[overlap] == np.flatnonzero(apart.source == 0)[0]).all()  # clearly better score wins


def test_small_confident_instance_kept_weak_one_dropped_and_missing_class_added() -> None:
    h, w = 120, 160
    names = ["other", "road", "person", "building"]
    labels = np.full((h, w), 3, np.int32)
    labels[80:] = 1
    far = np.zeros((h, w), bool)
    far[60:72, 20:24] = True  # 48 px, under min_area 100
    labels[far] = 2
    weak = np.zeros((h, w), bool)
    weak[60:72, 100:104] = True
    labels[weak] = 2
    hyd = np.zeros((h, w), bool)
    hyd[70:80, 60:66] = True  # a fire hydrant: the label set has no such class, its pixels say "building"
    inst = make_instances([far, weak, hyd], ["person", "person", "fire hydrant"], [0.5, 0.3, 0.6])
    full = fusion.scene_names(names, inst)
    assert full == [*names, "fire hydrant"]
    specs = [load_table().lookup(n) for n in full]
    f = fusion.fuse(labels, full, specs, None, inst, min_area=100)
    got = {full[int(k)]: int((f.inst == q).sum()) for q, k in enumerate(f.label)}
    assert got == {"person": 48, "fire hydrant": 60}
    assert (f.rest[weak] == 2).all()  # the weak one's pixels stay with the semantic split


def test_van_refines_a_coco_car_and_a_confident_instance_overrides_a_missed_object() -> None:
    names = ["road", "car", "van", "building"]
    specs = [load_table().lookup(n) for n in names]
    labels = np.full((50, 50), 3, np.int32)
    m = np.zeros((50, 50), bool)
    m[10:30, 10:30] = True
    labels[m] = 2
    f = fusion.fuse(labels, names, specs, None, make_instances([m], ["car"], [0.7]))
    assert [names[int(k)] for k in f.label] == ["van"]
    labels2 = np.full((50, 50), 3, np.int32)  # a bus the semantic model calls building
    labels2[40:] = 0
    m2 = np.zeros((50, 50), bool)
    m2[5:45, 5:45] = True
    f2 = fusion.fuse(labels2, names, specs, None, make_instances([m2], ["bus"], [0.7]), min_area=10)
    full = fusion.scene_names(names, make_instances([m2], ["bus"], [0.7]))
    assert full[-1] == "bus" and int((f2.inst == 0).sum()) == 35 * 40  # the road rows are not taken
    weak = fusion.fuse(labels2, names, specs, None, make_instances([m2], ["bus"], [0.3]), min_area=10)
    assert len(weak.label) == 0


def test_real_kitti_objects(samples_dir: Path, models_dir: Path) -> None:
    from inference_server import pipeline
    from inference_server.imageio import load_photo
    from inference_server.inference import api

    photo = load_photo(samples_dir / "kitti_000001_rgb.png")
    seg, depth = pipeline.infer(photo, "deeplabv3-mnv2-ade20k150", "pydnet-mobile-v1", models_dir=str(models_dir))
    inst = api.detect_instances(photo.rgb, "yolov8n-seg-coco-int8", models_dir)
    scene = pipeline.analyse(photo, seg, depth, SceneOptions(), focal_px=721.5377, instances=inst)
    validate(scene)
    assert scene["source"]["models"]["instances"] == "yolov8n-seg-coco-int8"
    cars = [o for o in scene["objects"] if o.get("instance") and o["label"] == "car"]
    gt = [387.63, 181.54, 423.81, 203.12]
    best = max(cars, key=lambda o: _iou(o["bbox_px"], gt))
    assert _iou(best["bbox_px"], gt) >= 0.5 and best["instance"]["score"] > 0.45


def _iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_fragments_join_the_instance_they_touch_and_a_missed_car_stays() -> None:
    """A car's pixels its coarse mask missed (a fragment beyond the margin, touching it) become part of
    it; a separate car no detection covers stays an object of its own (the semantic split)."""
    h, w = 60, 120
    names = ["road", "car"]
    lab = np.zeros((h, w), np.int32)
    lab[20:40, 10:50] = 1  # a detected car ...
    lab[40:44, 10:50] = 1  # ... whose bottom strip the mask misses
    lab[20:40, 80:110] = 1  # a car the detector missed
    mask = np.zeros((h, w), bool)
    mask[20:40, 10:50] = True
    inst = make_instances([mask], ["car"], [0.7])
    table = load_table()
    specs = [table.lookup(n) for n in names]
    fused = fusion.fuse(lab, names, specs, None, inst, min_area=10)
    assert (fused.inst == 0).sum() == 40 * 20 + 40 * 4  # the strip joined
    assert not (fused.inst[20:40, 80:110] >= 0).any() and (fused.rest[20:40, 80:110] == 1).all()
