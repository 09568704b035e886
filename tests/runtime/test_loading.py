"""lstmlite.runtime.load: a run dir or a .lsl file into an Engine, with the caller's
weights, activations, threads and keep_sparse reaching the engine (compared with an
Engine built from the same model directly)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lstmlite.runtime as rt
from lstmlite.export.lsl import spec_from_module, write_lsl
from lstmlite.io import save_run
from lstmlite.nn import SequenceClassifier
from lstmlite.runtime import Engine, bench, load


@pytest.fixture(scope="module")
def pruned_model() -> SequenceClassifier:
    """80 % of the LSTM's (1, 4) weight blocks zero: the AVX2 table runs such a matrix
    dense unless keep_sparse asks for the sparse kernels."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=40, hidden_size=128, n_classes=3).eval()
    bench.prune_blocks(model.rnn, 0.8, (1, 4))
    return model


@pytest.fixture
def avx2(restore_isa):
    if "avx2" not in rt.info()["supported_isas"]:
        pytest.skip(f"this CPU lacks avx2 (it runs {', '.join(rt.info()['supported_isas'])})")
    rt.set_isa("avx2")


def _same_engine(got: Engine, want: Engine, x: np.ndarray) -> None:
    assert got.info == want.info
    assert (got.activations, got.threads) == (want.activations, want.threads)
    np.testing.assert_array_equal(got.run(x), want.run(x))


@pytest.mark.parametrize("weights, activations, threads", [("int8", "dynamic", 2), ("int7r", "dynamic16", 1),
                                                           ("fp32", "float", 3)])
def test_a_run_dir_loads_with_the_callers_options(tmp_path, pruned_model, weights, activations, threads):
    save_run(tmp_path / "run", pruned_model, {"task": "classify"})
    got = load(tmp_path / "run", weights=weights, activations=activations, threads=threads)
    want = Engine(spec_from_module(pruned_model), weights=weights, activations=activations, threads=threads)
    x = np.random.default_rng(0).standard_normal((4, 9, 40)).astype(np.float32)
    _same_engine(got, want, x)


@pytest.mark.parametrize("activations, threads", [("dynamic", 2), ("float", 1)])
def test_a_lsl_file_loads_with_the_callers_activations_and_threads(tmp_path, pruned_model, activations, threads):
    data = write_lsl(spec_from_module(pruned_model), weights="int8")
    (tmp_path / "model.lsl").write_bytes(data)
    got = load(tmp_path / "model.lsl", activations=activations, threads=threads)
    x = np.random.default_rng(1).standard_normal((4, 9, 40)).astype(np.float32)
    _same_engine(got, Engine(data, activations=activations, threads=threads), x)


def test_keep_sparse_reaches_the_engine_from_a_run_dir_and_a_file(tmp_path, pruned_model, avx2):
    save_run(tmp_path / "run", pruned_model, {"task": "classify"})
    (tmp_path / "model.lsl").write_bytes(write_lsl(spec_from_module(pruned_model), weights="int8-sparse"))
    for path, weights in ((tmp_path / "run", "int8-sparse"), (tmp_path / "model.lsl", None)):
        auto = load(path, weights=weights, activations="dynamic")
        kept = load(path, weights=weights, activations="dynamic", keep_sparse=True)
        assert auto.info["layers"][0]["runs_hh"] == "int8", path  # the AVX2 table runs it dense
        assert kept.info["layers"][0]["runs_hh"] == "int8-sparse", path


def test_the_torch_and_state_dict_constructors_pass_keep_sparse_on(avx2):
    """80 % sparse in (1, 4) blocks runs dense on the AVX2 table unless keep_sparse asks
    for the sparse kernels (as load() does): from_torch and from_state_dict must hand the
    flag to the engine, not only the numbers (which are the same bits either way)."""
    from lstmlite.runtime.bench import prune_blocks

    torch.manual_seed(0)
    layer = torch.nn.LSTM(40, 128, batch_first=True)
    prune_blocks(layer, 0.8, (1, 4))
    state = {k: v.detach().numpy() for k, v in layer.state_dict().items()}
    for keep, runs in ((True, "int8-sparse"), (False, "int8")):
        made = [rt.Engine.from_torch(layer, weights="int8-sparse", activations="dynamic", keep_sparse=keep),
                rt.Engine.from_state_dict(state, cell="lstm", weights="int8-sparse", activations="dynamic",
                                          keep_sparse=keep)]
        assert [e.info["layers"][0]["runs_hh"] for e in made] == [runs, runs], keep


def test_a_broken_lsl_file_is_named_with_the_fix(tmp_path):
    """The C loader's message does not know the file: load() adds its path and how to
    get a good file back (re-export), for a file that is not a model at all."""
    path = tmp_path / "broken.lsl"
    path.write_bytes(b"LSTMLITE" + bytes(range(200)))
    with pytest.raises(rt.RuntimeError_, match=r"broken\.lsl: .*re-export it"):
        load(path)


def test_a_path_given_to_engine_points_to_load(tmp_path, pruned_model):
    """Engine() takes a spec or a .lsl file's bytes; a path (str or Path) reached
    bytes(path), whose "string argument without an encoding" says nothing of the fix. It
    is a TypeError naming runtime.load, which opens the same file."""
    path = rt.export_lsl(save_run(tmp_path / "run", pruned_model, {"task": "classify"}), tmp_path / "m.lsl")
    for given in (str(path), path):
        with pytest.raises(TypeError, match=r"not the path .*m\.lsl.*lstmlite\.runtime\.load\(path\)"):
            rt.Engine(given)
    assert rt.load(path).info == rt.Engine(path.read_bytes()).info


def test_a_seq2seq_run_is_pointed_to_its_native_bundle(tmp_path):
    """load() of a seq2seq run said "the native runtime runs LSTM, GRU and FastGRNN layers,
    not Seq2Seq", though the runtime runs it as an encoder + decoder bundle: the one-line
    refusal names the export and NativeSeq2Seq, which then loads and decodes it."""
    from lstmlite.export.seq2seq import export_seq2seq_lsl
    from lstmlite.nn import Seq2Seq
    from lstmlite.runtime.seq2seq import NativeSeq2Seq

    torch.manual_seed(0)
    model = Seq2Seq(vocab_size=12, embed_dim=4, hidden_size=6, max_target_len=3).eval()
    run = save_run(tmp_path / "run", model, {"task": "seq2seq"})
    for attempt in (lambda: load(run), lambda: Engine.from_torch(model)):
        with pytest.raises(ValueError, match=r"--format lsl.*NativeSeq2Seq\(DIR\)") as err:
            attempt()
        assert "\n" not in str(err.value)
    export_seq2seq_lsl(model, tmp_path / "lsl")
    assert len(NativeSeq2Seq(tmp_path / "lsl").decode(np.array([[4, 5, 6]]), [3])[0]) <= 3
