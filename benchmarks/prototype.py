"""The prototype's per-class statistics, reproduced as described, for the speed comparison only.

What the prototype did (its code is not available; this follows the description in the task brief):
for every one of the segmentation network's classes it walked the whole image in a per-pixel Python
loop over that class's SOFT probability mask. Soft masks are summed, not thresholded, so every pixel
counts for every class, weighted by its probability. Per class it accumulated the weight and the
weighted x, y, depth, r, g, b sums (means at the end), and the bounding box (min/max x, y) of the
pixels where the class is the likelier one (p >= 0.5).

Cost is strictly linear in (pixels x classes): every pixel runs the same loop body for every class,
whatever its values. That is why bench_speed.py may time a band of rows and scale it up.

Two variants, because how the prototype touched its arrays decides its speed and the brief does not
say: `prototype_stats_numpy` indexes the numpy arrays pixel by pixel (`probs[y, x, c]`, `rgb[y, x]`,
numpy scalars in the arithmetic), the way a straightforward prototype is written;
`prototype_stats` (the *favourable* variant) converts each row to Python lists once and does float
arithmetic, several times faster. bench_speed.py reports the engine against both; the list variant
gives a lower bound of the speed-up. NaN depths are skipped with one comparison in both. Nothing here
is used by the engine.
"""

from __future__ import annotations

import numpy as np

SOFT_SHARPNESS = 4.0  # logit of the labelled class over the others in soft_masks


def soft_masks(labels: np.ndarray, n_classes: int, rows: slice | None = None, seed: int = 0) -> np.ndarray:
    """(h, w, n_classes) float32 softmax probabilities that a network could have produced for `labels`.

    The labelled class gets a logit SOFT_SHARPNESS higher than the rest, plus small noise, so every
    class has a non-zero probability at every pixel (as a softmax output does).
    """
    lab = labels[rows] if rows is not None else labels
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 0.3, size=(*lab.shape, n_classes)).astype(np.float32)
    np.put_along_axis(logits, np.clip(lab, 0, n_classes - 1)[..., None].astype(np.int64),
                      np.float32(SOFT_SHARPNESS), axis=-1)
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def prototype_stats(rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray, row0: int = 0) -> list[dict[str, float]]:
    """Per-class weighted means and p >= 0.5 bounding boxes, with the prototype's per-pixel loops.

    `rgb` (h, w, 3), `probs` (h, w, C) soft masks and `depth` (h, w) cover the same rows; `row0` is
    the image row of their first row (so y means are in image coordinates).
    """
    h, w, n_classes = probs.shape
    out = []
    for c in range(n_classes):
        sw = sx = sy = sd = swd = sr = sg = sb = 0.0
        x0, y0, x1, y1 = w, h + row0, -1, -1
        for j in range(h):
            prow = probs[j, :, c].tolist()
            drow = depth[j].tolist()
            crow = rgb[j].tolist()
            y = j + row0
            for x in range(w):
                p = prow[x]
                r, g, b = crow[x]
                sw += p
                sx += p * x
                sy += p * y
                sr += p * r
                sg += p * g
                sb += p * b
                d = drow[x]
                if d == d:  # not NaN
                    sd += p * d
                    swd += p
                if p >= 0.5:
                    if x < x0:
                        x0 = x
                    if x > x1:
                        x1 = x
                    if y < y0:
                        y0 = y
                    if y > y1:
                        y1 = y
        out.append({
            "weight": sw, "x": sx / sw if sw else 0.0, "y": sy / sw if sw else 0.0,
            "depth": sd / swd if swd else float("nan"),
            "r": sr / sw if sw else 0.0, "g": sg / sw if sw else 0.0, "b": sb / sw if sw else 0.0,
            "bbox": (x0, y0, x1 + 1, y1 + 1) if x1 >= 0 else (0, 0, 0, 0),
        })
    return out


def prototype_stats_numpy(rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray, row0: int = 0
                          ) -> list[dict[str, float]]:
    """Same statistics as prototype_stats, indexing the numpy arrays pixel by pixel (numpy scalars)."""
    h, w, n_classes = probs.shape
    out = []
    for c in range(n_classes):
        sw = sx = sy = sd = swd = sr = sg = sb = 0.0
        x0, y0, x1, y1 = w, h + row0, -1, -1
        for j in range(h):
            y = j + row0
            for x in range(w):
                p = probs[j, x, c]
                r, g, b = rgb[j, x]
                sw += p
                sx += p * x
                sy += p * y
                sr += p * r
                sg += p * g
                sb += p * b
                d = depth[j, x]
                if d == d:
                    sd += p * d
                    swd += p
                if p >= 0.5:
                    x0, x1 = min(x0, x), max(x1, x)
                    y0, y1 = min(y0, y), max(y1, y)
        out.append({
            "weight": float(sw), "x": float(sx / sw) if sw else 0.0, "y": float(sy / sw) if sw else 0.0,
            "depth": float(sd / swd) if swd else float("nan"),
            "r": float(sr / sw) if sw else 0.0, "g": float(sg / sw) if sw else 0.0,
            "b": float(sb / sw) if sw else 0.0,
            "bbox": (x0, y0, x1 + 1, y1 + 1) if x1 >= 0 else (0, 0, 0, 0),
        })
    return out
