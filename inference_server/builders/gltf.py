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

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..scene import atomic_write_bytes as write_bytes
from .primitives import primitives_of, rigid_matrix, unique_name, unit_mesh

ROOT = "img2maya"
DEFAULT_CLIP = (0.1, 10000.0)
_OBJECT_EXTRAS = ("label", "label_id", "role", "shape", "translate", "rotate", "size", "color_srgb",
                  "color_linear", "pixels", "bbox_px", "depth_m", "confidence", "thickness_source")


def export_gltf(scene: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write `scene` as .glb or .gltf (single file, base64 buffer) at `path`, atomically."""
    path = Path(path)
    data = build_gltf(scene, binary=path.suffix.lower() == ".glb")
    write_bytes(path, data)


def build_gltf(scene: dict[str, Any], binary: bool = True) -> bytes:
    """The glTF file's bytes (GLB when `binary`, else JSON with an embedded buffer)."""
    import trimesh

    tscene = trimesh.Scene(base_frame="world")
    tscene.metadata.update(_scene_extras(scene))
    tscene.graph.update(frame_to=ROOT, frame_from="world", matrix=np.eye(4), metadata=_scene_extras(scene))
    taken = {obj_name for obj_name in _all_names(scene["objects"])} | {ROOT, "world"}
    colours: dict[str, list[float]] = {}
    for obj in scene["objects"]:
        _add_object(tscene, obj, ROOT, np.eye(4), taken, colours)
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

    if binary:
        return trimesh.exchange.gltf.export_glb(tscene, tree_postprocessor=fix_tree)
    files = trimesh.exchange.gltf.export_gltf(tscene, tree_postprocessor=fix_tree, embed_buffers=True)
    return files["model.gltf"]


def _add_object(tscene: Any, obj: dict[str, Any], parent: str, parent_world: np.ndarray,
                taken: set[str], colours: dict[str, list[float]]) -> None:
    """The object's mesh node under `parent`, its parts and children under it (relative matrices)."""
    world = rigid_matrix(obj["translate"], obj["rotate"])
    extras = {"img2maya": {k: obj[k] for k in _OBJECT_EXTRAS if k in obj}}
    node = obj["name"]
    _add_mesh(tscene, node, parent, np.linalg.inv(parent_world) @ world, obj, obj["color_linear"], extras, colours)
    parts = list(primitives_of(obj))[1:]
    for name, part, _srgb, linear in parts:
        part_node = unique_name(str(name), taken)
        part_world = rigid_matrix(part["translate"], part["rotate"])
        part_extras = {"img2maya": {"part_of": node, "part": str(name), "shape": part["shape"],
                                    "translate": part["translate"], "rotate": part["rotate"],
                                    "size": part["size"], "color_linear": list(linear)}}
        _add_mesh(tscene, part_node, node, np.linalg.inv(world) @ part_world, part, linear, part_extras, colours)
    for child in obj.get("children", []):
        _add_object(tscene, child, node, world, taken, colours)


def _add_mesh(tscene: Any, node: str, parent: str, matrix: np.ndarray, prim: dict[str, Any],
              linear: list[float], extras: dict[str, Any], colours: dict[str, list[float]]) -> None:
    import trimesh

    mesh = unit_mesh(prim["shape"], prim["size"])
    exact = [float(c) for c in linear]
    name = _material_name(exact, colours)
    material = trimesh.visual.material.PBRMaterial(
        name=name, baseColorFactor=[*exact, 1.0], metallicFactor=0.0, roughnessFactor=0.8, doubleSided=True)
    mesh.visual = trimesh.visual.TextureVisuals(material=material)
    tscene.add_geometry(mesh, node_name=node, geom_name=f"{node}_mesh", parent_node_name=parent,
                        transform=matrix, metadata=extras)


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
    for key in ("generator", "warnings"):
        if key in scene:
            info[key] = scene[key]
    return {"img2maya": info}


def _camera_name(cam: dict[str, Any]) -> str:
    return str(cam.get("name") or "camera")


def _all_names(objects: list[dict[str, Any]]) -> list[str]:
    from ..scene import iter_objects

    return [obj["name"] for obj in iter_objects(objects)]
