"""Streaming CTC over the native runtime (lstmlite.runtime.stream): the runtime's
per-step calls with the state carried reproduce PyTorch's whole-sequence logits and
greedy decode, for float and int8 weights."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lstmlite.compress import WeightQuantConfig, compress_
from lstmlite.ctc import greedy_decode
from lstmlite.export.lsl import spec_from_module, write_lsl
from lstmlite.nn import SequenceTagger
from lstmlite.runtime import Engine
from lstmlite.runtime import stream
from lstmlite.runtime.stream import StreamingCTC, measure_streaming, time_streaming


def _peaky_tagger(seed: int = 0) -> SequenceTagger:
    """A random tagger whose head is scaled up so that frames have clear winners
    (untrained heads give near-ties, where any rounding would flip an argmax)."""
    torch.manual_seed(seed)
    model = SequenceTagger(input_size=6, hidden_size=24, num_layers=2, n_classes=5).eval()
    with torch.no_grad():
        model.head.weight.mul_(8.0)
    return model


@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_step_by_step_equals_pytorch_whole_sequence(weights):
    model = _peaky_tagger()
    if weights == "int8":
        compress_(model, WeightQuantConfig(bits=8))
    engine = Engine(write_lsl(spec_from_module(model), weights="auto"))
    x = np.random.default_rng(0).normal(size=(3, 40, 6)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()  # (B, T, C)
    rec = StreamingCTC(engine)
    for b in range(3):
        rec.reset()
        logits = np.stack([engine.step(frame, rec.state) for frame in x[b]])
        np.testing.assert_allclose(logits, expected[b], rtol=1e-4, atol=1e-4)
        assert rec.decode(x[b]) == greedy_decode(expected[b])
    # the whole-sequence call gives the same per-frame logits
    np.testing.assert_allclose(engine.run(x), expected, rtol=1e-4, atol=1e-4)


def test_pytorch_streaming_chunks_equal_whole_sequence():
    model = _peaky_tagger(1)
    x = torch.randn(2, 30, 6)
    with torch.no_grad():
        whole = model(x)
        state, parts = None, []
        for t in range(30):
            out, state = model.forward_stream(x[:, t:t + 1], state)
            parts.append(out)
    torch.testing.assert_close(torch.cat(parts, 1), whole, rtol=1e-5, atol=1e-5)


def test_streaming_needs_a_per_step_head_and_reports_timing():
    with pytest.raises(ValueError, match="per-step head"):
        StreamingCTC(Engine.from_torch(torch.nn.LSTM(4, 8, batch_first=True)))
    # a bidirectional CTC model (stacked, projected: layer 1 is the bidirectional one) is refused
    # in one line naming what to do, before any frame: not the runtime's bare "error -4" at the first push
    torch.manual_seed(0)
    both = SequenceTagger(input_size=6, hidden_size=8, num_layers=2, bidirectional=True, n_classes=5,
                          rnn_options={"proj_size": 4}).eval()
    for decoder in ("greedy", "beam"):
        with pytest.raises(ValueError, match=r"^streaming CTC needs a unidirectional model: layer 0 is "
                                             r"bidirectional .*without --stream.*$"):
            StreamingCTC(Engine.from_torch(both), decoder=decoder)
    engine = Engine.from_torch(_peaky_tagger())
    stats = measure_streaming(engine, [np.zeros((25, 6), np.float32)] * 2, hop_s=0.01)
    assert stats["frames"] == 50 and stats["audio_seconds"] == pytest.approx(0.5)
    assert 0 < stats["p50_us"] <= stats["p90_us"]
    assert stats["rtf"] == pytest.approx(stats["us_per_frame"] * 1e-6 / 0.01)


@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_beam_decoding_over_the_runtime_step_equals_beam_search_of_pytorch_logits(weights):
    from lstmlite.ctc import beam_search

    model = _peaky_tagger(2)
    with torch.no_grad():
        model.head.weight.mul_(0.25)  # flatter frames: the beam then differs from the best path
    if weights == "int8":
        compress_(model, WeightQuantConfig(bits=8))
    engine = Engine(write_lsl(spec_from_module(model), weights="auto"))
    x = np.random.default_rng(1).normal(size=(6, 30, 6)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    rec = StreamingCTC(engine, decoder="beam", beam=4)
    differs = 0
    for b in range(len(x)):
        assert rec.decode(x[b]) == beam_search(expected[b], beam=4)[0][0]
        differs += rec.labels != greedy_decode(expected[b])
    assert differs, "no utterance where beam and greedy differ: the test would not tell them apart"
    with pytest.raises(ValueError, match="greedy' or 'beam"):
        StreamingCTC(engine, decoder="viterbi")


def test_time_streaming_reports_per_repeat_figures(monkeypatch):
    """With repeats > 1, ``frames`` and ``audio_seconds`` are one repeat's and ``rtf`` is the
    median repeat's total over one repeat's audio. A fake clock that advances 1 us per
    reading makes every timed frame exactly 1 us, so the figures are exact: counting all
    repeats' frames, or summing the earlier repeats' times into later totals, is off."""
    ticks = itertools.count(0, 1000)
    monkeypatch.setattr(stream, "time", SimpleNamespace(perf_counter_ns=lambda: next(ticks)))
    pushed, resets = [], []
    utterances = [np.zeros((4, 2), np.float32), np.zeros((6, 2), np.float32)]
    stats = time_streaming(pushed.append, lambda: resets.append(len(pushed)), utterances, hop_s=0.01, repeats=3)
    assert stats["frames"] == 10 and stats["audio_seconds"] == pytest.approx(0.1)
    assert stats["us_per_frame"] == pytest.approx(1.0) and stats["p90_us"] == pytest.approx(1.0)
    assert stats["rtf"] == pytest.approx(10e-6 / 0.1)
    assert len(pushed) == 4 + 3 * 10  # the untimed warm-up streams the first utterance once
    assert resets == [0, 4, 8, 14, 18, 24, 28]  # before the warm-up and before every utterance


def test_time_streaming_rtf_is_the_median_repeat_not_the_mean(monkeypatch):
    """Three repeats of one 1-frame utterance taking 1, 1 and 10 us (a fake clock): the
    median repeat's total (1 us) over 10 ms of audio, not the mean (4 us), which lets
    one pass disturbed by another process decide the figure."""
    readings = iter([0, 1000, 1000, 2000, 2000, 12000])
    monkeypatch.setattr(stream, "time", SimpleNamespace(perf_counter_ns=lambda: next(readings)))
    stats = time_streaming(lambda frame: None, lambda: None, [np.zeros((1, 2), np.float32)], hop_s=0.01,
                           repeats=3, warmup=False)
    assert stats["rtf"] == pytest.approx(1e-6 / 0.01)
    assert stats["us_per_frame"] == pytest.approx(4.0)  # the mean over every timed frame, as documented


def _best_path(logits: np.ndarray, blank: int) -> list[int]:
    """The greedy CTC decode written out: each frame's best label, repeats merged, then
    the blank dropped."""
    best = logits.argmax(-1).tolist()
    merged = [label for t, label in enumerate(best) if t == 0 or label != best[t - 1]]
    return [label for label in merged if label != blank]


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_a_blank_other_than_zero_reaches_the_decoder(decoder):
    """``blank=2``: label 0 is then an ordinary label and 2 is dropped. A decoder built
    with the default blank (0) keeps the 2s and drops the 0s."""
    from lstmlite.ctc import beam_search

    model = _peaky_tagger(3)
    engine = Engine.from_torch(model)
    x = np.random.default_rng(3).normal(size=(4, 30, 6)).astype(np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    rec = StreamingCTC(engine, blank=2, decoder=decoder, beam=4)
    seen = set()
    for b in range(len(x)):
        got = rec.decode(x[b])
        expected = (_best_path(logits[b], blank=2) if decoder == "greedy"
                    else beam_search(logits[b], beam=4, blank=2)[0][0])
        assert got == expected
        seen.update(got)
    assert 2 not in seen and 0 in seen, "the frames should use label 0 and blank 2 for the test to tell blanks apart"


def test_measure_streaming_runs_the_decoder_it_is_given(monkeypatch):
    """``decoder="beam"`` reaches StreamingCTC: every frame goes through a BeamStream of
    the given width, none through a GreedyStream."""
    widths, greedy = [], []

    class SpyBeam(stream.BeamStream):
        def __init__(self, beam, blank):
            widths.append(beam)
            super().__init__(beam, blank)

    class SpyGreedy(stream.GreedyStream):
        def push(self, logits):
            greedy.append(1)
            return super().push(logits)

    monkeypatch.setattr(stream, "BeamStream", SpyBeam)
    monkeypatch.setattr(stream, "GreedyStream", SpyGreedy)
    engine = Engine.from_torch(_peaky_tagger())
    stats = measure_streaming(engine, [np.zeros((5, 6), np.float32)], hop_s=0.01, decoder="beam", beam=3)
    assert stats["frames"] == 5 and widths == [3] and not greedy


def test_measure_streaming_streams_every_repeat(monkeypatch):
    """``repeats=3`` streams the utterance three times (its real-time factor is the median
    of the three): 3 x 7 pushes counted here, with no warm-up, and 7 frames a repeat."""
    pushes = []
    original = StreamingCTC.push

    def counting(self, frame):
        pushes.append(1)
        return original(self, frame)

    monkeypatch.setattr(StreamingCTC, "push", counting)
    engine = Engine.from_torch(_peaky_tagger())
    stats = measure_streaming(engine, [np.zeros((7, 6), np.float32)], hop_s=0.01, repeats=3, warmup=False)
    assert len(pushes) == 21 and stats["frames"] == 7


def test_time_streaming_percentiles_and_no_warmup(monkeypatch):
    """Frames of 1, 2, ..., 9 and 100 us (a fake clock): the mean is 14.5 us, the median
    5.5 us and the 90th percentile 18.1 us (linear interpolation between 9 and 100). Without
    warm-up nothing is streamed untimed and ``reset`` comes only before each utterance."""
    readings = []
    for d in (1, 2, 3, 4, 5, 6, 7, 8, 9, 100):  # start and end of a frame of d us
        readings += [1_000_000 * len(readings), 1_000_000 * len(readings) + 1000 * d]
    ticks = iter(readings)
    monkeypatch.setattr(stream, "time", SimpleNamespace(perf_counter_ns=lambda: next(ticks)))
    pushed, resets = [], []
    utterances = [np.zeros((3, 2), np.float32), np.zeros((7, 2), np.float32)]
    stats = time_streaming(pushed.append, lambda: resets.append(len(pushed)), utterances, hop_s=0.01,
                           warmup=False)
    assert stats["us_per_frame"] == pytest.approx(14.5) and stats["p50_us"] == pytest.approx(5.5)
    assert stats["p90_us"] == pytest.approx(18.1)
    assert stats["rtf"] == pytest.approx(145e-6 / 0.1)
    assert len(pushed) == 10 and resets == [0, 3]


@pytest.mark.parametrize("utterances,hop_s,words", [
    ([], 0.01, "at least one utterance of at least one frame"),
    ([np.zeros((0, 4), np.float32)], 0.01, "at least one utterance of at least one frame"),
    ([np.zeros((5, 4), np.float32)], 0.0, "hop_s must be the positive seconds"),
    ([np.zeros((5, 4), np.float32)], -0.01, "hop_s must be the positive seconds"),
], ids=["no-utterances", "empty-utterance", "zero-hop", "negative-hop"])
def test_streaming_timing_refuses_what_it_cannot_time(utterances, hop_s, words):
    """No frames gave an IndexError from NumPy's percentile of nothing; a hop of 0 s gave
    an infinite real-time factor and a negative hop a negative one (read as "keeps up").
    Each is a ValueError naming the argument."""
    engine = Engine.from_torch(SequenceTagger(input_size=4, hidden_size=8, n_classes=5))
    with pytest.raises(ValueError, match=words):
        measure_streaming(engine, utterances, hop_s)
    stats = measure_streaming(engine, [np.zeros((5, 4), np.float32)], 0.01)
    assert stats["frames"] == 5 and stats["audio_seconds"] == pytest.approx(0.05) and stats["rtf"] > 0
