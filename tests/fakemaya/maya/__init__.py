"""Fake `maya` package for tests (see tests/fakemaya/README.md). Not Autodesk's."""
