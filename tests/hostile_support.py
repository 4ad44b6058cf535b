"""Helpers of the hostile-input and fuzz tests (no tests here): small valid inputs, a folder snapshot
("no file written or changed"), the one-line error check, and an in-process server that answers."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from PIL import Image

ERROR_RE = re.compile(r"^img2maya: error: \S")


def make_inputs(folder: Path, w: int = 64, h: int = 48) -> SimpleNamespace:
    """A photo, labels (sky / road / car), their names, a metric depth and a shapes table in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    photo = folder / "photo.png"
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(photo)
    ids = np.zeros((h, w), np.uint8)
    ids[h * 2 // 3:, :] = 1
    ids[h // 4:h * 2 // 3, w // 3:w * 2 // 3] = 2
    labels = folder / "labels.png"
    Image.fromarray(ids).save(labels)
    names = folder / "names.txt"
    names.write_text("sky\nroad\ncar\n", encoding="utf-8")
    depth = folder / "depth.npy"
    np.save(depth, np.repeat(np.linspace(30.0, 2.0, h, dtype=np.float32)[:, None], w, axis=1))
    shapes = folder / "table.json"
    shapes.write_text(json.dumps({"classes": [{"name": "car", "shape": "cube", "size": [1.8, 1.5, 4.5]}]}))
    return SimpleNamespace(folder=folder, photo=photo, labels=labels, names=names, depth=depth, shapes=shapes)


def scene_argv(inp: SimpleNamespace, out: Path | str, *extra: str) -> list[str]:
    return ["scene", str(inp.photo), "--labels", str(inp.labels), "--label-names", str(inp.names),
            "--depth", str(inp.depth), "-o", str(out), "-q", *extra]


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under `folder` (hidden ones included) -> (size, sha256): what 'nothing written or
    changed' compares."""
    out: dict[str, tuple[int, str]] = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(root) / name
            if p.is_symlink() or not p.is_file():
                out[str(p.relative_to(folder))] = (-1, os.readlink(p) if p.is_symlink() else "")
                continue
            data = p.read_bytes()
            out[str(p.relative_to(folder))] = (len(data), hashlib.sha256(data).hexdigest())
    return out


def assert_one_line_error(rc: int, err: str, pattern: str | None = None) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, (rc, err)
    assert len(lines) == 1, err
    assert ERROR_RE.match(lines[0]), lines[0]
    assert "Traceback" not in err and "internal error" not in err
    if pattern is not None:
        assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


class InProcessServer:
    """A Server on a StringIO: `ask(line, id)` sends one request line and waits for the terminal message
    of `id` (or the id-less error of an unparseable line)."""

    TERMINAL = ("hello", "result", "error", "cancelled", "ack", "bye")

    def __init__(self, pipeline: Any, cache_root: Path) -> None:
        from inference_server.cache import NetworkCache
        from inference_server.server import Server

        self.out = io.StringIO()
        self.server = Server(pipeline=pipeline, cache=NetworkCache(cache_root), out=self.out)
        self._seen = 0

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    def ask(self, line: str | bytes, req_id: Any = None, timeout: float = 20.0) -> dict[str, Any]:
        start = len(self.out.getvalue().splitlines())
        self.server.handle_line(line)
        deadline = time.monotonic() + timeout
        while True:
            lines = self.out.getvalue().splitlines()[start:]
            for text in lines:
                assert "\n" not in text
                msg = json.loads(text)
                if msg["type"] in self.TERMINAL and (msg.get("id") == req_id or msg.get("id") is None):
                    return msg
            assert time.monotonic() < deadline, f"no reply to {line!r:.200}"
            time.sleep(0.005)

    def alive(self) -> bool:
        return self.ask('{"id": "alive?", "type": "hello"}', "alive?")["type"] == "hello"

    def close(self) -> None:
        self.server.handle_line('{"id": "bye", "type": "shutdown"}')
