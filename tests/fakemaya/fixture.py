"""`fake_maya` pytest fixture: tests/fakemaya first on sys.path and a fresh fake scene per test.

Use it from a test module with `from fakemaya.fixture import fake_maya  # noqa: F401` after putting
tests/ on sys.path (pytest's rootdir-relative imports do that for tests/test_*.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FAKE_ROOT = Path(__file__).resolve().parent


def install() -> None:
    """Make `import maya` find the fake (idempotent)."""
    if str(FAKE_ROOT) not in sys.path:
        sys.path.insert(0, str(FAKE_ROOT))


@pytest.fixture
def fake_maya():
    """The fresh fake session (maya._fake.State): inspect .nodes, .calls, .undo_depth..."""
    install()
    from maya import _fake

    state = _fake.reset()
    yield state
    _fake.reset()
