"""`python -m benchmark.epoch_ratio`: kept as the README's command; the code is in `benchmark.cli.epoch_ratio`."""

import sys

from .cli.epoch_ratio import main

if __name__ == "__main__":
    sys.exit(main())
