"""Spoken-digit synthesis (lstmlite.data.synth) with espeak-ng, and reading audio lists
(lstmlite.data.audio). espeak-ng is a test dependency (scripts/system-deps-speech.txt):
without it these tests fail, they do not skip."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from lstmlite.cli.main import main
from lstmlite.data import DataError, load_data
from lstmlite.data.synth import EspeakMissingError, espeak_binary, make_spoken_digits


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return make_spoken_digits(tmp_path_factory.mktemp("sd") / "digits", n=8, seed=5, max_digits=3)


def test_same_seed_same_bytes_other_seed_other_data(digits, tmp_path):
    again = make_spoken_digits(tmp_path / "again", n=8, seed=5, max_digits=3)
    for name in ["manifest.tsv", "synth.json", *(f"wav/{k:05d}.wav" for k in range(8))]:
        assert (again / name).read_bytes() == (digits / name).read_bytes(), name
    other = make_spoken_digits(tmp_path / "other", n=8, seed=6, max_digits=3)
    assert (other / "manifest.tsv").read_text() != (digits / "manifest.tsv").read_text()


def test_manifest_lists_spoken_digits_with_varied_voices(digits):
    lines = (digits / "manifest.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["audio", "transcript", "voice", "speed", "pitch", "snr_db"]
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == 8
    for audio, transcript, voice, speed, pitch, snr in rows:
        digits_ = transcript.split(" ")
        assert 1 <= len(digits_) <= 3 and all(d in "0123456789" and len(d) == 1 for d in digits_)
        with wave.open(str(digits / audio)) as f:
            assert f.getnchannels() == 1 and f.getsampwidth() == 2
            seconds = f.getnframes() / f.getframerate()
        assert 0.2 < seconds < 3.0 * len(digits_) + 1
        assert 130 <= int(speed) <= 210 and 25 <= int(pitch) <= 75 and 15 <= float(snr) <= 40
    assert len({r[2] for r in rows}) > 1  # several voices


def test_missing_espeak_is_one_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no espeak-ng on it
    with pytest.raises(EspeakMissingError, match="espeak-ng is not installed.*apt-get install espeak-ng"):
        espeak_binary()
    assert main(["data", "make", "spoken-digits", "--out", str(tmp_path / "x"), "--n", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "espeak-ng is not installed" in err
    assert not (tmp_path / "x").exists()


def test_audio_folder_loads_as_ctc_features(digits) -> None:
    """Shapes, padding, labels and frame counts of the ctc data, and features normalised with
    the TRAIN utterances' frames only (their valid frames have mean 0 and std 1 per feature,
    by NumPy); the last catches statistics taken over val and test utterances too."""
    data = load_data(str(digits), val_fraction=0.25, test_fraction=0.25)
    train_frames = np.concatenate([x[:n] for x, n in zip(data.train.x, data.train.lengths)]).astype(np.float64)
    np.testing.assert_allclose(train_frames.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(train_frames.std(0), 1.0, atol=1e-4)
    assert data.task == "ctc" and data.spec.format == "audio"
    assert data.class_names[0] == "<blank>" and " " in data.class_names
    assert data.input_size == 20 and data.train.x.shape[2] == 20
    assert len(data.train) + len(data.val) + len(data.test) == 8
    for split in data.splits.values():
        for k in range(len(split)):
            n = int(split.lengths[k])
            assert np.all(split.x[k, n:] == 0)
            labels = split.y[k][split.y[k] >= 0]
            assert len(labels) >= 1 and np.all(labels >= 1)  # the blank is never a target
            # ~100 frames per second, and several frames per character for CTC
            assert n > 3 * len(labels)
    # lengths are each utterance's own frame count (librosa's centred frames:
    # 1 + samples // hop at 16 kHz, hop 160), not the padded length
    import librosa

    lengths = np.concatenate([s.lengths for s in data.splits.values()])
    expected = [1 + len(librosa.load(str(p), sr=16000)[0]) // 160 for p in sorted((digits / "wav").iterdir())]
    assert sorted(lengths.tolist()) == sorted(expected) and len(set(expected)) > 1
    logmel = load_data(str(digits), features="logmel", n_features=32, hop_ms=20.0)
    assert logmel.input_size == 32 and logmel.train.x.shape[1] < data.train.x.shape[1]


def test_tsv_audio_list_is_recognised_and_missing_audio_is_an_error(digits, tmp_path):
    listing = tmp_path / "mine.tsv"
    rows = (digits / "manifest.tsv").read_text().splitlines()[1:]
    listing.write_text("".join(f"{digits / r.split(chr(9))[0]}\t{r.split(chr(9))[1]}\n" for r in rows))
    assert load_data(str(listing)).task == "ctc"
    listing.write_text(f"{tmp_path / 'gone.wav'}\t1 2\n" * 4)
    with pytest.raises(DataError, match="gone.wav"):
        load_data(str(listing), format="audio")


def test_cli_make_writes_the_folder(tmp_path, capsys):
    assert main(["data", "make", "spoken-digits", "--out", str(tmp_path / "d"), "--n", "2", "--seed", "1"]) == 0
    assert "wrote 2 utterances" in capsys.readouterr().out
    assert len((tmp_path / "d" / "manifest.tsv").read_text().splitlines()) == 3


def test_spoken_words_transcribe_the_words_and_train_on_their_letters(tmp_path, capsys):
    out = tmp_path / "w"
    assert main(["data", "make", "spoken-words", "--out", str(out), "--n", "6", "--words", "yes,no,stop",
                 "--max-digits", "2"]) == 0
    rows = [line.split("\t") for line in (out / "manifest.tsv").read_text().splitlines()[1:]]
    spoken = [t.split(" ") for _, t, *_ in rows]
    assert all(1 <= len(w) <= 2 and set(w) <= {"yes", "no", "stop"} for w in spoken)
    assert len({w for ws in spoken for w in ws}) > 1
    data = load_data(str(out), val_fraction=0.2, test_fraction=0.2)
    assert set(data.class_names[1:]) <= set("yesnotp ") and "s" in data.class_names
    # the digits path is unchanged by the words option: same seed, same files as before
    digits = make_spoken_digits(tmp_path / "d", n=3, seed=5, max_digits=3)
    assert "words" not in (digits / "synth.json").read_text()


@pytest.mark.parametrize("argv, message", [
    (["spoken-words", "--words", "Yes,no"], "lower-case ASCII letters"),
    (["spoken-words", "--words", "go,,stop"], "lower-case ASCII letters"),
    (["spoken-digits", "--words", "yes"], "--words goes with spoken-words"),
])
def test_spoken_words_refuse_bad_words(argv, message, tmp_path, capsys):
    assert main(["data", "make", *argv, "--out", str(tmp_path / "x"), "--n", "2"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_make_writes_what_the_api_writes(tmp_path, capsys):
    """``data make spoken-digits --n 2 --seed 3 --max-digits 2`` writes the files that
    ``make_spoken_digits(n=2, seed=3, max_digits=2)`` writes, byte for byte (same
    arguments, same files), and says how many. Catches --seed or --max-digits not passed on
    (the seed-0 or 5-digit data written instead)."""
    assert main(["data", "make", "spoken-digits", "--out", str(tmp_path / "cli"), "--n", "2", "--seed", "3",
                 "--max-digits", "2"]) == 0
    assert f"wrote 2 utterances to {tmp_path / 'cli'}" in capsys.readouterr().out
    make_spoken_digits(tmp_path / "api", n=2, seed=3, max_digits=2)

    def files(folder):
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    assert files(tmp_path / "cli") == files(tmp_path / "api")
