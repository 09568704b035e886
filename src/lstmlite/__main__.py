"""``python -m lstmlite …``: the ``lstmlite`` command (see :mod:`lstmlite.cli.main`); also what
``torchrun -m lstmlite train …`` runs in every process."""

import sys

from .cli.main import main

sys.exit(main())
