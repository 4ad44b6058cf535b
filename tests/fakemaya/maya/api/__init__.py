"""Fake maya.api (only OpenMaya, minimal)."""
