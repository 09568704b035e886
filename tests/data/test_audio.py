"""Audio lists (lstmlite.data.audio.read_manifest): which lines are utterances."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstmlite.data.audio import read_manifest


@pytest.mark.parametrize("header", ["", "audio\ttranscript\n", "Audio\tTranscript\tspeaker\n"],
                         ids=["no-header", "header", "header-extra-column"])
def test_every_listed_utterance_is_read_and_only_a_header_is_skipped(tmp_path: Path, header: str) -> None:
    """The (path, transcript) pairs are the list's lines in order, paths relative to the
    list's folder, comments and blank lines skipped, a first line naming the ``audio``
    column skipped as a header and nothing else (hand-written list). Catches a reader that
    always drops the first line, which loses an utterance from a list without a header."""
    listing = tmp_path / "mine.tsv"
    listing.write_text(header + "a.wav\t1 2\n# a comment\n\nsub/b.wav\t3\tspeaker 7\n/abs/c.wav\t4 5 6\n",
                       encoding="utf-8")
    assert read_manifest(listing) == [(tmp_path / "a.wav", "1 2"), (tmp_path / "sub" / "b.wav", "3"),
                                      (Path("/abs/c.wav"), "4 5 6")]


def test_a_list_saved_with_a_bom_and_crlf_reads_like_any_other(tmp_path: Path) -> None:
    """An audio list saved by a Windows editor (UTF-8 BOM, CRLF line ends) is still an
    audio list: its header is skipped and its utterances read as without the BOM.
    Catches: the BOM glued to the header's "audio" (read as an utterance "\\ufeffaudio"),
    and infer_format taking the list for tagging data ("tsv")."""
    from lstmlite.data.spec import infer_format

    listing = tmp_path / "mine.tsv"
    listing.write_bytes(b"\xef\xbb\xbfaudio\ttranscript\r\na.wav\t1 2\r\nb.wav\t3\r\n")
    assert read_manifest(listing) == [(tmp_path / "a.wav", "1 2"), (tmp_path / "b.wav", "3")]
    assert infer_format(str(listing)) == "audio"
    listing.write_bytes(b"\xef\xbb\xbfa.wav\t1 2\r\n")  # no header: the first path keeps its name
    assert read_manifest(listing) == [(tmp_path / "a.wav", "1 2")]
    assert infer_format(str(listing)) == "audio"


def test_a_list_that_is_not_utf8_is_a_data_error_naming_the_line(tmp_path: Path) -> None:
    """Catches: a bare UnicodeDecodeError with a byte offset instead of the file's line."""
    from lstmlite.data import DataError

    listing = tmp_path / "mine.tsv"
    listing.write_bytes(b"audio\ttranscript\na.wav\t1 \xff2\n")
    with pytest.raises(DataError, match=r"mine.tsv: line 2 is not valid UTF-8"):
        read_manifest(listing)



@pytest.mark.parametrize("features, rate, hop, win, n_fft", [
    ("mfcc", 16000, 160, 400, 512),     # 10 ms = 160 samples, 25 ms = 400, FFT the next power of two
    ("logmel", 16000, 160, 400, 512),
    ("mfcc", 10240, 102, 256, 256),     # 10 ms = 102.4 → 102; 25 ms = 256 is a power of two already
])
def test_frames_are_25_ms_windows_every_hop_ms(features: str, rate: int, hop: int, win: int, n_fft: int) -> None:
    """Window, hop and FFT sizes hand-computed from the sample rate (25 ms windows, 10 ms
    hops, FFT the smallest power of two holding the window): the features equal librosa's
    own with those numbers, 1 + samples // hop frames. Catches a 20 ms window, a hop off by
    one sample, an FFT twice the window when the window is a power of two, log10 for log,
    and MFCCs over fewer than 40 mel bands."""
    import librosa
    import numpy as np

    from lstmlite.data.audio import audio_features
    from lstmlite.data.spec import DataSpec

    rng = np.random.default_rng(0)
    t = np.arange(rate // 2) / rate
    wave = (np.sin(2 * np.pi * 440.0 * t) + 0.1 * rng.normal(size=t.size)).astype(np.float32)
    spec = DataSpec("list.tsv", task="ctc", format="audio", features=features, n_features=13, sample_rate=rate)
    got = audio_features(wave, spec)
    if features == "mfcc":
        want = librosa.feature.mfcc(y=wave, sr=rate, n_mfcc=13, n_fft=n_fft, hop_length=hop, win_length=win,
                                    n_mels=40)
    else:
        want = np.log(librosa.feature.melspectrogram(y=wave, sr=rate, n_mels=13, n_fft=n_fft, hop_length=hop,
                                                     win_length=win) + 1e-6)
    assert got.shape == (1 + wave.size // hop, 13)
    np.testing.assert_allclose(got, want.T, rtol=1e-5, atol=1e-4)


def _write_wav(path: Path, seconds: float, seed: int, rate: int = 16000) -> None:
    import wave

    import numpy as np

    samples = (np.random.default_rng(seed).normal(size=int(rate * seconds)) * 3000).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.tobytes())


def test_ctc_targets_spell_each_transcript_a_longer_test_list_included(tmp_path: Path) -> None:
    """An audio list and a separate test list (``test_path``) whose transcript is longer
    than every training one: each row of y, read through class_names (``<blank>`` first,
    then the sorted characters), spells its transcript and is PAD_LABEL after it; the test
    row keeps all 9 characters. Catches: y as wide as the training transcripts only (the
    longer test transcript does not fit), a transcript stored reversed or without its spaces."""
    from lstmlite.data import load_data
    from lstmlite.train.sequence import PAD_LABEL

    texts = ["1", "2", "1 2", "2 2 1"]
    for k in range(5):
        _write_wav(tmp_path / f"{k}.wav", 0.2 + 0.05 * k, seed=k)
    (tmp_path / "train.tsv").write_text("".join(f"{k}.wav\t{t}\n" for k, t in enumerate(texts)), encoding="utf-8")
    (tmp_path / "test.tsv").write_text("4.wav\t1 1 2 1 2\n", encoding="utf-8")
    data = load_data(str(tmp_path / "train.tsv"), format="audio", test_path=str(tmp_path / "test.tsv"),
                     val_fraction=0.25, seed=0)
    assert data.task == "ctc" and data.class_names == ["<blank>", " ", "1", "2"]
    spelled = []
    for split in (data.train, data.val):
        for row in split.y:
            n = int((row != PAD_LABEL).sum())
            assert (row[n:] == PAD_LABEL).all() and (row[:n] >= 1).all()
            spelled.append("".join(data.class_names[i] for i in row[:n]))
    assert sorted(spelled) == sorted(texts)
    assert "".join(data.class_names[i] for i in data.test.y[0]) == "1 1 2 1 2"
