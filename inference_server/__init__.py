"""img2maya engine: photo -> (networks) -> analysis -> scene@1 -> builders.

Runs under the system Python, never inside Maya. Heavy frameworks (torch, tensorflow, LiteRT)
are imported lazily by the modules that need them, never at package import.
"""

__version__ = "0.1.0"
SCHEMA_ID = "img2maya/scene@1"
