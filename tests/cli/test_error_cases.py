"""Bad input and faults, one table (issue 15 item 4): each case runs through the real
CLI (``lstmlite.cli.main`` in this process, one through a subprocess) or the public
API and must give its **one line**: exit status 2, the file or key, the problem and
the fix, no traceback -- and must lose nothing: every file in the case's folder keeps
its bytes, no new file appears (fault cases may leave an unfinished, resumable run),
no temp file is left and no run dir that looks finished (a manifest.json) is made.

docs/errors.md is rendered from this table; ``test_docs_match_the_table`` fails when
they drift. After changing a case, run::

    PYTHONPATH=src python tests/cli/test_error_cases.py --write

A case's ``expect`` is the whole line, with ``{tmp}`` for the case's folder and ``…``
for text that varies (a parser's detail, a machine's free memory). Every case starts
from copies of shared artefacts built once per session in its own folder:
``run`` (digits, 1 epoch), ``text`` (a CSV text classifier with vocab.json),
``model.onnx``/``model.lsl`` (exported from ``run``), ``text.lsl``, ``imported`` (the
ONNX file imported back) and ``tiny.npz`` (20 short sequences).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS_NOTE = "train defaults for this data: "  # lstmlite.train.default_train_note's lines
DOC = ROOT / "docs" / "errors.md"


# ----- setup helpers: each takes the case folder ------------------------------------
def write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return setup


def npz(name: str, **arrays: Any) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        np.savez(tmp / name, **arrays)
    return setup


def flip(name: str, offset: int, remanifest: bool = False) -> Callable[[Path], None]:
    """Invert one byte (as a bad disk or a bad copy would)."""
    def setup(tmp: Path) -> None:
        data = bytearray((tmp / name).read_bytes())
        data[offset] ^= 0xFF
        (tmp / name).write_bytes(bytes(data))
        if remanifest:
            _remanifest(tmp / name)
    return setup


def cut(name: str, keep: float, remanifest: bool = False) -> Callable[[Path], None]:
    """Truncate a file to a fraction of its bytes (an interrupted copy or download)."""
    def setup(tmp: Path) -> None:
        data = (tmp / name).read_bytes()
        (tmp / name).write_bytes(data[: int(len(data) * keep)])
        if remanifest:
            _remanifest(tmp / name)
    return setup


def edit_json(name: str, change: Callable[[Any], Any], remanifest: bool = True) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        path = tmp / name
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
        if remanifest:
            _remanifest(path)
    return setup


def remove(*names: str, remanifest: bool = False) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        for name in names:
            (tmp / name).unlink()
        if remanifest:
            _remanifest(tmp / names[0])
    return setup


def steps(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        for one in setups:
            one(tmp)
    return setup


def _remanifest(file: Path) -> None:
    """Re-hash the run dir holding ``file``: the damage is then one the manifest cannot
    see (a tool that rewrote the manifest, a file edited by hand and re-hashed)."""
    from lstmlite.io import write_manifest

    run = file.parent
    write_manifest(run, sorted(p.name for p in run.iterdir() if p.is_file() and p.name != "manifest.json"))


def _nan_weight(tmp: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = tmp / "run" / "model.safetensors"
    state = load_file(str(path))
    state["head.bias"][0] = float("nan")
    save_file(state, str(path), metadata={"format": "pt", "lstmlite_format_version": "1"})
    _remanifest(path)


def _unfinished_training(tmp: Path) -> None:
    """``run`` as a kill during training leaves it: checkpoints only."""
    for name in ("manifest.json", "config.json", "model.safetensors", "metrics.json", "history.json"):
        (tmp / "run" / name).unlink()


def _tag_checkpoint(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        _unfinished_training(tmp)
        path = tmp / "run" / "checkpoints" / "last.json"
        meta = json.loads(path.read_text())
        change(meta)
        path.write_text(json.dumps(meta))
    return setup


def _flip_checkpoint(tmp: Path) -> None:
    _unfinished_training(tmp)
    flip("run/checkpoints/" + json.loads((tmp / "run/checkpoints/last.json").read_text())["files"]["last"], 120)(tmp)


# ----- API calls: each takes the case folder and must raise ---------------------------
def _engine(tmp: Path, name: str = "model.lsl"):
    from lstmlite import runtime

    return runtime.load(tmp / name)


def _load_lsl(name: str) -> Callable[[Path], Any]:
    return lambda tmp: _engine(tmp, name)


def _step_with_foreign_state(tmp: Path) -> Any:
    features, tokens = _engine(tmp), _engine(tmp, "text.lsl")
    return tokens.step(3, features.new_state(1))


def _run_with_foreign_state(tmp: Path) -> Any:
    one, other = _engine(tmp), _engine(tmp)
    return other.run(np.zeros((1, 5, 8), np.float32), state=one.new_state(1))


def _read_tflite(tmp: Path) -> Any:
    from lstmlite.importers.tflite import read_tflite_lstm

    return read_tflite_lstm(tmp / "model.tflite")


# ----- faults injected while a case runs -----------------------------------------------
@contextlib.contextmanager
def _disk_full(tmp: Path) -> Iterator[None]:
    """ENOSPC from fsync, where a full disk reports a write that did not fit (the data
    is flushed there). Simulated by monkeypatching ``os.fsync``: a real tiny tmpfs needs
    mount rights a CI runner may not have."""
    real = os.fsync

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    os.fsync = fsync
    try:
        yield
    finally:
        os.fsync = real


@contextlib.contextmanager
def _read_only(tmp: Path) -> Iterator[None]:
    """EROFS for anything created under ``{tmp}/ro`` (a read-only mount; root ignores
    chmod, so a folder's mode cannot simulate it). Monkeypatches ``os.open``/``os.mkdir``."""
    real_open, real_mkdir = os.open, os.mkdir
    ro = str(tmp / "ro")

    def refuse(path: Any) -> None:
        if str(path).startswith(ro):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def fake_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def fake_mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        refuse(path)
        return real_mkdir(path, *args, **kwargs)

    os.open, os.mkdir = fake_open, fake_mkdir
    try:
        yield
    finally:
        os.open, os.mkdir = real_open, real_mkdir


FAULTS: dict[str, Callable[[Path], contextlib.AbstractContextManager]] = {
    "disk full": _disk_full, "read-only": _read_only}


# ----- the table -----------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One bad input or fault and the line it must give."""

    id: str
    kind: str                                   # the class of fault (a section of docs/errors.md)
    call: tuple[str, ...] | Callable[[Path], Any]  # CLI argv ({tmp}: the case folder), or an API call
    expect: str                                 # the one line ({tmp}: the case folder; …: any text)
    fix: str                                    # what the user does about it (docs/errors.md)
    setup: Callable[[Path], None] | None = None
    api: str = ""                               # how the docs show an API call
    fault: str | None = None                    # a key of FAULTS, injected while the case runs
    env: dict[str, str] | None = None           # run as a subprocess with these variables
    partial: bool = False                       # a fault may leave an unfinished (resumable) run


TRAIN = ("train", "--data", "digits", "--out", "{tmp}/out", "--no-progress")
TINY_NPZ = ("train", "--data", "{tmp}/tiny.npz", "--epochs=1", "--model.hidden_size=4", "--no-progress")

CASES: list[Case] = [
    # --- config values (typed layer) ---
    Case("lr-as-text", "config", (*TRAIN, "--train.lr=abc"),
         "lstmlite train: error: train.lr: expected a number, got 'abc'", "give a number: --train.lr=1e-3"),
    Case("epochs-as-bool", "config", (*TRAIN, "--train.epochs=true"),
         "lstmlite train: error: train.epochs: expected a whole number, got True", "give a whole number"),
    Case("lr-not-finite", "config", (*TRAIN, "--train.lr=.nan"),
         "lstmlite train: error: train.lr: expected a finite number, got nan", "give a finite number"),
    Case("unknown-key", "config", (*TRAIN, "--train.epochz=3"),
         "lstmlite train: error: unknown train option(s) ['epochz']; known: ['amp', 'batch_size', …]",
         "spell the key as one of those listed"),
    Case("config-missing", "config", (*TRAIN, "--config", "{tmp}/nope.yaml"),
         "lstmlite train: error: {tmp}/nope.yaml: config file not found", "check the path"),
    Case("config-broken-yaml", "config", (*TRAIN, "--config", "{tmp}/c.yaml"),
         "lstmlite train: error: {tmp}/c.yaml: cannot parse config (…)", "fix the YAML syntax",
         setup=write("c.yaml", "train: {epochs: 3\n  lr: [")),
    Case("config-not-a-mapping", "config", (*TRAIN, "--config", "{tmp}/c.yaml"),
         "lstmlite train: error: {tmp}/c.yaml: a config file must hold a mapping of sections (data, model, train)",
         "write `section: {key: value}`", setup=write("c.yaml", "- a\n- b\n")),
    Case("config-not-utf8", "config", (*TRAIN, "--config", "{tmp}/c.yaml"),
         "lstmlite train: error: {tmp}/c.yaml: not valid UTF-8 (byte 0xff at offset 13); re-save the config as UTF-8",
         "re-save the file as UTF-8", setup=write("c.yaml", b"train:\n  lr: \xff\xfe\n")),
    Case("bad-choice", "config", ("export", "{tmp}/run", "--format", "bogus", "--out", "{tmp}/x"),
         "lstmlite export: error: argument --format: invalid choice: 'bogus' (choose from …); "
         "see lstmlite export --help", "use one of the listed values"),
    Case("export-opset-unknown", "config", ("export", "{tmp}/run", "--format", "onnx", "--opset", "99", "--out",
                                            "{tmp}/m.onnx"),
         "lstmlite export: error: --opset: opset 99 is newer than the installed onnx package knows; lstmlite writes "
         "opsets 14 to …", "an opset in the range it names"),
    Case("beam-without-decoder", "config", ("eval", "{tmp}/run", "--beam", "4"),
         "lstmlite eval: error: --beam 4 is the width of --decoder beam (ctc and seq2seq runs); add --decoder beam, "
         "or leave --beam out for greedy decoding", "add --decoder beam"),

    # --- data files ---
    Case("data-missing", "data", ("train", "--data", "{tmp}/nope.csv", "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/nope.csv: no such file", "check the path or `lstmlite data list`"),
    Case("csv-no-label-column", "data", ("train", "--data", "{tmp}/a.csv", "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/a.csv: line 1: no column 'label' in the header (columns: text, lab)",
         "rename the column or set --data.label_column", setup=write("a.csv", "text,lab\nhello,1\n")),
    Case("csv-not-utf8", "data", ("train", "--data", "{tmp}/a.csv", "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/a.csv: line 2 is not valid UTF-8 (byte 0xff: invalid start byte); "
         "re-save the file as UTF-8", "re-save the file as UTF-8",
         setup=write("a.csv", b"text,label\nhello \xff world,a\nbye,b\n")),
    Case("csv-header-only", "data", ("train", "--data", "{tmp}/a.csv", "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/a.csv: no data rows", "add rows under the header",
         setup=write("a.csv", "text,label\n")),
    Case("csv-empty-file", "data", ("train", "--data", "{tmp}/a.csv", "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/a.csv: empty file (expected a header row with 'text' and 'label')",
         "write the header and rows", setup=write("a.csv", "")),
    Case("jsonl-truncated", "data", ("train", "--data", "{tmp}/a.jsonl", "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/a.jsonl: line 2: invalid JSON (…)", "complete or remove the line",
         setup=write("a.jsonl", '{"text": "a b", "label": "x"}\n{"text": "c d", "lab')),
    Case("tsv-missing-tab", "data", ("train", "--data", "{tmp}/a.tsv", "--task", "tag", "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/a.tsv: line 2: expected token<TAB>label, got 'cat'",
         "one token<TAB>label per line", setup=write("a.tsv", "the\tDET\ncat\n\n")),
    Case("npz-complex-dtype", "data", (*TINY_NPZ, "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/tiny.npz: 'x' must be real numbers (N, T, F) or (N, T), got complex128 "
         "(20, 5, 3); save floats or integers", "save real values",
         setup=npz("tiny.npz", x=np.ones((20, 5, 3)) + 1j, y=np.arange(20) % 2)),
    Case("npz-nan", "data", (*TINY_NPZ, "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/tiny.npz: row index 3: non-finite values in 'x'",
         "drop or impute the missing values",
         setup=npz("tiny.npz", x=np.where(np.arange(300).reshape(20, 5, 3) == 50, np.nan, 1.0), y=np.arange(20) % 2)),
    Case("npz-inf", "data", (*TINY_NPZ, "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/tiny.npz: row index 0: non-finite values in 'x'", "clip or drop them",
         setup=npz("tiny.npz", x=np.where(np.arange(300).reshape(20, 5, 3) == 1, np.inf, 1.0), y=np.arange(20) % 2)),
    Case("npz-label-count", "data", (*TINY_NPZ, "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/tiny.npz: 'y' must have shape (20,), got (19,)", "one label per row",
         setup=npz("tiny.npz", x=np.ones((20, 5, 3)), y=np.arange(19) % 2)),
    Case("npz-zero-length", "data", (*TINY_NPZ, "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/tiny.npz: row index 0: length 0 outside 1..5",
         "drop empty sequences or fix 'lengths'",
         setup=npz("tiny.npz", x=np.ones((20, 5, 3)), y=np.arange(20) % 2, lengths=np.r_[0, np.full(19, 5)])),
    Case("npz-no-steps", "data", (*TINY_NPZ, "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/tiny.npz: 'x' is empty (20, 0, 3)", "sequences need at least one step",
         setup=npz("tiny.npz", x=np.ones((20, 0, 3)), y=np.arange(20) % 2)),
    Case("npz-pickled-objects", "data", (*TINY_NPZ, "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/tiny.npz: Object arrays cannot be loaded when allow_pickle=False; "
         "save numeric or string arrays", "save numeric arrays (pickle is never loaded)",
         setup=npz("tiny.npz", x=np.array([None] * 3, dtype=object), y=np.arange(3))),
    Case("npz-corrupt", "data", (*TINY_NPZ, "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/tiny.npz: not a readable .npz file (File is not a zip file)",
         "re-save it with numpy.savez", setup=cut("tiny.npz", 0.5)),
    Case("npy-nan-series", "data", ("train", "--data", "{tmp}/a.npy", "--task", "forecast", "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/a.npy: time step 10: missing or non-finite value", "impute the gap",
         setup=lambda tmp: np.save(tmp / "a.npy", np.where(np.arange(50) == 10, np.nan, 1.0))),
    Case("text-empty", "data", ("train", "--data", "{tmp}/a.txt", "--task", "lm", "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/a.txt: no text", "give a text file with content", setup=write("a.txt", "")),
    Case("unseen-label", "data", ("eval", "{tmp}/text", "--data", "{tmp}/u.csv"),
         "lstmlite eval: error: {tmp}/u.csv: labels ['neutral'] were not seen when the run was trained; "
         "evaluate on data labelled with the run's classes (neg, pos)", "evaluate on the run's classes",
         setup=write("u.csv", "text,label\n" + "good day,pos\nbad day,neg\nso so,neutral\n" * 4)),

    # --- run dirs ---
    Case("run-missing", "run dir", ("eval", "{tmp}/nope"),
         "lstmlite eval: error: {tmp}/nope: not a run dir (no such directory)", "check the path"),
    Case("weights-flipped-byte", "run dir", ("eval", "{tmp}/run"),
         "lstmlite eval: error: {tmp}/run/model.safetensors: contents do not match manifest.json (corrupt, "
         "truncated or edited); re-create the run dir", "restore the run dir from a copy or re-create it",
         setup=flip("run/model.safetensors", 200)),
    Case("weights-corrupt-header", "run dir", ("eval", "{tmp}/run"),
         "lstmlite eval: error: {tmp}/run/model.safetensors: not a readable safetensors file, truncated or corrupt "
         "(…); re-create the run dir", "re-create the run dir", setup=flip("run/model.safetensors", 60, True)),
    Case("weights-truncated", "run dir", ("export", "{tmp}/run", "--format", "lsl", "--out", "{tmp}/x"),
         "lstmlite export: error: {tmp}/run/model.safetensors: not a readable safetensors file, truncated or corrupt "
         "(…); re-create the run dir", "re-create the run dir", setup=cut("run/model.safetensors", 0.5, True)),
    Case("weights-nan", "run dir", ("export", "{tmp}/run", "--format", "lsl", "--out", "{tmp}/x"),
         "lstmlite export: error: {tmp}/run/model.safetensors: tensor 'head.bias' holds NaN or Inf values "
         "(training diverged?); retrain, e.g. with a lower --train.lr", "retrain with a lower learning rate",
         setup=_nan_weight),
    Case("config-json-truncated", "run dir", ("eval", "{tmp}/run"),
         "lstmlite eval: error: {tmp}/run/config.json: not valid JSON (…); restore the file or re-create it",
         "restore config.json", setup=cut("run/config.json", 0.3, True)),
    Case("metrics-json-corrupt", "run dir", ("eval", "{tmp}/run"),
         "lstmlite eval: error: {tmp}/run/metrics.json: not valid JSON (…); restore the file or re-create it",
         "restore metrics.json", setup=steps(write("run/metrics.json", "{oops"), lambda t: _remanifest(t / "run/x"))),
    Case("run-format-version", "run dir", ("eval", "{tmp}/run"),
         "lstmlite eval: error: {tmp}/run/config.json: format_version 99 is not supported by this lstmlite "
         "(reads version 1); upgrade lstmlite or re-create the run dir", "upgrade lstmlite",
         setup=edit_json("run/config.json", lambda c: {**c, "format_version": 99})),
    Case("manifest-format-version", "run dir", ("eval", "{tmp}/run"),
         "lstmlite eval: error: {tmp}/run/manifest.json: format_version 7 is not supported by this lstmlite "
         "(reads version 1); upgrade lstmlite or re-create the run dir", "upgrade lstmlite",
         setup=edit_json("run/manifest.json", lambda c: {**c, "format_version": 7}, remanifest=False)),
    Case("manifest-malformed", "run dir", ("eval", "{tmp}/run"),
         "lstmlite eval: error: {tmp}/run/manifest.json: malformed manifest (no 'files' mapping)",
         "re-create the run dir", setup=edit_json("run/manifest.json", lambda c: {**c, "files": 3}, remanifest=False)),
    Case("run-unfinished", "run dir", ("eval", "{tmp}/run"),
         "lstmlite eval: error: {tmp}/run: unfinished run dir (no manifest.json: it was interrupted while being "
         "written); re-create it", "re-run the command that writes it", setup=remove("run/manifest.json")),
    Case("vocab-missing", "run dir", ("eval", "{tmp}/text"),
         "lstmlite eval: error: {tmp}/text/vocab.json: listed in manifest.json but missing", "restore vocab.json",
         setup=remove("text/vocab.json")),
    Case("vocab-missing-rehashed", "run dir", ("eval", "{tmp}/text"),
         "lstmlite eval: error: {tmp}/text/vocab.json: missing, and this run's model reads token ids; restore the "
         "run dir's vocab.json (or re-create the run dir)", "restore vocab.json",
         setup=remove("text/vocab.json", remanifest=True)),
    Case("imported-then-eval", "run dir", ("eval", "{tmp}/imported"),
         "lstmlite eval: error: {tmp}/imported/config.json: the run records no data (an imported model?); pass "
         "--data NAME_OR_PATH prepared as the model was trained", "add --data"),
    Case("imported-then-compress", "run dir", ("compress", "{tmp}/imported", "--recipe", "int8", "--out", "{tmp}/c"),
         "lstmlite compress: error: {tmp}/imported/config.json: the run records no data (an imported model?); pass "
         "--data NAME_OR_PATH prepared as the model was trained", "add --data"),

    # --- output folders ---
    Case("out-holds-user-files", "output", (*TRAIN, "--epochs=1"),
         "lstmlite train: error: {tmp}/out: holds files lstmlite did not write (notes.txt); choose a new or empty "
         "--out", "choose a new or empty --out", setup=steps(write("out/notes.txt", "mine"),
                                                                          write("out/history.json", "my own"))),
    Case("compress-out-user-files", "output", ("compress", "{tmp}/run", "--recipe", "int8", "--out", "{tmp}/out"),
         "lstmlite compress: error: {tmp}/out: holds files lstmlite did not write (notes.txt); choose a new or empty "
         "--out", "choose a new or empty --out", setup=write("out/notes.txt", "mine")),
    Case("import-out-user-files", "output", ("import", "onnx", "{tmp}/model.onnx", "--out", "{tmp}/out"),
         "lstmlite import: error: {tmp}/out: holds files lstmlite did not write (notes.txt); choose a new or empty "
         "--out", "choose a new or empty --out", setup=write("out/notes.txt", "mine")),
    Case("search-out-user-files", "output", ("search", "--data", "digits", "--trials", "1", "--out", "{tmp}/out"),
         "lstmlite search: error: {tmp}/out: holds files lstmlite search did not write (notes.txt); choose a new or "
         "empty --out", "choose a new or empty --out", setup=write("out/notes.txt", "mine")),
    Case("out-is-a-file", "output", TRAIN,
         "lstmlite train: error: {tmp}/out: exists and is not a folder; choose another --out", "choose a folder",
         setup=write("out", "a file")),
    Case("out-is-a-finished-run", "output", ("compress", "{tmp}/run", "--recipe", "int8", "--out", "{tmp}/text"),
         "lstmlite compress: error: {tmp}/text: a run dir already exists here; choose another --out, or --force to "
         "replace it", "choose another --out, or add --force"),
    Case("force-with-user-files", "output", (*TRAIN, "--epochs=1", "--force"),
         "lstmlite train: error: {tmp}/out: holds files lstmlite did not write (notes.txt); choose a new or empty "
         "--out", "--force replaces only a run dir of ours: move your files", setup=lambda tmp: (
             shutil.copytree(tmp / "run", tmp / "out"), (tmp / "out" / "notes.txt").write_text("mine"))),
    Case("out-is-the-source", "output", ("compress", "{tmp}/run", "--recipe", "int8", "--out", "{tmp}/run"),
         "lstmlite compress: error: {tmp}/run: a run dir already exists here; choose another --out, or --force to "
         "replace it", "choose another --out"),
    Case("stateful-classifier", "run dir", ("export", "{tmp}/run", "--format", "onnx", "--stateful", "--out",
                                            "{tmp}/x.onnx"),
         "lstmlite export: error: a streaming (stateful) export needs a per-step model (a tagger / CTC model or a "
         "language model); a SequenceClassifier summarizes the whole sequence: export it without --stateful",
         "export without --stateful"),
    Case("spoken-words-bad-word", "data", ("data", "make", "spoken-words", "--words", "Yes,no", "--out", "{tmp}/w"),
         "lstmlite data: error: words must be lower-case ASCII letters, one word each; got ['Yes']",
         "write the words in lower case"),
    Case("export-target-exists", "output", ("export", "{tmp}/run", "--format", "lsl", "--out", "{tmp}/model.lsl"),
         "lstmlite export: error: {tmp}/model.lsl exists; choose another --out", "choose another --out"),
    Case("report-target-exists", "output", ("report", "{tmp}/run", "--out", "{tmp}/notes.html"),
         "lstmlite report: error: {tmp}/notes.html exists; choose another --out, or add --force to replace it",
         "choose another --out, or add --force", setup=write("notes.html", "mine")),
    Case("recommend-space-out-exists", "output", ("recommend", "--data", "digits", "--budget", "size=4KB",
                                                  "--space-out", "{tmp}/space.yaml"),
         "lstmlite recommend: error: {tmp}/space.yaml exists; choose another --space-out, or add --force to replace "
         "it", "choose another --space-out, or add --force", setup=write("space.yaml", "my hand-tuned space")),
    Case("bench-json-exists", "output", ("bench", "--engines", "lstmlite-fp32", "--json", "{tmp}/bench.json"),
         "lstmlite bench: error: {tmp}/bench.json exists; choose another --json, or add --force to replace it",
         "choose another --json, or add --force", setup=write("bench.json", "{\"mine\": 1}")),
    Case("export-out-other-format", "output", ("export", "{tmp}/run", "--format", "lsl", "--out", "{tmp}/x.onnx"),
         "lstmlite export: error: --out {tmp}/x.onnx: a .onnx path is for --format onnx; --format lsl takes a .lsl "
         "file path or a folder (e.g. --out {tmp}/x.lsl)", "give the format's extension, or the format the path names"),
    Case("explain-out-is-a-file", "output", ("explain", "{tmp}/run", "--out", "{tmp}/report.html"),
         "lstmlite explain: error: --out {tmp}/report.html: a file, not a folder; explain writes a folder of PNGs "
         "and section.html (e.g. --out {tmp}/report-explain)", "give a folder", setup=write("report.html", "mine")),
    Case("explain-out-holds-files", "output", ("explain", "{tmp}/run", "--out", "{tmp}/ex"),
         "lstmlite explain: error: --out {tmp}/ex: holds files (explanation.json); choose a new or empty --out, or "
         "add --force to write explain's files into it", "choose a new or empty folder, or add --force",
         setup=write("ex/explanation.json", "mine")),
    Case("read-only-folder", "output", (*TINY_NPZ, "--out", "{tmp}/ro/out"),
         "lstmlite train: error: {tmp}/ro/out…: Read-only file system; choose a writable --out (or fix its "
         "permissions)", "choose a writable --out", fault="read-only"),
    Case("disk-full", "output", (*TINY_NPZ, "--out", "{tmp}/out"),
         "lstmlite train: error: {tmp}/out/checkpoints/…: No space left on device; free space on that disk or choose "
         "another --out",
         "free space, then `--resume`", fault="disk full",
         setup=npz("tiny.npz", x=np.random.default_rng(0).standard_normal((20, 5, 3)), y=np.arange(20) % 2),
         partial=True),

    # --- resume and checkpoints ---
    Case("resume-changed-config", "checkpoint",
         ("train", "--data", "digits", "--epochs=1", "--model.hidden_size=8", "--train.lr=0.5", "--out", "{tmp}/run",
          "--resume", "--no-progress"),
         "lstmlite train: error: {tmp}/run/checkpoints/last.json: --resume with other options than the interrupted "
         "run (train.lr: 0.001 -> 0.5); resume with the same options, or start a new --out",
         "resume with the same options", setup=_unfinished_training),
    Case("compress-resume", "checkpoint",
         ("compress", "{tmp}/run", "--recipe", "int8", "--out", "{tmp}/c", "--resume", "--no-progress"),
         "lstmlite compress: error: --resume: a recipe keeps no checkpoints (its run dir is written once, after the "
         "last step), so an interrupted compress starts again: run the same command without --resume",
         "run the same command without --resume"),
    Case("resume-without-checkpoint", "checkpoint", (*TRAIN, "--resume"),
         "lstmlite train: error: {tmp}/out/checkpoints/last.json: no checkpoint to resume from",
         "drop --resume to start a new run"),
    Case("checkpoint-corrupt", "checkpoint",
         ("train", "--data", "digits", "--epochs=1", "--model.hidden_size=8", "--out", "{tmp}/run", "--resume",
          "--no-progress"),
         "lstmlite train: error: {tmp}/run/checkpoints/last.e1.safetensors: …cannot resume (start a new --out)",
         "start a new --out", setup=_flip_checkpoint),
    Case("checkpoint-version", "checkpoint",
         ("train", "--data", "digits", "--epochs=1", "--model.hidden_size=8", "--out", "{tmp}/run", "--resume",
          "--no-progress"),
         "lstmlite train: error: {tmp}/run/checkpoints/last.json: checkpoint version 9 is not supported (this "
         "lstmlite writes 2); start a new --out", "start a new --out",
         setup=_tag_checkpoint(lambda meta: meta.update(checkpoint_version=9))),

    # --- model files to import ---
    Case("import-missing-file", "import", ("import", "onnx", "{tmp}/nope.onnx", "--out", "{tmp}/out"),
         "lstmlite import: error: {tmp}/nope.onnx: no such file; check the path", "check the path"),
    Case("onnx-garbage", "import", ("import", "onnx", "{tmp}/model.onnx", "--out", "{tmp}/out"),
         "lstmlite import: error: {tmp}/model.onnx: not a readable ONNX file, truncated or corrupt (…); re-save it "
         "from its framework", "re-export the ONNX file", setup=write("model.onnx", b"\x08\x07garbage\xff\xff")),
    Case("onnx-truncated", "import", ("import", "onnx", "{tmp}/model.onnx", "--out", "{tmp}/out"),
         "lstmlite import: error: {tmp}/model.onnx: not a readable ONNX file, truncated or corrupt (…); re-save it "
         "from its framework", "re-export the ONNX file", setup=cut("model.onnx", 0.6)),
    Case("keras-corrupt", "import", ("import", "keras", "{tmp}/m.keras", "--out", "{tmp}/out"),
         "lstmlite import: error: {tmp}/m.keras: not a readable Keras file, truncated or corrupt (…); re-save it "
         "from its framework", "re-save with model.save(\"m.keras\")", setup=write("m.keras", b"PK\x03\x04garbage")),
    Case("h5-corrupt", "import", ("import", "keras", "{tmp}/m.h5", "--out", "{tmp}/out"),
         "lstmlite import: error: {tmp}/m.h5: not a readable Keras HDF5 file, truncated or corrupt (…); re-save it "
         "from its framework", "re-save the .h5", setup=write("m.h5", b"\x89HDF\r\n\x1a\ngarbage")),
    Case("torch-not-a-state-dict", "import", ("import", "torch", "{tmp}/m.pt", "--out", "{tmp}/out"),
         "lstmlite import: error: {tmp}/m.pt: not a readable torch.save file, truncated or corrupt (…); re-save it "
         "with torch.save(model.state_dict(), ...)", "save the state_dict", setup=write("m.pt", b"garbage")),
    Case("torch-kind-conflict", "import",
         ("import", "torch", "{tmp}/m.pt", "--arch", '{"kind": "classifier"}', "--kind", "forecaster", "--out",
          "{tmp}/out"),
         "lstmlite import: error: --arch says kind 'classifier' but --kind says 'forecaster'; give one of them, or "
         "the same kind in both", "drop --kind or the kind in --arch", setup=write("m.pt", b"garbage")),
    Case("tflite-corrupt", "import", _read_tflite,
         "ValueError: {tmp}/model.tflite: not a readable .tflite model, truncated or corrupt (…); re-convert it "
         "with the TFLite converter", "re-convert the model", api="read_tflite_lstm(\"model.tflite\")",
         setup=write("model.tflite", b"\x1c\x00\x00\x00TFL3" + b"\xff" * 40)),

    # --- .lsl files (native runtime) ---
    Case("lsl-given-to-import", "import", ("import", "onnx", "{tmp}/model.lsl", "--out", "{tmp}/out"),
         "lstmlite import: error: {tmp}/model.lsl: not an ONNX file but an lstmlite .lsl file (the native runtime's "
         "model), which needs no import: lstmlite.runtime.load(path) runs it", "run it with lstmlite.runtime.load"),
    Case("h5-given-to-torch", "import", ("import", "torch", "{tmp}/m.h5", "--out", "{tmp}/out"),
         "lstmlite import: error: {tmp}/m.h5: not a torch.save file but a Keras HDF5 file: lstmlite import keras FILE",
         "import keras FILE", setup=write("m.h5", b"\x89HDF\r\n\x1a\n" + bytes(40))),
    Case("lsl-truncated", "lsl", _load_lsl("model.lsl"),
         "Error: {tmp}/model.lsl: lstmlite runtime error -11: .lsl file checksum mismatch: the file is corrupt or "
         "truncated; re-export it (lstmlite export RUN --format lsl)", "re-export it",
         api="runtime.load(\"model.lsl\")", setup=cut("model.lsl", 0.5)),
    Case("lsl-flipped-byte", "lsl", _load_lsl("model.lsl"),
         "Error: {tmp}/model.lsl: lstmlite runtime error -11: .lsl file checksum mismatch: the file is corrupt or "
         "truncated; re-export it (lstmlite export RUN --format lsl)", "re-export it",
         api="runtime.load(\"model.lsl\")", setup=flip("model.lsl", 500)),
    Case("lsl-unknown-version", "lsl", _load_lsl("model.lsl"),
         "Error: {tmp}/model.lsl: lstmlite runtime error -7: unsupported .lsl file version; re-export it (lstmlite "
         "export RUN --format lsl)", "re-export with this lstmlite", api="runtime.load(\"model.lsl\")",
         setup=flip("model.lsl", 10)),
    Case("lsl-missing", "lsl", _load_lsl("nope.lsl"),
         "FileNotFoundError: {tmp}/nope.lsl: no such run dir or .lsl file", "check the path",
         api="runtime.load(\"nope.lsl\")"),

    # --- recipes ---
    Case("recipe-missing", "recipe", ("compress", "{tmp}/run", "--recipe", "{tmp}/nope.yaml", "--out", "{tmp}/c"),
         "lstmlite compress: error: {tmp}/nope.yaml: no such recipe file, and not a shipped recipe (shipped: …)",
         "check the path or use a shipped name"),
    Case("recipe-broken-yaml", "recipe", ("compress", "{tmp}/run", "--recipe", "{tmp}/r.yaml", "--out", "{tmp}/c"),
         "lstmlite compress: error: {tmp}/r.yaml: cannot parse recipe (…)", "fix the YAML syntax",
         setup=write("r.yaml", "name: x\nsteps:\n  - [")),
    Case("recipe-version", "recipe", ("compress", "{tmp}/run", "--recipe", "{tmp}/r.yaml", "--out", "{tmp}/c"),
         "lstmlite compress: error: {tmp}/r.yaml: recipe version 9 is not supported (this lstmlite reads 1)",
         "write a version 1 recipe", setup=write("r.yaml", "name: x\nversion: 9\nsteps: []\n")),
    Case("recipe-unknown-key", "recipe", ("compress", "{tmp}/run", "--recipe", "{tmp}/r.yaml", "--out", "{tmp}/c"),
         "lstmlite compress: error: {tmp}/r.yaml: step 1 (train): unknown step key(s) ['bitz', 'type']; a config "
         "needs method: NAME (…)", "use the documented step keys",
         setup=write("r.yaml", "name: x\nsteps:\n  - {type: quantize, bitz: 8}\n")),

    # --- budgets and resources ---
    Case("recipe-for-another-task", "recipe", ("compress", "{tmp}/run", "--recipe", "seq2seq-small", "--out",
                                                "{tmp}/c"),
         "lstmlite compress: error: recipe seq2seq-small is for seq2seq runs, not this classify run. It fits seq2seq "
         "runs (--task seq2seq), with their training data; other tasks: use tiny or text-tiny. lstmlite compress "
         "--list-recipes shows the others", "a recipe for the run's task"),
    Case("bench-too-big", "resources", ("bench", "--hidden-size", "200000", "--engines", "lstmlite-fp32"),
         "lstmlite bench: error: these sizes need about 1,921,363,232,000 B (1789.41 GiB) of memory (every engine "
         "holds its own copy of the weights) but … are available; choose smaller sizes or fewer --engines",
         "smaller sizes"),
    Case("bench-threads", "resources", ("bench", "--threads", "65"),
         "lstmlite bench: error: --threads must be at most 64", "at most 64 threads"),
    Case("tolerance-negative", "resources", ("export", "{tmp}/run", "--format", "onnx", "--tolerance", "-1",
                                             "--out", "{tmp}/x"),
         "lstmlite export: error: --tolerance must be a finite number >= 0, got -1; e.g. --tolerance 1e-3",
         "a tolerance >= 0"),
    Case("search-budget-unknown", "resources", ("search", "--data", "digits", "--budget", "speed=3", "--out",
                                                "{tmp}/s"),
         "lstmlite search: error: unknown budget 'speed'; use size=, latency= and ram=", "size=, latency=, ram="),
    Case("search-budget-negative", "resources", ("search", "--data", "digits", "--budget", "size=-5KB", "--out",
                                                 "{tmp}/s"),
         "lstmlite search: error: budget size='-5kb': use a byte count like 8KB, 2048 or 1.5MB", "a positive size"),
    Case("search-budget-impossible", "resources", ("search", "--data", "digits", "--budget", "size=10B", "--out",
                                                   "{tmp}/s"),
         "lstmlite search: error: budget size=10 B is below the smallest model this space can build (… B: cell=…); "
         "widen --budget or the space (--space)", "a larger budget, or a space with smaller models"),
    Case("recommend-nothing-fits", "resources", ("recommend", "--data", "digits", "--budget", "size=10B"),
         "lstmlite recommend: error: no model of the proposed space fits --budget size=10B: its smallest model's "
         "file is … B (…); use --budget size=…B or more", "a budget at least the size it names"),
    Case("search-storage-unknown", "resources", ("search", "--data", "digits", "--storage", "foo://x/y", "--out",
                                                "{tmp}/s"),
         "lstmlite search: error: --storage foo://x/y: unknown database kind 'foo'; use sqlite:///PATH/study.db or "
         "postgresql+psycopg2://user@host/db", "an SQLite file or a PostgreSQL URL"),
    Case("search-storage-no-folder", "resources", ("search", "--data", "digits", "--storage",
                                                  "sqlite:///{tmp}/nodir/study.db", "--out", "{tmp}/s"),
         "lstmlite search: error: --storage sqlite:///{tmp}/nodir/study.db: the folder {tmp}/nodir does not exist; "
         "create it or give an SQLite file in an existing folder", "create the folder"),
    Case("isa-option-unknown", "resources", ("bench", "--isa", "sse9", "--engines", "lstmlite-fp32"),
         "lstmlite bench: error: --isa: unknown ISA 'sse9'; choose one of auto, portable, … "
         "(this CPU supports: portable…)", "use a kernel the message lists"),
    Case("isa-unknown", "resources", ("bench", "--engines", "lstmlite-fp32", "--seq-len", "2", "--reps", "1"),
         "lstmlite bench: error: LSTMLITE_ISA=bogus is unknown; use one of auto, portable, … "
         "(this CPU supports: …)",
         "unset LSTMLITE_ISA or use a listed kernel", env={"LSTMLITE_ISA": "bogus"}),

    # --- runtime inputs (API) ---
    Case("token-id-beyond-int32", "runtime input", lambda tmp: _engine(tmp, "text.lsl").run(np.array([[1, 2 ** 40]])),
         "ValueError: token id 1099511627776 is outside this model's vocabulary [0, …); map unknown tokens to <unk> "
         "(id 1) before running", "map unknown tokens to <unk>", api="engine.run(np.array([[1, 2**40]]))"),
    Case("token-id-beyond-vocab", "runtime input", lambda tmp: _engine(tmp, "text.lsl").step(10 ** 6),
         "ValueError: token id 1000000 is outside this model's vocabulary [0, …); map unknown tokens to <unk> (id 1) "
         "before running", "map unknown tokens to <unk>", api="engine.step(10**6)"),
    Case("features-complex", "runtime input", lambda tmp: _engine(tmp).run(np.zeros((2, 5, 8), np.complex64)),
         "InputTypeError: this model takes real-valued features (float32), got dtype complex64", "pass real values",
         api="engine.run(np.zeros((2, 5, 8), np.complex64))"),
    Case("features-wrong-width", "runtime input", lambda tmp: _engine(tmp).run(np.zeros((2, 5, 3), np.float32)),
         "ValueError: expected 8 features per step, got 3", "pass (B, T, 8)",
         api="engine.run(np.zeros((2, 5, 3), np.float32))"),
    Case("sequence-empty", "runtime input", lambda tmp: _engine(tmp).run(np.zeros((2, 0, 8), np.float32)),
         "ValueError: need at least one sequence of at least one step", "drop empty sequences",
         api="engine.run(np.zeros((2, 0, 8), np.float32))"),
    Case("length-zero", "runtime input",
         lambda tmp: _engine(tmp).run(np.zeros((2, 5, 8), np.float32), lengths=[0, 5]),
         "ValueError: lengths must be (B,) = (2,) with values in [1, 5]", "drop empty sequences",
         api="engine.run(x, lengths=[0, 5])"),
    Case("state-of-another-model", "runtime input", _step_with_foreign_state,
         "ValueError: this state belongs to another engine (each model's state has its own layout); create it with "
         "this engine's new_state()", "use engine.new_state()", api="text_engine.step(3, feature_engine.new_state())"),
    Case("state-of-another-engine", "runtime input", _run_with_foreign_state,
         "ValueError: this state belongs to another engine (each model's state has its own layout); create it with "
         "this engine's new_state()", "use engine.new_state()", api="engine2.run(x, state=engine1.new_state())"),
    # --- distributed training (torchrun / --nproc; docs/training.md) ---
    Case("nproc-zero", "distributed", (*TRAIN, "--nproc", "0"),
         "lstmlite train: error: --nproc must be at least 1, got 0", "give a process count of 1 or more"),
    Case("nproc-batch-not-divisible", "distributed", (*TRAIN, "--nproc", "2", "--train.batch_size=33"),
         "lstmlite train: error: train.batch_size=33 is not a multiple of --nproc 2 (it is the global batch, split "
         "evenly over the processes): choose a multiple of 2", "choose a batch size that the processes divide"),
    Case("nproc-default-batch-not-divisible", "distributed", (*TRAIN, "--nproc", "3"),
         "lstmlite train: error: train.batch_size=32 (the default for a training split of 1,437 sequences) "
         "is not a multiple of --nproc 3 (it is the global batch, split evenly over the processes): choose a "
         "multiple of 3", "choose a batch size that the processes divide"),
    # basic_motions' 36 training series default to batch 8 (default_train_config): 16 divides
    # TrainConfig's 32, so before the launcher loaded the data each of 16 processes refused it
    Case("nproc-small-split-default-batch-not-divisible", "distributed",
         ("train", "--data", "basic_motions", "--out", "{tmp}/out", "--no-progress", "--nproc", "16"),
         "lstmlite train: error: train.batch_size=8 (the default for a training split of 36 sequences) "
         "is not a multiple of --nproc 16 (it is the global batch, split evenly over the processes): choose a "
         "multiple of 16", "choose a batch size that the processes divide, or set --train.batch_size"),
    Case("nproc-inside-torchrun", "distributed", (*TRAIN, "--nproc", "2"),
         "lstmlite train (rank 0): error: --nproc: already running under torchrun (WORLD_SIZE is set); drop --nproc",
         "start the processes once: torchrun … -m lstmlite train, or lstmlite train --nproc N",
         env={"WORLD_SIZE": "2", "RANK": "0"}),
]


# ----- the shared artefacts, built once --------------------------------------------
@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lstmlite.export.lsl import export_lsl
    from lstmlite.export.onnx import export_onnx
    from lstmlite.importers.onnx import import_onnx
    from lstmlite.io import load_run
    from lstmlite.train import fit

    root = tmp_path_factory.mktemp("error-cases")
    fit({"data": {"source": "digits"}, "model": {"hidden_size": 8}, "train": {"epochs": 1}}, root / "run",
        progress=False)
    rows = "".join(f"{w} {w} day,{lab}\n" for _ in range(15) for w, lab in (("good", "pos"), ("bad", "neg")))
    (root / "t.csv").write_text("text,label\n" + rows)
    fit({"data": {"source": str(root / "t.csv")}, "model": {"hidden_size": 4, "embed_dim": 4},
         "train": {"epochs": 1}}, root / "text", progress=False)
    (root / "t.csv").unlink()
    export_onnx(load_run(root / "run").model, root / "model.onnx")
    export_lsl(root / "run", root / "model.lsl")
    export_lsl(root / "text", root / "text.lsl")
    import_onnx(root / "model.onnx", out=root / "imported")
    np.savez(root / "tiny.npz", x=np.random.default_rng(0).standard_normal((20, 5, 3)), y=np.arange(20) % 2)
    return root


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _pattern(template: str, tmp: Path) -> str:
    return ".*".join(re.escape(part) for part in template.replace("{tmp}", str(tmp)).split("…"))


def _run_cli(case: Case, tmp: Path) -> tuple[int, str]:
    from lstmlite.cli.main import main

    argv = [a.replace("{tmp}", str(tmp)) for a in case.call]
    if case.env:
        env = {**os.environ, **case.env, "PYTHONPATH": str(Path(__import__("lstmlite").__file__).parents[1])}
        proc = subprocess.run([sys.executable, "-m", "lstmlite", *argv], capture_output=True, text=True, env=env,
                              cwd=tmp, timeout=120)
        return proc.returncode, proc.stderr
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own errors
            code = int(exit_.code or 0)
    return code, err.getvalue()


def _run_api(case: Case, tmp: Path) -> tuple[int, str]:
    assert callable(case.call)
    try:
        case.call(tmp)
    except (ValueError, OSError) as err:  # what the CLI reports with exit status 2
        return 2, f"{type(err).__name__}: {err}"
    return 0, ""


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_its_one_line_and_loses_nothing(case: Case, artefacts: Path, tmp_path: Path) -> None:
    for entry in artefacts.iterdir():
        (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, tmp_path / entry.name)
    if case.setup:
        case.setup(tmp_path)
    before = _snapshot(tmp_path)
    fault = FAULTS[case.fault](tmp_path) if case.fault else contextlib.nullcontext()
    with fault:
        code, err = (_run_cli if isinstance(case.call, tuple) else _run_api)(case, tmp_path)
    # `lstmlite train` names the training options the data chose before it trains (a notice,
    # not part of a failure that comes later); the failure itself is still one line
    lines = [line for line in err.strip().splitlines() if not line.startswith(DEFAULTS_NOTE)]
    assert code == 2, f"exit status {code}, stderr:\n{err}"
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.fullmatch(_pattern(case.expect, tmp_path), lines[0]), f"\n got: {lines[0]}\nwant: {case.expect}"
    # nothing lost: the user's files (and ours) keep their bytes, no temp file stays, no
    # folder looks like a finished run dir that was not one before
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before, "a file changed or went missing"
    new = sorted(set(after) - set(before))
    assert not [n for n in new if n.endswith(".tmp") or Path(n).name == "manifest.json"], new
    if not case.partial:
        assert not new, f"files written by a failed command: {new}"


def test_force_replaces_a_run_dir_of_ours(artefacts: Path, tmp_path: Path, capsys) -> None:
    """The other side of ``out-is-a-finished-run``: with --force the run dir is replaced,
    recipe.json and all covered by the new manifest."""
    import lstmlite.cli.main  # noqa: F401

    main = sys.modules["lstmlite.cli.main"].main
    shutil.copytree(artefacts / "run", tmp_path / "run")
    shutil.copytree(artefacts / "text", tmp_path / "out")
    assert main(["compress", str(tmp_path / "run"), "--recipe", "int8", "--out", str(tmp_path / "out"), "--force"]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert "recipe.json" in manifest["files"] and "vocab.json" not in manifest["files"]
    assert not (tmp_path / "out" / "vocab.json").exists()  # the replaced run's


def test_a_subprocess_error_has_no_traceback_unless_debug(artefacts: Path, tmp_path: Path) -> None:
    """The CLI's one line in a real process; ``--debug`` shows the traceback."""
    import lstmlite.cli.main  # noqa: F401 - the module, for sys.modules below

    main = sys.modules["lstmlite.cli.main"].main
    env = {**os.environ, "PYTHONPATH": str(Path(__import__("lstmlite").__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-m", "lstmlite", "eval", str(tmp_path / "nope")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"lstmlite eval: error: {tmp_path / 'nope'}: not a run dir (no such directory)"]
    with pytest.raises(ValueError, match="not a run dir"):
        main(["--debug", "eval", str(tmp_path / "nope")])


@pytest.mark.parametrize("argv", [["eval", "{nope}", "--debug"], ["data", "show", "{nope}", "--debug"],
                                  ["-v", "eval", "{nope}", "-v", "--debug"]])
def test_debug_after_the_subcommand_shows_the_traceback_too(argv: list[str], tmp_path: Path) -> None:
    """An error line says "rerun with --debug": after the subcommand's name (even a
    subcommand's subcommand) it works as before it; it was "unrecognized arguments"."""
    from lstmlite.cli.main import main

    with pytest.raises(ValueError, match="not a run dir|no such file"):
        main([a.format(nope=tmp_path / "nope") for a in argv])


def test_debug_before_the_subcommand_is_not_undone_by_the_subcommand(tmp_path: Path) -> None:
    """The subcommands' own --debug has no default of its own (it would put False over the
    top level's True)."""
    from lstmlite.cli.main import build_parser

    args, _ = build_parser().parse_known_args(["--debug", "-vv", "eval", str(tmp_path)])
    assert args.debug is True and args.verbose == 2


@pytest.mark.parametrize("argv, level", [(["-v", "eval", "{run}", "-v"], logging.DEBUG),
                                         (["data", "-v", "show", "digits", "-v"], logging.DEBUG),
                                         (["eval", "{run}", "-v"], logging.INFO),
                                         (["eval", "{run}"], logging.WARNING)])
def test_every_v_counts_before_and_after_the_subcommand(argv: list[str], level: int, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``-v eval RUN -v`` is -vv (debug logging), as is a -v at each level of ``data show``:
    argparse parses a subcommand into a fresh namespace, so the count after the name
    replaced the one before it (info logging)."""
    import lstmlite.cli.main  # noqa: F401 - the module, for sys.modules below

    cli_main = sys.modules["lstmlite.cli.main"]
    levels: list[int] = []
    monkeypatch.setattr(cli_main.logging, "basicConfig", lambda **kw: levels.append(kw["level"]))
    cli_main.main([a.format(run=tmp_path / "nope") for a in argv])
    assert levels == [level]


@pytest.mark.parametrize("raised, status, line", [
    (KeyError("data"), 1, "lstmlite data: internal error (KeyError: 'data'); rerun with --debug and report it"),
    (KeyboardInterrupt(), 130, "interrupted"),  # Ctrl-C: the shell's 128 + SIGINT, not an error of ours
])
def test_a_bug_of_ours_is_an_internal_error_with_status_1(raised: BaseException, status: int, line: str,
                                                          monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Only input errors get status 2; a KeyError from our code says it is ours; Ctrl-C
    exits 130 with one word. Catches an interrupt reported with a bug's status 1."""
    import lstmlite.cli.main  # noqa: F401 - the module, for sys.modules below

    cli_main = sys.modules["lstmlite.cli.main"]
    real = cli_main.build_parser

    def broken(args: Any) -> int:
        raise raised

    def build() -> Any:
        parser = real()
        action = next(a for a in parser._actions if a.dest == "command")
        action.choices["data"].set_defaults(func=broken)
        return parser

    monkeypatch.setattr(cli_main, "build_parser", build)
    assert cli_main.main(["data", "list"]) == status
    assert capsys.readouterr().err.strip() == line


def test_there_are_at_least_40_cases_with_unique_ids() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)
    assert all(c.api for c in CASES if not isinstance(c.call, tuple)), "an API case needs its docs form"


# ----- docs/errors.md ------------------------------------------------------------------
BEGIN, END = "<!-- BEGIN cases (tests/cli/test_error_cases.py) -->", "<!-- END cases -->"


def _cell(text: str) -> str:
    return text.replace("{tmp}/", "").replace("|", "\\|").replace("\n", " ")


def render_cases() -> str:
    """The docs table of every case, grouped by kind, in table order."""
    out: list[str] = []
    for kind in dict.fromkeys(c.kind for c in CASES):
        out += [f"### {kind}", "", "| case | command or call | message | fix |", "|---|---|---|---|"]
        for c in (c for c in CASES if c.kind == kind):
            how = "lstmlite " + " ".join(c.call) if isinstance(c.call, tuple) else c.api
            if c.env:
                how = " ".join(f"{k}={v}" for k, v in c.env.items()) + " " + how
            if c.fault:
                how += f" (fault: {c.fault})"
            out.append(f"| `{c.id}` | `{_cell(how)}` | `{_cell(c.expect)}` | {_cell(c.fix)} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _doc_block(text: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip("\n") + "\n"


def test_docs_match_the_table() -> None:
    assert _doc_block(DOC.read_text(encoding="utf-8")) == render_cases(), (
        "docs/errors.md differs from the table: run `PYTHONPATH=src python tests/cli/test_error_cases.py --write`")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        text = DOC.read_text(encoding="utf-8")
        DOC.write_text(text[: text.index(BEGIN) + len(BEGIN)] + "\n" + render_cases() + text[text.index(END):],
                       encoding="utf-8")
        print(f"wrote {DOC} ({len(CASES)} cases)")
    else:
        print(render_cases())
