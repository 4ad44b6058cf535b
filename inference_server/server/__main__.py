"""`python -m inference_server.server`: the same as `python -m inference_server`."""

import sys

from .command import main

if __name__ == "__main__":
    sys.exit(main())
