"""The C export (lstmlite.export.c) built and run: on the host, and on emulated Cortex-M4
(QEMU mps2-an386, DSP + FPU) and Cortex-M3 (mps2-an385, neither), compared with the
NumPy reference (lstmlite.reference): bit for bit for the integer-only form, within
1e-5 relative for the float forms; plus the memory report against arm-none-eabi-size.

The cross compiler and QEMU come from scripts/system-deps-mcu.txt; a missing tool fails
these tests (never skips them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmlite.compress.quantize.calibrate import effective_params
from lstmlite.export.c import FORMS, UnsupportedForm, export_c
from lstmlite.nn import Forecaster, LanguageModel, SequenceClassifier
from lstmlite.reference import gru_forward, lstm_forward
from lstmlite.reference.integer import integer_lstm_sequence
from lstmlite.reference.integer_gru import integer_gru_sequence
from lstmlite.reference.integer_head import integer_head_forward

TOOLS = ("cc", "make", "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
BOARDS = {"cortex-m4": "mps2-an386", "cortex-m3": "mps2-an385"}


def require_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:  # a failure, not a skip: scripts/install-system-deps.sh installs them
        pytest.fail(f"missing {', '.join(missing)}: run `sh scripts/install-system-deps.sh` "
                    "(scripts/system-deps-mcu.txt)")


def _make(project: Path, *args: str) -> str:
    r = subprocess.run(["make", "-s", *args], cwd=project, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"make {' '.join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def run_example(project: Path, target: str) -> list[list[str]]:
    """Build the example for ``target`` (host, cortex-m4, cortex-m3), run it, and return
    each step's printed outputs."""
    require_tools()
    if target == "host":
        _make(project, "host")
        cmd = [str(project / "build" / "host" / "example")]
    else:
        _make(project, f"CPU={target}", "mcu")
        cmd = ["qemu-system-arm", "-M", BOARDS[target], "-nographic", "-semihosting",
               "-kernel", str(project / "build" / target / "example.elf")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{target}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert r.stdout.rstrip().endswith("done"), r.stdout[-2000:]
    steps = [line.split(":", 1)[1].split() for line in r.stdout.splitlines() if re.match(r"step \d+:", line)]
    run = [line.split(":", 1)[1].split() for line in r.stdout.splitlines() if line.startswith("run:")]
    assert run == [steps[-1]], "lstmlite_model_run must give the last step's output"
    return steps


def as_ints(rows: list[list[str]]) -> np.ndarray:
    return np.array([[int(v) for v in row] for row in rows], dtype=np.int64)


def as_floats(rows: list[list[str]]) -> np.ndarray:
    return np.array([[int(v, 16) for v in row] for row in rows], dtype=np.uint32).view(np.float32)


def _classifier(cell: str, seed: int, **kw) -> SequenceClassifier:
    torch.manual_seed(seed)
    return SequenceClassifier(cell=cell, n_classes=kw.pop("n_classes", 3), **kw).eval()


# ----- integer-only: bit-exact with the NumPy reference --------------------------------------------
def integer_reference(project, x_q: np.ndarray) -> np.ndarray:
    """What the generated C must print at every step: the reference's h, then its head."""
    form = project.integer
    seq = integer_lstm_sequence if form.params.cell == "lstm" else integer_gru_sequence
    h = seq(form.params, x_q[None])[0][0]  # (T, H) int16
    return integer_head_forward(form.head, h) if form.head is not None else h


@pytest.fixture(scope="module")
def integer_lstm(tmp_path_factory):
    """A 2-layer integer-only LSTM classifier (13 features, H=21: sizes that leave column
    tails past the 4-wide DSP loop) with its fixed example input."""
    model = _classifier("lstm", 0, input_size=13, hidden_size=21, num_layers=2)
    rng = np.random.default_rng(1)
    cal = [torch.as_tensor(rng.normal(0, 1.0, (16, 15, 13)), dtype=torch.float32)]
    x = rng.normal(0, 1.2, (15, 13))
    out = tmp_path_factory.mktemp("int_lstm")
    project = export_c(model, out, form="integer", calibration=cal, example=np.zeros((1, 13), np.int16))
    x_q = np.clip(np.rint(x / project.integer.params.input_scale), -127, 127).astype(np.int16)
    project = export_c(model, out, form="integer", calibration=cal, example=x_q)
    return project, x_q


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m3", "host"])
def test_integer_lstm_bit_exact(integer_lstm, target):
    project, x_q = integer_lstm
    got = as_ints(run_example(project.path, target))
    expected = integer_reference(project, x_q)
    assert got.shape == expected.shape == (15, 3)
    np.testing.assert_array_equal(got, expected)


def test_integer_gru_text_model_bit_exact_on_m4(tmp_path):
    """Token input through the integer embedding, a GRU, and a per-step head (a language model);
    3 x 13 = 39 gate rows leave 3 past the DSP path's groups of four."""
    torch.manual_seed(2)
    model = LanguageModel(vocab_size=50, embed_dim=10, cell="gru", hidden_size=13).eval()
    rng = np.random.default_rng(3)
    tokens = rng.integers(1, 50, size=11).astype(np.int32)
    cal = [torch.as_tensor(rng.integers(1, 50, size=(8, 20)))]
    project = export_c(model, tmp_path, form="integer", calibration=cal, example=tokens)
    got = as_ints(run_example(project.path, "cortex-m4"))
    x_q = project.integer.embedding[tokens].astype(np.int16)  # the embedding is the input's quantization
    np.testing.assert_array_equal(got, integer_reference(project, x_q))
    assert got.shape == (11, 50)


def test_integer_tagger_outputs_its_per_frame_head_on_the_host(tmp_path):
    """A tagger (a CTC model: feature frames in, blank + 4 symbols out at every frame) in the
    integer form prints at each step its head's n_classes integer logits on that frame's h
    (the model's own head quantized by quantize_head_integer, applied here to the integer
    reference's h), and those logits dequantized give the float model's frame scores within the
    integer form's rounding and the same greedy CTC transcript. Catches the head dropped for a
    tagger (the project printing the hidden state: H values per step, which the check against a
    headless reference passed)."""
    from lstmlite.ctc import greedy_decode
    from lstmlite.nn import SequenceTagger
    from lstmlite.reference.integer_head import quantize_head_integer

    torch.manual_seed(4)
    model = SequenceTagger(input_size=6, hidden_size=9, n_classes=5).eval()
    rng = np.random.default_rng(4)
    cal = [torch.as_tensor(rng.normal(0, 1.0, (8, 20, 6)), dtype=torch.float32)]
    x = rng.normal(0, 1.0, (12, 6))
    project = export_c(model, tmp_path / "a", form="integer", calibration=cal, example=np.zeros((1, 6), np.int16))
    x_q = np.clip(np.rint(x / project.integer.params.input_scale), -127, 127).astype(np.int16)
    project = export_c(model, tmp_path / "b", form="integer", calibration=cal, example=x_q)
    got = as_ints(run_example(project.path, "host"))
    assert got.shape == (12, 5)
    h = integer_lstm_sequence(project.integer.params, x_q[None])[0][0]
    head = quantize_head_integer(model.head.weight.detach().double().numpy(), model.head.bias.detach().double().numpy())
    np.testing.assert_array_equal(got, integer_head_forward(head, h))
    with torch.no_grad():
        scores = model(torch.as_tensor(x_q[None] * project.integer.params.input_scale, dtype=torch.float32))[0].numpy()
    logits = got * project.info["output_scale"]
    assert np.abs(logits - scores).max() < 0.05 * np.abs(scores).max()
    assert greedy_decode(logits) == greedy_decode(scores)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_integer_form_of_a_pruned_stack_with_uneven_layers(tmp_path, cell):
    """Structured pruning leaves a stack whose layers differ in size (hidden 9 then 5): the
    integer form quantizes each layer at its own size, the project prints the integer
    reference's head outputs exactly, and those logits dequantized are the float model's within
    the integer form's rounding. Catches the quantizer reading one hidden size off layer 0
    ("'weight_ih_l1' has shape (20, 9), expected (36, 9)": no integer export of a pruned stack)."""
    torch.manual_seed(11)
    model = SequenceClassifier(input_size=5, hidden_size=[9, 5], num_layers=2, cell=cell, n_classes=3).eval()
    rng = np.random.default_rng(11)
    cal = [torch.as_tensor(rng.normal(0, 1.0, (8, 12, 5)), dtype=torch.float32)]
    project = export_c(model, tmp_path / "a", form="integer", calibration=cal, example=np.zeros((1, 5), np.int16))
    assert [d.hidden_size for (d,) in project.integer.params.layers] == [9, 5]
    x_q = np.clip(np.rint(rng.normal(0, 1.0, (7, 5)) / project.integer.params.input_scale), -127, 127)
    project = export_c(model, tmp_path / "b", form="integer", calibration=cal, example=x_q.astype(np.int16))
    got = as_ints(run_example(project.path, "host"))
    np.testing.assert_array_equal(got, integer_reference(project, x_q.astype(np.int64)))
    scores = _torch_steps(model, (x_q * project.integer.params.input_scale).astype(np.float32))
    assert np.abs(got * project.info["output_scale"] - scores).max() < 0.02 * np.abs(scores).max()


@pytest.mark.parametrize("cls", [torch.nn.LSTM, torch.nn.GRU])
def test_integer_form_of_a_torch_layer(tmp_path, cls):
    """A torch.nn.LSTM / GRU (what --form auto reads as it is) is converted on entry to the
    integer form too: the project prints the integer reference's h exactly, within the integer
    form's rounding of the torch layer's own h. Catches the calibration failing on the torch
    layer ("calibration needs an lstmlite LSTM or GRU layer, got NoneType")."""
    torch.manual_seed(5)
    layer = cls(3, 6, num_layers=2, batch_first=True).eval()
    project = export_c(layer, tmp_path, form="integer", calibration=[torch.randn(4, 9, 3)])
    got = as_ints(run_example(project.path, "host"))
    np.testing.assert_array_equal(got, integer_reference(project, project.example.astype(np.int64)))
    x = torch.as_tensor(project.example * project.integer.params.input_scale, dtype=torch.float32)
    with torch.no_grad():
        h = layer(x[None])[0][0].numpy()
    assert np.abs(got * 2.0**-15 - h).max() < 0.01 * np.abs(h).max() + 2e-3


def _hand_made_params(cell: str, rng: np.random.Generator, input_size: int, hidden: int, layers: int):
    """Integer parameters no quantizer would make, aimed at the packed kernels' branches:
    requantization shifts below, at and above 32 (the fast path starts at 32), zero
    multipliers, biases and weights that drive accumulators of both signs far into
    SAT A / SAT B, and sizes that leave row and column tails past the groups of four."""
    from lstmlite.reference.integer import IntegerDirection, IntegerRecurrentParams

    gates = 4 if cell == "lstm" else 3
    dirs = []
    for k in range(layers):
        n_in, bits = (input_size, 8) if k == 0 else (hidden, 16)
        rows = gates * hidden

        def mult(n: int, usual: list[int]) -> tuple[np.ndarray, np.ndarray]:
            """Mostly shifts that give Q3.12 values of a useful size, some extreme ones."""
            m = rng.integers(1 << 30, 1 << 31, n)
            m[rng.random(n) < 0.1] = 0
            shift = np.where(rng.random(n) < 0.2, rng.choice([0, 9, 20, 47, 55, 62], n), rng.choice(usual, n))
            return m, shift

        m_ih, s_ih = mult(rows, [29, 30, 31, 32, 33, 34] if bits == 8 else [38, 39, 40, 41, 42])
        m_hh, s_hh = mult(rows, [38, 39, 40, 41, 42])
        if bits == 8:  # m = 2^30 with shift 32..34 divides by 4..16: rounding ties of both signs
            ties = rng.random(rows) < 0.3
            m_ih[ties], s_ih[ties] = 1 << 30, rng.choice([32, 33, 34], ties.sum())
        dirs.append([IntegerDirection(
            w_ih=rng.integers(-127, 128, (rows, n_in)), w_hh=rng.integers(-127, 128, (rows, hidden)),
            b_ih=rng.integers(-(1 << 12), 1 << 12, rows), b_hh=rng.integers(-(1 << 20), 1 << 20, rows),
            m_ih=m_ih, shift_ih=s_ih, m_hh=m_hh, shift_hh=s_hh, cell_frac=int(rng.integers(5, 16)) if cell == "lstm" else 0,
            input_bits=bits, input_scale=0.01 if k == 0 else 2.0**-15,
            w_ih_scale=np.ones(rows), w_hh_scale=np.ones(rows))])
    return IntegerRecurrentParams(cell=cell, layers=dirs)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m3", "host"])
def test_packed_kernels_bit_exact_on_hand_made_parameters(tmp_path, cell, target):
    """The packed layout's int32 requantization, saturations and tails against the NumPy
    reference on parameters that reach every branch (see _hand_made_params)."""
    from lstmlite.export.c import IntegerForm

    rng = np.random.default_rng(7 if cell == "lstm" else 8)
    params = _hand_made_params(cell, rng, input_size=7, hidden=6, layers=2)
    x_q = rng.integers(-127, 128, (12, 7)).astype(np.int16)
    project = export_c(IntegerForm(params), tmp_path, form="integer", example=x_q)
    got = as_ints(run_example(project.path, target))
    expected = integer_reference(project, x_q)
    assert len(np.unique(expected)) > 30  # not a saturated constant: the values move
    shifts = np.concatenate([np.r_[d.shift_ih, d.shift_hh] for (d,) in params.layers])
    assert (shifts < 32).any() and (shifts == 32).any() and (shifts > 32).any()  # every requantization path
    np.testing.assert_array_equal(got, expected)



@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m3", "host"])
def test_packed_kernels_round_negative_ties_away_from_zero(tmp_path, target):
    """The packed step's int32 shift (rrs32) rounds half away from zero for negative values
    too: GRU n-gate recurrent terms of -2^14 make rrs32(r * hn, 15) = -r / 2 a tie whenever
    r is odd, where a shift that rounds half up gives one more."""
    from lstmlite.export.c import IntegerForm

    rng = np.random.default_rng(21)
    params = _hand_made_params("gru", rng, input_size=7, hidden=6, layers=1)
    d, h = params.layers[0][0], 6
    d.w_hh[2 * h:] = 0
    d.b_hh[2 * h:] = -(1 << 14)  # hn = rrs(-2^14 * 2^30, 30) = -2^14 at every step
    d.m_hh[2 * h:], d.shift_hh[2 * h:] = 1 << 30, 30
    x_q = rng.integers(-127, 128, (12, 7)).astype(np.int16)
    project = export_c(IntegerForm(params), tmp_path, form="integer", example=x_q)
    np.testing.assert_array_equal(as_ints(run_example(project.path, target)), integer_reference(project, x_q))

# ----- float forms: within 1e-5 relative of the float reference -------------------------------------
def float_reference(model, x: np.ndarray, cell: str) -> np.ndarray:
    params = effective_params(model.rnn)
    fwd = lstm_forward if cell == "lstm" else gru_forward
    h = fwd(params, x[None].astype(np.float64))[0][0]  # (T, H)
    w, b = model.head.weight.detach().double().numpy(), model.head.bias.detach().double().numpy()
    return h @ w.T + b


def _assert_close(got: np.ndarray, expected: np.ndarray, rtol: float = 1e-5) -> None:
    scale = np.abs(expected).max()
    err = np.abs(got - expected).max()
    assert err <= rtol * scale, f"max abs error {err:.3g} > {rtol} x {scale:.3g}"


@pytest.mark.parametrize("cell,target", [("lstm", "cortex-m4"), ("gru", "cortex-m3"), ("lstm", "host")])
def test_fp32_matches_float_reference(tmp_path, cell, target):
    model = _classifier(cell, 4, input_size=7, hidden_size=10, num_layers=2)
    x = np.random.default_rng(5).normal(size=(9, 7)).astype(np.float32)
    project = export_c(model, tmp_path, form="fp32", example=x)
    got = as_floats(run_example(project.path, target))
    _assert_close(got, float_reference(model, x, cell))


def test_fp32_forecaster_outputs_the_horizon_by_target_rows_in_order(tmp_path):
    """A forecaster (horizon 2, targets 3, no RevIN: the C export refuses it) with its head's bias
    set to 10 j on row j: each step's LSTMLITE_MODEL_OUTPUT_SIZE = 6 outputs are the model's
    (horizon, targets) forecast flattened horizon-major, out[h * 3 + k] = forecast[h, k], as the
    model gives it on the steps so far; with the head's weights zeroed they are exactly 10 (h * 3 + k).
    Catches the head's rows written in another order (target-major) into the generated constants."""
    torch.manual_seed(8)
    model = Forecaster(input_size=4, hidden_size=6, horizon=2, targets=3, instance_norm=False).eval()
    x = np.random.default_rng(8).normal(size=(5, 4)).astype(np.float32)
    with torch.no_grad():
        model.head.bias.copy_(10.0 * torch.arange(6, dtype=torch.float32))
    project = export_c(model, tmp_path / "a", form="fp32", example=x)
    got = as_floats(run_example(project.path, "host"))
    with torch.no_grad():
        forecasts = torch.stack([model(torch.as_tensor(x[None, :t + 1]))[0] for t in range(len(x))])  # (T, 2, 3)
    _assert_close(got, forecasts.reshape(len(x), 6).double().numpy())
    with torch.no_grad():
        model.head.weight.zero_()
    project = export_c(model, tmp_path / "b", form="fp32", example=x)
    np.testing.assert_array_equal(as_floats(run_example(project.path, "host")),
                                  np.tile(10.0 * np.arange(6, dtype=np.float32), (len(x), 1)))


def test_int8_weight_only_matches_reference_of_its_codes(tmp_path):
    """int8 weights with float activations: the reference run with the dequantized codes."""
    from lstmlite.export.lsl import quantize_rows

    model = _classifier("lstm", 6, input_size=5, hidden_size=9)
    x = np.random.default_rng(7).normal(size=(8, 5)).astype(np.float32)
    project = export_c(model, tmp_path, form="int8", example=x)
    got = as_floats(run_example(project.path, "cortex-m4"))
    with torch.no_grad():  # the same per-row rounding the export applied, as floats
        for name, p in list(model.rnn.named_parameters()) + list(model.head.named_parameters()):
            if p.ndim == 2:
                p.copy_(torch.as_tensor(quantize_rows(p.numpy()).dequantize()))
    _assert_close(got, float_reference(model, x, "lstm"))


# ----- the project itself ---------------------------------------------------------------------------
def test_every_header_compiles_twice_pedantic(integer_lstm, tmp_path):
    require_tools()
    project, _ = integer_lstm
    fp32 = export_c(_classifier("gru", 8, input_size=3, hidden_size=4), tmp_path / "f", form="fp32")
    for p in (project.path, fp32.path):
        headers = sorted(h.name for h in p.glob("*.h"))
        src = "".join(f'#include "{h}"\n#include "{h}"\n' for h in headers) + "int main(void) { return 0; }\n"
        twice = tmp_path / f"twice_{p.name}.c"
        twice.write_text(src)
        for cc in ("cc", "arm-none-eabi-gcc"):
            r = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only",
                                "-I", str(p), str(twice)], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        assert {"model.h", "lsl.h"} <= set(headers)


def test_generated_sources_compile_under_the_strictest_warnings(tmp_path):
    """Every .c file of a project of every form (model.c, example.c, the runtime sources copied
    into it, mcu/startup_cortexm.c) compiles with -Wconversion (sign conversions included),
    -Wpedantic and -Wshadow as errors, for the host and the Cortex-M4 (with its DSP paths), so a
    firmware build with those flags takes the whole project. Catches the integer embedding
    lookup's int32 column index added to a size_t (-Wsign-conversion), and the runtime's own
    int32 sizes and indices multiplied into size_t offsets (lsl_model.c, lsl_matrix.c,
    lsl_kern_portable.c, lsl_sparse.c, lsl_int.c), the TFLite form's DSP words in uint32_t where
    ACLE takes int32_t (lsl_tflite.c), and the vector table's stack pointer converted to a
    function pointer (startup_cortexm.c): 20-70 sign conversions a runtime file failed so."""
    require_tools()
    torch.manual_seed(0)
    lm = LanguageModel(vocab_size=20, embed_dim=4, hidden_size=6).eval()
    exports = {"integer": lambda out: export_c(lm, out, form="integer", calibration=[torch.randint(0, 20, (3, 5))]),
               "tflite": lambda out: export_c(_tiny_tflite_params(), out, form="tflite")}
    assert set(FORMS) - {"integer", "tflite"} == {"auto", "fp32", "int8"}  # the float forms: one model each
    flags = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Wconversion", "-Wshadow", "-DLSL_NO_SIMD",
             "-fsyntax-only"]
    for form in FORMS:
        project = exports.get(form, lambda out, f=form: export_c(lm, out, form=f))(tmp_path / form)
        sources = sorted(str(p) for p in project.path.rglob("*.c"))
        assert {"model.c", "example.c", "startup_cortexm.c"} <= {Path(p).name for p in sources}
        assert any(Path(p).name.startswith("lsl_") for p in sources)
        for cc, arch in (("cc", []), ("arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                                                            "-mfpu=fpv4-sp-d16"])):
            r = subprocess.run([cc, *flags, *arch, f"-I{project.path}", *sources], capture_output=True, text=True)
            assert r.returncode == 0, (form, cc, r.stderr[-3000:])


def test_project_holds_only_what_it_needs(integer_lstm):
    """Only lsl_int.c of the runtime; no malloc and no libm (nor any float helper) linked in."""
    require_tools()
    project, _ = integer_lstm
    names = {p.name for p in project.path.iterdir() if p.suffix in (".c", ".h")}
    assert names == {"model.c", "model.h", "example.c", "example_data.h", "lsl_int.c", "lsl.h", "lsl_internal.h"}
    source = (project.path / "model.c").read_text()
    assert "static const int8_t l0_w[" in source and "LSL_INT_PACKED4" in source  # the DSP-ordered weights
    _make(project.path, "CPU=cortex-m3", "size")
    objs = [str(project.path / "build" / "cortex-m3" / o) for o in ("model.o", "lsl_int.o")]  # not example.o
    undefined = subprocess.run(["arm-none-eabi-nm", "-u", *objs], capture_output=True, text=True,
                               check=True).stdout.split()
    assert "lsl_int_step_prechecked" in subprocess.run(["arm-none-eabi-nm", *objs], capture_output=True, text=True).stdout
    allowed = {"memset", "memcpy", "lsl_int_step_prechecked", "lsl_int_dense", "lsl_int_model_check", "lsl_int_state_values",
               "lsl_int_step_bytes"}
    called = {u for u in undefined if not u.endswith(":") and u != "U"}
    assert called <= allowed, called - allowed   # e.g. malloc, expf, or __aeabi_fmul (soft float) would show here


def test_a_missing_tool_fails_never_skips(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "qemu-system-arm" else "/usr/bin/" + name)
    with pytest.raises(pytest.fail.Exception, match="missing qemu-system-arm"):
        require_tools()


def test_unsupported_form_is_one_clear_line(tmp_path):
    model = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2, bidirectional=True)
    for form in ("fp32", "integer"):
        with pytest.raises(UnsupportedForm, match=r"^layer 0: .*nearest supported form: a unidirectional layer$"):
            export_c(model, tmp_path, form=form, calibration=[torch.randn(2, 5, 3)])
    pooled = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2, pooling="mean")
    with pytest.raises(UnsupportedForm, match="nearest supported form: pooling=last"):
        export_c(pooled, tmp_path, form="fp32")
    grouped = SequenceClassifier(input_size=4, hidden_size=8, n_classes=2, cell="glstm")
    with pytest.raises(UnsupportedForm, match=r"^layer 0: .*nearest supported form"):
        export_c(grouped, tmp_path, form="auto")
    projected = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2, rnn_options={"proj_size": 2})
    for form in ("auto", "integer"):  # the integer form named weight_hr_l0 from inside the calibration
        with pytest.raises(UnsupportedForm, match=r"^layer 0: LSTM projection .*nearest supported form: an LSTM"):
            export_c(projected, tmp_path / form, form=form, calibration=[torch.randn(2, 5, 3)])
        assert not (tmp_path / form).exists()


def _lowrank_embedding_model():
    from lstmlite.compress import EmbeddingLowRankConfig, compress_

    model = SequenceClassifier(vocab_size=30, embed_dim=6, hidden_size=8)
    compress_(model, EmbeddingLowRankConfig(rank=2))
    return model.eval()


@pytest.mark.parametrize("case,form,advice", [
    ("grouped", "integer", "cell=lstm, or groups=1"),
    ("grouped", "tflite", "--form integer with cell=lstm, or groups=1"),
    ("revin", "integer", "--form auto with instance_norm=false"),
    ("revin", "tflite", "--form auto with instance_norm=false"),
    ("bidirectional", "tflite", "--form integer with a unidirectional layer"),
    ("fastgrnn", "integer", "--form auto (float activations)"),
    ("fastgrnn", "tflite", "--form auto (float activations)"),
    ("lstm", "tflite", "--form integer (lstmlite's own integer-only arithmetic)"),
    ("linear", "auto", "an lstmlite.nn task model, or an LSTM, GRU or FastGRNN layer (torch.nn.LSTM / GRU too)"),
    ("linear", "integer", "an lstmlite.nn task model, or an LSTM or GRU layer (torch.nn.LSTM / GRU too)"),
    ("lowrank-embedding", "fp32", "--form integer, or a dense embedding (fp32 or int8)"),
])
def test_a_refusal_never_advises_a_form_that_refuses_the_model_too(case, form, advice):
    """Each refusal's nearest supported form is one that takes the model (as it stands, or with
    the change named): where a form is named alone, exporting in it succeeds. Catches the integer
    form sending a grouped LSTM or a forecaster with instance normalisation to --form auto, and
    form tflite sending any model to --form integer, each of which refuses that model too; and a
    module that is no recurrent model refused with no advice (auto) or sent to --form auto."""
    from lstmlite.export.c import memory_of

    model = {"grouped": lambda: SequenceClassifier(input_size=4, hidden_size=8, cell="glstm"),
             "revin": lambda: Forecaster(input_size=3, hidden_size=6, horizon=2),
             "bidirectional": lambda: SequenceClassifier(input_size=3, hidden_size=4, bidirectional=True),
             "fastgrnn": lambda: SequenceClassifier(input_size=3, hidden_size=4, cell="fastgrnn"),
             "lstm": lambda: SequenceClassifier(input_size=3, hidden_size=4),
             "linear": lambda: torch.nn.Linear(3, 4),  # no recurrent model at all
             "lowrank-embedding": _lowrank_embedding_model}[case]()
    cal = ([torch.randint(0, 30, (2, 5))] if case == "lowrank-embedding"
           else [torch.randn(2, 5, 3 if case == "linear" else model.input_size)])
    with pytest.raises(UnsupportedForm) as refused:
        memory_of(model, form=form, calibration=cal)
    assert str(refused.value).endswith(f"; nearest supported form: {advice}"), str(refused.value)
    named = re.fullmatch(r"--form (\w+)(?: \(.*\)|, .*)", advice)
    if named:  # a form named alone takes the model as it is
        memory_of(model, form=named.group(1), calibration=cal)


@pytest.mark.parametrize("form,example,message", [
    ("fp32", np.zeros((4, 2), np.float32), r"\(T, 3\) floats, one row per step; got float32 \(4, 2\)$"),
    ("auto", np.full((2, 3), np.nan), r"\(T, 3\) floats"),
    ("integer", np.full((3, 3), 0.4), r"\(T, 3\) integers in \[-128, 127\]"),
    ("integer", np.full((3, 3), 300), r"\(T, 3\) integers in \[-128, 127\]"),
    ("integer-text", np.array([3, 25]), r"\(T,\) token ids in \[0, 19\]"),
    ("fp32-text", np.zeros((3, 2), np.int32), r"\(T,\) token ids in \[0, 19\]"),
])
def test_an_example_the_project_cannot_read_is_refused(tmp_path, form, example, message):
    """The example program steps through example_data.h LSTMLITE_MODEL_INPUT_SIZE values at a
    time: an example of another width is refused in one line, nothing written, where the project
    was written and its example read past the array's end (4 steps x 3 features from 8 values),
    fractions became integer codes 0 without a word, and codes or token ids out of range made
    the example program fail."""
    torch.manual_seed(0)
    text = form.endswith("-text")
    model = (LanguageModel(vocab_size=20, embed_dim=3, hidden_size=5) if text
             else SequenceClassifier(input_size=3, hidden_size=5, n_classes=3)).eval()
    cal = [torch.randint(0, 20, (2, 4))] if text else [torch.randn(2, 4, 3)]
    with pytest.raises(ValueError, match=r"^the example must be " + message):
        export_c(model, tmp_path / "p", form=form.removesuffix("-text"), calibration=cal, example=example)
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("form,option", [("fp32", {"input_bits": 16}), ("auto", {"input_bits": 16}),
                                         ("integer", {"tflite_kernel": "lite"}), ("int8", {"tflite_kernel": "lite"})])
def test_an_option_of_another_form_is_refused(tmp_path, form, option):
    """input_bits (the integer form's input width) and tflite_kernel (form tflite's) given with a
    form that ignores them are refused in one line by export_c and memory_of, nothing written,
    where the project was made without them (a float project for input_bits=16)."""
    from lstmlite.export.c import memory_of

    model = SequenceClassifier(input_size=3, hidden_size=4).eval()
    name = next(iter(option))
    for call in (lambda: export_c(model, tmp_path / "p", form=form, calibration=[torch.randn(2, 4, 3)], **option),
                 lambda: memory_of(model, form=form, calibration=[torch.randn(2, 4, 3)], **option)):
        with pytest.raises(ValueError, match=rf"^{name} is for form='(integer|tflite)'"):
            call()
    assert not (tmp_path / "p").exists()


def test_importer_only_layers_are_refused_naming_onnx(tmp_path):
    """An imported SimpleRNN / GRUResetBefore (Keras SimpleRNN, GRU reset_after=False) has no C
    form: every form refuses it in one line naming ONNX, the export that has its op, and writes
    nothing. Catches the integer form pointing at --form auto, which refuses the layer too."""
    from lstmlite.importers.layers import GRUResetBefore, SimpleRNN
    from lstmlite.importers._common import assemble_model

    for layer in (SimpleRNN(3, 4), GRUResetBefore(3, 4)):
        model = assemble_model(layer, "classifier", head_weight=torch.zeros(2, 4))
        for form in ("auto", "int8", "integer"):
            with pytest.raises(UnsupportedForm, match=rf"^layer 0: .*not {type(layer).__name__}; "
                                                      r"nearest supported form: ONNX, export_onnx / --format onnx$"):
                export_c(model, tmp_path / form, form=form, calibration=[torch.randn(2, 5, 3)])
            assert not (tmp_path / form).exists()


# ----- memory report against arm-none-eabi-size -----------------------------------------------------
def compiled_size(project: Path, cpu: str) -> tuple[int, int]:
    """(flash, static RAM) of the model's own objects: text + data, data + bss."""
    _make(project, f"CPU={cpu}", "size")
    r = subprocess.run(["make", "-s", f"CPU={cpu}", "size"], cwd=project, capture_output=True, text=True)
    total = [line.split() for line in r.stdout.splitlines() if line.strip().endswith("(TOTALS)")][0]
    text, data, bss = (int(v) for v in total[:3])
    return text + data, data + bss


@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m3"])
def test_memory_report_within_5_percent(integer_lstm, tmp_path, cpu):
    require_tools()
    project, _ = integer_lstm
    fp32 = export_c(_classifier("lstm", 9, input_size=16, hidden_size=32), tmp_path, form="fp32")
    for p in (project, fp32):
        flash, ram = compiled_size(p.path, cpu)
        report = p.memory[cpu]
        assert abs(report.flash - flash) <= 0.05 * flash, (p.form, report.as_dict(), flash)
        assert abs(report.ram_static - ram) <= 0.05 * ram, (p.form, report.as_dict(), ram)
        assert str(report.flash) in (p.path / "README.md").read_text()


def test_memory_tables_equal_a_fresh_measurement():
    """CODE_BYTES and STACK_BYTES are what the runtime compiles to today: the 5 % test
    above lets per-file sizes drift and never sees the stack (a step's deepest frames)."""
    require_tools()
    from lstmlite.export.c.memory import CODE_BYTES, STACK_BYTES, measure

    code, stack = measure()
    fix = "re-measure: python -m lstmlite.export.c.memory, and paste its tables into lstmlite/export/c/memory.py"
    assert code == CODE_BYTES, ({k: (CODE_BYTES.get(k), v) for k, v in code.items() if CODE_BYTES.get(k) != v}, fix)
    assert stack == STACK_BYTES, ({k: (STACK_BYTES.get(k), v) for k, v in stack.items()}, fix)



def _tiny_tflite_params():
    """Hand-made TFLite LSTM parameters (4 units, 3 inputs), as memory.measure() makes them."""
    from lstmlite.reference.tflite_int import TFLiteGate, TFLiteLSTMParams

    gate = TFLiteGate(np.ones((4, 3)), np.ones((4, 4)), np.zeros(4), 1 << 30, -3, 1 << 30, -3)
    return TFLiteLSTMParams(gate, gate, gate, gate, input_zero_point=-128, output_zero_point=0,
                            cell_scale_power=-12, forget_cell_multiplier=1 << 30, forget_cell_shift=-14,
                            input_cell_multiplier=1 << 30, input_cell_shift=-17,
                            output_multiplier=1 << 30, output_shift=-22)


def _case_model(case: str):
    """``(model, calibration)`` of a case named ``FORM-KIND``: a hand-made tflite layer, a
    text classifier (calibrated for the integer form), a compressed GRU (``auto-int4``,
    ``auto-lowrank``) or a 2-layer GRU."""
    calibration = None
    if case == "tflite":
        model = _tiny_tflite_params()
    elif case.endswith("text"):
        torch.manual_seed(3)
        model = SequenceClassifier(vocab_size=40, embed_dim=6, hidden_size=10, n_classes=4).eval()
        calibration = [torch.randint(1, 40, (4, 7))] if case.startswith("integer") else None
    elif case.startswith("auto-"):
        model = _compressed(case.split("-")[1])
    else:
        model = _classifier("gru", 4, input_size=5, hidden_size=9, num_layers=2)
    return model, calibration


@pytest.mark.parametrize("case", ["fp32", "int8", "auto-int4", "auto-lowrank", "auto-text", "integer-text",
                                  "tflite"])
def test_memory_of_is_the_exports_report_without_writing(tmp_path, monkeypatch, case):
    """memory_of (what the search's RAM objective calls) returns the very report export_c
    writes into CProject.memory and the README, for every form and both cores, while
    writing no file and, in the float forms, formatting no constant (a large embedding's
    text takes seconds).
    Planted and failing it: the weights' bytes counted only when the text is formatted
    (memory_of's flash short by every array), memory_of formatting the constants, and
    the wrapper buffers left out of memory_of's scratch."""
    from lstmlite.export.c import CPUS, float_form, memory_of

    model, calibration = _case_model(case)
    form = case.split("-")[0]
    project = export_c(model, tmp_path / "p", form=form, calibration=calibration)
    assert sorted(project.memory) == sorted(CPUS)

    def refuse(*args, **kwargs):
        raise AssertionError("memory_of must neither write a project nor format the weights")

    monkeypatch.setattr("lstmlite.export.c.write_project", refuse)
    monkeypatch.setattr(float_form, "c_array", refuse)
    report = memory_of(model, form=form, calibration=calibration)
    assert {cpu: r.as_dict() for cpu, r in report.items()} == {cpu: r.as_dict() for cpu, r in project.memory.items()}

# ----- the other forms .lsl holds, through the float core (against the model itself) ----------------
def _torch_steps(model, x: np.ndarray) -> np.ndarray:
    """The model's output after each prefix x[:t + 1] (what the C prints at step t)."""
    with torch.no_grad():
        xt = torch.as_tensor(x[None])
        return torch.stack([model(xt[:, :t + 1])[0] for t in range(len(x))]).double().numpy()


def _compressed(kind: str):
    from lstmlite.compress import compress_
    from lstmlite.compress.lowrank.config import LowRankConfig
    from lstmlite.compress.quantize.config import WeightQuantConfig

    model = _classifier("fastgrnn" if kind == "fastgrnn" else "lstm", 10, input_size=6, hidden_size=12)
    if kind == "lowrank":
        compress_(model, LowRankConfig(rank=3))
    if kind == "int4":
        compress_(model, WeightQuantConfig(bits=4))
    return model


def test_fp32_text_classifier_with_embedding_on_m3(tmp_path):
    """Token ids through the float embedding (soft float on the M3), against the model."""
    torch.manual_seed(12)
    model = SequenceClassifier(vocab_size=40, embed_dim=6, hidden_size=10, n_classes=4).eval()
    tokens = np.random.default_rng(13).integers(1, 40, size=9).astype(np.int64)
    project = export_c(model, tmp_path, form="fp32", example=tokens.astype(np.int32))
    got = as_floats(run_example(project.path, "cortex-m3"))
    _assert_close(got, _torch_steps(model, tokens))


@pytest.mark.parametrize("kind,target", [("fastgrnn", "cortex-m4"), ("lowrank", "cortex-m3"), ("int4", "cortex-m4")])
def test_compressed_forms_match_the_model(tmp_path, kind, target):
    model = _compressed(kind)
    x = np.random.default_rng(11).normal(size=(7, 6)).astype(np.float32)
    project = export_c(model, tmp_path, form="auto", example=x)
    got = as_floats(run_example(project.path, target))
    _assert_close(got, _torch_steps(model, x))
    if kind == "lowrank":  # the factors are stored, not their product
        assert "l0_w_hh_u_data" in (project.path / "model.c").read_text()


def test_c_float_literals_read_back_to_the_same_bits():
    """Every weight is written as a decimal literal: it must parse (as a C compiler does,
    correctly rounded to float) to exactly the float32 the model holds."""
    from lstmlite.export.c.carray import c_float

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(2000).astype(np.float32),
                             (rng.standard_normal(500) * 1e-7).astype(np.float32),
                             np.array([0.1, 1 / 3, -2.5e-8, 3.4e38, 1.17549435e-38, 0.0, -0.0], np.float32)])
    for v in values:
        text = c_float(v)
        assert text.endswith("f")
        assert np.float32(float(text[:-1])).tobytes() == v.tobytes(), (v, text)


def test_check_on_host_compares_every_step(monkeypatch):
    """The host check must see a C output that is wrong at any one step, not only at the last."""
    from types import SimpleNamespace

    from lstmlite.export.c import check

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=5, n_classes=4).eval()
    example = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    with torch.no_grad():  # step t's output: the model on the prefix x[:t + 1], by hand
        right = np.stack([model(torch.as_tensor(example[None, :t + 1]))[0].numpy() for t in range(6)])
    project = SimpleNamespace(path="unused", tflite=None, integer=None)
    for step in range(6):
        wrong = right.copy()
        wrong[step, 1] += 0.25
        monkeypatch.setattr(check, "run_host_example", lambda path, keep_as=None, wrong=wrong: wrong)
        error, scale = check.check_on_host(project, model, example)
        assert abs(error - 0.25) < 1e-5, step
        assert scale == pytest.approx(np.max(np.abs(right)), rel=1e-6)
    monkeypatch.setattr(check, "run_host_example", lambda path, keep_as=None: right[:5])
    with pytest.raises(RuntimeError, match="outputs"):  # a missing step is not a pass
        check.check_on_host(project, model, example)


def _small_project(case: str, tmp_path: Path):
    """A small generated project of each family: an integer text classifier, a 2-layer
    fp32 GRU, a hand-made tflite layer."""
    model, calibration = _case_model(case)
    return export_c(model, tmp_path / "p", form=case.split("-")[0], calibration=calibration)


def _host_symbol_bytes(project: Path) -> dict[str, int]:
    """Bytes of model.c's objects as the host compiler lays them out (``nm -S``): ``ram``
    (.bss: the zeroed static state and buffers) and ``const:NAME`` per constant array
    (the host puts the structs of pointers in .data: they are weights, not RAM)."""
    require_tools()
    obj = project / "model_probe.o"
    subprocess.run(["cc", "-std=c99", "-c", "-O0", f"-I{project}", str(project / "model.c"), "-o", str(obj)],
                   check=True, capture_output=True, timeout=120)
    listing = subprocess.run(["nm", "-S", str(obj)], check=True, capture_output=True, text=True).stdout
    ram, const = 0, {}
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 4:
            size, kind, name = int(parts[1], 16), parts[2], parts[3]
            if kind in "bB":
                ram += size
            elif kind in "rR":
                const[name] = size
    return {"ram": ram, **{f"const:{k}": v for k, v in const.items()}}


@pytest.mark.parametrize("case", ["integer-text", "fp32", "tflite"])
def test_memory_report_counts_every_static_byte_the_compiler_places(tmp_path, case):
    """The report's static RAM (state + scratch + model.c's own buffers) equals the sizes
    the host compiler gives model.c's .bss objects (``nm -S``; they hold only
    fixed-width types, so the host's layout is a Cortex-M's), and RAM = that + the
    measured stack of the core it names (STACK_BYTES, which
    test_memory_tables_equal_a_fresh_measurement holds to -fstack-usage). The tflite
    form's weights equal the compiler's sizes of its arrays plus the 32-bit params struct.
    Planted and failing it: the wrapper's buffers left out of the scratch, RAM without
    the stack, the Cortex-M4's stack reported for the M3, and the tflite int32 biases
    counted as 8 bytes each."""
    from lstmlite.export.c.memory import STACK_BYTES
    from lstmlite.export.c.tflite_form import PARAMS_STRUCT_BYTES

    form = case.split("-")[0]
    project = _small_project(case, tmp_path)
    sizes = _host_symbol_bytes(project.path)
    family = {"fp32": "float"}.get(form, form)
    for cpu, report in project.memory.items():
        assert report.ram_static == sizes["ram"], (cpu, report.as_dict(), sizes["ram"])
        assert report.ram == sizes["ram"] + STACK_BYTES[(family, cpu)], (cpu, report.as_dict())
    if case == "tflite":
        arrays = sum(v for k, v in sizes.items() if k.startswith("const:") and k != "const:model")
        assert project.memory["cortex-m4"].weights == arrays + PARAMS_STRUCT_BYTES


@pytest.mark.parametrize("case", ["integer-text", "fp32", "tflite"])
def test_model_h_sizes_are_the_sizeof_of_model_cs_buffers(tmp_path, case):
    """LSTMLITE_MODEL_STATE_BYTES and LSTMLITE_MODEL_WORK_BYTES (what a user reserves or
    reports) are the compiler's sizeof of the state and scratch model.c holds: a probe
    including model.c fails to compile (a negative array size) where they differ.
    Planted and failing it: either #define written off the buffer it names."""
    require_tools()
    project = _small_project(case, tmp_path)
    state = "sizeof hidden + sizeof cell" if case == "tflite" else "sizeof state"
    probe = project.path / "sizes_probe.c"
    probe.write_text('#include "model.c"\n'
                     f"typedef char state_bytes_match[({state}) == LSTMLITE_MODEL_STATE_BYTES ? 1 : -1];\n"
                     "typedef char work_bytes_match[sizeof work == LSTMLITE_MODEL_WORK_BYTES ? 1 : -1];\n")
    r = subprocess.run(["cc", "-std=c99", "-c", f"-I{project.path}", str(probe), "-o", str(tmp_path / "probe.o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


# ----- mutation campaign on export/c: compiled sizes, the API's codes, forms no other test runs ------
def _arm_symbol_bytes(project: Path, cpu: str = "cortex-m4") -> dict[str, tuple[str, int]]:
    """model.o's symbols as arm-none-eabi-gcc lays them out for ``cpu`` (``nm -S``): name ->
    (kind, bytes)."""
    _make(project, f"CPU={cpu}", "size")
    listing = subprocess.run(["arm-none-eabi-nm", "-S", str(project / "build" / cpu / "model.o")], check=True,
                             capture_output=True, text=True).stdout
    return {p[3]: (p[2], int(p[1], 16)) for p in (line.split() for line in listing.splitlines()) if len(p) == 4}


def _object_code_bytes(project: Path, cpu: str) -> int:
    """The code of a project's model objects as arm-none-eabi-size -A gives it: model.o's .text,
    and each runtime object's .text with its constant tables (.rodata, .data)."""
    _make(project, f"CPU={cpu}", "size")
    total = 0
    objs = [o for o in (project / "build" / cpu).glob("*.o") if o.name not in ("example.o", "startup_cortexm.o")]
    assert any(o.name == "model.o" for o in objs) and len(objs) >= 2
    for obj in objs:
        sections = subprocess.run(["arm-none-eabi-size", "-A", str(obj)], check=True, capture_output=True,
                                  text=True).stdout.splitlines()
        kinds = (".text",) if obj.name == "model.o" else (".text", ".rodata", ".data")
        total += sum(int(line.split()[1]) for line in sections if line.startswith(kinds))
    return total


@pytest.mark.parametrize("form", ["integer", "fp32", "tflite"])
def test_memory_report_code_is_the_compiled_code_of_every_object_linked(tmp_path, form):
    """The report's code bytes are the sum, over model.c and exactly the runtime sources the
    project compiles, of what arm-none-eabi-gcc makes of them (arm-none-eabi-size -A), for
    the model memory.measure() builds (its model.c text is the table's). Planted and failing
    it: model.c's own functions left out of the code (looked up under the runtime files'
    key, or missing from the file list); the 5 % check over larger weights let them pass."""
    require_tools()
    torch.manual_seed(0)
    model = _tiny_tflite_params() if form == "tflite" else SequenceClassifier(input_size=3, hidden_size=4, n_classes=2)
    project = export_c(model, tmp_path / "p", form=form,
                       calibration=[torch.randn(2, 4, 3)] if form == "integer" else None)
    for cpu in ("cortex-m4", "cortex-m3"):
        assert project.memory[cpu].code == _object_code_bytes(project.path, cpu), (cpu, project.memory[cpu])


def test_memory_report_as_dict_names_each_figure():
    """as_dict (what the search and benchmarks record) gives each figure under its own name,
    flash and RAM the totals, on hand values. Catches state and scratch swapped."""
    from lstmlite.export.c.memory import MemoryReport

    report = MemoryReport(weights=1000, code=4000, state=128, work=256, stack=300)
    assert report.as_dict() == {"flash": 5000, "weights": 1000, "code": 4000, "ram": 684, "state": 128,
                                "work": 256, "stack": 300}
    assert report.ram_static == 384


def test_integer_weights_are_the_compiled_constants(tmp_path):
    """The integer form's flash for weights is every constant model.c holds as
    arm-none-eabi-gcc lays it out for a Cortex-M4 (``nm -S``: packed weights, biases,
    multipliers and shifts, the lsl_int_direction table of 48-byte structs, the 20-byte
    lsl_int_model, the head and the embedding) plus 3 bytes per layer: the worst-case padding
    of the word-aligned packed weights. Planted and failing it: that padding, a direction's or
    the model struct's bytes, or an int32 array's element size miscounted."""
    require_tools()
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=20, embed_dim=5, hidden_size=6, num_layers=2).eval()
    project = export_c(model, tmp_path / "p", form="integer", calibration=[torch.randint(0, 20, (2, 5))])
    symbols = _arm_symbol_bytes(project.path)
    const = {name: size for name, (kind, size) in symbols.items() if kind in "rRdD"}
    assert {"model", "model_dirs", "l0_w", "l1_w", "head_w", "head_b", "emb_table", "l1_shift_hh"} <= set(const)
    assert const["model_dirs"] == 2 * 48 and const["model"] == 20
    for cpu in ("cortex-m4", "cortex-m3"):
        assert project.memory[cpu].weights == sum(const.values()) + 3 * 2, (cpu, project.memory[cpu], const)


@pytest.mark.parametrize("case", ["fp32-gru2", "int8-lstm", "int8-text", "auto-lowrank"])
def test_float_form_weights_cover_the_compiled_constants(tmp_path, case):
    """The float forms' flash for weights is at least model.o's constant sections as
    arm-none-eabi-gcc lays them out for a Cortex-M4 (``size -A``: .rodata + .data) and at most
    that plus the worst-case padding of the 64-byte-aligned arrays; the lsl_layer (280 bytes),
    lsl_model (84) and low-rank factor pairs (2 x 36) are their compiled sizes (``nm -S``).
    Before, lsl_layer was counted as 200 bytes and lsl_model as 120: a 2-layer GRU's report
    (4,676) fell short of the compiled constants (4,768)."""
    require_tools()
    from lstmlite.compress import LowRankConfig, compress_
    from lstmlite.export.c.float_form import ALIGN

    torch.manual_seed(0)
    form, kind = case.split("-")
    if kind == "text":
        model = LanguageModel(vocab_size=20, embed_dim=5, hidden_size=6).eval()
    elif kind == "lowrank":
        model = SequenceClassifier(input_size=16, hidden_size=24, n_classes=3).eval()
        compress_(model, LowRankConfig(rank=4))
    else:
        model = SequenceClassifier(input_size=5, hidden_size=7, num_layers=2 if kind == "gru2" else 1,
                                   cell="gru" if kind == "gru2" else "lstm", n_classes=3).eval()
    project = export_c(model, tmp_path / "p", form=form)
    symbols = _arm_symbol_bytes(project.path)
    const = {name: size for name, (kind_, size) in symbols.items() if kind_ in "rRdD"}
    layers = 2 if kind == "gru2" else 1
    assert const["model_layers"] == 280 * layers and const["model"] == 84
    assert all(size == 72 for name, size in const.items() if name.endswith("_factors"))
    assert (kind == "lowrank") == any(name.endswith("_factors") for name in const)
    sections = subprocess.run(["arm-none-eabi-size", "-A", str(project.path / "build" / "cortex-m4" / "model.o")],
                              check=True, capture_output=True, text=True).stdout.splitlines()
    compiled = sum(int(line.split()[1]) for line in sections if line.startswith((".rodata", ".data")))
    assert compiled >= sum(const.values())
    aligned = sum(name.endswith(("_data", "_scale", "_wsum")) for name in const)
    for cpu in ("cortex-m4", "cortex-m3"):
        weights = project.memory[cpu].weights
        assert compiled <= weights <= compiled + (ALIGN - 1) * aligned, (cpu, weights, compiled, aligned)


@pytest.mark.parametrize("case", ["integer", "integer-text", "fp32-gru", "int8-text", "auto-lowrank", "auto-fastgrnn"])
def test_scratch_is_what_the_runtime_asks_for(tmp_path, case):
    """LSTMLITE_MODEL_WORK_BYTES, the scratch model.c reserves and the report counts, is what
    the compiled runtime asks for (lsl_int_step_bytes / lsl_model_step_bytes on the model):
    not less (init would fail) and not more (RAM a device pays for nothing). Planted and failing
    it: the integer form's gate rows or activation vector counted once too often, the float
    form's gate buffers, its activation scratch of an int8 matrix or a low-rank product's
    intermediate counted too large."""
    require_tools()
    torch.manual_seed(1)
    form, kind = (case.split("-") + [""])[:2]
    calibration = None
    if kind == "text":
        model = (LanguageModel(vocab_size=20, embed_dim=5, hidden_size=6) if form == "integer"
                 else SequenceClassifier(vocab_size=20, embed_dim=5, hidden_size=20, n_classes=3)).eval()
        # hidden 20: an int8 matrix's three activation planes (3 x kpad bytes) pass 64
        calibration = [torch.randint(0, 20, (2, 4))]
    elif kind == "lowrank":
        from lstmlite.compress import compress_
        from lstmlite.compress.lowrank.config import LowRankConfig

        model = SequenceClassifier(input_size=6, hidden_size=24, n_classes=3).eval()
        compress_(model, LowRankConfig(rank=20))  # the product's intermediate (4 x rank bytes) passes 64
    else:
        cell = {"gru": "gru", "fastgrnn": "fastgrnn"}.get(kind, "lstm")
        model = SequenceClassifier(input_size=5, hidden_size=[7, 3], num_layers=2, cell=cell, n_classes=3).eval()
        calibration = [torch.randn(2, 4, 5)]
    project = export_c(model, tmp_path / "p", form=form, calibration=calibration if form == "integer" else None)
    fn = "lsl_int_step_bytes" if form == "integer" else "lsl_model_step_bytes"
    (project.path / "probe.c").write_text(
        '#include <stdio.h>\n#include "model.c"\n'
        f'int main(void) {{ printf("%lu %lu\\n", (unsigned long){fn}(&model, 1), '
        "(unsigned long)LSTMLITE_MODEL_WORK_BYTES); return 0; }\n")
    sources = [str(p) for p in sorted(project.path.glob("lsl*.c"))]
    subprocess.run(["cc", "-std=c99", "-DLSL_NO_SIMD", f"-I{project.path}", str(project.path / "probe.c"), *sources,
                    "-o", str(project.path / "probe"), "-lm"], check=True, capture_output=True, timeout=120)
    asked, reserved = (int(v) for v in subprocess.run([str(project.path / "probe")], check=True, capture_output=True,
                                                      text=True).stdout.split())
    assert asked == reserved == project.info["work_bytes"], (asked, reserved)


def test_tflite_params_struct_is_the_compiled_struct(tmp_path):
    """PARAMS_STRUCT_BYTES, the flash the report gives the tflite form's const
    lsl_tflite_params, is its size as arm-none-eabi-gcc lays it out (the ``model`` symbol).
    Catches a miscounted struct (the host test adds the constant to both sides)."""
    from lstmlite.export.c.tflite_form import PARAMS_STRUCT_BYTES

    require_tools()
    project = export_c(_tiny_tflite_params(), tmp_path / "p", form="tflite")
    assert _arm_symbol_bytes(project.path)["model"][1] == PARAMS_STRUCT_BYTES


@pytest.mark.parametrize("case", ["fp32", "fp32-text", "integer", "integer-text", "tflite"])
def test_the_api_returns_its_documented_error_codes(tmp_path, case):
    """model.h's contract, run on the host: a step or run before lstmlite_model_init is
    LSTMLITE_ERR_NOT_READY, a NULL input or fewer than one step LSTMLITE_ERR_ARG, a token id
    outside [0, LSTMLITE_MODEL_VOCAB_SIZE) LSTMLITE_ERR_TOKEN (both ends), the last id and a
    NULL out fine. Planted and failing it: the float form's ready check dropped, the integer
    form's NULL check dropped, run accepting 0 steps, and the token bound off by one."""
    require_tools()
    torch.manual_seed(0)
    form = case.split("-")[0]
    text = case.endswith("-text")
    model = (_tiny_tflite_params() if form == "tflite" else
             LanguageModel(vocab_size=9, embed_dim=3, hidden_size=4).eval() if text else
             SequenceClassifier(input_size=3, hidden_size=4, n_classes=2).eval())
    cal = [torch.randint(0, 9, (2, 4))] if text else [torch.randn(2, 4, 3)]
    project = export_c(model, tmp_path / "p", form=form, calibration=cal if form == "integer" else None)
    tokens = """
    x[0] = LSTMLITE_MODEL_VOCAB_SIZE; printf("%d ", lstmlite_model_step(x, out));
    x[0] = -1; printf("%d ", lstmlite_model_step(x, out));
    x[0] = LSTMLITE_MODEL_VOCAB_SIZE - 1; printf("%d ", lstmlite_model_step(x, out));
    printf("%d ", lstmlite_model_run(x, 1, out));""" if text else ""
    (project.path / "api.c").write_text(f"""
#include <stdio.h>
#include "model.h"
int main(void) {{
    lstmlite_input_t x[3 * LSTMLITE_MODEL_INPUT_SIZE] = {{0}};
    lstmlite_output_t out[LSTMLITE_MODEL_OUTPUT_SIZE];
    printf("%d ", lstmlite_model_step(x, out));
    printf("%d ", lstmlite_model_run(x, 2, out));
    printf("%d ", lstmlite_model_init());
    printf("%d ", lstmlite_model_step(NULL, out));
    printf("%d ", lstmlite_model_run(NULL, 1, out));
    printf("%d ", lstmlite_model_run(x, 0, out));
    printf("%d ", lstmlite_model_step(x, NULL));
    printf("%d ", lstmlite_model_run(x, 3, out));{tokens}
    return 0;
}}
""")
    sources = ["api.c", "model.c", *sorted(p.name for p in project.path.glob("lsl*.c"))]
    build = subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-DLSL_NO_SIMD", "-o", "api", *sources,
                            "-lm"], cwd=project.path, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    got = [int(v) for v in subprocess.run([str(project.path / "api")], capture_output=True, text=True, check=True,
                                          timeout=60).stdout.split()]
    ok, arg, token, not_ready = 0, -1, -5, -20
    assert got == [not_ready, not_ready, ok, arg, arg, arg, ok, ok] + ([token, token, ok, ok] if text else []), got


def test_integer_form_refuses_a_pooled_classifier(tmp_path):
    """The project runs step by step and gives the head the last step's h: a classifier pooled
    over time (mean / max) is refused by the integer form too, in one line, before calibrating,
    nothing written. Catches an integer project that silently computed pooling=last."""
    from lstmlite.export.c import memory_of

    model = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2, pooling="mean").eval()
    for call in (lambda: export_c(model, tmp_path / "p", form="integer", calibration=[torch.randn(2, 5, 3)]),
                 lambda: memory_of(model, form="integer", calibration=[torch.randn(2, 5, 3)])):
        with pytest.raises(UnsupportedForm, match=r"^head: pooling='mean' .*nearest supported form: pooling=last$"):
            call()
    assert not (tmp_path / "p").exists()


def test_an_integer_gru_project_passes_the_host_check_exactly(tmp_path):
    """check_on_host (what `lstmlite export --form integer` runs) compares an integer GRU's
    project with the integer GRU reference: difference 0, and what it prints is the
    reference's h (integer_gru_sequence, computed here). Catches the check running the LSTM
    reference on every integer project (a GRU export then failed, or was held to the wrong
    numbers)."""
    from lstmlite.export.c.check import check_on_host
    from lstmlite.reference.integer_gru import integer_gru_sequence

    require_tools()
    torch.manual_seed(3)
    layer = torch.nn.GRU(3, 5, batch_first=True).eval()
    project = export_c(layer, tmp_path / "p", form="integer", calibration=[torch.randn(4, 6, 3)])
    error, scale = check_on_host(project, layer, project.example)
    assert error == 0 and scale > 0
    h = integer_gru_sequence(project.integer.params, project.example.astype(np.int64)[None])[0][0]
    np.testing.assert_array_equal(as_ints(run_example(project.path, "host")), h)


def _bound_params(extra: int):
    """A one-layer integer LSTM (3 inputs, 1 unit) whose gate row 0's int32 bound
    sum|w_ih| * 128 + |b_ih| is 2^31 - 1 + extra; the recurrent rows stay small."""
    from lstmlite.reference.integer import IntegerDirection, IntegerRecurrentParams

    w_ih = np.zeros((4, 3), np.int64)
    w_ih[0] = 127
    b_ih = np.zeros(4, np.int64)
    b_ih[0] = 2**31 - 1 + extra - 3 * 127 * 128
    d = IntegerDirection(w_ih=w_ih, w_hh=np.ones((4, 1), np.int64), b_ih=b_ih, b_hh=np.zeros(4, np.int64),
                         m_ih=np.full(4, 1 << 30), shift_ih=np.full(4, 40), m_hh=np.full(4, 1 << 30),
                         shift_hh=np.full(4, 40), cell_frac=12, input_bits=8, input_scale=0.01,
                         w_ih_scale=np.ones(4), w_hh_scale=np.ones(4))
    return IntegerRecurrentParams(cell="lstm", layers=[[d]])


def test_the_int32_bound_is_refused_exactly_where_the_device_refuses_it(tmp_path):
    """A row whose worst-case accumulator (every int8 input at -128) passes 2^31 - 1 by one (the
    bias raised in place after IntegerDirection checked it) is refused by the generator, naming
    the row, nothing written; at 2^31 - 1 exactly it is exported, and the
    device's own check (lsl_int_model_check in init) takes it and runs it. Catches the bound
    taken with 64 as the largest int8 input, or against 2^32."""
    from lstmlite.export.c import IntegerForm

    require_tools()
    over = _bound_params(0)
    over.layers[0][0].b_ih[0] += 1  # edited in place, as a hand-made parameter set is (past its own check)
    with pytest.raises(ValueError, match=r"^layer 0 weight_ih: row 0 could overflow the int32 accumulator"):
        export_c(IntegerForm(over), tmp_path / "over", form="integer")
    assert not (tmp_path / "over").exists()
    x_q = np.full((3, 3), -128, np.int16)
    project = export_c(IntegerForm(_bound_params(0)), tmp_path / "p", form="integer", example=x_q)
    np.testing.assert_array_equal(as_ints(run_example(project.path, "host")), integer_reference(project, x_q))


def test_int8_text_classifier_matches_the_model_of_its_codes(tmp_path):
    """int8 weights with an int8 embedding (codes and a float scale per token row): the host
    build prints, at every step, what the model with every matrix (embedding included) rounded
    to the export's int8 codes gives (check.int8_reference, PyTorch). Catches the embedding's
    row scales written wrong (no other test runs an int8 embedding)."""
    from lstmlite.export.c.check import int8_reference

    torch.manual_seed(14)
    model = SequenceClassifier(vocab_size=30, embed_dim=6, hidden_size=8, n_classes=4).eval()
    tokens = np.random.default_rng(14).integers(0, 30, size=7).astype(np.int32)
    project = export_c(model, tmp_path, form="int8", example=tokens)
    assert "emb_scale" in (project.path / "model.c").read_text()
    got = as_floats(run_example(project.path, "host"))
    _assert_close(got, _torch_steps(int8_reference(model), tokens.astype(np.int64)))


def test_fp32_form_of_a_quantized_model_stores_float_weights(tmp_path):
    """--form fp32 of a model compressed to int4 codes writes every matrix as float panels (the
    codes dequantized; no int8 array in model.c, LSL_F32 matrices), and the project still
    computes the model. Catches fp32 exporting the model's codes as they are (what auto does)."""
    model = _compressed("int4")
    x = np.random.default_rng(2).normal(size=(5, 6)).astype(np.float32)
    project = export_c(model, tmp_path, form="fp32", example=x)
    source = (project.path / "model.c").read_text()
    assert "LSL_I8" not in source and "int8_t" not in source and "LSL_F32" in source
    assert project.info["matrices"] and all(": fp32 " in m for m in project.info["matrices"])
    _assert_close(as_floats(run_example(project.path, "host")), _torch_steps(model, x))


def test_integer_text_model_with_16_bit_inputs_keeps_its_embedding_codes(tmp_path):
    """input_bits=16 for a token model: the embedding's int16 codes (beyond int8's range) reach
    the first layer as they are; the host build prints the integer reference's head outputs on
    them. Catches the embedding table written as int8_t (its codes wrapped)."""
    require_tools()
    torch.manual_seed(6)
    model = LanguageModel(vocab_size=12, embed_dim=4, hidden_size=5).eval()
    tokens = np.random.default_rng(6).integers(0, 12, size=6).astype(np.int32)
    project = export_c(model, tmp_path, form="integer", calibration=[torch.randint(0, 12, (3, 6))], example=tokens,
                       input_bits=16)
    assert np.abs(project.integer.embedding).max() > 127
    x_q = project.integer.embedding[tokens].astype(np.int64)
    np.testing.assert_array_equal(as_ints(run_example(project.path, "host")), integer_reference(project, x_q))


def test_integer_output_scale_define_turns_the_printed_logits_into_the_models(tmp_path):
    """LSTMLITE_MODEL_OUTPUT_SCALE, as a firmware reads it from model.h, turns the integer
    project's head accumulators into logits: out * scale computed in C is the float model's
    output within the integer form's rounding, and the same class at every step. Catches the
    define written from another scale."""
    require_tools()
    torch.manual_seed(9)
    model = SequenceClassifier(input_size=4, hidden_size=8, n_classes=3).eval()
    rng = np.random.default_rng(9)
    cal = [torch.as_tensor(rng.normal(0, 1.0, (8, 10, 4)), dtype=torch.float32)]
    project = export_c(model, tmp_path / "a", form="integer", calibration=cal, example=np.zeros((1, 4), np.int16))
    scale_in = project.integer.params.input_scale
    x_q = np.clip(np.rint(rng.normal(0, 1.0, (6, 4)) / scale_in), -127, 127).astype(np.int16)
    project = export_c(model, tmp_path / "b", form="integer", calibration=cal, example=x_q)
    (project.path / "logits.c").write_text("""
#include <stdio.h>
#include "model.h"
#include "example_data.h"
int main(void) {
    lstmlite_output_t out[LSTMLITE_MODEL_OUTPUT_SIZE];
    int t, j;
    if (lstmlite_model_init() != LSTMLITE_OK) return 1;
    for (t = 0; t < EXAMPLE_STEPS; ++t) {
        if (lstmlite_model_step(&example_input[t * LSTMLITE_MODEL_INPUT_SIZE], out) != LSTMLITE_OK) return 2;
        for (j = 0; j < LSTMLITE_MODEL_OUTPUT_SIZE; ++j) printf("%.9g ", (double)((float)out[j] * LSTMLITE_MODEL_OUTPUT_SCALE));
        printf("\\n");
    }
    return 0;
}
""")
    sources = ["logits.c", "model.c", "lsl_int.c"]
    subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", "-o", "logits", *sources], cwd=project.path, check=True,
                   capture_output=True)
    got = np.array([line.split() for line in subprocess.run([str(project.path / "logits")], check=True,
                    capture_output=True, text=True).stdout.splitlines()], dtype=np.float64)
    scores = _torch_steps(model, (x_q * scale_in).astype(np.float32))
    assert np.abs(got - scores).max() < 0.03 * np.abs(scores).max()
    assert (got.argmax(-1) == scores.argmax(-1)).all()


def test_a_non_finite_weight_is_refused_not_written(tmp_path):
    """A model holding an inf or a NaN weight is refused in one line naming the value, nothing
    written: C has no literal for it, and "inf.0f" / "nan.0f" in model.c made a project that
    does not compile. Catches c_float writing any float it is given."""
    from lstmlite.export.c.carray import c_float

    for bad in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(ValueError, match="cannot write a non-finite constant"):
            c_float(bad)
    model = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2).eval()
    with torch.no_grad():
        model.head.bias[1] = float("inf")
    with pytest.raises(ValueError, match="non-finite constant inf"):
        export_c(model, tmp_path / "p", form="fp32")
    assert not (tmp_path / "p").exists()


def test_statistics_of_another_width_are_refused(tmp_path):
    """A Standardization whose feature count is not the model's input width is refused in one
    line, nothing written: preprocess.h would read its mean and std past what they hold (zeros,
    a division by zero). Catches the width check dropped."""
    from lstmlite.export.preprocessing import Standardization

    model = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2).eval()
    with pytest.raises(ValueError, match=r"stats hold 2 features, the model reads 3"):
        export_c(model, tmp_path / "p", standardization=Standardization((0.0, 0.0), (1.0, 1.0)))
    assert not (tmp_path / "p").exists()
