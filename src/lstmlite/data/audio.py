"""Speech data (``--task ctc``): audio + transcript lists → frame features and labels.

A source is a folder holding ``manifest.tsv`` (what ``lstmlite data make
spoken-digits`` writes) or any ``.tsv`` list whose lines are
``AUDIO_PATH<TAB>TRANSCRIPT[<TAB>anything…]`` (paths relative to the list's folder; an
optional header line ``audio<TAB>transcript``). Audio is read and resampled to
``spec.sample_rate`` and turned into MFCC or log-mel frames with librosa (25 ms
windows every ``spec.hop_ms``), normalised per feature with the TRAIN frames' mean/std.

Labels are characters: ``class_names = ["<blank>", *sorted characters of the
transcripts]`` (id 0 is the CTC blank). Arrays: x (N, T, F) float32 (0 after each
row's length), y (N, S) int64 label ids padded with -1, lengths (N,) frames.

Example:
    >>> data = load_data("spoken-digits/")        # doctest: +SKIP
    >>> data.class_names[:4], data.train.x.shape[2]  # doctest: +SKIP
    (['<blank>', ' ', '0', '1'], 20)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .classify import _feature_stats, normalize_features
from .containers import Split, TaskData
from .errors import DataError, DataFileNotFoundError
from .readers import read_text
from .spec import MANIFEST
from .tag import PAD_LABEL, _split_rows

if TYPE_CHECKING:
    from .spec import DataSpec

__all__ = ["BLANK_NAME", "read_manifest", "audio_features", "load_audio", "build_ctc", "manifest_path"]

log = logging.getLogger(__name__)

BLANK_NAME = "<blank>"
WINDOW_MS = 25.0  # analysis window, the usual ASR front end's


def manifest_path(source: str | os.PathLike) -> Path:
    """The list file of an audio source: ``DIR/manifest.tsv`` or the .tsv itself."""
    path = Path(source)
    return path / MANIFEST if path.is_dir() else path


def read_manifest(source: str | os.PathLike) -> list[tuple[Path, str]]:
    """``(audio path, transcript)`` pairs of an audio list (see the module doc)."""
    path = manifest_path(source)
    if not path.is_file():
        raise DataFileNotFoundError(f"{path}: no such file")
    items: list[tuple[Path, str]] = []
    # read_text drops a BOM (else the header's "audio" is not recognised and is read as
    # an utterance) and reports bytes that are not UTF-8 as a DataError naming the line
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if number == 1 and fields[0].strip().lower() == "audio":
            continue  # header
        if len(fields) < 2 or not fields[1].strip():
            raise DataError(f"{path}: line {number}: expected AUDIO_PATH<TAB>TRANSCRIPT")
        audio = Path(fields[0].strip())
        items.append((audio if audio.is_absolute() else path.parent / audio, fields[1].strip()))
    if not items:
        raise DataError(f"{path}: no audio listed")
    return items


def _librosa():
    try:
        import librosa
    except ImportError:
        raise DataError("audio features need librosa: pip install 'lstmlite[speech]'") from None
    return librosa


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Mono float32 samples of an audio file, resampled to ``sample_rate``."""
    if not Path(path).is_file():
        raise DataFileNotFoundError(f"{path}: no such audio file")
    try:
        wave, _ = _librosa().load(str(path), sr=sample_rate, mono=True)
    except Exception as err:  # decoders raise many types; the user needs the file name
        raise DataError(f"{path}: cannot read audio ({type(err).__name__}: {err})") from None
    return wave.astype(np.float32)


def audio_features(wave: np.ndarray, spec: DataSpec) -> np.ndarray:
    """Frames of one utterance: wave (samples,) at ``spec.sample_rate`` → (T, F) float32.

    T = 1 + samples // hop (librosa's centred frames); F = ``spec.n_features``.
    """
    librosa = _librosa()
    hop = int(round(spec.sample_rate * spec.hop_ms / 1000.0))
    win = int(round(spec.sample_rate * WINDOW_MS / 1000.0))
    n_fft = 1 << (win - 1).bit_length()  # next power of two
    if spec.features == "mfcc":
        feats = librosa.feature.mfcc(y=wave, sr=spec.sample_rate, n_mfcc=spec.n_features, n_fft=n_fft,
                                     hop_length=hop, win_length=win, n_mels=max(40, spec.n_features))
    else:
        mel = librosa.feature.melspectrogram(y=wave, sr=spec.sample_rate, n_mels=spec.n_features, n_fft=n_fft,
                                             hop_length=hop, win_length=win)
        feats = np.log(mel + 1e-6)
    return np.ascontiguousarray(feats.T, dtype=np.float32)  # (T, F)


def _encode(text: str, label_id: dict[str, int], where: str) -> list[int]:
    unseen = sorted(set(text) - set(label_id))
    if unseen:
        raise DataError(f"{where}: character(s) {unseen[:5]} never occur in the training transcripts")
    return [label_id[c] for c in text]


def build_ctc(name: str, spec: DataSpec, items: list[tuple[Path, str]],
              test_items: list[tuple[Path, str]] | None = None) -> TaskData:
    """TaskData of the ctc task from ``(audio path, transcript)`` pairs."""
    train_idx, val_idx, test_idx = _split_rows(len(items), spec, test_items is not None)
    # The alphabet is the output layer's label set, taken from every transcript of the
    # source: a character that a small random split leaves out of train must not make
    # loading fail (its output unit just never learns to fire), unlike a class label.
    alphabet = sorted({c for _, text in [*items, *(test_items or [])] for c in text})
    class_names = [BLANK_NAME, *alphabet]
    label_id = {c: k + 1 for k, c in enumerate(alphabet)}
    every = [*items, *(test_items or [])]
    feats = [audio_features(load_audio(path, spec.sample_rate), spec) for path, _ in every]
    mean, std = _feature_stats([feats[i] for i in train_idx])
    frames = max(len(f) for f in feats)
    longest = max(len(text) for _, text in every)

    def make(rows: list[int], what: str) -> Split:
        x, lengths = normalize_features([feats[i] for i in rows], mean, std, frames)
        y = np.full((len(rows), longest), PAD_LABEL, np.int64)
        for k, i in enumerate(rows):
            ids = _encode(every[i][1], label_id, f"{name} ({what}, {every[i][0].name})")
            y[k, :len(ids)] = ids
        return Split(x, y, lengths)

    n = len(items)
    test_rows = list(range(n, len(every))) if test_items is not None else list(test_idx)
    data = TaskData(name=name, task="ctc", train=make(list(train_idx), "train"), val=make(list(val_idx), "val"),
                    test=make(test_rows, "test"), input_size=int(feats[0].shape[1]), n_classes=len(class_names),
                    class_names=class_names, vocab=None, spec=spec,
                    stats={"mean": mean, "std": std, "hop_s": spec.hop_ms / 1000.0})
    log.info("%s: %d utterances, %d labels, up to %d frames", name, len(every), len(class_names), frames)
    return data
