"""Batches of photos into an output folder: one process, `--workers N` local processes, or Ray.

`img2maya scene PHOTOS_OR_FOLDERS... -o OUT/` comes here (cli.cmd_scene). One module a job:

- `plan`: folders -> photos (sorted, `--recursive`), each with its output `OUT/<relative path>.<format>`;
- `work`: the ONE per-photo code path (`build`: pipeline.run + export; `process`: the same, timed, with its
  error as a value) that the single-photo command and every executor run;
- `manifest`: `OUT/img2maya-batch.json`, written atomically as work completes; what a rerun skips;
- `local`: the executors of this machine (in this process, or N worker processes);
- `ray_exec`: the Ray executor (Ray is imported only there, only with `--ray`);
- `progress`: the one progress bar;
- `command`: the driver that ties them together.

docs/BATCH.md describes the behaviour; docs/CLI.md the flags.
"""

from __future__ import annotations

MANIFEST_NAME = "img2maya-batch.json"
