"""The img2maya panel (scripts/img2maya/panel.py) under pytest-qt, offscreen, through the Qt.py that
img2maya ships (scripts/img2maya/vendor, never a pip-installed one): widgets,
drag and drop, settings, the server through the real QProcess (fake pipeline, scripted fake servers,
and end to end with the real networks on the fake maya.cmds)."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is not installed")

from fakemaya import fixture as _fakemaya
from img2maya import panel as panel_mod
from img2maya import protocol
from img2maya.qt import QtCore, QtGui, QtWidgets
from img2maya.settings import JsonStore, Settings
from test_server_support import FAKE, ROOT, TESTS, make_photo, network_runs, server_env

fake_maya = _fakemaya.fake_maya  # the pytest fixture
FAKE_SERVER = TESTS / "panel_fake_server.py"
ENGINE_ROOT = os.pathsep.join([str(ROOT), str(TESTS)])

HELLO = {"type": "hello", "id": 1, "models": {
    "defaults": {"seg": "seg-a", "depth": "depth-a"},
    "models": [
        {"id": "seg-a", "task": "segmentation", "installed": True, "description": "A"},
        {"id": "seg-b", "task": "segmentation", "installed": True},
        {"id": "seg-c", "task": "segmentation", "installed": False},
        {"id": "depth-a", "task": "depth", "installed": True},
        {"id": "depth-b", "task": "depth", "installed": False},
    ]}}
# a server with instance models (issue 9): inst-a is the default, inst-c is listed but not installed
INSTANCE_MODELS = {
    "defaults": {"seg": "seg-a", "depth": "depth-a", "instances": "inst-a"},
    "models": [
        {"id": "seg-a", "task": "segmentation", "installed": True},
        {"id": "depth-a", "task": "depth", "installed": True},
        {"id": "inst-a", "task": "instances", "installed": True, "description": "YOLO, AGPL-3.0"},
        {"id": "inst-b", "task": "instances", "installed": True},
        {"id": "inst-c", "task": "instances", "installed": False},
    ]}


class Builds:
    """A build_function that records what the panel asked to build."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], str | None]] = []

    def __call__(self, scene: Any, photo: str | None) -> str:
        self.calls.append((dict(scene), photo))
        return f"img2maya_root{len(self.calls)}"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(JsonStore(str(tmp_path / "settings.json")))


@pytest.fixture
def make_panel(qtbot, tmp_path: Path, settings: Settings):
    made: list[Any] = []

    def make(python: list[str] | None = None, server_args: tuple[str, ...] = ("--pipeline", FAKE),
             env: dict[str, str] | None = None, build_function: Any = None, **kwargs: Any) -> Any:
        settings.python = panel_mod.join_python(python or [sys.executable])
        p = panel_mod.Img2MayaPanel(settings=settings, build_function=build_function or Builds(),
                                    server_args=server_args, env=env or server_env(tmp_path),
                                    engine_root=ENGINE_ROOT, autostart=False, **kwargs)
        qtbot.addWidget(p)
        made.append(p)
        return p

    yield make
    for p in made:
        p.shutdown_server()


def _photo(tmp_path: Path, name: str = "photo.png", seed: int = 0) -> str:
    return str(make_photo(tmp_path / name, seed=seed))


def _fake_server_env(tmp_path: Path, mode: str) -> dict[str, str]:
    return dict(os.environ, PANEL_FAKE_MODE=mode, PANEL_FAKE_STARTS=str(tmp_path / "starts.txt"))


def _starts(tmp_path: Path) -> int:
    path = tmp_path / "starts.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


# ----------------------------------------------------------------------------- widgets


def test_widgets_exist_and_start_idle(make_panel) -> None:
    p = make_panel()
    assert p.build_button.text() == "Build" and p.regenerate_button.text() == "Regenerate scene"
    assert p.build_button.isEnabled() and not p.cancel_button.isEnabled()
    assert not p.regenerate_button.isEnabled()  # nothing built yet
    assert (p.recursion_slider.minimum(), p.recursion_slider.maximum()) == (0, 5)
    p.recursion_slider.setValue(4)
    assert p.recursion_label.text() == "4"
    assert p.progress_bar.value() == 0 and p.progress_bar.format() == "idle"
    assert p.seg_combo.count() == 1 and p.seg_combo.currentData() is None  # server default until hello
    assert p.python_edit.text() == sys.executable
    assert p.python_command() == [sys.executable]
    assert p.server_command() == [sys.executable, "-m", "inference_server", "--pipeline", FAKE]
    for label in (p.photo_thumb, p.segment_thumb, p.depth_thumb):
        assert label.pixmap() is None or label.pixmap().isNull()
    p.show_message("something failed\nsecond line", error=True)
    assert p.message == "something failed second line" and p.message_is_error
    assert "e04040" in p.message_label.styleSheet()


def test_python_defaults_to_the_found_system_python(qtbot, settings: Settings, tmp_path: Path) -> None:
    env = dict(os.environ, IMG2MAYA_PYTHON=sys.executable)
    p = panel_mod.Img2MayaPanel(settings=settings, build_function=Builds(), env=env, autostart=False)
    qtbot.addWidget(p)
    assert p.python_command() == protocol.find_system_python(env)[0]
    assert settings.python is None  # not remembered until edited
    p.python_edit.setText("/opt/py/bin/python3 -X utf8")
    p.python_edit.editingFinished.emit()
    assert settings.python == "/opt/py/bin/python3 -X utf8"
    assert p.python_command() == ["/opt/py/bin/python3", "-X", "utf8"]


def test_models_from_hello_defaults_and_remembered(make_panel, settings: Settings) -> None:
    p = make_panel()
    p.fill_models(HELLO)
    assert [p.seg_combo.itemData(i) for i in range(p.seg_combo.count())] == ["seg-a", "seg-b"]
    assert [p.depth_combo.itemData(i) for i in range(p.depth_combo.count())] == ["depth-a", "none"]
    assert p.seg_model() == "seg-a" and p.depth_model() == "depth-a"  # defaults selected
    assert "(default)" in p.seg_combo.currentText()
    p.seg_combo.setCurrentIndex(1)
    p.seg_combo.activated.emit(1)
    p.depth_combo.setCurrentIndex(1)
    p.depth_combo.activated.emit(1)
    assert (settings.seg_model, settings.depth_model) == ("seg-b", "none")
    again = make_panel()
    again.fill_models(HELLO)
    assert again.seg_model() == "seg-b" and again.depth_model() == "none"


def _items(combo: Any) -> list[Any]:
    return [combo.itemData(i) for i in range(combo.count())]


def _choose(combo: Any, data: str | None) -> None:
    """What a user does: pick an item of the combo (activated)."""
    index = combo.findData(data)
    assert index >= 0, (data, _items(combo))
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def _listing(**changes: Any) -> dict[str, Any]:
    """A hello reply with INSTANCE_MODELS, `changes` applied to its instance entries (id -> fields or
    None to drop it) or to its defaults (`defaults=...`)."""
    listing = json.loads(json.dumps(INSTANCE_MODELS))
    if "defaults" in changes:
        listing["defaults"] = changes.pop("defaults")
    models = []
    for m in listing["models"]:
        if m["id"] in changes:
            if changes[m["id"]] is None:
                continue
            m.update(changes[m["id"]])
        models.append(m)
    listing["models"] = models
    return {"type": "hello", "id": 1, "models": listing}


def test_instances_combo_from_hello_defaults_and_remembered(make_panel, settings: Settings) -> None:
    p = make_panel()
    assert _items(p.instances_combo) == [None, "none"]  # before hello: server default, or none
    assert p.instances_model() is None and p.instances_combo.isEnabled()
    p.fill_models(HELLO)  # an older server: no instance model, no default
    assert _items(p.instances_combo) == [None, "none"] and p.instances_model() is None
    p.fill_models(_listing())  # the installed ones, the default preselected
    assert _items(p.instances_combo) == ["inst-a", "inst-b", "none"]
    assert p.instances_model() == "inst-a" and p.instances_combo.currentText() == "inst-a  (default)"
    assert p.instances_combo.itemData(0, QtCore.Qt.ItemDataRole.ToolTipRole) == "YOLO, AGPL-3.0"
    assert p.instances_combo.findText("none (no instances)") == 2
    assert (p.seg_model(), p.depth_model()) == ("seg-a", "depth-a")  # the other combos as before
    p.fill_models(_listing(defaults={"seg": "seg-a", "depth": "depth-a"}))  # no default instance model
    assert _items(p.instances_combo) == [None, "inst-a", "inst-b", "none"] and p.instances_model() is None
    p.fill_models(_listing(**{"inst-a": {"installed": False}}))  # the default's file is missing
    assert _items(p.instances_combo) == [None, "inst-b", "none"] and p.instances_model() is None

    p.fill_models(_listing())
    _choose(p.instances_combo, "inst-b")
    assert settings.instances_model == "inst-b"
    assert (settings.seg_model, settings.depth_model) == ("seg-a", "depth-a")
    again = make_panel()
    again.fill_models(_listing())
    assert again.instances_model() == "inst-b"  # remembered
    again.fill_models(_listing(**{"inst-b": None}))  # no longer installed: the default again
    assert again.instances_model() == "inst-a"
    _choose(again.instances_combo, "none")
    assert settings.instances_model == "none"
    third = make_panel()
    assert third.instances_model() == "none"  # remembered, before any hello
    third.fill_models(_listing())
    assert third.instances_model() == "none"
    _choose(third.instances_combo, "inst-a")
    assert settings.instances_model == "inst-a"


def test_set_photo_thumbnail_recent_and_bad_files(make_panel, tmp_path: Path, settings: Settings) -> None:
    p = make_panel()
    a, b = _photo(tmp_path, "a.png"), _photo(tmp_path, "b.png", seed=1)
    assert p.set_photo(a) and p.set_photo(b)
    assert p.photo == b and p.photo_edit.text() == b
    assert not p.photo_thumb.pixmap().isNull()
    assert [p.recent_combo.itemData(i) for i in range(p.recent_combo.count())] == [b, a]
    assert settings.recent_files == [b, a]
    p.recent_combo.activated.emit(1)
    assert p.photo == a
    text = tmp_path / "notes.txt"
    text.write_text("x")
    assert not p.set_photo(str(text))
    assert p.message_is_error and "not an image" in p.message and p.photo == a


def _mime(path: str) -> Any:
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(path)])
    return mime


def test_drag_and_drop_of_an_image_sets_the_photo(make_panel, tmp_path: Path) -> None:
    p = make_panel()
    photo = _photo(tmp_path)
    mime = _mime(photo)
    enter = QtGui.QDragEnterEvent(QtCore.QPoint(5, 5), QtCore.Qt.DropAction.CopyAction, mime,
                                  QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    p.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(QtCore.QPointF(5, 5), QtCore.Qt.DropAction.CopyAction, mime,
                            QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    p.dropEvent(drop)
    assert drop.isAccepted()
    assert p.photo == photo and not p.photo_thumb.pixmap().isNull()
    other = tmp_path / "scene.json"
    other.write_text("{}")
    other_mime = _mime(str(other))  # kept alive: the event does not own its mime data
    enter = QtGui.QDragEnterEvent(QtCore.QPoint(5, 5), QtCore.Qt.DropAction.CopyAction, other_mime,
                                  QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    p.dragEnterEvent(enter)
    assert not enter.isAccepted()
    assert p.acceptDrops() and not p.photo_edit.acceptDrops()  # the line edit passes drops to the panel


def test_settings_are_remembered_by_a_new_panel(make_panel, tmp_path: Path) -> None:
    p = make_panel()
    photo = _photo(tmp_path)
    p.set_photo(photo)
    p.recursion_slider.setValue(3)
    p.python_edit.setText("/custom/python3")
    p.python_edit.editingFinished.emit()
    again = panel_mod.Img2MayaPanel(settings=p.settings, build_function=Builds(), autostart=False)
    try:
        assert again.recursion_slider.value() == 3 and again.recursion_label.text() == "3"
        assert again.python_edit.text() == "/custom/python3"
        assert again.recent_combo.itemData(0) == photo
    finally:
        again.deleteLater()


# ----------------------------------------------------------------------------- server (fake pipeline)


def test_build_progress_result_and_previews(make_panel, qtbot, tmp_path: Path) -> None:
    builds = Builds()
    p = make_panel(env=server_env(tmp_path, IMG2MAYA_FAKE_SLOW="1.0"), build_function=builds)
    photo = _photo(tmp_path, "big.png")
    p.set_photo(photo)
    p.recursion_slider.setValue(1)
    values: list[int] = []
    formats: list[str] = []
    p.progress_bar.valueChanged.connect(lambda v: (values.append(v), formats.append(p.progress_bar.format())))
    assert p.build()
    assert not p.build_button.isEnabled() and p.cancel_button.isEnabled()
    sent = p.sent[-1]
    assert json.loads(protocol.encode(sent)) == sent
    assert sent["type"] == "analyze" and sent["photo"] == photo and sent["recursion"] == 1
    qtbot.waitUntil(lambda: len(builds.calls) == 1, timeout=30000)
    assert p.server.info is not None and p.server.info["protocol"] == 1
    assert any(0 < v < 100 for v in values), values  # progress events moved the bar
    assert any(f.startswith("segmentation") for f in formats), formats
    assert p.progress_bar.value() == 100 and p.progress_bar.format() == "done"
    scene, built_photo = builds.calls[0]
    assert built_photo == photo and scene["schema"] == "img2maya/scene@1"
    assert p.last_root == "img2maya_root1" and p.message.startswith("built img2maya_root1")
    assert not p.message_is_error
    assert p.build_button.isEnabled() and p.regenerate_button.isEnabled() and not p.cancel_button.isEnabled()
    files = p.last_result["files"]
    assert os.path.isfile(files["preview"]) and os.path.isfile(files["depth_preview"])
    assert not p.segment_thumb.pixmap().isNull() and not p.depth_thumb.pixmap().isNull()
    assert network_runs(tmp_path) == 1


def test_slider_after_a_build_sends_one_debounced_regenerate(make_panel, qtbot, tmp_path: Path) -> None:
    builds = Builds()
    p = make_panel(build_function=builds)
    p.set_photo(_photo(tmp_path))
    p.build()
    qtbot.waitUntil(lambda: len(builds.calls) == 1, timeout=30000)
    pid = p.server.pid
    for value in (1, 2, 3):  # a drag: one regenerate for the last value only
        p.recursion_slider.setValue(value)
    assert [m["type"] for m in p.sent] == ["analyze"]  # nothing sent before the debounce delay
    qtbot.waitUntil(lambda: len(builds.calls) == 2, timeout=30000)
    regen = [m for m in p.sent if m["type"] == "regenerate"]
    assert len(regen) == 1
    wire = json.loads(protocol.encode(regen[0]))
    assert wire["recursion"] == 3 and wire["supersede"] is True and wire["photo"] == p.photo
    assert builds.calls[1][0]["options"]["recursion"] == 3  # the fake pipeline echoes the options
    assert p.message.startswith("regenerated") and "cached networks" in p.message
    assert p.server.pid == pid  # the server was kept
    assert network_runs(tmp_path) == 1  # regenerate ran no network
    p.regenerate_button.click()  # the button: same request without supersede
    qtbot.waitUntil(lambda: len(builds.calls) == 3, timeout=30000)
    assert p.sent[-1]["type"] == "regenerate" and "supersede" not in p.sent[-1]


def test_regenerate_without_cache_falls_back_to_analyze(make_panel, qtbot, tmp_path: Path) -> None:
    builds = Builds()
    p = make_panel(build_function=builds)
    p.set_photo(_photo(tmp_path))
    assert p.regenerate()
    qtbot.waitUntil(lambda: len(builds.calls) == 1, timeout=30000)
    assert [m["type"] for m in p.sent] == ["regenerate", "analyze"]


def test_cancel_stops_the_job_and_keeps_the_server(make_panel, qtbot, tmp_path: Path) -> None:
    builds = Builds()
    p = make_panel(env=server_env(tmp_path, IMG2MAYA_FAKE_SLOW="30"), build_function=builds)
    p.set_photo(_photo(tmp_path))
    p.build()
    qtbot.waitUntil(lambda: p.progress_bar.value() > 0, timeout=30000)
    job = p.job_id
    p.cancel_button.click()
    assert p.sent[-1] == {"id": p.sent[-1]["id"], "type": "cancel", "target": job}
    qtbot.waitUntil(lambda: p.job_id is None, timeout=5000)
    assert p.message == "cancelled" and p.progress_bar.format() == "cancelled"
    assert p.server.running and not builds.calls
    assert p.build_button.isEnabled() and not p.cancel_button.isEnabled()


def test_cancel_kills_a_server_that_does_not_answer(make_panel, qtbot, tmp_path: Path) -> None:
    builds = Builds()
    p = make_panel(python=[sys.executable, str(FAKE_SERVER)], server_args=(),
                   env=_fake_server_env(tmp_path, "deaf"), build_function=builds)
    p.cancel_timeout_ms = 300
    p.set_photo(_photo(tmp_path))
    p.build()
    qtbot.waitUntil(lambda: p.progress_bar.value() == 25, timeout=30000)
    proc = p.server.process
    p.cancel()
    qtbot.waitUntil(lambda: proc.state() == QtCore.QProcess.ProcessState.NotRunning, timeout=5000)
    assert not p.server.running and p.job_id is None
    assert p.message_is_error and "did not answer the cancel" in p.message
    assert p.build_button.isEnabled()


def test_a_crashed_server_is_reported_and_restarted(make_panel, qtbot, tmp_path: Path) -> None:
    builds = Builds()
    p = make_panel(python=[sys.executable, str(FAKE_SERVER)], server_args=(),
                   env=_fake_server_env(tmp_path, "crash_first"), build_function=builds)
    p.set_photo(_photo(tmp_path))
    errors: list[str] = []
    p.failed.connect(errors.append)
    p.build()
    qtbot.waitUntil(lambda: bool(errors), timeout=30000)
    assert "exited with code 3" in p.message
    assert "fatal: simulated crash in the segmentation network" in p.message
    assert p.message_is_error and "\n" not in p.message
    assert not p.server.running and p.build_button.isEnabled() and not p.cancel_button.isEnabled()
    assert _starts(tmp_path) == 1
    p.build_button.click()  # the next Build starts a new server
    qtbot.waitUntil(lambda: len(builds.calls) == 1, timeout=30000)
    assert _starts(tmp_path) == 2 and p.server.running
    assert p.message.startswith("built") and not p.message_is_error


def _camera_panel(make_panel, tmp_path: Path, builds: Builds) -> tuple[Any, Path]:
    """A panel on the scripted fake server (its camera follows the request), after one Build."""
    log = tmp_path / "requests.jsonl"
    env = dict(_fake_server_env(tmp_path, ""), PANEL_FAKE_REQUESTS=str(log))
    p = make_panel(python=[sys.executable, str(FAKE_SERVER)], server_args=(), env=env, build_function=builds)
    p.set_photo(_photo(tmp_path))
    return p, log


def _received(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _type(edit: Any, text: str) -> None:
    """What a user does: type into the field (textEdited) and press Enter (editingFinished)."""
    edit.setText(text)
    edit.textEdited.emit(text)
    edit.editingFinished.emit()


def test_the_camera_estimate_is_drawn_over_the_photo(make_panel, qtbot, tmp_path: Path) -> None:
    builds = Builds()
    p, log = _camera_panel(make_panel, tmp_path, builds)
    plain = p.photo_thumb.pixmap().toImage()
    assert p.camera_label.text() == "" and p.camera_overlay is None
    assert p.build()
    qtbot.waitUntil(lambda: len(builds.calls) == 1, timeout=30000)
    (sent,) = _received(log)
    assert sent["type"] == "analyze" and "fov_deg" not in sent and sent["options"] == {}  # all automatic
    geo = p.camera_overlay
    assert geo is not None and geo.horizon is not None
    assert [v.name for v in geo.vanishing] == ["vertical", "horizontal 1", "horizontal 2"]
    assert (round(geo.pitch_deg, 6), round(geo.roll_deg, 6)) == (-5.0, 1.0)  # the fake camera's
    text = p.camera_label.text()
    assert text.startswith("FOV 67.4 deg, 27.0 mm (from the lines); pitch -5.0, roll 1.0 deg (from the lines)")
    assert text.endswith("vanishing points: confidence 0.80, 120 segments")
    drawn = p.photo_thumb.pixmap().toImage()
    assert drawn.size() == plain.size() and drawn != plain  # the lines are on the thumbnail
    horizon_row = int(round(((geo.horizon[0][1] + geo.horizon[1][1]) / 2) * drawn.height() / geo.height))
    colours = {QtGui.QColor(drawn.pixel(x, y)).name() for x in range(drawn.width())
               for y in range(max(0, horizon_row - 2), min(drawn.height(), horizon_row + 3))}
    assert panel_mod.HORIZON_COLOR in colours
    p.set_photo(_photo(tmp_path, "other.png", seed=1))  # another photo: no estimate shown
    assert p.camera_label.text() == "" and p.camera_overlay is None


def test_typed_camera_values_send_a_regenerate(make_panel, qtbot, tmp_path: Path, settings: Settings) -> None:
    builds = Builds()
    p, log = _camera_panel(make_panel, tmp_path, builds)
    p.build()
    qtbot.waitUntil(lambda: len(builds.calls) == 1, timeout=30000)
    assert p.last_result["cached"] is False
    _type(p.fov_edit, "45")  # Enter: a regenerate (debounced), never an analyze
    assert p._regen_timer.isActive()
    qtbot.waitUntil(lambda: len(builds.calls) == 2, timeout=30000)
    regen = _received(log)[-1]
    assert regen["type"] == "regenerate" and regen["fov_deg"] == 45.0 and "focal_px" not in regen
    assert regen["options"] == {} and regen["supersede"] is True and regen["photo"] == p.photo
    assert builds.calls[1][0]["camera"]["fov_horizontal_deg"] == pytest.approx(45.0)
    assert "FOV 45.0 deg, 43.5 mm (typed)" in p.camera_label.text()
    assert p.message.startswith("regenerated") and not p.message_is_error
    p.fov_edit.editingFinished.emit()  # focus leaving an unchanged field sends nothing
    assert not p._regen_timer.isActive()

    _type(p.focal_edit, "50")  # a focal length in mm: its field of view on the 36 mm film back
    assert p.fov_edit.text() == ""  # one of the two
    qtbot.waitUntil(lambda: len(builds.calls) == 3, timeout=30000)
    regen = _received(log)[-1]
    assert regen["fov_deg"] == pytest.approx(math.degrees(2 * math.atan(18 / 50)))
    assert builds.calls[2][0]["camera"]["focal_length_mm"] == pytest.approx(50.0, abs=1e-3)
    assert "50.0 mm (typed)" in p.camera_label.text()

    _type(p.height_edit, "2.5")
    qtbot.waitUntil(lambda: len(builds.calls) == 4, timeout=30000)
    assert _received(log)[-1]["options"] == {"camera_height_m": 2.5}
    assert builds.calls[3][0]["camera"]["translate"][1] == 2.5
    p.ignore_exif_check.setChecked(True)  # a cropped photo's EXIF lies
    qtbot.waitUntil(lambda: len(builds.calls) == 5, timeout=30000)
    regen = _received(log)[-1]
    assert regen["type"] == "regenerate" and regen["options"] == {"camera_height_m": 2.5, "ignore_exif": True}
    assert regen["fov_deg"] == pytest.approx(math.degrees(2 * math.atan(18 / 50)))

    # remembered: a new panel shows them
    assert (settings.fov_deg, settings.focal_mm, settings.camera_height_m, settings.ignore_exif) == \
        (None, 50.0, 2.5, True)
    again = panel_mod.Img2MayaPanel(settings=settings, build_function=Builds(), autostart=False)
    try:
        assert (again.fov_edit.text(), again.focal_edit.text(), again.height_edit.text()) == ("", "50", "2.5")
        assert again.ignore_exif_check.isChecked()
    finally:
        again.deleteLater()

    for edit in (p.focal_edit, p.height_edit):  # empty fields: automatic again
        _type(edit, "")
    p.ignore_exif_check.setChecked(False)
    qtbot.waitUntil(lambda: len(builds.calls) == 6, timeout=30000)
    regen = _received(log)[-1]
    assert "fov_deg" not in regen and regen["options"] == {}
    assert "(from the lines)" in p.camera_label.text()
    assert [m["type"] for m in _received(log)] == ["analyze"] + ["regenerate"] * 5  # networks ran once
    p.build()  # Build sends the typed values with the analyze too
    _type(p.fov_edit, "70")  # typed while the analyze runs: a regenerate follows it
    qtbot.waitUntil(lambda: len(builds.calls) == 8, timeout=30000)
    assert [m["type"] for m in _received(log)][-2:] == ["analyze", "regenerate"]
    assert _received(log)[-1]["fov_deg"] == 70.0


def test_the_chosen_instance_model_is_sent(make_panel, qtbot, tmp_path: Path, settings: Settings) -> None:
    builds = Builds()
    log = tmp_path / "requests.jsonl"
    env = dict(_fake_server_env(tmp_path, ""), PANEL_FAKE_REQUESTS=str(log),
               PANEL_FAKE_MODELS=json.dumps(INSTANCE_MODELS))
    p = make_panel(python=[sys.executable, str(FAKE_SERVER)], server_args=(), env=env, build_function=builds)
    p.set_photo(_photo(tmp_path))
    assert p.ensure_server()
    qtbot.waitUntil(lambda: p.instances_combo.count() == 3, timeout=30000)  # the server's hello filled it
    assert _items(p.instances_combo) == ["inst-a", "inst-b", "none"] and p.instances_model() == "inst-a"
    _choose(p.instances_combo, "inst-b")
    assert p.build()
    qtbot.waitUntil(lambda: len(builds.calls) == 1, timeout=30000)
    (sent,) = _received(log)
    assert sent["type"] == "analyze" and sent["instances_model"] == "inst-b"
    assert (sent["seg_model"], sent["depth_model"]) == ("seg-a", "depth-a")
    assert p.built_key == p._key() == (p.photo, "seg-a", "depth-a", "inst-b")

    _choose(p.instances_combo, "none")  # another instance model: the build is no longer current
    assert settings.instances_model == "none" and p.built_key != p._key()
    p.recursion_slider.setValue(2)  # so the slider sends nothing (Build, or Regenerate, does)
    qtbot.wait(panel_mod.REGENERATE_DELAY_MS + 200)
    assert len(_received(log)) == 1
    p.regenerate_button.click()
    qtbot.waitUntil(lambda: len(builds.calls) == 2, timeout=30000)
    regen = _received(log)[-1]
    assert regen["type"] == "regenerate" and regen["instances_model"] == "none" and regen["recursion"] == 2
    assert p.built_key == p._key() == (p.photo, "seg-a", "depth-a", "none")
    p.recursion_slider.setValue(3)  # current again: the slider's regenerate carries it too
    qtbot.waitUntil(lambda: len(builds.calls) == 3, timeout=30000)
    assert _received(log)[-1]["instances_model"] == "none" and _received(log)[-1]["supersede"] is True


def test_server_default_instances_leave_the_field_out(make_panel, qtbot, tmp_path: Path) -> None:
    builds = Builds()
    p, log = _camera_panel(make_panel, tmp_path, builds)  # its hello lists no model (an older server)
    assert p.build()
    qtbot.waitUntil(lambda: len(builds.calls) == 1, timeout=30000)
    assert p.instances_model() is None
    (sent,) = _received(log)
    assert "instances_model" not in sent and "seg_model" not in sent  # the server's defaults
    assert json.loads(protocol.encode(p.sent[-1])) == sent


@pytest.mark.parametrize("field, text, message", [
    ("fov", "179", "field of view must be between 1 and 179 degrees (exclusive), got 179"),
    ("fov", "1", "field of view must be between 1 and 179 degrees (exclusive), got 1"),
    ("fov", "0", "got 0"),
    ("fov", "nan", "got nan"),
    ("fov", "wide", "field of view: not a number: 'wide'"),
    ("focal", "0", "focal length must be a positive number of mm, got 0"),
    ("focal", "-50", "got -50"),
    ("focal", "inf", "got inf"),
    ("height", "0", "camera height must be more than 0 and at most 1000 m, got 0"),
    ("height", "-1.6", "got -1.6"),
    ("height", "inf", "got inf"),
    ("height", "nan", "got nan"),
])
def test_bad_camera_values_send_nothing_and_keep_the_scene(make_panel, qtbot, tmp_path: Path, settings: Settings,
                                                           field: str, text: str, message: str) -> None:
    builds = Builds()
    p, log = _camera_panel(make_panel, tmp_path, builds)
    p.build()
    qtbot.waitUntil(lambda: len(builds.calls) == 1, timeout=30000)
    good, root, summary = p.last_result, p.last_root, p.camera_label.text()
    thumb = p.photo_thumb.pixmap().toImage()
    sent = list(p.sent)
    errors: list[str] = []
    p.failed.connect(errors.append)
    edit = {"fov": p.fov_edit, "focal": p.focal_edit, "height": p.height_edit}[field]
    _type(edit, text)
    assert p.message_is_error and message in p.message and "\n" not in p.message and errors == [p.message]
    assert not p._regen_timer.isActive()
    assert not p.regenerate()  # the button: refused the same way
    assert not p.build()
    p.recursion_slider.setValue(2)  # a slider step neither
    qtbot.wait(panel_mod.REGENERATE_DELAY_MS + 200)
    assert p.sent == sent and len(_received(log)) == 1 and len(builds.calls) == 1  # nothing sent
    assert p.last_result is good and p.last_root == root and p.camera_label.text() == summary
    assert p.photo_thumb.pixmap().toImage() == thumb
    assert p.message_is_error and message in p.message
    assert (settings.fov_deg, settings.focal_mm, settings.camera_height_m) == (None, None, None)  # not remembered
    _type(edit, "")  # fixed: the error goes, the slider's regenerate can be sent
    assert not p.message_is_error
    assert p.regenerate()
    qtbot.waitUntil(lambda: len(builds.calls) == 2, timeout=30000)
    assert _received(log)[-1]["recursion"] == 2


def test_a_field_of_view_and_a_focal_length_together_are_refused(make_panel, tmp_path: Path) -> None:
    p = make_panel()
    p.set_photo(_photo(tmp_path))
    p.fov_edit.setText("60")  # set by a script (no textEdited): both fields filled
    p.focal_edit.setText("35")
    assert not p.build() and p.sent == []
    assert p.message == "give a field of view or a focal length, not both" and p.message_is_error


def test_a_python_that_cannot_start_is_reported(make_panel, qtbot, tmp_path: Path) -> None:
    p = make_panel(python=[str(tmp_path / "no" / "python3")])
    p.set_photo(_photo(tmp_path))
    errors: list[str] = []
    p.failed.connect(errors.append)
    p.build()
    qtbot.waitUntil(lambda: bool(errors), timeout=10000)
    assert "cannot start the inference server" in p.message and p.build_button.isEnabled()


def test_server_environment_is_clean(make_panel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = dict(server_env(tmp_path), PYTHONHOME="/maya/python", PYTHONPATH="/maya/site-packages")
    p = make_panel(env=env)
    p.set_photo(_photo(tmp_path))
    seen: dict[str, Any] = {}
    monkeypatch.setattr(p.server, "start", lambda command, env: seen.update(command=command, env=env))
    p.ensure_server()
    assert "PYTHONHOME" not in seen["env"] and seen["env"]["PYTHONPATH"] == ENGINE_ROOT
    assert seen["command"][-4:] == ["-m", "inference_server", "--pipeline", FAKE]


# ----------------------------------------------------------------------------- the dockable wrapper


def test_show_is_one_tool_window_without_maya(qtbot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              fake_maya) -> None:
    monkeypatch.setattr(panel_mod, "_INSTANCE", None)
    monkeypatch.setattr(panel_mod.Img2MayaPanel, "autostart", False, raising=False)
    monkeypatch.setattr(panel_mod, "_mixin", lambda: None)
    import img2maya

    dock = img2maya.show()
    qtbot.addWidget(dock)
    assert img2maya.show() is dock and panel_mod.instance() is dock  # one instance only
    assert isinstance(dock.panel, panel_mod.Img2MayaPanel) and dock.isVisible()
    assert dock.objectName() == panel_mod.OBJECT_NAME
    assert dock.panel.server is panel_mod.shared_server()  # kept warm across close/reopen of the panel
    panel_mod.close()
    assert panel_mod.instance() is None


def test_show_docks_through_the_maya_mixin_with_restore(qtbot, monkeypatch: pytest.MonkeyPatch,
                                                        fake_maya) -> None:
    from maya import cmds

    fake_maya.batch = False
    shown: list[dict[str, Any]] = []

    class FakeMixin:  # what maya.app.general.mayaMixin.MayaQWidgetDockableMixin.show does, in short
        def __init__(self, parent: Any = None, *args: Any, **kwargs: Any) -> None:
            super().__init__(parent, *args, **kwargs)

        def show(self, dockable: bool = False, **kwargs: Any) -> None:
            shown.append(dict(kwargs, dockable=dockable))
            cmds.workspaceControl(self.objectName() + "WorkspaceControl", label=self.windowTitle(),
                                  uiScript=kwargs["uiScript"], checksPlugins=kwargs["checksPlugins"],
                                  retain=kwargs["retain"], floating=True)
            QtWidgets.QWidget.show(self)

    monkeypatch.setattr(panel_mod, "_INSTANCE", None)
    monkeypatch.setattr(panel_mod.Img2MayaPanel, "autostart", False, raising=False)
    monkeypatch.setattr(panel_mod, "_mixin", lambda: FakeMixin)
    cmds.workspaceControl(panel_mod.WORKSPACE_CONTROL)  # left over from an earlier session
    dock = panel_mod.show()
    qtbot.addWidget(dock)
    assert isinstance(dock, FakeMixin)
    assert shown == [{"dockable": True, "uiScript": panel_mod.UI_SCRIPT, "checksPlugins": True, "retain": False}]
    assert fake_maya.ui == {panel_mod.WORKSPACE_CONTROL: "workspaceControl"}  # the stale one was replaced
    assert panel_mod.show() is dock and len(shown) == 1  # raised through the control, not recreated
    exec(panel_mod.UI_SCRIPT, {})  # Maya's uiScript after a restart (through img2maya.api.restore)
    restored = panel_mod.instance()
    qtbot.addWidget(restored)
    assert isinstance(restored, FakeMixin) and panel_mod.instance() is restored
    panel_mod.close()
    assert fake_maya.ui == {}


def test_qt_is_the_vendored_qt_py() -> None:
    """The panel's Qt is the Qt.py shipped in scripts/img2maya/vendor, whatever else is installed."""
    import PySide6.QtWidgets
    from img2maya import qt

    assert qt.Qt.__name__ == "img2maya.vendor.Qt"
    assert Path(qt.Qt.__file__).resolve() == ROOT / "scripts" / "img2maya" / "vendor" / "Qt.py"
    assert qt.BINDING == "PySide6" and qt.QtWidgets.QWidget is PySide6.QtWidgets.QWidget
    assert panel_mod.QtWidgets is qt.QtWidgets


def test_the_maya_side_has_no_import_loop() -> None:
    """img2maya's modules import one another without a cycle (function-level imports included): the
    panel is server_process <- panel_widget (+ panel_layout) <- panel (the dock) <- api, and nothing of
    the panel imports img2maya.api."""
    import ast

    package = ROOT / "scripts" / "img2maya"
    deps: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
        deps[path.stem] = {d for d in found if (package / f"{d}.py").is_file() and d != path.stem}
    deps.pop("__init__")  # the package itself: its lazy wrappers call api
    assert deps["panel"] == {"panel_layout", "panel_widget", "qt", "server_process"}
    assert deps["server_process"] == {"protocol", "qt"}
    assert "api" not in deps["panel_widget"] | deps["panel_layout"] | deps["server_process"]

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(d == goal or (d not in seen and not seen.add(d) and reaches(d, goal, seen))
                   for d in deps.get(start, ()))

    assert [m for m in deps if reaches(m, m, set())] == []


def test_split_and_join_python() -> None:
    assert panel_mod.split_python("  ") == []
    assert panel_mod.split_python(sys.executable) == [sys.executable]
    assert panel_mod.split_python("py -3") == ["py", "-3"]
    assert panel_mod.split_python(panel_mod.join_python(["/a b/python", "-X", "utf8"])) == \
        ["/a b/python", "-X", "utf8"]


# ----------------------------------------------------------------------------- end to end


@pytest.mark.shared
@pytest.mark.slow
def test_end_to_end_real_server_real_photo_fake_maya(qtbot, fake_maya, models_dir: Path, samples_dir: Path,
                                                    tmp_path: Path, settings: Settings) -> None:
    """photo -> panel -> real server (default networks) -> scene -> builder on the fake maya.cmds."""
    pytest.importorskip("inference_server.pipeline")
    from maya import cmds

    photo = str(samples_dir / "person_motorbike_road.jpg")
    env = dict(os.environ, IMG2MAYA_MODELS=str(models_dir), IMG2MAYA_CACHE=str(tmp_path / "cache"))
    settings.python = sys.executable
    p = panel_mod.Img2MayaPanel(settings=settings, env=env, engine_root=str(ROOT), autostart=True)
    qtbot.addWidget(p)
    built: list[str] = []
    p.built.connect(built.append)
    try:
        p.show()
        qtbot.waitUntil(lambda: p.seg_combo.isEnabled(), timeout=60000)  # hello filled the combos
        assert p.seg_model() == "deeplabv3-mnv2-ade20k150" and p.depth_model() == "pydnet-mobile-v1"
        assert p.set_photo(photo)
        p.build_button.click()
        qtbot.waitUntil(lambda: bool(built) or p.message_is_error, timeout=240000)
        assert not p.message_is_error, p.message
        root = built[0]
        assert p.last_result["cached"] is False  # the networks ran (fresh cache)
        scene = p.last_result["scene"]
        models = {"segmentation": "deeplabv3-mnv2-ade20k150", "depth": "pydnet-mobile-v1"}
        if (models_dir / "yolov8n-seg-coco-int8").is_dir():  # instances are on when installed
            models["instances"] = "yolov8n-seg-coco-int8"
        assert scene["source"]["models"] == models
        count = panel_mod._count_objects(scene["objects"])
        assert root == "img2maya_person_motorbike_road" and cmds.objExists(root)
        assert fake_maya.nodes[root].parent is None
        cam = root + "_cam"
        assert fake_maya.nodes[cam].parent.name == root
        assert fake_maya.nodes[cam + "Shape"].attrs["focalLength"] == pytest.approx(
            scene["camera"]["focal_length_mm"])
        planes = [n for n in fake_maya.nodes.values() if n.type == "imagePlane"]
        assert len(planes) == 1 and planes[0].attrs["imageName"] == photo
        geos = [n for n in fake_maya.nodes if n.endswith("_geo")]
        assert count > 0 and len(geos) >= count
        assert sum(1 for n in geos if cmds.attributeQuery("img2maya_label", node=n, exists=True)) == count
        assert not p.segment_thumb.pixmap().isNull() and not p.depth_thumb.pixmap().isNull()
        assert p.camera_overlay is not None and p.camera_label.text().startswith("FOV "), p.camera_label.text()

        p.recursion_slider.setValue(1)  # regenerate: cached networks, the build replaced
        qtbot.waitUntil(lambda: len(built) == 2 or p.message_is_error, timeout=120000)
        assert not p.message_is_error, p.message
        assert p.last_result["cached"] is True and built[1] == root
        assert [n for n in cmds.ls(assemblies=True) if n.startswith("img2maya_")] == [root]
        assert len([n for n in fake_maya.nodes.values() if n.type == "imagePlane"]) == 1

        _type(p.fov_edit, "50")  # a typed field of view: regenerate, the camera follows, no network
        p.ignore_exif_check.setChecked(True)
        qtbot.waitUntil(lambda: len(built) == 3 or p.message_is_error, timeout=120000)
        assert not p.message_is_error, p.message
        sent = p.sent[-1]
        assert sent["type"] == "regenerate" and sent["fov_deg"] == 50.0 and sent["options"] == {"ignore_exif": True}
        assert p.last_result["cached"] is True
        camera = p.last_result["scene"]["camera"]
        assert camera["focal_source"] == "user" and camera["fov_horizontal_deg"] == pytest.approx(50.0, abs=0.01)
        assert fake_maya.nodes[cam + "Shape"].attrs["focalLength"] == pytest.approx(
            36.0 / (2 * math.tan(math.radians(25.0))), abs=0.01)
        assert "FOV 50.0 deg, 38.6 mm (typed)" in p.camera_label.text()
    finally:
        p.shutdown_server()
