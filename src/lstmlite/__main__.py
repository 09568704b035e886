"""``python -m lstmlite …``: the ``lstmlite`` command (see :mod:`lstmlite.cli.main`)."""

import sys

from .cli.main import main

sys.exit(main())
