"""The RAM objective (objectives.py: ram_bytes) is the RAM of the microcontroller project
``lstmlite export --format c`` writes for the model: the oracle here is that export
itself, writing a real project for the same model, and its Cortex-M4 figure
(``export_c(model, dir, form="auto").memory["cortex-m4"].ram``: state + scratch +
model.c's buffers + stack). Where the C export refuses the model, the estimate from the
definition, marked "estimated" -- never the other kind."""

import json
import warnings

import pytest
import torch

from lstmlite.export.c import UnsupportedForm, export_c
from lstmlite.export.c.memory import STACK_BYTES
from lstmlite.nn import LanguageModel, SequenceClassifier
from lstmlite.export.c.memory import STACK_BYTES
from lstmlite.search.objectives import RAM_TARGET, estimated_ram_bytes, ram_bytes

#: the float runtime's stack of one step on the Cortex-M4, which both kinds of figure include
FLOAT_STACK = STACK_BYTES[("float", "cortex-m4")]
from lstmlite.search.trial import _compress


def _model(name):
    torch.manual_seed(0)
    if name == "lstm":
        return SequenceClassifier(input_size=12, hidden_size=24, n_classes=5)
    if name == "gru":
        return SequenceClassifier(input_size=12, cell="gru", hidden_size=20, n_classes=5)
    if name == "lstm-2-layers":
        return SequenceClassifier(input_size=7, hidden_size=16, num_layers=2, n_classes=3)
    if name == "fastgrnn":
        return SequenceClassifier(input_size=6, cell="fastgrnn", hidden_size=8, n_classes=3)
    if name == "text":  # token ids through an embedding
        return SequenceClassifier(vocab_size=300, embed_dim=16, hidden_size=24, n_classes=6)
    if name == "lm":
        return LanguageModel(vocab_size=60, embed_dim=8, hidden_size=16)
    raise KeyError(name)


#: (model, the trial's compression point): weights as a trial leaves them.
CASES = [("lstm", {}), ("gru", {}), ("lstm-2-layers", {}), ("text", {}), ("lm", {}),
         ("lstm", {"weight_bits": 8}), ("gru", {"weight_bits": 8, "sparsity": 0.5}), ("text", {"weight_bits": 8}),
         ("lstm", {"rank": 4, "hidden_size": 24}), ("fastgrnn", {"weight_bits": 4, "qat": True})]


@pytest.mark.parametrize("name, point", CASES, ids=[f"{n}-{'-'.join(map(str, p.values())) or 'fp32'}"
                                                    for n, p in CASES])
def test_ram_is_the_cortex_m4_ram_of_the_c_project_export_writes(tmp_path, name, point):
    """Planted and failing it: the stack left out (state + scratch only), the Cortex-M3's
    figure taken (its stack is 24 B deeper), form fp32 used for an int8 model (its scratch
    is smaller than the int8 kernels')."""
    model = _model(name).eval()
    _compress(model, point)
    project = export_c(model, tmp_path / "c", form="auto")
    oracle = project.memory["cortex-m4"]
    assert ram_bytes(model) == (oracle.ram, "mcu-export")
    # the figure holds the stack of one step besides the static buffers the linker places
    assert oracle.ram == oracle.ram_static + STACK_BYTES[("float", "cortex-m4")] and oracle.stack > 0
    assert f"#define LSTMLITE_MODEL_WORK_BYTES {project.info['work_bytes']} " in (tmp_path / "c" / "model.h").read_text()
    assert RAM_TARGET == "cortex-m4"


def test_int8_weights_change_the_ram_as_the_c_project_does(tmp_path):
    """The form is the trial's own: int8 codes run the int8 kernels, whose scratch (three
    u8 planes of the input) the fp32 project does not have. Planted and failing it:
    ram_bytes exporting with form="fp32" (the int8 trial then reported at fp32's RAM)."""
    fp32, int8 = _model("lstm").eval(), _model("lstm").eval()
    _compress(int8, {"weight_bits": 8})
    ram32, ram8 = ram_bytes(fp32)[0], ram_bytes(int8)[0]
    assert ram8 == export_c(int8, tmp_path / "i8").memory["cortex-m4"].ram
    assert ram32 == export_c(fp32, tmp_path / "f32").memory["cortex-m4"].ram
    assert ram8 > ram32


def _refused(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: no oneDNN kernel for LSTM projections
        if name == "bidirectional":
            return SequenceClassifier(input_size=3, hidden_size=8, num_layers=2, bidirectional=True, n_classes=4)
        if name == "grouped":
            return SequenceClassifier(input_size=4, cell="glstm", hidden_size=8, n_classes=2)
        if name == "projection":
            return SequenceClassifier(input_size=3, hidden_size=8, n_classes=2, rnn_options={"proj_size": 4})
        return SequenceClassifier(input_size=3, hidden_size=8, n_classes=2, pooling="mean")


@pytest.mark.parametrize("name", ["bidirectional", "grouped", "projection", "pooled"])
def test_a_model_the_c_export_refuses_gets_the_estimate_marked_estimated(tmp_path, name):
    """The C export refuses these (one line, UnsupportedForm); the RAM is then the estimate
    of the definition (estimated_ram_bytes) and says so. Planted and failing it: the
    fallback reported as "mcu-export", and the fallback dropped (the refusal raised out of
    the trial)."""
    model = _refused(name).eval()
    with pytest.raises(UnsupportedForm):
        export_c(model, tmp_path, form="auto")
    assert ram_bytes(model) == (estimated_ram_bytes(model), "estimated")


@pytest.mark.parametrize("cell, per_state, gates", [("lstm", 2, 4), ("gru", 1, 3)])
def test_the_estimate_is_state_plus_the_widest_scratch_plus_outputs(cell, per_state, gates):
    """By hand, from the definition: float32 h (and c) per layer and direction, the widest
    layer's G*H gate pre-activations + its input + its output, the head's outputs, and the
    float runtime's stack of one step, as an exportable model is charged (a bidirectional
    model: the C export refuses it, so this is its RAM). Catches the stack left out (the
    estimate then about 1.4 KB below an exportable model of the same size)."""
    model = SequenceClassifier(input_size=3, cell=cell, hidden_size=8, num_layers=2, bidirectional=True, n_classes=4)
    state = 2 * 2 * per_state * 8
    scratch = gates * 8 + 3 + 2 * 8
    assert ram_bytes(model) == (4 * (state + scratch + 4) + FLOAT_STACK, "estimated")


@pytest.mark.parametrize("options, state_floats", [({"proj_size": 4}, 4 + 8), ({}, 8 + 8)])
def test_the_estimate_of_a_projected_lstm_counts_h_at_the_projection_width(options, state_floats):
    """An LSTMP (H=8, P=4) keeps h and its output P wide and c H wide: the runtime's own
    stream state is 12 floats (16 without the projection), and the estimate is that state
    + the 4H gate pre-activations + the 3 inputs + the P (or H) outputs + the head's 2.
    Catches h and the output counted at H when a projection is searched (the state then
    16 floats, 8 bytes too many)."""
    from lstmlite.export.size import lsl_image
    from lstmlite.runtime import Engine

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: no oneDNN kernel for LSTM projections
        model = SequenceClassifier(input_size=3, hidden_size=8, n_classes=2, rnn_options=options).eval()
    assert Engine(lsl_image(model)).new_state(1).values().size == state_floats  # the runtime agrees
    width = options.get("proj_size", 8)
    assert estimated_ram_bytes(model) == 4 * (state_floats + 4 * 8 + 3 + width + 2) + FLOAT_STACK
    # the projection is refused by the C export (estimate), the plain LSTM is not (its project's RAM)
    assert ram_bytes(model)[1] == ("estimated" if options else "mcu-export")


@pytest.mark.parametrize("point, kind", [
    ({"cell": "gru", "hidden_size": 8, "weight_bits": 8}, "mcu-export"),
    ({"cell": "lstm", "hidden_size": 8, "bidirectional": True}, "estimated"),
])
def test_a_trial_records_the_ram_of_its_run_dirs_c_export_and_its_kind(tiny_data, tmp_path, point, kind):
    """The oracle is `lstmlite export RUN --format c` of the trial's own run dir: the record,
    metrics.json and the figure known before training (the profile the budget and the
    pruning use) all hold its Cortex-M4 RAM, with ram_kind. Planted and failing it: the
    record without ram_kind, the profile's RAM taken from the estimate."""
    from lstmlite.search.trial import run_trial

    seen = {}
    record = run_trial({**point, "epochs": 1, "lr": 0.02}, {"source": tiny_data, "task": "classify"},
                       tmp_path / "t", skip_if=lambda profile: seen.update(profile))
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert record["ram_kind"] == seen["ram_kind"] == metrics["ram_kind"] == kind
    assert record["ram_bytes"] == seen["ram_bytes"] == metrics["ram_bytes"]
    if kind == "mcu-export":
        assert record["ram_bytes"] == export_c(tmp_path / "t", tmp_path / "c").memory["cortex-m4"].ram
    else:
        with pytest.raises(UnsupportedForm):
            export_c(tmp_path / "t", tmp_path / "c")
        from lstmlite import load_run

        assert record["ram_bytes"] == estimated_ram_bytes(load_run(tmp_path / "t").model)


def test_ram_writes_no_project_and_formats_no_weights(monkeypatch):
    """The search calls ram_bytes twice per trial, so it must cost milliseconds: no files,
    and no weight formatted as C text (the export's text of a large embedding takes
    seconds). Planted and failing it: ram_bytes calling export_c into a temporary dir."""
    from lstmlite.export.c import float_form

    def refuse(*args, **kwargs):
        raise AssertionError("ram_bytes must neither write a project nor format the weights")

    model = SequenceClassifier(vocab_size=2000, embed_dim=64, hidden_size=32, n_classes=4).eval()
    monkeypatch.setattr("lstmlite.export.c.write_project", refuse)
    monkeypatch.setattr(float_form, "c_array", refuse)
    assert ram_bytes(model)[1] == "mcu-export"
