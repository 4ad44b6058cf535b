"""Read an exported USD or glTF file back as triangle meshes and its own camera, to render it
(`preview.render_meshes`): how the projection benchmark and the tests check what a file really holds.

Only what img2maya writes is read: USD Mesh prims (the projected look; implicit Gprims are skipped)
with an `st` primvar and a UsdPreviewSurface whose diffuseColor is a constant or a UsdUVTexture, and
GeomSubsets bound to other materials; glTF meshes with TEXCOORD_0 and baseColorTexture, and the first
camera. glTF has no principal point: the camera node's extras.img2maya.principal_px is used when present
(img2maya writes it), else the image centre.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .preview import MeshLook
from .projection import Projector

DEFAULT_WIDTH = 1000  # pixels across a camera whose file says no image size


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def _image(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def read_usd(path: str | os.PathLike[str]) -> tuple[list[MeshLook], Projector]:
    """The meshes (world space) and the camera of a .usda/.usdc/.usdz written by img2maya."""
    from pxr import Usd, UsdGeom, UsdShade

    stage = Usd.Stage.Open(str(path))
    if stage is None:
        raise ValueError(f"cannot open {path}")
    textures: dict[str, np.ndarray] = {}
    meshes: list[MeshLook] = []
    camera = None
    for prim in stage.Traverse():
        if prim.IsA(UsdGeom.Camera) and camera is None:
            camera = _usd_camera(prim)
        if not prim.IsA(UsdGeom.Mesh):
            continue
        mesh = UsdGeom.Mesh(prim)
        points = np.asarray(mesh.GetPointsAttr().Get(), dtype=np.float64)
        counts = np.asarray(mesh.GetFaceVertexCountsAttr().Get(), dtype=np.int64)
        indices = np.asarray(mesh.GetFaceVertexIndicesAttr().Get(), dtype=np.int64)
        if not len(counts):
            continue
        m = np.array(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(Usd.TimeCode.Default()))
        world = points @ m[:3, :3] + m[3, :3]  # Gf matrices act on row vectors
        # fan-triangulate every polygon: corner k of face i is face-vertex starts[i] + k
        starts = np.cumsum(counts) - counts
        face_of = np.repeat(np.arange(len(counts)), counts - 2)
        k = np.arange(len(face_of)) - np.repeat(np.cumsum(counts - 2) - (counts - 2), counts - 2)
        corners = np.stack([starts[face_of], starts[face_of] + k + 1, starts[face_of] + k + 2], axis=1)
        tris = world[indices[corners]]
        st_pv = UsdGeom.PrimvarsAPI(prim).GetPrimvar("st")
        st = None
        if st_pv and st_pv.HasValue():
            values = np.asarray(st_pv.ComputeFlattened(), dtype=np.float64)
            interp = st_pv.GetInterpolation()
            st = values[corners] if interp == UsdGeom.Tokens.faceVarying else values[indices[corners]]
        binding = UsdShade.MaterialBindingAPI(prim)
        groups = [(np.ones(len(counts), bool), binding.ComputeBoundMaterial()[0])]
        for subset in binding.GetMaterialBindSubsets():
            member = np.zeros(len(counts), bool)
            member[np.asarray(subset.GetIndicesAttr().Get(), dtype=np.int64)] = True
            groups[0][0][member] = False
            groups.append((member, UsdShade.MaterialBindingAPI(subset.GetPrim()).ComputeBoundMaterial()[0]))
        for member, material in groups:
            sel = member[face_of]
            if not sel.any():
                continue
            colour, tex = _usd_surface(material, textures)
            meshes.append(MeshLook(tris[sel], st[sel] if (st is not None and tex is not None) else None, tex,
                                   linear_to_srgb(colour)))
    if camera is None:
        raise ValueError(f"{path} has no camera")
    return meshes, camera


def _usd_camera(prim: Any) -> Projector:
    from pxr import Usd, UsdGeom

    cam = UsdGeom.Camera(prim)
    focal = cam.GetFocalLengthAttr().Get()
    h_ap, v_ap = cam.GetHorizontalApertureAttr().Get(), cam.GetVerticalApertureAttr().Get()
    h_off, v_off = cam.GetHorizontalApertureOffsetAttr().Get(), cam.GetVerticalApertureOffsetAttr().Get()
    width = int(prim.GetCustomDataByKey("img2maya:width") or DEFAULT_WIDTH)
    height = int(prim.GetCustomDataByKey("img2maya:height") or round(width * v_ap / h_ap))
    px = width / h_ap  # pixels per lens unit
    m = np.array(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(Usd.TimeCode.Default()))
    return Projector(rotation=m[:3, :3].T.copy(), origin=m[3, :3].copy(), focal_px=focal * px,
                     cx=width / 2.0 - h_off * px, cy=height / 2.0 + v_off * px, width=width, height=height)


def _usd_surface(material: Any, textures: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """(linear diffuse colour, texture or None) of a material's UsdPreviewSurface."""
    from pxr import UsdShade

    grey = np.array([0.18, 0.18, 0.18])
    if not material:
        return grey, None
    surface = material.ComputeSurfaceSource()[0]
    if not surface:
        return grey, None
    diffuse = surface.GetInput("diffuseColor")
    if diffuse is None:
        return grey, None
    source = diffuse.GetConnectedSource()
    if source:
        shader = UsdShade.Shader(source[0].GetPrim())
        if shader.GetIdAttr().Get() == "UsdUVTexture":
            asset = shader.GetInput("file").Get()
            resolved = str(asset.resolvedPath or asset.path)
            if resolved not in textures:
                textures[resolved] = _image(_read_asset(resolved))
            return np.ones(3), textures[resolved]
        return grey, None
    value = diffuse.Get()
    return (np.asarray(value, dtype=np.float64) if value is not None else grey), None


def _read_asset(resolved: str) -> bytes:
    """Bytes of a resolved asset path: a file, or `package.usdz[member]`."""
    if resolved.endswith("]") and "[" in resolved:
        package, member = resolved[:-1].split("[", 1)
        with zipfile.ZipFile(package) as z:
            return z.read(member)
    return Path(resolved).read_bytes()


def read_gltf(path: str | os.PathLike[str]) -> tuple[list[MeshLook], Projector]:
    """The meshes (world space) and the first camera of a .glb/.gltf written by img2maya."""
    import trimesh

    from .gltf import _glb_chunks

    raw = Path(path).read_bytes()
    tree = _glb_chunks(raw)[0] if raw[:4] == b"glTF" else json.loads(raw)
    tscene: trimesh.Scene = trimesh.load(str(path), force="scene")  # type: ignore[assignment]
    meshes = []
    for node in tscene.graph.nodes_geometry:
        matrix, geom = tscene.graph[node]
        mesh = tscene.geometry[geom]
        verts = np.asarray(mesh.vertices, dtype=np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
        faces = np.asarray(mesh.faces)
        material = getattr(mesh.visual, "material", None)
        image = getattr(material, "baseColorTexture", None)
        uv = getattr(mesh.visual, "uv", None)
        factor = getattr(material, "baseColorFactor", None)
        colour = np.asarray(factor if factor is not None else [46, 46, 46, 255], dtype=np.float64)[:3]
        colour = colour / 255.0 if colour.max() > 1.0 else colour
        tex = np.asarray(image.convert("RGB")) if image is not None else None
        meshes.append(MeshLook(verts[faces], np.asarray(uv, dtype=np.float64)[faces] if (uv is not None and tex is not None)
                               else None, tex, linear_to_srgb(colour)))
    return meshes, _gltf_camera(tree, tscene)


def _gltf_camera(tree: dict[str, Any], tscene: Any) -> Projector:
    nodes = tree.get("nodes", [])
    index = next((i for i, n in enumerate(nodes) if "camera" in n), None)
    if index is None:
        raise ValueError("the glTF file has no camera")
    node = nodes[index]
    persp = tree["cameras"][node["camera"]]["perspective"]
    extras = (node.get("extras") or {}).get("img2maya") or {}
    aspect = float(persp.get("aspectRatio") or 4 / 3)
    width = int(extras.get("width") or DEFAULT_WIDTH)
    height = int(extras.get("height") or round(width / aspect))
    focal = 0.5 * height / math.tan(0.5 * float(persp["yfov"]))
    cx, cy = extras.get("principal_px") or (width / 2.0, height / 2.0)
    matrix = np.asarray(tscene.graph.get(node["name"])[0], dtype=np.float64)
    return Projector(rotation=matrix[:3, :3].copy(), origin=matrix[:3, 3].copy(), focal_px=focal, cx=float(cx),
                     cy=float(cy), width=width, height=height)


def read_export(path: str | os.PathLike[str]) -> tuple[list[MeshLook], Projector]:
    """read_usd or read_gltf by the file's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix in (".usda", ".usdc", ".usdz"):
        return read_usd(path)
    if suffix in (".glb", ".gltf"):
        return read_gltf(path)
    raise ValueError(f"not a USD or glTF file: {path}")
