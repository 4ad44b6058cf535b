"""Third-party code shipped with img2maya so that a stock Maya needs nothing installed.

Qt.py: `Qt.py` here is Qt.py 2.0.7 by Marcus Ottosson and contributors, unmodified, from the PyPI
distribution `Qt.py==2.0.7` (MIT licence: `Qt.py.LICENSE`; provenance and sha256: `README.md`). It is
imported as `img2maya.vendor.Qt` (through `img2maya.qt`), never as a top-level `Qt`, so a studio's own
Qt.py, of any version, is neither shadowed nor used.
"""
