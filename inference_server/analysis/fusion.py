"""Instance masks fused with the semantic labels: one object per detected car, person, chair...

The semantic model labels every pixel but cannot tell two touching cars apart; an instance model
(COCO 80 thing classes) gives one mask per object but knows no road, wall or sky. Rules (pure
functions of the analysis-grid arrays; docs/SHAPES.md, "Instances"):

1. ``COCO_TO_SCENE`` (data) maps each COCO class to the scene labels it may be called (first one the
   label set has wins; the COCO name itself when it has none), the semantic labels that refine it
   (a COCO "car" over ADE20K "van" pixels is a van; below ``CONFIDENT_SCORE`` any compatible majority
   label refines it: a weak "truck" over "car" pixels is a car) and the semantic labels whose pixels it may
   take.
2. An instance's pixels are its mask where the semantic label is compatible, or unlabelled (no class,
   or a skipped class such as ADE20K "other"). A COCO thing the label set lacks entirely takes its
   mask wherever the semantic label is not sky or a ground plane, and becomes an object with its COCO
   label (``scene_names`` adds those names). The same holds for a confident instance (``CONFIDENT_SCORE``)
   under which fewer than ``AGREE`` of the mask's pixels are compatible: the semantic model missed it
   (the London bus comes out "building" and "base").
3. Overlaps: instances claim pixels in priority order, score first (in ``SCORE_BIN`` steps: the int8
   file's scores are coarse) then nearer median depth first (an occluder's pixels are its own).
4. Mask edges are coarse (int8: box edges snap to ~6 network pixels): leftover pixels of a compatible
   class within ``MARGIN_FRACTION`` of the box size (at least the box slack) of an instance's mask join it.
5. A connected fragment of free pixels of one class that touches a kept instance which may take
   that class, and is smaller than it, joins it (the rest of a detected car its coarse mask missed).
6. An instance is kept when it has ``min_area`` pixels, or ``min_pixels`` and a score of at least
   ``CONFIDENT_SCORE`` (a pedestrian at 40 m is below the semantic minimum area); otherwise its pixels go
   back to the semantic labels.
7. Every pixel no instance keeps goes through today's split (instances.split_instances: connected
   components + depth edges), so classes without instances are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from .instances import ClassComponents, split_instances
from .shapes import ShapeSpec

MIN_SCORE = 0.25  # instances below this score are ignored (the runner's own threshold)
CONFIDENT_SCORE = 0.4  # kept below the semantic minimum area from this score
SCORE_BIN = 0.15  # scores within one bin are ordered by depth (nearer first)
MIN_PIXELS_FRACTION = 2e-5  # smallest instance kept: this fraction of the grid ...
MIN_PIXELS_FLOOR = 6  # ... and at least this many grid pixels
AGREE = 0.3  # a confident instance whose compatible pixels are under this share of its mask overrides
MARGIN_FRACTION = 0.15  # leftover compatible pixels this far (x the box's smaller side) from the mask join it

_VEHICLES = ("car", "van", "truck", "bus", "train", "minibike", "motorcycle", "motorbike", "trailer",
             "caravan", "ambulance", "taxi")

#: COCO class -> (scene labels in preference order, semantic labels that refine it, compatible labels).
#: A COCO class missing here keeps its own name and takes only unlabelled pixels when the label set
#: knows that name, else rule 2's "lacking" case.
COCO_TO_SCENE: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "person": (("person",), (), ("person", "apparel", "rider")),
    "bicycle": (("bicycle",), (), ("bicycle", "minibike", "motorcycle", "rider")),
    "car": (("car",), ("van",), _VEHICLES),
    "motorcycle": (("minibike", "motorcycle", "motorbike"), (), ("minibike", "motorcycle", "motorbike",
                                                                 "bicycle", "rider")),
    "airplane": (("airplane",), (), ("airplane",)),
    "bus": (("bus",), (), _VEHICLES),
    "train": (("train",), ("truck", "bus"), _VEHICLES),
    "truck": (("truck",), ("van",), _VEHICLES),
    "boat": (("boat",), ("ship",), ("boat", "ship")),
    "traffic light": (("traffic light",), (), ("traffic light",)),
    "stop sign": (("stop sign",), (), ("signboard", "stop sign")),
    "bench": (("bench",), (), ("bench", "seat")),
    **{a: ((a, "animal"), (), (a, "animal")) for a in ("bird", "cat", "dog", "horse", "sheep", "cow",
                                                       "elephant", "bear", "zebra", "giraffe")},
    "backpack": (("bag", "backpack"), (), ("bag", "backpack")),
    "handbag": (("bag", "handbag"), (), ("bag", "handbag")),
    "suitcase": (("bag", "suitcase"), (), ("bag", "suitcase")),
    "umbrella": (("umbrella",), (), ("umbrella",)),
    "bottle": (("bottle",), (), ("bottle",)),
    "wine glass": (("glass", "wine glass"), (), ("glass", "wine glass")),
    "cup": (("cup", "glass"), (), ("cup", "glass")),
    "bowl": (("bowl", "plate"), (), ("bowl", "plate")),
    "chair": (("chair",), ("armchair", "swivel chair", "stool", "seat"),
              ("chair", "armchair", "swivel chair", "stool", "seat", "bench", "ottoman")),
    "couch": (("sofa", "couch"), (), ("sofa", "couch", "armchair", "cushion", "pillow")),
    "potted plant": (("plant", "potted plant"), (), ("plant", "potted plant", "flower", "pot", "vase")),
    "bed": (("bed",), (), ("bed", "pillow", "blanket", "cushion")),
    "dining table": (("table", "dining table"), ("coffee table", "desk", "kitchen island"),
                     ("table", "dining table", "desk", "coffee table", "kitchen island")),
    "toilet": (("toilet",), (), ("toilet",)),
    "tv": (("television", "tv"), ("monitor", "crt screen"), ("television", "tv", "monitor", "crt screen",
                                                             "computer", "screen")),
    "laptop": (("laptop", "computer"), (), ("laptop", "computer", "monitor")),
    "microwave": (("microwave",), (), ("microwave",)),
    "oven": (("oven", "stove"), ("stove",), ("oven", "stove")),
    "sink": (("sink",), (), ("sink",)),
    "refrigerator": (("refrigerator",), (), ("refrigerator",)),
    "book": (("book",), (), ("book",)),
    "clock": (("clock",), (), ("clock",)),
    "vase": (("vase",), (), ("vase", "pot")),
    "teddy bear": (("teddy bear", "plaything"), (), ("teddy bear", "plaything")),
}


def entry(coco: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The mapping of one COCO class (its own name only, for a class the table does not list)."""
    return COCO_TO_SCENE.get(coco, ((coco,), (), (coco,)))


def _knows(names: Sequence[str], coco: str) -> bool:
    labels, _, compat = entry(coco)
    have = set(names)
    return any(n in have for n in (*labels, *compat))


def scene_label(names: Sequence[str], coco: str) -> str:
    """The scene label of a COCO class for a label set: the first of its labels the set has, else the
    COCO name (added to the set by ``scene_names``)."""
    labels = entry(coco)[0]
    return next((n for n in labels if n in names), coco)


def scene_names(names: Sequence[str], instances: Any) -> list[str]:
    """The label set with the scene labels of the instances' classes it lacks appended (once each)."""
    out = [str(n) for n in names]
    if instances is None:
        return out
    for coco in dict.fromkeys(instances.names):
        lab = scene_label(out, coco)
        if lab not in out:
            out.append(lab)
    return out


@dataclass
class Fused:
    """What the instances claim on the grid."""

    inst: np.ndarray  # (h, w) int32: index of the kept instance object, -1 elsewhere
    label: np.ndarray  # (m,) int64 scene label id of each kept instance object
    source: np.ndarray  # (m,) int64 index into the Instances
    score: np.ndarray  # (m,) float32
    rest: np.ndarray  # (h, w) int32 labels with the kept instances' pixels set to -1
    classes: list[str] = field(default_factory=list)  # COCO class of each kept instance object
    model: str = ""  # the instance model


def _lut(names: Sequence[str], specs: Sequence[ShapeSpec], allowed: set[str], lacking: bool) -> np.ndarray:
    """Per label id (plus a last entry for -1 = unlabelled): may an instance take such a pixel?"""
    ok = np.ones(len(names) + 1, bool)
    for k, n in enumerate(names):
        sp = specs[k] if k < len(specs) else None
        if sp is not None and sp.skip:
            continue
        if lacking:
            ok[k] = sp is None or not (sp.flat or sp.role == "sky")
        else:
            ok[k] = n in allowed
    return ok


def fuse(labels: np.ndarray, names: Sequence[str], specs: Sequence[ShapeSpec], depth: np.ndarray | None,
         instances: Any, *, rows: np.ndarray | None = None, cols: np.ndarray | None = None,
         image_size: tuple[int, int] | None = None, min_area: int = 0, min_score: float = MIN_SCORE,
         confident: float = CONFIDENT_SCORE, min_pixels: int | None = None) -> Fused:
    """Instance objects on the analysis grid (see the module's rules).

    ``labels`` (h, w) grid labels (-1 = none), ``names`` the label set INCLUDING ``scene_names``'
    additions, ``specs`` one per name; ``rows``/``cols`` the analysed-image rows/columns each grid row and
    column samples (None: the grid is the image); ``image_size`` (w, h) of that image (default: the
    instances' own size); ``min_area`` the semantic minimum area in grid pixels.
    """
    h, w = labels.shape
    lab = np.asarray(labels, dtype=np.int32)
    inst = np.full((h, w), -1, np.int32)
    empty = Fused(inst, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), lab)
    n = 0 if instances is None else len(instances)
    if n == 0 or lab.size == 0:
        return empty
    iw, ih = image_size if image_size is not None else (instances.width, instances.height)
    r = np.arange(h, dtype=np.float64) if rows is None else np.asarray(rows, dtype=np.float64)
    c = np.arange(w, dtype=np.float64) if cols is None else np.asarray(cols, dtype=np.float64)
    # grid -> instance image pixel indices (pixel centres map onto pixel centres)
    r = (r + 0.5) * (instances.height / ih) - 0.5
    c = (c + 0.5) * (instances.width / iw) - 0.5
    floor = (max(MIN_PIXELS_FLOOR, int(round(MIN_PIXELS_FRACTION * h * w))) if min_pixels is None
             else min_pixels)
    name_list = [str(x) for x in names]
    index = {x: k for k, x in enumerate(name_list)}
    luts: dict[str, np.ndarray] = {}
    cand: list[tuple[int, slice, slice, np.ndarray, int, float]] = []  # (i, rows, cols, mask, label, depth)
    coco_names = instances.names
    for i in range(n):  # per detection: a crop of the grid, never a pixel loop
        score = float(instances.scores[i])
        if not np.isfinite(score) or score < min_score:
            continue
        coco = coco_names[i]
        if coco not in luts:
            labels_, _, compat = entry(coco)
            luts[coco] = _lut(name_list, specs, {*labels_, *compat}, not _knows(name_list[:len(specs)], coco))
        rs, cs, m = instances.mask(i, r, c)
        total = int(m.sum())
        if total == 0:
            continue
        under = lab[rs, cs]
        mc = m & luts[coco][under]
        if score >= confident and mc.sum() < AGREE * total:  # rule 2b: the semantic model missed it
            if "" not in luts:
                luts[""] = _lut(name_list, specs, set(), True)
            mc = m & luts[""][under]
        m = mc
        if not m.any():
            continue
        d = np.nan
        if depth is not None:
            dv = depth[rs, cs][m]
            dv = dv[np.isfinite(dv)]
            d = float(np.median(dv)) if dv.size else np.nan
        k = index.get(scene_label(name_list, coco), -1)
        cand.append((i, rs, cs, m, k, d))
    if not cand:
        return empty
    scores = np.array([float(instances.scores[x[0]]) for x in cand])
    depths = np.array([x[5] for x in cand])
    order = np.lexsort((np.nan_to_num(depths, nan=np.inf), -np.floor(scores / SCORE_BIN)))
    taken = np.full((h, w), -1, np.int32)
    for j in order:  # each claims what is still free
        _, rs, cs, m, _, _ = cand[j]
        view = taken[rs, cs]
        np.copyto(view, np.int32(j), where=m & (view < 0))
    counts = np.bincount(taken.ravel() + 1, minlength=len(cand) + 1)[1:]
    keep = (counts >= max(min_area, 1)) | ((counts >= floor) & (scores >= confident))
    if not keep.any():
        return empty
    taken = np.where(keep[np.maximum(taken, 0)] & (taken >= 0), taken, -1).astype(np.int32)
    _absorb(taken, lab, cand, keep, luts, coco_names, instances, c, r)
    _join_fragments(taken, lab, cand, luts, coco_names)
    # refine the label: a COCO "car" over mostly "van" pixels is a van
    kept = np.flatnonzero(keep)
    remap = np.full(len(cand), -1, np.int32)
    remap[kept] = np.arange(len(kept))
    out = np.where(taken >= 0, remap[np.maximum(taken, 0)], -1).astype(np.int32)
    lab_ids = np.empty(len(kept), np.int64)
    for q, j in enumerate(kept):
        i, _, _, _, k, _ = cand[j]
        _, refine, compat = entry(coco_names[i])
        if float(instances.scores[i]) < confident:  # a weak detection: the semantic class decides
            refine = (*refine, *compat)
        k_final = k
        if refine:
            under = lab[out == q]
            under = under[under >= 0]
            if under.size:
                top = int(np.bincount(under).argmax())
                if name_list[top] in refine:
                    k_final = top
        lab_ids[q] = k_final
    rest = np.where(out >= 0, np.int32(-1), lab).astype(np.int32)
    src = np.array([cand[j][0] for j in kept], np.int64)
    return Fused(out, lab_ids, src, instances.scores[src].astype(np.float32), rest,
                 [coco_names[int(i)] for i in src], str(instances.model))


def _absorb(taken: np.ndarray, lab: np.ndarray, cand: list[Any], keep: np.ndarray,
            luts: dict[str, np.ndarray], coco_names: list[str], instances: Any, c: np.ndarray,
            r: np.ndarray) -> None:
    """Rule 4, in place: free pixels of a class compatible with the nearest kept instance, within its
    margin, join it (one distance transform over the kept instances' region)."""
    ys, xs = np.nonzero(taken >= 0)
    if ys.size == 0:
        return
    h, w = taken.shape
    step_y = float(np.median(np.diff(r))) if r.size > 1 else 1.0
    step_x = float(np.median(np.diff(c))) if c.size > 1 else 1.0
    slack = float(getattr(instances, "box_slack", 0.0))
    margins = np.zeros(len(cand))
    for j in np.flatnonzero(keep):
        x0, y0, x1, y1 = (float(b) for b in instances.boxes[cand[j][0]])
        side = min((x1 - x0) / step_x, (y1 - y0) / step_y)
        margins[j] = max(MARGIN_FRACTION * side, slack / max(step_x, step_y), 1.0)
    pad = int(np.ceil(margins.max())) + 1
    y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad + 1, h)
    x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad + 1, w)
    win = taken[y0:y1, x0:x1]
    dist, (iy, ix) = ndimage.distance_transform_edt(win < 0, return_indices=True)
    near = win[iy, ix]
    free = (win < 0) & (near >= 0)
    free &= dist <= margins[np.maximum(near, 0)]
    if not free.any():
        return
    fy, fx = np.nonzero(free)
    owner = near[fy, fx]
    labs = lab[y0:y1, x0:x1][fy, fx]
    ok = np.zeros(owner.size, bool)
    for j in np.unique(owner):  # per instance: is the free pixel's class one it may take?
        sel = owner == j
        lut = luts[coco_names[cand[j][0]]]
        ok[sel] = (labs[sel] >= 0) & lut[labs[sel]]
    win[fy[ok], fx[ok]] = owner[ok]


def _join_fragments(taken: np.ndarray, lab: np.ndarray, cand: list[Any], luts: dict[str, np.ndarray],
                    coco_names: list[str]) -> None:
    """Rule 5, in place: a connected fragment of free pixels of one class that touches a kept instance
    which may take that class, and is smaller than it, joins the instance it touches most (the rest of
    a detected car that its coarse mask missed, a strip between two cars); fragments touching no
    instance stay for the semantic split (a car the detector missed is still an object)."""
    if not (taken >= 0).any():
        return
    n_inst = len(cand)
    owners = np.unique(taken[taken >= 0])
    takeable = np.zeros(len(next(iter(luts.values()))), bool)
    for j in owners:  # the classes some kept instance may take: only their fragments can join
        takeable |= luts[coco_names[cand[j][0]]]
    free = (taken < 0) & (lab >= 0) & takeable[np.maximum(lab, 0)]
    if not free.any():
        return
    sizes = np.bincount(taken[taken >= 0], minlength=n_inst)
    # components per class, numbered consecutively over the classes (touching classes stay apart)
    comp = np.zeros(taken.shape, np.int64)
    n_comp = 0
    for k in np.unique(lab[free]):  # per class present (a handful), never per pixel
        cl, nk = ndimage.label(free & (lab == k))
        sel = cl > 0
        comp[sel] = cl[sel] + n_comp
        n_comp += int(nk)
    if n_comp == 0:
        return
    comp_size = np.bincount(comp.ravel(), minlength=n_comp + 1)
    comp_label = np.zeros(n_comp + 1, np.int64)
    comp_label[comp[free]] = lab[free]
    contact = np.zeros((n_comp + 1) * n_inst, np.int64)
    for a, b in ((comp[:, 1:], taken[:, :-1]), (comp[:, :-1], taken[:, 1:]),
                 (comp[1:, :], taken[:-1, :]), (comp[:-1, :], taken[1:, :])):  # 4-neighbour contacts
        sel = (a > 0) & (b >= 0)
        contact += np.bincount(a[sel] * n_inst + b[sel], minlength=contact.size)
    contact = contact.reshape(n_comp + 1, n_inst)
    ok = np.zeros_like(contact, dtype=bool)
    for j in range(n_inst):  # may instance j take the component's class?
        ok[:, j] = luts[coco_names[cand[j][0]]][comp_label]
    contact = np.where(ok & (comp_size[:, None] < sizes[None, :]), contact, 0)
    owner = np.where(contact.max(axis=1) > 0, contact.argmax(axis=1), -1)
    owner[0] = -1
    grow = owner[comp] >= 0
    taken[grow] = owner[comp[grow]]


def split_with(labels: np.ndarray, specs: Sequence[ShapeSpec], depth: np.ndarray | None, min_area: int,
               fused: Fused | None, components: Callable[[np.ndarray], ClassComponents] | None = None
               ) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any] | None]]:
    """``split_instances`` with the fused instance objects first: (instance map, class id of each
    instance, per instance its ``{"model", "score", "class"}`` record or None for a semantic one).

    The semantic split runs on the pixels no instance kept (``fused.rest``). `components`: the
    caller's class_components of a label map (the labels, or what the instances left), when it keeps
    them across calls.
    """
    rest = labels if fused is None or len(fused.label) == 0 else fused.rest
    sem, sem_label = split_instances(rest, specs, depth, min_area,
                                     components=components(rest) if components is not None else None)
    if fused is None or len(fused.label) == 0:
        return sem, sem_label, [None] * len(sem_label)
    m = len(fused.label)
    inst = np.where(fused.inst >= 0, fused.inst, np.where(sem >= 0, sem + m, -1)).astype(np.int32)
    records: list[dict[str, Any] | None] = [
        {"model": fused.model, "score": round(float(s), 4), "class": c}
        for s, c in zip(fused.score, fused.classes, strict=True)]
    return inst, np.concatenate([fused.label, sem_label]).astype(np.int64), records + [None] * len(sem_label)
