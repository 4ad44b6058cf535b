"""`python -m inference_server`: the local inference server Maya starts (see docs/PROTOCOL.md)."""

import sys

from .server import main

if __name__ == "__main__":
    sys.exit(main())
