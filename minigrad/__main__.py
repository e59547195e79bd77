"""``python -m minigrad ...``: the same as the ``minigrad`` console script."""

import sys

from .app.cli import main

sys.exit(main())
