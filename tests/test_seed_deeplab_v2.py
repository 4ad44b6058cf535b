"""DeepLab v2 seed network: key-for-key fidelity to the original checkpoint, strict loading, prediction."""

from __future__ import annotations

import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from inference_server.errors import UserError  # noqa: E402
from inference_server.inference.seed import deeplab_v2 as dl  # noqa: E402
from inference_server.inference.seed.cocostuff import COCOSTUFF_182, UNSUPERVISED_IDS  # noqa: E402
from inference_server.inference.types import Segmentation  # noqa: E402


@pytest.fixture(scope="module")
def v1_ckpt(tmp_path_factory: pytest.TempPathFactory):
    """Full-size checkpoint (ResNet-101, 182 classes, ~224 MB) with the v1.0 key names, old serialization."""
    path = tmp_path_factory.mktemp("deeplab") / "deeplabv2_resnet101_msc-cocostuff164k-100000.pth"
    assert dl.write_random_checkpoint(path, layout="v1", seed=1) == 632
    return path


@pytest.fixture(scope="module")
def v1_state(v1_ckpt):
    return torch.load(v1_ckpt, map_location="cpu", weights_only=True)


def _rewrite(tmp_path, state, name="bad.pth"):
    path = tmp_path / name
    torch.save(state, path)
    return path


def test_expected_keys_are_the_original_set():
    shapes = dl.expected_state_shapes()
    # stem + 33 bottlenecks x 3 + 4 projection shortcuts = 104 conv+BN units (6 tensors) + ASPP 4 x (w, b)
    assert len(shapes) == 104 * 6 + 8 == 632
    assert len(dl.expected_state_shapes(with_num_batches_tracked=False)) == 528
    names = list(shapes)
    assert names[:6] == ["base.layer1.conv1.conv.weight", "base.layer1.conv1.bn.weight",
                         "base.layer1.conv1.bn.bias", "base.layer1.conv1.bn.running_mean",
                         "base.layer1.conv1.bn.running_var", "base.layer1.conv1.bn.num_batches_tracked"]
    assert shapes["base.layer1.conv1.conv.weight"] == (64, 3, 7, 7)
    assert shapes["base.layer2.block1.shortcut.conv.weight"] == (256, 64, 1, 1)
    assert shapes["base.layer3.block1.reduce.conv.weight"] == (128, 256, 1, 1)
    assert shapes["base.layer4.block23.conv3x3.conv.weight"] == (256, 256, 3, 3)
    assert shapes["base.layer5.block3.increase.bn.running_var"] == (2048,)
    assert shapes["base.aspp.c3.weight"] == (182, 2048, 3, 3)
    assert shapes["base.aspp.c3.bias"] == (182,)
    assert "base.layer4.block24.reduce.conv.weight" not in shapes
    assert sum(int(np.prod(s)) for s in shapes.values()) == 56_024_832
    # the torch module tree built for inference has exactly these names, order and shapes
    sd = dl.build_network().state_dict()
    assert list(sd) == names
    assert all(tuple(sd[k].shape) == shapes[k] for k in names)
    # the 2018 release's spelling of the same tensors
    assert dl._legacy_name("base.layer2.block1.shortcut.bn.bias") == "scale.layer2.block1.proj.bn.bias"
    assert dl._legacy_name("base.aspp.c2.weight") == "scale.aspp.stages.c2.weight"


def test_cocostuff_names():
    assert len(COCOSTUFF_182) == 182 and len(set(COCOSTUFF_182)) == 182
    assert (COCOSTUFF_182[0], COCOSTUFF_182[90], COCOSTUFF_182[91], COCOSTUFF_182[181]) == \
        ("person", "hair brush", "banner", "wood")
    assert COCOSTUFF_182.index("sky-other") == 156 and COCOSTUFF_182.index("road") == 148
    assert len(UNSUPERVISED_IDS) == 11 and 182 - len(UNSUPERVISED_IDS) == 171


@pytest.mark.slow
def test_full_checkpoint_loads_strictly_and_predicts(v1_ckpt, v1_state):
    state = dl.load_state_dict(v1_ckpt)
    assert len(state) == 632
    assert torch.equal(state["base.aspp.c1.weight"], v1_state["base.aspp.c1.weight"])
    model = dl.DeepLabV2(v1_ckpt, device="cpu", test_size=97)
    loaded = model.net.state_dict()
    assert all(torch.equal(loaded[k], v1_state[k]) for k in v1_state)

    rgb = (np.random.default_rng(3).random((60, 80, 3)) * 255).astype(np.uint8)
    with torch.inference_mode():
        x = model.preprocess(rgb)
        assert tuple(x.shape) == (1, 3, 73, 97)  # longer side -> test_size, demo rounding
        logits = dl.forward_msc(model.net, x)
    # output stride 8 with the original stem: 73x97 -> conv/2 37x49 -> ceil-mode pool 19x25 -> layer3/2 10x13
    assert tuple(logits.shape) == (1, 182, 10, 13)

    seg = model.predict(rgb)
    assert isinstance(seg, Segmentation)
    assert seg.model == "deeplabv2-cocostuff164k" and seg.names == list(COCOSTUFF_182)
    assert seg.labels.shape == (60, 80) and seg.labels.dtype == np.int32
    assert seg.labels.min() >= 0 and seg.labels.max() < 182
    assert seg.confidence is not None and seg.confidence.dtype == np.float32
    assert np.all(seg.confidence >= 1.0 / 182 - 1e-6) and np.all(seg.confidence <= 1.0 + 1e-6)
    # labels are the argmax of the bilinearly upsampled logits
    up = torch.nn.functional.interpolate(logits, size=(60, 80), mode="bilinear", align_corners=False)[0]
    assert np.array_equal(up.argmax(0).numpy(), seg.labels)
    # random weights give large logits: allow for summation order in the two interpolations
    np.testing.assert_allclose(up.softmax(0).max(0).values.numpy(), seg.confidence, atol=1e-3)


def _reference_msc(n_classes: int = 182):
    """The repository's module structure restated as classes (Sequential conv/bn/relu units, bottlenecks with
    a ``shortcut`` unit in the first block, ``_ASPP`` summing children, ``MSC`` with ``base``): an
    independent construction that must accept the same state dict strictly and give the same logits."""
    from torch import nn
    from torch.nn import functional as F

    def unit(cin, cout, k, stride, pad, dil, relu=True):
        mods = [("conv", nn.Conv2d(cin, cout, k, stride, pad, dil, bias=False)), ("bn", nn.BatchNorm2d(cout))]
        if relu:
            mods.append(("relu", nn.ReLU()))
        return nn.Sequential(OrderedDict(mods))

    class Bottleneck(nn.Module):
        def __init__(self, cin, cout, stride, dil, down):
            super().__init__()
            mid = cout // 4
            self.reduce = unit(cin, mid, 1, stride, 0, 1)
            self.conv3x3 = unit(mid, mid, 3, 1, dil, dil)
            self.increase = unit(mid, cout, 1, 1, 0, 1, relu=False)
            self.shortcut = unit(cin, cout, 1, stride, 0, 1, relu=False) if down else nn.Identity()

        def forward(self, x):
            return F.relu(self.increase(self.conv3x3(self.reduce(x))) + self.shortcut(x))

    def res_layer(n, cin, cout, stride, dil):
        return nn.Sequential(OrderedDict(
            (f"block{i + 1}", Bottleneck(cin if i == 0 else cout, cout, stride if i == 0 else 1, dil, i == 0))
            for i in range(n)))

    class ASPP(nn.Module):
        def __init__(self):
            super().__init__()
            for i, r in enumerate((6, 12, 18, 24)):
                self.add_module(f"c{i}", nn.Conv2d(2048, n_classes, 3, 1, r, r, bias=True))

        def forward(self, x):
            return sum(c(x) for c in self.children())

    base = nn.Sequential(OrderedDict([
        ("layer1", nn.Sequential(OrderedDict([("conv1", unit(3, 64, 7, 2, 3, 1)),
                                              ("pool", nn.MaxPool2d(3, 2, 1, ceil_mode=True))]))),
        ("layer2", res_layer(3, 64, 256, 1, 1)), ("layer3", res_layer(4, 256, 512, 2, 1)),
        ("layer4", res_layer(23, 512, 1024, 1, 2)), ("layer5", res_layer(3, 1024, 2048, 1, 4)),
        ("aspp", ASPP()),
    ]))

    class MSC(nn.Module):
        def __init__(self):
            super().__init__()
            self.base = base

        def forward(self, x):
            logits = self.base(x)
            outs = [logits] + [
                F.interpolate(self.base(F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)),
                              size=logits.shape[2:], mode="bilinear", align_corners=False)
                for s in (0.5, 0.75)]
            return torch.stack(outs).max(dim=0).values

    return MSC().eval()


@pytest.mark.slow
def test_matches_class_based_reference(v1_ckpt, v1_state):
    ref = _reference_msc()
    ref.load_state_dict(v1_state, strict=True)
    model = dl.DeepLabV2(v1_ckpt, device="cpu", test_size=81)
    rgb = (np.random.default_rng(4).random((50, 70, 3)) * 255).astype(np.uint8)
    with torch.inference_mode():
        x = model.preprocess(rgb)
        ours, theirs = dl.forward_msc(model.net, x), ref(x)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4 * float(theirs.abs().max()))


def test_legacy_2018_layout_without_counters_is_accepted(tmp_path, v1_state):
    legacy = OrderedDict((dl._legacy_name(k), v) for k, v in v1_state.items()
                         if not k.endswith("num_batches_tracked"))
    assert len(legacy) == 528 and "scale.aspp.stages.c0.weight" in legacy
    state = dl.load_state_dict(_rewrite(tmp_path, legacy, "cocostuff164k_iter100k.pth"))
    assert len(state) == 528
    assert torch.equal(state["base.layer2.block1.shortcut.conv.weight"],
                       v1_state["base.layer2.block1.shortcut.conv.weight"])


@pytest.mark.parametrize("change, message", [
    ("rename", "unexpected key 'base.layer3.block2.conv3x3.conv.weights'"),
    ("drop", "missing key 'base.aspp.c2.bias'"),
    ("reshape", "'base.aspp.c0.weight' has shape (21, 2048, 3, 3), expected (182, 2048, 3, 3)"),
    ("legacy_rename", "unexpected key 'scale.layer2.block1.shortcut.conv.weight'"),
])
def test_corrupt_checkpoints_fail_with_one_line(tmp_path, v1_state, change, message):
    state = OrderedDict(v1_state)
    if change == "rename":
        state["base.layer3.block2.conv3x3.conv.weights"] = state.pop("base.layer3.block2.conv3x3.conv.weight")
    elif change == "drop":
        del state["base.aspp.c2.bias"]
    elif change == "reshape":
        state["base.aspp.c0.weight"] = torch.zeros(21, 2048, 3, 3)
    else:  # a 2018-style file with one v1.0 name mixed in
        state = OrderedDict((dl._legacy_name(k), v) for k, v in state.items())
        state["scale.layer2.block1.shortcut.conv.weight"] = state.pop("scale.layer2.block1.proj.conv.weight")
    with pytest.raises(UserError) as err:
        dl.load_state_dict(_rewrite(tmp_path, state))
    text = str(err.value)
    assert message in text and "\n" not in text


class _Payload:
    """Stands for anything a malicious pickle could construct."""


def test_pickles_with_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _Payload()}, path)
    with pytest.raises(UserError) as err:
        dl.load_state_dict(path)
    assert "refusing" in str(err.value) and "weights_only" in str(err.value) and "\n" not in str(err.value)


def test_unreadable_inputs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        dl.load_state_dict(tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="cannot read|refusing"):
        dl.load_state_dict(junk)
    tensor_only = _rewrite(tmp_path, torch.zeros(3), "tensor.pth")
    with pytest.raises(UserError, match="not a DeepLab v2 state dict"):
        dl.load_state_dict(tensor_only)


def test_wrapped_state_dict_is_accepted(tmp_path, v1_state):
    path = _rewrite(tmp_path, {"state_dict": v1_state, "iteration": 100000}, "wrapped.pth")
    assert len(dl.load_state_dict(path)) == 632


def test_banded_upsampling_equals_interpolate():
    logits = torch.randn(1, 182, 13, 17, generator=torch.Generator().manual_seed(0))
    for out_h, out_w in [(60, 80), (13, 17), (7, 9), (101, 33)]:
        up = torch.nn.functional.interpolate(logits, size=(out_h, out_w), mode="bilinear",
                                             align_corners=False)[0]
        labels, conf = dl.upsampled_argmax(logits, out_h, out_w, band=7)
        assert np.array_equal(labels, up.argmax(0).numpy())
        np.testing.assert_allclose(conf, up.softmax(0).max(0).values.numpy(), rtol=1e-5, atol=1e-6)


def test_preprocessing_is_bgr_minus_mean(v1_ckpt):
    model = dl.DeepLabV2(v1_ckpt, device="cpu")
    rgb = np.zeros((200, 100, 3), np.uint8)
    rgb[...] = (200, 100, 50)
    x = model.preprocess(rgb)
    assert tuple(x.shape) == (1, 3, 513, 256)  # 100 * 513 / 200 = 256.5 -> 256 (round half to even, like cv2)
    np.testing.assert_allclose(x[0, :, 5, 5].numpy(), [50 - 104.008, 100 - 116.669, 200 - 122.675], rtol=1e-6)
    with pytest.raises(UserError, match="uint8"):
        model.predict(rgb.astype(np.float32))
    with pytest.raises(UserError, match="shape"):
        model.predict(np.zeros((4, 4, 2), np.uint8))


def test_modules_import_without_frameworks():
    code = ("import sys; import inference_server.inference.seed.deeplab_v2, "
            "inference_server.inference.seed.monodepth, inference_server.inference.seed.cocostuff; "
            "print('torch' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.shared
def test_real_weights_on_the_repository_sample(models_dir, samples_dir):
    """With the real file in ../shared/models: the repository's own demo photo (rider on grass, sky)."""
    weights = models_dir / "deeplabv2-cocostuff164k" / "cocostuff164k_iter100k.pth"
    if not weights.exists():
        pytest.skip(f"real DeepLab v2 weights not present at {weights}")
    from PIL import Image

    rgb = np.asarray(Image.open(samples_dir / "person_horse_grass.jpg").convert("RGB"))
    seg = dl.DeepLabV2(weights).predict(rgb)
    h = rgb.shape[0]
    top, bottom = seg.labels[: h // 5], seg.labels[-h // 5:]
    assert np.mean(top == COCOSTUFF_182.index("sky-other")) > 0.5
    assert np.mean(np.isin(bottom, [COCOSTUFF_182.index(n) for n in ("grass", "dirt", "playingfield")])) > 0.5
    assert np.any(seg.labels == COCOSTUFF_182.index("person"))
    assert np.isin(seg.labels, list(UNSUPERVISED_IDS)).mean() <= 0.01
