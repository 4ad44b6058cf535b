"""A scripted stand-in for the inference server, run by tests/test_panel.py through the panel's real
QProcess (as `<python> panel_fake_server.py -m inference_server`; the extra words are ignored).

$PANEL_FAKE_STARTS names a file that gets one line per start. $PANEL_FAKE_MODE:
- crash_first: the first start writes a line to stderr and exits with code 3 on its first job; later
  starts answer jobs with tests/data/example_scene.json;
- deaf: answers hello, sends one progress event per job and then ignores everything (cancel included).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent / "data" / "example_scene.json"


def send(msg: dict) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main() -> int:
    mode = os.environ.get("PANEL_FAKE_MODE", "")
    counter = Path(os.environ["PANEL_FAKE_STARTS"])
    with counter.open("a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()}\n")
    starts = len(counter.read_text().splitlines())
    for line in sys.stdin:
        msg = json.loads(line)
        kind, mid = msg.get("type"), msg.get("id")
        if kind == "hello":
            send({"type": "hello", "id": mid, "protocol": 1, "models": {"defaults": {}, "models": []}})
        elif kind in ("analyze", "regenerate"):
            if mode == "crash_first" and starts == 1:
                sys.stderr.write("fatal: simulated crash in the segmentation network\n")
                sys.stderr.flush()
                return 3
            send({"type": "progress", "id": mid, "stage": "inference", "fraction": 0.25})
            if mode == "deaf":
                continue
            scene = json.loads(EXAMPLE.read_text())
            send({"type": "result", "id": mid, "scene": scene, "files": {}, "cached": False,
                  "photo_sha256": "0" * 64})
        elif kind == "shutdown":
            send({"type": "bye", "id": mid})
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
