"""CTC decoding (lstmlite.ctc) against independent oracles: hand-worked paths and a
brute-force sum over every frame path of tiny inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lstmlite.ctc import BeamStream, GreedyStream, beam_decode, beam_search, collapse, greedy_decode, labels_to_text, log_softmax


def brute_force_posteriors(probs: np.ndarray) -> dict[tuple[int, ...], float]:
    """P(transcript) for every transcript: the sum over all C**T frame paths that
    collapse to it of the product of per-frame probabilities (the definition of CTC)."""
    steps, classes = probs.shape
    out: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(classes), repeat=steps):
        p = float(np.prod(probs[np.arange(steps), path]))
        key = tuple(collapse(path))
        out[key] = out.get(key, 0.0) + p
    return out


def test_collapse_merges_repeats_then_drops_blanks():
    # worked by hand: a a - a b - → a (merge) - a b -  → "a a b" once blanks go
    assert collapse([1, 1, 0, 1, 2, 0]) == [1, 1, 2]
    assert collapse([0, 0, 0]) == []
    assert collapse([2, 2, 2]) == [2]


def test_greedy_decode_hand_worked_example():
    # per-frame argmax: 1 1 0 2 2 0 0 1  → collapse → [1, 2, 1]
    probs = np.full((8, 3), 0.1)
    for t, c in enumerate([1, 1, 0, 2, 2, 0, 0, 1]):
        probs[t, c] = 0.8
    assert greedy_decode(np.log(probs)) == [1, 2, 1]
    assert greedy_decode(np.log(probs), length=5) == [1, 2]  # padding frames are ignored
    assert greedy_decode(np.log(probs), length=7) == [1, 2]  # frame 7 (a 1) is padding: not read
    assert beam_decode(np.log(probs), beam=4, length=7) == [1, 2]
    assert labels_to_text([1, 2, 1], ["<blank>", "a", "b"]) == "aba"


def test_streaming_greedy_equals_whole_sequence_greedy():
    """Frame by frame equals whole-sequence greedy, also for utterances decoded one after
    another on one stream with ``reset()`` between them (the second starts with the
    label the first ended on, which must be emitted again, not merged across).

    Catches: reset() keeping the previous utterance's last label."""
    rng = np.random.default_rng(0)
    stream = GreedyStream()
    for _ in range(20):
        scores = rng.normal(size=(int(rng.integers(1, 40)), 5)) * 3
        stream.reset()
        emitted = [label for label in (stream.push(frame) for frame in scores) if label is not None]
        assert emitted == stream.labels == greedy_decode(scores)
    first, second = np.eye(3)[[1, 2]] * 5, np.eye(3)[[2, 0]] * 5  # "a b", then "b"
    for utterance, expected in ((first, [1, 2]), (second, [2])):
        stream.reset()
        assert [stream.push(frame) for frame in utterance][0] == expected[0]
        assert stream.labels == expected


def test_beam_finds_the_most_probable_transcript_where_greedy_does_not():
    # The best single path is "- -" (0.6 * 0.6 = 0.36) → "", but "a" has more mass:
    # paths "a a", "a -", "- a" = .4*.4 + .4*.6 + .6*.4 = 0.64.
    probs = np.array([[0.6, 0.4], [0.6, 0.4]])
    assert greedy_decode(np.log(probs)) == []
    assert beam_decode(np.log(probs), beam=4) == [1]
    posteriors = brute_force_posteriors(probs)
    assert max(posteriors, key=posteriors.get) == (1,)
    assert posteriors[(1,)] == pytest.approx(0.64)


@pytest.mark.parametrize("seed", range(12))
def test_beam_search_matches_brute_force_on_tiny_inputs(seed):
    rng = np.random.default_rng(seed)
    steps, classes = int(rng.integers(2, 6)), int(rng.integers(2, 4))
    logits = rng.normal(size=(steps, classes)) * 2
    probs = np.exp(log_softmax(logits))
    posteriors = brute_force_posteriors(probs)
    best = max(posteriors, key=posteriors.get)
    # a beam wide enough to keep every prefix makes prefix search exact
    assert tuple(beam_decode(logits, beam=1000, prune=-np.inf)) == best


@pytest.mark.parametrize("seed", range(6))
def test_beam_search_probabilities_are_the_brute_force_sums(seed):
    # stronger than the argmax: every transcript's probability, with repeats made likely
    # (3 classes, 5 frames), so "a a" vs "a - a" bookkeeping is exercised
    rng = np.random.default_rng(100 + seed)
    logits = rng.normal(size=(5, 3))
    posteriors = brute_force_posteriors(np.exp(log_softmax(logits)))
    found = dict((tuple(k), np.exp(v)) for k, v in beam_search(logits, beam=10_000, prune=-np.inf))
    assert set(found) == set(posteriors)
    for key, p in posteriors.items():
        assert found[key] == pytest.approx(p, rel=1e-9, abs=1e-15), key
    assert sum(found.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("beam", [1, 2, 3, 5])
def test_beam_keeps_exactly_beam_prefixes(beam):
    """One frame of 5 classes: the 5 transcripts ("" and each label) are exact after it,
    so the results are the brute force's ``beam`` most probable, no fewer.
    Catches: the beam cut one short (``[: beam - 1]``)."""
    logits = np.random.default_rng(7).normal(size=(1, 5)) * 2
    posteriors = brute_force_posteriors(np.exp(log_softmax(logits)))
    top = sorted(posteriors, key=posteriors.get, reverse=True)[:beam]
    found = beam_search(logits, beam=beam, prune=-np.inf)
    assert [tuple(labels) for labels, _ in found] == top
    np.testing.assert_allclose([np.exp(lp) for _, lp in found], [posteriors[k] for k in top], rtol=1e-12)


def test_beam_stream_partial_results_are_the_beam_search_of_the_frames_so_far():
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(12, 4)) * 2
    stream = BeamStream(beam=3)
    for t in range(len(scores)):
        stream.push(scores[t])
        assert stream.results() == beam_search(scores[: t + 1], beam=3)
    stream.reset()
    assert stream.labels == []
    with pytest.raises(ValueError, match="at least 1"):
        BeamStream(beam=0)


def test_beam_keeps_the_best_label_of_a_frame_when_the_prune_removes_all():
    """With ``prune`` above every log-probability (0: none reaches probability 1) each
    frame keeps only its most probable label, so beam search reads the best path:
    the hand-worked greedy transcript. Catches: the fallback taking another label."""
    probs = np.full((8, 3), 0.1)
    for t, c in enumerate([1, 1, 0, 2, 2, 0, 0, 1]):
        probs[t, c] = 0.8
    assert beam_decode(np.log(probs), beam=4, prune=0.0) == [1, 2, 1]


def test_log_softmax_is_stable_for_large_logits():
    """Logits of magnitude 1000 (exp overflows float64): the log-probabilities are the
    hand-worked ones, log(e^0 / (e^0 + e^-1 + e^-1001)) etc., finite and summing to 1,
    and beam search decodes such frames. Catches the max not subtracted before exp."""
    logits = np.array([[1000.0, 999.0, -1.0]])
    z = np.log1p(np.exp(-1.0) + np.exp(-1001.0))
    np.testing.assert_allclose(log_softmax(logits), [[-z, -1.0 - z, -1001.0 - z]], rtol=1e-12)
    assert beam_decode(np.array([[0.0, 1000.0, 0.0], [1000.0, 0.0, 0.0]]), beam=2) == [1]


def test_a_blank_other_than_0_is_the_label_dropped():
    """``blank=2`` (the last class, where some toolkits put it): the path 0 0 2 0 1 1 2 2 0
    merges to 0 2 0 1 2 0 and, its 2s dropped, reads [0, 0, 1, 0] (hand-worked) in
    greedy, streaming and beam decoding; and beam search's transcripts and probabilities
    are the brute force's over the same frames with the columns moved so the blank is 0.
    Catches: the ``blank`` argument ignored (label 0 dropped as the blank) by collapse,
    GreedyStream or BeamStream."""
    path = [0, 0, 2, 0, 1, 1, 2, 2, 0]
    peaky = np.full((9, 3), -5.0)
    peaky[np.arange(9), path] = 5.0
    assert collapse(path, blank=2) == [0, 0, 1, 0]
    assert greedy_decode(peaky, blank=2) == [0, 0, 1, 0]
    stream = GreedyStream(blank=2)
    assert [label for label in (stream.push(frame) for frame in peaky) if label is not None] == [0, 0, 1, 0]
    assert beam_decode(peaky, beam=4, blank=2) == [0, 0, 1, 0]
    logits = np.random.default_rng(3).normal(size=(5, 3))
    moved = np.exp(log_softmax(logits[:, [2, 0, 1]]))  # blank to column 0, labels 0, 1 to 1, 2
    expected = {tuple(c - 1 for c in key): p for key, p in brute_force_posteriors(moved).items()}
    found = {tuple(k): np.exp(v) for k, v in beam_search(logits, beam=10_000, blank=2, prune=-np.inf)}
    assert set(found) == set(expected)
    for key, p in expected.items():
        assert found[key] == pytest.approx(p, rel=1e-9, abs=1e-15), key


def test_a_fresh_stream_emits_its_first_frames_label():
    """A new GreedyStream (no reset() yet) emits the first frame's label, whatever it is:
    label 1 then blank then 2 reads [1, 2], as greedy_decode does; and the module's
    docstring examples hold. Catches: a new stream's previous label initialised to a real
    label (1), which swallows an utterance starting with it."""
    import doctest

    import lstmlite.ctc

    frames = np.eye(3)[[1, 0, 2]] * 5
    stream = GreedyStream()
    assert [stream.push(frame) for frame in frames] == [1, None, 2]
    assert stream.labels == greedy_decode(frames) == [1, 2]
    assert doctest.testmod(lstmlite.ctc).failed == 0
