"""Fake maya.mel: records evaluated MEL; only the few strings img2maya sends are understood."""

from __future__ import annotations

from maya import _fake


def eval(command: str) -> object:
    _fake.STATE.count("mel.eval")
    _fake.STATE.mel_history.append(command)
    stripped = command.strip().rstrip(";").strip()
    if stripped == "$tmp = $gShelfTopLevel":
        return "ShelfLayout"
    if stripped == "$tmp = $gMainWindow":
        return "MayaWindow"
    if stripped.startswith("loadNewShelf"):
        path = stripped.split('"')[1]
        name = path.replace("\\", "/").rsplit("/", 1)[-1][len("shelf_"):-len(".mel")]
        _fake.STATE.ui[name] = "shelfLayout"
        return name
    return None
