"""inference_server.cache: keys, disk round trip, corruption, the size cap, concurrent writers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from inference_server.cache import NetworkCache, cache_key, default_cache_dir
from inference_server.inference.types import DepthMap, Segmentation

ROOT = Path(__file__).resolve().parents[1]


def outputs(h: int = 30, w: int = 40, seed: int = 0) -> tuple[Segmentation, DepthMap]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 151, (h, w)).astype(np.int32)
    conf = rng.random((h, w)).astype(np.float32)
    depth = rng.uniform(0.5, 80.0, (h, w)).astype(np.float32)
    depth[0, 0] = np.nan
    return (Segmentation(labels=labels, names=[f"c{i}" for i in range(151)], model="seg-a", confidence=conf),
            DepthMap(depth=depth, kind="metric", model="depth-b",
                     extras={"focal_px": 512.5, "scale": np.array([1.0, 2.0])}))


def test_key_depends_on_photo_models_and_options() -> None:
    base = cache_key("ab" * 32, "seg", "depth", {"shape": [480, 640, 3]})
    assert base == cache_key("ab" * 32, "seg", "depth", {"shape": [480, 640, 3]})
    assert len({base, cache_key("cd" * 32, "seg", "depth", {"shape": [480, 640, 3]}),
                cache_key("ab" * 32, "seg2", "depth", {"shape": [480, 640, 3]}),
                cache_key("ab" * 32, "seg", None, {"shape": [480, 640, 3]}),
                cache_key("ab" * 32, "seg", "depth", {"shape": [240, 320, 3]})}) == 5


def test_default_dir_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMG2MAYA_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("IMG2MAYA_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "img2maya"


def test_disk_round_trip(tmp_path: Path) -> None:
    seg, depth = outputs()
    cache = NetworkCache(tmp_path)
    cache.put("k1", seg, depth, meta={"photo": "p.jpg"})
    cache.forget_memory()
    entry = NetworkCache(tmp_path).get("k1")  # a fresh process would see the same
    assert entry is not None
    assert entry.seg.labels.dtype == np.int32 and np.array_equal(entry.seg.labels, seg.labels)
    assert entry.seg.names == seg.names and entry.seg.model == "seg-a"
    # stored exactly (a regenerate = a fresh build)
    assert np.array_equal(entry.seg.confidence, seg.confidence)
    assert np.array_equal(entry.depth.depth, depth.depth, equal_nan=True)
    assert (entry.depth.kind, entry.depth.model) == ("metric", "depth-b")
    assert entry.depth.extras["focal_px"] == 512.5
    assert np.array_equal(entry.depth.extras["scale"], [1.0, 2.0])
    assert entry.meta == {"photo": "p.jpg"}
    assert cache.get("missing") is None


def test_labels_beyond_uint16_and_no_depth(tmp_path: Path) -> None:
    labels = np.array([[0, 70000], [-1, 3]], np.int32)
    cache = NetworkCache(tmp_path, memory_entries=0)
    cache.put("k", Segmentation(labels=labels, names=["a"], model="m"), None)
    entry = cache.get("k")
    assert entry is not None and entry.depth is None and entry.seg.confidence is None
    assert np.array_equal(entry.seg.labels, labels)


def test_corrupt_entry_is_dropped(tmp_path: Path) -> None:
    seg, depth = outputs()
    cache = NetworkCache(tmp_path, memory_entries=0)
    path = cache.put("k", seg, depth)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated by a crash, say
    assert cache.get("k") is None
    assert not path.exists()
    path.write_bytes(b"not a zip at all")
    assert cache.get("k") is None and not path.exists()


def test_size_cap_evicts_the_least_recently_used(tmp_path: Path) -> None:
    seg, depth = outputs(64, 64)
    cache = NetworkCache(tmp_path, max_bytes=None)
    paths = [cache.put(f"k{i}", seg, depth) for i in range(4)]
    size = paths[0].stat().st_size
    for i, p in enumerate(paths):  # k0 oldest ... k3 newest
        os.utime(p, (time.time() - 100 + i, time.time() - 100 + i))
    out = cache.out_dir_for("photo")
    out.mkdir(parents=True)
    (out / "preview.png").write_bytes(b"x" * 100)
    os.utime(out, (time.time() - 200, time.time() - 200))  # older than every entry
    assert cache.get("k1") is not None  # a hit makes k1 the most recent
    removed = cache.evict(max_bytes=2 * size + 50)
    assert removed == [out, paths[0], paths[2]]
    assert sorted(p.name for p in cache.net_dir.iterdir()) == ["k1.npz", "k3.npz"]
    cache.forget_memory()
    assert cache.get("k0") is None and cache.get("k1") is not None


def test_a_pinned_output_folder_is_never_evicted(tmp_path: Path) -> None:
    """A job writes its files while its cache entry is stored (and the cap enforced) on another thread:
    the job's folder is pinned meanwhile, and only then can it go."""
    seg, depth = outputs(32, 32)
    cache = NetworkCache(tmp_path, max_bytes=None)
    out = cache.out_dir_for("busy")
    out.mkdir(parents=True)
    (out / ".labels.part.json").write_bytes(b"half written")
    with cache.pinned(out), cache.pinned(out):  # re-entrant
        cache.put("k", seg, depth)
        assert cache.evict(max_bytes=0) == [cache.path_for("k")]
        assert out.is_dir()
    with cache.pinned(str(out) + "/"):  # the same folder however it is spelled
        assert cache.evict(max_bytes=0) == []
    assert cache.evict(max_bytes=0) == [out] and not out.exists()


def test_put_enforces_the_cap(tmp_path: Path) -> None:
    seg, depth = outputs(64, 64)
    one = NetworkCache(tmp_path / "probe", max_bytes=None).put("x", seg, depth).stat().st_size
    cache = NetworkCache(tmp_path / "c", max_bytes=int(2.5 * one))
    for i in range(5):
        cache.put(f"k{i}", seg, depth)
        time.sleep(0.01)
    assert len(list(cache.net_dir.glob("*.npz"))) == 2


_WRITER = """
import sys, numpy as np
from inference_server.cache import NetworkCache
from inference_server.inference.types import DepthMap, Segmentation
root, seed, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cache = NetworkCache(root, memory_entries=0)
labels = np.full((300, 400), seed, np.int32)
depth = np.full((300, 400), float(seed), np.float32)
for _ in range(rounds):
    cache.put("shared", Segmentation(labels, ["a"] * 8, "m", None), DepthMap(depth, "metric", "d"))
    e = cache.get("shared")
    assert e is not None, "entry vanished"
    v = int(e.seg.labels[0, 0])
    assert (e.seg.labels == v).all() and (e.depth.depth == v).all(), "torn entry"
print("ok")
"""


def test_two_processes_writing_the_same_key_never_corrupt_it(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(seed), "25"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for seed in (3, 7)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        assert out.decode().strip() == "ok"
    entry = NetworkCache(tmp_path, memory_entries=0).get("shared")
    assert entry is not None and int(entry.seg.labels[0, 0]) in (3, 7)
    assert entry.seg.labels.shape == (300, 400)
    assert list(tmp_path.joinpath("net").glob("*.part")) == []
