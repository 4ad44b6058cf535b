"""On-disk + in-memory cache of network outputs (labels, names, confidence, depth, instances).

Why: the networks are the expensive stage (seconds); the analysis that turns their output into a
scene is cheap. Caching the network output lets the server re-run only the analysis when the user
changes options (`regenerate`), and lets a second `analyze` of the same photo skip the networks,
even in a later session.

Layout under the cache root (`$IMG2MAYA_CACHE`, else `~/.cache/img2maya`):

    net/<key>.npz     one entry: arrays + a JSON `meta` string, written as ONE file
    out/<name>/       per-photo output folders of the server (previews, scene.json)

An entry is a single `.npz` (meta embedded) rather than `.npz` + `.json`, so one `os.replace` publishes
it: two processes writing the same key can never leave a torn pair, and a reader sees either the
old or the new complete file. Entries that fail to load are deleted and reported as a miss.
The size cap is enforced LRU by mtime (a hit touches the file) over both `net/` entries and `out/`
folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .inference.types import DepthMap, Instances, Segmentation

CACHE_FORMAT = 2  # 2: confidence and depth stored exactly as computed (1 rounded confidence to float16)
DEFAULT_MAX_BYTES = 2 * 1024**3
_STALE_TEMP_S = 3600.0


def default_cache_dir() -> Path:
    """`$IMG2MAYA_CACHE` when set, else `~/.cache/img2maya` (XDG-style on every platform)."""
    env = os.environ.get("IMG2MAYA_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "img2maya"


def cache_key(photo_sha256: str, seg_model: str, depth_model: str | None, options: dict[str, Any],
              instances_model: str | None = None) -> str:
    """Key of one network output: the photo's bytes, the model ids and every option that changes what
    the networks see (e.g. the analysis resolution). Options must be JSON-serialisable. Without an
    instance model the key is what it was before instance models existed."""
    fields: dict[str, Any] = {"format": CACHE_FORMAT, "photo": photo_sha256, "seg": seg_model,
                              "depth": depth_model, "options": options}
    if instances_model is not None:
        fields["instances"] = instances_model
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class CacheEntry:
    """A cached network output, with the free-form meta stored next to it."""

    seg: Segmentation
    depth: DepthMap | None
    meta: dict[str, Any] = field(default_factory=dict)
    instances: Instances | None = None


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


class NetworkCache:
    """Network outputs keyed by `cache_key`, on disk (size-capped) with a small in-memory LRU in front.

    Thread-safe within a process; safe across processes through atomic renames."""

    def __init__(self, root: str | os.PathLike[str] | None = None, max_bytes: int | None = DEFAULT_MAX_BYTES,
                 memory_entries: int = 4) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.max_bytes = max_bytes
        self.memory_entries = max(0, int(memory_entries))
        self._memory: OrderedDict[str, CacheEntry] = OrderedDict()
        self._lock = threading.Lock()
        self._pinned: dict[str, int] = {}  # output folders a job is writing: never evicted meanwhile

    @property
    def net_dir(self) -> Path:
        return self.root / "net"

    @property
    def out_root(self) -> Path:
        return self.root / "out"

    def path_for(self, key: str) -> Path:
        return self.net_dir / f"{key}.npz"

    def out_dir_for(self, name: str) -> Path:
        """The default output folder of a photo (named by the caller, e.g. a hash prefix)."""
        return self.out_root / name

    # ------------------------------------------------------------------ read
    def get(self, key: str) -> CacheEntry | None:
        """The entry for `key`, from memory or disk; None on a miss or a corrupt file (which is removed)."""
        with self._lock:
            entry = self._memory.get(key)
            if entry is not None:
                self._memory.move_to_end(key)
        path = self.path_for(key)
        if entry is not None:
            _touch(path)
            return entry
        entry = self._read(path)
        if entry is None:
            return None
        _touch(path)
        self._remember(key, entry)
        return entry

    def _read(self, path: Path) -> CacheEntry | None:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"][()]))
                if meta.get("format") != CACHE_FORMAT:
                    raise ValueError("old cache format")
                labels = data["labels"].astype(np.int32)
                confidence = _as_read(data["confidence"]) if "confidence" in data.files else None
                depth_arr = _as_read(data["depth"]) if "depth" in data.files else None
                extras = dict(meta.get("depth_extras", {}))
                for name in data.files:
                    if name.startswith("extra__"):
                        extras[name[len("extra__"):]] = np.array(data[name])
                instances = _unpack_instances(meta["instances"], data) if "instances" in meta else None
        except FileNotFoundError:
            return None
        except Exception:  # noqa: BLE001 - any unreadable entry is dropped and recomputed
            _unlink(path)
            return None
        names = list(meta.get("names", []))
        if labels.ndim != 2 or (depth_arr is not None and depth_arr.shape != labels.shape):
            _unlink(path)
            return None
        seg = Segmentation(labels=labels, names=names, model=str(meta.get("seg_model", "")),
                           confidence=confidence)
        depth = None
        if depth_arr is not None:
            depth = DepthMap(depth=depth_arr, kind=str(meta.get("depth_kind", "relative")),
                             model=str(meta.get("depth_model", "")), extras=extras)
        return CacheEntry(seg=seg, depth=depth, meta=dict(meta.get("user", {})), instances=instances)

    # ----------------------------------------------------------------- write
    def put(self, key: str, seg: Segmentation, depth: DepthMap | None,
            meta: dict[str, Any] | None = None, instances: Instances | None = None) -> Path:
        """Store an entry atomically (temp file + os.replace), keep it in memory, then enforce the cap."""
        labels = np.asarray(seg.labels)
        if labels.size and labels.min() >= 0 and labels.max() < 65536:
            labels_store = labels.astype(np.uint16)
        else:
            labels_store = labels.astype(np.int32)
        arrays: dict[str, np.ndarray] = {"labels": labels_store}
        if seg.confidence is not None:  # exactly as computed: a regenerate must equal a fresh build
            arrays["confidence"] = _exact_float(seg.confidence)
        info: dict[str, Any] = {
            "format": CACHE_FORMAT, "names": list(seg.names), "seg_model": seg.model,
            "created": time.time(), "user": meta or {},
        }
        if depth is not None:
            arrays["depth"] = _exact_float(depth.depth)
            info["depth_kind"] = depth.kind
            info["depth_model"] = depth.model
            info["depth_extras"] = {}
            for name, value in (depth.extras or {}).items():
                if isinstance(value, np.ndarray):
                    arrays[f"extra__{name}"] = value
                elif _json_safe(value):
                    info["depth_extras"][name] = value
        if instances is not None:
            info["instances"] = _pack_instances(instances, arrays)
        arrays["meta"] = np.array(json.dumps(info))
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".part", dir=str(path.parent))
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)  # uncompressed: writing 20 MB beats zlib-ing it by ~10x
            _replace(tmp, path)
        except BaseException:
            _unlink(Path(tmp))
            raise
        # Keep what a reader would get (the same dtypes) so memory and disk hits agree.
        conf = _as_read(arrays["confidence"]) if "confidence" in arrays else None
        mem_seg = Segmentation(labels=labels.astype(np.int32, copy=False), names=list(seg.names),
                               model=seg.model, confidence=conf)
        mem_depth = depth
        if depth is not None:
            mem_depth = DepthMap(depth=_as_read(arrays["depth"]), kind=depth.kind,
                                 model=depth.model, extras=depth.extras)
        self._remember(key, CacheEntry(seg=mem_seg, depth=mem_depth, meta=dict(meta or {}),
                                       instances=instances))
        self.evict()
        return path

    def _remember(self, key: str, entry: CacheEntry) -> None:
        if self.memory_entries <= 0:
            return
        with self._lock:
            self._memory[key] = entry
            self._memory.move_to_end(key)
            while len(self._memory) > self.memory_entries:
                self._memory.popitem(last=False)

    def forget_memory(self) -> None:
        """Drop the in-memory copies (the disk entries stay)."""
        with self._lock:
            self._memory.clear()

    def touch_out_dir(self, path: str | os.PathLike[str]) -> None:
        """Mark an output folder as recently used (so eviction removes older ones first)."""
        _touch(Path(path))

    @contextmanager
    def pinned(self, path: str | os.PathLike[str]) -> Iterator[None]:
        """While inside, eviction leaves the output folder `path` alone: a job writing its files there
        must not see them removed by another thread's eviction (the cache entry is stored on a second
        thread while the job writes)."""
        key = os.path.abspath(path)
        with self._lock:
            self._pinned[key] = self._pinned.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                if self._pinned[key] <= 1:
                    del self._pinned[key]
                else:
                    self._pinned[key] -= 1

    # ----------------------------------------------------------------- evict
    def usage(self) -> list[tuple[float, int, Path]]:
        """(mtime, bytes, path) of every evictable unit: each net entry and each output folder."""
        units: list[tuple[float, int, Path]] = []
        now = time.time()
        if self.net_dir.is_dir():
            for p in self.net_dir.iterdir():
                try:
                    st = p.stat()
                except OSError:
                    continue
                if p.name.endswith(".part"):
                    if now - st.st_mtime > _STALE_TEMP_S:  # a writer that died long ago
                        _unlink(p)
                    continue
                if p.suffix == ".npz":
                    units.append((st.st_mtime, st.st_size, p))
        if self.out_root.is_dir():
            for d in self.out_root.iterdir():
                if not d.is_dir():
                    continue
                size = 0
                try:
                    mtime = d.stat().st_mtime
                    for f in d.rglob("*"):
                        if f.is_file():
                            size += f.stat().st_size
                except OSError:
                    continue
                units.append((mtime, size, d))
        return units

    def evict(self, max_bytes: int | None = None) -> list[Path]:
        """Remove the least recently used units until the total is under the cap; returns what went."""
        cap = self.max_bytes if max_bytes is None else max_bytes
        if cap is None:
            return []
        units = sorted(self.usage(), key=lambda u: u[0])
        total = sum(u[1] for u in units)
        removed: list[Path] = []
        with self._lock:
            pinned = set(self._pinned)
        for _mtime, size, path in units:
            if total <= cap:
                break
            if os.path.abspath(path) in pinned:
                continue
            if path.is_dir():
                _rmtree(path)
            else:
                _unlink(path)
                with self._lock:
                    self._memory.pop(path.stem, None)
            total -= size
            removed.append(path)
        return removed


def _pack_instances(inst: Instances, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Put an instance model's output into ``arrays`` (exactly: float32 as computed); return its JSON part.
    The per-instance mask windows differ in size: stored as one flat array plus their shapes."""
    arrays["inst__boxes"] = np.asarray(inst.boxes, np.float32).reshape(-1, 4)
    arrays["inst__class_ids"] = np.asarray(inst.class_ids, np.int32).reshape(-1)
    arrays["inst__scores"] = np.asarray(inst.scores, np.float32).reshape(-1)
    arrays["inst__mask_origin"] = np.asarray(inst.mask_origin, np.int32).reshape(-1, 2)
    shapes = [list(m.shape) for m in inst.mask_logits]
    flat = [np.asarray(m, np.float32).ravel() for m in inst.mask_logits]
    arrays["inst__mask_logits"] = np.concatenate(flat) if flat else np.zeros(0, np.float32)
    return {"class_names": list(inst.class_names), "model": inst.model, "width": int(inst.width),
            "height": int(inst.height), "mask_shapes": shapes, "mask_stride": float(inst.mask_stride),
            "mask_offset": [float(v) for v in inst.mask_offset], "box_slack": float(inst.box_slack)}


def _unpack_instances(info: dict[str, Any], data: Any) -> Instances:
    """`_pack_instances` read back (a malformed entry raises: the caller drops it)."""
    flat = np.asarray(data["inst__mask_logits"], np.float32)
    sizes = [int(h) * int(w) for h, w in info["mask_shapes"]]
    if sum(sizes) != flat.size:
        raise ValueError("instance masks do not match their shapes")
    parts = np.split(flat, np.cumsum(sizes)[:-1]) if sizes else []
    logits = [p.reshape(int(h), int(w)) for p, (h, w) in zip(parts, info["mask_shapes"], strict=True)]
    ox, oy = info["mask_offset"]
    return Instances(boxes=np.array(data["inst__boxes"]), class_ids=np.array(data["inst__class_ids"]),
                     scores=np.array(data["inst__scores"]), class_names=list(info["class_names"]),
                     model=str(info["model"]), width=int(info["width"]), height=int(info["height"]),
                     mask_logits=logits, mask_origin=np.array(data["inst__mask_origin"]),
                     mask_stride=float(info["mask_stride"]), mask_offset=(float(ox), float(oy)),
                     box_slack=float(info["box_slack"]))


def _exact_float(a: Any) -> np.ndarray:
    """A float array to store without loss: float16/float32 as they are, float64 kept float64 when float32
    would change it (what the analysis reads back is then what the network gave)."""
    arr = np.asarray(a)
    if arr.dtype in (np.float16, np.float32):
        return arr
    if arr.dtype == np.float64:
        narrow = arr.astype(np.float32)
        return narrow if np.array_equal(narrow, arr, equal_nan=True) else arr
    return arr.astype(np.float32)


def _as_read(a: np.ndarray) -> np.ndarray:
    """A stored float array as the analysis gets it: float32 or float64 as stored, float16 widened."""
    return a.astype(np.float32) if a.dtype == np.float16 else np.asarray(a)


def _replace(tmp: str, path: Path) -> None:
    """os.replace, retried briefly: on Windows it fails while another process has the target open.
    If it still fails and the target exists, the other writer's entry (same key, same content) stays."""
    for attempt in range(20):
        try:
            os.replace(tmp, path)
            return
        except PermissionError:
            if attempt == 19:
                if path.exists():
                    _unlink(Path(tmp))
                    return
                raise
            time.sleep(0.01 * (attempt + 1))


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
