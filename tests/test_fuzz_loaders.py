"""Fuzz: the photo, label and depth loaders (Hypothesis). Random bytes behind real file signatures,
damaged real files and arrays of any dtype and shape give a one-line UserError or a well-formed result."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from fuzz_support import FUZZ, FUZZ_SLOW
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from inference_server.errors import UserError
from inference_server.imageio import load_depth, load_labels, load_names, load_photo
from inference_server.pipeline import check_ids

_DIR = Path(tempfile.mkdtemp(prefix="img2maya-fuzz-loaders-"))
SIGNATURES = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF",
              b"\x93NUMPY\x01\x00", b"PK\x03\x04", b""]


def _image_bytes(fmt: str, mode: str) -> bytes:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    im = Image.fromarray(a).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


GOOD = {("PNG", "RGB"): _image_bytes("PNG", "RGB"), ("PNG", "L"): _image_bytes("PNG", "L"),
        ("PNG", "P"): _image_bytes("PNG", "P"), ("JPEG", "RGB"): _image_bytes("JPEG", "RGB"),
        ("TIFF", "RGB"): _image_bytes("TIFF", "RGB"), ("BMP", "RGB"): _image_bytes("BMP", "RGB"),
        ("GIF", "P"): _image_bytes("GIF", "P"), ("WEBP", "RGB"): _image_bytes("WEBP", "RGB")}
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif", "WEBP": ".webp"}


@st.composite
def damaged_images(draw: st.DrawFn) -> tuple[bytes, str]:
    fmt, mode = draw(st.sampled_from(sorted(GOOD)))
    data = bytearray(GOOD[(fmt, mode)])
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data), SUFFIX[fmt]


random_files = st.tuples(st.sampled_from(SIGNATURES), st.binary(max_size=400),
                         st.sampled_from([".png", ".jpg", ".tif", ".npy", ".npz", ".webp"])).map(
    lambda t: (t[0] + t[1], t[2]))


def _write(data: bytes, suffix: str) -> Path:
    path = _DIR / f"input{suffix}"
    path.write_bytes(data)
    return path


def _one_line(exc: UserError, path: Path) -> None:
    assert "\n" not in str(exc) and str(path.name) in str(exc), exc


@FUZZ
@given(file=damaged_images() | random_files)
def test_any_photo_bytes_load_or_give_one_line(file: tuple[bytes, str]) -> None:
    path = _write(*file)
    try:
        photo = load_photo(path)
    except UserError as exc:
        _one_line(exc, path)
        return
    assert photo.rgb.dtype == np.uint8 and photo.rgb.ndim == 3 and photo.rgb.shape[2] == 3
    assert (photo.full_height, photo.full_width) == photo.rgb.shape[:2] and len(photo.sha256) == 64


@FUZZ
@given(file=damaged_images() | random_files)
def test_any_label_or_depth_bytes_load_or_give_one_line(file: tuple[bytes, str]) -> None:
    path = _write(*file)
    for load in (load_labels, load_depth):
        try:
            a = load(path, (12, 16))
        except UserError as exc:
            _one_line(exc, path)
            continue
        assert a.shape == (12, 16)
        if load is load_depth:
            assert a.dtype == np.float32 and bool(np.all(np.isnan(a) | (a > 0)))
        else:
            assert a.dtype == np.int32


dtypes = st.sampled_from(["u1", "u2", "i4", "i8", "f2", "f4", "f8", "c8", "?", "U2", "M8[s]"])
arrays = hnp.arrays(dtype=dtypes, shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))


@FUZZ_SLOW
@given(a=arrays, same_shape=st.booleans(), npz=st.booleans())
def test_any_numpy_array_as_labels_or_depth(a: np.ndarray, same_shape: bool, npz: bool) -> None:
    path = _DIR / ("arr.npz" if npz else "arr.npy")
    if npz:
        np.savez(path, a)
    else:
        np.save(path, a, allow_pickle=False)
    shape = (a.shape[0], a.shape[1]) if same_shape and a.ndim >= 2 else (5, 4)
    try:
        d = load_depth(path, shape)
    except UserError as exc:
        assert "\n" not in str(exc)
    else:
        assert d.shape == shape and d.dtype == np.float32 and bool(np.all(np.isnan(d) | (d > 0)))
    if npz:
        return
    try:
        ids = load_labels(path, shape)
        check_ids(ids, ["a", "b", "c"])
    except UserError as exc:
        assert "\n" not in str(exc)
    else:
        assert ids.shape == shape and ids.dtype == np.int32 and int(ids.max()) < 3


@FUZZ
@given(data=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_any_label_names_file_loads_or_gives_one_line(data: bytes) -> None:
    path = _write(data, ".txt")
    try:
        names = load_names(path)
    except UserError as exc:
        assert "\n" not in str(exc)
    else:
        assert names and all(isinstance(n, str) and n and "\n" not in n for n in names)
