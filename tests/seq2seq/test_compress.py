"""Compression of seq2seq models: every method reaches encoder, decoder and attention;
pruned and low-rank models still export to the native runtime and ONNX with PyTorch's
outputs; a distillation recipe trains a narrower student; hidden-unit pruning refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmlite.compress import compress_, summary
from lstmlite.compress.recipe import apply_recipe, parse_recipe
from lstmlite.export.onnx_seq2seq import check_seq2seq_onnx, export_seq2seq_onnx
from lstmlite.export.seq2seq import export_seq2seq_lsl
from lstmlite.export.size import account
from lstmlite.nn import Seq2Seq
from lstmlite.runtime.seq2seq import NativeSeq2Seq
from lstmlite.seq2seq import decode_torch

from .conftest import native_vs_torch, padded_sources


def _config(method: str, **fields):
    return parse_recipe({"steps": [{"method": method, **fields}]}).steps[0].config()


def _model() -> Seq2Seq:
    torch.manual_seed(0)
    model = Seq2Seq(vocab_size=15, embed_dim=8, hidden_size=16, attention="bahdanau", max_target_len=6).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.5)
    return model


@pytest.mark.parametrize("method, fields, expect", [
    ("magnitude_prune", {"sparsity": 0.6}, ["embedding.weight", "encoder.weight_hh_l0_reverse", "decoder.weight_ih_l0",
                                            "attn_key.weight", "attn_query.weight", "combine.weight", "head.weight"]),
    ("low_rank", {"rank": 4}, ["encoder.weight_ih_l0", "encoder.weight_hh_l0_reverse", "decoder.weight_hh_l0"]),
    ("weight_quant", {"bits": 8}, ["embedding.weight", "encoder.weight_ih_l0", "decoder.weight_hh_l0",
                                   "attn_key.weight", "attn_v.weight", "bridge.weight", "head.weight"]),
])
def test_methods_reach_every_part_and_still_deploy(tmp_path, method, fields, expect):
    model = _model()
    compress_(model, _config(method, **fields))
    touched = {row["name"] for row in summary(model) if row["transforms"]}
    assert set(expect) <= touched
    x, lengths = padded_sources()
    paths = export_seq2seq_lsl(model, tmp_path / "lsl")
    assert NativeSeq2Seq(tmp_path / "lsl").decode(x, lengths, "beam", beam=3) == \
        decode_torch(model, x, lengths, "beam", beam=3)
    assert account(model).size_bytes == sum(p.stat().st_size for p in paths)
    export_seq2seq_onnx(model, tmp_path / "onnx", quantize="qdq" if method == "weight_quant" else None)
    assert check_seq2seq_onnx(model, tmp_path / "onnx", x, lengths) < 1e-4


def test_hidden_unit_pruning_refuses_a_seq2seq_model():
    with pytest.raises(ValueError, match="hidden-unit pruning needs"):
        compress_(_model(), _config("hidden_unit_prune", fraction=0.25))


def test_vocabulary_pruning_refuses_a_seq2seq_model(tmp_path, capsys):
    """vocab_prune (the text-tiny recipe's first step) is refused in one line naming the nearest
    supported form, through compress_ and through `lstmlite compress`, with no run dir written and
    the model unchanged. Catches the embedding shrunk under a head that still writes every token
    (`lstmlite compress` then died with an internal IndexError decoding the test split)."""
    from lstmlite.cli.main import main

    model = _model()
    with pytest.raises(ValueError, match=r"^vocab_prune cannot shrink a seq2seq model's vocabulary: .*"
                                         r"nearest supported form: embedding_quant"):
        compress_(model, _config("vocab_prune", keep=8))
    assert model.embedding.num_embeddings == 15 and model.vocab_size == 15
    pairs = tmp_path / "p.tsv"
    pairs.write_text("abc\tcba\nbca\tacb\ncab\tbac\nab\tba\n" * 10, encoding="utf-8")
    (tmp_path / "vp.json").write_text('{"steps": [{"method": "vocab_prune", "keep": 6}]}', encoding="utf-8")
    assert main(["train", "--data", str(pairs), "--task", "seq2seq", "--out", str(tmp_path / "run"), "--no-progress",
                 "--train.epochs=1", "--model.hidden_size=4", "--model.embed_dim=4"]) == 0
    capsys.readouterr()
    assert main(["compress", str(tmp_path / "run"), "--recipe", str(tmp_path / "vp.json"), "--out",
                 str(tmp_path / "small"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "vocab_prune cannot shrink a seq2seq model's vocabulary" in err and err.count("\n") == 1
    assert not (tmp_path / "small").exists()


def test_distillation_recipe_trains_a_narrower_student(tmp_path):
    from lstmlite.cli.main import main
    from lstmlite.io import load_run, read_json

    pairs = tmp_path / "p.tsv"
    pairs.write_text("abc\tcba\nbca\tacb\ncab\tbac\nab\tba\n" * 10, encoding="utf-8")
    assert main(["train", "--data", str(pairs), "--task", "seq2seq", "--out", str(tmp_path / "run"), "--no-progress",
                 "--train.epochs=1", "--model.hidden_size=16", "--model.embed_dim=8"]) == 0
    recipe = {"distill": {"temperature": 2.0, "alpha": 0.5},
              "steps": [{"student": {"width": 0.5}, "distill_epochs": 1}, {"method": "int8_weight"}]}
    apply_recipe(tmp_path / "run", recipe, tmp_path / "small", progress=False)
    student = load_run(tmp_path / "small").model
    assert student.config()["hidden_size"] == 8 and student.config()["decoder_hidden_size"] == 8
    assert read_json(tmp_path / "small" / "metrics.json")["size_bytes"] < \
        read_json(tmp_path / "run" / "metrics.json")["size_bytes"] / 4


def test_search_sizes_a_seq2seq_trial_by_its_bundle(tmp_path):
    from lstmlite.io import load_run, read_json
    from lstmlite.search import search

    pairs = tmp_path / "p.tsv"
    pairs.write_text("abc\tcba\nbca\tacb\ncab\tbac\nab\tba\n" * 10, encoding="utf-8")
    space = {"params": {"hidden_size": {"low": 4, "high": 8, "step": 4}, "weight_bits": {"choices": [32, 8]}},
             "fixed": {"epochs": 1, "lr": 0.03, "finetune_epochs": 1}}
    result = search(str(pairs), "seq2seq", trials=2, out=tmp_path / "s", space=space, prune=False)
    assert result["trials"] == 2
    best = tmp_path / "s" / "best"
    bundle = account(load_run(best).model).size_bytes  # the three exported files
    assert result["best"]["size_bytes"] == bundle and result["best"]["size_kind"] == "lsl"
    assert result["best"]["latency_kind"] == "measured"  # the decoder step in the runtime
    assert read_json(best / "metrics.json")["size_bytes"] == bundle


@pytest.mark.parametrize("bits", [8, 4])
def test_pruned_after_quantizing_deploys_what_the_model_computes(tmp_path, bits):
    """Quantize, then prune the tensors around the recurrent layers (the mask after the
    quantizer, so their codes predate the mask): the native bundle and the ONNX QDQ pair compute
    what the model computes; the bundle stores each masked tensor as the model's codes with the
    mask's zeros applied (the same scales give the masked weights exactly, as the .lsl writer
    keeps them), so its bytes are no more than the quantized-only model's, and the ONNX QDQ pair
    does the same (those tensors among its codes, its outputs the model's); size_bytes is still the
    files' bytes. Catches the bundle storing the pre-mask codes (log-probs off by ~1), the bundle
    falling back to float32 (a pruned int8 bundle larger than the int8 one), and the ONNX pair
    falling back to float for the masked tensors."""
    from safetensors.numpy import load_file

    from lstmlite.compress.quantize import quantized_tensors
    from lstmlite.export.onnx import read_export_metadata
    from lstmlite.runtime.lsl import unpack_nibbles

    model = _model()
    compress_(model, _config("weight_quant", bits=bits))
    quantized_only = account(model).size_bytes
    # the tensors around the recurrent layers only: the encoder's and decoder's codes stay exact
    compress_(model, _config("magnitude_prune", sparsity=0.6),
              filter=lambda fqn, module, name: not fqn.startswith(("encoder", "decoder")))
    x, lengths = padded_sources()
    paths = export_seq2seq_lsl(model, tmp_path / "lsl")
    side = load_file(str(tmp_path / "lsl" / "seq2seq.safetensors"))
    codes = quantized_tensors(model)
    for name in ("embedding.weight", "attn_key.weight", "head.weight"):
        assert name not in side
        effective = model.get_submodule(name.rsplit(".", 1)[0]).weight.detach().numpy()
        stored = side[f"{name}.codes"] if bits == 8 else unpack_nibbles(side[f"{name}.codes4"], effective.shape[1])
        np.testing.assert_array_equal(stored, np.where(effective == 0, 0, codes[name].codes.numpy()))
        np.testing.assert_array_equal(stored * side[f"{name}.scale"][:, None], effective)
        assert (stored == 0).mean() >= 0.5  # the mask is in
    assert sum(p.stat().st_size for p in paths) <= quantized_only
    native = NativeSeq2Seq(tmp_path / "lsl")
    assert native_vs_torch(model, native, x, lengths) < 1e-4
    assert native.decode(x, lengths, "beam", beam=3) == decode_torch(model, x, lengths, "beam", beam=3)
    assert account(model).size_bytes == sum(p.stat().st_size for p in paths)
    encoder_onnx, decoder_onnx = export_seq2seq_onnx(model, tmp_path / "onnx", quantize="qdq")
    coded = read_export_metadata(decoder_onnx)["quantized"]
    assert {"decoder.weight_hh_l0", "head.weight", "embedding.weight"} <= set(coded)
    assert check_seq2seq_onnx(model, tmp_path / "onnx", x, lengths) < 1e-4


@pytest.mark.parametrize("bits", [None, 8, 4])
def test_low_rank_side_tensors_deploy_as_their_factors(tmp_path, bits):
    """An embedding factored by embedding_low_rank and a head factored by low_rank (then, with
    ``bits``, every tensor quantized: the factors get their own codes) deploy in the bundle as
    their factors NAME.u / NAME.v, each as the model's own codes where it has them (int4 two per
    byte), with no dense product and no stray copy of a factor; the native runtime's step
    log-probs are PyTorch's within 1e-4 and its beam decode equals decode_torch's; size_bytes is
    the files' bytes and below the same model's bundle without the factorizations. Catches the
    bundle storing the dense float product plus the factors' floats under
    embedding.parametrizations.* (an embedding low-rank + int8 bundle about twice the int8 one's)."""
    from safetensors.numpy import load_file

    from lstmlite.compress.quantize import quantized_tensors
    from lstmlite.runtime.lsl import unpack_nibbles

    def build(factored: bool) -> Seq2Seq:
        torch.manual_seed(0)
        model = Seq2Seq(vocab_size=60, embed_dim=16, hidden_size=8, attention="luong", max_target_len=6).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(2.5)
        if factored:
            compress_(model, _config("embedding_low_rank", rank=3))
            compress_(model, _config("low_rank", rank=3), filter=lambda fqn, module, name: fqn == "head" and name == "weight")
        if bits:
            compress_(model, _config("weight_quant", bits=bits))
        return model

    model = build(True)
    x, lengths = padded_sources(60)
    paths = export_seq2seq_lsl(model, tmp_path / "lsl")
    side = load_file(str(tmp_path / "lsl" / "seq2seq.safetensors"))
    assert not [k for k in side if "parametrizations" in k]
    codes = quantized_tensors(model)
    for name, rank_shape in (("embedding.weight", ((60, 3), (3, 16))), ("head.weight", ((60, 3), (3, 8)))):
        assert name not in side and not any(k.startswith(f"{name}.codes") for k in side)
        for which, key, shape in (("u", "original0", rank_shape[0]), ("v", "original1", rank_shape[1])):
            stored = f"{name}.{which}"
            if bits is None:
                assert side[stored].shape == shape and side[stored].dtype == np.float32
                continue
            q = codes[f"{name}.{key}"]
            got = side[f"{stored}.codes"] if bits == 8 else unpack_nibbles(side[f"{stored}.codes4"], shape[1])
            np.testing.assert_array_equal(got, q.codes.numpy())
            assert stored not in side
    native = NativeSeq2Seq(tmp_path / "lsl")
    assert native_vs_torch(model, native, x, lengths) < 1e-4
    assert native.decode(x, lengths, "beam", beam=3) == decode_torch(model, x, lengths, "beam", beam=3)
    assert account(model).size_bytes == sum(p.stat().st_size for p in paths)
    assert account(model).size_bytes < account(build(False)).size_bytes


def test_the_library_export_refuses_fewer_bits_than_the_models_codes(tmp_path):
    """export_seq2seq_lsl(weights="int4") of an int8 model raises naming both files' int8
    matrices, and writes nothing; it wrote the int8 bundle as if int4 had been honoured
    (only the CLI refused). The model's own form (weights=None) is written."""
    model = _model()
    compress_(model, _config("weight_quant", bits=8))
    with pytest.raises(ValueError, match=r"^weights=int4: this run's weights are already int8 codes "
                                         r"\(encoder\.lsl l0\.0\.w_ih, .*not int4.*weights=auto \(int8\)$"):
        export_seq2seq_lsl(model, tmp_path / "q4", weights="int4")
    assert not (tmp_path / "q4").exists()
    assert len(export_seq2seq_lsl(model, tmp_path / "own")) == 3
