"""Suite-wide settings.

The suite runs as two pytest-xdist workers on a 2-core machine: one torch thread per
worker avoids oversubscription (tiny models spend most of their time in thread
hand-offs otherwise). Results don't depend on it; CPU kernels are deterministic.
"""

import torch

torch.set_num_threads(1)
