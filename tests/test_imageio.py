"""Safe image input: modes, EXIF orientation and focal, corrupt files, bombs, downscaling, labels, depth."""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np
import pytest
from PIL import Image
from test_cli_support import exif_bytes, png_claiming

from inference_server import imageio
from inference_server.errors import UserError
from inference_server.imageio import is_depth_file, load_depth, load_labels, load_names, load_photo


def _save(tmp_path, im: Image.Image, name: str, **kw) -> str:
    p = tmp_path / name
    im.save(p, **kw)
    return str(p)


# ---- modes -------------------------------------------------------------------------------------


def test_rgb_png_exact_pixels_and_sha(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    p = _save(tmp_path, Image.fromarray(a), "a.png")
    ph = load_photo(p)
    assert ph.rgb.dtype == np.uint8 and np.array_equal(ph.rgb, a)
    assert (ph.full_width, ph.full_height, ph.scale) == (9, 7, 1.0)
    assert ph.sha256 == hashlib.sha256(open(p, "rb").read()).hexdigest()
    assert ph.exif_focal_mm is None and ph.exif_focal_35mm is None and ph.exif_sensor_width_mm is None


def test_palette_image_gives_palette_colours(tmp_path):
    im = Image.new("P", (4, 2))
    im.putpalette([0, 0, 0, 200, 10, 20, 5, 250, 6] + [0] * (256 * 3 - 9))
    im.putdata([0, 1, 2, 1, 1, 1, 2, 0])
    ph = load_photo(_save(tmp_path, im, "p.png"))
    assert ph.rgb[0, 1].tolist() == [200, 10, 20] and ph.rgb[0, 2].tolist() == [5, 250, 6]
    assert ph.rgb[1, 3].tolist() == [0, 0, 0]


def test_palette_transparency_composited_on_white(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    im.putdata([0, 1])
    p = _save(tmp_path, im, "pt.png", transparency=0)
    assert load_photo(p).rgb[0].tolist() == [[255, 255, 255], [40, 50, 60]]


def test_rgba_and_la_composited_on_white(tmp_path):
    a = np.array([[[200, 0, 0, 0], [200, 0, 0, 255], [0, 0, 0, 128]]], np.uint8)
    ph = load_photo(_save(tmp_path, Image.fromarray(a, "RGBA"), "a.png"))
    assert ph.rgb[0, 0].tolist() == [255, 255, 255]
    assert ph.rgb[0, 1].tolist() == [200, 0, 0]
    assert all(abs(c - 127) <= 1 for c in ph.rgb[0, 2].tolist())  # half black over white
    la = Image.fromarray(np.array([[[50, 0], [50, 255]]], np.uint8), "LA")
    assert load_photo(_save(tmp_path, la, "la.png")).rgb[0].tolist() == [[255] * 3, [50] * 3]


@pytest.mark.parametrize("mode", ["La", "LAB", "HSV", "RGBX", "RGBa", "PA", "I;16B", "F"])
def test_every_in_memory_mode_converts(mode):
    from inference_server.imageio import _to_rgb

    assert _to_rgb(Image.new(mode, (3, 2))).mode == "RGB"


def test_grey_and_16bit_grey(tmp_path):
    g = Image.fromarray(np.array([[0, 77, 255]], np.uint8), "L")
    assert load_photo(_save(tmp_path, g, "g.png")).rgb[0].tolist() == [[0] * 3, [77] * 3, [255] * 3]
    g16 = Image.fromarray(np.array([[0, 257 * 100, 65535]], np.uint16))
    p = _save(tmp_path, g16, "g16.png")
    assert Image.open(p).mode.startswith("I")
    assert load_photo(p).rgb[0, :, 0].tolist() == [0, 100, 255]


def test_cmyk_ycbcr_and_bilevel(tmp_path):
    cmyk = Image.new("CMYK", (2, 2), (0, 0, 0, 0))
    ph = load_photo(_save(tmp_path, cmyk, "c.jpg", quality=95))
    assert ph.rgb.shape == (2, 2, 3) and ph.rgb.min() >= 250  # no ink = white
    ycc = Image.new("RGB", (3, 3), (30, 160, 90)).convert("YCbCr")
    got = load_photo(_save(tmp_path, ycc, "y.tif")).rgb[1, 1].astype(int)
    assert np.abs(got - [30, 160, 90]).max() <= 3
    one = Image.new("1", (3, 1), 0)
    one.putpixel((1, 0), 1)
    assert load_photo(_save(tmp_path, one, "b.png")).rgb[0, :, 0].tolist() == [0, 255, 0]


# ---- EXIF ---------------------------------------------------------------------------------------


def test_exif_orientation_6_rotates(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide, 20 high; red block at the stored top-left
    a[:5, :8] = (255, 0, 0)
    p = _save(tmp_path, Image.fromarray(a), "r.png", exif=exif_bytes(orientation=6))
    ph = load_photo(p)
    assert (ph.full_width, ph.full_height) == (20, 40) and ph.rgb.shape == (40, 20, 3)
    # orientation 6 = rotate 90 degrees clockwise for display: the top-left goes to the top-right
    assert ph.rgb[0, -1].tolist() == [255, 0, 0] and ph.rgb[7, 15].tolist() == [255, 0, 0]
    assert ph.rgb[0, 0].tolist() == [0, 0, 0]


def test_exif_focal_and_sensor_width_follow_rotation(tmp_path):
    # written by a camera at 4000x3000 with 625 px/mm (6250 px/cm): a 6.4 x 4.8 mm sensor
    tags = dict(focal_mm=4.0, focal_35mm=28, plane_res=6250.0, plane_unit=3, pixel_dims=(4000, 3000))
    im = Image.new("RGB", (40, 30), (9, 9, 9))
    up = load_photo(_save(tmp_path, im, "up.jpg", exif=exif_bytes(orientation=1, **tags)))
    assert (up.exif_focal_mm, up.exif_focal_35mm) == (4.0, 28.0)
    assert up.exif_sensor_width_mm == pytest.approx(6.4)
    side = load_photo(_save(tmp_path, im, "side.jpg", exif=exif_bytes(orientation=6, **tags)))
    assert (side.full_width, side.full_height) == (30, 40)
    assert side.exif_sensor_width_mm == pytest.approx(4.8)
    # the focal in pixels is the same physical lens either way: 4 mm * 625 px/mm / (4000 / 40)
    from inference_server.pipeline import intrinsics

    assert intrinsics(up).focal_px == pytest.approx(25.0)
    assert intrinsics(side).focal_px == pytest.approx(25.0)
    assert intrinsics(side).source == "exif"


def test_bogus_exif_focal_values_ignored(tmp_path):
    im = Image.new("RGB", (10, 10))
    ph = load_photo(_save(tmp_path, im, "b.jpg", exif=exif_bytes(focal_mm=0.0, plane_res=0.001, plane_unit=2)))
    assert ph.exif_focal_mm is None and ph.exif_sensor_width_mm is None


# ---- broken files and bombs --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["jpg", "png"])
def test_truncated_and_corrupt(tmp_path, kind):
    a = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    good = tmp_path / f"good.{kind}"
    Image.fromarray(a).save(good)
    data = good.read_bytes()
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"cannot read photo .*cut\.\w+: corrupt or truncated") as e:
        load_photo(cut)
    assert "\n" not in str(e.value)
    junk = tmp_path / f"junk.{kind}"
    junk.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(UserError, match=r"junk\.\w+: not an image file"):
        load_photo(junk)


def test_png_bad_crc_refused(tmp_path):
    p = tmp_path / "crc.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(p)
    data = bytearray(p.read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF  # flip a byte inside the compressed data: CRC mismatch
    p.write_bytes(bytes(data))
    with pytest.raises(UserError, match="crc.png"):
        load_photo(p)


def test_missing_empty_and_folder(tmp_path):
    with pytest.raises(UserError, match="photo not found: .*nope.jpg"):
        load_photo(tmp_path / "nope.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(UserError, match="empty.jpg"):
        load_photo(tmp_path / "empty.jpg")
    with pytest.raises(UserError, match="is a folder"):
        load_photo(tmp_path)
    if os.path.exists("/dev/zero"):
        with pytest.raises(UserError, match="not a regular file: /dev/zero"):
            load_photo("/dev/zero")


def test_decompression_bomb_header_refused_before_decoding(tmp_path):
    p = png_claiming(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(UserError, match=r"bomb.png: 10000 MP is over the 200 MP limit"):
        load_photo(p)


def test_pixel_limit_by_parameter_and_env(tmp_path, monkeypatch):
    p = _save(tmp_path, Image.new("RGB", (100, 100)), "x.png")
    with pytest.raises(UserError, match=r"100x100 = 0.01 MP is over the 0.005 MP limit"):
        load_photo(p, max_pixels=5000)
    # just over the default 200 MP (and over Pillow's own 179 MP check, which must not win)
    with pytest.raises(UserError, match=r"big.png: (20000x10001 = )?200 MP is over the 200 MP limit"):
        load_photo(png_claiming(tmp_path / "big.png", 20_000, 10_001))
    monkeypatch.setenv(imageio.MAX_PIXELS_ENV, "9999")
    with pytest.raises(UserError, match=imageio.MAX_PIXELS_ENV):
        load_photo(p)
    monkeypatch.setenv(imageio.MAX_PIXELS_ENV, "10000")
    assert load_photo(p).rgb.shape == (100, 100, 3)


def test_50_megapixel_jpeg_analysed_downscaled(tmp_path):
    p = tmp_path / "big.jpg"
    Image.new("RGB", (8660, 5774), (30, 120, 200)).save(p, quality=85)
    ph = load_photo(p)
    h, w = ph.shape
    assert (ph.full_width, ph.full_height) == (8660, 5774)
    assert h * w <= 4_000_000 and h * w > 3_990_000
    assert ph.scale == pytest.approx(w / 8660) and abs(h / 5774 - ph.scale) < 1e-3
    assert np.abs(ph.rgb[h // 2, w // 2].astype(int) - [30, 120, 200]).max() <= 3


def test_analysis_size_keeps_aspect():
    assert imageio.analysis_size(100, 50, 0) == (100, 50)
    assert imageio.analysis_size(4000, 2000, 2_000_000) == (2000, 1000)
    w, h = imageio.analysis_size(8660, 5774, 4_000_000)
    assert w * h <= 4_000_000 and math.isclose(w / h, 8660 / 5774, rel_tol=1e-3)


# ---- labels and names --------------------------------------------------------------------------


def test_labels_palette_index_not_colour(tmp_path):
    im = Image.new("P", (3, 2))
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    im.putdata([0, 1, 2, 2, 1, 0])
    lab = load_labels(_save(tmp_path, im, "l.png"), (2, 3))
    assert lab.dtype == np.int32 and lab.tolist() == [[0, 1, 2], [2, 1, 0]]


def test_labels_16bit_and_npy(tmp_path):
    a = np.array([[0, 300], [1000, 7]], np.uint16)
    assert load_labels(_save(tmp_path, Image.fromarray(a), "l16.png"), (2, 2)).tolist() == a.tolist()
    np.save(tmp_path / "l.npy", a.astype(np.int64))
    assert load_labels(tmp_path / "l.npy", (2, 2)).tolist() == a.tolist()


def test_labels_full_size_resampled_nearest(tmp_path):
    a = np.repeat(np.repeat(np.array([[1, 2], [3, 4]], np.uint8), 4, axis=0), 4, axis=1)  # 8x8 blocks
    p = _save(tmp_path, Image.fromarray(a, "L"), "l.png")
    lab = load_labels(p, (4, 4), full_shape=(8, 8))
    assert lab.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]


def test_labels_wrong_size_and_rotated_hint(tmp_path):
    p = _save(tmp_path, Image.new("L", (5, 4)), "l.png")
    with pytest.raises(UserError, match=r"labels .*l.png is 5x4 but the photo is 6x4$"):
        load_labels(p, (4, 6))
    with pytest.raises(UserError, match="rotated"):
        load_labels(p, (5, 4))
    with pytest.raises(UserError, match="is 5x4 but the photo is 40x30"):
        load_labels(p, (3, 4), full_shape=(30, 40))


def test_labels_colour_image_refused(tmp_path):
    a = np.zeros((2, 2, 3), np.uint8)
    a[0, 0] = (255, 0, 0)
    with pytest.raises(UserError, match="colour image"):
        load_labels(_save(tmp_path, Image.fromarray(a), "c.png"), (2, 2))
    grey_rgb = np.full((2, 2, 3), 7, np.uint8)
    assert load_labels(_save(tmp_path, Image.fromarray(grey_rgb), "g.png"), (2, 2)).tolist() == [[7, 7], [7, 7]]


def test_names_plain_shipped_and_objectinfo(tmp_path):
    p = tmp_path / "n.txt"
    p.write_text("sky\n\nroad\n\n\n", encoding="utf-8")
    assert load_names(p) == ["sky", "class_1", "road"]
    ade = load_names("ade20k150")
    assert len(ade) == 151 and ade[:4] == ["other", "wall", "building", "sky"]
    info = tmp_path / "objectInfo150.txt"
    info.write_text("Idx\tRatio\tTrain\tVal\tName\n1\t0.1\t1\t1\twall\n2\t0.1\t1\t1\tbuilding, edifice\n")
    assert load_names(info) == ["other", "wall", "building"]
    (tmp_path / "e.txt").write_text("\n\n")
    with pytest.raises(UserError, match="is empty"):
        load_names(tmp_path / "e.txt")
    with pytest.raises(UserError, match="label names not found"):
        load_names(tmp_path / "missing.txt")


# ---- depth ---------------------------------------------------------------------------------------


def test_depth_invalid_values_become_nan(tmp_path):
    a = np.array([[1.5, np.nan, np.inf], [0.0, -2.0, 3.0]], np.float64)
    np.save(tmp_path / "d.npy", a)
    d = load_depth(tmp_path / "d.npy", (2, 3))
    assert d.dtype == np.float32
    assert d[0, 0] == 1.5 and d[1, 2] == 3.0
    assert np.isnan(d[[0, 0, 1, 1], [1, 2, 0, 1]]).all()
    np.save(tmp_path / "z.npy", np.zeros((2, 3), np.float32))
    assert np.isnan(load_depth(tmp_path / "z.npy", (2, 3))).all()  # all invalid: no crash here


def test_depth_npz_png16_and_squeeze(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3) + 1
    np.savez(tmp_path / "d.npz", first=a, second=a * 0)
    assert load_depth(tmp_path / "d.npz", (2, 3)).tolist() == a.tolist()
    np.save(tmp_path / "d3.npy", a[..., None])
    assert load_depth(tmp_path / "d3.npy", (2, 3)).tolist() == a.tolist()
    raw = np.array([[256, 512, 0]], np.uint16)
    p = _save(tmp_path, Image.fromarray(raw), "d.png")
    d = load_depth(p, (1, 3))
    assert d[0, :2].tolist() == [1.0, 2.0] and np.isnan(d[0, 2])
    assert load_depth(p, (1, 3), png_scale=1000.0)[0, :2].tolist() == pytest.approx([0.256, 0.512])


def test_depth_errors(tmp_path):
    np.save(tmp_path / "d.npy", np.ones((4, 5), np.float32))
    with pytest.raises(UserError, match=r"depth .*d.npy is 5x4 but the photo is 6x4"):
        load_depth(tmp_path / "d.npy", (4, 6))
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError, match="cannot read depth .*o.npy"):
        load_depth(tmp_path / "o.npy", (1, 1))
    (tmp_path / "d.exr").write_bytes(b"v/1\x01")
    with pytest.raises(UserError, match="not supported"):
        load_depth(tmp_path / "d.exr", (1, 1))
    (tmp_path / "bad.npy").write_bytes(b"garbage")
    with pytest.raises(UserError, match="bad.npy"):
        load_depth(tmp_path / "bad.npy", (1, 1))
    np.savez(tmp_path / "z.npz", a=np.ones((2, 2), np.float32))
    data = bytearray((tmp_path / "z.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF  # a bad CRC inside the zip
    (tmp_path / "z.npz").write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"cannot read depth .*z.npz: BadZipFile"):
        load_depth(tmp_path / "z.npz", (2, 2))


def test_depth_full_size_resampled(tmp_path):
    a = np.repeat(np.repeat(np.array([[1.0, 2.0], [3.0, np.nan]], np.float32), 3, 0), 3, 1)
    np.save(tmp_path / "d.npy", a)
    d = load_depth(tmp_path / "d.npy", (2, 2), full_shape=(6, 6))
    assert d[0].tolist() == [1.0, 2.0] and d[1, 0] == 3.0 and np.isnan(d[1, 1])


def test_is_depth_file(tmp_path):
    assert is_depth_file("x.npy") and is_depth_file("dir/x.PNG")
    assert not is_depth_file("pydnet-mobile-v1") and not is_depth_file("none")
    (tmp_path / "weird").write_bytes(b"")
    assert is_depth_file(str(tmp_path / "weird"))


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "GIF", "WEBP", "BMP"])
def test_mutated_files_give_a_photo_or_a_user_error(tmp_path, fmt):
    """Flipped bytes and cut tails anywhere in a real file: a valid Photo or one UserError line, nothing else."""
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    src = tmp_path / f"src.{fmt.lower()}"
    Image.fromarray(a).save(src, format=fmt, exif=exif_bytes(orientation=6, focal_mm=4.0)) if fmt in (
        "JPEG", "PNG", "WEBP", "TIFF") else Image.fromarray(a).save(src, format=fmt)
    data = src.read_bytes()
    outcomes = {"photo": 0, "error": 0}
    for k in range(40):
        b = bytearray(data)
        if k % 2:
            for pos in rng.integers(0, len(b), size=int(rng.integers(1, 6))):
                b[pos] = int(rng.integers(0, 256))
        else:
            b = b[: int(rng.integers(0, len(b)))]
        p = tmp_path / f"m{k}.{fmt.lower()}"
        p.write_bytes(bytes(b))
        try:
            ph = load_photo(p)
        except UserError as exc:
            assert "\n" not in str(exc) and f"m{k}." in str(exc)
            outcomes["error"] += 1
        else:
            assert ph.rgb.dtype == np.uint8 and ph.rgb.ndim == 3 and ph.rgb.shape[2] == 3
            assert ph.rgb.shape[:2] == (ph.full_height, ph.full_width)
            outcomes["photo"] += 1
    assert outcomes["error"] >= 10  # the cut files at least
