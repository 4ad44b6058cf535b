"""img2maya inside Maya: builder, panel and scripting API (no numpy; Qt through Qt.py)."""

__version__ = "0.1.0"
