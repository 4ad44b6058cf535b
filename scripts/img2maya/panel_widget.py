"""The img2maya panel widget: `Img2MayaPanel`, a plain QWidget with every control of the panel (made
by `img2maya.panel_layout`) and all its logic: the photo (browse, recent, drag and drop, thumbnail), the
models, the recursion slider (a debounced `regenerate` after a build), the camera fields (checked by
`img2maya.camera_input`; a changed value sends a `regenerate`, no network runs), Build / Regenerate /
Cancel and the server's messages (progress, result, error), and the camera estimate drawn over the photo
after a build (horizon and vanishing directions, `img2maya.camera_overlay`).

It needs no Maya: the server runs through `img2maya.server_process.ServerProcess` (a QProcess, so Maya's
main thread never blocks) and a result is handed to `build_function` (default: `img2maya.builder.build`,
what `img2maya.build_scene` does with a scene dict). Tests drive it under QT_QPA_PLATFORM=offscreen. The
dock that holds it inside Maya is `img2maya.panel`.

Qt only through `img2maya.qt`. Python 3.7+.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import camera_input, camera_overlay, protocol
from .panel_layout import make_widgets
from .qt import QtCore, QtGui, QtWidgets  # typed Any: written against what PySide2 and 6 share
from .server_process import ServerProcess, join_python, split_python
from .settings import Settings

OBJECT_NAME = "img2mayaPanel"
TITLE = "img2maya"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".exr", ".tga")
IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.tif *.tiff *.bmp *.webp *.exr *.tga);;All files (*)"
REGENERATE_DELAY_MS = 300  # slider debounce
CANCEL_TIMEOUT_MS = 2000  # a server that does not answer a cancel within this is killed
ERROR_STYLE = "color: #e04040;"
# the camera overlay on the photo thumbnail: horizon, then the vanishing directions
HORIZON_COLOR = "#ffd23c"
VANISHING_COLORS = {"vertical": "#3cdc5a", "horizontal 1": "#ff5a50", "horizontal 2": "#50a0ff"}


def is_image(path: str) -> bool:
    return os.path.isfile(path) and path.lower().endswith(IMAGE_EXTENSIONS)


def _default_build(scene: Mapping[str, Any], photo: str | None, look: str | None = None) -> str:
    from . import builder  # maya.cmds: only when a scene is built

    return builder.build(scene, image_path=photo, look=look)


class Img2MayaPanel(QtWidgets.QWidget):
    """What every control of the panel does (the controls: panel_layout.make_widgets); see docs/MAYA.md,
    "Panel"."""

    #: start the server when the panel is first shown (its `hello` fills the model combos)
    autostart = True
    built = QtCore.Signal(str)  # root group of a finished build
    failed = QtCore.Signal(str)  # message line text of an error

    def __init__(self, parent: Any = None, settings: Settings | None = None,
                 build_function: Callable[[Mapping[str, Any], str | None], str] | None = None,
                 server_args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 engine_root: str | None = None, autostart: bool | None = None,
                 server: ServerProcess | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(OBJECT_NAME + "Body")
        self.setWindowTitle(TITLE)
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else Settings()
        self.build_function = build_function or _default_build
        self.server_args = list(server_args)
        self.env = dict(env) if env is not None else None
        self.engine_root = engine_root if engine_root is not None else protocol.default_engine_root(env)
        if autostart is not None:
            self.autostart = autostart
        self.cancel_timeout_ms = CANCEL_TIMEOUT_MS
        # the session's shared server (show()) outlives a closed panel; a test's own dies with it
        self.server = server if server is not None else ServerProcess(self)
        self.server.message.connect(self._on_message)
        self.server.died.connect(self._on_died)

        self.photo: str | None = None
        self.job_id: str | None = None  # the request whose messages drive the UI
        self.job_kind: str | None = None
        self.job_started = 0.0
        self.job_recursion = 0
        self.last_result: dict[str, Any] | None = None
        self.last_root: str | None = None
        self.built_key: tuple[Any, ...] | None = None  # (photo, seg, depth, instances) of the last build
        self.job_camera: camera_input.CameraRequest | None = None  # the camera values the job was sent
        self.built_camera: camera_input.CameraRequest | None = None  # ... and those of the last build
        self.camera_overlay: camera_overlay.Overlay | None = None  # drawn over the photo thumbnail
        self._photo_pixmap: Any = None  # the photo thumbnail without the overlay
        self.sent: list[dict[str, Any]] = []  # every request sent (tests, debugging)

        self._regen_timer = QtCore.QTimer(self)
        self._regen_timer.setSingleShot(True)
        self._regen_timer.setInterval(REGENERATE_DELAY_MS)
        self._regen_timer.timeout.connect(self._slider_regenerate)
        self._cancel_timer = QtCore.QTimer(self)
        self._cancel_timer.setSingleShot(True)
        self._cancel_timer.timeout.connect(self._cancel_timed_out)

        make_widgets(self)
        self._connect()
        self._load_settings()
        self._set_busy(False)
        app = QtWidgets.QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown_server)

    def _connect(self) -> None:
        """What the controls that panel_layout made do."""
        self.photo_edit.editingFinished.connect(self._photo_edited)
        self.browse_button.clicked.connect(self.browse_photo)
        self.recent_combo.activated.connect(self._recent_picked)
        self.recursion_slider.valueChanged.connect(self._recursion_changed)
        for combo in (self.seg_combo, self.depth_combo, self.instances_combo):
            combo.activated.connect(self._models_changed)
        self.look_combo.activated.connect(self._look_changed)
        for edit in (self.fov_edit, self.focal_edit, self.height_edit):
            edit.editingFinished.connect(self._camera_edited)
        # one of the two: typing a field of view empties the focal length and the other way round
        self.fov_edit.textEdited.connect(lambda _text: self.focal_edit.clear())
        self.focal_edit.textEdited.connect(lambda _text: self.fov_edit.clear())
        self.ignore_exif_check.toggled.connect(self._camera_edited)
        self.python_edit.editingFinished.connect(self._python_changed)
        self.python_button.clicked.connect(self.browse_python)
        self.build_button.clicked.connect(self.build)
        self.regenerate_button.clicked.connect(self._regenerate_clicked)
        self.cancel_button.clicked.connect(self.cancel)

    def _load_settings(self) -> None:
        self.recursion_slider.blockSignals(True)
        self.recursion_slider.setValue(self.settings.recursion)
        self.recursion_slider.blockSignals(False)
        self.recursion_label.setText(str(self.recursion_slider.value()))
        python = self.settings.python
        if not python:
            found = protocol.find_system_python(self.env)
            python = join_python(found[0]) if found else ""
        self.python_edit.setText(python)
        for edit, value in ((self.fov_edit, self.settings.fov_deg), (self.focal_edit, self.settings.focal_mm),
                            (self.height_edit, self.settings.camera_height_m)):
            edit.setText(_number_text(value))
        self.ignore_exif_check.blockSignals(True)
        self.ignore_exif_check.setChecked(self.settings.ignore_exif)
        self.ignore_exif_check.blockSignals(False)
        self._fill_recent()
        self.fill_models(None)

    # ---------------------------------------------------------------- small helpers
    def show_message(self, text: str, error: bool = False) -> None:
        """The message line: one line (red for errors)."""
        line = " ".join(str(text).split())
        self.message_label.setText(line)
        self.message_label.setToolTip(line)
        self.message_label.setStyleSheet(ERROR_STYLE if error else "")
        if error:
            self.failed.emit(line)

    @property
    def message(self) -> str:
        return str(self.message_label.text())

    @property
    def message_is_error(self) -> bool:
        return bool(self.message_label.styleSheet())

    def _set_busy(self, busy: bool) -> None:
        self.build_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.regenerate_button.setEnabled(self.last_result is not None)
        if not busy:
            self.job_id = None
            self.job_kind = None

    def _set_pixmap(self, label: Any, path: str | None) -> bool:
        pixmap = QtGui.QPixmap(path) if path and os.path.isfile(path) else QtGui.QPixmap()
        if pixmap.isNull():
            label.setPixmap(QtGui.QPixmap())
            label.setText(str(label.toolTip()))
            return False
        label.setPixmap(pixmap.scaled(label.size(), QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                                      QtCore.Qt.TransformationMode.SmoothTransformation))
        return True

    def _key(self) -> tuple[Any, ...]:
        return (self.photo, self.seg_model(), self.depth_model(), self.instances_model())

    # ---------------------------------------------------------------- camera
    def camera_values(self) -> camera_input.CameraRequest:
        """The typed camera values, checked (CameraInputError: one line)."""
        return camera_input.camera_request(str(self.fov_edit.text()), str(self.focal_edit.text()),
                                           str(self.height_edit.text()), self.ignore_exif_check.isChecked())

    def _camera_or_error(self) -> camera_input.CameraRequest | None:
        """camera_values(), or None after putting its error on the message line."""
        try:
            return self.camera_values()
        except camera_input.CameraInputError as exc:
            self.show_message(str(exc), error=True)
            return None

    def _camera_edited(self, *_: Any) -> None:
        """A camera field was edited (Enter, focus out, the checkbox): checked and remembered; after a
        build of this photo, a changed value sends a (debounced) regenerate."""
        camera = self._camera_or_error()
        if camera is None:
            self._regen_timer.stop()  # nothing is sent; the last good scene stays
            return
        self.settings.fov_deg = camera.fov_deg
        self.settings.focal_mm = camera.focal_mm
        self.settings.camera_height_m = camera.camera_height_m
        self.settings.ignore_exif = camera.ignore_exif
        if self.message_is_error and self.message.startswith(_CAMERA_ERRORS):
            self.show_message("")
        if self.last_result is None or self.built_key != self._key():
            return
        if self.job_kind is not None:
            return  # _on_result compares with what the job was sent
        if camera != self.built_camera:
            self._regen_timer.start()

    def _set_photo_thumb(self, path: str | None) -> None:
        """The photo thumbnail, EXIF orientation applied (the scene's pixels are after it)."""
        pixmap = QtGui.QPixmap()
        if path and os.path.isfile(path):
            reader = QtGui.QImageReader(path)
            reader.setAutoTransform(True)
            image = reader.read()
            if not image.isNull():
                pixmap = QtGui.QPixmap.fromImage(image).scaled(
                    self.photo_thumb.size(), QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                    QtCore.Qt.TransformationMode.SmoothTransformation)
        self._photo_pixmap = None if pixmap.isNull() else pixmap
        if pixmap.isNull():
            self.photo_thumb.setPixmap(QtGui.QPixmap())
            self.photo_thumb.setText(str(self.photo_thumb.toolTip()))
        else:
            self.photo_thumb.setPixmap(pixmap)

    def show_camera(self, scene: Mapping[str, Any]) -> None:
        """The camera line and, over the photo thumbnail, the horizon and the vanishing directions."""
        self.camera_label.setText(camera_overlay.describe(scene))
        geo = camera_overlay.overlay(scene)
        self.camera_overlay = geo
        base = self._photo_pixmap
        if base is None:
            return
        pixmap = QtGui.QPixmap(base)  # a copy: the plain thumbnail is kept for the next scene
        if geo is not None:
            sx, sy = pixmap.width() / geo.width, pixmap.height() / geo.height
            painter = QtGui.QPainter(pixmap)
            try:
                painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
                for item in reversed(geo.vanishing):  # the vertical on top
                    painter.setPen(QtGui.QPen(QtGui.QColor(VANISHING_COLORS.get(item.name, "#ffffff")), 1))
                    for (u0, v0), (u1, v1) in item.lines:
                        painter.drawLine(QtCore.QLineF(u0 * sx, v0 * sy, u1 * sx, v1 * sy))
                if geo.horizon is not None:
                    painter.setPen(QtGui.QPen(QtGui.QColor(HORIZON_COLOR), 2))
                    (u0, v0), (u1, v1) = geo.horizon
                    painter.drawLine(QtCore.QLineF(u0 * sx, v0 * sy, u1 * sx, v1 * sy))
            finally:
                painter.end()
        self.photo_thumb.setPixmap(pixmap)

    # ---------------------------------------------------------------- photo
    def set_photo(self, path: str, quiet: bool = False) -> bool:
        """Use `path` as the photo: thumbnail, recent files, previews cleared. False (message line)
        when it is not an image file."""
        path = os.path.abspath(os.path.expanduser(str(path).strip())) if str(path).strip() else ""
        if not path or not is_image(path):
            if not quiet or path:
                self.show_message(f"not an image file: {path or '(none)'}", error=True)
            return False
        if path == self.photo:
            return True
        self.photo = path
        self.photo_edit.setText(path)
        self._set_photo_thumb(path)
        self.camera_overlay = None
        self.camera_label.setText("")
        self._set_pixmap(self.segment_thumb, None)
        self._set_pixmap(self.depth_thumb, None)
        self.settings.add_recent(path)
        self._fill_recent()
        self.show_message(f"photo: {os.path.basename(path)}")
        return True

    def _photo_edited(self) -> None:
        self.set_photo(str(self.photo_edit.text()), quiet=True)

    def browse_photo(self) -> None:
        start = os.path.dirname(self.photo) if self.photo else ""
        picked = QtWidgets.QFileDialog.getOpenFileName(self, "Photo for img2maya", start, IMAGE_FILTER)
        path = picked[0] if isinstance(picked, (tuple, list)) else picked
        if path:
            self.set_photo(str(path))

    def _fill_recent(self) -> None:
        self.recent_combo.blockSignals(True)
        self.recent_combo.clear()
        for path in self.settings.recent_files:
            self.recent_combo.addItem(os.path.basename(path), path)
            self.recent_combo.setItemData(self.recent_combo.count() - 1, path,
                                          QtCore.Qt.ItemDataRole.ToolTipRole)
        self.recent_combo.blockSignals(False)

    def _recent_picked(self, index: int) -> None:
        path = self.recent_combo.itemData(index)
        if path:
            if not os.path.isfile(path):
                self.show_message(f"recent photo no longer exists: {path}", error=True)
                return
            self.set_photo(str(path))

    @staticmethod
    def _dropped_image(mime: Any) -> str | None:
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and is_image(url.toLocalFile()):
                return str(url.toLocalFile())
        return None

    def dragEnterEvent(self, event: Any) -> None:
        if self._dropped_image(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event: Any) -> None:
        path = self._dropped_image(event.mimeData())
        if path and self.set_photo(path):
            event.acceptProposedAction()
        else:
            event.ignore()

    # ---------------------------------------------------------------- models and settings
    def fill_models(self, hello: Mapping[str, Any] | None) -> None:
        """Fill the model combos from a `hello` reply (None: only "server default"); the remembered
        model is selected when it is listed, else the server's default.

        Segmentation and depth list the installed models and the default. Instances lists only the
        installed ones (asking for a missing file is an error, while the server's default without its
        file runs none); when the default instance model is not among them (not installed, or an older
        server that names none) "server default" comes first and is preselected: the requests then
        leave `instances_model` out."""
        listing = (hello or {}).get("models") or {}
        defaults = listing.get("defaults") or {}
        models = [m for m in listing.get("models") or [] if isinstance(m, Mapping)]
        for combo, task, default_key, remembered, extra in (
                (self.seg_combo, "segmentation", "seg", self.settings.seg_model, ()),
                (self.depth_combo, "depth", "depth", self.settings.depth_model,
                 (("none (no depth network)", "none"),)),
                (self.instances_combo, "instances", "instances", self.settings.instances_model,
                 (("none (no instances)", "none"),))):
            default = defaults.get(default_key)
            combo.blockSignals(True)
            combo.clear()
            if task == "instances":
                listed = [m for m in models if m.get("task") == task and m.get("installed")]
                server_default = not default or all(str(m.get("id")) != default for m in listed)
            else:
                listed = [m for m in models
                          if m.get("task") == task and (m.get("installed") or m.get("id") == default)]
                server_default = not listed
            if server_default:  # no listing (yet), or no listed default instance model: the server chooses
                combo.addItem("server default", None)
            for m in listed:
                mid = str(m.get("id"))
                combo.addItem(mid + ("  (default)" if mid == default else ""), mid)
                combo.setItemData(combo.count() - 1, str(m.get("description") or mid),
                                  QtCore.Qt.ItemDataRole.ToolTipRole)
            for text, data in extra:
                combo.addItem(text, data)
            index = combo.findData(remembered) if remembered else -1
            if index < 0:
                index = combo.findData(default) if default else -1
            combo.setCurrentIndex(max(0, index))
            combo.setEnabled(bool(listed) or bool(extra))
            combo.blockSignals(False)

    def seg_model(self) -> str | None:
        data = self.seg_combo.currentData()
        return str(data) if data else None

    def depth_model(self) -> str | None:
        data = self.depth_combo.currentData()
        return str(data) if data else None

    def instances_model(self) -> str | None:
        """The Instances combo: a model id, "none" (no instances) or None (the server's default)."""
        data = self.instances_combo.currentData()
        return str(data) if data else None

    def _models_changed(self, *_: Any) -> None:
        self.settings.seg_model = self.seg_model()
        self.settings.depth_model = self.depth_model()
        self.settings.instances_model = self.instances_model()

    def _recursion_changed(self, value: int) -> None:
        self.recursion_label.setText(str(value))
        self.settings.recursion = value
        if self.last_result is not None and self.built_key == self._key():
            self._regen_timer.start()  # debounced: only the last value of a drag is sent

    def python_command(self) -> list[str]:
        return split_python(str(self.python_edit.text()))

    def _python_changed(self) -> None:
        text = str(self.python_edit.text()).strip()
        self.settings.python = text or None

    def browse_python(self) -> None:
        picked = QtWidgets.QFileDialog.getOpenFileName(self, "System Python (not mayapy)", "",
                                                       "Programs (*)")
        path = picked[0] if isinstance(picked, (tuple, list)) else picked
        if path:
            self.python_edit.setText(str(path))
            self._python_changed()

    # ---------------------------------------------------------------- server
    def server_command(self) -> list[str]:
        return protocol.server_command(self.python_command(), self.server_args)

    def ensure_server(self) -> bool:
        """Start the server if it is not running (or the Python changed); False + message when no
        Python is set."""
        if not self.python_command():
            self.show_message("no system Python: set the path of a Python 3 with the img2maya engine "
                              "(not mayapy)", error=True)
            return False
        self.server.start(self.server_command(), protocol.clean_environment(self.env, self.engine_root))
        return True

    def shutdown_server(self) -> None:
        self.server.stop()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.autostart and not self.server.running and self.python_command():
            QtCore.QTimer.singleShot(0, self.ensure_server)  # model list for the combos

    def _send_job(self, message: dict[str, Any], kind: str,
                  camera: camera_input.CameraRequest | None = None) -> None:
        self.job_id = str(message["id"])
        self.job_kind = kind
        self.job_camera = camera
        self.job_started = time.monotonic()
        self.job_recursion = int(message.get("recursion", 0))
        self.sent.append(message)
        if not self.server.send(message):  # it failed to start at once (reported through `died`)
            self._set_busy(False)
            if not self.message_is_error:
                self.show_message("the inference server is not running; Build starts it", error=True)
            return
        self._set_busy(True)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(f"{kind}: starting")

    def build(self) -> bool:
        """"Build": analyse the photo (networks, or their cached output) and build the result."""
        if not self.photo:
            if not self.set_photo(str(self.photo_edit.text())):
                return False
        camera = self._camera_or_error()
        if camera is None:
            return False
        if not self.ensure_server():
            return False
        assert self.photo is not None
        msg = protocol.analyze_request(self.photo, self.recursion_slider.value(), options=camera.options(),
                                       seg_model=self.seg_model(), depth_model=self.depth_model(),
                                       instances_model=self.instances_model(), **camera.fields())
        self.show_message(f"analysing {os.path.basename(self.photo)}...")
        self._send_job(msg, "analyze", camera)
        return True

    def regenerate(self, supersede: bool = False) -> bool:
        """"Regenerate scene": the analysis only, on the cached network output of the photo and
        models, with the current recursion; the new build replaces the previous one."""
        self._regen_timer.stop()
        if not self.photo:
            self.show_message("no photo: pick one and press Build first", error=True)
            return False
        camera = self._camera_or_error()
        if camera is None:
            return False  # nothing sent: the last good scene stays
        if self.job_kind == "analyze":
            return False  # the analyze in flight uses the settings sent with it; Build again after it
        if not self.ensure_server():
            return False
        msg = protocol.regenerate_request(self.photo, recursion=self.recursion_slider.value(),
                                          options=camera.options(), seg_model=self.seg_model(),
                                          depth_model=self.depth_model(),
                                          instances_model=self.instances_model(),
                                          supersede=True if supersede else None, **camera.fields())
        self.show_message(f"regenerating (recursion {self.recursion_slider.value()})...")
        self._send_job(msg, "regenerate", camera)
        return True

    def _regenerate_clicked(self, *_: Any) -> None:
        self.regenerate(supersede=False)

    def _slider_regenerate(self) -> None:
        self.regenerate(supersede=True)

    def cancel(self) -> None:
        """Cancel the job in flight; a server that does not answer within ~2 s is killed."""
        if self.job_id is None:
            return
        self._regen_timer.stop()
        msg = protocol.request(protocol.CANCEL, target=self.job_id)
        self.sent.append(msg)
        if not self.server.send(msg):
            self._set_busy(False)
            return
        self.progress_bar.setFormat("cancelling...")
        self._cancel_timer.start(self.cancel_timeout_ms)

    def _cancel_timed_out(self) -> None:
        if self.job_id is None:
            return
        self.server.kill(quiet=True)
        self.show_message(f"the inference server did not answer the cancel within "
                          f"{self.cancel_timeout_ms / 1000:.0f} s and was stopped; Build restarts it",
                          error=True)
        self._job_over("cancelled (server stopped)")

    def _job_over(self, text: str) -> None:
        self._cancel_timer.stop()
        self._set_busy(False)
        self.progress_bar.setFormat(text)

    # ---------------------------------------------------------------- server messages
    def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == protocol.HELLO:
            self.fill_models(msg)
            return
        if self.job_id is None or str(msg.get("id")) != self.job_id:
            return  # acks, superseded or abandoned jobs
        if kind == protocol.PROGRESS:
            fraction = max(0.0, min(1.0, float(msg.get("fraction") or 0.0)))
            self.progress_bar.setValue(int(round(100 * fraction)))
            self.progress_bar.setFormat("{}: %p%".format(msg.get("stage", "")))
        elif kind == protocol.QUEUED:
            self.progress_bar.setFormat("queued")
        elif kind == protocol.RESULT:
            self._on_result(msg)
        elif kind == protocol.ERROR:
            if msg.get("code") == "not_cached" and self.job_kind == "regenerate":
                self._set_busy(False)
                self.build()  # nothing cached for these models: run the networks
                return
            self.show_message(protocol.error_text(msg), error=True)
            self._job_over("error")
        elif kind == protocol.CANCELLED:
            self.show_message("cancelled")
            self._job_over("cancelled")

    def _on_result(self, msg: dict[str, Any]) -> None:
        kind = self.job_kind or "analyze"
        sent_recursion = self.job_recursion
        sent_camera = self.job_camera
        seconds = time.monotonic() - self.job_started
        self._job_over("done")
        self.progress_bar.setValue(100)
        scene = msg.get("scene")
        files = msg.get("files") or {}
        self._set_pixmap(self.segment_thumb, files.get("preview"))
        self._set_pixmap(self.depth_thumb, files.get("depth_preview"))
        if not isinstance(scene, Mapping):
            self.show_message("the server returned no scene", error=True)
            return
        try:
            root = self._build_scene(scene)
        except Exception as exc:  # a BuildError, or Maya refusing a command: one line for the user  # noqa: BLE001
            self.show_message(f"build failed: {exc}", error=True)
            return
        self.last_result = msg
        self.last_root = str(root)
        self.built_key = self._key()
        self.built_camera = sent_camera
        self.show_camera(scene)
        self.regenerate_button.setEnabled(True)
        count = _count_objects(scene.get("objects") or [])
        self.show_message(f"{'regenerated' if kind == 'regenerate' else 'built'} {root}: {count} objects "
                          f"(recursion {sent_recursion}, "
                          f"{seconds:.1f} s{', cached networks' if msg.get('cached') else ''})")
        self.built.emit(str(root))
        try:
            camera_now: camera_input.CameraRequest | None = self.camera_values()
        except camera_input.CameraInputError:
            camera_now = sent_camera  # a bad value typed meanwhile was reported when typed
        if self.recursion_slider.value() != sent_recursion or camera_now != sent_camera:
            self._regen_timer.start()  # the slider or a camera field moved while this job ran

    def look(self) -> str:
        """The Look combo's builder look: "color" or "projection"."""
        return str(self.look_combo.currentData() or "color")

    def _build_scene(self, scene: Mapping[str, Any]) -> str:
        look = self.look()
        if look == "color":  # the plain call: a build_function of two arguments keeps working
            return self.build_function(scene, self.photo)
        return self.build_function(scene, self.photo, look=look)  # type: ignore[call-arg]

    def _look_changed(self, *_: Any) -> None:
        """Another look: rebuild the last result's scene now, in Maya only (no request, no network)."""
        result = self.last_result
        if result is None or not isinstance(result.get("scene"), Mapping) or self.job_id is not None:
            return  # the next build uses it
        try:
            root = self._build_scene(result["scene"])
        except Exception as exc:  # noqa: BLE001 - one line for the user, as a failed build
            self.show_message(f"build failed: {exc}", error=True)
            return
        self.last_root = str(root)
        self.show_message(f"rebuilt {root} with the {self.look_combo.currentText().lower()} look "
                          "(no network ran)")
        self.built.emit(str(root))

    def _on_died(self, text: str) -> None:
        self._regen_timer.stop()
        if self.job_id is not None and self._cancel_timer.isActive():
            return  # _cancel_timed_out reports it
        self._set_busy(False)
        self.progress_bar.setFormat("server stopped")
        self.show_message(f"{text}; Build restarts it", error=True)


_CAMERA_ERRORS = ("field of view", "focal length", "camera height", "give a field of view")


def _number_text(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _count_objects(objects: Sequence[Any]) -> int:
    total = 0
    for o in objects:
        if isinstance(o, Mapping):
            total += 1 + _count_objects(o.get("children") or [])
    return total
