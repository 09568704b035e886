"""Embedding compression: quantized rows, vocabulary pruning, low-rank embeddings.

Oracles: NumPy per-row symmetric quantization and truncated SVD, the uncompressed
model's own logits (pruning ids that are never used must not change them), and
``load_data`` rebuilding the data with a smaller ``max_vocab``.
"""

import csv

import numpy as np
import pytest
import torch

from lstmlite.compress import (EmbeddingLowRankConfig, EmbeddingQuantConfig, VocabPruneConfig, compress_,
                               compression_state, config_from_dict, size_bytes, summary, undo)
from lstmlite.compress.embedding import prune_vocab, remap_data, remap_ids
from lstmlite.compress.quantize import quantized_tensors
from lstmlite.data import load_data
from lstmlite.io import load_run, save_run
from lstmlite.nn import LanguageModel, SequenceClassifier


def _classifier(vocab=60, embed=12):
    torch.manual_seed(0)
    return SequenceClassifier(vocab_size=vocab, embed_dim=embed, hidden_size=8, n_classes=3)


def _lm(tie=False, vocab=40):
    torch.manual_seed(0)
    return LanguageModel(vocab_size=vocab, embed_dim=8, hidden_size=8, tie_weights=tie)


def _np_quantize_rows(w, bits):
    """Symmetric per-row quantization written out: s = max|w| / qmax, q = round-half-even(w / s)."""
    qmax = 2 ** (bits - 1) - 1
    amax = np.abs(w).max(1, keepdims=True)
    s = np.where(amax > 0, amax / qmax, 1.0)
    q = np.clip(np.round(w / s), -qmax, qmax)
    return q, s[:, 0]


# ----- quantized rows ------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [8, 4])
def test_embedding_rows_quantized_like_numpy_and_nothing_else(bits):
    model = _classifier()
    w = model.embedding.weight.detach().numpy().astype(np.float64)
    x = torch.randint(0, 60, (3, 9))
    rnn_before = {k: v.clone() for k, v in model.rnn.state_dict().items()}
    compress_(model, EmbeddingQuantConfig(bits=bits))
    q, s = _np_quantize_rows(w, bits)
    stored = quantized_tensors(model)
    assert set(stored) == {"embedding.weight"}
    np.testing.assert_array_equal(stored["embedding.weight"].codes.numpy(), q)
    np.testing.assert_allclose(stored["embedding.weight"].scales.numpy(), s, rtol=1e-6)
    # the model computes with exactly the dequantized rows
    reference = _classifier()
    with torch.no_grad():
        reference.embedding.weight.copy_(torch.tensor(q * s[:, None], dtype=torch.float32))
    torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-6)
    for k, v in model.rnn.state_dict().items():
        assert torch.equal(v, rnn_before[k])
    row = next(r for r in summary(model) if r["name"] == "embedding.weight")
    assert row["bits"] == bits
    assert row["bytes"] <= 60 * -(-12 * bits // 8) + 4 * 60  # packed codes + one fp32 scale per row


def test_embedding_mse_scales_are_searched_per_row(mse_scale):
    """EmbeddingQuantConfig(scale_method="mse") picks each token row's clip ratio by squared
    error; heavy-tailed rows clip below absmax. Catches the scale method not passed on
    (absmax scales)."""
    model = _classifier(vocab=20, embed=16)
    rows = np.random.default_rng(4).standard_t(df=2, size=(20, 16)).astype(np.float32)
    with torch.no_grad():
        model.embedding.weight.copy_(torch.from_numpy(rows))
    compress_(model, EmbeddingQuantConfig(bits=4, scale_method="mse"))
    want = np.array([mse_scale(r, 7) for r in rows])
    assert (want < np.abs(rows).max(1) / 7 * (1 - 1e-6)).sum() >= 10  # most rows clip
    np.testing.assert_allclose(quantized_tensors(model)["embedding.weight"].scales.numpy(), want, rtol=1e-6)


def test_tied_lm_embedding_quantization_survives_save_and_load(tmp_path):
    model = _lm(tie=True)
    compress_(model, EmbeddingQuantConfig(bits=4))
    assert model.head.weight.data_ptr() == model.embedding.weight.data_ptr() or torch.equal(
        model.head.weight, model.embedding.weight)
    x = torch.randint(0, 40, (2, 6))
    save_run(tmp_path / "run", model, {"task": "lm", "compression": compression_state(model)})
    loaded = load_run(tmp_path / "run").model
    torch.testing.assert_close(loaded(x)[0], model(x)[0])
    assert size_bytes(loaded) == size_bytes(model)


@pytest.mark.parametrize("config", [EmbeddingQuantConfig(bits=8), EmbeddingLowRankConfig(rank=3),
                                    VocabPruneConfig(keep=10)])
def test_filter_matching_nothing_changes_nothing(config):
    model = _classifier()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    compress_(model, config, filter=lambda fqn, module, name: False)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_embedding_configs_leave_feature_models_alone_or_refuse():
    model = SequenceClassifier(input_size=4, hidden_size=8, n_classes=2)
    before = size_bytes(model)
    compress_(model, EmbeddingQuantConfig(bits=8))
    assert size_bytes(model) == before
    with pytest.raises(ValueError, match="token input"):
        compress_(model, VocabPruneConfig(keep=5))


# ----- vocabulary pruning ---------------------------------------------------------------------
def test_vocab_prune_classifier_keeps_logits_of_kept_ids_and_undoes():
    model = _classifier()
    x = torch.randint(0, 25, (4, 7))  # only kept ids
    reference = model(x).detach()
    full_params, full_bytes = model.params(), size_bytes(model)
    compress_(model, VocabPruneConfig(keep=25))
    assert model.embedding.num_embeddings == 25 and model.config()["vocab_size"] == 25
    assert model.embedding.padding_idx == 0
    torch.testing.assert_close(model(x), reference)
    assert full_params - model.params() == 12 * (60 - 25)
    assert size_bytes(model) < full_bytes
    undo(model)
    assert model.embedding.num_embeddings == 60 and model.vocab_size == 60
    torch.testing.assert_close(model(x), reference)


@pytest.mark.parametrize("tie", [False, True])
def test_vocab_prune_lm_shrinks_head_and_keeps_logits(tie, tmp_path):
    model = _lm(tie=tie)
    x = torch.randint(0, 15, (2, 6))
    reference = model(x)[0].detach()
    compress_(model, VocabPruneConfig(keep=15))
    assert model.head.out_features == 15
    assert (model.head.weight is model.embedding.weight) == tie
    torch.testing.assert_close(model(x)[0], reference[..., :15])
    save_run(tmp_path / "run", model, {"task": "lm"})
    loaded = load_run(tmp_path / "run").model
    assert loaded.config()["vocab_size"] == 15
    torch.testing.assert_close(loaded(x)[0], reference[..., :15])


def test_vocab_prune_must_come_before_other_embedding_compression():
    model = _classifier()
    compress_(model, EmbeddingQuantConfig(bits=8))
    with pytest.raises(ValueError, match="apply vocab_prune first"):
        compress_(model, VocabPruneConfig(keep=10))


def test_pruned_model_still_trains():
    model = _classifier()
    compress_(model, VocabPruneConfig(keep=20))
    before = model.embedding.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss = torch.nn.functional.cross_entropy(model(torch.randint(2, 20, (8, 5))), torch.randint(0, 3, (8,)))
    loss.backward()
    opt.step()
    assert not torch.equal(model.embedding.weight, before)


def test_remap_ids_and_prune_vocab():
    ids = np.array([[0, 1, 2, 7, 3]])
    assert remap_ids(ids, 3).tolist() == [[0, 1, 2, 1, 1]]
    from lstmlite.data import Vocabulary

    v = Vocabulary(["<pad>", "<unk>", "a", "b", "c"])
    assert prune_vocab(v, 3).tokens == ["<pad>", "<unk>", "a"]
    assert prune_vocab(v.to_dict(), 4)["tokens"] == ["<pad>", "<unk>", "a", "b"]


def _write_csv(path, rng):
    words = [f"w{i}" for i in range(40)]
    weights = 1.0 / np.arange(1, 41)  # Zipf-like frequencies: a clear order
    weights /= weights.sum()
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for _ in range(120):
            tokens = rng.choice(words, size=rng.integers(3, 9), p=weights)
            writer.writerow([" ".join(tokens), "pos" if "w0" in tokens else "neg"])


def test_remap_data_equals_reloading_with_smaller_max_vocab(tmp_path):
    path = tmp_path / "texts.csv"
    _write_csv(path, np.random.default_rng(0))
    data = load_data({"source": str(path)})
    pruned = remap_data(data, 12)
    expected = load_data({"source": str(path), "max_vocab": 12})
    assert pruned.vocab == expected.vocab and len(pruned.vocab) == 12
    assert pruned.spec == expected.spec
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(pruned, name).x, getattr(expected, name).x)
        np.testing.assert_array_equal(getattr(pruned, name).y, getattr(expected, name).y)


def test_remap_data_lm_remaps_targets(tmp_path):
    path = tmp_path / "text.txt"
    rng = np.random.default_rng(1)
    path.write_text("".join(rng.choice(list("eeeeaaatttoinsrhldq"), size=3000)))
    data = load_data({"source": str(path), "seq_len": 20})
    pruned = remap_data(data, 8)
    expected = load_data({"source": str(path), "seq_len": 20, "max_vocab": 8})
    assert pruned.vocab == expected.vocab
    np.testing.assert_array_equal(pruned.train.y, expected.train.y)
    np.testing.assert_array_equal(pruned.test.x, expected.test.x)
    assert pruned.train.y.max() < 8 and (pruned.train.y == 1).any()


# ----- low-rank embedding -------------------------------------------------------------------
def test_low_rank_embedding_is_the_truncated_svd():
    model = _classifier(vocab=50, embed=16)
    w = model.embedding.weight.detach().numpy().astype(np.float64)
    compress_(model, EmbeddingLowRankConfig(rank=4))
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    best = (u[:, :4] * s[:4]) @ vt[:4]
    np.testing.assert_allclose(model.embedding.weight.detach().numpy(), best, atol=1e-5)
    row = next(r for r in summary(model) if r["name"] == "embedding.weight")
    assert row["rank"] == 4 and row["bytes"] == 4 * 4 * (50 + 16)
    assert all(r["rank"] is None for r in summary(model) if r["name"] != "embedding.weight")
    # gradients reach both factors
    factors = list(model.embedding.parametrizations.weight.parameters())
    model(torch.randint(1, 50, (3, 4))).sum().backward()
    assert len(factors) == 2 and all(f.grad is not None and f.grad.abs().sum() > 0 for f in factors)



def test_low_rank_embedding_energy_chooses_the_smallest_sufficient_rank():
    """``EmbeddingLowRankConfig(energy=e)`` factors at the smallest r whose singular values
    hold e of the squared energy (NumPy's SVD). Catches the energy not passed on to the
    low-rank handler (a fixed default used instead)."""
    for energy in (0.5, 0.8):
        model = _classifier(vocab=50, embed=16)
        s = np.linalg.svd(model.embedding.weight.detach().numpy().astype(np.float64), compute_uv=False)
        want = int(np.argmax(np.cumsum(s ** 2) / np.sum(s ** 2) >= energy)) + 1
        compress_(model, EmbeddingLowRankConfig(energy=energy))
        assert model.embedding.parametrizations.weight.original0.shape == (50, want)

def test_low_rank_embedding_refuses_tied_lm():
    with pytest.raises(ValueError, match="tied"):
        compress_(_lm(tie=True), EmbeddingLowRankConfig(rank=2))


# ----- configs ---------------------------------------------------------------------------------
def test_configs_validate_and_round_trip():
    with pytest.raises(ValueError, match="bits"):
        EmbeddingQuantConfig(bits=9)
    with pytest.raises(ValueError, match="keep"):
        VocabPruneConfig(keep=2)
    with pytest.raises(ValueError, match="exactly one"):
        EmbeddingLowRankConfig(rank=2, energy=0.9)
    for config in (EmbeddingQuantConfig(bits=4), VocabPruneConfig(keep=100), EmbeddingLowRankConfig(energy=0.8)):
        assert config_from_dict(config.to_dict()) == config


def test_coverage_never_asks_for_fewer_than_three_tokens():
    """Ids (pad, unk, a, b): <unk> alone covers 4 of 6 training tokens, so coverage 0.5 is
    reached at keep = 2, but a vocabulary keeps <pad>, <unk> and at least one token
    (VocabPruneConfig refuses keep < 3): the answer is 3. Catches a floor of 2."""
    from types import SimpleNamespace

    from lstmlite.compress.embedding.vocab import keep_for_coverage

    split = SimpleNamespace(x=np.array([[1, 1, 1, 1, 2, 3, 0, 0]]), lengths=np.array([6]))
    data = SimpleNamespace(train=split, vocab_size=4, vocab=["<pad>", "<unk>", "a", "b"])
    assert keep_for_coverage(data, 0.5) == 3
    assert keep_for_coverage(data, 0.9) == 4  # 4/6, 5/6 < 0.9 <= 6/6
    VocabPruneConfig(keep=keep_for_coverage(data, 0.5))  # a valid config
    # id 0 inside a row's length is padding too, not text (catches counting it): of the 4
    # text tokens, ids < 3 cover 3/4 < 0.8, so ids < 4 are needed (with the two 0s counted,
    # 5/6 would pass at 3)
    padded = SimpleNamespace(x=np.array([[2, 2, 2, 3, 0, 0]]), lengths=np.array([6]))
    assert keep_for_coverage(SimpleNamespace(train=padded, vocab_size=4, vocab=data.vocab), 0.8) == 4
    # the counts leave padding out by length (catches `<=` for `<`: the first padding 0 counted)
    from lstmlite.compress.embedding.vocab import token_counts

    assert token_counts(split, 4).tolist() == [0, 4, 1, 1]


def test_a_filter_only_narrows_the_embedding_configs():
    """The embedding configs act on embedding weights only: a filter that accepts every
    tensor still quantizes just embedding.weight. Catches the filter replacing the
    embedding restriction instead of narrowing it."""
    model = _classifier()
    compress_(model, EmbeddingQuantConfig(bits=8), filter=lambda fqn, module, name: True)
    assert set(quantized_tensors(model)) == {"embedding.weight"}
