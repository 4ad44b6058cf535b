"""Label sets shipped with the engine (class NAMES only) and mappings between them.

Files in ``inference_server/data/`` (line k = name of class id k):

* ``labels_ade20k150.txt``: 0 ``other`` + the 150 ADE20K SceneParsing classes in objectInfo150 order, each
  named by its first synonym (three duplicate "screen" names disambiguated: 59 screen door,
  131 projection screen, 142 crt screen). Source: CSAILVision/sceneparsing, BSD-3-Clause (docs/MODELS.md).
* ``labels_ade20k32.txt``: the first 32 lines of the above (the MLPerf "top-31 + other" set).
* ``labels_cocostuff182.txt``: the 182 COCO-Stuff ids of kazuto1011/deeplab-pytorch's cocostuff labels,
  plus line 182 ``unlabeled`` (ground-truth value 255 maps there).
* ``labels_cityscapes19.txt``: the 19 Cityscapes train classes (trainId order).
* ``labels_coco80.txt``: the 80 COCO detection classes in the contiguous order detectors use (the
  ``labels.txt`` of the YOLOv8n-seg instance model).

The mappings onto Cityscapes-19 and PASCAL VOC are for evaluating ADE20K/COCO-Stuff predictions against
those data sets' ground truth (benchmarks/bench_quality.py); classes without a counterpart map to -1
(Cityscapes: ignored as "not predicted") or VOC background.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np

LABEL_FILES = {
    "ade20k150": "labels_ade20k150.txt",
    "ade20k32": "labels_ade20k32.txt",
    "cocostuff182": "labels_cocostuff182.txt",
    "cityscapes19": "labels_cityscapes19.txt",
    "coco80": "labels_coco80.txt",
}

#: COCO-Stuff's sky classes (ADE20K has one, "sky"); PyDNet's sky is masked with them.
COCOSTUFF_SKY = ("sky-other", "clouds")

#: Cityscapes labelIds -> trainIds (19 classes, 255 = ignored in evaluation).
CITYSCAPES_ID_TO_TRAIN = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
                          25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}

VOC_NAMES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
             "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
             "train", "tvmonitor")
#: VOC animal classes: ADE20K has a single "animal" class, so VOC is scored with these merged.
VOC_ANIMALS = ("bird", "cat", "cow", "dog", "horse", "sheep")

_ADE_TO_CITYSCAPES = {
    "road": ("road", "runway", "dirt track"),
    "sidewalk": ("sidewalk", "path"),
    "building": ("building", "house", "skyscraper", "hovel", "tower", "awning", "booth", "column"),
    "wall": ("wall",),
    "fence": ("fence", "railing", "bannister"),
    "pole": ("pole", "streetlight"),
    "traffic light": ("traffic light",),
    "traffic sign": ("signboard",),
    "vegetation": ("tree", "plant", "palm", "flower"),
    "terrain": ("grass", "earth", "field", "sand", "land"),
    "sky": ("sky",),
    "person": ("person",),
    "car": ("car", "van"),
    "truck": ("truck",),
    "bus": ("bus",),
    "motorcycle": ("minibike",),
    "bicycle": ("bicycle",),
}

_COCOSTUFF_TO_CITYSCAPES = {
    "road": ("road",),
    "sidewalk": ("pavement",),
    "building": ("building-other", "house", "skyscraper", "roof"),
    "wall": ("wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-wood"),
    "fence": ("fence", "railing"),
    "traffic light": ("traffic light",),
    "traffic sign": ("street sign", "stop sign"),
    "vegetation": ("tree", "bush", "plant-other", "leaves", "flower"),
    "terrain": ("grass", "dirt", "gravel", "ground-other", "sand", "playingfield"),
    "sky": ("sky-other", "clouds"),
    "person": ("person",),
    "car": ("car",),
    "truck": ("truck",),
    "bus": ("bus",),
    "train": ("train",),
    "motorcycle": ("motorcycle",),
    "bicycle": ("bicycle",),
}

_ADE_TO_VOC = {
    "aeroplane": ("airplane",),
    "bicycle": ("bicycle",),
    "boat": ("boat", "ship"),
    "bottle": ("bottle",),
    "bus": ("bus",),
    "car": ("car", "van"),
    "chair": ("chair", "armchair", "swivel chair"),
    "diningtable": ("table",),
    "motorbike": ("minibike",),
    "person": ("person",),
    "pottedplant": ("plant",),
    "sofa": ("sofa",),
    "tvmonitor": ("television", "monitor", "crt screen"),
    "animal": ("animal",),
}


@cache
def _names(label_set: str) -> tuple[str, ...]:
    try:
        fname = LABEL_FILES[label_set]
    except KeyError:
        raise KeyError(f"unknown label set {label_set!r}; known: {', '.join(LABEL_FILES)}") from None
    text = resources.files("inference_server").joinpath("data", fname).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def names(label_set: str) -> list[str]:
    """Class names of a label set, line k = id k (a fresh list)."""
    return list(_names(label_set))


def _lut(src: str, groups: dict[str, tuple[str, ...]], dst: list[str], default: int) -> np.ndarray:
    src_names = _names(src)
    lut = np.full(len(src_names), default, np.int32)
    for target, members in groups.items():
        t = dst.index(target)
        for m in members:
            lut[src_names.index(m)] = t
    return lut


def ade_to_cityscapes(label_set: str = "ade20k150") -> np.ndarray:
    """Lookup table: ADE20K id -> Cityscapes trainId (0..18), -1 where Cityscapes has no such class."""
    lut150 = _lut("ade20k150", _ADE_TO_CITYSCAPES, names("cityscapes19"), -1)
    return lut150[: len(_names(label_set))]


def cocostuff_to_cityscapes() -> np.ndarray:
    """Lookup table: COCO-Stuff id (0..182) -> Cityscapes trainId, -1 where there is none."""
    return _lut("cocostuff182", _COCOSTUFF_TO_CITYSCAPES, names("cityscapes19"), -1)


def voc_coarse_names() -> list[str]:
    """VOC classes with the six animals merged into "animal" (ADE20K cannot tell them apart)."""
    return [n for n in VOC_NAMES if n not in VOC_ANIMALS] + ["animal"]


def ade_to_voc_coarse(label_set: str = "ade20k150") -> np.ndarray:
    """Lookup table: ADE20K id -> coarse VOC id (voc_coarse_names(); 0 = background for everything else)."""
    lut150 = _lut("ade20k150", _ADE_TO_VOC, voc_coarse_names(), 0)
    return lut150[: len(_names(label_set))]


def voc_to_coarse() -> np.ndarray:
    """Lookup table: VOC id (0..20, 255 void) -> coarse VOC id (255 stays 255 = ignore)."""
    coarse = voc_coarse_names()
    lut = np.full(256, 255, np.int32)
    for i, n in enumerate(VOC_NAMES):
        lut[i] = coarse.index("animal" if n in VOC_ANIMALS else n)
    return lut


def cityscapes_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Cityscapes labelIds image -> trainIds (255 = ignore)."""
    lut = np.full(256, 255, np.uint8)
    for k, v in CITYSCAPES_ID_TO_TRAIN.items():
        lut[k] = v
    return lut[np.asarray(label_ids, dtype=np.uint8)]


def sky_ids(class_names: list[str]) -> list[int]:
    """Ids of the sky classes in a name list (ADE20K "sky"; COCO-Stuff "sky-other", "clouds")."""
    return [i for i, n in enumerate(class_names) if n == "sky" or n in COCOSTUFF_SKY]
