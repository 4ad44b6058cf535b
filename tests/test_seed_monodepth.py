"""Monodepth seed network: TF1 checkpoint names derived from slim's auto-naming, loading, prediction."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from inference_server.errors import UserError  # noqa: E402
from inference_server.inference.seed import monodepth as md  # noqa: E402
from inference_server.inference.types import DepthMap  # noqa: E402


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    """model_cityscapes-style checkpoint: 64 network tensors plus Adam slots, beta powers, global step."""
    prefix = str(tmp_path_factory.mktemp("monodepth") / "model_cityscapes")
    assert md.write_random_checkpoint(prefix, seed=2, with_optimizer_slots=True) == 64
    return prefix


@pytest.fixture(scope="module")
def model(ckpt: str) -> md.Monodepth:
    return md.Monodepth(ckpt, dataset="cityscapes", device="cpu")


def _tf1_reference_graph(x):
    """build_vgg restated in TF1 graph style: every conv opens ``variable_scope(None, default_name="Conv")``
    and creates ``weights``/``biases`` in it, which is how slim.conv2d names variables when no scope is given."""
    v1 = tf.compat.v1

    def conv(h, cout, k, stride, act=tf.nn.elu):
        p = (k - 1) // 2
        h = tf.pad(h, [[0, 0], [p, p], [p, p], [0, 0]])
        with v1.variable_scope(None, default_name="Conv"):
            w = v1.get_variable("weights", [k, k, int(h.shape[-1]), cout])
            b = v1.get_variable("biases", [cout])
        return act(tf.nn.bias_add(tf.nn.conv2d(h, w, stride, "VALID"), b))

    def conv_block(h, cout, k):
        return conv(conv(h, cout, k, 1), cout, k, 2)

    def up(h):
        s = tf.shape(h)
        return v1.image.resize_nearest_neighbor(h, [s[1] * 2, s[2] * 2])

    def upconv(h, cout):
        return conv(up(h), cout, 3, 1)

    def get_disp(h):
        return 0.3 * conv(h, 2, 3, 1, tf.nn.sigmoid)

    with v1.variable_scope("model"):
        with v1.variable_scope("encoder"):
            c1 = conv_block(x, 32, 7)
            c2 = conv_block(c1, 64, 5)
            c3 = conv_block(c2, 128, 3)
            c4 = conv_block(c3, 256, 3)
            c5 = conv_block(c4, 512, 3)
            c6 = conv_block(c5, 512, 3)
            c7 = conv_block(c6, 512, 3)
        with v1.variable_scope("decoder"):
            i7 = conv(tf.concat([upconv(c7, 512), c6], 3), 512, 3, 1)
            i6 = conv(tf.concat([upconv(i7, 512), c5], 3), 512, 3, 1)
            i5 = conv(tf.concat([upconv(i6, 256), c4], 3), 256, 3, 1)
            i4 = conv(tf.concat([upconv(i5, 128), c3], 3), 128, 3, 1)
            d4 = get_disp(i4)
            i3 = conv(tf.concat([upconv(i4, 64), c2, up(d4)], 3), 64, 3, 1)
            d3 = get_disp(i3)
            i2 = conv(tf.concat([upconv(i3, 32), c1, up(d3)], 3), 32, 3, 1)
            d2 = get_disp(i2)
            i1 = conv(tf.concat([upconv(i2, 16), up(d2)], 3), 16, 3, 1)
            return get_disp(i1)


def test_variable_names_and_shapes():
    ev = md.expected_variables()
    assert len(ev) == 64  # 14 encoder + 18 decoder convs, weights and biases
    assert sum(int(np.prod(s)) for s in ev.values()) == 31_600_072  # "31 million parameters" (VGG model)
    assert ev["model/encoder/Conv/weights"] == (7, 7, 3, 32)
    assert ev["model/encoder/Conv_13/weights"] == (3, 3, 512, 512)
    assert ev["model/decoder/Conv/weights"] == (3, 3, 512, 512)  # upconv7
    assert ev["model/decoder/Conv_1/weights"] == (3, 3, 1024, 512)  # iconv7 on [upconv7, skip6]
    assert ev["model/decoder/Conv_8/weights"] == (3, 3, 128, 2)  # disp4
    assert ev["model/decoder/Conv_10/weights"] == (3, 3, 130, 64)  # iconv3 on [upconv3, skip2, udisp4]
    assert ev["model/decoder/Conv_16/weights"] == (3, 3, 18, 16)  # iconv1 on [upconv1, udisp2]
    assert ev["model/decoder/Conv_17/biases"] == (2,)
    assert "model/decoder/Conv_18/weights" not in ev and "model/encoder/Conv_14/weights" not in ev


@pytest.mark.slow
def test_tf1_graph_restores_checkpoint_and_matches_tf2_network(ckpt, model):
    graph = tf.Graph()
    x = np.random.default_rng(5).random((2, 256, 512, 3)).astype(np.float32)
    with graph.as_default():
        ph = tf.compat.v1.placeholder(tf.float32, [2, 256, 512, 3])
        disp1 = _tf1_reference_graph(ph)
        names = {v.op.name: tuple(v.shape.as_list()) for v in tf.compat.v1.global_variables()}
        assert names == md.expected_variables()  # slim-style auto-naming gives exactly our table
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as sess:
            saver.restore(sess, ckpt)  # the original code's restore path: all 64 names must be there
            ref = sess.run(disp1, {ph: x})
    ours = model.net.run(tf.constant(x)).numpy()
    assert ours.shape == (2, 256, 512, 2)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)
    assert 0.0 < ours.min() and ours.max() < 0.3


def test_post_process_disparity_ramps():
    h, w = 4, 101
    disp = np.stack([np.full((h, w), 1.0), np.full((h, w), 3.0)])  # direct = 1, mirrored estimate = 3
    out = md.post_process_disparity(disp)
    assert out.shape == (h, w)
    np.testing.assert_allclose(out[:, :5], 3.0)  # left 5 %: the mirrored estimate
    np.testing.assert_allclose(out[:, -5:], 1.0)  # right 5 %: the direct one
    np.testing.assert_allclose(out[:, 15:-15], 2.0)  # middle: the mean
    assert np.all(np.diff(out[0]) <= 1e-12)


def test_predict_relative_and_metric(model):
    rgb = (np.random.default_rng(1).random((120, 200, 3)) * 255).astype(np.uint8)
    rel = model.predict(rgb)
    assert isinstance(rel, DepthMap) and rel.kind == "relative" and rel.model == "monodepth-cityscapes"
    assert rel.depth.shape == (120, 200) and rel.depth.dtype == np.float32
    disp = rel.extras["disparity"]
    assert disp.shape == (120, 200) and np.all(disp > 0) and np.all(disp < 0.3)
    np.testing.assert_allclose(rel.depth, 1.0 / disp, rtol=1e-5)  # larger = farther
    assert np.all(np.isfinite(rel.depth))

    met = model.predict(rgb, focal_px=150.0)
    assert met.kind == "metric" and met.extras["baseline_m"] == pytest.approx(0.209313)
    np.testing.assert_allclose(met.depth, 150.0 * 0.209313 / (200 * disp), rtol=1e-5)
    # the network-size disparity is the post-processed pair of the image and its mirror
    net = model.disparity(rgb)
    assert net.shape == (256, 512)
    with pytest.raises(UserError, match="focal"):
        model.predict(rgb, focal_px=-1.0)
    with pytest.raises(UserError, match="uint8"):
        model.predict(rgb.astype(np.float32))


def test_kitti_rig_and_prefix_forms(ckpt, tmp_path):
    m = md.Monodepth(ckpt + ".index", dataset="kitti", device="cpu")
    assert m.baseline_m == 0.54 and m.model_id == "monodepth-kitti"
    assert md.DATASETS["kitti"]["width_to_focal"][1242] == pytest.approx(721.5377)
    assert md.checkpoint_prefix(ckpt + ".data-00000-of-00001") == ckpt
    assert md.checkpoint_prefix(ckpt + ".meta") == ckpt
    with pytest.raises(UserError, match="unknown Monodepth dataset"):
        md.Monodepth(ckpt, dataset="nyu")


@pytest.mark.parametrize("kwargs, message", [
    ({"rename": {"model/decoder/Conv_17/weights": "model/decoder/Conv_18/weights"}},
     "unexpected variable 'model/decoder/Conv_18/weights'"),
    ({"rename": {"model/encoder/Conv_3/biases": "model/encoder/Conv_3/bias"}},
     "unexpected variable 'model/encoder/Conv_3/bias'"),
    ({"reshape": {"model/encoder/Conv/weights": (7, 7, 6, 32)}},
     "'model/encoder/Conv/weights' has shape (7, 7, 6, 32), expected (7, 7, 3, 32)"),
])
def test_wrong_variables_fail_with_one_line(tmp_path, kwargs, message):
    prefix = str(tmp_path / "model_kitti")
    md.write_random_checkpoint(prefix, with_optimizer_slots=False, **kwargs)
    with pytest.raises(UserError) as err:
        md.Monodepth(prefix, dataset="kitti")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_variable_and_missing_files(tmp_path):
    prefix = str(tmp_path / "model_cityscapes")
    with pytest.raises(UserError, match="not found"):
        md.load_variables(prefix)
    # an unrelated name-based checkpoint: nothing under model/ -> first missing variable is named
    graph = tf.Graph()
    with graph.as_default():
        v = tf.compat.v1.Variable(np.zeros(3, np.float32), name="other")
        saver = tf.compat.v1.train.Saver({"other": v})
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(v.initializer)
            saver.save(sess, prefix, write_meta_graph=False, write_state=False)
    with pytest.raises(UserError, match="missing variable 'model/encoder/Conv/weights'"):
        md.load_variables(prefix)


def test_object_based_checkpoint_is_refused(tmp_path):
    ck = tf.train.Checkpoint(w=tf.Variable(np.zeros(3, np.float32)))
    path = ck.write(str(tmp_path / "object_based"))
    with pytest.raises(UserError, match="object-based"):
        md.load_variables(path)


@pytest.mark.shared
def test_real_kitti_weights_against_lidar(models_dir, samples_dir):
    """With the real model_kitti in ../shared/models: metric depth vs the projected LiDAR of KITTI frame 1."""
    prefix = models_dir / "monodepth-kitti" / "model_kitti"
    if not (prefix.parent / "model_kitti.index").exists():
        pytest.skip(f"real Monodepth KITTI checkpoint not present at {prefix}")
    from PIL import Image

    rgb = np.asarray(Image.open(samples_dir / "kitti_000001_rgb.png").convert("RGB"))
    lidar = np.asarray(Image.open(samples_dir / "kitti_000001_depth_lidar.png")).astype(np.float64) / 256.0
    pred = md.Monodepth(prefix, dataset="kitti").predict(rgb, focal_px=721.5377)
    valid = (lidar > 0) & (lidar < 80) & np.isfinite(pred.depth)
    abs_rel = np.median(np.abs(pred.depth[valid] - lidar[valid]) / lidar[valid])
    assert pred.kind == "metric" and abs_rel < 0.3  # the paper reports mean abs rel ~0.1-0.15 on KITTI
