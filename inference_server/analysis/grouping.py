"""Stage 2: instances and their statistics.

Each class split into connected components and along depth jumps (instances.py), detected instances
first (fusion.py); the pixels grouped by instance in one sort, with counts, bounding boxes, linear-light
colours and depth percentiles in one grouped pass (stats.py); and per instance what the object fits
need: interior pixels (away from the outline's blurred depth), bottoms hidden behind nearer objects,
ground contact rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import fusion, placement
from .depth_stage import DepthStage
from .grid import Grid
from .instances import ClassComponents, bottom_occlusion, edge_margin, edge_sharpness, interior_mask
from .shapes import ShapeSpec
from .stats import GroupedPixels, Groups, InstanceStats, gather, group_pixels, instance_stats

SHARP_EDGES = 0.8  # edge_sharpness above this: depth from a ray-caster/sensor, not a network


@dataclass(frozen=True)
class Grouping:
    """The instances of a scene: instance i is class inst_label[i], its pixels groups.span(i)."""

    inst_label: np.ndarray  # class id of each instance
    info: list[dict[str, Any] | None]  # a detected instance's {"model", "score", "class"}, None: semantic
    groups: Groups
    px: GroupedPixels  # u, v, depth of the grouped pixels
    stats: InstanceStats
    interior: np.ndarray | None  # per grouped pixel: away from the outline (None without depth)
    hidden_bottom: np.ndarray | None  # per instance: lower outline mostly behind nearer objects
    contact: np.ndarray | None  # per instance: lowest row touching the ground (placement.py)
    ground_px: np.ndarray | None  # the ground classes' pixels (placement.py)
    sharp: bool  # depth edges of a sensor or ray-caster, not a network's blur

    def scaled(self, scale: float) -> Grouping:
        """The same instances with depths times `scale` (new arrays: the unscaled ones may be shared)."""
        if scale == 1.0 or self.px.depth is None:
            return self
        dstats = self.stats.depth.copy()
        dstats[:, :6] *= scale
        return replace(self, px=replace(self.px, depth=self.px.depth * np.float32(scale)),
                       stats=replace(self.stats, depth=dstats))


def group_instances(grid: Grid, depth: DepthStage, names: list[str], specs: list[ShapeSpec], instances: Any,
                    min_area: int, color_stat: str,
                    components: Callable[[np.ndarray], ClassComponents] | None = None) -> Grouping:
    """The instances of the grid's labels (`instances`: an instance model's output, or None).
    `components`: the caller's class_components of a label map, when it keeps them across depths."""
    d = depth.depth
    fused = None if instances is None else fusion.fuse(  # one object per detected instance
        grid.labels, names, specs, d, instances, rows=grid.rows, cols=grid.cols,
        image_size=(grid.w0, grid.h0), min_area=min_area)
    inst, inst_label, info = fusion.split_with(grid.labels, specs, d, min_area, fused, components=components)
    groups = group_pixels(inst, len(inst_label))
    px = gather(groups, d)
    interior = hidden_bottom = contact = ground_px = None
    sharp = True
    if d is not None:
        sharp = depth.sigma == 0.0 and edge_sharpness(d) >= SHARP_EDGES
        interior = interior_mask(inst, edge_margin(grid.h, grid.w)).ravel()[groups.order]
        occluder = np.array([not (specs[k].flat or specs[k].role == "sky") for k in inst_label], dtype=bool)
        hidden_bottom = bottom_occlusion(inst, d, occluder) > 0.5
        contact = placement.ground_contact(inst, np.array([specs[k].flat for k in inst_label], dtype=bool))
        ground_px = placement.ground_pixels(grid.labels, np.array([sp.flat for sp in specs], dtype=bool))
    stats = instance_stats(groups, px, grid.rgb, color_stat, grid.confidence)
    return Grouping(inst_label=inst_label, info=info, groups=groups, px=px, stats=stats, interior=interior,
                    hidden_bottom=hidden_bottom, contact=contact, ground_px=ground_px, sharp=sharp)
