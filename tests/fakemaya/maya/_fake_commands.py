"""Models of the maya.cmds commands img2maya uses (signatures were already checked by _fake.command).

Each function takes the State first, then the command's own arguments; behaviour follows Maya's
documentation for the flags implemented here, and anything else raises rather than pretending.
"""

from __future__ import annotations

import os
from typing import Any

from maya._fake import (
    COMPOUNDS,
    FILM_FIT,
    LINEAR_UNITS,
    SHADING_NODE_FLAGS,
    Node,
    State,
    match,
)


def _shape_name(transform: str) -> str:
    """Maya puts 'Shape' before the transform name's trailing digits: pCube1 -> pCubeShape1."""
    base = transform.rstrip("0123456789")
    return base + "Shape" + transform[len(base):]


def _only(flags: dict, allowed: set[str], cmd: str) -> None:
    """Flags the stubs accept but this fake does not model: fail loudly rather than ignore them."""
    extra = set(flags) - allowed
    if extra:
        raise NotImplementedError(f"fake maya: {cmd}: flags {sorted(extra)} are not modelled")


# ----------------------------------------------------------------------------- creation

_PRIMS = {"polyCube": ("pCube", "cube"), "polyPlane": ("pPlane", "plane"),
          "polyCylinder": ("pCylinder", "cylinder"), "polySphere": ("pSphere", "sphere"),
          "polyCone": ("pCone", "cone")}


def _primitive(cmd: str) -> Any:
    default, kind = _PRIMS[cmd]

    def create(st: State, *args: Any, name: str | None = None, constructionHistory: bool = True,
               **flags: Any) -> list[str]:
        if args or flags.get("query") or flags.get("edit"):
            raise NotImplementedError(f"fake maya: {cmd} query/edit is not modelled")
        t = st.create(name if name else default + "#", "transform")
        shape = st.create(_shape_name(t.name), "mesh", parent=t)
        shape.data.update(flags, primitive=kind)
        st.assign(st.nodes["initialShadingGroup"], [t.name])
        if constructionHistory:
            hist = st.create(cmd + "#", cmd)
            st.connections.append((hist.name + ".output", shape.name + ".inMesh"))
            return [t.name, hist.name]
        return [t.name]

    return create


def camera(st: State, *args: Any, name: str | None = None, edit: bool = False, query: bool = False,
           **flags: Any) -> Any:
    _only(flags, {"focalLength", "horizontalFilmAperture", "verticalFilmAperture", "filmFit",
                  "nearClipPlane", "farClipPlane", "position", "rotation"}, "camera")
    if edit or query:
        node = st.node(args[0])
        shape = node if node.type == "camera" else st.shapes(node)[0]
        if query:
            (flag,) = flags
            return shape.attrs[flag]
        t = shape.parent
    else:
        t = st.create(name or "camera#", "transform")
        shape = st.create(_shape_name(t.name), "camera", parent=t)
    assert t is not None
    for flag, value in flags.items():
        if flag == "filmFit":
            shape.attrs["filmFit"] = FILM_FIT[value]
        elif flag == "position":
            t.attrs.update(zip(COMPOUNDS["translate"], map(float, value)))  # noqa: B905 - lengths checked; runs on Python < 3.10 too
        elif flag == "rotation":
            t.attrs.update(zip(COMPOUNDS["rotate"], map(float, value)))  # noqa: B905 - lengths checked; runs on Python < 3.10 too
        else:
            shape.attrs[flag] = float(value)
    return None if edit else [t.name, shape.name]


def imagePlane(st: State, *args: Any, camera: str | None = None, fileName: str | None = None,
               name: str | None = None, **flags: Any) -> list[str]:
    _only(flags, set(), "imagePlane")
    cam_shape = None
    parent = None
    if camera:
        cam = st.node(camera)
        cam_shape = cam if cam.type == "camera" else st.shapes(cam)[0]
        parent = cam_shape.parent
    t = st.create(name or "imagePlane#", "transform", parent=parent)
    shape = st.create(_shape_name(t.name), "imagePlane", parent=t)
    if fileName is not None:
        shape.attrs["imageName"] = fileName
    if cam_shape is not None:
        used = sum(1 for _, b in st.connections if b.startswith(cam_shape.name + ".imagePlane["))
        st.connections.append((shape.name + ".message", f"{cam_shape.name}.imagePlane[{used}]"))
    return [t.name, shape.name]


def group(st: State, *objs: str, empty: bool = False, name: str | None = None, parent: str | None = None,
          world: bool = False, **flags: Any) -> str:
    _only(flags, {"absolute"}, "group")
    if not objs and not empty:
        raise NotImplementedError("fake maya: group of the selection is not modelled (pass objects or empty)")
    members = [st.node(o) for o in objs]
    g = st.create(name or "group#", "transform", parent=st.node(parent) if parent else None)
    for m in members:
        st.reparent(m, g)
    return g.name


def parent(st: State, *args: str, world: bool = False, **flags: Any) -> list[str]:
    _only(flags, {"absolute", "relative"}, "parent")
    if world:
        objs, target = args, None
    else:
        objs, target = args[:-1], st.node(args[-1])
    if not objs:
        raise RuntimeError("fake maya: parent: nothing to parent")
    for o in objs:
        st.reparent(st.node(o), target)
    return list(objs)


def createNode(st: State, type_: str, name: str | None = None, parent: str | None = None,
               skipSelect: bool = False, **flags: Any) -> str:
    _only(flags, set(), "createNode")
    return st.create(name or type_ + "#", type_, parent=st.node(parent) if parent else None).name


def shadingNode(st: State, type_: str, asShader: bool = False, name: str | None = None, **flags: Any) -> str:
    _only(flags, {"asUtility", "asTexture", "skipSelect"}, "shadingNode")
    if type_ not in SHADING_NODE_FLAGS:
        raise RuntimeError(f"fake maya: shadingNode: unknown (or unmodelled) node type {type_!r}")
    given = [f for f, v in (("asShader", asShader), ("asUtility", flags.get("asUtility")),
                            ("asTexture", flags.get("asTexture"))) if v]
    if len(given) != 1:
        raise RuntimeError("fake maya: shadingNode needs one of asShader/asUtility/asTexture...")
    if given[0] != SHADING_NODE_FLAGS[type_]:
        raise RuntimeError(f"fake maya: shadingNode {type_} is created -{SHADING_NODE_FLAGS[type_]}, not -{given[0]}")
    return st.create(name or type_ + "#", type_).name


def duplicate(st: State, *objs: str, upstreamNodes: bool = False, returnRootsOnly: bool = False,
              name: str | None = None, **flags: Any) -> list[str]:
    """Duplicate DG nodes, as Maya does: every attribute value (dynamic attributes included) is copied,
    with upstreamNodes every node feeding the given ones is duplicated too and the connections among
    the duplicated nodes are copied to the copies; connections to nodes outside (downstream ones) are
    not. New names are the old ones renumbered (lambert2 -> lambert3). Returns the copies of the
    given nodes first, then (unless returnRootsOnly) the copies of the upstream nodes.
    DAG nodes (and sets with members, whose members are upstream DAG nodes in Maya) are not modelled."""
    _only(flags, set(), "duplicate")
    if not objs:
        raise NotImplementedError("fake maya: duplicate of the selection is not modelled")
    if name is not None and len(objs) > 1:
        raise NotImplementedError("fake maya: duplicate -name with several objects is not modelled")
    roots: list[Node] = []
    for o in objs:
        n = st.node(o)
        if n not in roots:
            roots.append(n)
    todo = list(roots)
    upstream: list[Node] = []
    if upstreamNodes:
        feeds: dict[str, list[str]] = {}  # destination node -> source nodes
        for a, b in st.connections:
            feeds.setdefault(b.split(".")[0], []).append(a.split(".")[0])
        seen = {n.name for n in roots}
        while todo:
            node = todo.pop(0)
            for src_name in feeds.get(node.name, []):
                if src_name not in seen:
                    seen.add(src_name)
                    upstream.append(st.nodes[src_name])
                    todo.append(st.nodes[src_name])
    copies: dict[str, Node] = {}
    for i, node in enumerate(roots + upstream):
        if node.is_dag:
            raise NotImplementedError(f"fake maya: duplicate of DAG node {node.name} is not modelled")
        if node.members:
            raise NotImplementedError(f"fake maya: duplicate of set {node.name} with members is not modelled "
                                      "(in Maya -upstreamNodes would duplicate the member geometry)")
        new = st.create(name if (i == 0 and name) else node.name, node.type)
        new.attrs = dict(node.attrs)
        new.dynamic = dict(node.dynamic)
        new.enums = {k: dict(v) for k, v in node.enums.items()}
        new.set_flags = dict(node.set_flags)
        new.data = dict(node.data)
        copies[node.name] = new
    for a, b in list(st.connections) if upstreamNodes else []:  # without it (or -inputConnections): none
        na, pa = a.split(".", 1)
        nb, pb = b.split(".", 1)
        if na in copies and nb in copies:
            st.connections.append((copies[na].name + "." + pa, copies[nb].name + "." + pb))
    wanted = roots if returnRootsOnly else roots + upstream
    return [copies[n.name].name for n in wanted]


def sets(st: State, *items: str, name: str | None = None, renderable: bool = False,
         noSurfaceShader: bool = False, empty: bool = False, forceElement: str | None = None,
         query: bool = False, edit: bool = False, **flags: Any) -> Any:
    _only(flags, set(), "sets")
    if forceElement is not None:
        st.assign(st.node(forceElement), list(items))
        return None
    if query:
        (item,) = items
        node = st.node(item)
        return list(node.members) or None
    if edit:
        raise NotImplementedError("fake maya: sets edit is not modelled (use forceElement)")
    s = st.create(name or ("set#" if not renderable else "shadingEngine#"),
                  "shadingEngine" if renderable else "objectSet")
    s.set_flags.update(renderable=renderable, noSurfaceShader=noSurfaceShader)
    if renderable:  # Maya puts a new shading group in the render partition
        st.join_partition([s], st.nodes["renderPartition"])
    if items and not empty:
        st.assign(s, list(items)) if renderable else s.members.update(dict.fromkeys(items))
    return s.name


def partition(st: State, *set_names: str, addSet: str | None = None, **flags: Any) -> str:
    """Only `partition SET... -addSet PARTITION` is modelled: each set joins the partition (an error
    for a set already in a partition, or a non-renderable set and a render partition)."""
    _only(flags, set(), "partition")
    if addSet is None or not set_names:
        raise NotImplementedError("fake maya: only partition -addSet with sets is modelled")
    part = st.node(addSet)
    if part.type != "partition":
        raise RuntimeError(f"fake maya: {addSet} is not a partition")
    nodes = [st.node(name) for name in set_names]
    for node in nodes:
        if node.type not in ("shadingEngine", "objectSet"):
            raise RuntimeError(f"fake maya: {node.name} is not a set")
    st.join_partition(nodes, part)
    return part.name


# ----------------------------------------------------------------------------- attributes

def _check_value_count(plug: str, base: str, values: tuple) -> None:
    want = len(COMPOUNDS[base]) if base in COMPOUNDS else 1
    if len(values) != want:
        raise RuntimeError(f"fake maya: setAttr {plug}: {want} value(s) expected, got {len(values)}")


def setAttr(st: State, plug: str, *values: Any, type: str | None = None, **flags: Any) -> None:
    _only(flags, {"lock", "keyable", "channelBox"}, "setAttr")
    node, base = st.split_plug(plug)
    if base in node.dynamic:
        kind = node.dynamic[base]
        if kind == "string":
            if type != "string" or len(values) != 1 or not isinstance(values[0], str):
                raise RuntimeError(f"fake maya: setAttr {plug}: a string attribute needs type='string' "
                                   "and one str value")
            node.attrs[base] = values[0]
            return
        if type is not None or len(values) != 1:
            raise RuntimeError(f"fake maya: setAttr {plug}: one number expected")
        if kind == "enum" and int(values[0]) not in node.enums[base]:
            raise RuntimeError(f"fake maya: setAttr {plug}: {values[0]} is not a field of the enum")
        node.attrs[base] = int(values[0]) if kind in ("long", "short", "byte", "enum") else float(values[0])
        return
    if base in COMPOUNDS:
        if type not in (None, "double3", "float3", "double2", "float2"):
            raise RuntimeError(f"fake maya: setAttr {plug}: bad type {type!r}")
        _check_value_count(plug, base, values)
        node.attrs.update(zip(COMPOUNDS[base], map(float, values)))  # noqa: B905 - lengths checked; runs on Python < 3.10 too
        return
    if type is not None and type != "string":
        raise RuntimeError(f"fake maya: setAttr {plug}: bad type {type!r}")
    if len(values) != 1:
        raise RuntimeError(f"fake maya: setAttr {plug}: one value expected")
    current = node.attrs[base]
    if isinstance(current, str) != isinstance(values[0], str) or (isinstance(current, str) and type != "string"):
        raise RuntimeError(f"fake maya: setAttr {plug}: wrong value type")
    node.attrs[base] = values[0]


def getAttr(st: State, plug: str, asString: bool = False, **flags: Any) -> Any:
    _only(flags, set(), "getAttr")
    node, base = st.split_plug(plug)
    if base in COMPOUNDS:
        return [tuple(node.attrs[c] for c in COMPOUNDS[base])]
    if asString:
        if base not in node.enums:
            raise NotImplementedError("fake maya: getAttr -asString is modelled for enum attributes only")
        return node.enums[base][node.attrs[base]]
    return node.attrs.get(base)


def _enum_fields(spec: str) -> dict[int, str]:
    """Maya's -enumName: "a:b:c" numbers fields 0, 1, 2; "a=4:b" gives a=4, b=5 (the count goes on)."""
    fields: dict[int, str] = {}
    value = 0
    for item in spec.split(":"):
        name, sep, number = item.partition("=")
        if sep:
            value = int(number)
        if not name:
            raise RuntimeError(f"fake maya: addAttr: empty enum field name in {spec!r}")
        fields[value] = name
        value += 1
    return fields


def addAttr(st: State, *nodes: str, longName: str | None = None, attributeType: str | None = None,
            dataType: str | None = None, defaultValue: float | None = None, enumName: str | None = None,
            **flags: Any) -> None:
    _only(flags, {"keyable", "hidden", "niceName", "usedAsFilename"}, "addAttr")
    if not longName or (attributeType is None) == (dataType is None):
        raise RuntimeError("fake maya: addAttr needs longName and exactly one of attributeType/dataType")
    kind = dataType or attributeType
    assert kind is not None
    if kind not in ("string", "long", "short", "double", "float", "bool", "message", "byte", "enum"):
        raise RuntimeError(f"fake maya: addAttr: unmodelled type {kind!r}")
    if dataType is not None and defaultValue is not None:
        raise RuntimeError("fake maya: addAttr: defaultValue is for numeric attributes only")
    if (kind == "enum") != (enumName is not None):
        raise RuntimeError("fake maya: addAttr: enumName goes with attributeType='enum' (and only there)")
    fields = _enum_fields(enumName) if enumName is not None else {}
    if fields and int(defaultValue or 0) not in fields:
        raise RuntimeError(f"fake maya: addAttr: default {defaultValue} is not a field of {enumName!r}")
    for name in nodes:
        node = st.node(name)
        if longName in node.attrs or longName in node.dynamic:
            raise RuntimeError(f"fake maya: addAttr: {name} already has an attribute {longName!r}")
        node.dynamic[longName] = kind
        if kind == "string":
            node.attrs[longName] = ""
        elif kind in ("long", "short", "byte", "enum"):
            node.attrs[longName] = int(defaultValue or 0)  # a new attribute holds its default value
        else:
            node.attrs[longName] = defaultValue if defaultValue is not None else 0
        if fields:
            node.enums[longName] = dict(fields)


def attributeQuery(st: State, attr: str, node: str | None = None, exists: bool = False, **flags: Any) -> bool:
    _only(flags, set(), "attributeQuery")
    if not exists or node is None:
        raise NotImplementedError("fake maya: attributeQuery is modelled for -node -exists only")
    n = st.node(node)
    return attr in n.attrs or attr in n.dynamic or (attr in COMPOUNDS and COMPOUNDS[attr][0] in n.attrs)


def connectAttr(st: State, src: str, dst: str, force: bool = False, **flags: Any) -> None:
    _only(flags, set(), "connectAttr")
    st.split_plug(src)
    st.split_plug(dst)
    existing = [c for c in st.connections if c[1] == dst]
    if existing and not force:
        raise RuntimeError(f"fake maya: {dst} is already connected")
    st.connections = [c for c in st.connections if c[1] != dst] + [(src, dst)]


def _membership_connections(st: State) -> list[tuple[str, str]]:
    """Set membership as Maya wires it: a DAG member's instObjGroups[0] -> set.dagSetMembers[i], any
    other member's message -> set.dnSetMembers[i] (the fake keeps members in Node.members)."""
    out = []
    for s in st.nodes.values():
        for i, m in enumerate(s.members):
            member = st.nodes.get(m)
            if member is not None and member.is_dag:
                out.append((m + ".instObjGroups[0]", f"{s.name}.dagSetMembers[{i}]"))
            elif member is not None:
                out.append((m + ".message", f"{s.name}.dnSetMembers[{i}]"))
    return out


def listConnections(st: State, *items: str, source: bool = True, destination: bool = True, plugs: bool = False,
                    connections: bool = False, type: str | None = None, shapes: bool = False,
                    **flags: Any) -> list[str] | None:
    """Like Maya: for each item (a node, a plug, or an array plug meaning all its elements) in turn,
    its connections, to nodes of `type` only when given; a shape on the other side is named by its
    transform unless `shapes`; with `connections` each is a pair [plug on the item, other node (or
    plug with `plugs`)]. Set membership counts as the connections Maya makes for it."""
    _only(flags, set(), "listConnections")
    if type == "lambert":
        raise NotImplementedError("fake maya: listConnections -type lambert (derived types) is not modelled")
    if not items:
        raise NotImplementedError("fake maya: listConnections of the selection is not modelled")
    by_node: dict[str, list[tuple[str, str]]] = {}  # node -> its connections, in connection order
    for a, b in st.connections + _membership_connections(st):
        by_node.setdefault(a.split(".")[0], []).append((a, b))
        if b.split(".")[0] != a.split(".")[0]:
            by_node.setdefault(b.split(".")[0], []).append((a, b))
    out = []
    for item in items:
        node_name = item.split(".")[0]
        if "." in item:
            st.split_plug(item)
        else:
            st.node(node_name)
        for a, b in by_node.get(node_name, []):
            for mine, other, wanted in ((b, a, source), (a, b, destination)):
                if wanted and (mine == item or mine.startswith(item + "[")
                               or ("." not in item and mine.split(".")[0] == node_name)):
                    other_node = st.nodes[other.split(".")[0]]
                    # (Maya also matches derived types; no modelled type has one but blinn < lambert)
                    if type is not None and other_node.type != type:
                        continue
                    if connections:
                        out.append(mine)
                    if plugs:
                        out.append(other)
                    elif other_node.is_dag and other_node.type != "transform" and not shapes \
                            and other_node.parent is not None:
                        out.append(other_node.parent.name)
                    else:
                        out.append(other_node.name)
    return out or None  # Maya returns None, not [], when nothing matches


def xform(st: State, *objs: str, query: bool = False, translation: Any = None, rotation: Any = None,
          scale: Any = None, objectSpace: bool = False, worldSpace: bool = False, **flags: Any) -> Any:
    _only(flags, {"absolute"}, "xform")
    if worldSpace and not query:
        raise NotImplementedError("fake maya: xform -worldSpace is not modelled (groups are identity)")
    nodes = [st.node(o) for o in objs]
    if query:
        for _flag, value, attr in (("translation", translation, "translate"), ("rotation", rotation, "rotate"),
                                  ("scale", scale, "scale")):
            if value:
                return [nodes[0].attrs[c] for c in COMPOUNDS[attr]]
        raise NotImplementedError("fake maya: xform query of that flag is not modelled")
    for n in nodes:
        if n.type != "transform":
            raise RuntimeError(f"fake maya: xform: {n.name} is not a transform")
        for value, attr in ((translation, "translate"), (rotation, "rotate"), (scale, "scale")):
            if value is not None:
                if len(value) != 3:
                    raise RuntimeError("fake maya: xform: three values expected")
                n.attrs.update(zip(COMPOUNDS[attr], map(float, value)))  # noqa: B905 - lengths checked; runs on Python < 3.10 too
    return None


# ----------------------------------------------------------------------------- queries

def objExists(st: State, name: str) -> bool:
    try:
        if "." in name:
            st.split_plug(name)
        else:
            st.node(name)
        return True
    except ValueError:
        return False


def nodeType(st: State, name: str, **flags: Any) -> str:
    _only(flags, set(), "nodeType")
    return st.node(name).type


def ls(st: State, *patterns: str, type: Any = None, assemblies: bool = False, long: bool = False,
       objectsOnly: bool = False, **flags: Any) -> list[str]:
    """Nodes by pattern, type, top level. Plain names (plugs `node.attr` included) come back in the
    given order and names that do not exist are left out, without error, as in Maya."""
    _only(flags, set(), "ls")
    types = None if type is None else ({type} if isinstance(type, str) else set(type))
    out = []
    if any("." in p for p in patterns):
        if any(c in p for p in patterns for c in "*?[|") or types is not None or assemblies or long:
            raise NotImplementedError("fake maya: ls of attributes is modelled for plain plugs only")
        for p in dict.fromkeys(patterns):
            if "." not in p:
                raise NotImplementedError("fake maya: ls mixing plugs and nodes is not modelled")
            try:
                st.split_plug(p)
            except ValueError:
                continue
            out.append(p.split(".")[0] if objectsOnly else p)
        return list(dict.fromkeys(out))
    if patterns and not any(c in p for p in patterns for c in "*?[|"):  # plain names: in the given order
        found = [st.nodes[p] for p in dict.fromkeys(patterns) if p in st.nodes]
        return [st.path(n) if long and n.is_dag else n.name for n in found
                if (types is None or n.type in types)
                and not (assemblies and (n.parent is not None or n.type != "transform"))]
    for node in st.nodes.values():
        if assemblies and (node.parent is not None or node.type != "transform"):
            continue
        if types is not None and node.type not in types:
            continue
        if patterns and not any(match(p.rsplit("|", 1)[-1], node.name) for p in patterns):
            continue
        out.append(st.path(node) if long and node.is_dag else node.name)
    return out


def listRelatives(st: State, *objs: str, children: bool = False, parent: bool = False,
                  allDescendents: bool = False, shapes: bool = False, fullPath: bool = False,
                  type: Any = None, **flags: Any) -> list[str] | None:
    _only(flags, set(), "listRelatives")
    out: list[Node] = []
    for o in objs:
        n = st.node(o)
        if parent:
            out += [n.parent] if n.parent is not None else []
        elif allDescendents:
            out += list(reversed(st.descendants(n)))
        else:
            out += list(n.children)
    if shapes:
        out = [n for n in out if n.type != "transform"]
    if type is not None:
        types = {type} if isinstance(type, str) else set(type)
        out = [n for n in out if n.type in types]
    names = [st.path(n) if fullPath else n.name for n in out]
    return names or None  # Maya returns None, not [], when nothing matches


def delete(st: State, *objs: str, **flags: Any) -> None:
    _only(flags, set(), "delete")
    if not objs:
        raise RuntimeError("fake maya: delete: nothing to delete (the selection is not modelled)")
    nodes = [st.node(o) for o in objs]
    for n in nodes:
        st.delete_node(n, prune=False)
    st.prune_connections()


# ----------------------------------------------------------------------------- session

def undoInfo(st: State, openChunk: bool = False, closeChunk: bool = False, chunkName: str | None = None,
             query: bool = False, state: bool = False, **flags: Any) -> Any:
    _only(flags, set(), "undoInfo")
    if query and state:
        return True
    if openChunk:
        st.undo_depth += 1
        st.undo_opened += 1
    elif closeChunk:
        if st.undo_depth == 0:
            st.undo_errors += 1
        else:
            st.undo_depth -= 1
            st.undo_closed += 1
    else:
        raise NotImplementedError("fake maya: undoInfo: only openChunk/closeChunk/query state are modelled")
    return None


def currentUnit(st: State, query: bool = False, linear: Any = None, fullName: bool = False,
                **flags: Any) -> Any:
    _only(flags, set(), "currentUnit")
    if query:
        if not linear:
            raise NotImplementedError("fake maya: currentUnit query of other units is not modelled")
        long_names = {"mm": "millimeter", "cm": "centimeter", "m": "meter", "km": "kilometer",
                      "in": "inch", "ft": "foot", "yd": "yard", "mi": "mile"}
        return long_names[st.linear_unit] if fullName else st.linear_unit
    if linear not in LINEAR_UNITS:
        raise RuntimeError(f"fake maya: currentUnit: unknown linear unit {linear!r}")
    st.linear_unit = LINEAR_UNITS[linear]
    return None


def about(st: State, batch: bool = False, version: bool = False, apiVersion: bool = False,
          **flags: Any) -> Any:
    _only(flags, set(), "about")
    if batch:
        return st.batch
    if version:
        return "2025"
    if apiVersion:
        return 20250000
    raise NotImplementedError("fake maya: about flag not modelled")


def internalVar(st: State, userAppDir: bool = False, **flags: Any) -> str:
    _only(flags, set(), "internalVar")
    if not userAppDir:
        raise NotImplementedError("fake maya: internalVar flag not modelled")
    return st.user_app_dir


def loadModule(st: State, load: str | None = None, scan: bool = False, allModules: bool = False) -> list[str]:
    if load is None:
        raise NotImplementedError("fake maya: loadModule is modelled for -load only")
    with open(load, encoding="utf-8") as fh:
        first = fh.readline().split()
    name = first[1]
    st.modules[name] = load
    return [name]


def moduleInfo(st: State, listModules: bool = False, path: bool = False, moduleName: str | None = None,
               **flags: Any) -> list[str]:
    _only(flags, set(), "moduleInfo")
    if listModules:
        return list(st.modules)
    if path and moduleName:
        mod = st.modules.get(moduleName)
        return [os.path.dirname(mod)] if mod else []
    raise NotImplementedError("fake maya: moduleInfo flag combination not modelled")


def loadPlugin(st: State, *paths: str, quiet: bool = False, **flags: Any) -> list[str]:
    """A Python plug-in file is really imported and its initializePlugin called, as Maya does."""
    import importlib.util

    from maya.api import OpenMaya

    _only(flags, set(), "loadPlugin")
    out = []
    for p in paths:
        name = os.path.splitext(os.path.basename(p))[0]
        if name in st.plugins:
            out.append(name)
            continue
        if not os.path.isfile(p):
            raise RuntimeError(f"fake maya: plug-in {p} not found")
        spec = importlib.util.spec_from_file_location("_fake_plugin_" + name, p)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not hasattr(module, "maya_useNewAPI"):
            raise RuntimeError(f"fake maya: {p} does not declare maya_useNewAPI (API 2.0)")
        module.initializePlugin(OpenMaya.MObject())
        st.plugins[name] = p
        st.plugin_modules[name] = module
        out.append(name)
    return out


def unloadPlugin(st: State, *names: str, force: bool = False, **flags: Any) -> list[str]:
    from maya.api import OpenMaya

    _only(flags, set(), "unloadPlugin")
    for n in names:
        key = os.path.splitext(os.path.basename(n))[0]
        if key not in st.plugins:
            raise RuntimeError(f"fake maya: plug-in {n} is not loaded")
        st.plugin_modules.pop(key).uninitializePlugin(OpenMaya.MObject())
        st.plugins.pop(key)
    return list(names)


def pluginInfo(st: State, name: str, query: bool = False, loaded: bool = False, edit: bool = False,
               autoload: bool | None = None, **flags: Any) -> Any:
    _only(flags, set(), "pluginInfo")
    key = os.path.splitext(os.path.basename(name))[0]
    if edit and autoload is not None:
        if key not in st.plugins:
            raise RuntimeError(f"fake maya: pluginInfo: {name} is not loaded")
        st.autoload[key] = bool(autoload)
        return None
    if not (query and loaded):
        raise NotImplementedError("fake maya: pluginInfo is modelled for -query -loaded and -edit -autoload")
    return key in st.plugins


def _ui(kind: str) -> Any:
    def ui(st: State, *args: str, exists: bool = False, edit: bool = False, query: bool = False,
           **flags: Any) -> Any:
        if exists:
            return bool(args) and st.ui.get(args[0]) == kind
        if edit or query:
            if not args or args[0] not in st.ui:
                raise RuntimeError(f"fake maya: {kind}: {args[0] if args else '?'} not found")
            return None
        if st.batch:
            raise RuntimeError(f"fake maya: {kind}: no UI in batch mode")
        name = args[0] if args else f"{kind}{len(st.ui) + 1}"
        st.ui[name] = kind
        return name

    return ui


def deleteUI(st: State, *names: str, **flags: Any) -> None:
    _only(flags, {"menu", "layout", "control", "menuItem", "window"}, "deleteUI")
    for n in names:
        if n not in st.ui:
            raise RuntimeError(f"fake maya: deleteUI: object {n!r} not found")
        del st.ui[n]


def optionVar(st: State, **flags: Any) -> Any:
    """Maya preferences: -exists, -query, -remove, -stringValue, -intValue (single values only)."""
    _only(flags, {"exists", "query", "remove", "stringValue", "intValue"}, "optionVar")
    if "exists" in flags:
        return flags["exists"] in st.option_vars
    if "query" in flags:
        return st.option_vars.get(flags["query"], 0)  # Maya answers 0 for a missing optionVar
    if "remove" in flags:
        st.option_vars.pop(flags["remove"], None)
        return None
    for flag, kind in (("stringValue", str), ("intValue", int)):
        if flag in flags:
            name, value = flags[flag]
            if not isinstance(value, kind):
                raise TypeError(f"fake maya: optionVar -{flag} needs a {kind.__name__}, got {value!r}")
            st.option_vars[str(name)] = value
    return None


def warning(st: State, *msg: str, **flags: Any) -> None:
    st.mel_history.append("warning: " + " ".join(msg))


COMMANDS: dict[str, Any] = {name: _primitive(name) for name in _PRIMS}
COMMANDS.update({f.__name__: f for f in (
    camera, imagePlane, group, parent, createNode, shadingNode, duplicate, sets, partition, setAttr, getAttr, addAttr,
    attributeQuery, connectAttr, listConnections, xform, objExists, nodeType, ls, listRelatives, delete,
    undoInfo, currentUnit, about, internalVar, loadModule, moduleInfo, loadPlugin, unloadPlugin,
    pluginInfo, deleteUI, optionVar, warning)})
COMMANDS.update({k: _ui(k) for k in ("menu", "menuItem", "shelfLayout", "shelfButton", "workspaceControl")})
