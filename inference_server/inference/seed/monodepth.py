"""Monodepth (Godard et al., CVPR 2017), VGG encoder, on TensorFlow 2, reading the original TF1 checkpoints.

The released ``model_cityscapes`` / ``model_kitti`` files are name-based TF1 Saver checkpoints
(``.index`` + ``.data-00000-of-00001`` + ``.meta``). Their variables were created by ``slim.conv2d`` calls
without explicit scopes, so slim numbered them per enclosing scope: ``model/encoder/Conv``, ``Conv_1`` ...
``Conv_13`` (7 blocks of two convs) and ``model/decoder/Conv`` ... ``Conv_17`` (upconv, iconv and, at the
four finest scales, a disparity head), each with ``weights`` (HWIO) and ``biases``: 64 tensors. Training
also saved Adam slots (``.../weights/Adam``, ``Adam_1``), ``beta1_power``, ``beta2_power`` and the global
step; those are ignored. Anything else under ``model/`` or any missing/reshaped variable is an error.

Network (re-implemented with plain TF ops over those tensors):

* every conv pads symmetrically by ``floor((k - 1) / 2)`` then convolves VALID, ELU activation;
* encoder: conv_block(k) = conv stride 1 then conv stride 2, widths 32/64/128/256/512/512/512, kernels 7/5/3...;
* decoder: upconv = nearest-neighbour x2 then 3x3 conv; concatenation with the encoder skips; disparity heads
  ``0.3 * sigmoid(conv3x3 -> 2 channels)`` at 1/8, 1/4, 1/2 and full scale, each upsampled (nearest) and
  fed to the next scale. Channel 0 of the finest head is the left-image disparity, as a fraction of width.

Test-time use as in the repository: RGB in [0, 1] resized (area) to 512x256, run together with its mirror
image, and blended by ``post_process_disparity`` (ramp masks that take the mirrored estimate near the left
border, the direct one near the right, the mean in between). Depth follows the repository's KITTI
evaluation, ``depth = focal_px * baseline / (width * disp)``, with the disparity resized (bilinear) to the
photo. Cityscapes training crops the bottom fifth (car hood) of its own frames; that dataset-specific crop
is not applied to arbitrary photos.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from inference_server.errors import UserError
from inference_server.inference.types import DepthMap

INPUT_WIDTH = 512
INPUT_HEIGHT = 256

#: Stereo baseline (m) and the focal length (px) per image width of each training rig. KITTI: 0.54 m and the
#: repository's ``width_to_focal`` table; Cityscapes: the dataset's camera calibration (baseline 0.209313 m,
#: fx 2262.52 px at 2048 px width).
DATASETS: dict[str, dict[str, Any]] = {
    "kitti": {"baseline_m": 0.54, "width_to_focal": {1242: 721.5377, 1241: 718.856, 1224: 707.0493,
                                                       1238: 718.3351}},
    "cityscapes": {"baseline_m": 0.209313, "width_to_focal": {2048: 2262.52}},
}

_ENCODER = [(32, 7), (64, 5), (128, 3), (256, 3), (512, 3), (512, 3), (512, 3)]  # (width, kernel) per block
# decoder stages from coarse to fine: (upconv width, skip channels, has disparity head)
_DECODER = [(512, 512, False), (512, 512, False), (256, 256, False), (128, 128, True),
            (64, 64, True), (32, 32, True), (16, 0, True)]
_IGNORED_SUFFIXES = ("/Adam", "/Adam_1", "/ExponentialMovingAverage")
_IGNORED_NAMES = ("beta1_power", "beta2_power", "global_step", "Variable")


def _conv_specs() -> Iterator[tuple[str, int, int, int]]:
    """(scope, kernel, in_ch, out_ch) for every conv of build_vgg, in creation order (slim's numbering)."""
    def numbered(scope: str) -> Iterator[str]:
        i = 0
        while True:
            yield f"model/{scope}/Conv" + ("" if i == 0 else f"_{i}")
            i += 1

    enc = numbered("encoder")
    cin = 3
    for width, k in _ENCODER:
        yield next(enc), k, cin, width
        yield next(enc), k, width, width
        cin = width
    dec = numbered("decoder")
    disp_ch = 0
    for width, skip, head in _DECODER:
        yield next(dec), 3, cin, width  # upconv
        yield next(dec), 3, width + skip + disp_ch, width  # iconv
        cin = width
        if head:
            yield next(dec), 3, width, 2  # disparity head
            disp_ch = 2


def expected_variables() -> dict[str, tuple[int, ...]]:
    """Checkpoint variable name -> shape for the VGG Monodepth (64 tensors)."""
    out: dict[str, tuple[int, ...]] = {}
    for scope, k, cin, cout in _conv_specs():
        out[f"{scope}/weights"] = (k, k, cin, cout)
        out[f"{scope}/biases"] = (cout,)
    return out


def checkpoint_prefix(path: str | os.PathLike[str]) -> str:
    """Accept the prefix itself, any of its files (.index/.meta/.data-*), or a folder holding one checkpoint."""
    p = os.fspath(path)
    if os.path.isdir(p):
        found = sorted(f[: -len(".index")] for f in os.listdir(p) if f.endswith(".index"))
        if len(found) != 1:
            raise UserError(f"expected exactly one TF checkpoint (*.index) in {p}, found {len(found)}")
        return os.path.join(p, found[0])
    for suffix in (".index", ".meta"):
        if p.endswith(suffix):
            return p[: -len(suffix)]
    if ".data-" in os.path.basename(p):
        return p[: p.rindex(".data-")]
    return p


def load_variables(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read the 64 network tensors from a TF1 (name-based Saver) checkpoint and check names and shapes.

    One-line UserError for a missing file, a missing/unknown model variable or a shape mismatch.
    """
    import tensorflow as tf

    prefix = checkpoint_prefix(path)
    if not os.path.isfile(prefix + ".index"):
        raise UserError(f"Monodepth checkpoint not found: {prefix}.index")
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
    except Exception as exc:  # corrupt index, missing data shard, ...  # noqa: BLE001
        msg = " ".join(str(exc).split())[:200]
        raise UserError(f"cannot read Monodepth checkpoint {prefix}: {type(exc).__name__}: {msg}") from None
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in shapes and not any(k.startswith("model/") for k in shapes):
        raise UserError(f"{prefix} is an object-based (tf.train.Checkpoint) file, not the name-based TF1 "
                        "Saver checkpoint Monodepth ships")
    expected = expected_variables()
    for name in sorted(shapes):
        if name in expected or name in _IGNORED_NAMES or name.endswith(_IGNORED_SUFFIXES):
            continue
        if name.startswith("model/"):
            raise UserError(f"{prefix}: unexpected variable {name!r} (not in the VGG Monodepth)")
    out: dict[str, np.ndarray] = {}
    for name, shape in expected.items():
        if name not in shapes:
            raise UserError(f"{prefix}: missing variable {name!r}")
        if tuple(shapes[name]) != shape:
            raise UserError(f"{prefix}: {name!r} has shape {tuple(shapes[name])}, expected {shape}")
        out[name] = np.asarray(reader.get_tensor(name), dtype=np.float32)
    return out


def post_process_disparity(disp: np.ndarray) -> np.ndarray:
    """Blend (2, h, w) [direct, estimate on the mirrored image] into one (h, w) disparity.

    The mirrored estimate is flipped back; within 5 % of the left border the flipped one is used, near the
    right border the direct one, with 1/20-wide linear ramps, and their mean elsewhere (the border that
    an occlusion hides differs between the two).
    """
    _, h, w = disp.shape
    direct = disp[0]
    flipped = np.fliplr(disp[1])
    mean = 0.5 * (direct + flipped)
    x = np.tile(np.linspace(0.0, 1.0, w), (h, 1))
    left_mask = 1.0 - np.clip(20.0 * (x - 0.05), 0.0, 1.0)
    right_mask = np.fliplr(left_mask)
    return right_mask * direct + left_mask * flipped + (1.0 - left_mask - right_mask) * mean


class _Net:
    """The VGG Monodepth forward pass over constant weights (NHWC)."""

    def __init__(self, variables: dict[str, np.ndarray]) -> None:
        import tensorflow as tf

        self.w = {k: tf.constant(v) for k, v in variables.items()}
        self.run = tf.function(self._forward, reduce_retracing=True)

    def _conv(self, x: Any, scope: str, stride: int, act: str = "elu") -> Any:
        import tensorflow as tf

        w = self.w[f"{scope}/weights"]
        p = (int(w.shape[0]) - 1) // 2
        x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        y = tf.nn.conv2d(x, w, strides=stride, padding="VALID") + self.w[f"{scope}/biases"]
        return tf.nn.elu(y) if act == "elu" else 0.3 * tf.sigmoid(y)

    @staticmethod
    def _up2(x: Any) -> Any:
        import tensorflow as tf

        return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)  # = resize_nearest_neighbor to 2x

    def _forward(self, x: Any) -> Any:
        import tensorflow as tf

        specs = iter(_conv_specs())
        skips = []
        h = x
        for _ in _ENCODER:
            h = self._conv(h, next(specs)[0], 1)
            h = self._conv(h, next(specs)[0], 2)
            skips.append(h)
        skips.pop()  # the deepest block feeds the decoder directly
        disp = None
        for _width, skip, head in _DECODER:
            up = self._conv(self._up2(h), next(specs)[0], 1)
            parts = [up]
            if skip:
                parts.append(skips.pop())
            if disp is not None:
                parts.append(self._up2(disp))
            h = self._conv(tf.concat(parts, axis=3), next(specs)[0], 1)
            if head:
                disp = self._conv(h, next(specs)[0], 1, act="sigmoid")
        return disp


class Monodepth:
    """The seed depth network. ``Monodepth(prefix, dataset).predict(rgb)`` -> DepthMap at the photo's size.

    ``dataset`` ("cityscapes" or "kitti") names the training rig, whose stereo baseline turns disparity
    into metres. With ``predict(rgb, focal_px=f)`` (focal length in pixels of the given image) the result is
    metric depth; without it, it is relative depth ``1 / disparity`` (larger = farther). ``device`` "cpu" or
    "cuda" pins TensorFlow; None lets it choose (the GPU when there is one).
    """

    def __init__(self, checkpoint_prefix: str | os.PathLike[str], dataset: str = "cityscapes",
                 device: str | None = None) -> None:
        import tensorflow as tf

        if dataset not in DATASETS:
            raise UserError(f"unknown Monodepth dataset {dataset!r}: use one of {sorted(DATASETS)}")
        self.dataset = dataset
        self.model_id = f"monodepth-{dataset}"
        self.baseline_m = float(DATASETS[dataset]["baseline_m"])
        if device not in (None, "cpu", "cuda"):
            raise UserError(f"unknown device {device!r} for Monodepth: use 'cpu' or 'cuda'")
        gpus = tf.config.list_physical_devices("GPU")
        if device == "cuda" and not gpus:
            raise UserError("device 'cuda' requested but TensorFlow sees no GPU")
        for gpu in gpus:
            # TF would otherwise reserve the whole GPU and starve torch (DeepLab) in the same process.
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:
                pass  # the GPU was already initialised by earlier TF use; its setting stays
        self._tf_device = {None: None, "cpu": "/CPU:0", "cuda": "/GPU:0"}[device]
        variables = load_variables(checkpoint_prefix)
        with self._device_scope():
            self.net = _Net(variables)
        self.timings: dict[str, float] = {}

    def _device_scope(self) -> Any:
        import contextlib

        import tensorflow as tf

        return tf.device(self._tf_device) if self._tf_device else contextlib.nullcontext()

    def disparity(self, rgb: np.ndarray) -> np.ndarray:
        """Post-processed disparity at the network size (256, 512), as a fraction of the image width."""
        import tensorflow as tf

        a = np.asarray(rgb)
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] not in (3, 4) or min(a.shape[:2]) < 1:
            raise UserError(f"expected an RGB image (h, w, 3), got an array of shape {a.shape}")
        if a.dtype != np.uint8:
            raise UserError(f"expected uint8 RGB pixels, got {a.dtype}")
        with self._device_scope():
            x = tf.image.convert_image_dtype(tf.constant(a[:, :, :3]), tf.float32)
            x = tf.image.resize(x, [INPUT_HEIGHT, INPUT_WIDTH], method="area")
            batch = tf.stack([x, tf.image.flip_left_right(x)], 0)
            disp = self.net.run(batch)
        return post_process_disparity(disp.numpy()[..., 0].astype(np.float64)).astype(np.float32)

    def predict(self, rgb: np.ndarray, *, focal_px: float | None = None) -> DepthMap:
        """Depth for an RGB uint8 photo: metric (m) when ``focal_px`` is given, else relative."""
        import time

        import tensorflow as tf

        t0 = time.perf_counter()
        disp_net = self.disparity(rgb)
        t1 = time.perf_counter()
        h, w = np.asarray(rgb).shape[:2]
        disp = tf.image.resize(disp_net[:, :, None], [h, w], method="bilinear").numpy()[:, :, 0]
        valid = disp > 0
        if focal_px is None:
            factor, kind = 1.0, "relative"  # 1 / disparity: larger = farther, unknown scale
        else:
            if not np.isfinite(focal_px) or focal_px <= 0:
                raise UserError(f"focal length must be a positive number of pixels, got {focal_px}")
            # disparity in pixels is w * disp, so depth = focal * baseline / (w * disp)
            factor, kind = float(focal_px) * self.baseline_m / w, "metric"
        depth = np.full((h, w), np.nan, np.float32)
        depth[valid] = factor / disp[valid]
        t2 = time.perf_counter()
        self.timings = {"network": t1 - t0, "resize_depth": t2 - t1}
        extras = {"dataset": self.dataset, "baseline_m": self.baseline_m, "focal_px": focal_px,
                  "disparity": disp.astype(np.float32), "disparity_unit": "fraction of image width"}
        return DepthMap(depth=depth, kind=kind, model=self.model_id, extras=extras)


def write_random_checkpoint(prefix: str | os.PathLike[str], *, seed: int = 0, with_optimizer_slots: bool = True,
                            write_meta_graph: bool = False, rename: dict[str, str] | None = None,
                            reshape: dict[str, tuple[int, ...]] | None = None) -> int:
    """Write a TF1 name-based Saver checkpoint with the original variable names and shapes, random values.

    For tests and benchmarks only (the real weights cannot be fetched here). The TF1 graph + ``Saver`` path
    writes exactly the format of the released files (``prefix.index`` + ``prefix.data-00000-of-00001``).
    ``with_optimizer_slots`` adds what training saved besides the network (Adam slots, beta powers, global
    step); ``rename`` / ``reshape`` corrupt chosen variables to exercise the loader's errors. Returns the
    number of network tensors written.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray | np.generic] = {}
    for name, shape in expected_variables().items():
        shape = (reshape or {}).get(name, shape)
        if name.endswith("/weights"):
            fan_in = int(np.prod(shape[:-1]))
            v = rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)
        else:
            v = 0.01 * rng.standard_normal(shape)
        values[(rename or {}).get(name, name)] = v.astype(np.float32)
    n_net = len(values)
    if with_optimizer_slots:
        for name in list(values):
            values[name + "/Adam"] = np.zeros_like(values[name])
            values[name + "/Adam_1"] = np.zeros_like(values[name])
        values["beta1_power"] = np.float32(0.9 ** 100)
        values["beta2_power"] = np.float32(0.999 ** 100)
        values["Variable"] = np.int32(181250)
    graph = tf.Graph()
    with graph.as_default():
        # Values enter through placeholders: as graph constants they would bloat the GraphDef and be slow.
        feeds = {n: tf.compat.v1.placeholder(tf.as_dtype(np.asarray(v).dtype), np.shape(v)) for n, v in values.items()}
        var_list = {n: tf.compat.v1.Variable(ph, name=n.replace("/", "_")) for n, ph in feeds.items()}
        saver = tf.compat.v1.train.Saver(var_list=var_list)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer(), {feeds[n]: v for n, v in values.items()})
            saver.save(sess, os.fspath(prefix), write_meta_graph=write_meta_graph, write_state=False)
    return n_net
