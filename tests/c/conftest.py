"""Fixtures the C runtime's tests share (tests/c/test_c_runtime.py natively,
tests/c/test_aarch64.py cross-compiled and run under qemu-aarch64)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def lsl_files(lsl_file: Path) -> list[str]:
    """The fixture's model and the files beside it, in the order test_core.c loads them."""
    return [str(lsl_file)] + [str(lsl_file.parent / n) for n in ("sparse.lsl", "lowrank.lsl", "v3.lsl", "masked.lsl",
                                                                  "fixed.lsl")]
