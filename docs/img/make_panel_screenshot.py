"""Screenshot of the img2maya panel after a real run, for the README and docs/MAYA.md.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/img/make_panel_screenshot.py \
        [--photo ../shared/samples/street_london_bus.jpg] [--models ../shared/models] [--out docs/img/panel.png]

The panel runs outside Maya: the real inference server (this Python, default networks) analyses the
photo and the scene is built on the fake maya.cmds of tests/fakemaya. Settings go to a temporary file,
the server cache to a temporary folder, so nothing of the user's is touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests" / "fakemaya")]

from img2maya import panel as panel_mod  # noqa: E402
from img2maya.qt import QtCore, QtWidgets  # noqa: E402
from img2maya.settings import JsonStore, Settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default=str(ROOT.parent / "shared" / "samples" / "street_london_bus.jpg"))
    parser.add_argument("--models", default=str(ROOT.parent / "shared" / "models"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "img" / "panel.png"))
    parser.add_argument("--recursion", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()

    from maya import _fake

    _fake.reset()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    tmp = tempfile.mkdtemp(prefix="img2maya-shot-")
    settings = Settings(JsonStore(os.path.join(tmp, "settings.json")))
    settings.python = sys.executable
    settings.recursion = args.recursion
    env = dict(os.environ, IMG2MAYA_MODELS=args.models, IMG2MAYA_CACHE=os.path.join(tmp, "cache"))
    panel = panel_mod.Img2MayaPanel(settings=settings, env=env, engine_root=str(ROOT))
    panel.setWindowTitle("img2maya")
    panel.resize(500, panel.sizeHint().height())
    built: list[str] = []
    panel.built.connect(built.append)
    panel.show()

    def wait(condition, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while not condition() and time.monotonic() < end:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.01)
        return bool(condition())

    try:
        if not wait(lambda: panel.seg_combo.isEnabled() or panel.message_is_error, 120):
            print("no hello from the server:", panel.message, file=sys.stderr)
            return 1
        if not panel.set_photo(args.photo):
            print(panel.message, file=sys.stderr)
            return 1
        start = time.monotonic()
        panel.build()
        if not wait(lambda: bool(built) or panel.message_is_error, args.timeout) or panel.message_is_error:
            print("run failed:", panel.message, file=sys.stderr)
            return 1
        print(f"built in {time.monotonic() - start:.1f} s: {panel.message}")
        wait(lambda: False, 0.3)  # let the previews paint
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        if not panel.grab().save(args.out):
            print(f"cannot write {args.out}", file=sys.stderr)
            return 1
        print(f"wrote {args.out} ({os.path.getsize(args.out) // 1024} KB)")
    finally:
        panel.shutdown_server()
    return 0


if __name__ == "__main__":
    sys.exit(main())
