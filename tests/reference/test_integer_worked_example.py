"""docs/integer.md's "Worked example: one step by hand" is what the code gives: its Python
block runs and prints what its comments say, and every number of its table is recomputed —
the integer column with the reference (sigmoid_q15, tanh_q15, rounding_rshift), the
"means" column by scaling, the "exact float" column in float64 from the float weights on
the quantized input (an oracle that shares no integer code)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np

from lstmlite.reference.integer import rounding_rshift, sigmoid_q15, tanh_q15

DOC = Path(__file__).resolve().parents[2] / "docs" / "integer.md"


def _section() -> str:
    text = DOC.read_text()
    start = text.index("## Worked example")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def _numbers(cell: str) -> list[float]:
    return [float(n) for n in re.findall(r"[−-]?\d+(?:\.\d+)?", cell.replace("−", "-"))]


def _row(section: str, label: str) -> list[str]:
    line = next(line for line in section.splitlines() if line.startswith(f"| {label}"))
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_the_code_prints_what_its_comments_say():
    block = re.search(r"```python\n(.*?)```", _section(), re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(DOC), "exec"), {})
    printed = out.getvalue().splitlines()
    said = [line.split("#", 1)[1].strip() for line in block.splitlines() if line.startswith("print(")]
    assert len(printed) == len(said) == 2
    for got, doc in zip(printed, said):
        head = _numbers(doc.split("...")[0])  # the comment may elide the rest with "..."
        assert head and _numbers(got)[:len(head)] == head, (got, doc)
        if "..." not in doc:
            assert _numbers(got) == head, (got, doc)
    assert "[[-1368]] [[-1155]]" in printed[-1]


def test_every_number_of_the_table():
    sec = _section()
    w_ih = np.array([0.5, 1.0, -0.25, 0.75])
    x = 64 / 127  # x_q = 64 at s_x = 1/127 (0.5 / s_x = 63.5, half to even)
    assert _numbers(_row(sec, "x_q")[1])[0] == 64 and float(_row(sec, "x_q")[2]) == round(x, 5)
    # gate pre-activations in Q3.12: exact float, the integer the doc shows, what it means
    a_exact = w_ih * x * 4096
    a_doc = _row(sec, "a (Q3.12)")
    a_int = np.array(_numbers(a_doc[1])[-4:], dtype=np.int64)
    np.testing.assert_array_equal(a_int, np.rint(a_exact).astype(np.int64))
    np.testing.assert_allclose(_numbers(a_doc[2]), np.round(a_int / 4096, 4))
    np.testing.assert_allclose(_numbers(a_doc[3]), np.round(a_exact, 2))
    # gates in Q0.15: the reference's tables on the integer pre-activations; exact float from the exact ones
    g_doc = _row(sec, "i, f, g, o")
    gates = np.concatenate([sigmoid_q15(a_int[[0, 1]]), tanh_q15(a_int[[2]]), sigmoid_q15(a_int[[3]])])
    np.testing.assert_array_equal(_numbers(g_doc[1])[-4:], gates)
    np.testing.assert_allclose(_numbers(g_doc[2]), np.round(gates / 32768, 4))
    real = a_exact / 4096
    exact = np.array([1 / (1 + np.exp(-real[0])), 1 / (1 + np.exp(-real[1])), np.tanh(real[2]),
                      1 / (1 + np.exp(-real[3]))]) * 32768
    np.testing.assert_allclose(_numbers(g_doc[3]), np.round(exact, 2))
    # cell (Q1.14, F = 14) and hidden state (Q0.15) from zero state
    i, f, g, o = (int(v) for v in gates)
    c = int(rounding_rshift(np.int64(i * g), 30 - 14))
    c_doc = _row(sec, "c'")
    assert _numbers(c_doc[1])[-1] == c
    assert float(c_doc[2].replace("−", "-")) == round(c / 16384, 5)
    c_exact = exact[0] * exact[2] / 32768 ** 2 * 16384
    assert float(c_doc[3].replace("−", "-")) == round(c_exact, 2)
    h = int(rounding_rshift(np.int64(o * int(tanh_q15(np.array([c]), 14)[0])), 15))
    h_doc = _row(sec, "h'")
    assert _numbers(h_doc[1])[-1] == h == -1368 and c == -1155
    assert float(h_doc[2].replace("−", "-")) == round(h / 32768, 5)
    h_exact = exact[3] / 32768 * np.tanh(c_exact / 16384) * 32768
    assert float(h_doc[3].replace("−", "-")) == round(h_exact, 2)
