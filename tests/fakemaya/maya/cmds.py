"""Fake maya.cmds: every attribute is a command checked against maya-stubs (see _fake.py)."""

from __future__ import annotations

from typing import Any

from maya import _fake


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return _fake.command(name)
