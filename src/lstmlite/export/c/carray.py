"""C literals for the generated project: arrays of constants, float literals, identifiers.

Example:
    >>> import numpy as np
    >>> print(c_array("w", np.array([1, -2, 3], np.int8), "int8_t"))
    static const int8_t w[3] = {
        1, -2, 3,
    };
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["c_float", "c_array", "ALIGN_MACRO"]

#: Alignment of the runtime's float buffers (LSL_ALIGN); GCC/Clang only, plain C99 elsewhere.
ALIGN_MACRO = """\
#if defined(__GNUC__) || defined(__clang__)
#define LSTMLITE_ALIGNED __attribute__((aligned(64)))
#define LSTMLITE_ALIGNED4 __attribute__((aligned(4)))
#else
#define LSTMLITE_ALIGNED
#define LSTMLITE_ALIGNED4
#endif"""


def c_float(value: float) -> str:
    """A float32 value as a C ``float`` literal that reads back to the same bits.

    >>> c_float(1.0), c_float(0.1), c_float(-2.5e-08)
    ('1.0f', '0.100000001f', '-2.50000003e-08f')
    """
    v = float(np.float32(value))
    if not math.isfinite(v):
        raise ValueError(f"cannot write a non-finite constant {value}")
    text = f"{v:.9g}"
    if not any(ch in text for ch in ".e"):
        text += ".0"
    return text + "f"


def c_array(name: str, values: np.ndarray, ctype: str, aligned: bool | int = False, per_line: int = 16) -> str:
    """``static const CTYPE NAME[n] = {...};`` of a flattened array (row-major).

    ``aligned`` adds ``LSTMLITE_ALIGNED`` (see :data:`ALIGN_MACRO`), which the float
    runtime's packed panels want; ``aligned=4`` adds ``LSTMLITE_ALIGNED4`` (the integer
    runtime's packed weights, read a word at a time). An empty array is written with one zero (C has no
    empty arrays); its logical size stays in the caller's struct.
    """
    flat = np.asarray(values).reshape(-1)
    if ctype == "float":
        items = [c_float(v) for v in flat]
    else:
        items = [str(int(v)) for v in flat]
    if not items:
        items = ["0"]
    lines = [", ".join(items[i:i + per_line]) + "," for i in range(0, len(items), per_line)]
    attr = " LSTMLITE_ALIGNED4" if aligned == 4 and aligned is not True else (" LSTMLITE_ALIGNED" if aligned else "")
    body = "\n".join("    " + line for line in lines)
    return f"static const {ctype} {name}[{len(items)}]{attr} = {{\n{body}\n}};"
