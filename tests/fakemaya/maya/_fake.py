"""The engine behind the fake `maya.cmds`: an in-memory scene plus signature checks from maya-stubs.

Why a fake at all: Maya cannot be installed on CI, and a mock that accepts anything would let a typo'd
flag ship. So every call goes through `check_call`, which compares it with the command's signature as
written in the maya-stubs package (parsed with `ast`, never imported): an unknown command, an unknown
keyword flag (short names included: the stubs list long names only) or extra positional arguments
raise TypeError. Scene behaviour is modelled only as far as img2maya relies on it, following Maya:
unique names with Maya-style numbering, transforms with shapes, DAG parenting, static attributes per
node type (setting an attribute the node type does not have fails), dynamic attributes, connections,
sets with forceElement, duplicate -upstreamNodes of DG networks, enum attributes, undo chunks (balance
checked by tests), current linear unit.
"""

from __future__ import annotations

import ast
import collections
import fnmatch
import os
import re
import sys
from typing import Any

# ----------------------------------------------------------------------------- stub signatures


class Signature:
    """What a command accepts according to maya-stubs."""

    def __init__(self, positional: int, varargs: bool, flags: frozenset[str]) -> None:
        self.positional = positional
        self.varargs = varargs
        self.flags = flags


def stub_path() -> str:
    """The maya-stubs `cmds/__init__.pyi`: $FAKEMAYA_STUBS (for running the fake under another Python,
    e.g. Maya 2022's 3.7-era interpreters), else the installed distribution, else a sys.path scan."""
    override = os.environ.get("FAKEMAYA_STUBS")
    if override:
        return override
    try:
        from importlib import metadata

        dist = metadata.distribution("maya-stubs")
        candidate = str(dist.locate_file("maya-stubs/cmds/__init__.pyi"))
        if os.path.isfile(candidate):
            return candidate
    except Exception:  # noqa: BLE001 - fall back to a path scan
        pass
    for entry in sys.path:
        candidate = os.path.join(entry, "maya-stubs", "cmds", "__init__.pyi")
        if os.path.isfile(candidate):
            return candidate
    raise ImportError("fake maya: the maya-stubs package is not installed (pip install maya-stubs)")


_SIGNATURES: dict[str, Signature] | None = None


def signatures() -> dict[str, Signature]:
    global _SIGNATURES
    if _SIGNATURES is None:
        with open(stub_path(), encoding="utf-8") as fh:
            text = fh.read()
        if sys.version_info < (3, 8):  # noqa: UP036 - Python 3.7 (Maya 2022) has no positional-only syntax
            text = re.sub(r",\s*/\s*(?=[,)])", "", text)
        tree = ast.parse(text)
        out = {}
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                a = node.args
                posonly = getattr(a, "posonlyargs", [])
                out[node.name] = Signature(len(posonly) + len(a.args), a.vararg is not None,
                                           frozenset(k.arg for k in a.kwonlyargs))
        _SIGNATURES = out
    return _SIGNATURES


def check_call(name: str, args: tuple, kwargs: dict) -> None:
    """TypeError unless maya-stubs declares command `name` with these keyword flags."""
    sig = signatures().get(name)
    if sig is None:
        raise UnknownCommand(f"fake maya: maya.cmds has no command {name!r} (not in maya-stubs)")
    for flag in kwargs:
        if flag not in sig.flags:
            hint = " (short flag names are not accepted: use the long name)" if len(flag) <= 3 else ""
            raise TypeError(f"fake maya: {name}() got an unexpected flag {flag!r}{hint}")
    if not sig.varargs and len(args) > sig.positional:
        raise TypeError(f"fake maya: {name}() takes {sig.positional} positional arguments, got {len(args)}")


class UnknownCommand(TypeError, AttributeError):
    """A command maya-stubs does not list (a TypeError, and an AttributeError so hasattr() works)."""


# ----------------------------------------------------------------------------- scene model

COMPOUNDS = {
    "translate": ("translateX", "translateY", "translateZ"),
    "rotate": ("rotateX", "rotateY", "rotateZ"),
    "scale": ("scaleX", "scaleY", "scaleZ"),
    "color": ("colorR", "colorG", "colorB"),
    "outColor": ("outColorR", "outColorG", "outColorB"),
    "transparency": ("transparencyR", "transparencyG", "transparencyB"),
    "size": ("sizeX", "sizeY"),
    "defaultColor": ("defaultColorR", "defaultColorG", "defaultColorB"),
    "color1": ("color1R", "color1G", "color1B"),
    "color2": ("color2R", "color2G", "color2B"),
    "output": ("outputR", "outputG", "outputB"),
}

# Static attributes (long names, defaults) of the node types img2maya creates: like Maya, setAttr on
# an attribute the type does not have is an error.
_TRANSFORM = {"translateX": 0.0, "translateY": 0.0, "translateZ": 0.0, "rotateX": 0.0, "rotateY": 0.0,
              "rotateZ": 0.0, "scaleX": 1.0, "scaleY": 1.0, "scaleZ": 1.0, "visibility": True,
              "rotateOrder": 0, "message": None}
NODE_ATTRS: dict[str, dict[str, Any]] = {
    "transform": _TRANSFORM,
    "mesh": {"visibility": True, "message": None, "instObjGroups": None},
    "camera": {"focalLength": 35.0, "horizontalFilmAperture": 1.41732, "verticalFilmAperture": 0.94488,
               "filmFit": 0, "nearClipPlane": 0.1, "farClipPlane": 10000.0, "orthographic": False,
               "renderable": True, "imagePlane": None, "message": None, "visibility": True},
    "imagePlane": {"imageName": "", "sizeX": 1.41732, "sizeY": 0.94488, "fit": 1, "depth": 100.0,
                   "displayMode": 3, "alphaGain": 1.0, "message": None, "visibility": True},
    "lambert": {"colorR": 0.5, "colorG": 0.5, "colorB": 0.5, "outColorR": 0.0, "outColorG": 0.0,
                "outColorB": 0.0, "transparencyR": 0.0, "transparencyG": 0.0, "transparencyB": 0.0,
                "diffuse": 0.8, "message": None},
    "shadingEngine": {"surfaceShader": None, "volumeShader": None, "displacementShader": None,
                      "dagSetMembers": None, "partition": None, "message": None},
    "partition": {"sets": None, "message": None},
}
NODE_ATTRS["blinn"] = NODE_ATTRS["lambert"]
# The projected look's texture network (attribute names from Maya's node reference: file, place2dTexture,
# projection, blendColors).
NODE_ATTRS.update({
    "file": {"fileTextureName": "", "colorSpace": "sRGB", "uvCoord": None, "uvFilterSize": None,
             "outColorR": 0.0, "outColorG": 0.0, "outColorB": 0.0, "outAlpha": 1.0,
             "defaultColorR": 0.5, "defaultColorG": 0.5, "defaultColorB": 0.5, "message": None},
    "place2dTexture": {"outUV": None, "outUvFilterSize": None, "wrapU": True, "wrapV": True, "message": None},
    "projection": {"projType": 1, "image": None, "linkedCamera": None, "fitType": 1, "fitFill": 0, "wrap": True,
                   "defaultColorR": 0.5, "defaultColorG": 0.5, "defaultColorB": 0.5, "outColorR": 0.0,
                   "outColorG": 0.0, "outColorB": 0.0, "outAlpha": 1.0, "placementMatrix": None, "message": None},
    "blendColors": {"color1R": 1.0, "color1G": 0.0, "color1B": 0.0, "color2R": 0.0, "color2G": 0.0,
                    "color2B": 1.0, "blender": 0.5, "outputR": 0.0, "outputG": 0.0, "outputB": 0.0,
                    "message": None},
})
SHADER_TYPES = {"lambert", "blinn"}
# shadingNode: which classification flag each modelled type takes (as Hypershade creates them)
SHADING_NODE_FLAGS = {"lambert": "asShader", "blinn": "asShader", "file": "asTexture",
                      "place2dTexture": "asUtility", "projection": "asUtility", "blendColors": "asUtility"}
FILM_FIT = {"fill": 0, "horizontal": 1, "vertical": 2, "overscan": 3}
# Linear units the currentUnit command accepts (short and long forms).
LINEAR_UNITS = {"mm": "mm", "millimeter": "mm", "cm": "cm", "centimeter": "cm", "m": "m", "meter": "m",
                "km": "km", "kilometer": "km", "in": "in", "inch": "in", "ft": "ft", "foot": "ft",
                "yd": "yd", "yard": "yd", "mi": "mi", "mile": "mi"}


class Node:
    def __init__(self, name: str, type_: str) -> None:
        self.name = name
        self.type = type_
        self.attrs: dict[str, Any] = dict(NODE_ATTRS.get(type_, {"message": None}))
        self.dynamic: dict[str, str] = {}  # long name -> attributeType / dataType
        self.enums: dict[str, dict[int, str]] = {}  # enum attribute -> {value: field name}
        self.parent: Node | None = None
        self.children: list[Node] = []
        self.members: dict[str, None] = {}  # sets only (ordered)
        self.set_flags: dict[str, bool] = {}
        self.data: dict[str, Any] = {}  # creation parameters (primitive kind, sizes...)

    @property
    def is_dag(self) -> bool:
        return self.type in ("transform", "mesh", "camera", "imagePlane")


class State:
    """One fake Maya session."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.connections: list[tuple[str, str]] = []
        self.calls: collections.Counter[str] = collections.Counter()
        self.undo_depth = 0
        self.undo_opened = 0
        self.undo_closed = 0
        self.undo_errors = 0
        self.linear_unit = "cm"
        self.batch = True
        self.user_app_dir = "/home/user/maya/"
        self.plugins: dict[str, str] = {}
        self.autoload: dict[str, bool] = {}
        self.plugin_modules: dict[str, Any] = {}
        self.modules: dict[str, str] = {}
        self.ui: dict[str, str] = {}
        self.option_vars: dict[str, Any] = {}  # Maya preferences (optionVar)
        self.mel_history: list[str] = []
        self.shading: dict[str, Node] = {}  # shape name -> its shading group (they are exclusive)
        self.fail_on: dict[str, Exception] = {}  # command name -> exception to raise (tests)
        self.fail_after: dict[str, int] = {}  # command name -> calls that succeed before fail_on applies
        for cam in ("persp", "top", "front", "side"):
            t = self.create(cam, "transform")
            self.create(cam + "Shape", "camera", parent=t)
        self.create("lambert1", "lambert")
        self.create("renderPartition", "partition").set_flags["renderable"] = True
        sg = self.create("initialShadingGroup", "shadingEngine")
        sg.set_flags["renderable"] = True
        self.join_partition([sg], self.nodes["renderPartition"])

    # -- helpers
    def count(self, name: str) -> None:
        self.calls[name] += 1
        if name in self.fail_on and self.calls[name] > self.fail_after.get(name, 0):
            raise self.fail_on[name]

    def total_calls(self, exclude: tuple[str, ...] = ()) -> int:
        return sum(n for k, n in self.calls.items() if k not in exclude)

    def unique(self, wanted: str) -> str:
        """Maya-like naming: a trailing '#' becomes a number; a taken name gets the next free number."""
        if "|" in wanted or not re.match(r"^[A-Za-z_][A-Za-z0-9_#]*$", wanted):
            raise RuntimeError(f"fake maya: invalid node name {wanted!r}")
        if wanted.endswith("#"):
            wanted = wanted[:-1]
        elif wanted not in self.nodes:
            return wanted
        base = wanted.rstrip("0123456789")
        digits = wanted[len(base):]
        n = int(digits) + 1 if digits else 1
        while f"{base}{n}" in self.nodes:
            n += 1
        return f"{base}{n}"

    def create(self, name: str, type_: str, parent: Node | None = None) -> Node:
        node = Node(self.unique(name), type_)
        self.nodes[node.name] = node
        if parent is not None:
            self.reparent(node, parent)
        return node

    def node(self, name: str) -> Node:
        short = str(name).split(".")[0].rsplit("|", 1)[-1]
        try:
            return self.nodes[short]
        except KeyError:
            raise ValueError(f"fake maya: No object matches name: {name}") from None

    def reparent(self, node: Node, parent: Node | None) -> None:
        if parent is not None:
            p: Node | None = parent
            while p is not None:
                if p is node:
                    raise RuntimeError(f"fake maya: cannot parent {node.name} under its own descendant")
                p = p.parent
        if node.parent is not None:
            node.parent.children.remove(node)
        node.parent = parent
        if parent is not None:
            parent.children.append(node)

    def path(self, node: Node) -> str:
        parts = []
        n: Node | None = node
        while n is not None:
            parts.append(n.name)
            n = n.parent
        return "|" + "|".join(reversed(parts))

    def shapes(self, node: Node) -> list[Node]:
        return [c for c in node.children if c.type != "transform"]

    def descendants(self, node: Node) -> list[Node]:
        out = []
        for c in node.children:
            out.append(c)
            out.extend(self.descendants(c))
        return out

    def split_plug(self, plug: str) -> tuple[Node, str]:
        if "." not in plug:
            raise ValueError(f"fake maya: {plug!r} is not an attribute")
        name, attr = plug.split(".", 1)
        node = self.node(name)
        base = attr.split("[")[0]
        if base not in node.attrs and base not in COMPOUNDS and base not in node.dynamic:
            raise ValueError(f"fake maya: No object matches name: {plug} ({node.type} has no {base})")
        if base in COMPOUNDS and COMPOUNDS[base][0] not in node.attrs:
            raise ValueError(f"fake maya: No object matches name: {plug} ({node.type} has no {base})")
        return node, base

    def delete_node(self, node: Node, prune: bool = True) -> None:
        """Remove `node` and its descendants; prune=False leaves dangling connections to a later
        prune_connections() (one pass for a batch)."""
        if node.name not in self.nodes:
            return
        dead = {d.name for d in self.descendants(node) + [node]}
        for name in dead:
            self.nodes.pop(name, None)
            self.shading.pop(name, None)
        for s in self.nodes.values():
            if s.members and not dead.isdisjoint(s.members):
                for name in dead.intersection(s.members):
                    s.members.pop(name, None)
        if node.parent is not None:
            node.parent.children.remove(node)
        if prune:
            self.prune_connections()

    def prune_connections(self) -> None:
        """Forget connections to nodes that no longer exist."""
        alive = self.nodes
        self.connections = [(a, b) for a, b in self.connections
                            if a.split(".")[0] in alive and b.split(".")[0] in alive]

    def join_partition(self, set_nodes: list[Node], partition: Node) -> None:
        """set.partition -> partition.sets[next free index] for each set, as Maya wires partition
        membership (a set belongs to at most one partition; render partitions take renderable sets only)."""
        linked = {a for a, _ in self.connections if a.endswith(".partition")}
        prefix = partition.name + ".sets["
        used = {b for _, b in self.connections if b.startswith(prefix)}
        i = 0
        for set_node in set_nodes:
            if partition.set_flags.get("renderable") and not set_node.set_flags.get("renderable"):
                raise RuntimeError(f"fake maya: {set_node.name} is not renderable and cannot join {partition.name}")
            plug = set_node.name + ".partition"
            if plug in linked:
                raise RuntimeError(f"fake maya: {set_node.name} is already in a partition")
            while f"{prefix}{i}]" in used:
                i += 1
            used.add(f"{prefix}{i}]")
            linked.add(plug)
            self.connections.append((plug, f"{prefix}{i}]"))

    def assign(self, sg: Node, items: list[str]) -> None:
        """forceElement: the objects' shapes leave every other shading group and join `sg`."""
        for item in items:
            node = self.node(item)
            targets = self.shapes(node) if node.type == "transform" else [node]
            for shape in targets:
                old = self.shading.get(shape.name)  # every shape enters a shading group through here
                if old is not None and old is not sg:
                    old.members.pop(shape.name, None)
                sg.members[shape.name] = None
                self.shading[shape.name] = sg


STATE = State()


def reset() -> State:
    """A fresh session (default cameras, lambert1, initialShadingGroup); returns it."""
    global STATE
    STATE = State()
    return STATE


# ----------------------------------------------------------------------------- commands

def _implemented() -> dict[str, Any]:
    from maya import _fake_commands

    return _fake_commands.COMMANDS


def command(name: str) -> Any:
    """The callable for `maya.cmds.<name>`: signature-checked, counted, then modelled."""
    signatures_ = signatures()
    if name not in signatures_:
        raise UnknownCommand(f"fake maya: maya.cmds has no command {name!r} (not in maya-stubs)")
    impl = _implemented().get(name)

    def call(*args: Any, **kwargs: Any) -> Any:
        check_call(name, args, kwargs)
        STATE.count(name)
        if impl is None:
            raise NotImplementedError(f"fake maya: {name} is in maya-stubs but not modelled by the fake")
        return impl(STATE, *args, **kwargs)

    call.__name__ = name
    return call


def match(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)
