"""Stage 5: recursion. Children split from each object's own pixels (recursion.py: the resegment hook's
sub-labels, else a colour/depth split), boxed in their parent's frame and clamped inside it.

A prepared engine keeps the tree of computed children (`Tree`): each node's children are computed once
per level and hook kind that makes them exact, and published only when complete, so a cancelled
assemble leaves no half-built level. Children's records have no name: names come from the scene-wide
namer when the scene is assembled, exactly as a fresh build gives them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import recursion as rec
from .boxes import P_HI, P_LO, Box, percentiles, widen
from .objects import Made, ObjectContext, record, world_points
from .records import Namer, r, renamed
from .shapes import ShapeSpec
from .stats import depth_summary, pixel_color

MAX_SPLIT_PIXELS = 3000  # recursion splits bigger objects on a sparser lattice of their pixels

# Whether a node's cached children are exact for the hook at hand: its state says what the resegment
# hook did for its crop; the kind says what the current hook is. "any": the hook was not asked; "none":
# no hook; "hit": the hook answered sub-labels; "live-none": a live (network) hook answered None;
# "miss": a replay-only hook did not know the crop (a live one may); "error": the hook failed (always
# redone, as a fresh build would retry it).
REUSABLE = {"none": ("any", "none"), "live": ("any", "hit", "live-none"),
            "replay": ("any", "hit", "live-none", "miss")}

# (box, spec, u, v, d, rgb, step, clip): what a child's own children need
ChildArgs = tuple[Box, ShapeSpec, np.ndarray, np.ndarray, "np.ndarray | None", np.ndarray, int, np.ndarray]


@dataclass
class Node:
    """An object and what computing its children needs, with its children once computed."""

    obj: dict[str, Any]
    args: tuple[Any, ...] | None  # ChildArgs, a top object's objects.RootArgs; None: no children
    warnings: tuple[str, ...]  # emitted while making obj (top-level objects)
    kids: list[Node] | None = None
    kid_warnings: tuple[str, ...] = ()
    reuse: str = "any"


class Tree:
    """The top-level objects of a prepared engine and their children computed so far."""

    def __init__(self, tops: list[Made]) -> None:
        self.tops = [Node(t.obj, t.args, t.warnings) for t in tops]
        self._hook_memo: Any = None  # the memo of the resegment hook the cached children were made with

    def objects(self, ctx: ObjectContext, recursion: int, hook: rec.Resegment | None, namer: Namer,
                progress: Any) -> tuple[list[dict[str, Any]], list[str]]:
        """The top-level objects named by `namer`, with children down to `recursion`, and their warnings."""
        memo = getattr(hook, "memo", None)
        if memo is not self._hook_memo:  # another memo (or none): answers cached for crops may differ
            for top in self.tops:
                top.kids = None
            self._hook_memo = memo
        kind = "none" if hook is None else "replay" if getattr(hook, "replay_only", False) else "live"
        objects, warnings = [], []
        for g, top in enumerate(self.tops):
            name = namer.top(top.obj["label"])
            obj, top_warnings = dict(top.obj), list(top.warnings)
            if name != obj["name"]:  # a child's name took this one (labels with digits): rename
                obj, top_warnings = renamed(obj, top_warnings, name)
            warnings.extend(top_warnings)
            obj["children"] = (grow(ctx, top, 1, name, kind, recursion, hook, namer, warnings)
                               if recursion > 0 else [])
            objects.append(obj)
            if recursion > 0:
                progress("recursion", 0.9 + 0.05 * (g + 1) / len(self.tops))
        return objects, warnings


def grow(ctx: ObjectContext, node: Node, level: int, name: str, kind: str, recursion: int,
         hook: rec.Resegment | None, namer: Namer, warnings: list[str]) -> list[dict[str, Any]]:
    """The children (records, named now) of `node` at `level`, and theirs down to `recursion`, their
    warnings added to `warnings`; each node's children computed at most once for the hook kind that
    makes them exact."""
    if node.args is None:
        return []
    if node.kids is None or node.reuse not in REUSABLE[kind]:
        kids, kid_warnings, reuse = child_nodes(ctx, node, hook)
        node.kids, node.kid_warnings, node.reuse = kids, kid_warnings, reuse  # published complete
    warnings.extend(node.kid_warnings)
    out = []
    for j, kid in enumerate(node.kids, start=1):
        child = dict(kid.obj)
        child["name"] = namer.child(name, j)
        child["children"] = (grow(ctx, kid, level + 1, child["name"], kind, recursion, hook, namer, warnings)
                             if level < recursion else [])
        out.append(child)
    return out


def child_nodes(ctx: ObjectContext, node: Node,
                hook: rec.Resegment | None) -> tuple[list[Node], tuple[str, ...], str]:
    """A node's children (a top-level object's pixels gathered from its positions), with the warnings
    they gave and what the resegment hook did for its crop (see REUSABLE)."""
    assert node.args is not None
    if len(node.args) == 3:
        box, spec, pos = node.args
        px = ctx.inst.px
        u, v = px.u[pos], px.v[pos]
        d = px.depth[pos] if px.depth is not None else None
        rgb = ctx.grid.rgb.reshape(-1, 3)[ctx.inst.groups.order[pos]]
        step, clip = 1, None
    else:
        box, spec, u, v, d, rgb, step, clip = node.args
    return children(ctx, node.obj, box, spec, u, v, d, rgb, hook, step, clip)


def children(ctx: ObjectContext, parent: dict[str, Any], box: Box, spec: ShapeSpec, u: np.ndarray,
             v: np.ndarray, d: np.ndarray | None, rgb: np.ndarray, hook: rec.Resegment | None, step: int = 1,
             clip: np.ndarray | None = None) -> tuple[list[Node], tuple[str, ...], str]:
    """Children of an object from its pixels (grid coordinates u, v), unnamed, without their own
    children (each node keeps what computing them needs), with the warnings and the hook's state.
    Pixels on a lattice of spacing `step` stand for step x step pixels each: an object of more than
    MAX_SPLIT_PIXELS pixels is split on such a lattice (counts, colours, depths and fits from the
    lattice pixels), so recursion costs O(objects), whatever their size. Children's boxes stay inside
    `clip` (the parent's grid bounding box)."""
    min_child = max(ctx.min_area, 16)
    if len(u) * step * step < 4 * min_child:
        return [], (), "any"
    if clip is None:
        clip = np.array([u.min(), v.min(), u.max() + 1, v.max() + 1])
    groups, names, state, warnings = resegment(ctx, hook, u, v, step)
    if groups is None and len(u) > MAX_SPLIT_PIXELS:
        g = math.ceil(math.sqrt(len(u) / MAX_SPLIT_PIXELS))
        keep = ((u % (step * g)) == 0) & ((v % (step * g)) == 0)
        if keep.sum() >= 4 * 16:
            u, v, rgb = u[keep], v[keep], rgb[keep]
            d = d[keep] if d is not None else None
            step *= g
    weight = step * step  # pixels each lattice pixel stands for
    lu, lv = (u // step, v // step) if step > 1 else (u, v)  # lattice coordinates: neighbours 1 apart
    if groups is None:
        k = int(np.clip(len(u) * weight // (8 * min_child), 2, 4))
        groups = rec.feature_split(lu, lv, rgb, d, k)
    pieces = rec.components(lu, lv, groups, max(1, -(-min_child // weight)))
    if len(pieces) < 2:
        return [], warnings, state
    confidence = ctx.grid.confidence
    out = []
    for idx in pieces:
        g = int(groups[idx[0]])
        label = names[g] if names is not None else parent["label"]
        cspec = ctx.table.lookup(label) if names is not None else spec
        cu, cv = u[idx], v[idx]
        cd = d[idx] if d is not None else None
        bbox = np.array([cu.min(), cv.min(), min(int(cu.max()) + step, int(clip[2])),
                         min(int(cv.max()) + step, int(clip[3]))])
        dstats = depth_summary(cd) if cd is not None else np.array([np.nan] * 6 + [0.0])
        dstats[6] *= weight
        conf = float(np.mean(confidence[cv, cu])) if confidence is not None else float("nan")
        child = record(ctx, "", label, parent["label_id"], cspec, pixel_color(rgb[idx], ctx.color_stat),
                       len(idx) * weight, bbox, dstats, conf)
        child["pixels"] = min(child["pixels"], parent["pixels"])
        child["depth_m"]["valid_pixels"] = min(child["depth_m"]["valid_pixels"], child["pixels"])
        pts, measured = world_points(ctx, cu, cv, cd, bbox, cspec)
        cbox, source = child_box(pts, box)
        child["shape"] = cspec.shape if not cspec.flat and cspec.role != "sky" else "cube"
        child["translate"], child["rotate"] = r(cbox.center), [0.0, r(cbox.yaw), 0.0]
        child["size"] = r(cbox.size)
        child["thickness_source"] = source if measured else "prior"
        out.append(Node(child, (cbox, cspec, cu, cv, cd, rgb[idx], step, bbox), ()))
    return out, warnings, state


def resegment(ctx: ObjectContext, hook: rec.Resegment | None, u: np.ndarray, v: np.ndarray,
              step: int = 1) -> tuple[np.ndarray | None, list[str] | None, str, tuple[str, ...]]:
    """Sub-labels of the object's pixels from the hook (None: use the colour/depth split), with names,
    the hook's state (REUSABLE) and warnings. Lattice pixels (`step` > 1) fill their step x step cell."""
    if hook is None:
        return None, None, "none", ()
    grid = ctx.grid
    x0, y0 = int(u.min()), int(v.min())
    hh = min(int(v.max()) + step, grid.h) - y0
    ww = min(int(u.max()) + step, grid.w) - x0
    crop_rgb = grid.rgb[y0:y0 + hh, x0:x0 + ww]
    mask = np.zeros((hh, ww), dtype=bool)
    for dy in range(step):
        for dx in range(step):
            mask[np.minimum(v - y0 + dy, hh - 1), np.minimum(u - x0 + dx, ww - 1)] = True
    try:
        out = hook(crop_rgb, mask)
    except Exception as exc:  # a failing hook must not lose the scene  # noqa: BLE001
        return None, None, "error", (f"resegment failed ({type(exc).__name__}: {exc}); "
                                     "colour/depth split used",)
    if out is None:
        return None, None, "miss" if getattr(hook, "replay_only", False) else "live-none", ()
    sub, names = out
    sub = np.asarray(sub)
    if sub.shape != (hh, ww) or not names:
        return None, None, "hit", ("resegment returned labels of the wrong shape; colour/depth split used",)
    g = sub[v - y0, u - x0].astype(np.int64)
    g = np.where((g >= 0) & (g < len(names)), g, -1)
    return g, [str(n) for n in names], "hit", ()


def child_box(points: np.ndarray, parent: Box) -> tuple[Box, str]:
    """A child's box in its parent's frame (same yaw): robust spans, an axis the child does not
    measure (seen edge-on) takes the parent's full extent, everything clamped inside the parent."""
    local = parent.to_local(points)
    half = np.asarray(parent.size) / 2.0
    lo, hi = np.empty(3), np.empty(3)
    source = "measured"
    q = percentiles(np.ascontiguousarray(local.T), [P_LO, P_HI])  # robust spans of the 3 axes at once
    for ax in range(3):
        a, b = widen(q[ax, 0], q[ax, 1])
        if ax != 1 and b - a < 0.25 * parent.size[ax]:
            a, b = -half[ax], half[ax]
            source = "mixed"
        lo[ax], hi[ax] = np.clip(a, -half[ax], half[ax]), np.clip(b, -half[ax], half[ax])
        floor = min(max(0.05 * parent.size[ax], 0.01), parent.size[ax])  # a face-only piece keeps some body
        if hi[ax] - lo[ax] < floor:
            m = float(np.clip((lo[ax] + hi[ax]) / 2.0, -half[ax] + floor / 2, half[ax] - floor / 2))
            lo[ax], hi[ax] = m - floor / 2, m + floor / 2
    centre_local = (lo + hi) / 2.0
    centre = np.asarray(parent.center) + parent.rotation @ centre_local
    size = hi - lo
    box = Box(center=(centre[0], centre[1], centre[2]), yaw=parent.yaw, size=(size[0], size[1], size[2]))
    return box, source
