"""What the server keeps warm between jobs besides the networks: prepared engines (an LRU bounded in
count and estimated memory) and the re-segmentation network's answers (`ResegmentMemo`)."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

ENGINE_MAX_BYTES = 768 * 1024**2  # prepared engines kept warm: at most this much memory (estimated)


class EngineKey(NamedTuple):
    """What a prepared engine depends on: the network output (its cache key), the photo's path, the
    options but `recursion` (`options_key`) and the camera fields of the request."""

    network: str
    photo: str
    options: str
    focal_px: float | None
    fov_deg: float | None

    def inputs(self) -> tuple[Any, ...]:
        """The key without the options and the camera: engines that share it can share stages (a
        sibling; the stage cache keys what depends on the camera by it)."""
        return self.network, self.photo


def options_key(options: Any) -> str:
    """The analysis options but `recursion`, as a key (a dataclass, or a test pipeline's dict)."""
    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        options = dataclasses.replace(options, recursion=0)
    elif isinstance(options, dict):
        options = {k: v for k, v in options.items() if k != "recursion"}
    return repr(options)


@dataclasses.dataclass
class WarmEngine:
    engine: Any
    nbytes: int  # estimated (estimate_nbytes)
    deepest: int  # the deepest recursion assembled: its size is estimated again when that grows


class WarmEngines:
    """The last few prepared engines, most recent last. The newest always stays; older ones go beyond
    `count` engines or `max_bytes` of estimated memory. Used by the worker thread only."""

    def __init__(self, count: int = 3, max_bytes: int = ENGINE_MAX_BYTES) -> None:
        self.count, self.max_bytes = max(0, count), max_bytes
        self._entries: OrderedDict[EngineKey, WarmEngine] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[WarmEngine]:
        """Oldest first."""
        return list(self._entries.values())

    def get(self, key: EngineKey) -> Any:
        """The engine prepared for `key` (now the most recent), or None."""
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found.engine

    def sibling(self, key: EngineKey) -> Any:
        """The most recent engine of the same network output and photo as `key`, or None."""
        inputs = key.inputs()
        return next((e.engine for k, e in reversed(self._entries.items()) if k.inputs() == inputs), None)

    def keep(self, key: EngineKey, engine: Any, recursion: int) -> None:
        """Keep `engine` (now the most recent; assembled up to `recursion`), then drop the oldest beyond
        the count or the memory bound."""
        found = self._entries.get(key)
        if found is None or found.engine is not engine:
            self._entries[key] = WarmEngine(engine, estimate_nbytes(engine), recursion)
        elif recursion > found.deepest:  # deeper children were made
            found.nbytes, found.deepest = estimate_nbytes(engine), recursion
        self._entries.move_to_end(key)
        while len(self._entries) > 1 and (len(self._entries) > self.count or sum(
                e.nbytes for e in self._entries.values()) > self.max_bytes):
            self._entries.popitem(last=False)

    def drop(self, key: EngineKey) -> None:
        """Forget `key`'s engine (one that failed is not trusted again)."""
        self._entries.pop(key, None)


def estimate_nbytes(root: Any, limit: int = 200_000) -> int:
    """Bytes of the numpy arrays reachable from `root` through attributes, lists and tuples (each
    array counted once; a view counts its base), visiting at most `limit` objects. The engine does not
    report its size, and what it holds grows with the recursion assembled (its children's masks):
    this walk counts them. Dicts (the engine's scene dicts: rounded numbers, no arrays) are not
    walked, which keeps it at a few ms."""
    import numpy as np

    seen: set[int] = set()
    total, stack, visited = 0, [root], 0
    while stack and visited < limit:
        obj = stack.pop()
        visited += 1
        if isinstance(obj, np.ndarray):
            base = obj.base if isinstance(obj.base, np.ndarray) else obj
            if id(base) not in seen:
                seen.add(id(base))
                total += base.nbytes
            continue
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool) or obj is None:
            continue
        seen.add(id(obj))
        if isinstance(obj, list | tuple | set):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and not callable(obj):
            stack.extend(vars(obj).values())
    return total


class ResegmentMemo:
    """The re-segmentation network's answers per (cache key, crop), kept in memory.

    Why: `regenerate` must never run a network, yet recursion should give the same sub-objects as the
    `analyze` that ran the network on the same crops. `analyze` records each answer; `regenerate`
    replays them and returns None for a crop never seen (the analysis then falls back to its own
    colour/depth split)."""

    def __init__(self, photos: int = 4) -> None:
        self._tables: OrderedDict[str, dict[bytes, Any]] = OrderedDict()
        self._photos = photos
        self._lock = threading.Lock()

    def _table(self, key: str, create: bool) -> dict[bytes, Any] | None:
        with self._lock:
            table = self._tables.get(key)
            if table is None and create:
                table = self._tables[key] = {}
                while len(self._tables) > self._photos:
                    self._tables.popitem(last=False)
            if table is not None:
                self._tables.move_to_end(key)
            return table

    @staticmethod
    def _crop_id(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        import hashlib

        import numpy as np

        h = hashlib.blake2b(digest_size=16)
        for value in (*args, *sorted(kwargs.items())):
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
                h.update(value[0].encode())
                value = value[1]
            if isinstance(value, np.ndarray):
                h.update(str((value.shape, value.dtype.str)).encode())
                h.update(np.ascontiguousarray(value).tobytes())
            else:
                h.update(repr(value).encode())
        return h.digest()

    def recording(self, key: str, fn: Callable[..., Any] | None) -> Callable[..., Any] | None:
        """`fn` wrapped so that its answers are remembered under `key` (None passes through)."""
        if fn is None:
            return None
        table = self._table(key, create=True)
        assert table is not None

        def resegment(*args: Any, **kwargs: Any) -> Any:
            crop = self._crop_id(args, kwargs)
            if crop not in table:
                table[crop] = fn(*args, **kwargs)
            return table[crop]

        resegment.memo = table  # type: ignore[attr-defined]  # a warm engine's children are tied to it
        return resegment

    def replaying(self, key: str) -> Callable[..., Any] | None:
        """A network-free resegment that answers only what `analyze` computed for `key`."""
        table = self._table(key, create=False)
        if not table:
            return None

        def resegment(*args: Any, **kwargs: Any) -> Any:
            return table.get(self._crop_id(args, kwargs))

        resegment.memo = table  # type: ignore[attr-defined]
        resegment.replay_only = True  # type: ignore[attr-defined]  # a crop it lacks, a network would answer
        return resegment
