"""DeepLab v2 (ResNet-101, ASPP, multi-scale inputs) for the COCO-Stuff 164k seed checkpoint.

The network reproduces kazuto1011/deeplab-pytorch (MIT) so that its released weights load unchanged:

* ``layer1``: 7x7/2 conv + BN + ReLU, then 3x3/2 max-pool with padding 1 and ``ceil_mode=True``.
* ``layer2..layer5``: MSRA bottlenecks (3, 4, 23, 3 blocks; 1x1 reduce -> 3x3 -> 1x1 increase, the
  stride on the 1x1 reduce, a projection shortcut in each first block). Output stride 8: ``layer3`` has
  stride 2, ``layer4``/``layer5`` keep the resolution with dilation 2 and 4.
* ``aspp``: four 3x3 convs with bias, dilation = padding = 6, 12, 18, 24, summed (182 classes).
* MSC wrapper at test time: logits at scales 1, 0.5, 0.75 (bilinear, ``align_corners=False``),
  the smaller ones resized to the full-scale logits, then the element-wise maximum.

State-dict names are those of the repository's v1.0 code, ``base.layer1.conv1.conv.weight``,
``base.layer2.block1.shortcut.bn.running_mean``, ``base.aspp.c0.weight``... (632 tensors with the BN
``num_batches_tracked`` counters, 528 without). The 2018 release ``cocostuff164k_iter100k.pth`` was saved
by the earlier code, whose names differ only in three places (``scale.`` for ``base.``, ``proj`` for
``shortcut``, ``aspp.stages.cN`` for ``aspp.cN``); both layouts are accepted, strictly, and errors quote the
names as they are written in the file.

Preprocessing follows the repository's demo for cocostuff164k: BGR, mean (104.008, 116.669, 122.675)
subtracted, no scaling by a std, the image resized so its longer side is 513 (``SIZE.TEST``). Where the demo
upsamples the logits to that resized image, ``predict`` upsamples them (bilinear, ``align_corners=False``)
straight to the input resolution, in row bands so that 182 channels at 2 MP never sit in memory at once.
The optional dense CRF of the demo is not applied.

torch is imported inside functions only: importing this module costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from inference_server.errors import UserError
from inference_server.inference.seed.cocostuff import cocostuff_names
from inference_server.inference.types import Segmentation, as_rgb_uint8

MODEL_ID = "deeplabv2-cocostuff164k"
N_CLASSES = 182
N_BLOCKS = (3, 4, 23, 3)
ATROUS_RATES = (6, 12, 18, 24)
MSC_SCALES = (0.5, 0.75)
TEST_SIZE = 513
MEAN_BGR = (104.008, 116.669, 122.675)
BN_EPS = 1e-5

_BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


# ---------------------------------------------------------------------------------------------------------
# Architecture as data: the expected state dict, name -> shape, in the original order.
# ---------------------------------------------------------------------------------------------------------

def _bottleneck_layers(n_blocks: Sequence[int]) -> Iterator[tuple[str, int, int, int, int, int]]:
    """(layer name, block index, in_ch, mid_ch, out_ch, stride) for every bottleneck of layer2..layer5."""
    channels = [(64, 256), (256, 512), (512, 1024), (1024, 2048)]
    strides = (1, 2, 1, 1)
    for li, (count, (in_ch, out_ch), stride) in enumerate(zip(n_blocks, channels, strides, strict=True)):
        for b in range(count):
            yield (f"layer{li + 2}", b + 1, in_ch if b == 0 else out_ch, out_ch // 4, out_ch,
                   stride if b == 0 else 1)


def expected_state_shapes(n_classes: int = N_CLASSES, n_blocks: Sequence[int] = N_BLOCKS,
                          with_num_batches_tracked: bool = True) -> dict[str, tuple[int, ...]]:
    """Every tensor of the original MSC(DeepLabV2) state dict (v1.0 names), in ``state_dict()`` order.

    Kept independent of torch so that the loader's expectations can be listed, counted and tested.
    """
    shapes: dict[str, tuple[int, ...]] = {}

    def conv_bn(prefix: str, cin: int, cout: int, k: int) -> None:
        shapes[f"{prefix}.conv.weight"] = (cout, cin, k, k)
        for t in _BN_TENSORS:
            if t == "num_batches_tracked":
                if with_num_batches_tracked:
                    shapes[f"{prefix}.bn.{t}"] = ()
            else:
                shapes[f"{prefix}.bn.{t}"] = (cout,)

    conv_bn("base.layer1.conv1", 3, 64, 7)
    for layer, b, cin, mid, cout, _stride in _bottleneck_layers(n_blocks):
        p = f"base.{layer}.block{b}"
        conv_bn(f"{p}.reduce", cin, mid, 1)
        conv_bn(f"{p}.conv3x3", mid, mid, 3)
        conv_bn(f"{p}.increase", mid, cout, 1)
        if b == 1:
            conv_bn(f"{p}.shortcut", cin, cout, 1)
    for i in range(len(ATROUS_RATES)):
        shapes[f"base.aspp.c{i}.weight"] = (n_classes, 2048, 3, 3)
        shapes[f"base.aspp.c{i}.bias"] = (n_classes,)
    return shapes


def _legacy_name(name: str) -> str:
    """The 2018 code's name for a v1.0 name (``scale.``/``proj``/``aspp.stages``)."""
    name = "scale." + name[len("base."):]
    name = name.replace(".shortcut.", ".proj.")
    return name.replace(".aspp.c", ".aspp.stages.c")


# ---------------------------------------------------------------------------------------------------------
# Checkpoint reading
# ---------------------------------------------------------------------------------------------------------

def load_state_dict(path: str | os.PathLike[str], n_classes: int = N_CLASSES,
                    n_blocks: Sequence[int] = N_BLOCKS) -> dict[str, Any]:
    """Read a checkpoint safely and check it against the architecture, strictly.

    Returns tensors under v1.0 names. Raises UserError (one line) for an unreadable or unsafe file, a
    missing or unexpected key, or a shape mismatch, naming the first offending key as the file spells it.
    ``num_batches_tracked`` may be absent (checkpoints converted from Caffe have none; it has no effect in
    evaluation); every other tensor is required.
    """
    import pickle

    import torch

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"DeepLab v2 weights not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"refusing {path}: not a plain weights file (torch.load weights_only: {first})") from None
    except Exception as exc:  # truncated zip, not a torch file at all, ...  # noqa: BLE001
        raise UserError(f"cannot read DeepLab v2 weights {path}: {type(exc).__name__}: {exc}") from None

    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]  # training-style wrapper {"state_dict": ..., ...}
    if not isinstance(obj, dict) or not obj:
        raise UserError(f"{path} is not a DeepLab v2 state dict (found {type(obj).__name__})")
    bad = next((k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise UserError(f"{path} is not a DeepLab v2 state dict: entry {bad!r} is not a tensor")

    expected = expected_state_shapes(n_classes, n_blocks)
    legacy = any(k.startswith("scale.") for k in obj)
    spell = _legacy_name if legacy else (lambda n: n)
    by_file_name = {spell(n): n for n in expected}

    for file_name in obj:
        if file_name not in by_file_name:
            raise UserError(f"{path}: unexpected key {file_name!r} (not in DeepLab v2 ResNet-101 / "
                            f"{n_classes} classes)")
    out: dict[str, Any] = {}
    for name, shape in expected.items():
        file_name = spell(name)
        if file_name not in obj:
            if name.endswith(".num_batches_tracked"):
                continue
            raise UserError(f"{path}: missing key {file_name!r}")
        t = obj[file_name]
        if tuple(t.shape) != shape:
            raise UserError(f"{path}: {file_name!r} has shape {tuple(t.shape)}, expected {shape}")
        if name.endswith(".num_batches_tracked"):
            out[name] = t.to(torch.long)
        elif not t.is_floating_point():
            raise UserError(f"{path}: {file_name!r} has dtype {t.dtype}, expected a float tensor")
        else:
            out[name] = t.to(torch.float32)
    return out


# ---------------------------------------------------------------------------------------------------------
# Network: plain torch containers named like the original, run by the functions below
# ---------------------------------------------------------------------------------------------------------

def _conv_bn(in_ch: int, out_ch: int, k: int, stride: int, pad: int, dil: int) -> Any:
    from collections import OrderedDict

    from torch import nn

    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(in_ch, out_ch, k, stride, pad, dil, bias=False)),
        ("bn", nn.BatchNorm2d(out_ch, eps=BN_EPS)),
    ]))


def build_network(n_classes: int = N_CLASSES, n_blocks: Sequence[int] = N_BLOCKS) -> Any:
    """An ``nn.Module`` tree whose ``state_dict()`` keys are exactly the MSC(DeepLabV2) ones.

    Modules are generic containers (no classes defined at import time, so torch stays lazy); the forward
    pass is ``_forward_base`` / ``forward_msc`` below. Attributes carry the strides and dilations.
    """
    from torch import nn

    root = nn.Module()
    base = nn.Module()
    root.base = base
    base.layer1 = nn.Module()
    base.layer1.conv1 = _conv_bn(3, 64, 7, 2, 3, 1)
    dilations = {"layer2": 1, "layer3": 1, "layer4": 2, "layer5": 4}
    for layer, b, cin, mid, cout, stride in _bottleneck_layers(n_blocks):
        if b == 1:
            setattr(base, layer, nn.Module())
        d = dilations[layer]
        block = nn.Module()
        block.reduce = _conv_bn(cin, mid, 1, stride, 0, 1)
        block.conv3x3 = _conv_bn(mid, mid, 3, 1, d, d)
        block.increase = _conv_bn(mid, cout, 1, 1, 0, 1)
        if b == 1:
            block.shortcut = _conv_bn(cin, cout, 1, stride, 0, 1)
        getattr(base, layer).add_module(f"block{b}", block)
    base.aspp = nn.Module()
    for i, rate in enumerate(ATROUS_RATES):
        base.aspp.add_module(f"c{i}", nn.Conv2d(2048, n_classes, 3, 1, rate, rate, bias=True))
    root.eval()
    return root


def _forward_base(base: Any, x: Any) -> Any:
    """One DeepLabV2 pass: stem, four residual layers, summed ASPP branches."""
    import torch.nn.functional as F

    h = F.relu(base.layer1.conv1(x))
    h = F.max_pool2d(h, 3, 2, 1, ceil_mode=True)
    for layer in ("layer2", "layer3", "layer4", "layer5"):
        for block in getattr(base, layer).children():
            y = F.relu(block.reduce(h))
            y = F.relu(block.conv3x3(y))
            y = block.increase(y)
            y = y + (block.shortcut(h) if hasattr(block, "shortcut") else h)
            h = F.relu(y)
    branches = list(base.aspp.children())
    out = branches[0](h)
    for conv in branches[1:]:
        out = out + conv(h)
    return out


def forward_msc(net: Any, x: Any, scales: Sequence[float] = MSC_SCALES) -> Any:
    """Test-time MSC: max over the logits of the full-size and the scaled inputs (at full-size logits)."""
    import torch
    import torch.nn.functional as F

    logits = _forward_base(net.base, x)
    size = logits.shape[2:]
    best = logits
    for s in scales:
        xs = F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
        ls = F.interpolate(_forward_base(net.base, xs), size=size, mode="bilinear", align_corners=False)
        best = torch.maximum(best, ls)
    return best


def _bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of bilinear resizing with ``align_corners=False`` (PyTorch's rule)."""
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (src - i0).astype(np.float32)
    return i0, i1, w1


def upsampled_argmax(logits: Any, out_h: int, out_w: int, band: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Labels and softmax confidence of ``logits`` (1, C, h, w) bilinearly resized to (out_h, out_w).

    Same values as ``F.interpolate(..., align_corners=False)`` then softmax/argmax over the channels, but
    computed ``band`` output rows at a time, channels last, so memory stays bounded at any output size
    and, on a CPU, each band stays in cache (8 rows: 0.6 s for 182 classes at 2 MP on 2 cores, against
    6 s for one whole-image pass). GPUs take larger bands to amortise kernel launches.
    """
    import torch

    lg = logits[0].permute(1, 2, 0).contiguous()  # (h, w, C)
    dev = lg.device
    if band is None:
        band = 8 if dev.type == "cpu" else 256
    r0, r1, rw = (torch.from_numpy(a).to(dev) for a in _bilinear_taps(lg.shape[0], out_h))
    c0, c1, cw = (torch.from_numpy(a).to(dev) for a in _bilinear_taps(lg.shape[1], out_w))
    cw = cw.view(1, -1, 1)
    labels = np.empty((out_h, out_w), np.int32)
    conf = np.empty((out_h, out_w), np.float32)
    for top in range(0, out_h, band):
        sl = slice(top, min(top + band, out_h))
        rows = torch.lerp(lg.index_select(0, r0[sl]), lg.index_select(0, r1[sl]), rw[sl].view(-1, 1, 1))
        up = torch.lerp(rows.index_select(1, c0), rows.index_select(1, c1), cw)  # (band, out_w, C)
        best, idx = up.max(dim=-1)
        denom = up.sub_(best.unsqueeze(-1)).exp_().sum(dim=-1)  # softmax of the winner = 1 / sum exp(l - max)
        labels[sl] = idx.to(torch.int32).cpu().numpy()
        conf[sl] = denom.reciprocal_().cpu().numpy()
    return labels, conf


class DeepLabV2:
    """The seed segmentation network: DeepLab v2 ResNet-101 MSC trained on COCO-Stuff 164k (182 classes).

    ``DeepLabV2(weights_path).predict(rgb)`` -> Segmentation at the input's resolution. Runs on CUDA when
    available unless ``device`` says otherwise. ``test_size`` (longer side fed to the network, 513 as in
    the repository's config) and ``scales`` exist for tests and speed trials; keep the defaults for
    the published accuracy.
    """

    def __init__(self, weights_path: str | os.PathLike[str], device: str | None = None, *,
                 test_size: int = TEST_SIZE, scales: Sequence[float] = MSC_SCALES) -> None:
        import torch

        state = load_state_dict(weights_path)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
        except RuntimeError as exc:
            raise UserError(f"unknown torch device {device!r}: {exc}") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise UserError("device 'cuda' requested but torch sees no CUDA GPU")
        net = build_network()
        net.load_state_dict(state, strict=False)  # strictness was enforced by load_state_dict()
        self.net = net.to(self.device).eval()
        self.names = cocostuff_names()
        self.test_size = int(test_size)
        self.scales = tuple(scales)
        self.timings: dict[str, float] = {}

    def preprocess(self, rgb: np.ndarray) -> Any:
        """(1, 3, h', w') float tensor: longer side ``test_size``, BGR, mean-subtracted, like the demo."""
        import torch
        import torch.nn.functional as F

        a = as_rgb_uint8(rgb)
        h, w = a.shape[:2]
        scale = self.test_size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        x = torch.from_numpy(np.ascontiguousarray(a[:, :, ::-1])).to(self.device)
        x = x.permute(2, 0, 1).unsqueeze(0).float()
        if (nh, nw) != (h, w):
            # The demo resizes the uint8 image (bilinear, half-pixel centres), so values are rounded to 8 bits.
            x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False).round().clamp(0, 255)
        mean = torch.tensor(MEAN_BGR, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        return x - mean

    def predict(self, rgb: np.ndarray) -> Segmentation:
        """Segment an RGB uint8 image; labels index ``names`` (COCO-Stuff 182), confidence = softmax max."""
        import time

        import torch

        a = as_rgb_uint8(rgb)
        h, w = a.shape[:2]
        t0 = time.perf_counter()
        with torch.inference_mode():
            x = self.preprocess(a)
            t1 = time.perf_counter()
            logits = forward_msc(self.net, x, self.scales)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            t2 = time.perf_counter()
            labels, conf = upsampled_argmax(logits, h, w)
        t3 = time.perf_counter()
        self.timings = {"preprocess": t1 - t0, "network": t2 - t1, "upsample_softmax": t3 - t2}
        return Segmentation(labels=labels, names=list(self.names), model=MODEL_ID, confidence=conf)


def write_random_checkpoint(path: str | os.PathLike[str], *, layout: str = "v1", seed: int = 0,
                            legacy_format: bool = True) -> int:
    """Write a checkpoint with the original key names and shapes and random, numerically tame values.

    For tests and benchmarks only: the real weights cannot be redistributed here. ``layout`` "v1" uses the
    names of ``deeplabv2_resnet101_msc-cocostuff164k-100000.pth``, "legacy" those of the 2018
    ``cocostuff164k_iter100k.pth``; ``legacy_format`` writes the pre-1.6 non-zip serialization those files
    were saved in. Returns the number of tensors written.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    state: dict[str, Any] = {}
    for name, shape in expected_state_shapes().items():
        if name.endswith("num_batches_tracked"):
            t = torch.tensor(100000, dtype=torch.long)
        elif name.endswith("running_var"):
            t = 0.5 + torch.rand(shape, generator=g)
        elif name.endswith("bn.weight"):
            # small gains on the residual branches keep activations finite through 33 blocks
            gain = 0.2 if ".increase." in name else 1.0
            t = gain * (0.5 + torch.rand(shape, generator=g))
        elif name.endswith(("bias", "running_mean")):
            t = 0.1 * torch.randn(shape, generator=g)
        else:  # conv weights, He-scaled
            fan_in = int(np.prod(shape[1:]))
            t = torch.randn(shape, generator=g) * float(np.sqrt(2.0 / fan_in))
        state[_legacy_name(name) if layout == "legacy" else name] = t
    from collections import OrderedDict

    torch.save(OrderedDict(state), os.fspath(path), _use_new_zipfile_serialization=not legacy_format)
    return len(state)
