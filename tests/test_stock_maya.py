"""The panel in a stock Maya: a Python with nothing but its own PySide (no Qt.py, no numpy) and only the
paths that img2maya.mod gives Maya imports img2maya and img2maya.panel, the shelf button builds the
panel widget (offscreen), the plug-in compiles, loads and builds a scene headless.

"Stock Maya" here is a separate virtual environment holding ONLY `PySide6-Essentials==6.5.3` (the Qt
of Maya 2025-2026, on this interpreter) or, where a Python 3.7-3.10 exists (see test_maya_pythons.py),
ONLY `PySide2==5.15.2.1` (Maya 2022-2024). They are made once under build/stock-maya/ (ignored by git)
and reused. The module is a copy of what a clone holds (the files git tracks or would track, so an
ignored or forgotten file fails here), and the child process gets exactly the module's paths:
`<module>/scripts` and the .mod's PYTHONPATH lines on PYTHONPATH, `<module>/plug-ins` on
MAYA_PLUG_IN_PATH, its other variables, plus tests/fakemaya standing in for Maya's own `maya`
modules (cmds, OpenMaya, OpenMayaUI) - the one thing that is not stock.

If a stock environment cannot be made (no package registry) the test skips with the reason, except
under CI (CI=true), where it fails: it must not go quiet there.

Bad input: a Python without any PySide, and a damaged vendored Qt.py: the shelf button prints one line
saying what is missing and how to fix it, and the plug-in command still works headless.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakemaya import fixture as _fakemaya

ROOT = Path(__file__).resolve().parents[1]
FAKEMAYA = ROOT / "tests" / "fakemaya"
SCENE = ROOT / "tests" / "data" / "example_scene.json"
CACHE = Path(os.environ.get("IMG2MAYA_STOCK_CACHE", ROOT / "build" / "stock-maya"))
MODULE_PARTS = ("img2maya.mod", "scripts", "plug-ins", "shelves", "icons", "maya_module")
VENDORED_QT = ROOT / "scripts" / "img2maya" / "vendor" / "Qt.py"

PYSIDE6 = "PySide6-Essentials==6.5.3"  # Maya 2025-2026
PYSIDE2 = "PySide2==5.15.2.1"  # Maya 2022-2024 (PyPI's last PySide2; Maya builds its own 5.15.2)
HERE_PY = f"py{sys.version_info[0]}{sys.version_info[1]}"  # stock venvs on this interpreter
ALLOWED_DISTRIBUTIONS = {"pip", "setuptools", "wheel", "pyside6-essentials", "shiboken6", "pyside2", "shiboken2"}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"CI: {reason}")
    pytest.skip(reason)


def _venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@contextlib.contextmanager
def _locked(folder: Path):
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(str(folder) + ".lock", "w") as fh:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX)
        except ImportError:  # Windows: no concurrent runs expected
            pass
        yield


def stock_python(name: str, base_python: str, requirements: list[str]) -> Path:
    """A venv at build/stock-maya/<name> with only `requirements` (reused when it already matches)."""
    folder = CACHE / name
    marker = folder / "img2maya-stock.json"
    wanted = {"python": os.path.realpath(base_python), "requirements": requirements}
    with _locked(folder):
        try:
            if json.loads(marker.read_text()) == wanted and _venv_python(folder).is_file():
                return _venv_python(folder)
        except (OSError, ValueError):
            pass
        shutil.rmtree(folder, ignore_errors=True)
        steps = [[base_python, "-m", "venv", *([] if requirements else ["--without-pip"]), str(folder)]]
        if requirements:
            steps.append([str(_venv_python(folder)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          "--no-input", *requirements])
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=1200)
            except (OSError, subprocess.TimeoutExpired) as exc:
                done = subprocess.CompletedProcess(step, 1, "", str(exc))
            if done.returncode != 0:
                shutil.rmtree(folder, ignore_errors=True)
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                _unavailable(f"cannot make the stock-Maya Python {name} ({' '.join(step[2:5])}...): "
                             + " | ".join(tail))
        marker.write_text(json.dumps(wanted))
    return _venv_python(folder)


def _base_python() -> str:
    """This interpreter's own base Python (not the project venv, whose packages must not leak)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _old_python() -> tuple[str, tuple[int, int]] | None:
    """The oldest of test_maya_pythons' interpreters (3.7 = Maya 2022 where present) and its version."""
    from test_maya_pythons import _interpreters

    found = []
    for python in _interpreters():
        out = subprocess.run([python, "-c", "import sys; print('%d %d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60).stdout.split()
        if len(out) == 2:
            found.append(((int(out[0]), int(out[1])), python))
    if not found:
        return None
    version, python = min(found)
    return python, version


def _module_files() -> list[str]:
    """The module's files as a clone has them: tracked or not ignored (git), else every file."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--",
                              *MODULE_PARTS], cwd=ROOT, capture_output=True, timeout=60, check=True).stdout
        files = [f for f in out.decode("utf-8").split("\0") if f]
    except (OSError, subprocess.SubprocessError):
        files = [str(Path(p).relative_to(ROOT)) for part in MODULE_PARTS
                 for p in glob.glob(str(ROOT / part / "**" / "*"), recursive=True) + [str(ROOT / part)]
                 if Path(p).is_file() and "__pycache__" not in p]
    return [f for f in files if (ROOT / f).is_file()]  # a tracked file deleted in the work tree is gone


def make_module(dest: Path) -> Path:
    for rel in _module_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    return dest


def maya_environment(module: Path) -> dict[str, str]:
    """What img2maya.mod makes Maya set: the module root's scripts/ and plug-ins/ (automatic for a
    module) and every line of the block, interpreted as Maya does (`+:=` appends a path relative to
    the root, `:=` with no value is the root itself, `=` a plain value)."""
    spec = importlib.util.spec_from_file_location("install_img2maya_for_test",
                                                  module / "maya_module" / "install_img2maya.py")
    assert spec is not None and spec.loader is not None
    installer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(installer)
    (block,) = installer.parse_mod((module / "img2maya.mod").read_text())
    root = (module / block["path"]).resolve()
    env: dict[str, list[str]] = {"PYTHONPATH": [str(root / "scripts")], "MAYA_PLUG_IN_PATH": [str(root / "plug-ins")]}
    for line in block["lines"]:
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(\+:=|\+=|:=|=)\s*(.*)$", line)
        assert m, line
        var, op, value = m.groups()
        if op in ("+:=", ":="):
            value = str(root / value) if value else str(root)
        if op.startswith("+"):
            env.setdefault(var, []).append(value)
        else:
            env[var] = [value]
    return {k: os.pathsep.join(v) for k, v in env.items()}


def run_in_stock_maya(python: Path, module: Path, script: str, tmp_path: Path, *args: str
                      ) -> subprocess.CompletedProcess:
    _fakemaya.install()
    from maya._fake import stub_path

    env = maya_environment(module)
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(FAKEMAYA)])  # Maya's own `maya` package
    env.update(PATH=os.environ.get("PATH", ""), HOME=str(tmp_path), QT_QPA_PLATFORM="offscreen",
               XDG_RUNTIME_DIR=str(tmp_path), PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1",
               IMG2MAYA_SETTINGS=str(tmp_path / "settings.json"), FAKEMAYA_STUBS=stub_path(),
               STOCK_MODULE=str(module), STOCK_FAKEMAYA=str(FAKEMAYA))
    if os.name == "nt":
        env["SYSTEMROOT"] = os.environ.get("SYSTEMROOT", "")
    # -s: no user site-packages; cwd is a scratch folder so '' on sys.path is nothing of ours
    return subprocess.run([str(python), "-s", "-c", script, *args], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)


# What Maya's Python does with the module; printed as one JSON line.
STOCK_SCRIPT = r"""
import glob, importlib.util, json, os, py_compile, sys
module, fakemaya, scene_path = os.environ["STOCK_MODULE"], os.environ["STOCK_FAKEMAYA"], sys.argv[1]
report = {"python": list(sys.version_info[:3])}
for name in ("numpy", "Qt"):  # a stock Maya has neither numpy nor a top-level Qt.py here
    assert importlib.util.find_spec(name) is None, (name, importlib.util.find_spec(name))

import img2maya
import img2maya.panel as panel
from img2maya import qt
from maya import _fake, cmds
from maya.api import OpenMaya as om

assert qt.Qt.__name__ == "img2maya.vendor.Qt", qt.Qt.__name__
assert os.path.realpath(qt.Qt.__file__) == os.path.realpath(os.path.join(module, "scripts", "img2maya", "vendor", "Qt.py"))
report.update(binding=qt.BINDING, qt_py=qt.Qt.__version__, qt=qt.QtCore.qVersion())

# the shelf button's own command, as the shelf file has it
shelf = open(os.path.join(module, "shelves", "shelf_img2maya.mel")).read()
command = shelf.split('-command "python(\\"', 1)[1].split('\\")"', 1)[0]
assert command == "import img2maya; img2maya.show()", command
_fake.reset()
app = qt.QtWidgets.QApplication.instance() or qt.QtWidgets.QApplication([])
panel.Img2MayaPanel.autostart = False  # no inference server: the widget is what is tested
exec(command, {})
dock = panel.instance()
assert dock is not None and dock.isVisible()
app.processEvents()
image = dock.grab().toImage()
assert not image.isNull() and image.width() > 100 and image.height() > 100
body = dock.panel
assert body.build_button.text() and body.recursion_slider.maximum() == 5
assert [body.instances_combo.itemData(i) for i in range(body.instances_combo.count())] == [None, "none"]
report["widgets"] = len(body.findChildren(qt.QtWidgets.QWidget))
# the camera estimate over the photo thumbnail (QImageReader, QPainter) on this binding
photo = os.path.join(os.environ["HOME"], "photo.png")
canvas = qt.QtGui.QImage(320, 240, qt.QtGui.QImage.Format.Format_RGB32)
canvas.fill(qt.QtGui.QColor("#404040"))
assert canvas.save(photo)
assert body.set_photo(photo)
plain = body.photo_thumb.pixmap().toImage()
body.show_camera(json.load(open(scene_path)))
assert body.camera_overlay is not None and body.camera_overlay.horizon is not None
assert body.camera_label.text().startswith("FOV 60.0 deg, 31.2 mm"), body.camera_label.text()
assert body.photo_thumb.pixmap().toImage() != plain
body.fov_edit.setText("200")
assert not body.build() and body.message_is_error and "field of view" in body.message
report["size"] = [image.width(), image.height()]
panel.close()

# the plug-in: compiles with everything else, loads from MAYA_PLUG_IN_PATH, builds headless
for f in glob.glob(os.path.join(module, "scripts", "**", "*.py"), recursive=True) + \
        glob.glob(os.path.join(module, "plug-ins", "*.py")):
    py_compile.compile(f, cfile=os.path.join(os.environ["HOME"], "pyc", os.path.basename(f) + "c"), doraise=True)
(plugin,) = [p for d in os.environ["MAYA_PLUG_IN_PATH"].split(os.pathsep)
             for p in glob.glob(os.path.join(d, "img2maya_plugin.py"))]
_fake.reset()
cmds.loadPlugin(plugin)
creator, _syntax = om.REGISTERED_COMMANDS["img2maya"]
args = om.MArgList()
for a in ("-scene", scene_path):
    args.addArg(a)
creator().doIt(args)
report["built"] = om.MPxCommand._result
assert cmds.objExists(report["built"])
cmds.unloadPlugin("img2maya_plugin")

# nothing came from outside the stdlib, this Python's own site-packages (PySide), the module and
# the fake maya: in particular no numpy and no pip-installed Qt.py
assert "numpy" not in sys.modules and "Qt" not in sys.modules
roots = [os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, module, fakemaya)]
outside = sorted({m.__name__ for m in list(sys.modules.values())
                  if getattr(m, "__file__", None) and os.path.exists(m.__file__)  # shiboken's are virtual
                  and not any(os.path.realpath(m.__file__).startswith(r + os.sep) for r in roots)})
assert not outside, outside
import sysconfig  # (no importlib.metadata on Maya 2022's Python 3.7)
site = sysconfig.get_paths()["purelib"]
report["distributions"] = sorted(os.path.basename(d).split("-")[0].lower().replace("_", "-")
                                 for d in glob.glob(os.path.join(site, "*.dist-info")))
print(json.dumps(report))
"""

# The shelf button and the plug-in where Qt cannot be loaded.
NO_QT_SCRIPT = r"""
import glob, os, sys
from maya import _fake, cmds
from maya.api import OpenMaya as om
module, scene_path = os.environ["STOCK_MODULE"], sys.argv[1]
_fake.reset()
import img2maya
assert img2maya.show() is None  # the shelf button: prints its one line
import img2maya.api
assert img2maya.api.restore() is None  # a docked panel's uiScript at start-up: the same line
(plugin,) = glob.glob(os.path.join(os.environ["MAYA_PLUG_IN_PATH"], "img2maya_plugin.py"))
cmds.loadPlugin(plugin)
creator, _syntax = om.REGISTERED_COMMANDS["img2maya"]
args = om.MArgList()
for a in ("-scene", scene_path):
    args.addArg(a)
creator().doIt(args)
assert cmds.objExists(om.MPxCommand._result)
cmds.unloadPlugin("img2maya_plugin")
sys.stderr.write("built " + om.MPxCommand._result + "\n")
"""


@pytest.fixture(scope="module")
def module_copy(tmp_path_factory) -> Path:
    return make_module(tmp_path_factory.mktemp("stock") / "img2maya")


def test_mod_environment_is_what_the_module_file_says(module_copy: Path) -> None:
    env = maya_environment(module_copy)
    root = module_copy.resolve()
    assert env["PYTHONPATH"] == str(root / "scripts")  # the module adds no PYTHONPATH line of its own
    assert env["MAYA_PLUG_IN_PATH"] == str(root / "plug-ins")
    assert env["MAYA_SHELF_PATH"] == str(root / "shelves") and env["IMG2MAYA_ROOT"] == str(root)
    assert (root / "scripts" / "img2maya" / "vendor" / "Qt.py").is_file()  # in a clone, not ignored
    assert (root / "scripts" / "img2maya" / "vendor" / "Qt.py.LICENSE").is_file()


def test_vendored_qt_py_is_the_unmodified_release() -> None:
    readme = (VENDORED_QT.parent / "README.md").read_text()
    (recorded,) = re.findall(r"sha256 of `Qt.py`: `([0-9a-f]{64})`", readme)
    assert hashlib.sha256(VENDORED_QT.read_bytes()).hexdigest() == recorded
    assert re.search(r'^__version__ = "2\.0\.7"$', VENDORED_QT.read_text(), re.M)
    licence = (VENDORED_QT.parent / "Qt.py.LICENSE").read_text()
    assert "The MIT License" in licence and "Marcus Ottosson" in licence


def _check_stock(python: Path, module: Path, tmp_path: Path, binding: str) -> dict:
    done = run_in_stock_maya(python, module, STOCK_SCRIPT, tmp_path, str(SCENE))
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["binding"] == binding and report["qt_py"] == "2.0.7"
    assert report["built"] == "img2maya_example" and report["widgets"] > 20
    assert set(report["distributions"]) <= ALLOWED_DISTRIBUTIONS, report["distributions"]
    print("stock Maya:", json.dumps(report))
    return report


def test_stock_maya_2025_pyside6(module_copy: Path, tmp_path: Path) -> None:
    python = stock_python("pyside6-" + HERE_PY, _base_python(), [PYSIDE6])
    report = _check_stock(python, module_copy, tmp_path, "PySide6")
    assert report["qt"].startswith("6.5") and "shiboken6" in report["distributions"]


def test_stock_maya_2022_pyside2(module_copy: Path, tmp_path: Path) -> None:
    old = _old_python()
    if old is None:
        pytest.skip("no Python 3.7-3.10 interpreter found for a Maya 2022-2024 check (set IMG2MAYA_TEST_PYTHONS)")
    python, version = old
    stock = stock_python(f"pyside2-py{version[0]}{version[1]}", python, [PYSIDE2])
    report = _check_stock(stock, module_copy, tmp_path, "PySide2")
    assert report["qt"].startswith("5.15") and tuple(report["python"][:2]) == version


def _one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and lines[0] == lines[1], lines  # show() and restore(): one line each
    assert done.stderr.strip() == "built img2maya_example", done.stderr[-2000:]  # no traceback, and built
    return lines[0]


def test_without_pyside_the_shelf_button_prints_one_line(module_copy: Path, tmp_path: Path) -> None:
    python = stock_python("nopyside-" + HERE_PY, _base_python(), [])
    line = _one_line(run_in_stock_maya(python, module_copy, NO_QT_SCRIPT, tmp_path, str(SCENE)))
    assert line.startswith("img2maya: the panel needs PySide6 (Maya 2025+) or PySide2 (Maya 2022-2024)")
    assert "No Qt binding were found" in line and "Maya" in line and "img2maya command" in line


@pytest.mark.parametrize("damage", ["truncated", "raises"])
def test_a_damaged_qt_py_prints_one_line(module_copy: Path, tmp_path: Path, damage: str) -> None:
    python = stock_python("pyside6-" + HERE_PY, _base_python(), [PYSIDE6])
    broken = make_module(tmp_path / "img2maya")
    qt_py = broken / "scripts" / "img2maya" / "vendor" / "Qt.py"
    text = qt_py.read_text()
    qt_py.write_text(text[: len(text) // 2] if damage == "truncated" else
                     text.replace("_install()\n", "raise AttributeError('damaged')\n_install()\n", 1))
    line = _one_line(run_in_stock_maya(python, broken, NO_QT_SCRIPT, tmp_path, str(SCENE)))
    assert line.startswith(f"img2maya: the panel cannot load Qt through {qt_py.resolve()} with PySide6 installed")
    assert ("SyntaxError" if damage == "truncated" else "AttributeError: damaged") in line
    assert "reinstall img2maya" in line
