"""Instances: connected components, depth-jump splits, fragments, one-pass statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from inference_server.analysis import instances as inst_mod
from inference_server.analysis import stats as stats_mod
from inference_server.analysis.instances import auto_min_area, class_components, depth_edges, split_instances
from inference_server.analysis.shapes import load_table
from inference_server.analysis.stats import gather, group_pixels, instance_stats

TABLE = load_table()


def specs(*names: str) -> list:
    return [TABLE.lookup(n) for n in names]


def test_connected_components_become_instances_and_tiny_fragments_drop() -> None:
    labels = np.zeros((60, 80), np.int32)  # 0 = sky
    labels[10:30, 5:25] = 1  # building A
    labels[10:30, 50:75] = 1  # building B, not touching A
    labels[50:52, 40:42] = 1  # 4 px speck
    inst, inst_label = split_instances(labels, specs("sky", "building"), None, min_area=20)
    buildings = [i for i, k in enumerate(inst_label) if k == 1]
    assert len(buildings) == 2
    assert {int((inst == i).sum()) for i in buildings} == {400, 500}
    assert inst[51, 41] == -1  # the speck is dropped
    assert (inst[labels == 0] >= 0).all() and len(set(inst[labels == 0].tolist())) == 1  # sky: one instance


def test_depth_jump_splits_two_buildings_side_by_side() -> None:
    labels = np.ones((60, 80), np.int32)
    labels[:10] = 0
    depth = np.full((60, 80), np.inf, np.float32)
    depth[10:, :40] = 10.0
    depth[10:, 40:] = 20.0
    inst, inst_label = split_instances(labels, specs("sky", "building"), depth, min_area=20)
    b = [i for i, k in enumerate(inst_label) if k == 1]
    assert len(b) == 2
    left, right = inst[30, 5], inst[30, 75]
    assert left != right and left in b and right in b
    # every building pixel (edge lines included) belongs to the instance on its side of the jump
    assert (inst[10:, :40] == left).all() and (inst[10:, 40:] == right).all()


def test_smooth_slanted_depth_is_not_cut_but_ground_never_splits() -> None:
    rows = np.arange(60, dtype=np.float32)[:, None]
    depth = np.broadcast_to(3.0 * 1.08 ** rows, (60, 80)).astype(np.float32)  # +8 %/row: smooth ramp
    assert not depth_edges(depth).any()
    labels = np.ones((60, 80), np.int32)
    depth2 = depth.copy()
    depth2[:, 40:] *= 2
    inst, inst_label = split_instances(labels, specs("sky", "road"), depth2, min_area=20)
    assert len(inst_label) == 1 and (inst == 0).all()


def test_auto_min_area_is_a_fraction_of_the_image() -> None:
    assert auto_min_area(3000, 4000) == 6000
    assert auto_min_area(10, 10) == 16


def test_statistics_are_one_pass_for_thousands_of_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    """Vectorisation guard: 2000 instances; sorts, labellings and touched elements are counted."""
    h, w = 200, 500
    labels = np.zeros((h, w), np.int32)
    yy, xx = np.mgrid[0:h, 0:w]
    blob = ((yy % 5) < 4) & ((xx % 10) < 8)  # 40 x 50 = 2000 separate 4x8 blobs
    labels[blob] = 1
    depth = np.full((h, w), 5.0, np.float32)
    calls = {"argsort": 0, "label": 0, "percentile_elems": 0}
    real_argsort, real_label, real_pct = np.argsort, ndimage.label, np.percentile

    def argsort(a, *args, **kw):  # type: ignore[no-untyped-def]
        calls["argsort"] += 1
        return real_argsort(a, *args, **kw)

    def label(a, *args, **kw):  # type: ignore[no-untyped-def]
        calls["label"] += 1
        return real_label(a, *args, **kw)

    def percentile(a, *args, **kw):  # type: ignore[no-untyped-def]
        calls["percentile_elems"] += np.size(a)
        return real_pct(a, *args, **kw)

    monkeypatch.setattr(stats_mod.np, "argsort", argsort)
    monkeypatch.setattr(inst_mod.ndimage, "label", label)
    monkeypatch.setattr(stats_mod.np, "percentile", percentile)
    inst, inst_label = split_instances(labels, specs("sky", "car"), depth, min_area=16)
    assert (inst_label == 1).sum() == 2000
    assert calls["label"] <= 4  # per class, not per instance
    groups = group_pixels(inst, len(inst_label))
    px = gather(groups, depth)
    st = instance_stats(groups, px, np.zeros((h, w, 3), np.uint8), "median")
    assert calls["argsort"] == 1
    # order statistics only ever see each instance's own pixels: O(pixels), not O(instances x pixels)
    assert calls["percentile_elems"] <= h * w
    assert (st.count[inst_label == 1] == 32).all()
    car = np.flatnonzero(inst_label == 1)
    assert (st.bbox[car, 2] - st.bbox[car, 0] == 8).all() and (st.bbox[car, 3] - st.bbox[car, 1] == 4).all()
    assert np.allclose(st.depth[car, 2], 5.0) and (st.depth[car, 6] == 32).all()


def test_bbox_colour_and_confidence_per_instance() -> None:
    labels = np.zeros((20, 30), np.int32)
    labels[5:9, 10:20] = 1
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[5:9, 10:20] = (255, 255, 255)
    conf = np.full((20, 30), 0.5, np.float32)
    conf[5:9, 10:20] = 0.9
    inst, il = split_instances(labels, specs("wall", "car"), None, min_area=4)
    g = group_pixels(inst, len(il))
    st = instance_stats(g, gather(g, None), rgb, "mean", conf)
    car = int(np.flatnonzero(il == 1)[0])
    assert st.bbox[car].tolist() == [10, 5, 20, 9]
    assert st.color_linear[car] == pytest.approx([1, 1, 1])
    assert st.confidence[car] == pytest.approx(0.9)
    assert st.depth[car, 6] == 0 and np.isnan(st.depth[car, 2])


def test_class_components_kept_across_depths_give_the_same_instances() -> None:
    """split_instances(components=...) kept across depths (the panel's camera height with relative
    depth: the calibrated depth changes, the labels do not) equals a fresh split."""
    from test_analysis_synth import street

    s = street()
    table = load_table(None)
    sp = [table.lookup(n) for n in s.names]
    parts = class_components(s.labels, sp)
    for scale in (1.0, 2.0, 0.5):
        depth = (np.where(np.isfinite(s.depth), s.depth, np.nan) ** scale).astype(np.float32)
        inst, lab = split_instances(s.labels, sp, depth, 50, components=parts)
        ref, ref_lab = split_instances(s.labels, sp, depth, 50)
        assert np.array_equal(inst, ref) and np.array_equal(lab, ref_lab), scale
    assert set(parts.comps) == {k for k, spec in enumerate(sp) if not (spec.flat or spec.role == "sky")}
    assert len(np.unique(inst)) > 3
