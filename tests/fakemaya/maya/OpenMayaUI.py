"""Fake maya.OpenMayaUI (API 1.0 module, where Maya's MQtUtil lives): there is no Maya main window
outside Maya, so the Qt helpers return None and callers fall back to a top-level widget."""

from __future__ import annotations

from typing import Any


class MQtUtil:
    @staticmethod
    def mainWindow() -> Any:
        return None

    @staticmethod
    def findControl(name: str, *args: Any) -> Any:
        return None

    @staticmethod
    def getCurrentParent() -> Any:
        return None
