"""The projected look (--look projection) in USD, glTF and the preview, read back from the files:
st per face-vertex, texture error under a photo pixel, the photo beside / inside the file, the render
through the file's own camera matching the photo, and bad input (photo gone, changed, huge)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference_server.builders import export
from inference_server.builders import projection as P
from inference_server.builders.preview import object_id_buffer, raycast, render_meshes, render_preview
from inference_server.builders.readback import read_export, read_gltf, read_usd
from inference_server.errors import UserError
from inference_server.imageio import sha256_file
from inference_server.scene import load

EXAMPLE = Path(__file__).parent / "data" / "example_scene.json"


def _photo(path: Path, w: int = 1600, h: int = 1200, seed: int = 0) -> np.ndarray:
    """A smooth random photo (a few octaves of noise: structure at every scale, like a real one)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3))
    for cells in (4, 16, 64):
        small = rng.random((cells * h // w + 1, cells, 3))
        img += np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC))
    rgb = np.clip(img / 3, 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path, quality=95)
    return rgb


@pytest.fixture
def scene(tmp_path: Path) -> dict:
    s = json.loads(EXAMPLE.read_text())
    photo = tmp_path / "photo.jpg"
    _photo(photo)
    s["source"]["image"] = str(photo)
    s["source"]["sha256"] = sha256_file(photo)
    return s


def _photo_at(scene: dict, shape: tuple[int, int]) -> np.ndarray:
    with Image.open(scene["source"]["image"]) as im:
        return np.asarray(im.convert("RGB").resize((shape[1], shape[0]), Image.Resampling.BOX)) / 255.0


def _mae_through_own_camera(path: Path, scene: dict, width: int = 400) -> float:
    meshes, camera = read_export(path)
    rgb, hit = render_meshes(meshes, camera, width)
    assert hit.mean() > 0.99  # the example's road, sky and buildings fill the frame
    return float(np.abs(rgb - _photo_at(scene, rgb.shape[:2]))[hit].mean())


def test_usd_mesh_st_texture_and_error_under_a_pixel(scene, tmp_path):
    from pxr import Usd, UsdGeom, UsdShade, UsdValidation

    out = tmp_path / "street.usda"
    export(scene, out, look="projection")
    texture = tmp_path / "street.photo.jpg"
    assert texture.read_bytes() == Path(scene["source"]["image"]).read_bytes()  # the photo as it is
    stage = Usd.Stage.Open(str(out))
    look = dict(stage.GetPrimAtPath("/img2maya").GetCustomDataByKey("img2maya:look"))
    assert look["mode"] == "projection" and look["texture"]["file"] == "street.photo.jpg"
    assert look["texture"]["downscaled"] is False
    tex = UsdShade.Shader(stage.GetPrimAtPath("/img2maya/Looks/photo_projection/photo"))
    assert tex.GetIdAttr().Get() == "UsdUVTexture"
    assert tex.GetInput("file").Get().path == "./street.photo.jpg"  # relative to the layer
    proj = P.Projector.of(scene["camera"])
    rng = np.random.default_rng(1)
    meshes = [UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh)]
    assert len(meshes) == 8  # every primitive of the example, parts included
    worst = 0.0
    for mesh in meshes:
        st_pv = UsdGeom.PrimvarsAPI(mesh).GetPrimvar("st")
        assert st_pv.GetInterpolation() == UsdGeom.Tokens.faceVarying
        st = np.asarray(st_pv.Get(), dtype=np.float64).reshape(-1, 3, 2)
        pts = np.asarray(mesh.GetPointsAttr().Get(), dtype=np.float64)
        m = np.array(mesh.ComputeLocalToWorldTransform(Usd.TimeCode.Default()))
        faces = (pts @ m[:3, :3] + m[3, :3])[np.asarray(mesh.GetFaceVertexIndicesAttr().Get())].reshape(-1, 3, 3)
        assert len(st) == len(faces)
        inside = np.ones(len(faces), bool)
        subsets = UsdShade.MaterialBindingAPI(mesh.GetPrim()).GetMaterialBindSubsets()
        for subset in subsets:
            inside[np.asarray(subset.GetIndicesAttr().Get())] = False
        # random points of every face that sees the photo: interpolated st vs the true projection
        b = rng.dirichlet([1, 1, 1], size=(len(faces), 6))
        points = np.einsum("fsk,fkd->fsd", b, faces)
        true_px, _ = proj.pixels(points)
        st_i = np.einsum("fsk,fkd->fsd", b, st)
        interp_px = np.stack([st_i[..., 0] * proj.width, (1 - st_i[..., 1]) * proj.height], -1)
        err = np.linalg.norm(true_px - interp_px, axis=-1)[inside]
        worst = max(worst, float(err.max()) if err.size else 0.0)
    assert worst < 1.0  # the texture error stays under one photo pixel
    validators = UsdValidation.ValidationRegistry().GetOrLoadAllValidators()
    errors = UsdValidation.ValidationContext(validators).Validate(stage)
    assert not errors, [e.GetMessage() for e in errors]


@pytest.mark.parametrize("suffix", [".usda", ".usdc", ".usdz", ".glb", ".gltf"])
def test_each_format_rendered_through_its_own_camera_is_the_photo(scene, tmp_path, suffix):
    out = tmp_path / f"scene{suffix}"
    export(scene, out, look="projection")
    assert _mae_through_own_camera(out, scene) < 0.03
    files = sorted(p.name for p in tmp_path.iterdir())
    beside = suffix in (".usda", ".usdc")
    assert files == sorted(["photo.jpg", f"scene{suffix}"] + (["scene.photo.jpg"] if beside else []))


def test_usdz_and_glb_hold_the_image(scene, tmp_path):
    export(scene, tmp_path / "s.usdz", look="projection")
    names = zipfile.ZipFile(tmp_path / "s.usdz").namelist()
    assert names == ["s.usdc", "s.photo.jpg"]
    assert zipfile.ZipFile(tmp_path / "s.usdz").read("s.photo.jpg") == Path(scene["source"]["image"]).read_bytes()
    meshes, camera = read_usd(tmp_path / "s.usdz")
    assert any(m.texture is not None for m in meshes) and camera.width == 1600
    export(scene, tmp_path / "s.glb", look="projection")
    import trimesh

    t = trimesh.load(str(tmp_path / "s.glb"), force="scene")
    textured = [g for g in t.geometry.values() if getattr(g.visual.material, "baseColorTexture", None) is not None]
    assert textured and all(g.visual.uv is not None and len(g.visual.uv) == len(g.vertices) for g in textured)
    image = textured[0].visual.material.baseColorTexture
    assert image.size == (1600, 1200)
    meshes, camera = read_gltf(tmp_path / "s.glb")
    assert camera.cx == 800.0 and camera.width == 1600


def test_outside_the_photo_is_the_mean_colour(scene, tmp_path):
    """The road runs past the camera: its faces behind it are a subset in the road's mean colour."""
    from pxr import Usd, UsdShade

    export(scene, tmp_path / "s.usda", look="projection")
    stage = Usd.Stage.Open(str(tmp_path / "s.usda"))
    road = stage.GetPrimAtPath("/img2maya/objects/road_1/geo")
    (subset,) = UsdShade.MaterialBindingAPI(road).GetMaterialBindSubsets()
    material = UsdShade.MaterialBindingAPI(subset.GetPrim()).ComputeBoundMaterial()[0]
    surface = material.ComputeSurfaceSource()[0]
    road_obj = next(o for o in scene["objects"] if o["name"] == "road_1")
    assert list(surface.GetInput("diffuseColor").Get()) == pytest.approx(road_obj["color_linear"], abs=1e-6)


def test_preview_projection_through_the_camera_and_from_elsewhere(scene):
    through = render_preview(scene, 400, look="projection") / 255.0
    hit = object_id_buffer(scene, 400) >= 0
    assert np.abs(through - _photo_at(scene, through.shape[:2]))[hit].mean() < 0.03
    other = json.loads(json.dumps(scene))
    other["camera"].update(translate=[0.0, 6.0, 3.0], rotate=[-40.0, 0.0, 0.0])  # above, behind the photo's
    side = render_preview(other, 200, look="projection", projector=scene["camera"])
    hits = raycast(other, 200)
    px, d = P.Projector.of(scene["camera"]).pixels(_points(other, hits))
    with np.errstate(invalid="ignore"):
        in_frame = (d > 0) & (px[..., 0] >= 0) & (px[..., 0] <= 1600) & (px[..., 1] >= 0) & (px[..., 1] <= 1200)
    road = next(i for i, o in enumerate(scene["objects"]) if o["name"] == "road_1")
    unseen = (hits.object_id == road) & ~in_frame  # road below the photo's frame (near its camera)
    assert unseen.sum() > 100
    mean = np.rint(np.asarray(scene["objects"][road]["color_srgb"]) * 255)
    assert np.abs(side[unseen].astype(float) - mean).max() <= 1
    seen = (hits.object_id == road) & in_frame
    assert seen.sum() > 100 and np.abs(side[seen].astype(float) - mean).max() > 10  # there: the photo


def _points(scene, hits):
    from inference_server.analysis.camera import euler_xyz_to_matrix
    from inference_server.builders.preview import _camera_rays, preview_intrinsics

    dirs = _camera_rays(preview_intrinsics(scene, 200), euler_xyz_to_matrix(*scene["camera"]["rotate"]))
    depth = np.where(np.isfinite(hits.depth), hits.depth, 0.0)
    return np.asarray(scene["camera"]["translate"]) + depth[..., None] * dirs


def test_json_says_projection_and_color_is_unchanged(scene, tmp_path):
    export(scene, tmp_path / "p.json", look="projection")
    assert load(tmp_path / "p.json")["look"] == {"mode": "projection"}
    export(scene, tmp_path / "c.json")
    assert "look" not in load(tmp_path / "c.json")


@pytest.mark.parametrize("suffix", [".json", ".usda", ".usdz", ".glb"])
def test_a_photo_gone_before_export_is_one_line_and_no_file(scene, tmp_path, suffix):
    Path(scene["source"]["image"]).unlink()
    with pytest.raises(UserError, match="needs the photo") as exc:
        export(scene, tmp_path / f"s{suffix}", look="projection")
    assert "\n" not in str(exc.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no partial output, no texture, no temp


def test_a_changed_photo_is_refused(scene, tmp_path):
    _photo(Path(scene["source"]["image"]), seed=5)
    with pytest.raises(UserError, match="not the one the scene was made from"):
        export(scene, tmp_path / "s.glb", look="projection")
    assert not (tmp_path / "s.glb").exists()
    with pytest.raises(UserError, match="unknown look"):
        export(scene, tmp_path / "s.glb", look="paint")


def test_a_huge_photo_is_written_downscaled_and_the_scene_says_so(scene, tmp_path):
    from pxr import Usd

    big = tmp_path / "wide.png"
    rgb = np.zeros((60, 4200, 3), np.uint8)
    rgb[..., 0] = (np.arange(4200) % 256)[None, :]
    Image.fromarray(rgb).save(big)
    s = json.loads(json.dumps(scene))
    s["source"].update(image=str(big), width=4200, height=60, sha256=sha256_file(big))
    s["camera"].update(width=4200, height=60, principal_px=[2100.0, 30.0], focal_px=3637.3)
    export(s, tmp_path / "w.usda", look="projection")
    with Image.open(tmp_path / "w.photo.png") as im:
        assert im.size == (4096, 59)  # 4096 px on the long side, the aspect kept
    stage = Usd.Stage.Open(str(tmp_path / "w.usda"))
    root = stage.GetPrimAtPath("/img2maya")
    look = dict(root.GetCustomDataByKey("img2maya:look"))
    assert look["texture"]["downscaled"] is True and look["texture"]["source_width"] == 4200
    assert any("downscaled from 4200x60 to 4096x59" in w for w in root.GetCustomDataByKey("img2maya:warnings"))
    tex = P.load_texture(s)
    assert tex.width == 4096 and tex.downscaled and tex.notes


def test_subdivision_is_adaptive(scene):
    proj = P.Projector.of(scene["camera"])
    car = next(o for o in scene["objects"] if o["name"] == "car_1")
    faces, inside = P.project_faces(P.primitive_triangles(car), proj)
    assert inside.all() and len(faces) < 2000
    assert np.max(P.interpolation_error(faces, proj)) <= P.TOLERANCE_PX
    far = dict(car, translate=[0.0, 0.75, -400.0])  # far away: the projection is nearly affine
    faces_far, _ = P.project_faces(P.primitive_triangles(far), proj)
    assert len(faces_far) == 12  # the cube's own triangles, not split


def test_cli_look_projection(tmp_path, capsys):
    from test_cli_support import street

    from inference_server.cli import main

    s = street(tmp_path)
    out = tmp_path / "out.usda"
    rc = main(["scene", str(s.photo), "--labels", str(s.labels), "--label-names", str(s.names), "--depth",
               str(s.depth), "--look", "projection", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert (tmp_path / "out.photo.png").exists() or (tmp_path / "out.photo.jpg").exists()
    meshes, _camera = read_export(out)
    assert any(m.texture is not None for m in meshes)
    rc = main(["scene", str(s.photo), "--labels", str(s.labels), "--label-names", str(s.names), "--look", "paint",
               "-o", str(out)])
    assert rc == 2 and "invalid choice" in capsys.readouterr().err
