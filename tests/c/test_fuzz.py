"""The libFuzzer targets of the native runtime (tests/c/fuzz/, issue 15 item 5) in CI:
both build with clang under ASan + UBSan, replay the committed regression corpus (every
input a fuzzer once crashed on, kept fixed) and the exporter's seed files, and fuzz for a
short smoke run each. A missing clang fails here: scripts/system-deps-fuzz.txt installs it.

The sanitized runtime objects are cached in build/fuzz/ (keyed by each source's hash), so
only the first run compiles the SIMD kernels (minutes); later runs link in seconds. The
long run is benchmarks/bench_fuzz.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fuzz"))
import _fuzz  # noqa: E402

BUILD = _fuzz.BUILD
SMOKE_SECONDS = 12  # per target: ~25 s in all


@pytest.fixture(scope="module")
def targets() -> dict[str, Path]:
    try:
        _fuzz.clang()
    except RuntimeError as exc:  # fail loudly: a skipped fuzz check must not pass for a run one
        pytest.fail(str(exc))
    return {t: _fuzz.build(t, BUILD) for t in _fuzz.TARGETS}


def test_regression_corpus_is_committed_for_every_target():
    for t in _fuzz.TARGETS:
        files = [p for p in (_fuzz.CORPUS / t).iterdir() if p.is_file()] if (_fuzz.CORPUS / t).is_dir() else []
        assert files, f"tests/c/fuzz/corpus/{t}/ holds no inputs"


@pytest.mark.parametrize("target", _fuzz.TARGETS)
def test_regression_corpus_and_seeds_replay_clean(targets, target, tmp_path):
    files = sorted(p for p in (_fuzz.CORPUS / target).iterdir() if p.is_file())
    seeds = (_fuzz.write_load_seeds if target == "load" else _fuzz.write_step_seeds)(tmp_path / "seeds")
    res = _fuzz.replay(targets[target], files + seeds)
    assert res.returncode == 0, res.stderr[-4000:]
    assert f"Running {len(files) + len(seeds)} inputs" in res.stderr  # every input ran, none skipped


@pytest.mark.parametrize("target", _fuzz.TARGETS)
def test_fuzz_smoke_finds_nothing(targets, target, tmp_path):
    seeds = tmp_path / "seeds"
    (_fuzz.write_load_seeds if target == "load" else _fuzz.write_step_seeds)(seeds)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    stats = _fuzz.run(targets[target], [corpus, seeds, _fuzz.CORPUS / target], SMOKE_SECONDS,
                      artifacts=tmp_path / "artifacts")
    assert stats["crashes"] == 0 and stats["returncode"] == 0, stats["log_tail"]
    assert stats["executions"] > 100 and stats["cov"] > 0, stats


def test_planted_bugs_are_caught(tmp_path):
    """The harness catches what it is for: a target with an out-of-bounds read on one
    input and a signed overflow on another crashes on each under ASan / UBSan with the
    flags the real targets use (so a clean smoke means something)."""
    import subprocess

    try:
        cc = _fuzz.clang()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    src = tmp_path / "planted.c"
    src.write_text("#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n"
                   "volatile int sink;\n"
                   "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {\n"
                   "  char *p = malloc(n + 1); memcpy(p, d, n); p[n] = 0;\n"
                   "  if (n >= 4 && !memcmp(d, \"LSL!\", 4)) sink = p[n + 1];  /* one past the buffer */\n"
                   "  if (n >= 4 && !memcmp(d, \"INT!\", 4)) { int x = 2147483640 + d[3]; sink = x; }\n"
                   "  free(p); return 0; }\n")
    exe = tmp_path / "planted"
    res = subprocess.run([cc, *_fuzz.CFLAGS, str(src), "-o", str(exe)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    for name, data, report in (("oob", b"LSL!", "heap-buffer-overflow"), ("overflow", b"INT!",
                                                                          "signed integer overflow")):
        crash = tmp_path / name
        crash.write_bytes(data)
        run = _fuzz.replay(exe, [crash])
        assert run.returncode != 0 and report in run.stderr, run.stderr[-2000:]
    clean = tmp_path / "clean"
    clean.write_bytes(b"LSTM")
    assert _fuzz.replay(exe, [clean]).returncode == 0
