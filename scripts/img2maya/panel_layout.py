"""The panel's widgets and where they sit: `make_widgets(panel)` creates every control of the panel as
an attribute of it (`panel.photo_edit`, `panel.seg_combo`, ...; the names docs/MAYA.md's "Panel" table
describes), with its texts and tooltips, and lays them out. It connects no signal: what the controls do
is `img2maya.panel_widget.Img2MayaPanel`, which wires them in `_connect`.

Qt only through `img2maya.qt`. Python 3.7+.
"""

from __future__ import annotations

from typing import Any

from . import camera_input
from .qt import QtCore, QtWidgets  # typed Any: written against what PySide2 and 6 share
from .settings import MAX_RECURSION

THUMB_SIZE = 150
AUTO_TEXT = "auto"
LOOKS = (("Mean colour", "color"), ("Photo projected", "projection"))  # the Look combo: text, builder look


def _thumb(name: str) -> Any:
    label = QtWidgets.QLabel(name)
    label.setObjectName(name + "Thumb")
    label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
    label.setFixedSize(THUMB_SIZE, THUMB_SIZE * 3 // 4)
    label.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
    label.setToolTip(name)
    return label


def make_widgets(p: Any) -> None:
    """Create the controls of the panel `p` (a QWidget) as its attributes, in its layout."""
    W = QtWidgets
    outer = W.QVBoxLayout(p)

    row = W.QHBoxLayout()
    p.photo_edit = W.QLineEdit()
    p.photo_edit.setPlaceholderText("Photo: browse, pick a recent one, or drop an image here")
    p.photo_edit.setAcceptDrops(False)  # a dropped file goes to the panel, not into the text
    p.browse_button = W.QPushButton("Browse...")
    row.addWidget(p.photo_edit, 1)
    row.addWidget(p.browse_button)
    outer.addLayout(row)

    row = W.QHBoxLayout()
    row.addWidget(W.QLabel("Recent:"))
    p.recent_combo = W.QComboBox()
    p.recent_combo.setSizeAdjustPolicy(W.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    p.recent_combo.setMinimumContentsLength(20)
    row.addWidget(p.recent_combo, 1)
    outer.addLayout(row)

    row = W.QHBoxLayout()
    p.photo_thumb = _thumb("photo")
    p.segment_thumb = _thumb("segments")
    p.depth_thumb = _thumb("depth")
    for label in (p.photo_thumb, p.segment_thumb, p.depth_thumb):
        row.addWidget(label)
    outer.addLayout(row)
    p.camera_label = W.QLabel("")
    p.camera_label.setObjectName("cameraSummary")
    p.camera_label.setWordWrap(True)
    p.camera_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
    p.camera_label.setToolTip("The camera of the last build: field of view and focal length (35 mm "
                              "film back) with their source, pitch and roll with theirs, and what the "
                              "photo's straight lines gave. On the photo: the horizon (yellow), the "
                              "vertical vanishing lines (green) and the two horizontal ones (red, blue)")
    outer.addWidget(p.camera_label)

    form = W.QFormLayout()
    slider_row = W.QHBoxLayout()
    p.recursion_slider = W.QSlider(QtCore.Qt.Orientation.Horizontal)
    p.recursion_slider.setRange(0, MAX_RECURSION)
    p.recursion_slider.setPageStep(1)
    p.recursion_slider.setTickPosition(W.QSlider.TickPosition.TicksBelow)
    p.recursion_slider.setTickInterval(1)
    p.recursion_label = W.QLabel("0")
    p.recursion_label.setMinimumWidth(16)
    slider_row.addWidget(p.recursion_slider, 1)
    slider_row.addWidget(p.recursion_label)
    form.addRow("Recursion:", slider_row)
    p.seg_combo = W.QComboBox()
    p.depth_combo = W.QComboBox()
    p.instances_combo = W.QComboBox()
    p.instances_combo.setToolTip("The instance model: one object per car, person, chair... where the "
                                 "segmentation agrees. none: no instances (touching objects of one class "
                                 "may merge). server default: the server's instance model when installed")
    form.addRow("Segmentation:", p.seg_combo)
    form.addRow("Depth:", p.depth_combo)
    form.addRow("Instances:", p.instances_combo)
    p.look_combo = W.QComboBox()
    for text, look in LOOKS:
        p.look_combo.addItem(text, look)
    p.look_combo.setToolTip("Mean colour: each object its colour. Photo projected: the photo projected "
                            "through the camera onto the objects. Changing it rebuilds at once, no network.")
    form.addRow("Look:", p.look_combo)
    cam_row = W.QHBoxLayout()
    p.fov_edit = W.QLineEdit()
    p.focal_edit = W.QLineEdit()
    p.height_edit = W.QLineEdit()
    for edit, tip in (
            (p.fov_edit, "Horizontal field of view in degrees, 1..179 (exclusive). Empty: automatic "
                         "(EXIF, else the photo's vanishing points, else 60 degrees)"),
            (p.focal_edit, f"Focal length in mm on a 35 mm film back ({camera_input.FILM_BACK_MM:g} mm "
                           "horizontal aperture); the same as typing its field of view. Empty: automatic"),
            (p.height_edit, "Height of the camera above the ground in metres (the scale of relative "
                            "depth). Empty: automatic (the engine's estimate, else 1.6 m)")):
        edit.setPlaceholderText(AUTO_TEXT)
        edit.setToolTip(tip)
        edit.setMaximumWidth(70)
    cam_row.addWidget(p.fov_edit)
    cam_row.addWidget(W.QLabel("deg  or"))
    cam_row.addWidget(p.focal_edit)
    cam_row.addWidget(W.QLabel("mm"))
    cam_row.addStretch(1)
    form.addRow("Field of view:", cam_row)
    height_row = W.QHBoxLayout()
    height_row.addWidget(p.height_edit)
    height_row.addWidget(W.QLabel("m"))
    p.ignore_exif_check = W.QCheckBox("Ignore EXIF")
    p.ignore_exif_check.setToolTip("Do not trust the photo's EXIF focal length (a cropped or scanned "
                                   "photo's EXIF lies): the photo's lines or the default decide")
    height_row.addSpacing(12)
    height_row.addWidget(p.ignore_exif_check)
    height_row.addStretch(1)
    form.addRow("Camera height:", height_row)
    py_row = W.QHBoxLayout()
    p.python_edit = W.QLineEdit()
    p.python_edit.setToolTip("The system Python that runs the inference server (not mayapy)")
    p.python_button = W.QPushButton("...")
    p.python_button.setToolTip("Browse for the python executable")
    py_row.addWidget(p.python_edit, 1)
    py_row.addWidget(p.python_button)
    form.addRow("System Python:", py_row)
    outer.addLayout(form)

    row = W.QHBoxLayout()
    p.build_button = W.QPushButton("Build")
    p.build_button.setToolTip("Analyse the photo (networks + analysis) and build the scene")
    p.regenerate_button = W.QPushButton("Regenerate scene")
    p.regenerate_button.setToolTip("Re-run only the analysis with the new settings (cached network "
                                   "output) and replace the previous build")
    p.cancel_button = W.QPushButton("Cancel")
    row.addWidget(p.build_button)
    row.addWidget(p.regenerate_button)
    row.addWidget(p.cancel_button)
    outer.addLayout(row)

    p.progress_bar = W.QProgressBar()
    p.progress_bar.setRange(0, 100)
    p.progress_bar.setValue(0)
    p.progress_bar.setTextVisible(True)
    p.progress_bar.setFormat("idle")
    outer.addWidget(p.progress_bar)
    p.message_label = W.QLabel("")
    p.message_label.setWordWrap(False)
    p.message_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
    outer.addWidget(p.message_label)
    outer.addStretch(1)
