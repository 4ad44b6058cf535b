"""One version source: VERSION. Every place that reports a version reads it (the .mod file, which Maya
reads as plain text, is checked against it)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_version_is_the_version_file() -> None:
    version = (ROOT / "VERSION").read_text(encoding="utf-8").strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+([.+-][0-9A-Za-z.]+)?", version)
    import img2maya

    import inference_server

    assert inference_server.__version__ == version
    assert img2maya.__version__ == version
    assert _load(ROOT / "maya_module" / "install_img2maya.py", "_inst").MODULE_VERSION == version
    mod_line = (ROOT / "img2maya.mod").read_text(encoding="utf-8").splitlines()[0].split()
    assert mod_line[:3] == ["+", "img2maya", version], "img2maya.mod must carry VERSION"
    plugin = (ROOT / "plug-ins" / "img2maya_plugin.py").read_text(encoding="utf-8")
    assert "from img2maya import __version__" in plugin and not re.search(r'VERSION = "\d', plugin)
    out = subprocess.run([sys.executable, "-m", "inference_server.cli", "--version"], capture_output=True,
                         text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == f"img2maya {version}"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject and 'version = { file = "VERSION" }' in pyproject
