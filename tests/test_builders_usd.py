"""USD export read back with pxr: placement of every primitive, colours, camera, hierarchy, metadata.

`all_shapes_scene()` (the example scene plus every shape, tilted on all axes, an off-centre
principal point and a nested child with a part) is shared by the other builder tests.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inference_server.analysis.camera import Intrinsics, project
from inference_server.builders import export
from inference_server.builders.primitives import box_corners, rigid_matrix
from inference_server.scene import iter_objects, validate

EXAMPLE = Path(__file__).parent / "data" / "example_scene.json"


def example_scene() -> dict[str, Any]:
    with open(EXAMPLE, encoding="utf-8") as fh:
        return json.load(fh)


def _obj(name: str, shape: str, translate: list[float], rotate: list[float], size: list[float],
         srgb: list[float], linear: list[float], **extra: Any) -> dict[str, Any]:
    obj = {"name": name, "label": name.split("_")[0], "role": "object", "shape": shape, "translate": translate,
           "rotate": rotate, "size": size, "color_srgb": srgb, "color_linear": linear, "pixels": 1234,
           "bbox_px": [10, 20, 30, 40], "children": []}
    obj.update(extra)
    return obj


def all_shapes_scene() -> dict[str, Any]:
    scene = copy.deepcopy(example_scene())
    scene["camera"]["principal_px"] = [760.0, 640.0]
    red, red_lin = [0.8, 0.1, 0.1], [0.603827, 0.010023, 0.010023]
    cone = _obj("cone_1", "cone", [1.0, 0.6, -6.0], [10.0, 20.0, 30.0], [0.8, 1.2, 0.6], red, red_lin,
                confidence=None)
    capsule = _obj("capsule_1", "capsule", [-2.0, 0.9, -7.0], [5.0, -15.0, 25.0], [0.6, 1.8, 0.5],
                   [0.2, 0.3, 0.4], [0.033105, 0.072272, 0.132868], confidence=0.4)
    child = _obj("lamp_1", "cylinder", [-2.1, 1.9, -7.1], [-20.0, 40.0, 70.0], [0.3, 0.2, 0.3],
                 red, red_lin)  # same colour as the cone: one shared material
    child["parts"] = [{"name": "lamp 1 bulb!", "shape": "sphere", "translate": [-2.1, 2.1, -7.1],
                       "rotate": [0.0, 0.0, 45.0], "size": [0.1, 0.15, 0.1]}]
    capsule["children"] = [child]
    scene["objects"] += [cone, capsule]
    validate(scene)
    return scene


def _stage(scene: dict[str, Any], path: Path) -> Any:
    from pxr import Usd

    export(scene, path)
    stage = Usd.Stage.Open(str(path))
    assert stage is not None
    return stage


def _object_paths(objects: list[dict[str, Any]], parent: str = "/img2maya/objects") -> dict[str, str]:
    paths = {}
    for obj in objects:
        paths[obj["name"]] = f"{parent}/{obj['name']}"
        paths.update(_object_paths(obj["children"], paths[obj["name"]]))
    return paths


def _world(prim: Any) -> np.ndarray:
    """Column-vector 4x4 world matrix (Gf matrices are row-vector)."""
    from pxr import Usd, UsdGeom

    return np.array(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(Usd.TimeCode.Default())).T


def _extent_corners(prim: Any) -> np.ndarray:
    from pxr import UsdGeom

    lo, hi = (np.array(v) for v in UsdGeom.Boundable(prim).GetExtentAttr().Get())
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _stage(all_shapes_scene(), tmp_path_factory.mktemp("usd") / "scene.usda")


def test_stage_metadata(stage: Any) -> None:
    from pxr import UsdGeom

    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y
    assert stage.GetDefaultPrim().GetPath().pathString == "/img2maya"
    data = stage.GetDefaultPrim().GetCustomData()["img2maya"]
    assert data["schema"] == "img2maya/scene@1" and data["source_image"] == "example.jpg"


def test_every_primitive_matches_its_box(stage: Any) -> None:
    """The gprim's authored extent, through its world transform, lands on the scene's 8 box corners."""
    scene = all_shapes_scene()
    paths = _object_paths(scene["objects"])
    checked = 0
    for obj in iter_objects(scene["objects"]):
        group = stage.GetPrimAtPath(paths[obj["name"]])
        assert group.GetTypeName() == "Xform"
        assert np.allclose(_world(group), np.eye(4), atol=1e-12)  # groups are identity
        gprims = [c for c in group.GetChildren() if c.GetTypeName() != "Xform"]
        assert len(gprims) == 1 + len(obj.get("parts", []))
        for prim, spec in zip(gprims, [obj, *obj.get("parts", [])], strict=True):
            local = _extent_corners(prim)
            world = local @ _world(prim)[:3, :3].T + _world(prim)[:3, 3]
            expected = box_corners(spec["translate"], spec["rotate"], spec["size"])
            np.testing.assert_allclose(world, expected, atol=1e-4)
            checked += 1
    assert checked == 12  # 10 objects and 2 parts


def test_gprim_types_and_capsule_proportions(stage: Any) -> None:
    from pxr import UsdGeom

    geo = "/img2maya/objects/{}/geo"
    expected = {"road_1": "Plane", "building_1": "Cube", "person_1": "Cylinder", "tree_1": "Sphere",
                "cone_1": "Cone", "capsule_1": "Capsule"}
    for name, type_name in expected.items():
        assert stage.GetPrimAtPath(geo.format(name)).GetTypeName() == type_name
    capsule = UsdGeom.Capsule(stage.GetPrimAtPath(geo.format("capsule_1")))
    assert capsule.GetRadiusAttr().Get() == pytest.approx(0.5)
    assert capsule.GetHeightAttr().Get() == pytest.approx(1.8 / 0.55 - 1.0)
    assert capsule.GetAxisAttr().Get() == "Y"
    cone = UsdGeom.Cone(stage.GetPrimAtPath(geo.format("cone_1")))
    # apex at +Y/2: the cone's local +Y tip goes to translate + R @ (0, size_y/2, 0)
    tip = _world(cone.GetPrim()) @ np.array([0.0, 0.5, 0.0, 1.0])
    obj = all_shapes_scene()["objects"][-2]
    expected_tip = rigid_matrix(obj["translate"], obj["rotate"]) @ np.array([0.0, 0.6, 0.0, 1.0])
    np.testing.assert_allclose(tip, expected_tip, atol=1e-6)


def test_colours_and_shared_materials(stage: Any) -> None:
    from pxr import UsdGeom, UsdShade

    scene = all_shapes_scene()
    paths = _object_paths(scene["objects"])
    materials = {}
    for obj in iter_objects(scene["objects"]):
        prim = stage.GetPrimAtPath(paths[obj["name"]] + "/geo")
        np.testing.assert_allclose(UsdGeom.Gprim(prim).GetDisplayColorAttr().Get()[0], obj["color_linear"],
                                   atol=1e-6)
        material, _rel = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial()
        shader = material.ComputeSurfaceSource()[0]
        assert shader.GetIdAttr().Get() == "UsdPreviewSurface"
        np.testing.assert_allclose(shader.GetInput("diffuseColor").Get(), obj["color_linear"], atol=1e-6)
        materials.setdefault(tuple(obj["color_linear"]), set()).add(material.GetPath())
    assert all(len(paths_) == 1 for paths_ in materials.values())  # one material per colour
    assert len({p for paths_ in materials.values() for p in paths_}) == len(materials)
    # a part without its own colour takes its object's
    bulb = stage.GetPrimAtPath(paths["lamp_1"] + "/lamp_1_bulb_")
    assert bulb and bulb.GetCustomData()["img2maya"]["part"] == "lamp 1 bulb!"
    np.testing.assert_allclose(UsdGeom.Gprim(bulb).GetDisplayColorAttr().Get()[0], [0.603827, 0.010023, 0.010023],
                               atol=1e-6)


def test_hierarchy_and_metadata(stage: Any) -> None:
    child = stage.GetPrimAtPath("/img2maya/objects/capsule_1/lamp_1")
    assert child and child.GetTypeName() == "Xform"
    assert stage.GetPrimAtPath("/img2maya/objects/building_1/building_1_1/geo").GetTypeName() == "Cube"
    assert stage.GetPrimAtPath("/img2maya/objects/tree_1/tree_1_trunk").GetTypeName() == "Cylinder"
    road = stage.GetPrimAtPath("/img2maya/objects/road_1")
    assert road.GetAttribute("img2maya:label").Get() == "road"
    assert road.GetAttribute("img2maya:role").Get() == "ground"
    assert road.GetAttribute("img2maya:pixels").Get() == 400000
    assert list(road.GetAttribute("img2maya:bbox_px").Get()) == [0, 700, 1600, 1200]
    assert road.GetAttribute("img2maya:depth_m:median").Get() == pytest.approx(6.0)
    assert road.GetAttribute("img2maya:confidence").Get() == pytest.approx(0.9)
    cone = stage.GetPrimAtPath("/img2maya/objects/cone_1")
    assert not cone.GetAttribute("img2maya:confidence").IsValid()  # null confidence is left out


def test_camera_fov_transform_and_principal_point(stage: Any) -> None:
    from pxr import Gf, Usd, UsdGeom

    scene = all_shapes_scene()
    cam = scene["camera"]
    usd_cam = UsdGeom.Camera(stage.GetPrimAtPath("/img2maya/camera"))
    assert usd_cam.GetFocalLengthAttr().Get() == pytest.approx(cam["focal_length_mm"] / 100.0, rel=1e-6)
    assert usd_cam.GetHorizontalApertureAttr().Get() == pytest.approx(0.36, rel=1e-6)
    assert usd_cam.GetVerticalApertureAttr().Get() == pytest.approx(0.27, rel=1e-6)
    assert tuple(usd_cam.GetClippingRangeAttr().Get()) == pytest.approx((0.1, 1000.0))
    np.testing.assert_allclose(_world(usd_cam.GetPrim()), rigid_matrix(cam["translate"], cam["rotate"]),
                               atol=1e-6)
    gf = usd_cam.GetCamera(Usd.TimeCode.Default())
    hfov = math.degrees(2 * math.atan(cam["width"] / 2 / cam["focal_px"]))
    assert gf.GetFieldOfView(Gf.Camera.FOVHorizontal) == pytest.approx(hfov, abs=1e-3)
    assert cam["fov_horizontal_deg"] == pytest.approx(hfov, abs=1e-3)

    # project world points with USD's own frustum and with the scene's pinhole model
    intr = Intrinsics(cam["focal_px"], *cam["principal_px"], cam["width"], cam["height"])
    view = np.array(gf.frustum.ComputeViewMatrix()).T
    proj = np.array(gf.frustum.ComputeProjectionMatrix()).T
    points = box_corners([2.5, 0.75, -12.0], [0.0, -80.0, 0.0], [1.8, 1.5, 4.5])
    cam_pts = (points - cam["translate"]) @ rigid_matrix(cam["translate"], cam["rotate"])[:3, :3]
    expected = project(cam_pts, intr)
    clip = (proj @ view @ np.c_[points, np.ones(8)].T).T
    ndc = clip[:, :2] / clip[:, 3:4]
    got = np.stack([(ndc[:, 0] + 1) / 2 * cam["width"], (1 - ndc[:, 1]) / 2 * cam["height"]], axis=1)
    np.testing.assert_allclose(got, expected, atol=0.05)


@pytest.mark.parametrize("suffix", [".usdc", ".usdz"])
def test_binary_and_package_open(tmp_path: Path, suffix: str) -> None:
    from pxr import UsdGeom

    stage = _stage(all_shapes_scene(), tmp_path / f"scene{suffix}")
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert stage.GetPrimAtPath("/img2maya/objects/capsule_1/lamp_1/geo").GetTypeName() == "Cylinder"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"scene{suffix}"]
    magic = (tmp_path / f"scene{suffix}").read_bytes()[:8]
    assert magic == b"PXR-USDC" if suffix == ".usdc" else magic.startswith(b"PK\x03\x04")


@pytest.mark.parametrize("suffix", [".usda", ".usdz"])
def test_usd_validators_report_nothing(tmp_path: Path, suffix: str) -> None:
    """usd-core's own validators (stage metadata, material bindings, usdz packaging) accept the file."""
    from pxr import UsdValidation

    stage = _stage(all_shapes_scene(), tmp_path / f"scene{suffix}")
    validators = UsdValidation.ValidationRegistry().GetOrLoadAllValidators()
    errors = UsdValidation.ValidationContext(validators).Validate(stage)
    assert [e.GetMessage() for e in errors] == []
