"""The camera-projected look shared by the USD and glTF builders and the preview (docs/EXPORTS.md).

The photo is projected through the scene camera onto the primitives: a surface point P gets the texture
coordinate of the photo pixel it projects to. A renderer interpolates texture coordinates linearly over
a face, while the projection is projective (u = cx + f x / d), so the primitives are triangulated and
their faces split (each into four, midpoint subdivision, only where needed) until the linear
interpolation stays within TOLERANCE_PX photo pixels of the true projection at every edge midpoint and
centroid. Faces that cannot see the photo (behind the camera, or wholly beyond one side of its frustum)
are "outside": the builders give them the object's mean colour.

Everything is vectorised numpy over all the faces of one primitive at once.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..conventions import euler_xyz_to_matrix
from ..errors import UserError

LOOKS = ("color", "projection")
DEFAULT_LOOK = "color"
MAX_TEXTURE_SIDE = 4096  # a bigger photo is written downscaled to this long side
TOLERANCE_PX = 0.5  # interpolation error allowed at the sampled points (the target is < 1 px anywhere)
MAX_LEVELS = 12  # subdivision levels at most (a face is split into at most 4^12 pieces)
BORDER_SPLIT_PX = 32.0  # faces across the photo's border are split down to this size (less smear outside)
JPEG_QUALITY = 95
_NEAR = 1e-3  # metres: a vertex nearer than this (or behind the camera) cannot be projected


def check_look(look: str | None) -> str:
    """The look name, or a one-line UserError."""
    value = DEFAULT_LOOK if look is None else str(look)
    if value not in LOOKS:
        raise UserError(f"unknown look {look!r}: use one of {', '.join(LOOKS)}")
    return value


# ----------------------------------------------------------------------------------------- the photo


@dataclass
class Texture:
    """The photo as the projected look's texture: encoded bytes (what is written or embedded) and pixels."""

    data: bytes
    suffix: str  # ".jpg" or ".png"
    mime: str
    rgb: np.ndarray  # (h, w, 3) uint8, EXIF-oriented, possibly downscaled
    source_width: int  # the photo's full size (the scene camera's)
    source_height: int
    path: str
    notes: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def downscaled(self) -> bool:
        return (self.width, self.height) != (self.source_width, self.source_height)

    def info(self) -> dict[str, Any]:
        """What the scene says about the texture (`look.texture` in scene@1)."""
        out: dict[str, Any] = {"width": self.width, "height": self.height, "downscaled": self.downscaled}
        if self.downscaled:
            out["source_width"], out["source_height"] = self.source_width, self.source_height
        return out


def photo_of(scene: dict[str, Any], photo: str | os.PathLike[str] | None = None) -> str:
    """The photo to project: `photo` when given, else the scene's source.image."""
    return str(photo) if photo is not None else str(scene["source"]["image"])


def load_texture(scene: dict[str, Any], photo: str | os.PathLike[str] | None = None,
                 max_side: int | None = None) -> Texture:
    """Re-read the scene's photo for the projected look.

    UserError (one line) when it cannot be read (moved, deleted), when it is not the photo the scene was
    made from (another size, or another sha256 when the scene has a real one). A photo whose long side
    is over `max_side` is downscaled to it (LANCZOS) and the note says so. The file's own bytes are
    used as they are when nothing has to change (a JPEG or PNG, no EXIF rotation, not downscaled).
    """
    from PIL import Image

    from ..imageio import load_photo

    path = photo_of(scene, photo)
    source = scene["source"]
    max_side = MAX_TEXTURE_SIDE if max_side is None else int(max_side)
    if not os.path.isfile(path):
        raise UserError(f"the projection look needs the photo, and {path} is not there any more "
                        "(moved or deleted since the analysis?)")
    loaded = load_photo(path, max_analysis_pixels=0)
    sha = str(source.get("sha256") or "")
    if sha.strip("0") and loaded.sha256 != sha:
        raise UserError(f"photo {path} is not the one the scene was made from (its sha256 differs)")
    want = (int(source["width"]), int(source["height"]))
    if (loaded.full_width, loaded.full_height) != want:
        raise UserError(f"photo {path} is {loaded.full_width}x{loaded.full_height}, the scene was made "
                        f"from a {want[0]}x{want[1]} photo")
    rgb = loaded.rgb
    notes = []
    long_side = max(want)
    with Image.open(path) as im:
        fmt = im.format
        try:
            orientation = int(im.getexif().get(0x0112, 1) or 1)
        except Exception:  # noqa: BLE001 - a broken tag: load_photo used the pixels as stored
            orientation = 1
    if long_side > max_side:
        s = max_side / long_side
        size = (max(1, round(want[0] * s)), max(1, round(want[1] * s)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0))
        notes.append(f"the projected photo is written downscaled from {want[0]}x{want[1]} to "
                     f"{size[0]}x{size[1]} ({max_side} px long side)")
    if fmt in ("JPEG", "PNG") and orientation == 1 and rgb is loaded.rgb:
        data = Path(path).read_bytes()
        suffix = ".jpg" if fmt == "JPEG" else ".png"
    else:
        buf = io.BytesIO()
        if fmt == "PNG" or fmt not in ("JPEG", "MPO"):
            Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
            suffix = ".png"
        else:
            Image.fromarray(rgb).save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
            suffix = ".jpg"
        data = buf.getvalue()
    mime = "image/jpeg" if suffix == ".jpg" else "image/png"
    return Texture(data=data, suffix=suffix, mime=mime, rgb=np.ascontiguousarray(rgb), source_width=want[0],
                   source_height=want[1], path=path, notes=notes)


def texture_file_name(target: str | os.PathLike[str], texture: Texture) -> str:
    """`<output stem>.photo.jpg` (or .png): the texture written beside an output file."""
    return f"{Path(target).stem}.photo{texture.suffix}"


def look_info(texture: Texture, file_name: str | None = None) -> dict[str, Any]:
    """The scene@1 `look` object of a projected export."""
    info: dict[str, Any] = {"mode": "projection", "texture": texture.info()}
    if file_name is not None:
        info["texture"]["file"] = file_name
    info["texture"]["sha256"] = hashlib.sha256(texture.data).hexdigest()
    return info


def with_look(scene: dict[str, Any], texture: Texture | None, file_name: str | None = None) -> dict[str, Any]:
    """A shallow copy of the scene saying which look it was exported with (and any texture note)."""
    out = dict(scene)
    if texture is None:
        out["look"] = {"mode": "color"}
        return out
    out["look"] = look_info(texture, file_name)
    if texture.notes:
        out["warnings"] = [*scene.get("warnings", []), *texture.notes]
    return out


# ----------------------------------------------------------------------------------------- geometry


@dataclass
class Projector:
    """The scene camera as a projector: world -> photo pixels (continuous, pixel (u, v) spans [u, u+1))."""

    rotation: np.ndarray  # camera -> world
    origin: np.ndarray
    focal_px: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def of(cls, cam: dict[str, Any]) -> Projector:
        return cls(euler_xyz_to_matrix(*cam["rotate"]), np.asarray(cam["translate"], dtype=np.float64),
                   float(cam["focal_px"]), float(cam["principal_px"][0]), float(cam["principal_px"][1]),
                   int(cam["width"]), int(cam["height"]))

    def homogeneous(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(U*d, V*d, d) of world points: d the depth in front of the camera (negative behind)."""
        c = (points - self.origin) @ self.rotation
        d = -c[..., 2]
        return self.cx * d + self.focal_px * c[..., 0], self.cy * d - self.focal_px * c[..., 1], d

    def pixels(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(..., 2) continuous photo pixel coordinates and (...) depth; pixels are nan where d <= 0."""
        uh, vh, d = self.homogeneous(points)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(d > 0, 1.0 / d, np.nan)
        return np.stack([uh * inv, vh * inv], axis=-1), d

    def st(self, points: np.ndarray) -> np.ndarray:
        """USD-style texture coordinates (origin bottom left) of world points; (0, 0) where unprojectable."""
        px, _d = self.pixels(points)
        st = np.stack([px[..., 0] / self.width, 1.0 - px[..., 1] / self.height], axis=-1)
        return np.nan_to_num(st, nan=0.0, posinf=0.0, neginf=0.0)


def primitive_triangles(prim: dict[str, Any]) -> np.ndarray:
    """(n, 3, 3) world-space triangles of a primitive (its unit mesh with the size baked in, placed)."""
    from .primitives import unit_mesh

    mesh = unit_mesh(prim["shape"], prim["size"])
    local = np.asarray(mesh.vertices, dtype=np.float64)[np.asarray(mesh.faces)]
    rot = euler_xyz_to_matrix(*prim["rotate"])
    return local @ rot.T + np.asarray(prim["translate"], dtype=np.float64)


def _split4(tris: np.ndarray) -> np.ndarray:
    a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
    ab, bc, ca = 0.5 * (a + b), 0.5 * (b + c), 0.5 * (c + a)
    return np.stack([np.stack([a, ab, ca], 1), np.stack([ab, b, bc], 1), np.stack([ca, bc, c], 1),
                     np.stack([ab, bc, ca], 1)], axis=1).reshape(-1, 3, 3)


def interpolation_error(tris: np.ndarray, proj: Projector) -> np.ndarray:
    """Per face: the largest distance, in photo pixels, between the linearly interpolated projection and
    the true one at the three edge midpoints and the centroid (inf where a vertex cannot be projected)."""
    px, d = proj.pixels(tris)
    a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
    samples = np.stack([0.5 * (a + b), 0.5 * (b + c), 0.5 * (c + a), (a + b + c) / 3.0], axis=1)
    pa, pb, pc = px[:, 0], px[:, 1], px[:, 2]
    linear = np.stack([0.5 * (pa + pb), 0.5 * (pb + pc), 0.5 * (pc + pa), (pa + pb + pc) / 3.0], axis=1)
    true, _ = proj.pixels(samples)
    err = np.linalg.norm(true - linear, axis=-1).max(axis=1)
    return np.where((d > _NEAR).all(axis=1) & np.isfinite(err), err, np.inf)


def project_faces(tris: np.ndarray, proj: Projector, tolerance_px: float = TOLERANCE_PX,
                  max_levels: int = MAX_LEVELS) -> tuple[np.ndarray, np.ndarray]:
    """Split faces until the projection's interpolation error is within `tolerance_px`.

    Returns (faces (m, 3, 3) world, inside (m,) bool). `inside` faces can see the photo: every vertex in
    front of the camera and the face not wholly beyond one side of the frustum. Faces wholly outside are
    never split; faces across the photo's border are split down to BORDER_SPLIT_PX.
    """
    done_tris, done_inside = [], []
    cur = np.asarray(tris, dtype=np.float64).reshape(-1, 3, 3)
    w, h = float(proj.width), float(proj.height)
    for level in range(max_levels + 1):
        if not len(cur):
            break
        uh, vh, d = proj.homogeneous(cur)
        outside = ((d <= _NEAR).all(1) | (uh < 0).all(1) | (uh > w * d).all(1) | (vh < 0).all(1)
                   | (vh > h * d).all(1))
        front = (d > _NEAR).all(1)
        err = interpolation_error(cur, proj)
        with np.errstate(divide="ignore", invalid="ignore"):
            u, v = uh / d, vh / d
            span = np.maximum(np.ptp(u, axis=1), np.ptp(v, axis=1))
            across = ((u < 0) | (u > w) | (v < 0) | (v > h)).any(1) & (span > BORDER_SPLIT_PX)
        split = ~outside & (~front | (err > tolerance_px) | (front & across))
        if level == max_levels:
            split[:] = False
        keep = ~split
        done_tris.append(cur[keep])
        done_inside.append(front[keep] & ~outside[keep])
        cur = _split4(cur[split])
    return np.concatenate(done_tris), np.concatenate(done_inside)


@dataclass
class ProjectedMesh:
    """One primitive, triangulated for the projected look: world faces, their st, which can see the photo."""

    faces: np.ndarray  # (m, 3, 3) world
    st: np.ndarray  # (m, 3, 2) texture coordinates, origin bottom left (USD; trimesh flips for glTF)
    inside: np.ndarray  # (m,) bool


def projected_mesh(prim: dict[str, Any], proj: Projector) -> ProjectedMesh:
    faces, inside = project_faces(primitive_triangles(prim), proj)
    return ProjectedMesh(faces, proj.st(faces), inside)
