"""The scene engine: labels + depth + photo -> a valid `img2maya/scene@1` dict.

An orchestrator over stage modules, each returning a frozen result the next ones read (see
docs/ARCHITECTURE.md and docs/SHAPES.md):
0. grid.py: the inputs checked, and the analysis grid every stage works on;
1. depth_stage.py: the depth checked, relative depth made metric by the ground (depth_calib.py), noisy
   depth median-filtered;
2. grouping.py: instances (each class split into components and along depth jumps, detected instances
   first: instances.py, fusion.py) and their statistics in one grouped pass (stats.py);
3. pose.py: ground plane and gravity -> camera height, pitch, roll, the scale of relative depth;
4. objects.py: sky -> far backdrop plane, ground/water -> planes at y = 0, everything else an oriented
   box (boxes.py) turned into the class's primitive (shapes.py), pieces of one object merged;
5. children.py: recursion, children split from each object's own pixels (recursion.py);
records.py writes the scene dict. `prepare` runs stages 0-4, `assemble` adds the children to any depth
(a server keeps prepared engines warm); stages an option change does not touch are shared by engines
of the same inputs (stage_cache.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UserError
from . import fusion
from . import recursion as rec
from .camera import Intrinsics
from .children import Tree
from .color import COLOR_STATS
from .depth_calib import ground_data
from .depth_stage import DepthStage, noise_level, prepare_depth
from .grid import MAX_GRID_PIXELS, Grid, analysed_intrinsics, check_maps, make_grid, photo_size, with_camera
from .grouping import Grouping, group_instances
from .instances import ClassComponents, auto_min_area, class_components
from .objects import ObjectContext, far_distance, sky, top_objects
from .pose import CameraPose, Ground, camera_pose, fit_ground
from .records import Namer, scene_record
from .shapes import load_table
from .stage_cache import ComponentsKey, DepthKey, GridKey, GroundKey, InstancesKey, SampleKey, StageCache

if TYPE_CHECKING:
    from ..calib import CameraEstimate

DEPTH_KINDS = ("metric", "disparity", "relative")
Progress = Callable[[str, float], None]


@dataclass
class SceneOptions:
    recursion: int = 0  # 0..5
    min_area_px: int = 0  # 0 = automatic (fraction of the image)
    color_stat: str = "mean"  # "mean" | "median" | "trimmed"
    depth_kind: str = "metric"  # "metric" | "disparity" | "relative"
    camera_height_m: float = 1.6  # prior for relative depth
    shapes_table: str | None = None  # path of a user shapes JSON, else the shipped default
    max_pixels: int = MAX_GRID_PIXELS  # analysis grid size cap (0 = analyse every pixel)
    ignore_exif: bool = False  # a cropped or scanned photo's EXIF focal length lies
    estimate_camera: bool = True  # focal, pitch, roll and the scene's axes from the photo's lines (calib/)
    camera_height_from_objects: bool = True  # with the lines' horizon: the height from people, cars, doors


def check_options(o: SceneOptions) -> None:
    if not (isinstance(o.recursion, int) and 0 <= o.recursion <= 5):
        raise UserError(f"recursion must be an integer 0..5, got {o.recursion!r}")
    if o.color_stat not in COLOR_STATS:
        raise UserError(f"color_stat must be one of {', '.join(COLOR_STATS)}, got {o.color_stat!r}")
    if o.depth_kind not in DEPTH_KINDS:
        raise UserError(f"depth_kind must be one of {', '.join(DEPTH_KINDS)}, got {o.depth_kind!r}")
    if not (math.isfinite(o.camera_height_m) and o.camera_height_m > 0):
        raise UserError(f"camera_height_m must be positive, got {o.camera_height_m!r}")
    if o.min_area_px < 0:
        raise UserError(f"min_area_px must be >= 0, got {o.min_area_px!r}")
    if not (isinstance(o.max_pixels, int) and (o.max_pixels == 0 or o.max_pixels >= 10_000)):
        raise UserError(f"max_pixels must be 0 (no limit) or an integer >= 10000, got {o.max_pixels!r}")


@dataclass(frozen=True)
class Prepared:
    """What `prepare` leaves for `assemble`: everything but the children, which `tree` caches."""

    ctx: ObjectContext
    ground: Ground
    pose: CameraPose
    tree: Tree
    sky: tuple[int, ...]  # the sky's instances (backdrops, named after the other objects)
    far: float  # the backdrops' distance
    warnings: tuple[str, ...]  # the scene's warnings before any object's


def _quiet(stage: str, frac: float) -> None:
    pass


class SceneEngine:
    """One build: the checked inputs and their grid in __init__, stages 1-4 in `prepare`, the scene at
    any recursion from `assemble`."""

    def __init__(self, rgb: np.ndarray, labels: np.ndarray, label_names: list[str], depth: np.ndarray | None,
                 intr: Intrinsics, options: SceneOptions, *, source: dict, confidence: np.ndarray | None,
                 full_size: tuple[int, int] | None, progress: Progress | None,
                 resegment: rec.Resegment | None, stages: StageCache | None = None,
                 camera: CameraEstimate | None = None, instances: Any = None):
        check_options(options)
        # `stages`: another engine's, reused when made for the same inputs (arrays by identity)
        inputs = (rgb, labels, label_names, depth, confidence, full_size, instances)  # camera: in the keys
        self.stages = StageCache.for_inputs(stages, inputs)
        self.options = options
        shape = photo_size(rgb)
        names = [str(n) for n in label_names]
        checked = self.stages.checked.get((), lambda: check_maps(labels, names, depth, confidence, shape))
        intr0 = analysed_intrinsics(intr, shape)
        self.camera = camera  # the photo's lines (calib/), recorded in the scene; used when trusted:
        self.trusted = camera if camera is not None and camera.found and camera.up is not None else None
        self.up = self.trusted.up if self.trusted is not None else None  # the lines' world up, when trusted
        self.grid: Grid = with_camera(self.stages.grid.get(self._sample_key(), lambda: make_grid(
            rgb, checked, intr0, options.max_pixels, options.depth_kind)), intr0)  # a typed FOV: same samples
        self.full_size = (int(full_size[0]), int(full_size[1])) if full_size else (self.grid.w0, self.grid.h0)
        self.source = dict(source)
        self.progress: Progress = progress or _quiet
        self.resegment = resegment
        self.table = load_table(options.shapes_table)
        self.instances = instances if instances is not None and len(instances) else None  # fusion.py
        self.names = fusion.scene_names(names, self.instances)  # + COCO things the label set lacks
        self.specs = [self.table.lookup(n) for n in self.names]
        g = self.grid
        self.min_area = (max(1, round(options.min_area_px / g.px_scale)) if options.min_area_px
                         else auto_min_area(g.h, g.w))
        warnings = list(camera.warnings) if camera is not None else []
        if camera is not None and camera.found and camera.focal_px is None and g.intr.source == "default":
            warnings.append("camera: the photo's lines do not determine the focal length: the default "
                            f"{g.intr.hfov_deg:.0f} degree field of view kept "
                            "(--fov-deg or --focal-px to set it)")
        self.warnings = tuple(warnings)  # the camera's
        self.prepared: Prepared | None = None

    def run(self) -> dict[str, Any]:
        self.prepare()
        return self.assemble(self.options.recursion)

    def prepare(self) -> None:
        """Everything that does not depend on `options.recursion`: calibration, instances, statistics,
        ground, merging and the top-level objects WITHOUT children. `assemble` then adds the children
        to any depth and builds the scene; a server keeps a prepared engine warm (docs/PROTOCOL.md)."""
        o, grid, specs, say = self.options, self.grid, self.specs, self.progress
        say("instances", 0.0)
        depth = self.stages.depth.get(self._depth_key(), self._depth)
        inst = self.stages.instances.get(self._instances_key(), lambda: self._instances(depth))
        say("statistics", 0.25)
        say("ground", 0.45)
        ground = fit_ground(grid, depth, inst, specs, o.depth_kind, o.camera_height_m)
        inst = inst.scaled(ground.scale)  # metric from here on
        pose = camera_pose(grid, depth, inst, specs, ground, self.trusted, o.depth_kind, o.camera_height_m)
        ctx = ObjectContext(grid, depth, inst, self.names, specs, self.table, self.trusted, pose.pose,
                            ground.scale, ground.plane is not None, self.full_size, o.color_stat,
                            o.depth_kind, self.min_area)
        say("objects", 0.55)
        tops, sky_members = top_objects(ctx, Namer(), say)
        far = far_distance(ctx, [t.obj for t in tops])
        warnings = self.warnings + depth.warnings + ground.warnings + pose.warnings
        self.prepared = Prepared(ctx, ground, pose, Tree(tops), tuple(sky_members), far, warnings)

    def assemble(self, recursion: int, *, progress: Progress | None = None,
                 resegment: rec.Resegment | None | str = "keep") -> dict[str, Any]:
        """The scene at `recursion` from a prepared engine: the same dict a fresh build_scene with
        this recursion gives. Children are computed once per object and level and kept (children.Tree):
        going 0 -> 1 -> 2 computes only the new level, 2 -> 1 and a repeat only copy. `resegment`:
        the hook for children computed now ("keep": the one given before)."""
        self.options = replace(self.options, recursion=recursion)
        check_options(self.options)
        if progress is not None:
            self.progress = progress
        if not isinstance(resegment, str):
            self.resegment = resegment
        if self.prepared is None:
            self.prepare()
        p = self.prepared
        assert p is not None
        namer = Namer()
        objects, warnings = p.tree.objects(p.ctx, recursion, self.resegment, namer, self.progress)
        objects += [sky(p.ctx, i, namer, p.far) for i in p.sky]
        self.progress("scene", 0.95)
        scene = scene_record(self.grid, self.full_size, self.source, self.options, self.min_area, p.pose.pose,
                             p.pose.orientation, p.ground.plane, p.ground.scale, p.far, p.ctx.depth.calib,
                             self.camera, [*p.warnings, *warnings], objects)
        self.progress("done", 1.0)
        return scene

    # ---- the stages' cache keys and the parts they share across camera heights ----------------

    def _sample_key(self) -> SampleKey:
        return SampleKey(self.options.max_pixels, self.options.depth_kind)

    def _depth_key(self) -> DepthKey:
        o = self.options
        relative = o.depth_kind != "metric"  # the calibration depends on the camera height
        return DepthKey(GridKey(self._sample_key(), self.grid.intr0), o.shapes_table,
                        o.camera_height_m if relative else None, o.camera_height_from_objects if relative else None,
                        self.up)

    def _depth(self) -> DepthStage:
        o, key = self.options, self._sample_key()
        return prepare_depth(
            self.grid, self.specs, o.depth_kind, o.camera_height_m, o.camera_height_from_objects,
            self.up,
            ground=lambda d: self.stages.ground.get(GroundKey(key, o.shapes_table),
                                                    lambda: ground_data(d, self.grid.labels, self.specs)),
            given_noise=lambda d: self.stages.given_noise.get(key, lambda: noise_level(d)))

    def _instances_key(self) -> InstancesKey:
        return InstancesKey(self._depth_key(), self.min_area, self.options.color_stat)

    def _instances(self, depth: DepthStage) -> Grouping:
        return group_instances(self.grid, depth, self.names, self.specs, self.instances, self.min_area,
                               self.options.color_stat, self._components)

    def _components(self, labels: np.ndarray) -> ClassComponents:
        key = ComponentsKey(self._sample_key(), self.options.shapes_table, hash(labels.tobytes()))
        return self.stages.components.get(key, lambda: class_components(labels, self.specs))


def build_scene(rgb: np.ndarray, labels: np.ndarray, label_names: list[str], depth: np.ndarray | None,
                intr: Intrinsics, options: SceneOptions, *, source: dict,
                confidence: np.ndarray | None = None, full_size: tuple[int, int] | None = None,
                progress: Progress | None = None, resegment: rec.Resegment | None = None) -> dict[str, Any]:
    """A valid scene@1 dict from analysis-resolution arrays (see docs/ARCHITECTURE.md).

    `intr` is at analysis resolution; `full_size` (W, H) of the original photo sets the units of
    bbox_px and of the camera numbers. Bad inputs raise UserError with one line.
    """
    return SceneEngine(rgb, labels, label_names, depth, intr, options, source=source, confidence=confidence,
                       full_size=full_size, progress=progress, resegment=resegment).run()
