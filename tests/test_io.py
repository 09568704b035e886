"""Run dirs: round trip, atomic writes, a manifest that catches corrupt or unfinished
run dirs, never writing over the user's files, clear errors."""

import errno
import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import lstmlite.io as io_mod
from lstmlite.io import RunDirError, check_out_dir, load_run, save_run, write_json, write_manifest
from lstmlite.nn import LanguageModel, SequenceClassifier


def test_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, hidden_size=6, n_classes=3, cell="gru").eval()
    save_run(tmp_path / "run", model, {"task": "classify"}, metrics={"metric": 0.5}, history=[{"epoch": 1}])
    run = load_run(tmp_path / "run")
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(run.model(x), model(x), rtol=0, atol=0)
    assert run.metrics == {"metric": 0.5} and run.history == [{"epoch": 1}]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["format_version"] == 1
    assert not list((tmp_path / "run").glob(".*tmp")), "no temp files left behind"


def test_tied_language_model_round_trip(tmp_path):
    model = LanguageModel(vocab_size=12, embed_dim=5, hidden_size=5, tie_weights=True).eval()
    save_run(tmp_path / "lm", model, {"task": "lm"})
    loaded = load_run(tmp_path / "lm").model
    assert loaded.head.weight is loaded.embedding.weight
    x = torch.randint(0, 12, (2, 4))
    torch.testing.assert_close(loaded(x)[0], model(x)[0], rtol=0, atol=0)


def test_errors(tmp_path):
    with pytest.raises(RunDirError, match="not a run dir"):
        load_run(tmp_path / "missing")
    model = SequenceClassifier(input_size=2, hidden_size=3, n_classes=2)
    run = save_run(tmp_path / "r", model, {"task": "classify"})
    with pytest.raises(RunDirError, match="already exists"):
        save_run(run, model, {"task": "classify"})
    config = json.loads((run / "config.json").read_text())
    config["format_version"] = 99
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunDirError, match="config.json: contents do not match manifest.json"):
        load_run(run)
    # a future lstmlite's, an older one's, or none at all: only version 1 is read
    for version in (99, 0, None):
        config["format_version"] = version
        (run / "config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not None}))
        write_manifest(run)  # as if that lstmlite had written it
        with pytest.raises(RunDirError, match=f"format_version {version} is not supported"):
            load_run(run)
    config["format_version"] = 1
    (run / "config.json").write_text(json.dumps(config))
    write_manifest(run)
    (run / "model.safetensors").unlink()
    with pytest.raises(RunDirError, match="model.safetensors: listed in manifest.json but missing"):
        load_run(run)
    write_manifest(run, ["config.json"])
    with pytest.raises(RunDirError, match="model.safetensors: file not found"):
        load_run(run)


def _classifier():
    torch.manual_seed(0)
    return SequenceClassifier(input_size=2, hidden_size=3, n_classes=2)


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_flipped_byte_anywhere_in_the_weights_is_refused(tmp_path, where):
    run = save_run(tmp_path / "r", _classifier(), {"task": "classify"}, metrics={"metric": 0.5})
    weights = run / "model.safetensors"
    data = bytearray(weights.read_bytes())
    at = {"first": 0, "middle": len(data) // 2, "last": len(data) - 1}[where]
    data[at] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(RunDirError, match="model.safetensors: contents do not match"):
        load_run(run)


def test_a_truncated_metrics_file_is_refused(tmp_path):
    run = save_run(tmp_path / "r", _classifier(), {"task": "classify"}, metrics={"metric": 0.5})
    (run / "metrics.json").write_text('{"metric": 0.')
    with pytest.raises(RunDirError, match="metrics.json: contents do not match"):
        load_run(run)


def test_a_save_interrupted_before_the_manifest_reads_as_unfinished(tmp_path, monkeypatch):
    import lstmlite.io as io_mod

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(io_mod, "write_manifest", crash)
    with pytest.raises(OSError, match="disk full"):
        save_run(tmp_path / "r", _classifier(), {"task": "classify"}, metrics={"metric": 0.5})
    monkeypatch.undo()
    assert (tmp_path / "r" / "config.json").exists()  # looks finished, but:
    with pytest.raises(RunDirError, match="unfinished run dir"):
        load_run(tmp_path / "r")
    with pytest.raises(RunDirError, match="unfinished run dir is here"):
        save_run(tmp_path / "r", _classifier(), {"task": "classify"})


def test_a_folder_of_the_users_files_is_never_written_into(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    (folder / "metrics.json").write_text('{"mine": true}')
    for overwrite in (False, True):
        with pytest.raises(RunDirError, match="holds files lstmlite did not write"):
            save_run(folder, _classifier(), {"task": "classify"}, metrics={"metric": 0.5}, overwrite=overwrite)
    assert (folder / "metrics.json").read_text() == '{"mine": true}' and sorted(p.name for p in folder.iterdir()) == \
        ["metrics.json", "notes.txt"]


def test_replacing_a_run_dir_of_ours_leaves_none_of_the_old_files(tmp_path):
    run = save_run(tmp_path / "r", _classifier(), {"task": "classify"}, metrics={"metric": 0.5},
                   history=[{"epoch": 1}])
    (run / ".metrics.json.abc123.tmp").write_text("left by a killed write")
    save_run(run, _classifier(), {"task": "classify"}, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "manifest.json", "model.safetensors"]
    assert load_run(run).metrics == {}


def test_run_files_follow_the_umask_not_0600(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        run = save_run(tmp_path / "r", _classifier(), {"task": "classify"}, metrics={"metric": 0.5})
    finally:
        os.umask(old)
    for name in ("config.json", "model.safetensors", "metrics.json", "manifest.json"):
        assert stat.S_IMODE((run / name).stat().st_mode) == 0o644, name


@pytest.mark.parametrize("writer", ["write_json", "save_weights"])
def test_a_failed_write_leaves_no_temp_file_and_names_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  writer: str) -> None:
    """A write that fails at its fsync (a full disk: the OS names no file) removes its
    temp file, leaves no target behind, and raises the OSError naming the target.
    Catches a writer that leaves ``.NAME.XXXX.tmp`` behind on an OSError, or re-raises
    the bare "No space left on device"."""
    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_mod.os, "fsync", full_disk)
    target = tmp_path / ("metrics.json" if writer == "write_json" else "model.safetensors")
    with pytest.raises(OSError) as caught:
        if writer == "write_json":
            write_json(target, {"metric": 0.5})
        else:
            io_mod.save_weights(target, _classifier())
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []


def _entries(folder: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """Create files ``names`` (relative, sub-folders made) in ``folder``; their contents."""
    made = {}
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        made[name] = f"the user's {name}".encode()
        (folder / name).write_bytes(made[name])
    return made


@pytest.mark.parametrize("names,accepted", [
    (("checkpoints/last.json", "checkpoints/last.e2.safetensors"), True),  # an interrupted training run
    (("checkpoints/notes.txt",), False),  # a checkpoints folder with no last.json is not one of ours
    (("model.lsl",), True),  # a search trial's model, exported ahead of its run dir
    (("model.lsl", "metrics.json"), False),  # not the trial's lone model.lsl, and not a run dir
    ((".config.json.a1b2.tmp",), True),  # a temp file of ours, left by a killed write
    (("draft.tmp",), False),  # the user's own .tmp file (ours start with a dot)
], ids=["checkpoints", "checkpoints-no-last", "lone-model-lsl", "model-lsl-and-more", "our-temp", "user-tmp"])
def test_check_out_dir_accepts_only_folders_of_ours_it_may_write_into(tmp_path: Path, names: tuple[str, ...],
                                                                       accepted: bool) -> None:
    """Without ``overwrite``, only these are written into: a resumable training run
    (``checkpoints/last.json``), a lone ``model.lsl`` and our own stale temp files
    (removed); anything else is refused and left untouched. Catches accepting any
    ``checkpoints`` folder, ``model.lsl`` beside other files, or deleting every
    ``*.tmp`` (the user's too) as a temp file of ours."""
    folder = tmp_path / "out"
    made = _entries(folder, names)
    if accepted:
        check_out_dir(folder)
        kept = {n: b for n, b in made.items() if not Path(n).name.startswith(".")}
    else:
        with pytest.raises(RunDirError, match="holds files lstmlite did not write"):
            check_out_dir(folder)
        kept = made
    assert {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == kept


def test_a_manifest_entry_outside_the_run_dir_is_refused(tmp_path: Path) -> None:
    """manifest.json lists file names in the run dir only: an entry reaching outside it
    (``../x``) is refused even when that file's size and SHA-256 (hashlib) match.
    Catches a verifier that follows any path the manifest names."""
    run = save_run(tmp_path / "r", _classifier(), {"task": "classify"})
    outside = tmp_path / "outside.json"
    outside.write_text('{"not": "this run\'s"}')
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["files"]["../outside.json"] = {"sha256": hashlib.sha256(outside.read_bytes()).hexdigest(),
                                            "bytes": outside.stat().st_size}
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunDirError, match="outside.json: listed in manifest.json but missing"):
        load_run(run)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_weights_holding_nan_or_inf_are_refused(tmp_path: Path, bad: float) -> None:
    """A diverged run's NaN or +-Inf weights are refused on load, naming the tensor.
    Catches a check for NaN only (``isnan``), which lets Inf through."""
    model = _classifier()
    with torch.no_grad():
        model.head.bias[0] = bad
    run = save_run(tmp_path / "r", model, {"task": "classify"})
    with pytest.raises(RunDirError, match="tensor 'head.bias' holds NaN or Inf"):
        load_run(run)


def test_a_weight_missing_from_the_file_is_refused_not_taken_as_tied(tmp_path: Path) -> None:
    """A tensor missing from model.safetensors is an error naming it, unless it shares
    storage with another loaded parameter (a tied head): an untied classifier's
    ``head.bias`` dropped from the file must not load as its random initial values.
    Catches a tie check that counts a parameter as tied to itself."""
    run = save_run(tmp_path / "r", _classifier(), {"task": "classify"})
    state = load_file(str(run / "model.safetensors"))
    del state["head.bias"]
    save_file(state, str(run / "model.safetensors"))
    write_manifest(run)
    with pytest.raises(RunDirError, match=r"do not match the architecture \(missing \['head.bias'\]"):
        load_run(run)


def test_an_interrupted_overwrite_reads_as_unfinished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replacing a finished run dir (``overwrite``) that fails at its first write leaves a
    folder load_run calls unfinished: not the old run, nor a mix of old and new files.
    Catches: the old manifest kept until the new one is written (the folder then reads
    as the old run with a file missing)."""
    run = tmp_path / "run"
    save_run(run, _classifier(), {"task": "classify"}, metrics={"metric": 0.5})

    def full_disk(path: Path, model: torch.nn.Module) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(io_mod, "save_weights", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_run(run, _classifier(), {"task": "classify"}, overwrite=True)
    with pytest.raises(RunDirError, match="unfinished run dir"):
        load_run(run)


@pytest.mark.parametrize("name", ["notes.json", "config.json", "model.safetensors", "manifest.json"])
def test_extra_files_are_only_a_run_dirs_own(tmp_path: Path, name: str) -> None:
    """``extra`` writes only the run dir's own optional files (a recipe, ...): any other
    name, or one of the files save_run writes itself, is refused before anything is
    touched, so a finished run being replaced still loads as it was.
    Catches: the name check dropped (a stray file, or config.json written twice); the
    check made after the old run's manifest and metrics were removed."""
    run = tmp_path / "run"
    save_run(run, _classifier(), {"task": "classify"}, metrics={"metric": 0.5})
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(ValueError, match=f"{name}: not a file a run dir holds"):
        save_run(run, _classifier(), {"task": "classify"}, overwrite=True, extra={name: {"x": 1}})
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert load_run(run).metrics == {"metric": 0.5}


def test_named_os_error_names_the_path_only_where_the_os_named_none(tmp_path: Path) -> None:
    """An error with no file name gets the path, keeping its errno (and so its subclass:
    ENOENT is a FileNotFoundError); one that names a file, or has no errno to rebuild
    it from, comes back as it is."""
    target = tmp_path / "metrics.json"
    named = io_mod.named_os_error(OSError(errno.ENOENT, "No such file or directory"), target)
    assert isinstance(named, FileNotFoundError)
    assert (named.errno, named.strerror, named.filename) == (errno.ENOENT, "No such file or directory", str(target))
    full = io_mod.named_os_error(OSError(errno.ENOSPC, "No space left on device"), target)
    assert (full.errno, full.filename) == (errno.ENOSPC, str(target)) and "No space left" in str(full)
    other = OSError(errno.EACCES, "Permission denied", "/elsewhere/file")
    assert io_mod.named_os_error(other, target) is other
    bare = OSError("no errno")
    assert io_mod.named_os_error(bare, target) is bare


@pytest.mark.parametrize("edit", ["top-level key", "entry key", "entry without bytes"])
def test_a_manifest_with_keys_lstmlite_does_not_write_is_refused(tmp_path: Path, edit: str) -> None:
    """Every file still matches its hash, so only the manifest's own keys tell that it
    was edited (or written by something else)."""
    run = save_run(tmp_path / "run", _classifier(), {"task": "classify"})
    manifest = json.loads((run / "manifest.json").read_text())
    entry = manifest["files"]["config.json"]
    if edit == "top-level key":
        manifest["note"] = "edited"
    elif edit == "entry key":
        entry["mtime"] = 0
    else:
        del entry["bytes"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunDirError, match="malformed manifest .keys or format_version differ"):
        load_run(run)


def test_write_manifest_covers_the_run_files_of_ours_present_by_default(tmp_path: Path) -> None:
    """By default: every top-level file of a run dir that lstmlite writes and that is
    there, except the manifest itself, the checkpoints folder and an exported model.lsl
    (written after the run, beside it); a file of someone else's is not covered."""
    run = save_run(tmp_path / "run", _classifier(), {"task": "classify"}, metrics={"metric": 0.5},
                   history=[{"epoch": 1}])
    (run / "model.lsl").write_bytes(b"exported later")
    (run / "notes.txt").write_text("the user's")
    (run / "checkpoints").mkdir()
    (run / "recipe.json").write_text("{}")
    files = json.loads(write_manifest(run).read_text())["files"]
    assert sorted(files) == ["config.json", "history.json", "metrics.json", "model.safetensors", "recipe.json"]
    for name, entry in files.items():
        data = (run / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    load_run(run)


def test_dense_size_bytes_counts_each_stored_tensor_once_in_its_own_dtype() -> None:
    """A tied fp16 language model: 2 bytes per value of each distinct parameter (PyTorch's
    own parameters(), which lists a shared one once); catches 4 bytes assumed for every
    dtype and the tied head counted twice."""
    model = LanguageModel(vocab_size=12, embed_dim=5, hidden_size=5, tie_weights=True).half()
    want = 2 * sum(p.numel() for p in model.parameters()) + 2 * sum(b.numel() for b in model.buffers())
    assert io_mod.dense_size_bytes(model) == want
    assert want < 2 * sum(t.numel() for t in model.state_dict().values())  # the head is tied


def test_a_token_model_trained_on_text_without_its_vocab_is_refused(tmp_path: Path) -> None:
    """A language model whose config names a text source reads token ids that mean nothing
    without the vocabulary: refused without vocab.json, read with it; catches the check
    dropped."""
    model = LanguageModel(vocab_size=12, embed_dim=5, hidden_size=5).eval()
    config = {"task": "lm", "data": {"source": "corpus.txt"}}
    save_run(tmp_path / "bare", model, config)
    with pytest.raises(RunDirError, match=r"vocab\.json: missing, and this run's model reads token ids"):
        load_run(tmp_path / "bare")
    vocab = {"tokens": [str(k) for k in range(12)]}
    assert load_run(save_run(tmp_path / "full", model, config, vocab=vocab)).vocab == vocab


def test_a_manifest_of_another_format_version_says_to_upgrade(tmp_path: Path) -> None:
    """A manifest written by a newer lstmlite (format_version 2) is named as such, not as a
    corrupt one; catches the version check dropped (the malformed-manifest line instead)."""
    run = save_run(tmp_path / "run", _classifier(), {"task": "classify"})
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["format_version"] = 2
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunDirError, match=r"format_version 2 is not supported by this lstmlite .reads version 1.; "
                                          r"upgrade lstmlite"):
        load_run(run)


@pytest.mark.parametrize("name, hint", [
    ("model.onnx", "lstmlite import onnx"), ("model.keras", "lstmlite import keras"),
    ("weights.pt", "lstmlite import torch"), ("notes.txt", None)])
def test_a_file_given_as_a_run_dir_is_called_a_file_and_a_model_file_is_pointed_to_import(
        tmp_path: Path, name: str, hint: str | None) -> None:
    """A file where a run dir goes was refused as "no such directory", of a file that is there;
    it is called a file, and another framework's model file gets the import command."""
    from lstmlite.cli.main import main

    path = tmp_path / name
    path.write_bytes(b"not a run")
    with pytest.raises(RunDirError) as caught:
        load_run(path)
    message = str(caught.value)
    assert "no such directory" not in message and "not a run dir (a file" in message
    if hint is None:
        assert "import" not in message.split("writes)")[-1]
    else:
        assert f"{hint} {path} --out RUN_DIR" in message
    with pytest.raises(RunDirError, match="no such directory"):
        load_run(tmp_path / "missing")
    assert main(["eval", str(path)]) != 0  # the CLI says the same, without a traceback


@pytest.mark.parametrize("error, quoted", [
    (RuntimeError("header too large:\n  " + "y" * 300), "header too large: " + "y" * 139 + "..."),
    (RuntimeError(), "RuntimeError"),
])
def test_an_unreadable_weights_file_quotes_the_error_on_one_line_cut_with_an_ellipsis(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, quoted: str) -> None:
    """safetensors' error inside ours: whitespace collapsed, cut with "..." inside 160
    characters, its type's name when it has no message (lstmlite._text.one_line)."""
    def failing_load(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(io_mod, "load_file", failing_load)
    weights = tmp_path / "model.safetensors"
    with pytest.raises(RunDirError) as caught:
        io_mod._read_weights(weights, "cpu")
    assert str(caught.value) == (f"{weights}: not a readable safetensors file, truncated or corrupt ({quoted}); "
                                 f"re-create the run dir")
