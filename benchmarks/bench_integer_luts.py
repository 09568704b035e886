"""The integer reference's sigmoid/tanh tables against float64, over every Q3.12 input.

docs/integer.md states the bounds (``SIGMOID_MAX_ERROR_LSB``, ``TANH_MAX_ERROR_LSB``, in
LSB of Q0.15) and quotes the worst errors measured here. The sweep is exhaustive and
deterministic (65,536 inputs, milliseconds), so ``tests/benchmarks/test_bench_integer_luts.py``
recomputes it and fails when the tables change without this file being re-measured.

Sigmoid is compared where |x| < 8 (beyond, SAT E holds the value at 8 − 2^-12, which
docs/integer.md's saturation table covers); tanh over the whole int16 range.

    python benchmarks/bench_integer_luts.py
Writes benchmarks/results/integer-luts.json.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from _common import write_result
from lstmlite.reference.integer import (GATE_FRAC, SIGMOID_MAX_ERROR_LSB, TANH_MAX_ERROR_LSB, sigmoid_q15,
                                        tanh_q15)

Q15 = 2.0 ** 15


def measure() -> list[dict[str, Any]]:
    """One row per function: the worst |table − 2^15 · f(x)| in LSB over every Q3.12 input, and its bound.

    >>> rows = measure(); [r["function"] for r in rows]
    ['sigmoid', 'tanh']
    """
    x = np.arange(-32768, 32768)
    real = x / 2.0 ** GATE_FRAC
    inside = np.abs(real) < 8
    sig = 1.0 / (1.0 + np.exp(-real))  # float64: the oracle, independent of the tables
    err_s = np.abs(sigmoid_q15(x, GATE_FRAC) - Q15 * sig)[inside]
    err_t = np.abs(tanh_q15(x, GATE_FRAC) - Q15 * np.tanh(real))
    return [
        {"function": "sigmoid", "inputs": int(inside.sum()), "max_error_lsb": round(float(err_s.max()), 4),
         "bound_lsb": SIGMOID_MAX_ERROR_LSB},
        {"function": "tanh", "inputs": int(x.size), "max_error_lsb": round(float(err_t.max()), 4),
         "bound_lsb": TANH_MAX_ERROR_LSB},
    ]


def main() -> None:
    rows = measure()
    path = write_result("integer-luts", rows, {"settings": {"gate_frac": GATE_FRAC}})
    for r in rows:
        print(f"{r['function']}: worst {r['max_error_lsb']} LSB over {r['inputs']:,} inputs (bound {r['bound_lsb']})")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
