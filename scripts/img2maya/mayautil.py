"""Small typed helpers over maya.cmds shared by the builder, the installer and the plug-in.

maya-stubs types most query/create results as broad Unions and `setAttr`'s values as `str`; these
helpers narrow them in one place so the rest of the code stays readable and mypy-clean.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from maya import cmds


def first(result: Any) -> str:
    """The first name returned by a create command (`polyCube` -> [transform, history])."""
    if isinstance(result, (list, tuple)):
        return str(result[0])
    return str(result)


def names(result: Any) -> list[str]:
    """All names returned by a create command (`camera` -> [transform, shape])."""
    if isinstance(result, (list, tuple)):
        return [str(r) for r in result]
    return [str(result)]


def vec3(values: Any, factor: float = 1.0) -> tuple[float, float, float]:
    """Three floats (times `factor`), the type xform's flags want."""
    x, y, z = values
    return (float(x) * factor, float(y) * factor, float(z) * factor)


def set_values(plug: str, *values: Any, **flags: Any) -> None:
    """`setAttr plug v1 v2 ...` with numbers (the stubs declare str positionals only)."""
    cmds.setAttr(plug, *values, **flags)


def set_string(plug: str, value: str) -> None:
    """Set a string attribute (Maya needs type='string')."""
    cmds.setAttr(plug, value, type="string")


def has_attr(node: str, attr: str) -> bool:
    """True when `node` exists and has attribute `attr` (static or dynamic)."""
    return bool(cmds.objExists(node)) and bool(cmds.attributeQuery(attr, node=node, exists=True))


def linear_unit() -> str:
    """Maya's current linear unit, short form ('cm' by default)."""
    return str(cmds.currentUnit(query=True, linear=True))


def is_batch() -> bool:
    """True in mayapy/batch sessions, where no UI (menus, shelves, panels) may be created."""
    return bool(cmds.about(batch=True))


@contextlib.contextmanager
def undo_chunk(name: str) -> Iterator[None]:
    """Everything inside is one undo step; the chunk is closed even when the body raises, otherwise
    Maya's undo queue would stay open and swallow every later action into it."""
    cmds.undoInfo(openChunk=True, chunkName=name)
    try:
        yield
    finally:
        cmds.undoInfo(closeChunk=True)
