"""scene@1 dict -> Maya nodes (maya.cmds only; runs in Maya 2022-2026 and under tests/fakemaya).

What one build creates (docs/MAYA.md has the picture):

    img2maya_<photo stem>            root group, tagged img2maya_build=<photo key>
      img2maya_<stem>_cam            the camera, film back in inches, the photo as its image plane
      <name>_geo                     a leaf object: a unit primitive with translate/rotate/scale
      <name>_grp                     an object with parts or children (identity transform)
        <name>_geo, <part>_geo, children...

Design choices, and why:
- Scene transforms are world-space and every group is identity, so each primitive gets its scene
  transform as is (translate converted to Maya's current linear unit).
- Primitives are built one metre big (in the current unit) so `scale` equals the size in metres,
  whatever the scene unit: readable for an artist.
- Maya commands are slow one by one; calls are batched where a command documents several objects
  (addAttr, group, sets -forceElement, delete), so an object costs 3 calls (create, xform, one setAttr
  of its stats) and each distinct colour 5 (its shading network, colour and one assignment of all its
  members), plus a few per build.
- Shading networks are the plain documented network that Hypershade makes, one per distinct colour:
  `shadingNode lambert -asShader`; `sets -renderable -noSurfaceShader -empty` (a shading group, which
  Maya connects to renderPartition, as documented under -renderable); `connectAttr outColor ->
  surfaceShader`; then `sets -forceElement` with every member of that colour at once. Nothing relies
  on undocumented behaviour (an earlier version copied networks with `duplicate -upstreamNodes`).
- Label and stats: the label is an enum attribute whose one field is the label (added with one
  batched addAttr per distinct label: a new attribute holds its default, field 0), the rest one
  compact JSON string per object (one setAttr).
- Regenerate must never touch the user's nodes: only roots whose img2maya_build tag equals this
  photo's key are deleted, and only the shaders that root created and nothing else uses any more.
- The projected look (look="projection") adds one texture network per build, the one Hypershade makes
  for a camera projection: `file` (the photo, -asTexture) with its `place2dTexture`, feeding `image`
  of a `projection` node (-asUtility) in perspective mode (projType 8) whose `linkedCamera` is the
  build's camera shape (its `message`), fitted to the film gate; wrap off, so outside the photo the
  projection has no colour and alpha 0. Each Lambert's colour is a `blendColors` of the projection
  (color1) and the object's mean colour (color2), weighted by the projection's outAlpha. The nodes
  carry the build's ownership tag and are listed on the root, so regenerate and delete remove them.
- The whole build is one undo chunk, closed even on error; on error the partial build is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from maya import cmds

from . import units
from .mayautil import first, has_attr, linear_unit, names, set_string, set_values, undo_chunk, vec3

BUILD_ATTR = "img2maya_build"  # root: the photo key of the build that made it
SOURCE_ATTR = "img2maya_source"  # root: photo path
SHADERS_ATTR = "img2maya_shaders"  # root: JSON list of the shaders it created (projection: an object)
LABEL_ATTR = "img2maya_label"  # object: class label (enum, its one field is the label)
INFO_ATTR = "img2maya_info"  # object: JSON of label, pixels, depth_m, name, role, shape, confidence...

SCHEMA = "img2maya/scene@1"
LOOKS = ("color", "projection")
PROJ_TYPE_PERSPECTIVE = 8  # projection.projType
FIT_FILM_GATE = 1  # projection.fitType: Match Camera Film Gate
FIT_HORIZONTAL = 1  # projection.fitFill: the camera's film fit is horizontal
_INFO_KEYS = ("name", "label", "label_id", "pixels", "role", "shape", "depth_m", "confidence", "bbox_px",
              "thickness_source", "color_srgb")
_MIN_SIZE_M = 0.001  # a zero extent would make a singular transform


class BuildError(ValueError):
    """The scene cannot be built (not a scene@1 dict, unknown shape...): a one-line message."""


def photo_key(scene: Mapping[str, Any]) -> str:
    """Identity of the photo a scene comes from: its sha256, or its file name when the hash is absent
    or a placeholder. Regenerate replaces the build with the same key."""
    source = scene.get("source") or {}
    sha = str(source.get("sha256") or "")
    if sha and sha.strip("0"):
        return "sha256:" + sha
    return "image:" + os.path.basename(str(source.get("image") or "scene")).lower()


def safe_name(text: str, fallback: str = "scene") -> str:
    """A valid Maya node name from any text (photo stems may contain spaces, dots, unicode)."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")
    if not name:
        name = fallback
    if name[0].isdigit():
        name = "_" + name
    return name


def default_root_name(scene: Mapping[str, Any]) -> str:
    """`img2maya_<photo stem>`."""
    image = str((scene.get("source") or {}).get("image") or "scene")
    stem = os.path.splitext(os.path.basename(image.replace("\\", "/")))[0]
    return "img2maya_" + safe_name(stem)


def owner_attr(key: str) -> str:
    """Name of the (boolean) attribute that marks a shader as made by a build of photo `key`. The key
    is in the attribute's NAME so one batched addAttr tags every shader of a build, no setAttr each."""
    return "img2maya_owner_" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]


def enum_field(label: str) -> str:
    """The label as an enum field name (':' and '=' are addAttr -enumName's separators)."""
    return re.sub(r"[:=]", "_", label).strip() or "unlabelled"


def get_label(node: str) -> str:
    """The class label of a built object (`img2maya_label` is an enum: its field name)."""
    return str(cmds.getAttr(node + "." + LABEL_ATTR, asString=True))


def find_builds(key: str) -> list[str]:
    """Root groups in the scene whose build tag is `key` (top-level transforms only: cheap)."""
    out = []
    for node in cmds.ls(assemblies=True) or []:
        if has_attr(node, BUILD_ATTR) and cmds.getAttr(node + "." + BUILD_ATTR) == key:
            out.append(node)
    return out


def delete_build(root: str) -> None:
    """Delete a previous build: its root and the shaders it created that nothing else uses now.
    A shader the user assigned to their own objects is kept. Batched: 9 calls whatever the number of
    shaders."""
    shaders: list[str] = []
    shared: list[str] = []  # the projected look's texture network (file, place2dTexture, projection)
    blends: dict[str, str] = {}  # shader -> its blendColors (projected look)
    owner = ""
    if has_attr(root, SHADERS_ATTR):
        listed = json.loads(cmds.getAttr(root + "." + SHADERS_ATTR) or "[]")
        if isinstance(listed, dict):  # a projected build
            shaders, shared, blends = list(listed.get("shaders", [])), list(listed.get("shared", [])), \
                dict(listed.get("blends", {}))
        else:
            shaders = list(listed)
        owner = owner_attr(str(cmds.getAttr(root + "." + BUILD_ATTR)))
    cmds.delete(root)
    if not shaders and not shared:
        return
    # still ours: exists and carries this photo's ownership tag (not renamed away, not a user node that
    # took the name); ls leaves out the plugs that do not exist
    candidates = shaders + shared + list(blends.values())
    found = {str(n) for n in cmds.ls(*[s + "." + owner for s in candidates], objectsOnly=True) or []}
    ours = [s for s in shaders if s in found]
    if not ours:  # the user deleted our Lamberts: the texture network feeds nothing of theirs
        orphans = [n for n in shared + list(blends.values()) if n in found]
        if orphans:
            cmds.delete(*orphans)
        return
    pairs = cmds.listConnections(*[s + ".outColor" for s in ours], source=False, destination=True,
                                 type="shadingEngine", connections=True) or []
    groups: dict[str, list[str]] = {s: [] for s in ours}
    for i in range(0, len(pairs), 2):
        shader = str(pairs[i]).split(".")[0]
        if shader in groups:
            groups[shader].append(str(pairs[i + 1]))
    # a shading group still has members only where the user assigned it elsewhere (our objects went
    # with the root); members are connected to its dagSetMembers, so one query finds every used one
    all_groups = [sg for sgs in groups.values() for sg in sgs]
    members: list[str] = []
    if all_groups:
        members = cmds.listConnections(*[sg + ".dagSetMembers" for sg in all_groups], source=True,
                                       destination=False, connections=True) or []
    used = {str(members[i]).split(".")[0] for i in range(0, len(members), 2)}
    doomed: list[str] = []
    kept = 0
    for shader, sgs in groups.items():
        if any(sg in used for sg in sgs):
            kept += 1
            continue  # still used: the shader and its groups stay (with its blend and the texture network)
        doomed += [shader] + [sg for sg in sgs if sg not in doomed]
        if blends.get(shader) in found:
            doomed.append(blends[shader])
    if not kept:
        doomed += [n for n in shared if n in found]
    if doomed:
        cmds.delete(*doomed)


class _Build:
    """One build in progress: what was created (for clean-up on error) and what is batched."""

    def __init__(self, factor: float, key: str) -> None:
        self.factor = factor
        self.key = key
        self.created: list[str] = []
        self.objects: list[tuple[str, Mapping[str, Any]]] = []  # (transform, scene object)
        self.shaders: dict[tuple[float, ...], list[str]] = {}  # colour -> members
        self.camera_shape = ""
        self.look_nodes: dict[str, Any] = {}  # projected look: {"shared": [...], "blends": {shader: blend}}

    # -- primitives
    def primitive(self, shape: str, name: str, translate: Sequence[float], rotate: Sequence[float],
                  size: Sequence[float]) -> str:
        f = self.factor
        if shape == "cube":
            result = cmds.polyCube(name=name, width=f, height=f, depth=f, constructionHistory=False)
        elif shape == "plane":
            result = cmds.polyPlane(name=name, width=f, height=f, subdivisionsX=1, subdivisionsY=1,
                                    constructionHistory=False)
        elif shape == "cylinder":
            result = cmds.polyCylinder(name=name, radius=0.5 * f, height=f, subdivisionsAxis=24,
                                       constructionHistory=False)
        elif shape == "capsule":
            result = cmds.polyCylinder(name=name, radius=0.5 * f, height=f, subdivisionsAxis=24,
                                       roundCap=True, subdivisionsCaps=4, constructionHistory=False)
        elif shape == "sphere":
            result = cmds.polySphere(name=name, radius=0.5 * f, subdivisionsAxis=24, subdivisionsHeight=16,
                                     constructionHistory=False)
        elif shape == "cone":
            result = cmds.polyCone(name=name, radius=0.5 * f, height=f, subdivisionsAxis=24,
                                   constructionHistory=False)
        else:
            raise BuildError(f"unknown shape {shape!r} for {name}")
        node = first(result)
        self.created.append(node)
        scale = [max(float(s), _MIN_SIZE_M) for s in size]
        if shape == "plane":
            scale[1] = 1.0  # a plane has no thickness: keep the transform invertible
        cmds.xform(node, translation=vec3(translate, f), rotation=vec3(rotate), scale=vec3(scale))
        return node

    def shade(self, node: str, color: Sequence[float]) -> None:
        key = tuple(round(float(c), 6) for c in color)
        self.shaders.setdefault(key, []).append(node)

    def obj(self, o: Mapping[str, Any], inherited_color: Sequence[float] | None = None) -> str:
        """Create one scene object (with its parts and children); returns the top node to parent."""
        try:
            name = safe_name(str(o["name"]), "object")
            color = o.get("color_linear") or inherited_color or (0.5, 0.5, 0.5)
            geo = self.primitive(str(o["shape"]), name + "_geo", o["translate"], o["rotate"], o["size"])
        except (KeyError, TypeError) as exc:
            raise BuildError(f"object {o.get('name', '?')!r} is not a scene@1 object: {exc}") from None
        self.shade(geo, color)
        if "label" in o:
            self.objects.append((geo, o))
        members = [geo]
        for part in o.get("parts") or []:
            pname = safe_name(str(part.get("name", name + "_part")))
            try:
                pgeo = self.primitive(str(part["shape"]), pname + "_geo", part["translate"], part["rotate"],
                                      part["size"])
            except (KeyError, TypeError) as exc:
                raise BuildError(f"part {pname!r} of {name} is not a scene@1 part: {exc}") from None
            self.shade(pgeo, part.get("color_linear") or color)
            members.append(pgeo)
        for child in o.get("children") or []:
            members.append(self.obj(child, color))
        if len(members) == 1:
            return geo
        grp = cmds.group(*members, name=name + "_grp")
        self.created.append(grp)
        return grp

    # -- camera
    def camera(self, cam: Mapping[str, Any], root_name: str, image_path: str | None) -> str:
        f = self.factor
        try:
            aperture_h = float(cam["horizontal_aperture_mm"])
            aperture_v = float(cam["vertical_aperture_mm"])
            focal = float(cam["focal_length_mm"])
            translate, rotate = cam["translate"], cam["rotate"]
        except (KeyError, TypeError, ValueError) as exc:
            raise BuildError(f"the scene's camera is incomplete: {exc}") from None
        near = float(cam.get("near_clip_m", 0.1))
        far = float(cam.get("far_clip_m", 10000.0))
        transform, shape = names(cmds.camera(
            name=root_name + "_cam", focalLength=focal, horizontalFilmAperture=units.mm_to_inches(aperture_h),
            verticalFilmAperture=units.mm_to_inches(aperture_v), filmFit="horizontal",
            nearClipPlane=near * f, farClipPlane=far * f))[:2]
        self.created.append(transform)
        self.camera_shape = shape
        cmds.xform(transform, translation=vec3(translate, f), rotation=vec3(rotate))
        if image_path:
            plane = names(cmds.imagePlane(camera=shape, fileName=image_path))
            plane_shape = plane[-1]  # [transform, shape] since Maya 2017
            # Sized to the film back (inches) and fitted "to size", so the photo fills the gate exactly.
            set_values(plane_shape + ".sizeX", units.mm_to_inches(aperture_h))
            set_values(plane_shape + ".sizeY", units.mm_to_inches(aperture_v))
            set_values(plane_shape + ".fit", 4)  # 4 = "To Size"
        return transform

    # -- batched attributes and shaders
    def tag_objects(self) -> None:
        """Label (enum, one addAttr per distinct label) and one JSON string of stats per object."""
        if not self.objects:
            return
        by_label: dict[str, list[str]] = {}
        for node, o in self.objects:
            by_label.setdefault(enum_field(str(o.get("label", ""))), []).append(node)
        for label, nodes in by_label.items():
            cmds.addAttr(*nodes, longName=LABEL_ATTR, attributeType="enum", enumName=label)
        cmds.addAttr(*[n for n, _ in self.objects], longName=INFO_ATTR, dataType="string")
        for node, o in self.objects:
            set_string(node + "." + INFO_ATTR, json.dumps({k: o[k] for k in _INFO_KEYS if k in o},
                                                          sort_keys=True, separators=(",", ":")))

    def projection_network(self, base: str, image_path: str) -> str:
        """The build's one texture network for the projected look; returns the projection node.

        file (-asTexture, the photo) + place2dTexture (outUV -> uvCoord, outUvFilterSize -> uvFilterSize),
        file.outColor -> projection.image; projection (-asUtility) in perspective mode, linkedCamera <-
        the build's camera shape's message, fitted to the film gate horizontally (the photo fills the
        gate exactly); wrap off and default colour black: outside the photo outAlpha is 0."""
        tex = str(cmds.shadingNode("file", asTexture=True, name=base + "_photo"))
        self.created.append(tex)
        place = str(cmds.shadingNode("place2dTexture", asUtility=True, name=base + "_photo_place2d"))
        self.created.append(place)
        proj = str(cmds.shadingNode("projection", asUtility=True, name=base + "_projection"))
        self.created.append(proj)
        set_string(tex + ".fileTextureName", image_path)
        cmds.connectAttr(place + ".outUV", tex + ".uvCoord")
        cmds.connectAttr(place + ".outUvFilterSize", tex + ".uvFilterSize")
        cmds.connectAttr(tex + ".outColor", proj + ".image")
        cmds.connectAttr(self.camera_shape + ".message", proj + ".linkedCamera")
        set_values(proj + ".projType", PROJ_TYPE_PERSPECTIVE)
        set_values(proj + ".fitType", FIT_FILM_GATE)
        set_values(proj + ".fitFill", FIT_HORIZONTAL)
        set_values(proj + ".wrap", False)
        set_values(proj + ".defaultColor", 0.0, 0.0, 0.0, type="double3")
        self.look_nodes = {"shared": [tex, place, proj], "blends": {}}
        return proj

    def make_shaders(self, base: str, projection: str | None = None) -> list[str]:
        """A Lambert + shading group per distinct colour, its members assigned; returns the Lamberts.

        The documented network, as Hypershade makes it: shadingNode, sets -renderable -noSurfaceShader
        -empty, connectAttr outColor -> surfaceShader; then one sets -forceElement for all the members
        of that colour. Names are `<base>_mtl` / `<base>_SG`, which Maya numbers (`_mtl1`, `_SG1`...).
        With a `projection` node (the projected look) the colour is a blendColors of the projection and
        the mean colour, by the projection's alpha."""
        made: list[str] = []
        for color, members in self.shaders.items():
            shader = str(cmds.shadingNode("lambert", asShader=True, name=base + "_mtl"))
            self.created.append(shader)
            sg = first(cmds.sets(renderable=True, noSurfaceShader=True, empty=True, name=base + "_SG"))
            self.created.append(sg)
            cmds.connectAttr(shader + ".outColor", sg + ".surfaceShader")
            if projection is None:
                set_values(shader + ".color", color[0], color[1], color[2], type="double3")
            else:
                blend = str(cmds.shadingNode("blendColors", asUtility=True, name=base + "_blend"))
                self.created.append(blend)
                cmds.connectAttr(projection + ".outColor", blend + ".color1")
                cmds.connectAttr(projection + ".outAlpha", blend + ".blender")
                set_values(blend + ".color2", color[0], color[1], color[2], type="double3")
                cmds.connectAttr(blend + ".output", shader + ".color")
                self.look_nodes["blends"][shader] = blend
            cmds.sets(*members, forceElement=sg)
            made.append(shader)
        tagged = made + list(self.look_nodes.get("shared", [])) + list(self.look_nodes.get("blends", {}).values())
        if tagged:
            cmds.addAttr(*tagged, longName=owner_attr(self.key), attributeType="bool", defaultValue=1)
        return made

    def discard(self) -> None:
        """Remove whatever this build created so far (after an error)."""
        leftovers = [n for n in self.created if cmds.objExists(n)]
        if leftovers:
            cmds.delete(*leftovers)


def scene_look(scene: Mapping[str, Any], look: str | None = None) -> str:
    """The look to build: `look`, else the scene's own `look.mode` (a scene file exported with one), else
    "color". BuildError for an unknown one."""
    if look is None:
        own = scene.get("look")
        look = str(own.get("mode") or "color") if isinstance(own, Mapping) else "color"
    if look not in LOOKS:
        raise BuildError(f"unknown look {look!r}: use one of {', '.join(LOOKS)}")
    return look


def build(scene: Mapping[str, Any], root_name: str | None = None, replace: bool = True,
          image_path: str | None = None, unit: str | None = None, look: str | None = None) -> str:
    """Build `scene` (a scene@1 dict) in the open Maya scene; returns the root group's name.

    root_name: default `img2maya_<photo stem>`. replace: delete this photo's previous build(s) first
    (and only those). image_path: the photo for the camera's image plane (default: the scene's
    source.image when it exists on disk). unit: override Maya's current linear unit (tests).
    look: "color" (each object its mean colour) or "projection" (the photo projected through the
    build's camera; needs the photo); default: the scene's `look.mode`, else "color".
    """
    if not isinstance(scene, Mapping) or scene.get("schema") != SCHEMA:
        raise BuildError("not an img2maya scene@1 (missing \"schema\": \"img2maya/scene@1\")")
    objects = scene.get("objects")
    if not isinstance(objects, list) or not isinstance(scene.get("camera"), Mapping):
        raise BuildError("the scene has no camera or no objects list")
    look = scene_look(scene, look)
    key = photo_key(scene)
    root = safe_name(root_name) if root_name else default_root_name(scene)
    if image_path is None:
        candidate = str((scene.get("source") or {}).get("image") or "")
        image_path = candidate if candidate and os.path.isfile(candidate) else None
    if look == "projection" and not (image_path and os.path.isfile(image_path)):
        raise BuildError("the projection look needs the photo, and "
                         f"{image_path or (scene.get('source') or {}).get('image') or 'it'} is not there "
                         "(moved or deleted?)")
    with undo_chunk("img2maya build " + root):
        factor = units.metres_to_unit_factor(unit or linear_unit())
        if replace:
            for old in find_builds(key):
                delete_build(old)
        b = _Build(factor, key)
        try:
            items = [b.camera(scene["camera"], root, image_path)]
            items += [b.obj(o) for o in objects]
            b.tag_objects()
            projection = b.projection_network(root, image_path) if look == "projection" and image_path else None
            shaders = b.make_shaders(root, projection)
            root = cmds.group(*items, name=root)
            b.created.append(root)
            cmds.addAttr(root, longName=BUILD_ATTR, dataType="string")
            cmds.addAttr(root, longName=SOURCE_ATTR, dataType="string")
            cmds.addAttr(root, longName=SHADERS_ATTR, dataType="string")
            set_string(root + "." + BUILD_ATTR, key)
            set_string(root + "." + SOURCE_ATTR, str((scene.get("source") or {}).get("image") or ""))
            listed: Any = shaders if projection is None else {"look": look, "shaders": shaders, **b.look_nodes}
            set_string(root + "." + SHADERS_ATTR, json.dumps(listed, sort_keys=True))
        except BaseException:
            b.discard()
            raise
    return root
