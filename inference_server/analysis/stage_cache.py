"""Stage results shared by engines built from the SAME inputs with other options or another camera.

The user paths: the panel's camera-height and FOV fields. A server's `regenerate` with a new camera
height prepares a new engine on the warm one's `stages` (pipeline.prepare): the grid, and with metric
depth the depth preparation and the instances, do not depend on the height and are reused; with
relative depth the calibration's inputs that do not depend on it (ground samples, standing segments,
the given depth's noise) and each label map's class components are. A typed FOV (another camera:
intrinsics and the lines' estimate) reuses what the camera does not touch: the checked maps, the
grid's samples (under the new camera), the ground samples and standing segments, the given depth's
noise and the class components. Every slot is keyed by a named tuple of the options (and camera)
its stage depends on, and the key of the stage it is built on, so another change reuses exactly
what it does not touch, and never a stale result.
Results are frozen and never changed in place; each slot keeps its `KEEP` most recently used keys.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import numpy as np

if TYPE_CHECKING:
    from ..conventions import Intrinsics
    from .depth_calib import GroundData
    from .depth_stage import DepthStage
    from .grid import Checked, Grid
    from .grouping import Grouping
    from .instances import ClassComponents

K = TypeVar("K")
V = TypeVar("V")
KEEP = 2
_MISSING: Any = object()


class SampleKey(NamedTuple):
    """What the grid's samples (labels, colours, depth as given) depend on: not the camera."""

    max_pixels: int
    depth_kind: str


class GridKey(NamedTuple):
    sample: SampleKey
    camera: Intrinsics  # the analysed image's camera (the grid's is it scaled)


class GroundKey(NamedTuple):
    sample: SampleKey
    shapes_table: str | None


class DepthKey(NamedTuple):
    grid: GridKey
    shapes_table: str | None
    camera_height_m: float | None  # relative / disparity depth only: the calibration's height ...
    height_from_objects: bool | None  # ... and whether objects of known height may set it
    up: tuple[float, float, float] | None  # the lines' world up, when trusted (the calibration's ground)


class ComponentsKey(NamedTuple):
    sample: SampleKey
    shapes_table: str | None
    labels: int  # hash of the label map split (the grid's, or what the fused instances left)


class InstancesKey(NamedTuple):
    depth: DepthKey
    min_area: int
    color_stat: str


class Slot(Generic[K, V]):
    """One stage's results by key, the most recently used last."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, make: Callable[[], V]) -> V:
        """make(), or its result for an earlier engine of the same inputs and `key`."""
        with self._lock:
            value = self._items.get(key, _MISSING)
        if value is _MISSING:
            value = make()  # outside the lock: engines on other threads may share the cache
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > KEEP:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)


class StageCache:
    """The shared stages of engines whose inputs (photo, labels, depth and confidence arrays, label
    names, size, instances) are the same objects (arrays by identity, the rest by equality); the
    camera is in the keys of the stages that depend on it."""

    def __init__(self, inputs: tuple[Any, ...]) -> None:
        self.inputs = inputs
        lock = threading.Lock()
        self.checked: Slot[tuple[()], Checked] = Slot(lock)
        self.grid: Slot[SampleKey, Grid] = Slot(lock)  # the samples; the camera: grid.with_camera
        self.ground: Slot[GroundKey, GroundData] = Slot(lock)
        self.given_noise: Slot[SampleKey, float] = Slot(lock)
        self.depth: Slot[DepthKey, DepthStage] = Slot(lock)
        self.components: Slot[ComponentsKey, ClassComponents] = Slot(lock)
        self.instances: Slot[InstancesKey, Grouping] = Slot(lock)

    @classmethod
    def for_inputs(cls, cache: StageCache | None, inputs: tuple[Any, ...]) -> StageCache:
        """`cache` when it was made for these inputs, else a new, empty one."""
        if cache is not None and len(cache.inputs) == len(inputs) and all(
                a is b or (not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray) and a == b)
                for a, b in zip(cache.inputs, inputs, strict=True)):
            return cache
        return cls(inputs)
