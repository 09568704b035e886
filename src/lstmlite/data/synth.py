"""Spoken digit sequences synthesized with Debian's ``espeak-ng``: an offline speech set.

``make_spoken_digits(out, n, seed)`` writes ``out/wav/NNNNN.wav`` (16-bit mono) and
``out/manifest.tsv`` (``audio<TAB>transcript<TAB>voice<TAB>speed<TAB>pitch<TAB>snr_db``),
the audio list format :mod:`lstmlite.data.audio` reads. Each utterance draws from a
generator seeded with ``seed``: 1 to ``max_digits`` digits, a voice, a speed (words per
minute), a pitch and white noise at a signal-to-noise ratio, so the same arguments
give byte-identical files (espeak-ng's output is deterministic for fixed arguments).

The transcript is the digits separated by spaces (``"3 1 4"``): the CTC model learns
characters ``0-9`` and the space, and WER counts digits as words. The text spoken
is the digit names (``"three one four"``): espeak reads ``314`` as a number.

With ``words`` (e.g. :data:`COMMAND_WORDS`, ``lstmlite data make spoken-words``) each
utterance is a sequence of those words instead, and the transcript is the words
themselves (``"left stop go"``): the model learns their letters.

Example:
    >>> make_spoken_digits("data/digits", n=500, seed=0)   # doctest: +SKIP
    PosixPath('data/digits')
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import DataError

__all__ = ["make_spoken_digits", "espeak_binary", "VOICES", "DIGIT_WORDS", "COMMAND_WORDS", "EspeakMissingError"]

log = logging.getLogger(__name__)

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: The ten command words of the Speech Commands keyword-spotting task (Warden 2018).
COMMAND_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
# espeak-ng 1.51 voices (and +variants) that sound different from each other: checked
# by hashing their output for the same text (en-gb+VARIANT, for one, is plain en-gb).
VOICES = ("en-us", "en-us+f2", "en-us+f3", "en-us+m3", "en-gb", "en-gb-x-rp", "en-gb-scotland+f4", "en-029+m2")
ESPEAK = "espeak-ng"
INSTALL_HINT = "install it with: sudo apt-get install espeak-ng (or sh scripts/install-system-deps.sh)"


class EspeakMissingError(DataError):
    """espeak-ng is not installed (a one-line message says how to install it)."""


def espeak_binary() -> str:
    """The path of ``espeak-ng``, or :class:`EspeakMissingError`."""
    path = shutil.which(ESPEAK)
    if path is None:
        raise EspeakMissingError(f"espeak-ng is not installed (needed to synthesize speech); {INSTALL_HINT}")
    return path


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as f:
        if f.getsampwidth() != 2 or f.getnchannels() != 1:
            raise DataError(f"{path}: espeak-ng wrote {f.getnchannels()} channel(s) of {8 * f.getsampwidth()} bits; "
                            "expected 16-bit mono")
        rate = f.getframerate()
        samples = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    return samples.astype(np.float32) / 32768.0, rate


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())


def _speak(binary: str, text: str, voice: str, speed: int, pitch: int, tmp: Path) -> tuple[np.ndarray, int]:
    target = tmp / "say.wav"
    cmd = [binary, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(target), text]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0 or not target.is_file():
        raise DataError(f"espeak-ng failed for voice {voice!r}: {done.stderr.strip().splitlines()[:1]}")
    return _read_wav(target)


def _add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise scaled to ``snr_db`` below the utterance's mean power."""
    power = float(np.mean(samples.astype(np.float64) ** 2)) or 1e-8
    noise = rng.standard_normal(samples.shape) * np.sqrt(power / 10.0 ** (snr_db / 10.0))
    return (samples + noise).astype(np.float32)


def make_spoken_digits(out: str | Path, n: int = 600, seed: int = 0, min_digits: int = 1, max_digits: int = 5,
                       voices: Sequence[str] = VOICES, speeds: tuple[int, int] = (130, 210),
                       pitches: tuple[int, int] = (25, 75), snr_db: tuple[float, float] = (15.0, 40.0),
                       overwrite: bool = False, words: Sequence[str] | None = None) -> Path:
    """Synthesize ``n`` spoken digit (or word) sequences into the folder ``out`` (see the module doc).

    Args:
        out: folder to create (must not exist or be empty, unless ``overwrite``).
        n: utterances.
        seed: seeds every choice and the noise; same arguments → identical files.
        min_digits, max_digits: digits per utterance, drawn uniformly.
        voices: espeak-ng voice names, drawn uniformly.
        speeds: words per minute range; pitches: espeak pitch range (0-99);
        snr_db: signal-to-noise range of the added white noise (dB).
        words: speak sequences of these words (lower-case letters, each at least one)
            instead of digits; the transcript is the words. None: digits.

    Raises:
        EspeakMissingError: espeak-ng is not installed; DataError: bad arguments.
    """
    binary = espeak_binary()
    if n < 1 or not 1 <= min_digits <= max_digits:
        raise DataError("need n >= 1 and 1 <= min_digits <= max_digits")
    if words is not None:
        words = [w.strip() for w in words]
        bad = [w for w in words if not (w.isascii() and w.isalpha() and w.islower())]
        if not words or bad:
            raise DataError(f"words must be lower-case ASCII letters, one word each; got {bad or 'none'}")
    vocabulary = DIGIT_WORDS if words is None else words
    written = [str(d) for d in range(10)] if words is None else words  # what the transcript says
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DataError(f"{out}: folder is not empty; choose another --out")
    (out / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = ["audio\ttranscript\tvoice\tspeed\tpitch\tsnr_db"]
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(n):
            digits = rng.integers(0, len(vocabulary), size=int(rng.integers(min_digits, max_digits + 1)))
            voice = str(voices[int(rng.integers(len(voices)))])
            speed = int(rng.integers(speeds[0], speeds[1] + 1))
            pitch = int(rng.integers(pitches[0], pitches[1] + 1))
            snr = round(float(rng.uniform(*snr_db)), 1)
            noise_rng = np.random.default_rng([seed, k])  # per file: one file's noise doesn't shift the next's
            samples, rate = _speak(binary, " ".join(vocabulary[d] for d in digits), voice, speed, pitch, Path(tmp))
            name = f"wav/{k:05d}.wav"
            _write_wav(out / name, _add_noise(samples, snr, noise_rng), rate)
            lines.append(f"{name}\t{' '.join(written[d] for d in digits)}\t{voice}\t{speed}\t{pitch}\t{snr}")
    (out / "manifest.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "synth.json").write_text(json.dumps({
        "generator": "lstmlite.data.synth.make_spoken_digits", "n": n, "seed": seed, "min_digits": min_digits,
        "max_digits": max_digits, "voices": list(voices), "speeds": list(speeds), "pitches": list(pitches),
        "snr_db": list(snr_db), **({"words": list(words)} if words is not None else {})}, indent=2) + "\n",
        encoding="utf-8")
    log.info("wrote %d utterances to %s", n, out)
    return out
