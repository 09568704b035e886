"""The compact table (.lsl version 4): variable-length records with the scales, masks
and block indices inside their matrix's record. Round trips against the fixed-record
version 3, corrupt records refused by both readers (naming what is wrong in Python),
and older versions still read."""

import numpy as np
import pytest
import torch

from lstmlite import runtime as rt
from lstmlite.compress import LowRankConfig, MagnitudePruneConfig, WeightQuantConfig, compress_
from lstmlite.nn import SequenceClassifier
from lstmlite.runtime.bench import prune_blocks
from lstmlite.runtime.lsl import COMPACT_VERSION, LslFormatError, describe_lsl, read_lsl
from lstmlite.export.lsl import spec_from_module, write_lsl


def _fastgrnn(prune: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=12, hidden_size=32, n_classes=9, cell="fastgrnn",
                               rnn_options={"wrank": 8, "urank": 8}).eval()
    if prune:
        compress_(model, MagnitudePruneConfig(sparsity=0.5))
    compress_(model, WeightQuantConfig(bits=4, scale_bits=16))
    return model


def _lstm_lowrank() -> torch.nn.Module:
    torch.manual_seed(1)
    model = SequenceClassifier(input_size=12, hidden_size=16, n_classes=9).eval()
    compress_(model, LowRankConfig(rank=4))
    compress_(model, WeightQuantConfig(bits=8, granularity="per_tensor"))
    return model


def _block_sparse() -> torch.nn.Module:
    torch.manual_seed(2)
    lstm = torch.nn.LSTM(20, 32, batch_first=True)
    prune_blocks(lstm, 0.75)
    return lstm


CASES = {  # model, weights form: every companion kind (scale f32 / f16 / one, mask, rowptr + bcol)
    "fastgrnn-int4-lowrank": (lambda: _fastgrnn(False), "auto"),
    "fastgrnn-int4-lowrank-pruned": (lambda: _fastgrnn(True), "auto"),
    "lstm-lowrank-int8-per-tensor": (_lstm_lowrank, "auto"),
    "lstm-block-sparse": (_block_sparse, "int8-sparse"),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def files(request):
    make, weights = CASES[request.param]
    spec = spec_from_module(make())
    return write_lsl(spec, weights=weights), write_lsl(spec, weights=weights, version=3)


def test_compact_file_reads_back_as_the_fixed_one_and_runs_the_same(files):
    new, old = files
    assert int.from_bytes(new[8:12], "little") == COMPACT_VERSION and len(new) < len(old)
    a, b = read_lsl(new), read_lsl(old)
    assert repr(a.layers) == repr(b.layers) and repr(a.head_weight) == repr(b.head_weight)
    x = np.random.default_rng(0).standard_normal((2, 5, a.layers[0].input_size)).astype(np.float32)
    np.testing.assert_array_equal(rt.Engine(new).run(x), rt.Engine(old).run(x))
    rows = describe_lsl(new)
    assert sum(r["bytes"] for r in rows) == len(new)
    # companions cost no record of their own
    assert all(r["record"] == 0 for r in rows if r["name"].endswith((".scale", ".mask", ".rowptr", ".bcol")))


def _refused(blob: bytes, match: str) -> None:
    with pytest.raises(rt.RuntimeError_):
        rt.Engine(blob)
    with pytest.raises(LslFormatError, match=match):
        read_lsl(blob)


def test_corrupt_compact_records_are_refused_naming_what_is_wrong():
    blob = write_lsl(spec_from_module(_fastgrnn(True)), weights="auto")
    rt.Engine(blob)
    rec = blob.index(b"\x0bl0.0.w_ih.u")  # the record: name length, name, dtype, flags, ...
    flags = rec + 1 + 11 + 1

    def patched(pos: int, value: int) -> bytes:
        bad = bytearray(blob)
        bad[pos] = value
        return bytes(bad)

    _refused(blob[:-1], "runs past the end")
    _refused(blob + b"\0", "follow the last tensor record")
    _refused(patched(flags, blob[flags] | 0x40), "unknown flag bits")
    _refused(patched(flags, blob[flags] & ~0x02), "scale flags")  # codes without their scales
    _refused(patched(flags - 1, 8), "only a companion")  # a mask dtype as a record of its own
    _refused(patched(rec, 0), "name length 0")
    _refused(patched(rec, 40), "name length 40")
    _refused(patched(flags + 1, 0), "zero dim")
    _refused(patched(14, 0), "layer count 0")


def test_corrupt_compact_files_never_crash_the_loader():
    blob = write_lsl(spec_from_module(_fastgrnn(True)), weights="auto")
    for cut in range(len(blob)):
        with pytest.raises(rt.RuntimeError_):
            rt.Engine(blob[:cut])
    rng = np.random.default_rng(7)
    for _ in range(300):
        bad = bytearray(blob)
        for pos in rng.integers(0, len(bad), size=rng.integers(1, 4)):
            bad[pos] ^= 1 << int(rng.integers(0, 8))
        try:
            rt.Engine(bytes(bad)).run(np.zeros((1, 3, 12), np.float32))
        except (rt.RuntimeError_, ValueError):
            pass
        try:
            read_lsl(bytes(bad))
        except LslFormatError:
            pass


def test_older_versions_are_written_on_request_and_read():
    spec = spec_from_module(_fastgrnn(False))
    with pytest.raises(ValueError, match="needs version 3"):
        write_lsl(spec, weights="auto", version=2)  # FastGRNN and int4 came in version 3
    old = write_lsl(spec, weights="auto", version=3)
    assert int.from_bytes(old[8:12], "little") == 3
    assert repr(read_lsl(old).layers) == repr(read_lsl(write_lsl(spec, weights="auto")).layers)
    future = bytearray(write_lsl(spec, weights="auto"))
    future[8] = 5
    _refused(bytes(future), "version 5 is not supported")
