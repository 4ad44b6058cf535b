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

import numpy as np

from ..errors import UserError
from ..scene import atomic_path
from .primitives import capsule_proportions, primitives_of, unique_name
from .projection import (
    Projector,
    Texture,
    check_look,
    load_texture,
    projected_mesh,
    texture_file_name,
    with_look,
)

ROOT = "/img2maya"
CAMERA_NAME = "camera"
# Lens and film-back attributes of UsdGeom.Camera are in tenths of a scene unit; the stage's unit is
# the metre, so one USD "lens unit" is 100 mm.
MM_PER_LENS_UNIT = 100.0
DEFAULT_CLIP = (0.1, 10000.0)


def export_usd(scene: dict[str, Any], path: str | os.PathLike[str], look: str = "color",
               photo: str | os.PathLike[str] | None = None) -> None:
    """Write `scene` as .usda, .usdc or .usdz at `path`, atomically (temp file + os.replace).

    look="projection": the photo (`photo`, else the scene's source.image, re-read now) is projected
    through the camera; it is written beside a .usda/.usdc as `<stem>.photo.jpg` (atomically too) and
    packed inside a .usdz. A photo that cannot be re-read is a UserError before anything is written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".usda", ".usdc", ".usdz"):
        raise UserError(f"not a USD file name: {path}")
    texture = None
    if check_look(look) == "projection":
        texture = load_texture(scene, photo)
    asset = texture_file_name(path, texture) if texture is not None else None
    stage = build_stage(scene, texture=texture, texture_asset=asset)
    if suffix == ".usdz":
        _export_usdz(stage, path, texture, asset)
    else:
        _export_layer(stage, path, texture, asset)


def _export_layer(stage: Any, path: Path, texture: Texture | None = None, asset: str | None = None) -> None:
    if texture is None or asset is None:
        with atomic_path(path) as tmp:
            if not stage.GetRootLayer().Export(tmp):
                raise UserError(f"cannot write {path}")
        return
    # the texture is moved into place just before the layer that names it; a failure removes both
    with atomic_path(path) as tmp, atomic_path(path.with_name(asset)) as tex_tmp:
        with open(tex_tmp, "wb") as fh:
            fh.write(texture.data)
        if not stage.GetRootLayer().Export(tmp):
            raise UserError(f"cannot write {path}")


def _export_usdz(stage: Any, path: Path, texture: Texture | None = None, asset: str | None = None) -> None:
    """A usdz is a zip of a layer (and its texture): write them in a private temp folder, then package."""
    from pxr import UsdUtils

    with atomic_path(path) as tmp, tempfile.TemporaryDirectory(prefix="img2maya-usdz-") as work:
        layer = os.path.join(work, f"{path.stem}.usdc")
        if texture is not None and asset is not None:
            with open(os.path.join(work, asset), "wb") as fh:
                fh.write(texture.data)
        if not stage.GetRootLayer().Export(layer) or not UsdUtils.CreateNewUsdzPackage(layer, tmp):
            raise UserError(f"cannot write {path}")


def build_stage(scene: dict[str, Any], texture: Texture | None = None, texture_asset: str | None = None) -> Any:
    """An in-memory Usd.Stage holding the scene (metres, Y up, defaultPrim /img2maya).

    With a `texture` (the projected look), every primitive is a Mesh with an `st` primvar from the
    camera projection, bound to /img2maya/Looks/photo_projection (a UsdUVTexture of `texture_asset`,
    a path relative to the layer); its faces outside the photo are a GeomSubset with the mean colour.
    """
    from pxr import Kind, Usd, UsdGeom, Vt

    scene = with_look(scene, texture, texture_asset)

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
    root.SetCustomDataByKey("img2maya:look", _plain(scene["look"]))

    _define_camera(stage, f"{ROOT}/{CAMERA_NAME}", scene["camera"])
    UsdGeom.Scope.Define(stage, f"{ROOT}/Looks")
    UsdGeom.Xform.Define(stage, f"{ROOT}/objects")
    materials: dict[tuple[float, ...], Any] = {}
    look = None
    if texture is not None and texture_asset is not None:
        look = (_define_projection_material(stage, texture_asset), Projector.of(scene["camera"]))
    for obj in scene["objects"]:
        _define_object(stage, f"{ROOT}/objects", obj, materials, look)
    return stage


def _plain(value: Any) -> Any:
    """A JSON-like value as USD dictionary values (ints and floats as they are, lists of numbers kept)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _define_projection_material(stage: Any, asset: str) -> Any:
    """UsdPreviewSurface whose diffuseColor is a UsdUVTexture of the photo, read through the `st` primvar."""
    from pxr import Sdf, UsdShade

    path = f"{ROOT}/Looks/photo_projection"
    material = UsdShade.Material.Define(stage, path)
    reader = UsdShade.Shader.Define(stage, f"{path}/stReader")
    reader.CreateIdAttr("UsdPrimvarReader_float2")
    reader.CreateInput("varname", Sdf.ValueTypeNames.String).Set("st")
    reader.CreateOutput("result", Sdf.ValueTypeNames.Float2)
    tex = UsdShade.Shader.Define(stage, f"{path}/photo")
    tex.CreateIdAttr("UsdUVTexture")
    tex.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(Sdf.AssetPath(f"./{asset}"))
    tex.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
    tex.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set("clamp")
    tex.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set("clamp")
    tex.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("sRGB")
    tex.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
    surface = UsdShade.Shader.Define(stage, f"{path}/PreviewSurface")
    surface.CreateIdAttr("UsdPreviewSurface")
    surface.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(tex.ConnectableAPI(), "rgb")
    surface.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(0.8)
    surface.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(0.0)
    material.CreateSurfaceOutput().ConnectToSource(surface.ConnectableAPI(), "surface")
    return material


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


def _define_object(stage: Any, parent: str, obj: dict[str, Any], materials: dict[tuple[float, ...], Any],
                   look: tuple[Any, Projector] | None = None) -> None:
    from pxr import UsdGeom

    path = f"{parent}/{obj['name']}"
    group = UsdGeom.Xform.Define(stage, path).GetPrim()
    _write_metadata(group, obj)
    taken = {child["name"] for child in obj.get("children", [])}
    for index, (name, prim, _srgb, linear) in enumerate(primitives_of(obj)):
        gprim_name = unique_name("geo" if index == 0 else _identifier(name), taken)
        if look is None:
            gprim = _define_gprim(stage, f"{path}/{gprim_name}", prim)
            _bind_colour(stage, gprim, linear, materials)
        else:
            gprim = _define_projected_mesh(stage, f"{path}/{gprim_name}", prim, linear, materials, *look)
        if index > 0:
            gprim.GetPrim().SetCustomDataByKey("img2maya:part", str(name))
    for child in obj.get("children", []):
        _define_object(stage, path, child, materials, look)


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


def _define_projected_mesh(stage: Any, path: str, prim: dict[str, Any], linear: Sequence[float],
                           materials: dict[tuple[float, ...], Any], photo_material: Any, proj: Projector) -> Any:
    """The primitive as a Mesh (faces split for the projection) placed by translate + rotateXYZ (the size
    is in the points), `st` per face-vertex, bound to the photo; its faces outside the photo form the
    GeomSubset `outside_photo`, bound to the mean-colour material."""
    from pxr import Gf, Sdf, UsdGeom, UsdShade, Vt

    from ..conventions import euler_xyz_to_matrix

    pm = projected_mesh(prim, proj)
    rot = euler_xyz_to_matrix(*prim["rotate"])
    translate = np.asarray(prim["translate"], dtype=np.float64)
    local = ((pm.faces.reshape(-1, 3) - translate) @ rot).astype(np.float32)
    n = len(pm.faces)
    mesh = UsdGeom.Mesh.Define(stage, path)
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(local))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(n, 3, dtype=np.int32)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(np.arange(3 * n, dtype=np.int32)))
    lo, hi = local.min(axis=0), local.max(axis=0)
    mesh.CreateExtentAttr(Vt.Vec3fArray([Gf.Vec3f(*map(float, lo)), Gf.Vec3f(*map(float, hi))]))
    if prim["shape"] == "plane":
        mesh.CreateDoubleSidedAttr(True)
    st = UsdGeom.PrimvarsAPI(mesh).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray,
                                                  UsdGeom.Tokens.faceVarying)
    st.Set(Vt.Vec2fArray.FromNumpy(pm.st.reshape(-1, 2).astype(np.float32)))
    mesh.AddTranslateOp().Set(Gf.Vec3d(*map(float, translate)))
    mesh.AddRotateXYZOp(UsdGeom.XformOp.PrecisionDouble).Set(Gf.Vec3d(*(float(v) for v in prim["rotate"])))
    colour_material = _bind_colour(stage, mesh, linear, materials, bind=False)
    binding = UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim())
    binding.Bind(photo_material)
    outside = np.flatnonzero(~pm.inside).astype(np.int32)
    if len(outside):
        subset = UsdGeom.Subset.CreateGeomSubset(mesh, "outside_photo", UsdGeom.Tokens.face,
                                                 Vt.IntArray.FromNumpy(outside), UsdShade.Tokens.materialBind)
        UsdShade.MaterialBindingAPI.Apply(subset.GetPrim()).Bind(colour_material)
        binding.SetMaterialBindSubsetsFamilyType(UsdGeom.Tokens.nonOverlapping)
    return mesh


def _bind_colour(stage: Any, gprim: Any, linear: Sequence[float], materials: dict[tuple[float, ...], Any],
                 bind: bool = True) -> Any:
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
    if bind:
        UsdShade.MaterialBindingAPI.Apply(gprim.GetPrim()).Bind(material)
    return material


def _identifier(name: str) -> str:
    from pxr import Tf

    return Tf.MakeValidIdentifier(str(name)) or "part"
