"""Run pytest inside an emulated CPU (see test_emulated_cpu.py): the interpreter runs
under ``qemu-x86_64 -cpu MODEL``, so cpuid reports that model's features and every
library (ours, ONNX Runtime, PyTorch) picks the kernels it would pick on that CPU.

oneDNN's JIT-generated code crashes under qemu-user, so PyTorch's mkldnn backend is
turned off first; PyTorch's own ATen kernels remain the oracle.
"""

import sys

import torch

torch.backends.mkldnn.enabled = False

import pytest  # noqa: E402

if __name__ == "__main__":
    sys.exit(pytest.main(sys.argv[1:]))
