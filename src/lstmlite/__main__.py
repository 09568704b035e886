"""``python -m lstmlite …`` (what ``torchrun -m lstmlite train …`` runs in every process)."""

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
