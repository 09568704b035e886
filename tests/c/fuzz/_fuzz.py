"""Build, seed and run the libFuzzer targets of the native runtime (tests/c/fuzz/).

Shared by the CI smoke test (tests/c/test_fuzz.py) and the long run
(benchmarks/bench_fuzz.py). Targets:

* ``load``: bytes -> ``lsl_load`` -> if it loads, a run and three steps (fuzz_load.c)
* ``step``: bytes -> a small valid model built in the target -> steps on extreme inputs
  and state: the float runtime, the integer-only form and the TFLite-compatible LSTM
  (fuzz_step.c)

Both are built with clang ``-fsanitize=fuzzer,address,undefined`` and
``-fno-sanitize-recover=all``: any sanitizer report ends the run as a crash. The runtime
sources are compiled once into objects shared by the two targets (the sanitized build of
the SIMD kernels is the slow part). Seeds for ``load`` are real files written by the
Python exporter (:func:`write_load_seeds`); the committed ``corpus/<target>/`` holds the
input of every bug the fuzzers found and a few coverage inputs (corpus/README.md), all
replayed by the CI test.

Example:
    >>> from pathlib import Path
    >>> exe = build("load", Path("/tmp/fuzz-build"))       # doctest: +SKIP
    >>> stats = run(exe, [Path("/tmp/seeds")], seconds=20)  # doctest: +SKIP
    >>> stats["crashes"]                                     # doctest: +SKIP
    0
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
RUNTIME = ROOT / "src" / "lstmlite" / "runtime"
TARGETS = ("load", "step")
CORPUS = HERE / "corpus"  # committed regression inputs, one folder per target
BUILD = ROOT / "build" / "fuzz"  # cached sanitized objects and the targets (git-ignored)
SANITIZE = ["-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all"]
CFLAGS = ["-g", "-O1", "-std=c99", "-fno-omit-frame-pointer", "-pthread", *SANITIZE]
# The packages that provide clang and its libFuzzer / sanitizer runtimes (Debian bookworm).
SYSTEM_DEPS = "scripts/system-deps-fuzz.txt"


def clang() -> str:
    """Path of clang; raises RuntimeError naming the packages when it is missing."""
    exe = shutil.which(os.environ.get("LSTMLITE_CLANG", "clang"))
    if exe is None:
        raise RuntimeError(f"clang not found: install the packages in {SYSTEM_DEPS} "
                           "(sh scripts/install-system-deps.sh)")
    return exe


def _sources() -> list[Path]:
    return sorted(RUNTIME.glob("lsl_*.c"))


def _digest(paths: list[Path], extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _compile(cc: str, src: Path, obj: Path) -> None:
    cmd = [cc, *CFLAGS, "-I", str(RUNTIME), "-c", str(src), "-o", str(obj)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        raise RuntimeError(f"clang failed on {src.name}:\n{res.stderr[-4000:]}")


def _object(objdir: Path, src: Path, headers: list[Path], compiler: str = "") -> Path:
    """The cached object of one source: keyed by its text, every header, the flags and
    the compiler, so an edit recompiles only the file edited (or everything, for a
    header or another clang)."""
    return objdir / f"{src.stem}-{_digest([src, *headers], ' '.join(CFLAGS) + compiler)}.o"


def build(target: str, build_dir: Path, jobs: int = 2) -> Path:
    """Build fuzz_<target> into build_dir (the runtime objects are cached there, keyed by
    the sources' hash) and return the executable."""
    if target not in TARGETS:
        raise ValueError(f"unknown fuzz target {target!r}; one of {', '.join(TARGETS)}")
    cc = clang()
    headers = sorted(RUNTIME.glob("*.h"))
    objdir = build_dir / "obj"
    objdir.mkdir(parents=True, exist_ok=True)
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    objects = [_object(objdir, s, headers, version) for s in _sources()]
    todo = [(s, o) for s, o in zip(_sources(), objects) if not o.exists()]
    for stale in objdir.glob("*.o"):  # older versions of the sources' objects
        if stale not in objects:
            stale.unlink(missing_ok=True)  # another process may have removed it first
    # pytest -n 2 builds in both workers at once after a source change: every file is
    # written under a name of this process's own, then moved into place (os.replace is
    # atomic, and a process running the old executable keeps its file)
    mine = f".{os.getpid()}.tmp"
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for f in [pool.submit(_compile, cc, s, o.with_suffix(mine)) for s, o in todo]:
            f.result()
    for _, o in todo:
        os.replace(o.with_suffix(mine), o)
    exe = build_dir / f"fuzz_{target}"
    harness = HERE / f"fuzz_{target}.c"
    cmd = [cc, *CFLAGS, "-I", str(RUNTIME), str(harness), *map(str, objects), "-lm", "-o", str(exe) + mine]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        raise RuntimeError(f"clang failed on {harness.name}:\n{res.stderr[-4000:]}")
    os.replace(str(exe) + mine, exe)
    return exe


def write_load_seeds(folder: Path) -> list[Path]:
    """Real .lsl files from the Python exporter, one per stored form, small (H <= 8) so
    that each execution is fast: fp32 / int8 / int4 / block-sparse / bitmask / low-rank
    matrices, LSTM with projection, bidirectional GRU, FastGRNN, embeddings and heads, and
    the fixed-record layout (version 3)."""
    import numpy as np
    import torch

    from lstmlite.compress import LowRankConfig, MagnitudePruneConfig, WeightQuantConfig, compress_
    from lstmlite.compress.embedding import EmbeddingLowRankConfig
    from lstmlite.compress.targets import recurrent_weight_filter
    from lstmlite.export.lsl import spec_from_module, spec_from_state_dict, write_lsl
    from lstmlite.nn import LanguageModel, SequenceClassifier
    from lstmlite.runtime.bench import prune_blocks

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    out: list[Path] = []

    def put(name: str, spec: Any, **kw: Any) -> None:
        path = folder / f"{name}.lsl"
        write_lsl(spec, path=path, **kw)
        out.append(path)

    lstm = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)
    emb_spec = dict(embedding=rng.random((5, 3)), head_weight=rng.random((2, 4)), head_bias=np.zeros(2))
    put("lstm-fp32", spec_from_state_dict(lstm.state_dict()), weights="fp32")
    put("lstm-int8-emb-last", spec_from_state_dict(lstm.state_dict(), head_mode="last", **emb_spec), weights="int8")
    put("lstm-int4-each", spec_from_state_dict(lstm.state_dict(), head_mode="each", **emb_spec), weights="int4")
    proj = torch.nn.LSTM(3, 6, proj_size=2, batch_first=True)
    put("lstm-proj", spec_from_state_dict(proj.state_dict()), weights="int8")
    gru = torch.nn.GRU(3, 4, bidirectional=True, batch_first=True)
    put("gru-bidir", spec_from_state_dict(gru.state_dict()), weights="fp32")
    sparse = torch.nn.LSTM(8, 8, batch_first=True)
    prune_blocks(sparse, 0.75)
    put("lstm-sparse", spec_from_module(sparse), weights="int8-sparse")
    low = SequenceClassifier(input_size=4, hidden_size=8, n_classes=3).eval()
    compress_(low, LowRankConfig(rank=2))
    compress_(low, WeightQuantConfig(bits=8))
    put("lowrank", spec_from_module(low))
    fg = LanguageModel(vocab_size=6, embed_dim=3, hidden_size=4, cell="fastgrnn", num_layers=2,
                       rnn_options={"urank": 2}).eval()
    compress_(fg, EmbeddingLowRankConfig(rank=2))
    compress_(fg, MagnitudePruneConfig(sparsity=0.7), filter=recurrent_weight_filter())
    compress_(fg, WeightQuantConfig(bits=4, scale_bits=16))
    put("fastgrnn-int4-masked", spec_from_module(fg), weights="auto")
    put("fastgrnn-fixed-v3", spec_from_module(fg), weights="auto", version=3)
    mg = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2, cell="gru").eval()
    compress_(mg, MagnitudePruneConfig(sparsity=0.8), filter=recurrent_weight_filter())
    compress_(mg, WeightQuantConfig(bits=8, granularity="per_tensor"), filter=recurrent_weight_filter())
    compress_(mg, LowRankConfig(rank=1), filter=lambda fqn, module, name: fqn == "head" and name == "weight")
    put("gru-masked-lowrank-head", spec_from_module(mg), weights="auto")
    return out


def write_step_seeds(folder: Path) -> list[Path]:
    """Byte strings that select each engine of fuzz_step.c with ordinary and extreme
    values (deterministic; the fuzzer mutates from there)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for engine in range(3):
        for k, fill in enumerate((0x00, 0x01, 0x06, 0x80, 0xC3, 0xFF)):
            data = bytes([engine]) + bytes([fill]) * 24 + bytes((i * 37 + k) & 0xFF for i in range(512))
            path = folder / f"engine{engine}-{k}.bin"
            path.write_bytes(data)
            out.append(path)
    return out


_STAT = re.compile(r"^stat::(\w+):\s*(\d+)", re.M)
_PROGRESS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)", re.M)


def run(exe: Path, corpora: list[Path], seconds: int, artifacts: Path | None = None, jobs_dir: Path | None = None,
        max_len: int = 65536, timeout_per_input: int = 10, rss_limit_mb: int = 2048) -> dict[str, Any]:
    """Fuzz for `seconds` from the given corpus folders (the first one receives new
    inputs); return executions, exec/s, coverage (cov, ft), corpus size and crashes
    (the count of crash-/leak-/timeout-/oom- artifacts written; 0 expected).
    """
    artifacts = artifacts or (corpora[0].parent / "artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in artifacts.iterdir()}
    cmd = [str(exe), *map(str, corpora), f"-max_total_time={seconds}", "-print_final_stats=1",
           f"-max_len={max_len}", f"-timeout={timeout_per_input}", f"-rss_limit_mb={rss_limit_mb}",
           f"-artifact_prefix={artifacts}/", "-detect_leaks=1"]
    env = dict(os.environ, ASAN_OPTIONS="abort_on_error=0:detect_leaks=1:allocator_may_return_null=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    env.pop("LSTMLITE_ISA", None)  # the step target picks its own tables
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 600, env=env)
    wall = time.monotonic() - t0
    log = proc.stderr
    stats = {k: int(v) for k, v in _STAT.findall(log)}
    progress = _PROGRESS.findall(log)
    cov, ft = (int(progress[-1][1]), int(progress[-1][2])) if progress else (0, 0)
    new = sorted(p for p in artifacts.iterdir() if p.name not in before)
    execs = stats.get("number_of_executed_units", 0)
    return {
        "executions": execs,
        "seconds": round(wall, 1),
        "exec_per_s": round(execs / wall, 1) if wall > 0 else 0.0,
        "cov": cov,
        "ft": ft,
        "corpus": sum(1 for c in corpora for p in c.iterdir() if p.is_file()),
        "new_units": stats.get("new_units_added", 0),
        "peak_rss_mb": stats.get("peak_rss_mb", 0),
        "crashes": len(new),
        "crash_files": [str(p) for p in new],
        "returncode": proc.returncode,
        "log_tail": log[-3000:] if (proc.returncode != 0 or new) else "",
    }


def replay(exe: Path, files: list[Path]) -> subprocess.CompletedProcess:
    """Run each input once (libFuzzer's replay mode); a crash fails the process."""
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    return subprocess.run([str(exe), "-runs=1", *map(str, files)], capture_output=True, text=True, timeout=600,
                          env=env)
