"""Unit conversions for the Maya side (pure Python, no maya import, so tests need no fake).

Scenes are in metres; Maya stores distances in its current linear unit (centimetres by default, but
a user may switch to m, mm, inches...), and camera film backs in inches.
"""

from __future__ import annotations

# Size of one Maya linear unit in metres, for every name `currentUnit -linear` may return.
_UNIT_METRES = {
    "mm": 0.001, "millimeter": 0.001,
    "cm": 0.01, "centimeter": 0.01,
    "m": 1.0, "meter": 1.0,
    "km": 1000.0, "kilometer": 1000.0,
    "in": 0.0254, "inch": 0.0254,
    "ft": 0.3048, "foot": 0.3048,
    "yd": 0.9144, "yard": 0.9144,
    "mi": 1609.344, "mile": 1609.344,
}

MM_PER_INCH = 25.4


def metres_per_unit(unit: str) -> float:
    """Length of one `unit` in metres; ValueError names the accepted units for anything else."""
    try:
        return _UNIT_METRES[unit.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown linear unit {unit!r}; expected one of: mm cm m km in ft yd mi") from None


def metres_to_unit_factor(unit: str) -> float:
    """Multiply metres by this to get `unit` (100.0 for Maya's default 'cm')."""
    return 1.0 / metres_per_unit(unit)


def metres_to_unit(value: float, unit: str) -> float:
    """A distance in metres expressed in `unit`."""
    return value * metres_to_unit_factor(unit)


def mm_to_inches(mm: float) -> float:
    """Film-back sizes: the scene gives millimetres, Maya's camera attributes are inches."""
    return mm / MM_PER_INCH
