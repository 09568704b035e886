"""PyTorch import: nn modules, models around them, state-dict files. Oracle: the PyTorch module itself."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lstmlite.importers import ModelImportError
from lstmlite.importers.layers import SimpleRNN
from lstmlite.importers.torch import import_torch
from lstmlite.io import load_run, save_run
from lstmlite.nn import GRU, LSTM, LanguageModel, SequenceClassifier

VOCAB = 25


@pytest.mark.parametrize("module, cls", [
    (lambda: nn.LSTM(4, 6, num_layers=2, bidirectional=True), LSTM),
    (lambda: nn.LSTM(4, 6, proj_size=3, batch_first=True), LSTM),
    (lambda: nn.GRU(4, 6, num_layers=3, batch_first=True), GRU),
    (lambda: nn.RNN(4, 6, nonlinearity="relu", bidirectional=True), SimpleRNN),
])
def test_recurrent_modules(module, cls) -> None:
    torch.manual_seed(0)
    ref = module().eval()
    ours = import_torch(ref)
    assert isinstance(ours, cls)
    x = torch.randn(3, 5, 4)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], ref(x)[0])


class Classifier(nn.Module):
    def __init__(self, pool: str = "state", batch_first: bool = True) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 8)
        self.lstm = nn.LSTM(8, 10, num_layers=2, batch_first=batch_first, bidirectional=True)
        self.out = nn.Linear(20, 4)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, (h, _) = self.lstm(self.embed(x))
        if self.pool == "mean":
            features = seq.mean(1 if self.lstm.batch_first else 0)
        else:
            features = torch.cat([h[-2], h[-1]], 1)
        return torch.log_softmax(self.out(features), -1)


def test_module_with_example_input_is_verified_and_matches() -> None:
    torch.manual_seed(0)
    module = Classifier().eval()
    model = import_torch(module, example_input=torch.randint(0, VOCAB, (2, 5)))
    assert isinstance(model, SequenceClassifier)
    assert model.import_info["output_activation"] == "log_softmax"
    x = torch.randint(0, VOCAB, (4, 9))
    with torch.no_grad():
        torch.testing.assert_close(torch.log_softmax(model(x), -1), module(x))


def test_time_major_module() -> None:
    torch.manual_seed(0)
    module = Classifier(batch_first=False).eval()
    model = import_torch(module, example_input=torch.randint(0, VOCAB, (6, 2)))
    x = torch.randint(0, VOCAB, (3, 7))
    with torch.no_grad():
        torch.testing.assert_close(torch.log_softmax(model(x), -1), module(x.T))


def test_wrong_pooling_is_caught_then_fixed_by_arch() -> None:
    torch.manual_seed(0)
    module = Classifier(pool="mean").eval()
    example = torch.randint(0, VOCAB, (2, 6))
    with pytest.raises(ModelImportError, match="does not reproduce"):
        import_torch(module, example_input=example)
    model = import_torch(module, arch={"pooling": "mean"}, example_input=example)
    assert model.pooling == "mean"


def test_state_dict_files(tmp_path) -> None:
    torch.manual_seed(0)
    module = Classifier().eval()
    torch.save(module.state_dict(), tmp_path / "weights.pt")
    model = import_torch(tmp_path / "weights.pt", out=tmp_path / "run")
    x = torch.randint(0, VOCAB, (3, 8))
    with torch.no_grad():
        torch.testing.assert_close(torch.log_softmax(model(x), -1), module(x))
        torch.testing.assert_close(load_run(tmp_path / "run").model(x), model(x), rtol=0, atol=0)
    # A training checkpoint that keeps the weights under "model_state_dict".
    torch.save({"epoch": 3, "model_state_dict": module.state_dict()}, tmp_path / "ckpt.pt")
    again = import_torch(tmp_path / "ckpt.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_pickled_module_file_is_refused(tmp_path) -> None:
    torch.save(Classifier(), tmp_path / "module.pt")  # pickles code: weights_only must refuse it
    with pytest.raises(ModelImportError, match="weights_only=True: it holds pickled objects"):
        import_torch(tmp_path / "module.pt")


@pytest.mark.parametrize("content", ["truncated", "other_format"])
def test_a_truncated_or_foreign_file_is_called_unreadable_not_pickled(content: str, tmp_path) -> None:
    """A state-dict file cut short (a failed copy), or a file of another format named .pt, is
    reported as unreadable, one line naming the file; before, both were told they held pickled
    objects and to save the state dict instead of the module, which they already were."""
    torch.save(nn.LSTM(3, 4).state_dict(), tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "bad.pt").write_bytes(data[: len(data) // 2] if content == "truncated" else b"\x08\x07ONNX" * 40)
    with pytest.raises(ModelImportError) as caught:
        import_torch(tmp_path / "bad.pt")
    message = str(caught.value)
    assert "bad.pt: not a readable torch.save file, truncated or corrupt" in message, message
    assert "pickled" not in message and "\n" not in message


def test_language_model_and_arch_json(tmp_path) -> None:
    torch.manual_seed(0)
    emb, gru, head = nn.Embedding(VOCAB, 6), nn.GRU(6, 6, batch_first=True), nn.Linear(6, VOCAB)
    state = {**{f"enc.{k}": v for k, v in emb.state_dict().items()},
             **{f"rnn.{k}": v for k, v in gru.state_dict().items()},
             **{f"dec.{k}": v for k, v in head.state_dict().items()}}
    model = import_torch(state)
    assert isinstance(model, LanguageModel)  # per-step head over the embedding's vocabulary
    x = torch.randint(0, VOCAB, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], head(gru(emb(x))[0]))
    (tmp_path / "arch.json").write_text(json.dumps({"kind": "classifier"}))
    classifier = import_torch(state, arch=tmp_path / "arch.json")
    assert isinstance(classifier, SequenceClassifier) and classifier.n_classes == VOCAB


class BiasFreeHead(nn.Module):
    """A classifier whose bias-free head is as wide as the LSTM's input: (3, 8) fits an embedding too."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn, self.head = nn.LSTM(8, 8, batch_first=True), nn.Linear(8, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


@pytest.mark.parametrize("source", ["module", "state_dict"])
def test_a_bias_free_head_as_wide_as_the_input_stays_the_head(source: str) -> None:
    """A bias-free (C, H) head whose H equals the recurrent input size also fits an embedding's
    shape; it was taken for one and dropped, the import returning the bare LSTM without a word.
    The module's nn.Linear, or the head's place after the LSTM in a state dict, says it is the head."""
    torch.manual_seed(0)
    module = BiasFreeHead().eval()
    model = import_torch(module if source == "module" else module.state_dict())
    assert isinstance(model, SequenceClassifier)
    x = torch.randn(4, 6, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), module(x))


class TiedWidthLanguageModel(nn.Module):
    """Embedding (V, 8) → LSTM(8, 8) → bias-free Linear(8, V): both weights are (V, 8), so shape
    cannot say which is which."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.rnn, self.head = nn.Embedding(VOCAB, 8), nn.LSTM(8, 8, batch_first=True), nn.Linear(
            8, VOCAB, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(self.embed(x))[0])


@pytest.mark.parametrize("source", ["module", "state_dict"])
def test_embedding_and_bias_free_head_of_one_shape_are_told_apart(source: str) -> None:
    """An embedding and a bias-free head of the same (V, H) shape: before, both counted as
    embedding candidates and the import refused as ambiguous. The layer types (module), or the
    order around the LSTM (state dict), place them; a swap would feed tokens through the head's
    matrix and fail the comparison with the module."""
    torch.manual_seed(0)
    module = TiedWidthLanguageModel().eval()
    model = import_torch(module if source == "module" else module.state_dict())
    assert isinstance(model, LanguageModel)
    x = torch.randint(0, VOCAB, (3, 7))
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], module(x))


def test_lstmlite_run_weights_with_full_config(tmp_path) -> None:
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, hidden_size=8, n_classes=3, cell="gru", bidirectional=True)
    save_run(tmp_path / "run", model, {"task": "classify"})
    back = import_torch(tmp_path / "run" / "model.safetensors", arch=tmp_path / "run")
    assert back.config() == model.config()
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(back(x), model(x), rtol=0, atol=0)


def test_ambiguous_and_foreign_state_dicts() -> None:
    lstm = nn.LSTM(4, 6)
    extra = {"norm.weight": torch.ones(6), "norm.bias": torch.zeros(6), "norm.running_mean": torch.zeros(6)}
    with pytest.raises(ModelImportError, match="cannot place"):
        import_torch({**{f"lstm.{k}": v for k, v in lstm.state_dict().items()}, **extra})
    two = {**{f"a.{k}": v for k, v in lstm.state_dict().items()}, **{f"b.{k}": v for k, v in lstm.state_dict().items()}}
    with pytest.raises(ModelImportError, match="one recurrent layer"):
        import_torch(two)


class _Nudged(Classifier):
    """Classifier whose class-0 logit is moved by ``delta`` before the log-softmax: something
    lstmlite's models do not compute."""

    def __init__(self, delta: float) -> None:
        super().__init__()
        self.delta = delta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, (h, _) = self.lstm(self.embed(x))
        logits = self.out(torch.cat([h[-2], h[-1]], 1))
        return torch.log_softmax(logits + torch.tensor([self.delta, 0.0, 0.0, 0.0]), -1)


def test_verification_holds_every_output_to_the_tolerance() -> None:
    """A class-0 logit off by 1e-3 moves the log-probabilities by up to ~1e-3, ten times the
    tolerance (1e-5 + 1e-4 of the largest output): the import must refuse it."""
    torch.manual_seed(0)
    module = _Nudged(1e-3).eval()
    example = torch.randint(0, VOCAB, (2, 5), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ModelImportError, match="does not reproduce"):
        import_torch(module, example_input=example)
    module.delta = 0.0
    assert import_torch(module, example_input=example).import_info["output_activation"] == "log_softmax"


class ReluTagger(nn.Module):
    """A user's model around nn.RNN(nonlinearity="relu"): the nonlinearity is not in the state dict."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn, self.fc = nn.RNN(4, 6, nonlinearity="relu", batch_first=True), nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.rnn(x)[1][-1])


def test_module_holding_a_relu_rnn_keeps_its_nonlinearity() -> None:
    """Read without example_input (nothing runs the module), the import must still take ReLU from
    the nn.RNN itself; checked against the module on new input (catches the tanh default used)."""
    torch.manual_seed(0)
    module = ReluTagger().eval()
    model = import_torch(module)
    assert model.rnn.nonlinearity == "relu"
    x = torch.randn(3, 7, 4)
    with torch.no_grad():
        torch.testing.assert_close(model(x), module(x))


def test_time_major_bare_layer_with_example_input() -> None:
    """An nn.GRU with batch_first=False imported alone stays a time-major layer, so the example
    (T, B, I) is fed to both as it is, and the import verifies (catches the example transposed
    for a bare layer as it is for a task model)."""
    torch.manual_seed(0)
    ref = nn.GRU(4, 5, num_layers=2).eval()
    ours = import_torch(ref, example_input=torch.randn(6, 2, 4))
    assert ours.import_info["verified"] is True
    x = torch.randn(8, 3, 4)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], ref(x)[0])


def test_state_dict_with_a_one_output_head_is_read_as_a_forecaster() -> None:
    """No arch: a head with one output on feature input is a one-step forecaster (the documented
    rule), computing the source's Linear on the last state (catches every head read as a classifier)."""
    from lstmlite.nn import Forecaster

    torch.manual_seed(0)
    lstm, fc = nn.LSTM(3, 5, batch_first=True), nn.Linear(5, 1)
    state = {**{f"lstm.{k}": v for k, v in lstm.state_dict().items()},
             **{f"fc.{k}": v for k, v in fc.state_dict().items()}}
    model = import_torch(state)
    assert isinstance(model, Forecaster) and model.horizon == 1
    x = torch.randn(2, 6, 3)
    with torch.no_grad():
        expected = fc(lstm(x)[1][0][-1])
        torch.testing.assert_close(model(x).reshape(expected.shape), expected)



def test_state_dict_of_a_projected_lstm_and_a_missing_recurrent_matrix() -> None:
    """A bare state dict of nn.LSTM(proj_size=3): the hidden size is read from weight_hr (6), not
    from weight_hh's width (the projection, 3), and the layer matches nn.LSTM; the same dict without
    weight_hh_l0 is refused naming the missing key (catches H read from weight_hh, and the missing-key
    check dropped: a bare KeyError)."""
    torch.manual_seed(0)
    ref = nn.LSTM(4, 6, proj_size=3, batch_first=True).eval()
    ours = import_torch(ref.state_dict())
    assert isinstance(ours, LSTM) and ours.hidden_size == 6 and ours.proj_sizes == [3]
    x = torch.randn(2, 5, 4)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], ref(x)[0])
    state = {k: v for k, v in ref.state_dict().items() if k != "weight_hh_l0"}
    with pytest.raises(ModelImportError, match="weight_hh_l0 is missing"):
        import_torch(state)


def test_lstmlite_model_source_is_copied_not_shared() -> None:
    """Importing one of our own models returns a copy: changing the import's weights (fine-tuning,
    compressing) leaves the source as it was, and import_info lands on the copy only (catches the
    module returned as it is)."""
    torch.manual_seed(0)
    source = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2).eval()
    before = source.head.weight.detach().clone()
    model = import_torch(source)
    assert model is not source and not hasattr(source, "import_info")
    with torch.no_grad():
        model.head.weight.add_(1.0)
    assert torch.equal(source.head.weight, before)


def test_full_config_with_a_missing_key_does_not_keep_random_weights() -> None:
    """A state dict of our classifier without head.bias, with the model's full config as arch: the
    missing bias must not be left at build_model's random initialisation; it is read as a head
    without bias (zero), the documented rule for a missing bias (catches the full-config path
    loading a partial state dict with strict=False)."""
    torch.manual_seed(0)
    source = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2).eval()
    state = {k: v for k, v in source.state_dict().items() if k != "head.bias"}
    model = import_torch(state, arch=source.config())
    assert torch.equal(model.head.bias, torch.zeros(2))
    torch.testing.assert_close(model.head.weight, source.head.weight)


def test_refusals_of_example_input_for_a_state_dict_and_of_a_pooled_forecaster() -> None:
    """example_input with a state dict (nothing to run it on) is a ValueError, and arch asking for
    a forecaster with mean pooling (ours reads the last step) is refused; catches both checks dropped
    (the first silently skipped the verification the caller asked for)."""
    torch.manual_seed(0)
    lstm, fc = nn.LSTM(3, 5, batch_first=True), nn.Linear(5, 1)
    state = {**{f"lstm.{k}": v for k, v in lstm.state_dict().items()},
             **{f"fc.{k}": v for k, v in fc.state_dict().items()}}
    with pytest.raises(ValueError, match="example_input needs a module"):
        import_torch(state, example_input=torch.randn(2, 4, 3))
    with pytest.raises(ModelImportError, match="forecaster reads the last step"):
        import_torch(state, arch={"kind": "forecaster", "pooling": "mean"})


def test_a_model_around_a_projected_lstm_imports_with_its_projection(tmp_path) -> None:
    """A module holding nn.LSTM(proj_size=3) and a head on the projected output imports as a
    classifier whose LSTM keeps the projection (rnn_options proj_size), verified against the
    module, written as a run dir and read back with the same outputs; the same weights as a
    state-dict file import too. Catches the task model built without the projection: an
    internal 'size mismatch for weight_hh_l0' error."""

    class Projected(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.fc = nn.LSTM(4, 6, proj_size=3, batch_first=True), nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.lstm(x)[0][:, -1])

    torch.manual_seed(0)
    module = Projected().eval()
    x = torch.randn(3, 5, 4)
    model = import_torch(module, example_input=x, out=tmp_path / "run")
    assert model.rnn.proj_sizes == [3] and model.config()["rnn_options"]["proj_size"] == 3
    torch.save(module.state_dict(), tmp_path / "w.pt")
    with torch.no_grad():
        for ours in (load_run(tmp_path / "run").model, import_torch(tmp_path / "w.pt")):
            torch.testing.assert_close(ours(x), module(x))


def test_a_state_dict_projecting_only_its_last_layer_imports_with_that_projection() -> None:
    """lstmlite's LSTM may project some layers and not others (proj_size=[0, 3]). A state dict of
    one, written here from two nn.LSTMs (layer 0 plain, layer 1 with proj_size=3) and a head,
    imports as a classifier computing what those modules compute in turn. Catches the
    projection kept only when every layer has one: the task model is then built unprojected
    and the weights do not load."""
    torch.manual_seed(0)
    first, second = nn.LSTM(4, 8, batch_first=True), nn.LSTM(8, 6, proj_size=3, batch_first=True)
    head = nn.Linear(3, 2)
    state = {f"rnn.{k}": v for k, v in first.state_dict().items()}
    state.update({f"rnn.{k.replace('_l0', '_l1')}": v for k, v in second.state_dict().items()})
    state.update({f"head.{k}": v for k, v in head.state_dict().items()})
    model = import_torch(state)
    assert isinstance(model, SequenceClassifier) and model.rnn.proj_sizes == [0, 3]
    x = torch.randn(3, 5, 4)
    with torch.no_grad():
        torch.testing.assert_close(model(x), head(second(first(x)[0])[0][:, -1]))


def test_key_map_renames_the_start_of_a_key_only() -> None:
    """A checkpoint keeping a model under "model." (as Lightning does), imported with
    key_map={"model.": ""}: the prefix goes, and a module whose own name ends in "model"
    keeps it (its keys sub_model.weight / .bias stay one head). Catches the rename applied
    anywhere in a key, which makes them sub_weight / sub_bias, entries the import cannot place."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.sub_model = nn.LSTM(4, 6, batch_first=True), nn.Linear(6, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.sub_model(self.lstm(x)[0][:, -1])

    torch.manual_seed(0)
    net = Net().eval()
    model = import_torch({f"model.{k}": v for k, v in net.state_dict().items()}, key_map={"model.": ""})
    assert isinstance(model, SequenceClassifier)
    x = torch.randn(3, 5, 4)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x))


def test_a_compressed_lstmlite_runs_weights_are_refused_naming_the_run_dir(tmp_path) -> None:
    """The model.safetensors of a compressed run (parametrize's names: weight originals beside
    int8 scales) imported as a state dict, even with the run's config as arch, is refused in one
    line saying what it is and what to use instead, with no run dir written; the finalized
    model's weights import and compute what the compressed model computes. Catches the old
    'found 0 recurrent layers; pass key_map' advice, which no key_map satisfies."""
    from lstmlite.compress import WeightQuantConfig, compress_, compression_state, finalize

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, hidden_size=6, n_classes=3).eval()
    compress_(model, WeightQuantConfig(bits=8))
    run = save_run(tmp_path / "q8", model, {"task": "classify", "compression": compression_state(model)})
    with pytest.raises(ModelImportError, match=r"parametrized tensors .*compressed lstmlite run.*load_run.*finalize"):
        import_torch(run / "model.safetensors", arch=run, out=tmp_path / "back")
    assert not (tmp_path / "back").exists()
    x = torch.randn(2, 5, 4)
    expected = model(x)
    finalize(model)
    back = import_torch(model.state_dict(), arch={"pooling": "last"})
    with torch.no_grad():
        torch.testing.assert_close(back(x), expected)


def test_a_per_step_head_imports_as_a_tagger_with_arch_kind_tagger(tmp_path) -> None:
    """A bidirectional LSTM with a Linear on every step (a token tagger): arch kind "tagger" gives
    our SequenceTagger, matching the module on its example input and saved as a "tag" run (before:
    'unknown model kind tagger')."""
    from lstmlite.nn import SequenceTagger

    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.rnn, self.out = nn.Embedding(VOCAB, 6), nn.LSTM(6, 5, bidirectional=True), nn.Linear(10, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (T, B) token ids, time-major
            return self.out(self.rnn(self.emb(x))[0])

    torch.manual_seed(0)
    source = Tagger().eval()
    x = torch.randint(0, VOCAB, (7, 3))
    model = import_torch(source, arch={"kind": "tagger"}, example_input=x, out=tmp_path / "run")
    assert isinstance(model, SequenceTagger) and model.import_info["verified"]
    run = load_run(tmp_path / "run")
    assert run.metrics["task"] == "tag"
    with torch.no_grad():
        torch.testing.assert_close(run.model(x.T).transpose(0, 1), source(x))


@pytest.mark.parametrize("edit, named", [
    (lambda s: s.pop("rnn.bias_hh_l0"), '"bias_hh_l0"'),
    (lambda s: s.update({"rnn.weight_ih_l0_reverse": torch.zeros(20, 4)}), '"weight_hh_l0_reverse"'),
])
def test_a_state_dict_missing_recurrent_keys_is_refused_naming_them(edit, named: str) -> None:
    """A state dict with a recurrent tensor missing (or a direction only half there) is refused
    in one line that names the missing keys; before, the message ended at torch's first line,
    'Error(s) in loading state_dict for LSTM:', naming nothing."""
    state = {**{f"rnn.{k}": v for k, v in nn.LSTM(4, 5, batch_first=True).state_dict().items()},
             **{f"fc.{k}": v for k, v in nn.Linear(5, 3).state_dict().items()}}
    edit(state)
    with pytest.raises(ModelImportError) as caught:
        import_torch(state)
    message = str(caught.value)
    assert "Missing key(s)" in message and named in message and "\n" not in message, message


def test_a_bidirectional_state_dict_with_a_vocabulary_sized_head_is_read_as_a_classifier() -> None:
    """Without arch, a head as wide as the vocabulary means a language model only for a
    unidirectional layer; a bidirectional one sees the future, so the documented default (a
    classifier at the last step) applies and must match the module computing exactly that.
    Before, it was read as a language model and failed with a ValueError (not a
    ModelImportError): 'a language model cannot be bidirectional'."""
    torch.manual_seed(0)
    emb, rnn, head = nn.Embedding(VOCAB, 6), nn.LSTM(6, 5, batch_first=True, bidirectional=True), nn.Linear(10, VOCAB)
    state = {**{f"emb.{k}": v for k, v in emb.state_dict().items()},
             **{f"rnn.{k}": v for k, v in rnn.state_dict().items()},
             **{f"head.{k}": v for k, v in head.state_dict().items()}}
    model = import_torch(state)
    assert isinstance(model, SequenceClassifier)
    x = torch.randint(0, VOCAB, (3, 7))
    with torch.no_grad():
        h_n = rnn(emb(x))[1][0]  # (2, B, H): forward after the last step, backward after step 0
        torch.testing.assert_close(model(x), head(torch.cat([h_n[0], h_n[1]], -1)))
    with pytest.raises(ModelImportError, match="cannot be bidirectional"):
        import_torch(state, arch={"kind": "lm"})


def test_recurrent_weights_that_do_not_fit_are_one_line_cut_with_an_ellipsis() -> None:
    """torch's load_state_dict error (a header line, then one tab-indented line per problem)
    quoted on one line without its header, cut with "..." (lstmlite._text.one_line, twice the
    usual 160 characters so several keys show); before, it was cut at 300 with no "..."."""
    from lstmlite.importers.torch import layer_from_state_dict

    hidden, state = 4, {}
    for k in range(3):  # bias_hh missing in every layer, a reverse bias of the wrong size: a long list
        state[f"weight_ih_l{k}"] = torch.zeros(4 * hidden, 3 if k == 0 else hidden)
        state[f"weight_hh_l{k}"] = torch.zeros(4 * hidden, hidden)
        state[f"bias_ih_l{k}"] = torch.zeros(4 * hidden)
        state[f"bias_ih_l{k}_reverse"] = torch.zeros(5)
    with pytest.raises(ModelImportError) as caught:
        layer_from_state_dict(state)
    head = "the recurrent weights under '' do not form a lstm: "
    text = str(caught.value)
    assert text.startswith(head + 'Missing key(s) in state_dict: "bias_hh_l0", "weight_ih_l0_reverse"'), text
    assert "\n" not in text and "\t" not in text and "Error(s) in loading" not in text
    assert text.endswith("...") and len(text) == len(head) + 320, text
