"""``python -m modelreg.cli``: the same entry point as the ``modelreg`` console script."""

import sys

from modelreg.cli import main

sys.exit(main())
