"""The C runtime as C: headers and sources compile cleanly as C99, and the C test
program (tests/c/test_core.c) passes, also under AddressSanitizer + UBSan with the
.lsl loader fed thousands of corrupted files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "src" / "lstmlite" / "runtime"
CORE_SOURCES = sorted(p for p in RUNTIME.glob("lsl_*.c"))
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror"]

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def _gcc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["gcc", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("header", ["lsl.h", "lsl_internal.h"])
def test_header_compiles_standalone(tmp_path, header):
    """Each header includes what it needs and nothing warns, even pedantically
    (EdgeML's had a broken include guard; ours is compiled twice on purpose)."""
    src = tmp_path / "use.c"
    src.write_text(f'#include "{header}"\n#include "{header}"\nint main(void) {{ return 0; }}\n')
    result = _gcc([*STRICT, "-pedantic", "-I", str(RUNTIME), "-c", str(src), "-o", str(tmp_path / "use.o")],
                  tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def lsl_file(tmp_path_factory) -> Path:
    """A two-layer int8 LSTM classifier with embedding and head, as a .lsl file; beside
    it sparse.lsl (int8-sparse LSTM), lowrank.lsl (int8 low-rank classifier), the
    forms version 3 added: v3.lsl and masked.lsl (all in the compact table, version 4),
    and fixed.lsl (v3.lsl's model in the fixed-record layout, version 3)."""
    torch = pytest.importorskip("torch")
    from lstmlite.runtime.lsl import spec_from_state_dict, write_lsl

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(8, 12, num_layers=2, batch_first=True)
    spec = spec_from_state_dict(lstm.state_dict(), embedding=np.random.rand(20, 8), head_weight=np.random.rand(3, 12),
                                head_bias=np.zeros(3), head_mode="last")
    folder = tmp_path_factory.mktemp("lsl")
    path = folder / "model.lsl"
    write_lsl(spec, weights="int8", path=path)
    # the sparse and low-rank forms keep index tensors and factors past the tables
    from lstmlite.compress import LowRankConfig, WeightQuantConfig, compress_
    from lstmlite.nn import SequenceClassifier
    from lstmlite.runtime.bench import prune_blocks
    from lstmlite.runtime.lsl import spec_from_module

    pruned = torch.nn.LSTM(20, 32, batch_first=True)
    prune_blocks(pruned, 0.75)
    write_lsl(spec_from_module(pruned), weights="int8-sparse", path=folder / "sparse.lsl")
    low = SequenceClassifier(input_size=12, hidden_size=32, n_classes=3).eval()
    compress_(low, LowRankConfig(rank=4))
    compress_(low, WeightQuantConfig(bits=8))
    write_lsl(spec_from_module(low), path=folder / "lowrank.lsl")
    # version 3: FastGRNN (own low-rank U), pruned int4 codes (bitmask), low-rank int4
    # embedding; and fp32 bitmask-sparse GRU matrices with a low-rank head
    from lstmlite.compress import MagnitudePruneConfig
    from lstmlite.compress.embedding import EmbeddingLowRankConfig
    from lstmlite.compress.targets import recurrent_weight_filter
    from lstmlite.nn import LanguageModel

    fg = LanguageModel(vocab_size=30, embed_dim=8, hidden_size=16, cell="fastgrnn", num_layers=2,
                       rnn_options={"urank": 4}).eval()
    compress_(fg, EmbeddingLowRankConfig(rank=3))
    compress_(fg, MagnitudePruneConfig(sparsity=0.7), filter=recurrent_weight_filter())
    compress_(fg, WeightQuantConfig(bits=4, scale_bits=16))  # fp16 scales in the file
    write_lsl(spec_from_module(fg), weights="auto", path=folder / "v3.lsl")
    gru = SequenceClassifier(input_size=10, hidden_size=24, n_classes=5, cell="gru").eval()
    compress_(gru, MagnitudePruneConfig(sparsity=0.8), filter=recurrent_weight_filter())
    compress_(gru, WeightQuantConfig(bits=8, granularity="per_tensor"), filter=recurrent_weight_filter())
    compress_(gru, LowRankConfig(rank=2), filter=lambda fqn, module, name: fqn == "head" and name == "weight")
    write_lsl(spec_from_module(gru), weights="auto", path=folder / "masked.lsl")
    # the fixed-record layout (version 3) older writers made: still loaded and fuzzed
    write_lsl(spec_from_module(fg), weights="auto", path=folder / "fixed.lsl", version=3)
    return path


def _build_and_run(tmp_path: Path, flags: list[str], lsl_file: Path) -> subprocess.CompletedProcess:
    exe = tmp_path / "test_core"
    sources = [str(ROOT / "tests" / "c" / "test_core.c"), *map(str, CORE_SOURCES)]
    result = _gcc([*STRICT, *flags, "-I", str(RUNTIME), *sources, "-lm", "-o", str(exe)], tmp_path)
    assert result.returncode == 0, result.stderr
    files = [str(lsl_file)] + [str(lsl_file.parent / n) for n in ("sparse.lsl", "lowrank.lsl", "v3.lsl", "masked.lsl",
                                                                  "fixed.lsl")]
    return subprocess.run([str(exe), *files], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("flags", [["-O2"], ["-O2", "-DLSL_NO_SIMD"]], ids=["simd", "portable-only"])
def test_c_program_passes(tmp_path, lsl_file, flags):
    """Every core source compiles warning-free as C99 (-Werror), with and without the
    SIMD kernels, and the C tests pass."""
    run = _build_and_run(tmp_path, flags, lsl_file)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ok")


def test_avx2_vnni_table_runs_with_evex_encoding(tmp_path, lsl_file):
    """The AVX-VNNI table needs VEX vpdpbusd, which this CPU may lack; built with
    LSL_TEST_AVX2_VNNI_AS_EVEX it encodes the instruction as EVEX, so an AVX-512 VNNI CPU
    runs that table's code through the C tests (bit-exact dynamic int8, fused step)."""
    from lstmlite import runtime as rt

    if "avx2-vnni" in rt.supported_isas():
        pytest.skip("this CPU has AVX-VNNI: the avx2-vnni table runs in every test")
    if "avx512-vnni" not in rt.supported_isas():
        pytest.skip(f"this CPU has neither AVX-VNNI nor AVX-512 VNNI (it runs {', '.join(rt.supported_isas())})")
    version = _gcc(["-dumpversion"], tmp_path).stdout.strip()
    if int(version.split(".")[0]) < 11:
        pytest.skip(f"gcc {version} does not know AVX-VNNI (the table needs gcc 11)")
    run = _build_and_run(tmp_path, ["-O2", "-DLSL_TEST_AVX2_VNNI_AS_EVEX"], lsl_file)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ok") and " avx2-vnni" in run.stdout


@pytest.mark.slow
def test_c_program_passes_under_sanitizers(tmp_path, lsl_file):
    probe = _gcc(["-fsanitize=address,undefined", "-x", "c", "-", "-o", str(tmp_path / "probe")], tmp_path)
    if "sanitize" in probe.stderr and probe.returncode != 0 and "main" not in probe.stderr:
        pytest.skip("compiler without sanitizers")
    run = _build_and_run(tmp_path, ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
                         lsl_file)
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.startswith("ok")
