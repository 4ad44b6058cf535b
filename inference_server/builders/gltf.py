"""scene@1 -> glTF 2.0 (.glb binary, or .gltf with the buffer embedded) with trimesh.

Node tree (see docs/EXPORTS.md):

    img2maya                    identity, extras = source / generator / warnings
        <camera name>           perspective camera, matrix = the scene camera's world transform
        <object>                mesh (size baked into the vertices), matrix = translate @ rotate
            <part>              mesh, matrix relative to its object (world placement preserved)
            <child object>      same, recursively

glTF is Y up, metres, cameras look down -Z: the scene's conventions, so no axis conversion.
Sizes are baked into the vertices (a plane has zero thickness, which a scale matrix could not
invert); node matrices are rigid. trimesh stores colours as 8-bit, so the exact linear colours
and the camera's projection are written into the glTF tree after trimesh builds it.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..scene import atomic_write_bytes as write_bytes
from .primitives import primitives_of, rigid_matrix, unique_name, unit_mesh
from .projection import Projector, Texture, check_look, load_texture, projected_mesh, with_look

ROOT = "img2maya"
PHOTO_MATERIAL = "photo_projection"
DEFAULT_CLIP = (0.1, 10000.0)
_OBJECT_EXTRAS = ("label", "label_id", "role", "shape", "translate", "rotate", "size", "color_srgb",
                  "color_linear", "pixels", "bbox_px", "depth_m", "confidence", "thickness_source")


def export_gltf(scene: dict[str, Any], path: str | os.PathLike[str], look: str = "color",
                photo: str | os.PathLike[str] | None = None) -> None:
    """Write `scene` as .glb or .gltf (single file, base64 buffer) at `path`, atomically.

    look="projection": the photo (`photo`, else source.image, re-read now) is embedded and projected
    through the camera (TEXCOORD_0 on every mesh)."""
    path = Path(path)
    texture = load_texture(scene, photo) if check_look(look) == "projection" else None
    data = build_gltf(scene, binary=path.suffix.lower() == ".glb", texture=texture)
    write_bytes(path, data)


def build_gltf(scene: dict[str, Any], binary: bool = True, texture: Texture | None = None) -> bytes:
    """The glTF file's bytes (GLB when `binary`, else JSON with an embedded buffer).

    With a `texture` (the projected look) each primitive is split for the projection (projection.py),
    its faces that see the photo carry TEXCOORD_0 and the material `photo_projection` (the photo,
    embedded); faces outside the photo go to a child node `<node>_outside_photo` in the mean colour."""
    import trimesh

    scene = with_look(scene, texture)
    proj = Projector.of(scene["camera"]) if texture is not None else None
    tscene = trimesh.Scene(base_frame="world")
    tscene.metadata.update(_scene_extras(scene))
    tscene.graph.update(frame_to=ROOT, frame_from="world", matrix=np.eye(4), metadata=_scene_extras(scene))
    taken = {obj_name for obj_name in _all_names(scene["objects"])} | {ROOT, "world"}
    colours: dict[str, list[float]] = {}
    for obj in scene["objects"]:
        _add_object(tscene, obj, ROOT, np.eye(4), taken, colours, proj)
    camera_node = unique_name(_camera_name(scene["camera"]), taken)
    cam = scene["camera"]
    tscene.graph.update(frame_to=camera_node, frame_from=ROOT, matrix=rigid_matrix(cam["translate"], cam["rotate"]),
                        metadata={"img2maya": {k: cam[k] for k in cam if k not in ("translate", "rotate")}})

    def fix_tree(tree: dict[str, Any]) -> None:
        _write_camera(tree, camera_node, cam)
        for material in tree.get("materials", []):
            exact = colours.get(material.get("name", ""))
            if exact is not None:
                material.setdefault("pbrMetallicRoughness", {})["baseColorFactor"] = [*exact, 1.0]

    if texture is not None:  # the image goes into the GLB's binary chunk as it is (trimesh would re-encode)
        glb = embed_texture(trimesh.exchange.gltf.export_glb(tscene, tree_postprocessor=fix_tree), texture)
        return glb if binary else glb_to_gltf(glb)
    if binary:
        return trimesh.exchange.gltf.export_glb(tscene, tree_postprocessor=fix_tree)
    files = trimesh.exchange.gltf.export_gltf(tscene, tree_postprocessor=fix_tree, embed_buffers=True)
    return files["model.gltf"]


def _glb_chunks(glb: bytes) -> tuple[dict[str, Any], bytes]:
    magic, _version, length = struct.unpack_from("<4sII", glb, 0)
    if magic != b"glTF" or length != len(glb):
        raise ValueError("not a GLB file")
    n, kind = struct.unpack_from("<I4s", glb, 12)
    tree = json.loads(glb[20:20 + n])
    binary = b""
    offset = 20 + n
    if offset < len(glb):
        m, kind = struct.unpack_from("<I4s", glb, offset)
        binary = glb[offset + 8:offset + 8 + m]
    return tree, binary


def _glb(tree: dict[str, Any], binary: bytes) -> bytes:
    text = json.dumps(tree, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    body = struct.pack("<I4s", len(text), b"JSON") + text + struct.pack("<I4s", len(binary), b"BIN\0") + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def embed_texture(glb: bytes, texture: Texture) -> bytes:
    """The GLB with the photo's bytes appended to its buffer as an image, a clamped linear sampler and a
    texture, used as baseColorTexture by the material `photo_projection`."""
    tree, binary = _glb_chunks(glb)
    binary += b"\0" * (-len(binary) % 4)
    views = tree.setdefault("bufferViews", [])
    views.append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(texture.data)})
    binary += texture.data
    binary += b"\0" * (-len(binary) % 4)
    tree["buffers"] = [{"byteLength": len(binary)}]
    tree["images"] = [{"bufferView": len(views) - 1, "mimeType": texture.mime, "name": "photo"}]
    tree["samplers"] = [{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}]
    tree["textures"] = [{"sampler": 0, "source": 0, "name": "photo"}]
    for material in tree.get("materials", []):
        if material.get("name") == PHOTO_MATERIAL:
            material.setdefault("pbrMetallicRoughness", {})["baseColorTexture"] = {"index": 0, "texCoord": 0}
    return _glb(tree, binary)


def glb_to_gltf(glb: bytes) -> bytes:
    """The same glTF as one JSON file, its buffer a base64 data URI."""
    tree, binary = _glb_chunks(glb)
    tree["buffers"] = [{"byteLength": len(binary),
                        "uri": "data:application/octet-stream;base64," + base64.b64encode(binary).decode("ascii")}]
    return json.dumps(tree, separators=(",", ":")).encode("utf-8")


def _add_object(tscene: Any, obj: dict[str, Any], parent: str, parent_world: np.ndarray,
                taken: set[str], colours: dict[str, list[float]], proj: Projector | None = None) -> None:
    """The object's mesh node under `parent`, its parts and children under it (relative matrices)."""
    world = rigid_matrix(obj["translate"], obj["rotate"])
    extras = {"img2maya": {k: obj[k] for k in _OBJECT_EXTRAS if k in obj}}
    node = obj["name"]
    _add_mesh(tscene, node, parent, np.linalg.inv(parent_world) @ world, obj, obj["color_linear"], extras, colours,
              proj, taken)
    parts = list(primitives_of(obj))[1:]
    for name, part, _srgb, linear in parts:
        part_node = unique_name(str(name), taken)
        part_world = rigid_matrix(part["translate"], part["rotate"])
        part_extras = {"img2maya": {"part_of": node, "part": str(name), "shape": part["shape"],
                                    "translate": part["translate"], "rotate": part["rotate"],
                                    "size": part["size"], "color_linear": list(linear)}}
        _add_mesh(tscene, part_node, node, np.linalg.inv(world) @ part_world, part, linear, part_extras, colours,
                  proj, taken)
    for child in obj.get("children", []):
        _add_object(tscene, child, node, world, taken, colours, proj)


def _add_mesh(tscene: Any, node: str, parent: str, matrix: np.ndarray, prim: dict[str, Any],
              linear: list[float], extras: dict[str, Any], colours: dict[str, list[float]],
              proj: Projector | None = None, taken: set[str] | None = None) -> None:
    import trimesh

    exact = [float(c) for c in linear]
    name = _material_name(exact, colours)
    material = trimesh.visual.material.PBRMaterial(
        name=name, baseColorFactor=[*exact, 1.0], metallicFactor=0.0, roughnessFactor=0.8, doubleSided=True)
    if proj is None:
        mesh = unit_mesh(prim["shape"], prim["size"])
        mesh.visual = trimesh.visual.TextureVisuals(material=material)
        tscene.add_geometry(mesh, node_name=node, geom_name=f"{node}_mesh", parent_node_name=parent,
                            transform=matrix, metadata=extras)
        return
    # the projected look: faces in the node's own frame (rigid: matrix relative to the parent, world known)
    pm = projected_mesh(prim, proj)
    world = rigid_matrix(prim["translate"], prim["rotate"])
    to_local = np.linalg.inv(world)

    def soup(faces: np.ndarray, uv: np.ndarray | None, mat: Any) -> Any:
        points = faces.reshape(-1, 3) @ to_local[:3, :3].T + to_local[:3, 3]
        mesh = trimesh.Trimesh(points, np.arange(len(points)).reshape(-1, 3), process=False)
        mesh.visual = trimesh.visual.TextureVisuals(uv=uv, material=mat)
        return mesh

    photo = trimesh.visual.material.PBRMaterial(name=PHOTO_MATERIAL, baseColorFactor=[1.0, 1.0, 1.0, 1.0],
                                                metallicFactor=0.0, roughnessFactor=0.8, doubleSided=True)
    inside = pm.inside
    tscene.add_geometry(soup(pm.faces[inside], pm.st[inside].reshape(-1, 2), photo), node_name=node,
                        geom_name=f"{node}_mesh", parent_node_name=parent, transform=matrix, metadata=extras)
    if (~inside).any():
        out_node = unique_name(f"{node}_outside_photo", taken if taken is not None else set())
        tscene.add_geometry(soup(pm.faces[~inside], None, material), node_name=out_node,
                            geom_name=f"{out_node}_mesh", parent_node_name=node, transform=np.eye(4),
                            metadata={"img2maya": {"outside_photo_of": node}})


def _material_name(linear: list[float], colours: dict[str, list[float]]) -> str:
    """`mat_<rrggbb>` for a colour, with a suffix when two colours share the same 8-bit hex."""
    base = "mat_" + "".join(f"{round(c * 255):02x}" for c in linear)
    name, n = base, 1
    while colours.setdefault(name, linear) != linear:
        n += 1
        name = f"{base}_{n}"
    return name


def _write_camera(tree: dict[str, Any], node_name: str, cam: dict[str, Any]) -> None:
    """A perspective camera with the photo's vertical FOV and aspect (glTF has no principal point)."""
    yfov = 2.0 * math.atan(0.5 * float(cam["height"]) / float(cam["focal_px"]))
    tree["cameras"] = [{
        "name": node_name,
        "type": "perspective",
        "perspective": {
            "yfov": yfov,
            "aspectRatio": float(cam["width"]) / float(cam["height"]),
            "znear": float(cam.get("near_clip_m", DEFAULT_CLIP[0])),
            "zfar": float(cam.get("far_clip_m", DEFAULT_CLIP[1])),
        },
    }]
    for node in tree["nodes"]:
        if node.get("name") == node_name:
            node["camera"] = 0


def _scene_extras(scene: dict[str, Any]) -> dict[str, Any]:
    source = scene["source"]
    info = {"schema": scene["schema"], "units": scene["units"], "up_axis": scene["up_axis"],
            "source_image": source["image"], "source_sha256": source["sha256"]}
    for key in ("generator", "warnings", "look"):
        if key in scene:
            info[key] = scene[key]
    return {"img2maya": info}


def _camera_name(cam: dict[str, Any]) -> str:
    return str(cam.get("name") or "camera")


def _all_names(objects: list[dict[str, Any]]) -> list[str]:
    from ..scene import iter_objects

    return [obj["name"] for obj in iter_objects(objects)]
