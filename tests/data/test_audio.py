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
