"""scene@1 -> USD (.usda / .usdc / .usdz) with usd-core.

Layout (see docs/EXPORTS.md):

    /img2maya                 Xform, defaultPrim, kind=assembly, customData img2maya:* (source, camera mm)
        camera                UsdGeom.Camera (translate + rotateXYZ)
        Looks/mat_<rrggbb>    UsdShade.Material + UsdPreviewSurface, one per distinct colour
        objects               Xform (identity)
            <object>          Xform (identity), attributes img2maya:label, :role, ...
                geo           Gprim with translate, rotateXYZ, scale ops (world placement)
                <part>        Gprim of each part
                <child>       Xform of each child object (same layout, recursively)

Everything is world space underneath identity groups, as docs/ARCHITECTURE.md requires.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..scene import atomic_path
from .primitives import capsule_proportions, primitives_of, unique_name

ROOT = "/img2maya"
CAMERA_NAME = "camera"
# Lens and film-back attributes of UsdGeom.Camera are in tenths of a scene unit; the stage's unit is
# the metre, so one USD "lens unit" is 100 mm.
MM_PER_LENS_UNIT = 100.0
DEFAULT_CLIP = (0.1, 10000.0)


def export_usd(scene: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write `scene` as .usda, .usdc or .usdz at `path`, atomically (temp file + os.replace)."""
    path = Path(path)
    suffix = path.suffix.lower()
    stage = build_stage(scene)
    if suffix in (".usda", ".usdc"):
        _export_layer(stage, path)
    elif suffix == ".usdz":
        _export_usdz(stage, path)
    else:
        raise UserError(f"not a USD file name: {path}")


def _export_layer(stage: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        if not stage.GetRootLayer().Export(tmp):
            raise UserError(f"cannot write {path}")


def _export_usdz(stage: Any, path: Path) -> None:
    """A usdz is a zip of a layer: write a .usdc in a private temp folder, then package it."""
    from pxr import UsdUtils

    with atomic_path(path) as tmp, tempfile.TemporaryDirectory(prefix="img2maya-usdz-") as work:
        layer = os.path.join(work, f"{path.stem}.usdc")
        if not stage.GetRootLayer().Export(layer) or not UsdUtils.CreateNewUsdzPackage(layer, tmp):
            raise UserError(f"cannot write {path}")


def build_stage(scene: dict[str, Any]) -> Any:
    """An in-memory Usd.Stage holding the scene (metres, Y up, defaultPrim /img2maya)."""
    from pxr import Kind, Usd, UsdGeom, Vt

    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageMetersPerUnit(stage, UsdGeom.LinearUnits.meters)
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    root = UsdGeom.Xform.Define(stage, ROOT).GetPrim()
    stage.SetDefaultPrim(root)
    Usd.ModelAPI(root).SetKind(Kind.Tokens.assembly)
    source = scene["source"]
    root.SetCustomDataByKey("img2maya:schema", scene["schema"])
    root.SetCustomDataByKey("img2maya:source_image", str(source["image"]))
    root.SetCustomDataByKey("img2maya:source_sha256", str(source["sha256"]))
    if "generator" in scene:
        root.SetCustomDataByKey("img2maya:generator", scene["generator"])
    if scene.get("warnings"):
        root.SetCustomDataByKey("img2maya:warnings", Vt.StringArray([str(w) for w in scene["warnings"]]))

    _define_camera(stage, f"{ROOT}/{CAMERA_NAME}", scene["camera"])
    UsdGeom.Scope.Define(stage, f"{ROOT}/Looks")
    UsdGeom.Xform.Define(stage, f"{ROOT}/objects")
    materials: dict[tuple[float, ...], Any] = {}
    for obj in scene["objects"]:
        _define_object(stage, f"{ROOT}/objects", obj, materials)
    return stage


def _define_camera(stage: Any, path: str, cam: dict[str, Any]) -> None:
    """UsdGeom.Camera with the photo's field of view and principal point.

    focalLength and the apertures are the scene's millimetre values divided by 100 (tenths of a
    metre); only their ratio sets the field of view. The principal point becomes the aperture
    offsets (zero for a centred one). The millimetre numbers are also kept in customData.
    """
    from pxr import Gf, UsdGeom

    camera = UsdGeom.Camera.Define(stage, path)
    camera.AddTranslateOp().Set(Gf.Vec3d(*cam["translate"]))
    camera.AddRotateXYZOp(UsdGeom.XformOp.PrecisionDouble).Set(Gf.Vec3d(*cam["rotate"]))
    h_ap = float(cam["horizontal_aperture_mm"])
    v_ap = float(cam["vertical_aperture_mm"])
    width, height = float(cam["width"]), float(cam["height"])
    cx, cy = (float(v) for v in cam["principal_px"])
    mm_per_px = h_ap / width
    camera.CreateProjectionAttr(UsdGeom.Tokens.perspective)
    camera.CreateFocalLengthAttr(float(cam["focal_length_mm"]) / MM_PER_LENS_UNIT)
    camera.CreateHorizontalApertureAttr(h_ap / MM_PER_LENS_UNIT)
    camera.CreateVerticalApertureAttr(v_ap / MM_PER_LENS_UNIT)
    # the image centre seen from the principal point, in film units (+x right, +y up)
    camera.CreateHorizontalApertureOffsetAttr((width / 2.0 - cx) * mm_per_px / MM_PER_LENS_UNIT)
    camera.CreateVerticalApertureOffsetAttr((cy - height / 2.0) * mm_per_px / MM_PER_LENS_UNIT)
    near = float(cam.get("near_clip_m", DEFAULT_CLIP[0]))
    far = float(cam.get("far_clip_m", DEFAULT_CLIP[1]))
    camera.CreateClippingRangeAttr(Gf.Vec2f(near, far))
    prim = camera.GetPrim()
    for key in ("name", "focal_length_mm", "horizontal_aperture_mm", "vertical_aperture_mm", "focal_px",
                "width", "height", "focal_source", "fov_horizontal_deg"):
        if key in cam:
            prim.SetCustomDataByKey(f"img2maya:{key}", cam[key])
    prim.SetCustomDataByKey("img2maya:principal_px", Gf.Vec2d(cx, cy))


def _define_object(stage: Any, parent: str, obj: dict[str, Any], materials: dict[tuple[float, ...], Any]) -> None:
    from pxr import UsdGeom

    path = f"{parent}/{obj['name']}"
    group = UsdGeom.Xform.Define(stage, path).GetPrim()
    _write_metadata(group, obj)
    taken = {child["name"] for child in obj.get("children", [])}
    for index, (name, prim, _srgb, linear) in enumerate(primitives_of(obj)):
        gprim_name = unique_name("geo" if index == 0 else _identifier(name), taken)
        gprim = _define_gprim(stage, f"{path}/{gprim_name}", prim)
        _bind_colour(stage, gprim, linear, materials)
        if index > 0:
            gprim.GetPrim().SetCustomDataByKey("img2maya:part", str(name))
    for child in obj.get("children", []):
        _define_object(stage, path, child, materials)


def _write_metadata(prim: Any, obj: dict[str, Any]) -> None:
    """The analysis facts as custom attributes `img2maya:*` on the object's Xform."""
    from pxr import Sdf

    def attr(name: str, type_name: Any, value: Any) -> None:
        prim.CreateAttribute(f"img2maya:{name}", type_name, custom=True).Set(value)

    attr("label", Sdf.ValueTypeNames.String, str(obj["label"]))
    attr("role", Sdf.ValueTypeNames.Token, str(obj["role"]))
    attr("shape", Sdf.ValueTypeNames.Token, str(obj["shape"]))
    if "label_id" in obj:
        attr("label_id", Sdf.ValueTypeNames.Int, int(obj["label_id"]))
    attr("pixels", Sdf.ValueTypeNames.Int64, int(obj["pixels"]))
    attr("bbox_px", Sdf.ValueTypeNames.IntArray, [int(v) for v in obj["bbox_px"]])
    attr("size", Sdf.ValueTypeNames.Double3, tuple(float(v) for v in obj["size"]))
    attr("color_srgb", Sdf.ValueTypeNames.Color3f, tuple(float(v) for v in obj["color_srgb"]))
    if obj.get("confidence") is not None:
        attr("confidence", Sdf.ValueTypeNames.Double, float(obj["confidence"]))
    if "thickness_source" in obj:
        attr("thickness_source", Sdf.ValueTypeNames.Token, str(obj["thickness_source"]))
    for key, value in obj.get("depth_m", {}).items():
        if key == "valid_pixels":
            attr(f"depth_m:{key}", Sdf.ValueTypeNames.Int64, int(value))
        else:
            attr(f"depth_m:{key}", Sdf.ValueTypeNames.Double, float(value))


def _define_gprim(stage: Any, path: str, prim: dict[str, Any]) -> Any:
    """The unit primitive placed by translate, rotateXYZ and scale ops so that its box is `size`."""
    from pxr import Gf, UsdGeom

    shape = prim["shape"]
    size = [float(v) for v in prim["size"]]
    scale = list(size)
    if shape == "cube":
        gprim = UsdGeom.Cube.Define(stage, path)
        gprim.CreateSizeAttr(1.0)
    elif shape == "plane":
        gprim = UsdGeom.Plane.Define(stage, path)
        gprim.CreateWidthAttr(1.0)
        gprim.CreateLengthAttr(1.0)
        gprim.CreateAxisAttr(UsdGeom.Tokens.y)
        gprim.CreateDoubleSidedAttr(True)
        scale[1] = 1.0  # a plane has no thickness; keep the matrix invertible
    elif shape == "sphere":
        gprim = UsdGeom.Sphere.Define(stage, path)
        gprim.CreateRadiusAttr(0.5)
    elif shape in ("cylinder", "cone"):
        gprim = (UsdGeom.Cylinder if shape == "cylinder" else UsdGeom.Cone).Define(stage, path)
        gprim.CreateRadiusAttr(0.5)
        gprim.CreateHeightAttr(1.0)
        gprim.CreateAxisAttr(UsdGeom.Tokens.y)
    elif shape == "capsule":
        radius, height, capsule_scale = capsule_proportions(size)
        gprim = UsdGeom.Capsule.Define(stage, path)
        gprim.CreateRadiusAttr(radius)
        gprim.CreateHeightAttr(height)
        gprim.CreateAxisAttr(UsdGeom.Tokens.y)
        scale = [float(v) for v in capsule_scale]
    else:  # the schema forbids it; a clear message anyway
        raise UserError(f"unknown shape {shape!r} for {path}")
    extent = UsdGeom.Boundable.ComputeExtentFromPlugins(gprim, 0.0)
    if extent is not None:
        gprim.CreateExtentAttr(extent)
    gprim.AddTranslateOp().Set(Gf.Vec3d(*(float(v) for v in prim["translate"])))
    gprim.AddRotateXYZOp(UsdGeom.XformOp.PrecisionDouble).Set(Gf.Vec3d(*(float(v) for v in prim["rotate"])))
    gprim.AddScaleOp(UsdGeom.XformOp.PrecisionDouble).Set(Gf.Vec3d(*scale))
    return gprim


def _bind_colour(stage: Any, gprim: Any, linear: Sequence[float], materials: dict[tuple[float, ...], Any]) -> None:
    """displayColor for viewports, plus a UsdPreviewSurface shared by every prim of this colour."""
    from pxr import Gf, Sdf, UsdShade

    colour = tuple(float(v) for v in linear)
    gprim.CreateDisplayColorAttr([Gf.Vec3f(*colour)])
    material = materials.get(colour)
    if material is None:
        name = "mat_" + "".join(f"{round(c * 255):02x}" for c in colour)
        base = f"{ROOT}/Looks/{name}"
        path, n = base, 1
        while stage.GetPrimAtPath(path):
            n += 1
            path = f"{base}_{n}"
        material = UsdShade.Material.Define(stage, path)
        shader = UsdShade.Shader.Define(stage, f"{path}/PreviewSurface")
        shader.CreateIdAttr("UsdPreviewSurface")
        shader.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(*colour))
        shader.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(0.8)
        shader.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(0.0)
        material.CreateSurfaceOutput().ConnectToSource(shader.ConnectableAPI(), "surface")
        materials[colour] = material
    UsdShade.MaterialBindingAPI.Apply(gprim.GetPrim()).Bind(material)


def _identifier(name: str) -> str:
    from pxr import Tf

    return Tf.MakeValidIdentifier(str(name)) or "part"
