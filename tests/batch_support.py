"""Helpers of the batch tests: small photos, the manifest, waiting with a bound."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from inference_server.cli import main


def small_photos(samples: Path, folder: Path, n: int, width: int = 160) -> list[Path]:
    """`n` distinct small JPEGs made from a real street photo (resized, cropped, mirrored)."""
    src = Image.open(samples / "street_london_bus.jpg").convert("RGB")
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        w, h = src.size
        crop = src.crop((k * 37 % 200, k * 23 % 120, w - k * 29 % 180, h - k * 17 % 100))
        im = crop.resize((width + 8 * k, round((width + 8 * k) * 0.66)))
        if k % 2:
            im = ImageOps.mirror(im)
        p = folder / f"p{k:02d}.jpg"
        im.save(p, quality=90)
        out.append(p)
    return out


def manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "img2maya-batch.json").read_text(encoding="utf-8"))


def leftovers(folder: Path) -> list[str]:
    """Temporary files of ours anywhere under `folder`."""
    return sorted(p.name for p in folder.rglob("*") if ".part" in p.name)


class MainThread:
    """`img2maya ARGV` on a thread, so that the test can act meanwhile and wait with a bound."""

    def __init__(self, argv: list[str]) -> None:
        self.rc: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(argv,), daemon=True)
        self.thread.start()

    def _run(self, argv: list[str]) -> None:
        try:
            self.rc = main(argv)
        except BaseException as exc:  # noqa: BLE001 - reported by join
            self.error = exc

    def join(self, timeout: float) -> int:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the batch did not end within {timeout} s"
        if self.error is not None:
            raise self.error
        assert self.rc is not None
        return self.rc


def wait_for(what: Callable[[], Any], timeout: float, step: float = 0.01) -> Any:
    """`what()` once it is truthy; None when `timeout` passes first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = what()
        if got:
            return got
        time.sleep(step)
    return None
