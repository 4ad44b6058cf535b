"""The scene engine: labels + depth + photo -> a valid `img2maya/scene@1` dict.

Stages (see docs/ARCHITECTURE.md and docs/SHAPES.md):
1. instances: each class split into connected components and along depth jumps (instances.py);
2. statistics: counts, bounding boxes, linear-light colours, depth percentiles, all instances in
   one grouped pass (stats.py);
3. ground and gravity: RANSAC plane through the ground classes -> camera height, pitch, roll; the
   scale of relative depth is fixed by the camera-height prior (or by class size priors);
4. geometry: sky -> far backdrop plane, ground/water -> one plane per class at y = 0, everything
   else an oriented box (boxes.py) fitted to its back-projected pixels, grown to cover its segment,
   turned into the class's primitive (shapes.py: cylinder, sphere + trunk, slab, ...);
5. recursion: children split from each object's own pixels, clamped inside the parent (recursion.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..errors import UserError
from . import fusion, placement
from . import recursion as rec
from .boxes import Box, box_intersection, cover_bbox, fit_box, percentiles
from .camera import Intrinsics, backproject, euler_xyz_to_matrix, matrix_to_euler_xyz, maya_film, pixel_rays
from .color import COLOR_STATS, linear_to_srgb
from .depth_calib import DepthCalibration, calibrate_depth_map
from .ground import PlaneFit, Pose, angles_from_normal, fit_plane, pose_from_angles
from .instances import (
    auto_min_area,
    bottom_occlusion,
    depth_noise,
    edge_margin,
    edge_sharpness,
    interior_mask,
)
from .shapes import ShapeSpec, load_table
from .stats import depth_summary, gather, group_pixels, instance_colors, instance_stats, pixel_color

DEPTH_KINDS = ("metric", "disparity", "relative")
MAX_FIT_POINTS = 20000  # points per object used for the box fit (evenly strided)
MAX_GROUND_POINTS = 40000
MIN_DEPTH_PIXELS = 20  # fewer valid depths than this: the object is placed from priors
NEAR_CLIP_M = 0.05
MIN_SKY_DISTANCE_M = 100.0
MAX_MERGE_CANDIDATES = 64  # per class: pairwise box tests beyond this many instances are skipped
SHARP_EDGES = 0.8  # edge_sharpness above this: depth from a ray-caster/sensor, not a network
MAX_SPLIT_PIXELS = 3000  # recursion splits bigger objects on a sparser lattice of their pixels
MAX_GRID_PIXELS = 640_000  # default analysis grid: ~1000 x 650 whatever the photo's size (docs/SHAPES.md)
NOISY_DEPTH = 0.005  # relative per-pixel depth noise above which the depth is median-filtered
_NAME_RE = re.compile(r"[^a-z0-9]+")
_MISSING = object()

if TYPE_CHECKING:
    from ..calib import CameraEstimate

Progress = Callable[[str, float], None]
MANHATTAN_ROLES = ("building", "wall", "vehicle")  # turned to the scene's axes where their own edges agree
MANHATTAN_EDGES = 0.5  # ... i.e. their horizontal edges on the scene's axes add up to this x their width
SNAP_ONLY_ROLES = ("vehicle",)  # ... and, for these, their own fitted yaw is within SNAP_DEG of that axis
SNAP_DEG = 15.0


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


def _check_options(o: SceneOptions) -> None:
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


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    a = np.asarray(rgb)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise UserError(f"photo must be an (h, w, 3) RGB image, got shape {a.shape}")
    a = a[..., :3]
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.size and float(np.nanmax(a)) <= 1.0:
            a = np.round(np.clip(np.nan_to_num(a), 0, 1) * 255.0)
        a = np.clip(a, 0, 255).astype(np.uint8)
    return a


def _check_labels(labels: np.ndarray, names: list[str], shape: tuple[int, int]) -> np.ndarray:
    """The label array, checked (2-D, the photo's size, integer ids with names); any integer dtype."""
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise UserError(f"labels must be a 2-D array of class ids, got shape {lab.shape}")
    if lab.shape != shape:
        raise UserError(f"labels are {lab.shape[1]}x{lab.shape[0]} but the photo is {shape[1]}x{shape[0]}")
    if not np.issubdtype(lab.dtype, np.integer):
        if not np.all(np.isfinite(lab)) or not np.all(lab == np.round(lab)):
            raise UserError("labels must be integer class ids")
        lab = lab.astype(np.int32)
    if lab.size and int(lab.max()) >= len(names):
        raise UserError(f"label id {int(lab.max())} has no name: only {len(names)} label names given")
    return lab


def _as_labels(lab: np.ndarray) -> np.ndarray:
    """Checked labels as int32, every negative id -1 (no class)."""
    out = lab.astype(np.int32)
    if np.issubdtype(lab.dtype, np.signedinteger):
        out = np.where(out < 0, np.int32(-1), out)
    return out


def _grid(h: int, w: int, max_pixels: int) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """Scale and the rows/columns (nearest pixel) of the analysis grid: at most `max_pixels` pixels
    (0 = no limit); grid pixel j samples pixel floor((j + 0.5) / scale), so the grid camera is the
    analysed one scaled by `scale`."""
    if max_pixels <= 0 or h * w <= max_pixels:
        return 1.0, None, None
    s = math.sqrt(max_pixels / (h * w))
    h2, w2 = max(1, int(h * s)), max(1, int(w * s))
    rows = np.minimum(((np.arange(h2) + 0.5) / s).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(w2) + 0.5) / s).astype(np.intp), w - 1)
    return s, rows, cols


def _sample(a: np.ndarray | None, rows: np.ndarray | None, cols: np.ndarray | None) -> np.ndarray | None:
    if a is None or rows is None or cols is None:
        return a
    return np.take(np.take(a, rows, axis=0), cols, axis=1)


def _as_map(a: np.ndarray | None, what: str, shape: tuple[int, int]) -> np.ndarray | None:
    if a is None:
        return None
    m = np.asarray(a, dtype=np.float32)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.shape != shape:
        raise UserError(f"{what} is {'x'.join(map(str, m.shape[::-1]))} but the photo is {shape[1]}x{shape[0]}")
    return m


def _prepare_depth(depth: np.ndarray | None, kind: str) -> np.ndarray | None:
    """z-depth (up to scale for relative/disparity) with NaN where there is no depth."""
    if depth is None:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32)
        if kind == "disparity":
            d = (1.0 / d).astype(np.float32)
    return d


def _noise_level(depth: np.ndarray) -> float:
    """Relative per-pixel noise of a depth map (what _denoise tests)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return depth_noise(np.log(depth)) / math.sqrt(6.0)


def _denoise(depth: np.ndarray, warnings: list[str], given: np.ndarray | None = None,
             given_noise: float | None = None) -> tuple[np.ndarray, float]:
    """Per-pixel depth noise above ~0.5 % (sensor speckle, dithering) makes boxes thick along the
    view ray and cuts segments along false depth edges; a 5 x 5 median (which keeps occlusion
    steps) brings it down about fourfold. Clean or smooth depth is returned untouched. Also
    returns the relative per-pixel noise left (0 for clean depth).

    `given`: the depth as it came in, when `depth` is a calibrated map of it. Whether to filter is
    decided on `given`: a smooth network map raised to a power (depth_calib's map) has a larger
    relative pixel-to-pixel variation but no more noise, and the median (which commutes with the
    monotone map) would only cost time (~0.13 s on a 0.64 MP grid). `given_noise`: _noise_level(given)
    when the caller has it already (it does not depend on the calibration)."""
    from scipy import ndimage

    if given is not None and given is not depth:
        if (_noise_level(given) if given_noise is None else given_noise) < NOISY_DEPTH:
            return depth, 0.0
    sigma = _noise_level(depth)
    if sigma < NOISY_DEPTH:
        return depth, 0.0
    warnings.append(f"noisy depth (about {100 * sigma:.1f} % per pixel): median-filtered before fitting")
    filled = np.where(np.isfinite(depth), depth, np.inf)
    out = ndimage.median_filter(filled, size=5, mode="nearest")
    return np.where(np.isfinite(depth) & np.isfinite(out), out, np.nan).astype(np.float32), sigma / 4.0


def _base_name(label: str) -> str:
    first = re.split(r"[;,]", str(label))[0]
    base = _NAME_RE.sub("_", first.strip().lower()).strip("_")
    if not base:
        base = "object"
    if not (base[0].isalpha() or base[0] == "_"):
        base = "_" + base
    return base


class _Namer:
    def __init__(self) -> None:
        self.used: set[str] = set()
        self.next: dict[str, int] = {}

    def top(self, label: str) -> str:
        base = _base_name(label)
        k = self.next.get(base, 1)
        while f"{base}_{k}" in self.used:
            k += 1
        self.next[base] = k + 1
        return self._take(f"{base}_{k}")

    def child(self, parent: str, k: int) -> str:
        name = f"{parent}_{k}"
        while name in self.used:
            name += "_"
        return self._take(name)

    def _take(self, name: str) -> str:
        self.used.add(name)
        return name


def _r(x: Any, nd: int = 6) -> Any:
    """JSON-friendly rounding (numpy scalars and arrays to plain floats)."""
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_r(v, nd) for v in x]
    return round(float(x), nd) + 0.0


# Whether a node's cached children are exact for the hook at hand (SceneEngine.assemble): its state
# says what the resegment hook did for its crop; the kind says what the current hook is.
# "any": the hook was not asked; "none": no hook; "hit": the hook answered sub-labels; "live-none": a
# live (network) hook answered None; "miss": a replay-only hook did not know the crop (a live one may);
# "error": the hook failed (always redone, as a fresh build would retry it).
_REUSABLE = {"none": ("any", "none"), "live": ("any", "hit", "live-none"),
             "replay": ("any", "hit", "live-none", "miss")}


@dataclass
class _Node:
    """An object and what computing its children needs, with its children once computed (the
    recursion cache of a prepared SceneEngine). Children's dicts have no name yet: names come from
    the scene-wide namer in assemble, exactly as a fresh build gives them."""

    obj: dict[str, Any]
    args: tuple[Any, ...] | None  # (box, spec, u, v, d, rgb, step, clip), a top object's (box, spec, pos); None: no children
    warnings: list[str]  # emitted while making obj (top-level objects)
    kids: list[_Node] | None = None
    kid_warnings: tuple[str, ...] = ()
    reuse: str = "any"


def _renamed(obj: dict[str, Any], warnings: list[str], name: str) -> tuple[dict[str, Any], list[str]]:
    """A top-level object given another name, with its parts and warnings."""
    old, obj = obj["name"], {**obj, "name": name}
    obj["parts"] = [{**p, "name": name + p["name"][len(old):]} if str(p.get("name", "")).startswith(old) else p
                    for p in obj["parts"]]
    return obj, [name + w[len(old):] if w.startswith(old + ":") else w for w in warnings]


@dataclass
class _Ctx:
    """What the per-object code needs; built once per scene."""

    intr: Intrinsics
    pose: Pose
    sx: float  # full / analysis scale, horizontal
    sy: float
    color_stat: str
    min_area: int
    has_ground: bool


class SceneEngine:
    """One build: holds inputs, the instance grouping and the fitted camera."""

    def __init__(self, rgb: np.ndarray, labels: np.ndarray, label_names: list[str], depth: np.ndarray | None,
                 intr: Intrinsics, options: SceneOptions, *, source: dict, confidence: np.ndarray | None,
                 full_size: tuple[int, int] | None, progress: Progress | None, resegment: rec.Resegment | None,
                 stages: dict[Any, Any] | None = None, camera: CameraEstimate | None = None,
                 instances: Any = None):
        _check_options(options)
        # Option-independent stage results, shared by engines built from the SAME inputs (photo,
        # labels, depth and confidence arrays, names, camera, size) with other options: a server's regenerate with
        # new options reuses what the change does not touch (_stage). Arrays are checked by identity.
        inputs = (rgb, labels, label_names, depth, confidence, intr, full_size, camera, instances)
        if stages is None or len(stages.get("inputs", ())) != len(inputs) or not all(
                a is b or (not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray) and a == b)
                for a, b in zip(stages["inputs"], inputs, strict=True)):
            stages = {} if stages is None else stages
            stages.clear()
            stages["inputs"] = inputs
        self.stages = stages
        self.options = options
        rgb = np.asarray(rgb)
        if rgb.ndim not in (2, 3):
            raise UserError(f"photo must be an (h, w, 3) RGB image, got shape {rgb.shape}")
        h, w = rgb.shape[:2]
        self.names = [str(n) for n in label_names]

        def checked() -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
            return (_check_labels(labels, self.names, (h, w)), _as_map(depth, "depth", (h, w)),
                    _as_map(confidence, "confidence", (h, w)))

        labels0, depth0, conf0 = self._stage("checked", (), checked)
        if (intr.width, intr.height) != (w, h):
            if abs(intr.width / w - intr.height / h) > 0.02 * intr.width / w:
                raise UserError(f"intrinsics are for {intr.width}x{intr.height} but the analysed image is {w}x{h}")
            intr = intr.scaled(w / intr.width, width=w, height=h)
        # The analysed image (w0 x h0, camera intr0) is sampled onto a grid of at most
        # options.max_pixels (nearest pixel, so labels and depth edges stay sharp); every stage
        # works on the grid, bounding boxes are refined back to analysed pixels (_refine_bbox).
        self.w0, self.h0, self.intr0, self.labels0 = w, h, intr, labels0
        def grid() -> tuple[Any, ...]:
            gs, rows, cols = _grid(h, w, options.max_pixels)
            return (gs, rows, cols, _as_rgb(_sample(rgb, rows, cols)), _as_labels(_sample(labels0, rows, cols)),
                    _prepare_depth(_sample(depth0, rows, cols), options.depth_kind), _sample(conf0, rows, cols))

        self._grid_key = (options.max_pixels, options.depth_kind)
        self.gs, rows, cols, self.rgb, self.labels, self.depth, self.confidence = self._stage("grid", self._grid_key, grid)
        self._rows, self._cols = rows, cols
        h, w = self.labels.shape
        self.h, self.w = h, w
        if self.gs != 1.0:
            intr = intr.scaled(self.gs, width=w, height=h)
        self.intr = intr
        # the photo's vanishing points (calib/): pitch and roll when trusted, the scene's axes (world yaw)
        self.camera = camera if camera is not None and camera.found and camera.up is not None else None
        self.camera_record = camera
        self.px_scale = (self.w0 * self.h0) / max(w * h, 1)  # analysed pixels per grid pixel
        self.full_size = (int(full_size[0]), int(full_size[1])) if full_size else (self.w0, self.h0)
        self.source = dict(source)
        self.progress = progress or (lambda stage, frac: None)
        self.resegment = resegment
        self.table = load_table(options.shapes_table)
        self.instances = instances if instances is not None and len(instances) else None  # fusion.py
        self.names = fusion.scene_names(self.names, self.instances)  # + COCO things the label set lacks
        self.specs = [self.table.lookup(n) for n in self.names]
        self.min_area = (max(1, round(options.min_area_px / self.px_scale)) if options.min_area_px
                         else auto_min_area(h, w))
        self.warnings: list[str] = list(camera.warnings) if camera is not None else []
        if camera is not None and camera.found and camera.focal_px is None and intr.source == "default":
            self.warnings.append("camera: the photo's lines do not determine the focal length: the default "
                                 f"{intr.hfov_deg:.0f} degree field of view kept (--fov-deg or --focal-px to set it)")
        self.namer = _Namer()
        self._fits: dict[int, tuple[Box, str, bool]] = {}  # single-instance fits made while merging
        self._root_args: tuple[Any, ...] | None = None  # set by _object: what its children need
        self._hook_state = "any"  # what the resegment hook did in the last _children (see _REUSABLE)

    # ---- stages -------------------------------------------------------------------------------

    def _stage(self, kind: str, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """make(), or its result for an earlier engine of the same inputs and `key` (the options the
        stage depends on). Results are never modified in place. The 2 most recently used keys per kind
        are kept."""
        full = (kind, key)
        value = self.stages.pop(full, _MISSING)  # get/pop only: engines on other threads may share the dict
        if value is _MISSING:
            value = make()
        self.stages[full] = value  # the most recently used last
        same = [k for k in list(self.stages) if isinstance(k, tuple) and k[0] == kind]
        for k in same[:-2]:
            self.stages.pop(k, None)
        return value

    def run(self) -> dict[str, Any]:
        self.prepare()
        return self.assemble(self.options.recursion)

    def prepare(self) -> None:
        """Everything that does not depend on `options.recursion`: calibration, instances, statistics,
        ground, merging and the top-level objects WITHOUT children. `assemble` then adds the children
        to any depth and builds the scene; a server keeps a prepared engine warm (docs/PROTOCOL.md)."""
        self.progress("instances", 0.0)
        if self.depth is not None and not np.isfinite(self.depth).any():
            self.warnings.append("depth has no valid (finite, > 0) values: objects placed from class size priors")
            self.depth = None
        if self.depth is None and "depth has no valid" not in " ".join(self.warnings):
            self.warnings.append("no depth: objects placed from class size priors")
        self.calib: DepthCalibration | None = None  # relative depth made metric by the ground (depth_calib.py)
        self.depth_sigma = 0.0
        # each stage's key: the options it depends on, with its input's key (same inputs: see __init__)
        self._dkey = dkey = (self._grid_key, self.options.shapes_table,
                             self.options.camera_height_m if self.options.depth_kind != "metric" else None)
        if self.depth is not None:
            self.depth, self.calib, notes, self.depth_sigma = self._stage("depth", dkey, self._calibrated)
            self.warnings.extend(notes)
        ikey = (dkey, self.min_area)
        (self.inst_label, self.groups, self.px, self.interior, self.hidden_bottom, self.contact, self.ground_px,
         self.sharp, self.inst_info) = self._stage("instances", ikey, self._instances)
        self.progress("statistics", 0.25)
        cstat = self.options.color_stat
        self.stats, made_with = self._stage("stats", ikey, lambda: (
            instance_stats(self.groups, self.px, self.rgb, cstat, self.confidence), cstat))
        if made_with != cstat:  # another colour statistic: only the colour column changes
            self.stats = replace(self.stats, color_linear=self._stage(
                "colors", (ikey, cstat), lambda: instance_colors(self.groups, self.rgb, cstat)))
        self.progress("ground", 0.45)
        plane, scale = self._ground_and_scale()
        pose, self._orientation = self._pose(plane)
        # grid pixel x <-> analysed pixel x / gs <-> full-resolution pixel x / gs * full_w / w0
        self.ctx = _Ctx(intr=self.intr, pose=pose, sx=self.full_size[0] / (self.w0 * self.gs),
                        sy=self.full_size[1] / (self.h0 * self.gs),
                        color_stat=self.options.color_stat, min_area=self.min_area, has_ground=plane is not None)
        self.progress("objects", 0.55)
        self._plane, self._cam_pose = plane, pose
        self._warnings0 = list(self.warnings)  # the scene's warnings before any object's
        self._tops: list[_Node] = []
        self._sky_members: list[int] = []
        # which instances make one object, with their single-instance box fits: not a colour question
        # (the camera height may set the pose when there is no ground, so it is in the key)
        merged, self._fits = self._stage("merge", (ikey, self.options.camera_height_m),
                                         lambda: (self._merge_groups(), self._fits))
        for g, members in enumerate(merged):
            spec = self.specs[int(self.inst_label[members[0]])]
            if spec.role == "sky":
                self._sky_members.extend(members)
                continue
            n_warn, self._root_args = len(self.warnings), None
            obj = self._object(members, spec)
            if obj is not None:
                self._tops.append(_Node(obj, self._root_args, self.warnings[n_warn:]))
            del self.warnings[n_warn:]
            self.progress("objects", 0.55 + 0.35 * (g + 1) / max(len(merged), 1))
        self._far = self._far_distance([t.obj for t in self._tops])
        self._hook_memo: Any = None  # the memo of the resegment hook the cached children were made with

    def _calibrated(self) -> tuple[np.ndarray, DepthCalibration | None, list[str], float]:
        """The depth made metric by the ground (relative depth) and denoised, with its warnings."""
        notes: list[str] = []
        depth, calib, given = self.depth, None, self.depth  # noise is judged on the depth as given
        assert depth is not None
        if self.options.depth_kind != "metric":
            # what the calibration needs but the camera height (ground samples, standing segments): once
            memo = self._stage("calib-memo", (self._grid_key, self.options.shapes_table), dict)
            depth, calib, note = calibrate_depth_map(depth, self.labels, self.specs, self.intr.focal_px,
                                                     self.intr.cx, self.intr.cy, self.options.camera_height_m,
                                                     memo=memo, up=self.camera.up if self.camera else None,
                                                     estimate_height=self.options.camera_height_from_objects)
            notes.append(note)
        noise = None
        if depth is not given:  # calibrated: the noise of the depth as given is the same for every camera height
            noise = self._stage("given-noise", (self._grid_key,), lambda: _noise_level(given))
        depth, sigma = _denoise(depth, notes, given, noise)
        return depth, calib, notes, sigma

    def _instances(self) -> tuple[Any, ...]:
        """Instances and their grouped pixels, interior, occlusion and ground contact (prepare)."""
        # what splitting needs but min_area (depth edges, each class's components): once per depth
        memo = self._stage("split-memo", self._dkey, dict)
        # each class's components depend on the labels alone: kept across depths (a new camera height)
        label_memo = self._stage("split-label-memo", (self._grid_key,), dict)
        fused = None if self.instances is None else fusion.fuse(  # one object per detected instance
            self.labels, self.names, self.specs, self.depth, self.instances, rows=self._rows, cols=self._cols,
            image_size=(self.w0, self.h0), min_area=self.min_area)
        inst, inst_label, info = fusion.split_with(self.labels, self.specs, self.depth, self.min_area, fused,
                                                   memo=memo, label_memo=label_memo)
        groups = group_pixels(inst, len(inst_label))
        px = gather(groups, self.depth)
        interior = hidden_bottom = contact = ground_px = None
        sharp = True
        if self.depth is not None:
            sharp = self.depth_sigma == 0.0 and edge_sharpness(self.depth) >= SHARP_EDGES
            interior = interior_mask(inst, edge_margin(self.h, self.w)).ravel()[groups.order]
            occluder = np.array([not (self.specs[k].flat or self.specs[k].role == "sky") for k in inst_label], dtype=bool)
            hidden_bottom = bottom_occlusion(inst, self.depth, occluder) > 0.5
            contact = placement.ground_contact(inst, np.array([self.specs[k].flat for k in inst_label], dtype=bool))
            ground_px = placement.ground_pixels(self.labels, np.array([sp.flat for sp in self.specs], dtype=bool))
        return inst_label, groups, px, interior, hidden_bottom, contact, ground_px, sharp, info

    def assemble(self, recursion: int, *, progress: Progress | None = None,
                 resegment: rec.Resegment | None | str = "keep") -> dict[str, Any]:
        """The scene at `recursion` from a prepared engine: the same dict a fresh build_scene with
        this recursion gives. Children are computed once per object and level and kept (a node's
        children are published only when complete, so a cancelled call leaves no half-built level):
        going 0 -> 1 -> 2 computes only the new level, 2 -> 1 and a repeat only copy. `resegment`:
        the hook for children computed now ("keep": the one given before)."""
        self.options = replace(self.options, recursion=recursion)
        _check_options(self.options)
        if progress is not None:
            self.progress = progress
        if not isinstance(resegment, str):
            self.resegment = resegment
        memo = getattr(self.resegment, "memo", None)
        if memo is not self._hook_memo:  # another memo (or none): answers cached for crops may differ
            for top in self._tops:
                top.kids = None
            self._hook_memo = memo
        kind = "none" if self.resegment is None else "replay" if getattr(self.resegment, "replay_only", False) else "live"
        self.namer, self.warnings = _Namer(), list(self._warnings0)
        objects = []
        for g, top in enumerate(self._tops):
            name = self.namer.top(top.obj["label"])
            obj, warnings = dict(top.obj), top.warnings
            if name != obj["name"]:  # a child's name took this one (labels with digits): rename
                obj, warnings = _renamed(obj, warnings, name)
            self.warnings.extend(warnings)
            obj["children"] = self._grow(top, 1, name, kind) if recursion > 0 else []
            objects.append(obj)
            if recursion > 0:
                self.progress("recursion", 0.9 + 0.05 * (g + 1) / len(self._tops))
        for i in self._sky_members:
            objects.append(self._sky(i, self.specs[int(self.inst_label[i])], self._far))
        self.progress("scene", 0.95)
        scene = self._scene(objects, self._plane, self.scale, self._cam_pose, self._far)
        self.progress("done", 1.0)
        return scene

    def _grow(self, node: _Node, level: int, name: str, kind: str) -> list[dict[str, Any]]:
        """The children (dicts, named now) of `node` at `level`, and theirs down to options.recursion;
        each node's children computed at most once for the hook kind that makes them exact."""
        if node.args is None:
            return []
        if node.kids is None or node.reuse not in _REUSABLE[kind]:
            kids, warnings, reuse = self._child_nodes(node)
            node.kids, node.kid_warnings, node.reuse = kids, warnings, reuse  # published complete
        self.warnings.extend(node.kid_warnings)
        out = []
        for j, kid in enumerate(node.kids, start=1):
            child = dict(kid.obj)
            child["name"] = self.namer.child(name, j)
            child["children"] = self._grow(kid, level + 1, child["name"], kind) if level < self.options.recursion else []
            out.append(child)
        return out


    def _ground_and_scale(self) -> tuple[PlaneFit | None, float]:
        plane = None
        if self.calib is not None:  # the calibration's flat ground: RANSAC's tight band can tilt in network noise
            plane = PlaneFit(self.calib.normal, self.calib.camera_height_m, self.calib.inlier_ratio, self.calib.n_ground)
        elif self.depth is not None:
            for roles in (("ground",), ("water",)):
                pts = self._points_of_roles(roles)
                if pts is not None:
                    plane = fit_plane(pts)
                if plane is not None:
                    break
        scale = 1.0
        if self.options.depth_kind != "metric" and self.depth is not None and self.calib is None:
            if plane is not None:
                scale = self.options.camera_height_m / plane.d
            else:
                scale = self._scale_from_priors()
        if plane is not None:
            plane = PlaneFit(plane.normal, plane.d * scale, plane.inlier_ratio, plane.n_points)
        if scale != 1.0 and self.px.depth is not None:  # new arrays: px and stats may be shared (_stage)
            self.px = replace(self.px, depth=self.px.depth * np.float32(scale))
            dstats = self.stats.depth.copy()
            dstats[:, :6] *= scale
            self.stats = replace(self.stats, depth=dstats)
        self.scale = scale
        return plane, scale

    def _points_of_roles(self, roles: tuple[str, ...]) -> np.ndarray | None:
        """Camera-frame points of the ground (or water) instances, strided to a bounded count."""
        idx = [i for i in range(self.groups.n) if self.specs[int(self.inst_label[i])].role in roles]
        total = sum(int(self.groups.counts()[i]) for i in idx)
        if total == 0:
            return None
        stride = max(1, total // MAX_GROUND_POINTS)
        parts = []
        for i in idx:
            sl = self.groups.span(i)
            u, v, d = self.px.u[sl][::stride], self.px.v[sl][::stride], self.px.depth[sl][::stride]
            ok = np.isfinite(d)
            parts.append(backproject(u[ok], v[ok], d[ok], self.intr))
        pts = np.concatenate(parts)
        return pts if len(pts) else None

    def _scale_from_priors(self) -> float:
        """Relative depth without ground: make trusted-height classes (people, cars, doors) their size."""
        f = self.intr.focal_px
        ratios = []
        for i in range(self.groups.n):
            spec = self.specs[int(self.inst_label[i])]
            med = self.stats.depth[i, 2]
            if not spec.ref or not np.isfinite(med):
                continue
            x0, y0, x1, y1 = self.stats.bbox[i]
            if y1 - y0 < 8 or y0 <= 0 or y1 >= self.h:  # cut by the frame: height unknown
                continue
            ratios.append(spec.size[1] * f / ((y1 - y0) * med))
        if ratios:
            self.warnings.append(f"no ground visible: relative depth scaled by class size priors ({len(ratios)} objects)")
            return float(np.median(ratios))
        self.warnings.append("no ground and no object of known size: relative depth left unscaled (units arbitrary)")
        return 1.0

    def _pose(self, plane: PlaneFit | None) -> tuple[Pose, str]:
        """(pose, where its pitch and roll came from): the vanishing points when trusted (a plane
        measured in metric depth wins), else the ground plane, else objects of known height, else
        level; the world turned to the scene's axes when the vanishing points give them."""
        measured = plane is not None and self.calib is None and self.options.depth_kind == "metric"
        if self.camera is not None and self.camera.up is not None and not measured:
            pitch, roll = angles_from_normal(np.asarray(self.camera.up))
            if plane is not None:
                return self._aligned(pose_from_angles(pitch, roll, plane.d)), "vanishing-points"
            h = self._height_from_objects() or self.options.camera_height_m
            self.warnings.append(f"no ground plane found: camera at {h:.2f} m, pitch {pitch:.1f} deg and roll "
                                 f"{roll:.1f} deg from the vanishing points")
            return self._aligned(pose_from_angles(pitch, roll, h)), "vanishing-points"
        if plane is not None:
            pitch, roll = angles_from_normal(plane.normal)
            return self._aligned(pose_from_angles(pitch, roll, plane.d)), "ground"
        h = self._height_from_objects() or self.options.camera_height_m
        pitch = self._pitch_from_priors(h) if self.depth is None else None
        if pitch is None:
            self.warnings.append(f"no ground plane found: camera assumed level at {h:.2f} m")
            return self._aligned(pose_from_angles(0.0, 0.0, h)), "level"
        self.warnings.append(f"no ground plane found: camera at {h:.2f} m, pitch {pitch:.1f} deg from objects of known height")
        return self._aligned(pose_from_angles(pitch, 0.0, h)), "objects"

    def _aligned(self, pose: Pose) -> Pose:
        """The world turned about +Y so the scene's first horizontal axis runs along world X or Z (a
        street along an axis, as a layout artist sets it up); unchanged without vanishing points."""
        if self.camera is None or not self.camera.horizontals:
            return pose
        a = pose.R @ np.asarray(self.camera.horizontals[0])
        alpha = math.degrees(math.atan2(-a[2], a[0]))  # Ry(alpha) turns +X onto the axis
        psi = -(((alpha + 45.0) % 90.0) - 45.0)
        if abs(psi) < 1e-9:
            return pose
        return Pose(R=euler_xyz_to_matrix(0.0, psi, 0.0) @ pose.R, T=pose.T)

    def _manhattan_yaw(self, bbox: np.ndarray, spec: ShapeSpec, k: int) -> float | None:
        """The yaw of the scene axis along which the object's own horizontal edges run (buildings,
        walls, fences, vehicles), or None (fit the yaw freely) where they are too few."""
        cam = self.camera
        if cam is None or not cam.edges or spec.role not in MANHATTAN_ROLES or len(cam.horizontals) < 2:
            return None
        e = np.asarray(cam.edges, dtype=np.float64)
        gs = self.gs
        gx, gy = e[:, 0] * gs, e[:, 1] * gs
        x0, y0, x1, y1 = (float(b) for b in bbox)
        inside = (gx >= x0) & (gx <= x1) & (gy >= y0) & (gy <= y1) & (e[:, 3] != 1) & (e[:, 3] >= 0)
        if not inside.any():
            return None
        rows = np.clip(gy[inside].astype(int), 0, self.h - 1)
        cols = np.clip(gx[inside].astype(int), 0, self.w - 1)
        mine = self.labels[rows, cols] == k
        axis, length = e[inside][mine, 3].astype(int), e[inside][mine, 2]
        if len(axis) < 2 or length.sum() < MANHATTAN_EDGES * (x1 - x0) / gs:
            return None
        j = 0 if length[axis == 0].sum() >= length[axis == 2].sum() else 1
        d = self.ctx.pose.R @ np.asarray(cam.horizontals[j])
        return math.degrees(math.atan2(-d[2], d[0]))

    def _pitch_from_priors(self, h: float) -> float | None:
        """No depth: the pitch that puts the feet of trusted-height objects (people, cars) on the
        ground, each seen at the distance its prior height implies. Median over objects."""
        f, cy = self.intr.focal_px, self.intr.cy
        pitches = []
        for i in range(self.groups.n):
            spec = self.specs[int(self.inst_label[i])]
            x0, y0, x1, y1 = (float(b) for b in self.stats.bbox[i])
            if not spec.ref or spec.standing is not True or y1 - y0 < 8 or y0 <= 0 or y1 >= self.h:
                continue
            z = f * spec.size[1] / (y1 - y0)
            a, b = -(y1 - cy) * z / f, z  # camera-frame foot: y = a, -z = b; need cos(p) a + sin(p) b = -h
            r = math.hypot(a, b)
            if r < h:
                continue
            base = math.atan2(b, a)
            cands = [base + math.acos(-h / r), base - math.acos(-h / r)]
            p = min((math.remainder(c, 2 * math.pi) for c in cands), key=abs)
            if abs(p) < math.radians(60):
                pitches.append(math.degrees(p))
        return float(np.median(pitches)) if pitches else None

    def _height_from_objects(self) -> float | None:
        """Level camera, metric depth, no ground class: standing objects' feet give the height."""
        if self.depth is None:
            return None
        feet = []
        for i in range(self.groups.n):
            spec = self.specs[int(self.inst_label[i])]
            if spec.standing is not True or spec.flat or spec.role == "sky":
                continue
            sl = self.groups.span(i)
            d = self.px.depth[sl]
            ok = np.isfinite(d)
            if ok.sum() < MIN_DEPTH_PIXELS:
                continue
            y = backproject(self.px.u[sl][ok], self.px.v[sl][ok], d[ok], self.intr)[:, 1]
            feet.append(-float(np.percentile(y, 2.0)))
        if feet and np.median(feet) > 0.1:
            return float(np.median(feet))
        return None

    # ---- objects ------------------------------------------------------------------------------

    def _world_points(self, u: np.ndarray, v: np.ndarray, d: np.ndarray | None, bbox: np.ndarray,
                      spec: ShapeSpec, interior: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
        """World points for a fit (strided), and whether they come from real depth.

        Depth networks blur occlusion edges: pixels near a segment's outline carry a mix of the
        object's and the background's depth ("flying pixels"). The object's depth range is taken
        from its interior (pixels away from the outline) when enough of it has depth, as the
        2nd..98th percentiles of log-depth plus half their spread; every pixel whose depth lies in that range
        is used, outline included, so the extents are not shrunk.
        """
        stride = -(-len(u) // MAX_FIT_POINTS)  # at most MAX_FIT_POINTS points
        u, v = u[::stride], v[::stride]
        if d is not None:
            d = d[::stride]
            ok = np.isfinite(d)
            if ok.sum() >= MIN_DEPTH_PIXELS:
                ref = ok
                if interior is not None:
                    inner = ok & interior[::stride]
                    if inner.sum() >= max(MIN_DEPTH_PIXELS, 0.25 * ok.sum()):
                        ref = inner
                lo, hi = percentiles(np.log(d[ref]), [2.0, 98.0])
                pad = 0.02 + 0.5 * (hi - lo)  # generous: a face seen at a grazing angle is a thin tail too
                with np.errstate(invalid="ignore", divide="ignore"):
                    logd = np.log(d)
                keep = ok & (logd >= lo - pad) & (logd <= hi + pad)
                if keep.sum() >= MIN_DEPTH_PIXELS:
                    return self.ctx.pose.to_world(backproject(u[keep], v[keep], d[keep], self.intr)), True
        # No depth: the pixels on an upright plane facing the camera at the guessed distance, so the
        # footprint is a line and the unseen depth comes from the class prior.
        z = self._guess_depth(bbox, spec)
        pose, intr = self.ctx.pose, self.intr
        x0, y0, x1, y1 = (float(b) for b in bbox)
        centre = pose.R @ np.array([((x0 + x1) / 2 - intr.cx) / intr.focal_px, -((y0 + y1) / 2 - intr.cy) / intr.focal_px, -1.0])
        normal = np.array([centre[0], 0.0, centre[2]])
        normal /= max(np.linalg.norm(normal), 1e-9)
        rays = pixel_rays(u + 0.5, v + 0.5, intr, pose.R)
        t = (z * float(normal @ centre)) / np.maximum(rays @ normal, 1e-6)
        return pose.T + rays * t[:, None], False

    def _guess_depth(self, bbox: np.ndarray, spec: ShapeSpec) -> float:
        """z-depth of an object without depth: where its bottom meets the ground, else its prior height."""
        x0, y0, x1, y1 = (float(b) for b in bbox)
        intr, pose = self.intr, self.ctx.pose
        if spec.standing is not False:  # feet on the ground: consistent with the camera, whatever the prior
            ray = pose.R @ np.array([((x0 + x1) / 2 - intr.cx) / intr.focal_px, -(y1 - intr.cy) / intr.focal_px, -1.0])
            if ray[1] < -1e-6:
                return float(np.clip(-pose.T[1] / ray[1], 0.5, 1000.0))
        return float(np.clip(intr.focal_px * spec.size[1] / max(y1 - y0, 1.0), 0.5, 1000.0))

    def _common(self, name: str, label: str, label_id: int, spec: ShapeSpec, lin: np.ndarray, count: int,
                bbox: np.ndarray, dstats: np.ndarray, conf: float) -> dict[str, Any]:
        lin = np.clip(lin, 0.0, 1.0)
        x0, y0, x1, y1 = (float(b) for b in bbox)
        sx, sy = self.ctx.sx, self.ctx.sy
        full_w, full_h = self.full_size
        eps = 1e-6  # grid -> analysed pixel scaling is exact up to rounding
        bbox_full = [max(0, math.floor(x0 * sx + eps)), max(0, math.floor(y0 * sy + eps)),
                     min(full_w, math.ceil(x1 * sx - eps)), min(full_h, math.ceil(y1 * sy - eps))]
        keys = ("min", "p05", "median", "mean", "p95", "max")
        depth_m: dict[str, Any] = {"valid_pixels": int(round(dstats[6] * self.px_scale))}
        if dstats[6] > 0:
            depth_m = {k: _r(v, 4) for k, v in zip(keys, dstats[:6], strict=True)} | depth_m
        return {
            "name": name, "label": label, "label_id": int(label_id), "role": spec.role, "shape": spec.shape,
            "translate": [0.0, 0.0, 0.0], "rotate": [0.0, 0.0, 0.0], "size": [1.0, 1.0, 1.0],
            "color_srgb": _r(linear_to_srgb(lin)), "color_linear": _r(lin),
            "pixels": int(round(count * self.px_scale)), "bbox_px": bbox_full, "depth_m": depth_m,
            "confidence": None if not np.isfinite(conf) else _r(np.clip(conf, 0, 1), 4),
            "thickness_source": "none", "parts": [], "children": [],
        }

    def _members(self, members: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Positions (into the grouped arrays) of the pixels of one or more instances, and their
        count, bounding box, depth summary and mean confidence."""
        st = self.stats
        if len(members) == 1:
            i = members[0]
            sl = self.groups.span(i)
            return np.arange(sl.start, sl.stop), st.bbox[i], st.depth[i], st.confidence[i]
        pos = np.concatenate([np.arange(self.groups.span(i).start, self.groups.span(i).stop) for i in members])
        bb = st.bbox[members]
        bbox = np.array([bb[:, 0].min(), bb[:, 1].min(), bb[:, 2].max(), bb[:, 3].max()])
        dstats = depth_summary(self.px.depth[pos]) if self.px.depth is not None else np.array([np.nan] * 6 + [0.0])
        w = st.count[members].astype(np.float64)
        conf = float(np.sum(st.confidence[members] * w) / w.sum())
        return pos, bbox, dstats, conf

    def _refine_bbox(self, k: int, bbox: np.ndarray) -> np.ndarray:
        """A grid bounding box made exact in analysed pixels (returned in grid units, floats).

        The grid samples every 1/gs-th analysed pixel, so the segment's true edge lies between the
        sampled pixel at the grid box's edge and the next sampled one: the strip in between is
        searched for class k in the analysed labels (a few pixels wide, never the image)."""
        if self.gs == 1.0 or self._rows is None or self._cols is None:
            return bbox
        rows, cols, lab = self._rows, self._cols, self.labels0
        gx0, gy0, gx1, gy1 = (int(b) for b in bbox)
        if gx1 <= gx0 or gy1 <= gy0:
            return bbox
        ax0, ax1 = int(cols[gx0]), int(cols[gx1 - 1]) + 1  # sampled extent (analysed pixels)
        ay0, ay1 = int(rows[gy0]), int(rows[gy1 - 1]) + 1
        lx = int(cols[gx0 - 1]) + 1 if gx0 > 0 else 0  # the true extent lies within [lx, hx)
        hx = int(cols[gx1]) if gx1 < len(cols) else self.w0
        ly = int(rows[gy0 - 1]) + 1 if gy0 > 0 else 0
        hy = int(rows[gy1]) if gy1 < len(rows) else self.h0
        if ax0 > lx:
            hit = np.flatnonzero((lab[ly:hy, lx:ax0] == k).any(axis=0))
            ax0 = lx + int(hit[0]) if len(hit) else ax0
        if hx > ax1:
            hit = np.flatnonzero((lab[ly:hy, ax1:hx] == k).any(axis=0))
            ax1 = ax1 + int(hit[-1]) + 1 if len(hit) else ax1
        if ay0 > ly:
            hit = np.flatnonzero((lab[ly:ay0, lx:hx] == k).any(axis=1))
            ay0 = ly + int(hit[0]) if len(hit) else ay0
        if hy > ay1:
            hit = np.flatnonzero((lab[ay1:hy, lx:hx] == k).any(axis=1))
            ay1 = ay1 + int(hit[-1]) + 1 if len(hit) else ay1
        return np.array([ax0, ay0, ax1, ay1], dtype=np.float64) * self.gs

    def _fit(self, pos: np.ndarray, bbox: np.ndarray, spec: ShapeSpec, hidden: bool, k: int) -> tuple[Box, str, bool]:
        """Oriented box of the pixels at `pos` of class `k` (before covering the segment)."""
        u, v = self.px.u[pos], self.px.v[pos]
        d = self.px.depth[pos] if self.px.depth is not None else None
        interior = self.interior[pos] if self.interior is not None else None
        pts, measured = self._world_points(u, v, d, bbox, spec, interior)
        yaw = self._manhattan_yaw(bbox, spec, k)
        fit = dict(bottom_hidden=hidden, sharp=self.sharp and measured, depth_sigma=self.depth_sigma if measured else 0.0)
        if yaw is not None and spec.role in SNAP_ONLY_ROLES:  # a car may stand at an angle: only when close
            box, source = fit_box(pts, spec, self.ctx.pose.position, **fit)  # type: ignore[arg-type]
            if abs((box.yaw - yaw + 45.0) % 90.0 - 45.0) > SNAP_DEG:
                return box, source, measured
        box, source = fit_box(pts, spec, self.ctx.pose.position, yaw=yaw, **fit)  # type: ignore[arg-type]
        return box, source, measured

    def _merge_groups(self) -> list[list[int]]:
        """Instances to build as one object. An object partly hidden behind a nearer one (a car
        behind a lamp post) is cut into separate segments of its class; their boxes, completed
        behind the occluder by the fit, overlap. Same class, overlapping boxes (20 % of the smaller)
        and similar median depth (within 25 %) -> one object, fitted on all the pixels."""
        n = self.groups.n
        parent = list(range(n))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        if self.depth is not None:
            by_label: dict[int, list[int]] = {}
            for i in range(n):
                spec = self.specs[int(self.inst_label[i])]
                if (not (spec.flat or spec.role in ("sky", "wall", "ceiling")) and self.stats.depth[i, 6] >= MIN_DEPTH_PIXELS
                        and self.inst_info[i] is None):  # a detected instance is one object already
                    by_label.setdefault(int(self.inst_label[i]), []).append(i)
            for k, idx in by_label.items():
                if len(idx) < 2 or len(idx) > MAX_MERGE_CANDIDATES:
                    continue
                boxes = {}
                for i in idx:
                    pos, bbox, _, _ = self._members([i])
                    hidden = bool(self.hidden_bottom[i]) if self.hidden_bottom is not None else False
                    self._fits[i] = self._fit(pos, bbox, self.specs[k], hidden, k)  # reused by _object
                    boxes[i] = self._fits[i][0]
                for x in range(len(idx)):
                    for y in range(x + 1, len(idx)):
                        i, j = idx[x], idx[y]
                        di, dj = self.stats.depth[i, 2], self.stats.depth[j, 2]
                        if abs(math.log(di / dj)) > math.log(1.25):
                            continue
                        small = min(np.prod(boxes[i].size), np.prod(boxes[j].size))
                        if box_intersection(boxes[i], boxes[j]) > 0.2 * small or (
                                _fits_prior(boxes[i], boxes[j], self.specs[k]) and self._gap_occluded(i, j)):
                            parent[root(i)] = root(j)
        out: dict[int, list[int]] = {}
        for i in range(n):
            out.setdefault(root(i), []).append(i)
        return sorted(out.values(), key=lambda g: g[0])

    def _gap_occluded(self, i: int, j: int) -> bool:
        """The image gap between two segments (side by side, or one above the other) is mostly
        covered by something nearer than both: they are one object seen around an occluder."""
        a, b = self.stats.bbox[i], self.stats.bbox[j]
        near = 0.9 * min(self.stats.depth[i, 0], self.stats.depth[j, 0])
        rows = (max(a[1], b[1]), min(a[3], b[3]))
        cols = (max(a[0], b[0]), min(a[2], b[2]))
        if rows[1] > rows[0] and cols[0] >= cols[1]:  # side by side: the gap is the columns between
            gap = self.depth[rows[0]:rows[1], min(a[2], b[2]):max(a[0], b[0])]
        elif cols[1] > cols[0] and rows[0] >= rows[1]:  # one above the other
            gap = self.depth[min(a[3], b[3]):max(a[1], b[1]), cols[0]:cols[1]]
        else:
            return False
        if gap.size == 0:
            return False
        with np.errstate(invalid="ignore"):
            return bool(np.mean(gap * self.scale < near) >= 0.7)

    def _object(self, members: list[int], spec: ShapeSpec) -> dict[str, Any] | None:
        k = int(self.inst_label[members[0]])
        st = self.stats
        pos, bbox, dstats, conf = self._members(members)
        bbox = self._refine_bbox(k, bbox)
        count = int(st.count[members].sum())
        if len(members) == 1 or self.options.color_stat == "mean":
            color = (st.color_linear[members] * st.count[members][:, None]).sum(axis=0) / max(count, 1)
        else:
            color = pixel_color(self.rgb.reshape(-1, 3)[self.groups.order[pos]], self.options.color_stat)
        obj = self._common(self.namer.top(self.names[k]), self.names[k], k, spec, color, count, bbox, dstats, conf)
        if self.inst_info[members[0]] is not None:
            obj["instance"] = dict(self.inst_info[members[0]])
        u, v = self.px.u[pos], self.px.v[pos]
        d = self.px.depth[pos] if self.px.depth is not None else None
        if spec.flat:
            self._place_plane(obj, u, v, d)
            return obj
        hidden = bool(self.hidden_bottom[members].any()) if self.hidden_bottom is not None else False
        if len(members) == 1 and members[0] in self._fits:  # fitted already by _merge_groups
            box, source, measured = self._fits[members[0]]
        else:
            box, source, measured = self._fit(pos, bbox, spec, hidden, k)
        if measured and self.options.depth_kind != "metric" and placement.ENABLED:  # network depth (placement.py)
            box, source, rec_ = placement.place(
                box, source, spec, bbox, placement.foot_column(u, v, float(bbox[1]), float(bbox[3])), float(dstats[2]),
                contact_row=int(self.contact[members].max()), limited=hidden or float(bbox[3]) >= self.h - 0.5,
                pose=self.ctx.pose, intr=self.intr, has_ground=self.ctx.has_ground, u=u, v=v, ground_px=self.ground_px)
            if rec_ is not None:
                obj["placement"] = rec_
        frozen = (1,) if spec.role == "ceiling" else (2,) if spec.slab else ()
        box = cover_bbox(box, bbox, self.ctx.pose, self.intr, keep_bottom=box.bottom <= 1e-6, frozen=frozen)
        self._apply_box(obj, box, spec, source if measured else "prior")
        self._root_args = (box, spec, pos)  # its children come in assemble (_child_nodes)
        return obj

    def _apply_box(self, obj: dict[str, Any], box: Box, spec: ShapeSpec, source: str) -> None:
        obj["translate"], obj["rotate"], obj["size"] = _r(box.center), [0.0, _r(box.yaw), 0.0], _r(box.size)
        obj["thickness_source"] = source
        if spec.trunk:  # canopy sphere on a trunk: the object is the canopy, the trunk a part
            cx, _, cz = box.center
            h, bottom = box.size[1], box.bottom
            canopy_lo = bottom + 0.35 * h
            obj["translate"] = _r((cx, (canopy_lo + bottom + h) / 2, cz))
            obj["size"] = _r((box.size[0], bottom + h - canopy_lo, box.size[2]))
            trunk_d = float(np.clip(0.12 * min(box.size[0], box.size[2]), 0.08, 1.5))
            trunk_h = 0.35 * h + 0.1 * h  # reaches into the canopy
            obj["parts"] = [{
                "name": obj["name"] + "_trunk", "shape": "cylinder",
                "translate": _r((cx, bottom + trunk_h / 2, cz)), "rotate": [0.0, _r(box.yaw), 0.0],
                "size": _r((trunk_d, trunk_h, trunk_d)),
                "color_srgb": _r(linear_to_srgb(np.array([0.09, 0.05, 0.03]))),
                "color_linear": [0.09, 0.05, 0.03],
            }]

    def _place_plane(self, obj: dict[str, Any], u: np.ndarray, v: np.ndarray, d: np.ndarray | None) -> None:
        """One horizontal plane at y = 0 covering where the class's pixel rays meet the ground."""
        intr, pose = self.intr, self.ctx.pose
        stride = -(-len(u) // MAX_FIT_POINTS)  # at most MAX_FIT_POINTS points
        us, vs = u[::stride], v[::stride]
        rays = pixel_rays(us + 0.5, vs + 0.5, intr, pose.R)
        down = rays[:, 1] < -1e-6
        cap = 1000.0
        if d is not None and np.isfinite(d).any():
            cap = float(np.nanpercentile(d, 99.5)) * 1.05
        obj["thickness_source"] = "none"
        if not down.any():
            self.warnings.append(f"{obj['name']}: no pixel below the horizon, plane placed under the camera")
            obj["translate"], obj["size"] = [0.0, 0.0, -5.0], [10.0, 0.0, 10.0]
            return
        t = np.minimum(-pose.T[1] / rays[down, 1], cap)  # z-depth along each ray (cam z component is -1)
        # rays in world: the camera-frame z of a ray point is -t; capping t caps the distance
        hits = pose.T + rays[down] * t[:, None]
        (x_lo, x_hi), (z_lo, z_hi) = percentiles(np.stack([hits[:, 0], hits[:, 2]]), [0.5, 99.5])
        obj["translate"] = _r(((x_lo + x_hi) / 2, 0.0, (z_lo + z_hi) / 2))
        obj["size"] = _r((max(x_hi - x_lo, 0.01), 0.0, max(z_hi - z_lo, 0.01)))

    def _far_distance(self, objects: list[dict[str, Any]]) -> float:
        cam = self.ctx.pose.position
        far = 0.0
        for o in objects:
            half = np.linalg.norm(o["size"]) / 2.0
            far = max(far, float(np.linalg.norm(np.asarray(o["translate"]) - cam) + half))
        return max(MIN_SKY_DISTANCE_M, 1.5 * far)

    def _sky(self, i: int, spec: ShapeSpec, far: float) -> dict[str, Any]:
        """Backdrop plane facing the camera at `far`, sized to the sky's image region."""
        k = int(self.inst_label[i])
        st = self.stats
        obj = self._common(self.namer.top(self.names[k]), self.names[k], k, spec, st.color_linear[i],
                           int(st.count[i]), st.bbox[i], st.depth[i], st.confidence[i])
        x0, y0, x1, y1 = (float(b) for b in st.bbox[i])
        intr, pose = self.intr, self.ctx.pose
        f = intr.focal_px
        centre_cam = np.array([((x0 + x1) / 2 - intr.cx) * far / f, -((y0 + y1) / 2 - intr.cy) * far / f, -far])
        rot = pose.R @ np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # plane normal +Y -> camera +Z
        obj["shape"] = "plane"
        obj["translate"] = _r(pose.to_world(centre_cam))
        obj["rotate"] = _r(matrix_to_euler_xyz(rot))
        obj["size"] = _r(((x1 - x0) * far / f, 0.0, (y1 - y0) * far / f))
        return obj

    # ---- recursion ----------------------------------------------------------------------------

    def _child_nodes(self, node: _Node) -> tuple[list[_Node], tuple[str, ...], str]:
        """`_children` of a node (a top-level object's pixels gathered from its positions), with the
        warnings it emitted and what the resegment hook did for its crop (see _REUSABLE)."""
        assert node.args is not None
        if len(node.args) == 3:
            box, spec, pos = node.args
            u, v = self.px.u[pos], self.px.v[pos]
            d = self.px.depth[pos] if self.px.depth is not None else None
            rgb = self.rgb.reshape(-1, 3)[self.groups.order[pos]]
            step, clip = 1, None
        else:
            box, spec, u, v, d, rgb, step, clip = node.args
        n_warn, self._hook_state = len(self.warnings), "any"
        kids = self._children(node.obj, box, spec, u, v, d, rgb, step, clip)
        warnings = tuple(self.warnings[n_warn:])
        del self.warnings[n_warn:]
        return kids, warnings, self._hook_state

    def _children(self, parent: dict[str, Any], box: Box, spec: ShapeSpec, u: np.ndarray, v: np.ndarray,
                  d: np.ndarray | None, rgb: np.ndarray, step: int = 1,
                  clip: np.ndarray | None = None) -> list[_Node]:
        """Children of an object from its pixels (grid coordinates u, v), unnamed, without their own
        children (each node keeps what computing them needs). Pixels on a lattice of
        spacing `step` stand for step x step pixels each: an object of more than
        MAX_SPLIT_PIXELS pixels is split on such a lattice (counts, colours, depths and fits from
        the lattice pixels), so recursion costs O(objects), whatever their size. Children's boxes
        stay inside `clip` (the parent's grid bounding box)."""
        min_child = max(self.min_area, 16)
        if len(u) * step * step < 4 * min_child:
            return []
        if clip is None:
            clip = np.array([u.min(), v.min(), u.max() + 1, v.max() + 1])
        groups, names = self._resegment(u, v, rgb, step)
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
            return []
        children = []
        for idx in pieces:
            g = int(groups[idx[0]])
            label = names[g] if names is not None else parent["label"]
            cspec = self.table.lookup(label) if names is not None else spec
            cu, cv = u[idx], v[idx]
            cd = d[idx] if d is not None else None
            bbox = np.array([cu.min(), cv.min(), min(int(cu.max()) + step, int(clip[2])),
                             min(int(cv.max()) + step, int(clip[3]))])
            dstats = depth_summary(cd) if cd is not None else np.array([np.nan] * 6 + [0.0])
            dstats[6] *= weight
            conf = float(np.mean(self.confidence[cv, cu])) if self.confidence is not None else float("nan")
            child = self._common("", label, parent["label_id"], cspec,
                                 pixel_color(rgb[idx], self.ctx.color_stat), len(idx) * weight, bbox, dstats, conf)
            child["pixels"] = min(child["pixels"], parent["pixels"])
            child["depth_m"]["valid_pixels"] = min(child["depth_m"]["valid_pixels"], child["pixels"])
            pts, measured = self._world_points(cu, cv, cd, bbox, cspec)
            cbox, source = _child_box(pts, box)
            child["shape"] = cspec.shape if not cspec.flat and cspec.role != "sky" else "cube"
            child["translate"], child["rotate"], child["size"] = _r(cbox.center), [0.0, _r(cbox.yaw), 0.0], _r(cbox.size)
            child["thickness_source"] = source if measured else "prior"
            children.append(_Node(child, (cbox, cspec, cu, cv, cd, rgb[idx], step, bbox), []))
        return children

    def _resegment(self, u: np.ndarray, v: np.ndarray, rgb: np.ndarray,
                   step: int = 1) -> tuple[np.ndarray | None, list[str] | None]:
        """Sub-labels of the object's pixels from the hook (None: use the colour/depth split).
        Lattice pixels (`step` > 1) fill their step x step cell of the mask."""
        if self.resegment is None:
            self._hook_state = "none"
            return None, None
        x0, y0 = int(u.min()), int(v.min())
        hh = min(int(v.max()) + step, self.h) - y0
        ww = min(int(u.max()) + step, self.w) - x0
        crop_rgb = self.rgb[y0:y0 + hh, x0:x0 + ww]
        mask = np.zeros((hh, ww), dtype=bool)
        for dy in range(step):
            for dx in range(step):
                mask[np.minimum(v - y0 + dy, hh - 1), np.minimum(u - x0 + dx, ww - 1)] = True
        self._hook_state = "error"
        try:
            out = self.resegment(crop_rgb, mask)
        except Exception as exc:  # a failing hook must not lose the scene
            self.warnings.append(f"resegment failed ({type(exc).__name__}: {exc}); colour/depth split used")
            return None, None
        if out is None:
            self._hook_state = "miss" if getattr(self.resegment, "replay_only", False) else "live-none"
            return None, None
        self._hook_state = "hit"
        sub, names = out
        sub = np.asarray(sub)
        if sub.shape != (hh, ww) or not names:
            self.warnings.append("resegment returned labels of the wrong shape; colour/depth split used")
            return None, None
        g = sub[v - y0, u - x0].astype(np.int64)
        g = np.where((g >= 0) & (g < len(names)), g, -1)
        return g, [str(n) for n in names]

    # ---- output -------------------------------------------------------------------------------

    def _scene(self, objects: list[dict[str, Any]], plane: PlaneFit | None, scale: float, pose: Pose,
               far: float) -> dict[str, Any]:
        full_w, full_h = self.full_size
        sx0, sy0 = full_w / self.w0, full_h / self.h0  # the analysed camera, not the grid's
        full_intr = Intrinsics(self.intr0.focal_px * sx0, self.intr0.cx * sx0, self.intr0.cy * sy0,
                               full_w, full_h, self.intr0.source)
        film = maya_film(full_intr)
        rx, ry, rz = matrix_to_euler_xyz(pose.R)
        camera = {
            "name": "img2maya_cam", "translate": _r(pose.T), "rotate": _r((rx, ry, rz)),
            "focal_length_mm": _r(film["focal_length_mm"]), "horizontal_aperture_mm": _r(film["horizontal_aperture_mm"]),
            "vertical_aperture_mm": _r(film["vertical_aperture_mm"]), "focal_px": _r(full_intr.focal_px),
            "principal_px": _r((full_intr.cx, full_intr.cy)), "width": full_w, "height": full_h,
            "focal_source": self.intr.source, "fov_horizontal_deg": _r(full_intr.hfov_deg),
            "near_clip_m": NEAR_CLIP_M, "far_clip_m": _r(2.0 * far, 2),
            "orientation_source": self._orientation,
        }
        if self.camera_record is not None:
            camera["calibration"] = self.camera_record.record(sx0)
        pitch, roll = rx, rz
        if abs(ry) > 1e-9:  # a turned world: pitch and roll against gravity, not Euler angles
            pitch, roll = angles_from_normal(pose.R.T @ np.array([0.0, 1.0, 0.0]))
        if plane is not None:
            ground = {"found": True, "method": "ransac", "camera_height_m": _r(plane.d), "pitch_deg": _r(pitch),
                      "roll_deg": _r(roll), "inlier_ratio": _r(plane.inlier_ratio, 4),
                      "plane_camera": _r([*plane.normal, plane.d]), "scale": _r(scale)}
        elif self._orientation == "vanishing-points":
            ground = {"found": False, "method": "vanishing-points", "camera_height_m": _r(pose.T[1]),
                      "pitch_deg": _r(pitch), "roll_deg": _r(roll), "scale": _r(scale)}
        else:
            ground = {"found": False, "method": "prior", "camera_height_m": _r(pose.T[1]), "pitch_deg": 0.0,
                      "roll_deg": 0.0, "scale": _r(scale)}
        if self.calib is not None:
            ground.update(method="ground-calibrated", scale=_r(self.calib.scale), depth_calibration=self.calib.record())
        source = dict(self.source)
        source.setdefault("width", full_w)
        source.setdefault("height", full_h)
        source["analysis_width"], source["analysis_height"] = self.w0, self.h0
        settings = asdict(self.options)
        settings["min_area_px_effective"] = int(round(self.min_area * self.px_scale))
        settings["analysis_grid_px"] = [self.w, self.h]
        return {
            "schema": "img2maya/scene@1", "units": "m", "up_axis": "y",
            "generator": f"img2maya {__version__}", "source": source, "camera": camera, "ground": ground,
            "settings": settings, "warnings": list(dict.fromkeys(self.warnings)), "objects": objects,
        }


def _fits_prior(a: Box, b: Box, spec: ShapeSpec) -> bool:
    """Could two boxes be pieces of one object of this class? Their joint extent along the first
    box's axes must not exceed 1.3 x the class's largest prior dimension (two parked cars in a row
    are 9 m long, one is 4.5)."""
    if spec.depth_from_width:
        return True
    local = a.to_local(np.concatenate([a.corners(), b.corners()]))
    return float(np.ptp(local[:, [0, 2]], axis=0).max()) <= 1.3 * max(spec.size)


def _child_box(points: np.ndarray, parent: Box) -> tuple[Box, str]:
    """A child's box in its parent's frame (same yaw): robust spans, an axis the child does not
    measure (seen edge-on) takes the parent's full extent, everything clamped inside the parent."""
    from .boxes import P_HI, P_LO, _widen

    local = parent.to_local(points)
    half = np.asarray(parent.size) / 2.0
    lo, hi = np.empty(3), np.empty(3)
    source = "measured"
    q = percentiles(np.ascontiguousarray(local.T), [P_LO, P_HI])  # robust spans of the 3 axes at once
    for ax in range(3):
        a, b = _widen(q[ax, 0], q[ax, 1])
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
    return Box(center=tuple(centre), yaw=parent.yaw, size=tuple(hi - lo)), source


def build_scene(rgb: np.ndarray, labels: np.ndarray, label_names: list[str], depth: np.ndarray | None,
                intr: Intrinsics, options: SceneOptions, *, source: dict, confidence: np.ndarray | None = None,
                full_size: tuple[int, int] | None = None, progress: Progress | None = None,
                resegment: rec.Resegment | None = None) -> dict[str, Any]:
    """A valid scene@1 dict from analysis-resolution arrays (see docs/ARCHITECTURE.md).

    `intr` is at analysis resolution; `full_size` (W, H) of the original photo sets the units of
    bbox_px and of the camera numbers. Bad inputs raise UserError with one line.
    """
    return SceneEngine(rgb, labels, label_names, depth, intr, options, source=source, confidence=confidence,
                       full_size=full_size, progress=progress, resegment=resegment).run()
