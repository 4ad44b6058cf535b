"""Shared fixtures: the ../shared folder (models, samples) and the Maya-side import path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IMG2MAYA_SHARED", ROOT.parent / "shared")).resolve()

# The Maya-side package lives in scripts/ (Maya adds it to sys.path through img2maya.mod).
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))


SHARED_FIXTURES = {"shared_dir", "samples_dir", "models_dir"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that uses ../shared through a fixture is marked `shared`, so `make test-fast`
    (-m "not slow and not shared") never needs the folder (the fixtures skip cleanly without it)."""
    for item in items:
        if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.shared)


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path}: put the shared folder beside the project "
                    "(or set IMG2MAYA_SHARED) to run this test")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _need(SHARED, "../shared")


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return _need(SHARED / "samples", "../shared/samples")


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return _need(SHARED / "models", "../shared/models")
