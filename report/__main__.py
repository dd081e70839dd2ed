"""`python -m report`: the command line lives with the others, in benchmark.cli.report."""

import sys

from benchmark.cli.report import main

sys.exit(main())
