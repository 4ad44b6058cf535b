"""The batch's one progress bar: photos done / skipped / failed and photos per minute (tqdm, on stderr)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class BatchBar:
    """A tqdm bar over every photo of the batch; does nothing when not `enabled` (-q, or not a terminal)."""

    def __init__(self, total: int, enabled: bool, file: TextIO | None = None) -> None:
        self.done = self.skipped = self.failed = 0
        self.t0 = time.monotonic()
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, file=file or sys.stderr, unit="photo", dynamic_ncols=True, leave=True,
                            desc="img2maya", bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                            "[{elapsed}<{remaining}] {postfix}")
            self._show()

    def per_minute(self) -> float:
        """Photos made (or failed) per minute in this run; skipped ones do not count."""
        elapsed = time.monotonic() - self.t0
        return 60.0 * (self.done + self.failed) / elapsed if elapsed > 0 else 0.0

    def text(self) -> str:
        return (f"{self.done} done, {self.skipped} skipped, {self.failed} failed, "
                f"{self.per_minute():.1f} photos/min")

    def _show(self, n: int = 0) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self.text(), refresh=False)
            self.bar.update(n)

    def skip(self, n: int = 1) -> None:
        self.skipped += n
        self._show(n)

    def start(self) -> None:
        """The clock of photos per minute starts now (after the skipped ones were found)."""
        self.t0 = time.monotonic()

    def finish(self, ok: bool) -> None:
        if ok:
            self.done += 1
        else:
            self.failed += 1
        self._show(1)

    def write(self, line: str) -> None:
        """A line on stderr that does not break the bar."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self._show()
            self.bar.close()
            self.bar = None
