"""img2maya engine: photo -> (networks) -> analysis -> scene@1 -> builders.

Runs under the system Python, never inside Maya. Heavy frameworks (torch, tensorflow, LiteRT)
are imported lazily by the modules that need them, never at package import.
"""



def _version() -> str:
    """The one version source: VERSION beside the package in a checkout, else the installed metadata
    (which setuptools read from that file)."""
    from pathlib import Path

    here = Path(__file__).resolve().parent.parent / "VERSION"
    if here.is_file():
        return here.read_text(encoding="utf-8").strip()
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("img2maya")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _version()
SCHEMA_ID = "img2maya/scene@1"
