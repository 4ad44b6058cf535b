"""Shared geometry for the builders: object matrices, box corners, capsule proportions, unit meshes.

Every builder places a unit primitive (docs/ARCHITECTURE.md) with `translate`, `rotate` (xyz
degrees, R = Rz @ Ry @ Rx) and `size` (full extents). Keeping those rules in one module is what
makes the USD file, the glTF file and the preview agree to the last digit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..conventions import euler_xyz_to_matrix

SHAPES = ("cube", "plane", "cylinder", "sphere", "cone", "capsule")


def rigid_matrix(translate: Sequence[float], rotate: Sequence[float]) -> np.ndarray:
    """4x4 world matrix (column vectors) of a translate + xyz-Euler rotation."""
    m = np.eye(4)
    m[:3, :3] = euler_xyz_to_matrix(*rotate)
    m[:3, 3] = np.asarray(translate, dtype=np.float64)
    return m


def box_corners(translate: Sequence[float], rotate: Sequence[float], size: Sequence[float]) -> np.ndarray:
    """The 8 world corners (8, 3) of an object's oriented bounding box."""
    signs = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    local = signs * np.asarray(size, dtype=np.float64)
    return local @ euler_xyz_to_matrix(*rotate).T + np.asarray(translate, dtype=np.float64)


def capsule_proportions(size: Sequence[float]) -> tuple[float, float, np.ndarray]:
    """(radius, cylinder height, scale) of a capsule whose bounding box is `size`.

    A capsule does not stay a capsule under non-uniform scaling, so the unit shape is a capsule
    of radius 0.5 whose straight part is as long as needed for the caps to stay round when the
    footprint is round: scale (sx, d, sz) with d the mean diameter and cylinder height
    size_y / d - 1 (clamped at 0: a capsule flatter than wide becomes a squashed sphere).
    The total extents are exactly `size`.
    """
    sx, sy, sz = (float(v) for v in size)
    d = 0.5 * (sx + sz)
    if d > 0.0 and sy > d:
        return 0.5, sy / d - 1.0, np.array([sx, d, sz])
    return 0.5, 0.0, np.array([sx, sy, sz])


def primitives_of(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], list[float], list[float]]]:
    """(name, primitive, color_srgb, color_linear) for an object's own shape and each of its parts.

    A part without a colour of its own takes its object's colour.
    """
    yield obj["name"], obj, obj["color_srgb"], obj["color_linear"]
    for part in obj.get("parts", []):
        yield (part["name"], part, part.get("color_srgb", obj["color_srgb"]),
               part.get("color_linear", obj["color_linear"]))


def unit_mesh(shape: str, size: Sequence[float], sections: int = 32) -> Any:
    """A trimesh.Trimesh of the primitive with `size` baked in, centred at the origin, axis +Y.

    The plane is a two-triangle quad in XZ facing +Y (its y size is ignored).
    """
    import trimesh

    sx, sy, sz = (float(v) for v in size)
    to_y = trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0])  # maps +Z to +Y
    if shape == "cube":
        mesh = trimesh.creation.box(extents=[1.0, 1.0, 1.0])
        scale = np.array([sx, sy, sz])
    elif shape == "plane":
        verts = np.array([[-0.5, 0, -0.5], [0.5, 0, -0.5], [0.5, 0, 0.5], [-0.5, 0, 0.5]])
        mesh = trimesh.Trimesh(verts, [[0, 3, 2], [0, 2, 1]], process=False)
        scale = np.array([sx, 1.0, sz])
    elif shape == "sphere":
        mesh = trimesh.creation.uv_sphere(radius=0.5, count=[sections // 2, sections])
        scale = np.array([sx, sy, sz])
    elif shape == "cylinder":
        mesh = trimesh.creation.cylinder(radius=0.5, height=1.0, sections=sections, transform=to_y)
        scale = np.array([sx, sy, sz])
    elif shape == "cone":
        # trimesh's cone has its base at z=0 and apex at z=height: centre it, then turn to +Y
        shift = trimesh.transformations.translation_matrix([0, 0, -0.5])
        mesh = trimesh.creation.cone(radius=0.5, height=1.0, sections=sections, transform=to_y @ shift)
        scale = np.array([sx, sy, sz])
    elif shape == "capsule":
        radius, height, scale = capsule_proportions(size)
        mesh = trimesh.creation.capsule(height=height, radius=radius, count=[sections, sections],
                                        transform=to_y)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    mesh.vertices = np.asarray(mesh.vertices) * scale
    return mesh


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `name_2`, `name_3`, ... : the first not in `taken` (which it joins)."""
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate
