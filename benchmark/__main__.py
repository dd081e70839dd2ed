import sys

from .cli import main

if __name__ == "__main__":  # the runner's worker processes (spawn) import this module too
    sys.exit(main())
