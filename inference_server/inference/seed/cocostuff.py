"""COCO-Stuff label set of the DeepLab v2 seed model (182 outputs).

The cocostuff164k model of kazuto1011/deeplab-pytorch predicts 182 classes: the 91 COCO "thing" ids of the
original 2014 list (including the 11 that COCO never annotated) followed by the 91 COCO-Stuff "stuff"
classes, zero-based, exactly the order of that repository's ``data/datasets/cocostuff/labels.txt``
(line k = id k). Ground-truth pixels without a label carry 255 in COCO-Stuff 164k PNGs; that value is
ignored by the training loss, so the network never outputs it and it has no entry here.
"""

from __future__ import annotations

#: id k -> class name (COCO-Stuff spelling: "sky-other", "playingfield", ...).
COCOSTUFF_182: tuple[str, ...] = (
    # things (0..90)
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "street sign", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "hat", "backpack", "umbrella",
    "shoe", "eye glasses", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "plate",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
    "mirror", "dining table", "window", "desk", "toilet", "door", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "blender", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush", "hair brush",
    # stuff (91..181)
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard",
    "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard",
    "curtain", "desk-stuff", "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone",
    "floor-tile", "floor-wood", "flower", "fog", "food-other", "fruit", "furniture-other", "grass",
    "gravel", "ground-other", "hill", "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss",
    "mountain", "mud", "napkin", "net", "paper", "pavement", "pillow", "plant-other", "plastic",
    "platform", "playingfield", "railing", "railroad", "river", "road", "rock", "roof", "rug", "salad",
    "sand", "sea", "shelf", "sky-other", "skyscraper", "snow", "solid-other", "stairs", "stone", "straw",
    "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable", "wall-brick",
    "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other",
    "waterdrops", "window-blind", "window-other", "wood",
)

#: Value of unlabeled pixels in COCO-Stuff 164k annotations (ignored in training, never predicted).
UNLABELED_ID = 255

#: Thing ids that exist in the 182-way output but were never annotated in COCO, so never supervised
#: (182 - 11 = the 171 trained classes). Their logits are untrained and should rarely win.
UNSUPERVISED_IDS: frozenset[int] = frozenset(
    COCOSTUFF_182.index(n) for n in (
        "street sign", "hat", "shoe", "eye glasses", "plate", "mirror", "window", "desk", "door",
        "blender", "hair brush",
    )
)

#: Ids 0..90 are COCO things, 91..181 COCO-Stuff stuff classes.
FIRST_STUFF_ID = 91


def cocostuff_names() -> list[str]:
    """The 182 names as a fresh list (Segmentation.names takes ownership of its list)."""
    return list(COCOSTUFF_182)
