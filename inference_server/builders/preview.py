"""Preview: the scene's primitives ray-cast through the scene camera, in numpy.

Rays go through pixel centres with the scene camera's own intrinsics scaled to the output width,
so the render lines up pixel for pixel with the (resized) photo. Each primitive is intersected
analytically in its unit frame (the ray mapped by the inverse of translate/rotate/size keeps its
parameter t, and t is the z-depth because camera-space directions have z = -1). Only the pixels
inside the projection of an object's bounding box are tested, which keeps a few hundred objects
cheap. Shapes are convex, so a hit is the nearest of the candidate roots (faces, quadric roots)
that lies on the shape; the candidate's index tells which surface was hit, hence the normal.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..conventions import Intrinsics, euler_xyz_to_matrix
from ..scene import atomic_write_bytes as write_bytes
from ..scene import iter_objects
from .primitives import box_corners, capsule_proportions, primitives_of
from .projection import Projector, Texture, check_look, load_texture

DEFAULT_WIDTH = 800
BACKGROUND = np.array([0.18, 0.18, 0.18])
LIGHT = np.array([0.4, 1.0, 0.6]) / np.linalg.norm([0.4, 1.0, 0.6])  # from above, behind the camera
AMBIENT = 0.35
_EPS = 1e-6
_CHUNK = 1 << 18  # rays per batch: ~60 MB of temporaries for a six-candidate shape


@dataclass
class RayHits:
    """Per pixel: object index (iter_objects order, -1 = nothing), z-depth, world normal, sRGB colour."""

    object_id: np.ndarray  # (h, w) int32
    depth: np.ndarray  # (h, w) float64, inf where nothing is hit
    normal: np.ndarray  # (h, w, 3), facing the camera
    color: np.ndarray  # (h, w, 3) float sRGB of the primitive hit
    flat: np.ndarray  # (h, w) bool: unshaded (sky)


def preview_intrinsics(scene: dict[str, Any], width: int | None = None) -> Intrinsics:
    """The scene camera's intrinsics scaled to an output `width` (default: min(photo width, 800))."""
    cam = scene["camera"]
    full = Intrinsics(float(cam["focal_px"]), float(cam["principal_px"][0]), float(cam["principal_px"][1]),
                      int(cam["width"]), int(cam["height"]))
    out_w = int(width) if width is not None else min(full.width, DEFAULT_WIDTH)
    if out_w < 1:
        raise ValueError(f"preview width must be positive, got {width}")
    s = out_w / full.width
    return full.scaled(s, width=out_w, height=max(1, round(full.height * s)))


def _camera_rays(intr: Intrinsics, rot_c: np.ndarray) -> np.ndarray:
    """(h, w, 3) world directions through the pixel centres, scaled so that t is the z-depth."""
    h, w = intr.height, intr.width
    u = (np.arange(w) + 0.5 - intr.cx) / intr.focal_px
    v = -(np.arange(h) + 0.5 - intr.cy) / intr.focal_px
    dirs_cam = np.empty((h, w, 3))
    dirs_cam[..., 0] = u[None, :]
    dirs_cam[..., 1] = v[:, None]
    dirs_cam[..., 2] = -1.0
    return dirs_cam @ rot_c.T


def raycast(scene: dict[str, Any], width: int | None = None) -> RayHits:
    """Cast one ray per output pixel through the scene camera; nearest primitive wins."""
    intr = preview_intrinsics(scene, width)
    cam = scene["camera"]
    rot_c = euler_xyz_to_matrix(*cam["rotate"])
    origin = np.asarray(cam["translate"], dtype=np.float64)
    near = float(cam.get("near_clip_m", 0.0))
    h, w = intr.height, intr.width
    dirs = _camera_rays(intr, rot_c)  # world directions, t = z-depth

    hits = RayHits(np.full((h, w), -1, np.int32), np.full((h, w), np.inf), np.zeros((h, w, 3)),
                   np.zeros((h, w, 3)), np.zeros((h, w), bool))
    for index, obj in enumerate(iter_objects(scene["objects"])):
        for _name, prim, srgb, _linear in primitives_of(obj):
            rect = _screen_rect(prim, intr, rot_c, origin)
            if rect is None:
                continue
            r0, r1, c0, c1 = rect
            cols = c1 - c0
            for start in range(0, (r1 - r0) * cols, _CHUNK):  # bounded memory at any width
                flat = np.arange(start, min(start + _CHUNK, (r1 - r0) * cols))
                rows_i, cols_i = flat // cols + r0, flat % cols + c0
                t, normal = _intersect(prim, origin, dirs[rows_i, cols_i], near)
                closer = t < hits.depth[rows_i, cols_i]
                rows_i, cols_i = rows_i[closer], cols_i[closer]
                hits.depth[rows_i, cols_i] = t[closer]
                hits.object_id[rows_i, cols_i] = index
                hits.normal[rows_i, cols_i] = normal[closer]
                hits.color[rows_i, cols_i] = srgb
                hits.flat[rows_i, cols_i] = obj["role"] == "sky"
    return hits


def object_id_buffer(scene: dict[str, Any], width: int | None = None) -> np.ndarray:
    """(h, w) int32: index (in scene.iter_objects order) of the object each pixel sees, -1 for none.

    Parts count as their object. Pixel (u, v) of the output corresponds to the scene camera's pixel
    centre ((u + 0.5) / s, (v + 0.5) / s) with s = output width / photo width.
    """
    return raycast(scene, width).object_id


def render_preview(scene: dict[str, Any], width: int | None = None, look: str = "color",
                   photo: str | os.PathLike[str] | None = None, projector: dict[str, Any] | None = None,
                   texture: Texture | None = None) -> np.ndarray:
    """(h, w, 3) uint8 render: colour_srgb times a Lambert term (sky unshaded), grey background.

    look="projection": each surface point shows the photo pixel it projects to through `projector` (a
    scene camera; default the scene's own, so a render through another camera shows what the photo puts
    where), unshaded; points the photo does not see (behind the projector, beyond the frame) show their
    object's mean colour. The photo is `texture`, else re-read from `photo` / source.image."""
    hits = raycast(scene, width)
    if check_look(look) == "projection":
        return _projected(scene, hits, width, photo, projector, texture)
    shade = AMBIENT + (1.0 - AMBIENT) * np.clip(hits.normal @ LIGHT, 0.0, 1.0)
    shade = np.where(hits.flat, 1.0, shade)
    rgb = np.where((hits.object_id >= 0)[..., None], hits.color * shade[..., None], BACKGROUND)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _projected(scene: dict[str, Any], hits: RayHits, width: int | None, photo: Any,
               projector: dict[str, Any] | None, texture: Texture | None) -> np.ndarray:
    intr = preview_intrinsics(scene, width)
    cam = scene["camera"]
    proj = Projector.of(projector if projector is not None else cam)
    tex = texture if texture is not None else load_texture(scene, photo)
    hit = hits.object_id >= 0
    dirs = _camera_rays(intr, euler_xyz_to_matrix(*cam["rotate"]))[hit]
    points = np.asarray(cam["translate"], dtype=np.float64) + np.where(np.isfinite(hits.depth[hit]),
                                                                      hits.depth[hit], 0.0)[:, None] * dirs
    px, d = proj.pixels(points)
    rgb = np.broadcast_to(BACKGROUND, hits.color.shape).copy()
    colour = hits.color[hit]
    with np.errstate(invalid="ignore"):
        seen = (d > 0) & (px[:, 0] >= 0) & (px[:, 0] <= proj.width) & (px[:, 1] >= 0) & (px[:, 1] <= proj.height)
    image = mip_level(tex.rgb, intr.width * tex.width / proj.width)
    sx, sy = image.shape[1] / proj.width, image.shape[0] / proj.height
    colour[seen] = sample_bilinear(image, px[seen, 0] * sx - 0.5, px[seen, 1] * sy - 0.5)
    rgb[hit] = colour
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def mip_level(rgb: np.ndarray, texels_wide: float) -> np.ndarray:
    """The texture box-filtered to about `texels_wide` texels across when that is smaller (one mip level
    chosen for the whole render: one texel per output pixel on a surface facing the camera)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    target = int(round(texels_wide))
    if target >= w or target < 1:
        return rgb
    size = (target, max(1, round(h * target / w)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))


def sample_bilinear(rgb: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n, 3) float 0..1 colours of a uint8 image at continuous texel coordinates (texel centres at
    integers), clamped at the border."""
    h, w = rgb.shape[:2]
    x = np.clip(x, 0.0, w - 1.0)
    y = np.clip(y, 0.0, h - 1.0)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 1)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 1)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    img = rgb.astype(np.float32) / 255.0
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


@dataclass
class MeshLook:
    """A triangle mesh to render (what builders.readback reads from an exported file)."""

    faces: np.ndarray  # (n, 3, 3) world
    uv: np.ndarray | None  # (n, 3, 2) texture coordinates, origin bottom left; None = flat colour
    texture: np.ndarray | None  # (h, w, 3) uint8
    color_srgb: np.ndarray  # (3,) used where there is no texture


def render_meshes(meshes: list[MeshLook], camera: Projector, width: int | None = None,
                  near: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Cast one ray per output pixel centre through `camera` (intrinsics scaled to `width`, default
    min(camera width, 800)) against triangle meshes; nearest hit wins; textured faces show their texture
    (bilinear, one mip level for the render, see mip_level), others their colour, unshaded.

    Returns ((h, w, 3) float 0..1 sRGB, (h, w) bool hit). Each triangle is tested only on the pixels of
    its screen rectangle (after clipping it to the near plane), all in numpy, chunked."""
    out_w = int(width) if width is not None else min(camera.width, DEFAULT_WIDTH)
    s = out_w / camera.width
    h, w = max(1, round(camera.height * s)), out_w
    f, cx, cy = camera.focal_px * s, camera.cx * s, camera.cy * s
    depth = np.full(h * w, np.inf)
    which = np.full(h * w, -1, np.int64)
    bary = np.zeros((h * w, 2))
    faces = np.concatenate([m.faces for m in meshes]) if meshes else np.zeros((0, 3, 3))
    owner = np.concatenate([np.full(len(m.faces), i) for i, m in enumerate(meshes)]) if meshes else np.zeros(0, int)
    cam_v = (faces - camera.origin) @ camera.rotation  # camera space, looking down -z
    with np.errstate(all="ignore"):  # far-off and degenerate faces: clipped to the image just below
        return _raster(meshes, cam_v, owner, near, h, w, f, cx, cy, depth, which, bary)


def _raster(meshes: list[MeshLook], cam_v: np.ndarray, owner: np.ndarray, near: float, h: int, w: int,
            f: float, cx: float, cy: float, depth: np.ndarray, which: np.ndarray,
            bary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    zmin = max(near, 1e-6)
    d = -cam_v[..., 2]
    # screen rectangle of the part in front of the near plane: vertices in front + edge crossings
    pts, ok = [], []
    for i, j in ((0, 1), (1, 2), (2, 0)):
        pts.append(cam_v[:, i])
        ok.append(d[:, i] > zmin)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = (d[:, i] - zmin) / (d[:, i] - d[:, j])
        cross = (d[:, i] > zmin) != (d[:, j] > zmin)
        pts.append(cam_v[:, i] + np.nan_to_num(a)[:, None] * (cam_v[:, j] - cam_v[:, i]))
        ok.append(cross)
    p = np.stack(pts, 1)
    valid = np.stack(ok, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth_p = np.maximum(-p[..., 2], zmin)
        u = cx + f * p[..., 0] / depth_p
        v = cy - f * p[..., 1] / depth_p
    big = 1e9
    c0 = np.clip(np.floor(np.where(valid, u, big).min(1) - 0.5), 0, w).astype(np.int64)
    c1 = np.clip(np.ceil(np.where(valid, u, -big).max(1) + 0.5), 0, w).astype(np.int64)
    r0 = np.clip(np.floor(np.where(valid, v, big).min(1) - 0.5), 0, h).astype(np.int64)
    r1 = np.clip(np.ceil(np.where(valid, v, -big).max(1) + 0.5), 0, h).astype(np.int64)
    area = np.where(valid.any(1), np.maximum(c1 - c0, 0) * np.maximum(r1 - r0, 0), 0)
    tri_ids = np.flatnonzero(area > 0)
    bounds = np.cumsum(area[tri_ids])
    start = 0
    while start < len(tri_ids):
        base = bounds[start - 1] if start else 0
        stop = int(np.searchsorted(bounds, base + _CHUNK * 4, side="right"))
        stop = max(stop, start + 1)
        ids = tri_ids[start:stop]
        counts = area[ids]
        tri = np.repeat(ids, counts)
        offs = np.arange(len(tri)) - np.repeat(np.cumsum(counts) - counts, counts)
        cw = (c1 - c0)[tri]
        col, row = c0[tri] + offs % cw, r0[tri] + offs // cw
        ray = np.stack([(col + 0.5 - cx) / f, -(row + 0.5 - cy) / f, -np.ones(len(tri))], axis=1)
        v0, v1, v2 = cam_v[tri, 0], cam_v[tri, 1], cam_v[tri, 2]
        e1, e2 = v1 - v0, v2 - v0
        pv = np.cross(ray, e2)
        det = np.einsum("ij,ij->i", e1, pv)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / det
            sv = -v0
            b1 = np.einsum("ij,ij->i", sv, pv) * inv
            qv = np.cross(sv, e1)
            b2 = np.einsum("ij,ij->i", ray, qv) * inv
            t = np.einsum("ij,ij->i", e2, qv) * inv
            good = (np.abs(det) > 1e-15) & (b1 >= 0) & (b2 >= 0) & (b1 + b2 <= 1) & (t > zmin)
        pix = (row * w + col)[good]
        t, tri, b1, b2 = t[good], tri[good], b1[good], b2[good]
        order = np.lexsort((t, pix))
        pix, t, tri, b1, b2 = pix[order], t[order], tri[order], b1[order], b2[order]
        first = np.ones(len(pix), bool)
        first[1:] = pix[1:] != pix[:-1]
        pix, t, tri, b1, b2 = pix[first], t[first], tri[first], b1[first], b2[first]
        closer = t < depth[pix]
        pix = pix[closer]
        depth[pix], which[pix] = t[closer], tri[closer]
        bary[pix] = np.stack([b1[closer], b2[closer]], 1)
        start = stop
    rgb = np.broadcast_to(BACKGROUND, (h * w, 3)).copy()
    hit = which >= 0
    mesh_of = np.where(hit, owner[np.maximum(which, 0)] if len(owner) else -1, -1)
    for i, m in enumerate(meshes):
        sel = np.flatnonzero(mesh_of == i)
        if not len(sel):
            continue
        if m.uv is None or m.texture is None:
            rgb[sel] = m.color_srgb
            continue
        local = which[sel] - int(np.flatnonzero(owner == i)[0])
        b = bary[sel]
        uv = (m.uv[local, 0] * (1 - b[:, :1] - b[:, 1:]) + m.uv[local, 1] * b[:, :1] + m.uv[local, 2] * b[:, 1:])
        image = mip_level(m.texture, w)
        th, tw = image.shape[:2]
        rgb[sel] = sample_bilinear(image, uv[:, 0] * tw - 0.5, (1.0 - uv[:, 1]) * th - 0.5)
    return rgb.reshape(h, w, 3), hit.reshape(h, w)


def save_preview_png(scene: dict[str, Any], path: str | os.PathLike[str], photo_path: str | None = None,
                     width: int | None = None) -> None:
    """Write a PNG: the photo resized to the render's size beside the render (render only without photo)."""
    from PIL import Image, ImageOps

    render = render_preview(scene, width)
    h, w = render.shape[:2]
    panels = [render]
    if photo_path is not None:
        with Image.open(photo_path) as im:
            photo = ImageOps.exif_transpose(im).convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
        panels.insert(0, np.asarray(photo))
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(panels, axis=1)).save(buf, format="PNG")
    write_bytes(path, buf.getvalue())


def _screen_rect(prim: dict[str, Any], intr: Intrinsics, rot_c: np.ndarray,
                 origin: np.ndarray) -> tuple[int, int, int, int] | None:
    """Pixel rows/cols [r0, r1) x [c0, c1) that can see the primitive's box (whole image if unsure)."""
    corners = (box_corners(prim["translate"], prim["rotate"], prim["size"]) - origin) @ rot_c
    if np.any(corners[:, 2] > -1e-6):  # reaches behind the camera: no simple bound
        return 0, intr.height, 0, intr.width
    uv = np.stack([corners[:, 0] / -corners[:, 2], -corners[:, 1] / -corners[:, 2]], axis=1)
    uv = uv * intr.focal_px + np.array([intr.cx, intr.cy])
    c0 = max(0, int(np.floor(uv[:, 0].min())) - 1)
    c1 = min(intr.width, int(np.ceil(uv[:, 0].max())) + 1)
    r0 = max(0, int(np.floor(uv[:, 1].min())) - 1)
    r1 = min(intr.height, int(np.ceil(uv[:, 1].max())) + 1)
    if c0 >= c1 or r0 >= r1:
        return None
    return r0, r1, c0, c1


def _intersect(prim: dict[str, Any], origin: np.ndarray, dirs: np.ndarray, near: float) -> tuple[np.ndarray, np.ndarray]:
    """Ray parameters (inf = miss) and world normals for rays origin + t * dirs against one primitive."""
    shape = prim["shape"]
    rot = euler_xyz_to_matrix(*prim["rotate"])
    size = np.asarray(prim["size"], dtype=np.float64)
    if shape == "plane":
        size = np.array([size[0], 1.0, size[2]])
    elif shape == "capsule":
        _radius, cyl_height, size = capsule_proportions(prim["size"])
    size = np.maximum(size, 1e-9)  # a flat box stays hittable without dividing by zero
    o = ((origin - np.asarray(prim["translate"], dtype=np.float64)) @ rot) / size
    d = (dirs @ rot) / size
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if shape == "capsule":
            cands, inside, normal_of = _capsule(o, d, 0.5 * cyl_height)
        else:
            cands, inside, normal_of = _SHAPES[shape](o, d)
        points = o[None, None, :] + cands[..., None] * d[:, None, :]
        valid = np.isfinite(cands) & inside(points)
        t_in = np.where(valid, cands, np.inf)
        t_out = np.where(valid, cands, -np.inf)
        i_in, i_out = t_in.argmin(axis=1), t_out.argmax(axis=1)
        rows = np.arange(len(d))
        t_in, t_out = t_in[rows, i_in], t_out[rows, i_out]
        use_in = t_in > near
        t = np.where(use_in, t_in, np.where(t_out > near, t_out, np.inf))
        which = np.where(use_in, i_in, i_out)
        p = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d
        n_local = normal_of(p, which)
    n = (n_local / size) @ rot.T  # normals transform with the inverse transpose
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
    facing_away = np.einsum("ij,ij->i", n, dirs) > 0
    n[facing_away] *= -1.0
    return t, n


Shape = tuple[np.ndarray, Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]]


def _slabs(o: np.ndarray, d: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Ray parameters where the ray crosses the planes x_i = +-0.5 for each axis i."""
    return np.stack([(s - o[i]) / d[:, i] for i in axes for s in (-0.5, 0.5)], axis=1)


def _roots(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Both roots of a t^2 + b t + c (nan where none; the linear root where a is ~0)."""
    disc = np.sqrt(b * b - 4.0 * a * c)
    linear = np.abs(a) < 1e-12
    r0 = np.where(linear, -c / b, (-b - disc) / (2.0 * a))
    r1 = np.where(linear, np.nan, (-b + disc) / (2.0 * a))
    return np.stack([r0, r1], axis=1)


def _sphere_roots(o: np.ndarray, d: np.ndarray, centre: np.ndarray, radius: float,
                  axes: tuple[int, ...] = (0, 1, 2)) -> np.ndarray:
    oc = (o - centre)[list(axes)]
    dd = d[:, list(axes)]
    return _roots((dd * dd).sum(1), 2.0 * dd @ oc, np.full(len(d), oc @ oc - radius * radius))


def _cube(o: np.ndarray, d: np.ndarray) -> Shape:
    def inside(p: np.ndarray) -> np.ndarray:
        return np.abs(p).max(axis=-1) <= 0.5 + _EPS

    def normal(p: np.ndarray, which: np.ndarray) -> np.ndarray:
        n = np.zeros_like(p)
        axis = which // 2
        n[np.arange(len(p)), axis] = np.where(which % 2 == 1, 1.0, -1.0)
        return n

    return _slabs(o, d, (0, 1, 2)), inside, normal


def _plane(o: np.ndarray, d: np.ndarray) -> Shape:
    def inside(p: np.ndarray) -> np.ndarray:
        return (np.abs(p[..., 0]) <= 0.5 + _EPS) & (np.abs(p[..., 2]) <= 0.5 + _EPS)

    def normal(p: np.ndarray, which: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.array([0.0, 1.0, 0.0]), p.shape).copy()

    return (-o[1] / d[:, 1])[:, None], inside, normal


def _sphere(o: np.ndarray, d: np.ndarray) -> Shape:
    def inside(p: np.ndarray) -> np.ndarray:
        return (p * p).sum(-1) <= 0.25 * (1.0 + _EPS)

    return _sphere_roots(o, d, np.zeros(3), 0.5), inside, lambda p, which: p.copy()


def _cylinder(o: np.ndarray, d: np.ndarray) -> Shape:
    def inside(p: np.ndarray) -> np.ndarray:
        return (p[..., 0] ** 2 + p[..., 2] ** 2 <= 0.25 * (1.0 + _EPS)) & (np.abs(p[..., 1]) <= 0.5 + _EPS)

    def normal(p: np.ndarray, which: np.ndarray) -> np.ndarray:
        side = np.stack([p[:, 0], np.zeros(len(p)), p[:, 2]], axis=1)
        cap = np.stack([np.zeros(len(p)), np.where(which == 3, 1.0, -1.0), np.zeros(len(p))], axis=1)
        return np.where((which < 2)[:, None], side, cap)

    cands = np.concatenate([_sphere_roots(o, d, np.zeros(3), 0.5, (0, 2)), _slabs(o, d, (1,))], axis=1)
    return cands, inside, normal


def _cone(o: np.ndarray, d: np.ndarray) -> Shape:
    """Apex at y = +0.5, base of radius 0.5 at y = -0.5: x^2 + z^2 = ((0.5 - y) / 2)^2."""
    k = 0.5 - o[1]
    a = d[:, 0] ** 2 + d[:, 2] ** 2 - d[:, 1] ** 2 / 4.0
    b = 2.0 * (o[0] * d[:, 0] + o[2] * d[:, 2]) + k * d[:, 1] / 2.0
    c = np.full(len(d), o[0] ** 2 + o[2] ** 2 - k * k / 4.0)
    cands = np.concatenate([_roots(a, b, c), ((-0.5 - o[1]) / d[:, 1])[:, None]], axis=1)

    def inside(p: np.ndarray) -> np.ndarray:
        y = p[..., 1]
        radius2 = ((0.5 - y) / 2.0) ** 2
        return (p[..., 0] ** 2 + p[..., 2] ** 2 <= radius2 * (1.0 + _EPS) + _EPS) & (y >= -0.5 - _EPS) & (y <= 0.5 + _EPS)

    def normal(p: np.ndarray, which: np.ndarray) -> np.ndarray:
        side = np.stack([2.0 * p[:, 0], (0.5 - p[:, 1]) / 2.0, 2.0 * p[:, 2]], axis=1)
        cap = np.broadcast_to(np.array([0.0, -1.0, 0.0]), p.shape)
        return np.where((which < 2)[:, None], side, cap)

    return cands, inside, normal


def _capsule(o: np.ndarray, d: np.ndarray, half: float) -> Shape:
    """Radius 0.5 around the segment y in [-half, half]."""
    def closest(p: np.ndarray) -> np.ndarray:
        axis = np.zeros_like(p)
        axis[..., 1] = np.clip(p[..., 1], -half, half)
        return p - axis

    def inside(p: np.ndarray) -> np.ndarray:
        q = closest(p)
        return (q * q).sum(-1) <= 0.25 * (1.0 + _EPS)

    cands = np.concatenate([_sphere_roots(o, d, np.zeros(3), 0.5, (0, 2)),
                            _sphere_roots(o, d, np.array([0.0, half, 0.0]), 0.5),
                            _sphere_roots(o, d, np.array([0.0, -half, 0.0]), 0.5)], axis=1)
    return cands, inside, lambda p, which: closest(p)


_SHAPES: dict[str, Callable[[np.ndarray, np.ndarray], Shape]] = {
    "cube": _cube, "plane": _plane, "sphere": _sphere, "cylinder": _cylinder, "cone": _cone,
}
