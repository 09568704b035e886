"""Make the shared oracle helpers (``_reference_oracles.py``) importable by the tests
here: the project runs pytest with ``--import-mode=importlib``, which does not put a
test's folder on ``sys.path``. The module name is unique, so nothing is shadowed."""

import sys
from pathlib import Path

_here = str(Path(__file__).resolve().parent)
if _here not in sys.path:
    sys.path.insert(0, _here)
