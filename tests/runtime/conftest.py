"""Shared fixtures for the native runtime tests: every kernel level this CPU has."""

from __future__ import annotations

import platform

import numpy as np
import pytest

rt = pytest.importorskip("lstmlite.runtime")

# The kernel tables this CPU runs (every one of rt.ISAS that it has).
ISAS = rt.supported_isas()

# The tables of this machine's architecture: a CPU of that family may have them; the
# other family's can never run here, so they are not even listed as skips.
_MACHINE = platform.machine().lower()
if _MACHINE in ("x86_64", "amd64"):
    ARCH_ISAS = [n for n in rt.ISAS if not n.startswith("neon")]
elif _MACHINE in ("aarch64", "arm64"):
    ARCH_ISAS = ["portable", "neon", "neon-dotprod"]
else:
    ARCH_ISAS = ["portable"]


@pytest.fixture(params=ARCH_ISAS)
def isa(request, restore_isa):
    """Run the test once per kernel table of this architecture (portable, avx2,
    avx2-vnni, avx512, avx512-vnni on x86-64; portable, neon, neon-dotprod on aarch64),
    skipped with the reason where this CPU lacks one."""
    if request.param not in ISAS:
        pytest.skip(f"this CPU lacks {request.param} (it runs {', '.join(ISAS)})")
    rt.set_isa(request.param)  # restore_isa puts the table it found back
    assert rt.isa() == request.param
    yield request.param


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    """max |got - ref| / max |ref|: the 'relative' error the runtime promises."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))


def dynamic_codes(x: np.ndarray, qmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of x as the runtime's dynamic codes, an independent NumPy statement of its
    quantizers: round half to even of x * (qmax / max|row|) in float32, clamped to
    [-qmax, qmax] (int64), and the scales max|row| / qmax; an all-zero row gives zeros."""
    amax = np.abs(x).max(axis=1).astype(np.float32)
    inv = np.divide(np.float32(qmax), amax, out=np.zeros_like(amax), where=amax > 0).astype(np.float32)
    q = np.clip(np.rint((x * inv[:, None]).astype(np.float32)), -qmax, qmax).astype(np.int64)
    return q, (amax / np.float32(qmax)).astype(np.float32)


@pytest.fixture(autouse=True)
def _torch_single_thread():
    """The tiny torch oracles here run fastest on one thread; on a loaded 2-core machine
    torch's thread pool otherwise waits on busy cores (seconds per test)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
