"""fit / evaluate_run on real (small) data, and evaluation on another file in the run's terms."""

import numpy as np
import pytest

from lstmlite.io import load_run
from lstmlite.train import evaluate_run, fit, load_run_data


def _write_csv(path, rows):
    path.write_text("text,label\n" + "\n".join(f"{t},{l}" for t, l in rows) + "\n", encoding="utf-8")


def _fit_text_run(root, seed: int, epochs: int, flip: float = 0.0):
    """A small classify run on 240 rows of four "pos" or "neg" words and "movie" in
    root/run; with ``flip``, that share of the labels is flipped. Returns (root, run)."""
    rng = np.random.default_rng(seed)
    words = {"pos": ["good", "great", "fine", "nice"], "neg": ["bad", "awful", "poor", "sad"]}
    rows = []
    for i in range(240):
        label = ["pos", "neg"][i % 2]
        shown = label if not flip or rng.random() > flip else ["neg", "pos"][i % 2]
        rows.append((" ".join(rng.choice(words[label], 4)) + " movie", shown))
    _write_csv(root / "train.csv", rows)
    run = fit({"data": {"source": str(root / "train.csv"), "task": "classify"},
               "model": {"embed_dim": 8, "hidden_size": 8},
               "train": {"epochs": epochs, "lr": 0.02, "batch_size": 16}}, root / "run", progress=False)
    return root, run


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    return _fit_text_run(tmp_path_factory.mktemp("textrun"), seed=0, epochs=6)


def test_fit_writes_metrics_keyed_as_design_says(text_run):
    _, run = text_run
    m = run.metrics
    assert m["task"] == "classify" and m["metric_name"] == "accuracy" and m["metric"] > 0.9
    assert m["params"] == run.model.params() and m["nonzero_params"] <= m["params"]
    assert m["macs_per_step"] == run.model.macs_per_step()
    # the size is the exported .lsl file's bytes
    from lstmlite.runtime import export_lsl

    assert m["size_basis"] == "lsl"
    assert m["size_bytes"] == export_lsl(run.path, run.path.parent / "text.lsl").stat().st_size


def test_eval_on_another_file_uses_the_runs_vocabulary_and_classes(text_run):
    root, run = text_run
    # another file: new words, labels in the opposite first-seen order
    rows = [("bad sad poor awful movie", "neg") if i % 2 == 0 else ("great good nice fine movie", "pos")
            for i in range(60)]
    rows[0] = ("zebra zebra zebra zebra movie", "neg")  # words the run never saw
    _write_csv(root / "other.csv", rows)
    data = load_run_data(load_run(root / "run"), str(root / "other.csv"))
    assert data.class_names == run.config["class_names"]
    vocab = load_run(root / "run").vocab["tokens"]
    assert "zebra" not in vocab
    all_ids = np.concatenate([split.x.ravel() for split in data.splits.values()])
    assert int(all_ids.max()) < len(vocab) and 1 in all_ids  # the run's ids; zebra became <unk> (1)
    result = evaluate_run(root / "run", source=str(root / "other.csv"), split="test")
    assert result["metric"] > 0.9  # meaningless if ids or labels were the new file's own


def test_eval_on_another_file_keeps_every_word_the_run_knows(text_run):
    """Each row of the other file holds one word the run knows, each word in one row, so
    the other file's own training part never holds its val/test words. Read in the run's
    terms, every row still decodes to its word (counted against the file's rows), and the
    run scores its words as it learned them.
    Catches: the other file encoded with a vocabulary built from its own training part
    and remapped afterwards: its val/test words were <unk> (accuracy 0.5, measured)."""
    from collections import Counter

    root, run = text_run
    words = {"pos": ["good", "great", "fine", "nice"], "neg": ["bad", "awful", "poor", "sad"]}
    rows = [(words[label][k], label) for k in range(4) for label in ("pos", "neg")]
    _write_csv(root / "one_word.csv", rows)
    data = load_run_data(load_run(root / "run"), str(root / "one_word.csv"))
    decoded = Counter(data.vocab.decode(row[:n])[0] for split in data.splits.values()
                      for row, n in zip(split.x, split.lengths))
    assert decoded == Counter(word for word, _ in rows)
    for split in ("val", "test"):
        assert evaluate_run(root / "run", source=str(root / "one_word.csv"), split=split)["metric"] == 1.0


@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory):
    """A small run on text whose labels are 25% flipped: its val and test accuracies differ."""
    return _fit_text_run(tmp_path_factory.mktemp("noisyrun"), seed=1, epochs=3, flip=0.25)


def test_metrics_and_evaluate_run_report_the_split_they_name(noisy_run) -> None:
    """metrics.json's ``metric`` and ``test`` are the test split's accuracy and its
    ``val`` the validation split's, each the share of rows the saved model's argmax gets
    right (NumPy); ``evaluate_run --split val`` reports the validation split.
    Catches: the headline metric taken from val, the test block computed on val, the
    split argument ignored."""
    import torch

    root, run = noisy_run
    data = load_run_data(load_run(root / "run"))

    def accuracy(split) -> float:
        with torch.no_grad():
            logits = run.model(torch.as_tensor(split.x), torch.as_tensor(split.lengths))
        return float(np.mean(logits.argmax(-1).numpy() == split.y))

    test_acc, val_acc = accuracy(data.test), accuracy(data.val)
    assert test_acc != val_acc  # the premise: the two splits are told apart
    m = run.metrics
    assert m["metric"] == pytest.approx(test_acc) and m["test"]["accuracy"] == pytest.approx(test_acc)
    assert m["val"]["accuracy"] == pytest.approx(val_acc)
    result = evaluate_run(root / "run", split="val")
    assert result["split"] == "val" and result["metric"] == pytest.approx(val_acc)
    assert result["val"]["accuracy"] == pytest.approx(val_acc)


def test_eval_on_another_series_keeps_it_in_original_units(tmp_path) -> None:
    """A forecast run evaluated on another series (its own level and scale) reads that
    series' windows in the run's normalization: inputs, targets and the naive forecast
    all come back to the other series' own values (NumPy slices of it; season 1, so the
    naive forecast repeats the last input).
    Catches: the other series' mean left out when its targets (or naive forecast) are
    moved into the run's scale."""
    t = np.arange(240.0)
    np.save(tmp_path / "a.npy", 10 + np.sin(2 * np.pi * t / 12))
    other = 100 + 5 * np.cos(2 * np.pi * t / 12) + 0.05 * t
    np.save(tmp_path / "b.npy", other)
    fit({"data": {"source": str(tmp_path / "a.npy"), "task": "forecast", "seq_len": 24, "horizon": 6, "season": 1},
         "model": {"hidden_size": 4}, "train": {"epochs": 1}}, tmp_path / "run", progress=False)
    run = load_run(tmp_path / "run")
    data = load_run_data(run, str(tmp_path / "b.npy"))
    assert data.stats["target_mean"] == pytest.approx(run.config["stats"]["target_mean"])  # the run's scale
    origin = len(other) - 6  # the last test window
    np.testing.assert_allclose(data.denormalize(data.test.y[-1]), other[origin:], rtol=1e-5)
    np.testing.assert_allclose(data.denormalize(data.test.naive[-1]), np.full(6, other[origin - 1]), rtol=1e-5)
    x = data.test.x[-1, :, 0] * np.asarray(data.stats["std"])[0] + np.asarray(data.stats["mean"])[0]
    np.testing.assert_allclose(x, other[origin - 24:origin], rtol=1e-5)


@pytest.mark.parametrize("name, text, options", [
    ("tiny.csv", "text,label\na b,x\nc d,y\ne f,x\n", {}),  # 3 rows: 10% of them rounds to none
    ("c.txt", "abcde " * 200, {"seq_len": 10, "val_fraction": 0}),
])
def test_fit_refuses_an_empty_split_before_training(tmp_path, name, text, options) -> None:
    """Data whose val (or test) split is empty is refused in one line that says what to
    change, before any epoch and with nothing written to --out.
    Catches: the tiny CSV crashing in torch.cat ("expected a non-empty list of Tensors"),
    and the language model training on with an empty val scored perplexity 1.0."""
    from lstmlite.data import DataError

    (tmp_path / name).write_text(text, encoding="utf-8")
    config = {"data": {"source": str(tmp_path / name), **options},
              "model": {"hidden_size": 4, "embed_dim": 4, "num_layers": 1}, "train": {"epochs": 1}}
    with pytest.raises(DataError, match=r"the val split has no rows \(train \d+, val 0, test \d+\).*val_fraction"):
        fit(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_evaluate_refuses_an_empty_split(text_run) -> None:
    """Catches: an empty split crashing in torch.cat (or, for a language model, scored as
    perplexity 1.0) instead of a plain refusal."""
    from lstmlite.train.trainer import evaluate

    _, run = text_run
    data = load_run_data(run)
    with pytest.raises(ValueError, match="no rows"):
        evaluate(run.model, data, data.test.subset(np.zeros(0, dtype=np.int64)))


@pytest.mark.parametrize("name, save", [
    ("b.npz", lambda path, x, y: np.savez(path, x=x[:, :, :2], y=y)),  # 2 features, the run read 3
    ("b.npy", None),
])
def test_eval_on_data_with_other_features_is_refused(tmp_path, name, save) -> None:
    """Another file with a different number of features per step is refused in one line
    naming both counts. Catches: a bare NumPy broadcast error ("operands could not be
    broadcast together with shapes (48,6,2) (3,)") for the classifier, and the forecaster's
    layer error that never names the file."""
    from lstmlite.data import DataError

    rng = np.random.default_rng(0)
    if save is not None:
        x = rng.normal(size=(40, 6, 3))
        y = (x[:, :, 0].mean(1) > 0).astype(np.int64)
        np.savez(tmp_path / "a.npz", x=x, y=y)
        save(tmp_path / name, x, y)
        data, trained = {"source": str(tmp_path / "a.npz")}, 3
    else:
        series = np.sin(np.arange(200) / 5)
        np.save(tmp_path / "a.npy", series)
        np.save(tmp_path / name, np.stack([series, 2 * series], axis=1))
        data, trained = {"source": str(tmp_path / "a.npy"), "seq_len": 12, "horizon": 3}, 1
    fit({"data": data, "model": {"hidden_size": 4}, "train": {"epochs": 1}}, tmp_path / "run", progress=False)
    with pytest.raises(DataError, match=rf"{name}: 2 feature\(s\) per step, but the run was trained on {trained}"):
        evaluate_run(tmp_path / "run", source=str(tmp_path / name))


def test_eval_on_a_file_of_one_class_is_read_in_the_runs_classes(text_run) -> None:
    """A file whose rows all carry one of the run's classes (how well does it catch "pos"?)
    is read with the run's class ids, every split, and scored.
    Catches: the refusal "only one class ('pos') in the training data; need at least two",
    which holds for training a model, not for measuring one."""
    root, run = text_run
    _write_csv(root / "all_pos.csv", [("good great fine nice movie", "pos")] * 20)
    data = load_run_data(load_run(root / "run"), str(root / "all_pos.csv"))
    pos = run.config["class_names"].index("pos")
    assert data.class_names == run.config["class_names"]
    assert all((split.y == pos).all() and len(split) for split in data.splits.values())
    assert evaluate_run(root / "run", source=str(root / "all_pos.csv"))["test"]["accuracy"] == 1.0


def test_eval_on_a_tag_file_with_a_tag_only_in_its_val_rows(tmp_path) -> None:
    """A tagging file whose one "PUNCT" row is among the rows its seeded split makes val is
    read in the run's label ids (the run knows PUNCT).
    Catches: the refusal "validation label(s) ['PUNCT'] never occur in the training rows",
    the other file's own split standing in for the run's training rows."""
    def sequences(rows):
        return "\n".join("".join(f"{t}\t{g}\n" for t, g in row) for row in rows)

    base = [("the", "DET"), ("cat", "NOUN"), ("sat", "VERB")]
    (tmp_path / "a.tsv").write_text(sequences([base + [("!", "PUNCT")] * (k % 3 == 0) for k in range(30)]))
    val_row = int(np.random.default_rng(0).permutation(20)[0])  # _split_rows: seed 0, val first
    (tmp_path / "b.tsv").write_text(sequences([base + [("!", "PUNCT")] * (k == val_row) for k in range(20)]))
    fit({"data": {"source": str(tmp_path / "a.tsv"), "task": "tag"},
         "model": {"hidden_size": 4, "embed_dim": 4}, "train": {"epochs": 1}}, tmp_path / "run", progress=False)
    run = load_run(tmp_path / "run")
    data = load_run_data(run, str(tmp_path / "b.tsv"))
    punct = run.config["class_names"].index("PUNCT")
    assert (data.val.y == punct).sum() == 1 and not (data.train.y == punct).any()


def test_resume_on_a_data_file_edited_since_the_interruption_is_refused(tmp_path) -> None:
    """An interrupted run (checkpoints only) resumed after its CSV was edited -- labels
    fixed, same words, so the same vocabulary and options -- is refused, naming the data;
    the file as it was resumes, and so does a checkpoint of an older version that records
    no digest of the data.
    Catches: --resume continuing on other data because the fingerprint held the spec (the
    file's path) only."""
    import json

    from lstmlite.train.checkpoint import CheckpointError

    rows = [(f"{w} movie", "pos" if w in ("good", "great") else "neg") for w in ("good", "great", "bad", "awful")] * 5
    _write_csv(tmp_path / "d.csv", rows)
    config = {"data": {"source": str(tmp_path / "d.csv")}, "model": {"hidden_size": 4, "embed_dim": 4},
              "train": {"epochs": 2}}
    fit(config, tmp_path / "run", progress=False)

    def interrupt() -> None:
        for path in (tmp_path / "run").iterdir():
            if path.name != "checkpoints":
                path.unlink()

    interrupt()
    _write_csv(tmp_path / "d.csv", [(text, "neg" if label == "pos" else "pos") for text, label in rows])
    with pytest.raises(CheckpointError, match=r"--resume on other data than the interrupted run \(.*d\.csv has "
                                              r"changed since"):
        fit(config, tmp_path / "run", resume=True, progress=False)
    _write_csv(tmp_path / "d.csv", rows)
    fit(config, tmp_path / "run", resume=True, progress=False)
    interrupt()
    meta = tmp_path / "run" / "checkpoints" / "last.json"
    old = json.loads(meta.read_text())
    del old["config"]["data_sha256"]
    meta.write_text(json.dumps(old))
    fit(config, tmp_path / "run", resume=True, progress=False)


def _keep_checkpoints_only(run_dir) -> None:
    """``run_dir`` as Ctrl-C during training leaves it: checkpoints/, no config.json."""
    for path in run_dir.iterdir():
        if path.name != "checkpoints":
            path.unlink()


def test_resume_with_another_data_option_names_the_option_not_the_data(tmp_path) -> None:
    """A run started with data.val_fraction=0.2 (from a --config) and resumed without it
    (the default 0.1) is refused naming that option, as a changed model or train option
    is: the data did not change, an option did (docs/training.md: "a resume with other
    data, model or training options, listing the differences").
    Catches: the arrays' digest, which the option changes too, compared before the
    options, so the refusal blamed the data ("d.csv has changed since: its arrays differ")."""
    from lstmlite.train.checkpoint import CheckpointError

    rows = [(f"{w} movie", "pos" if w in ("good", "great") else "neg") for w in ("good", "great", "bad", "awful")] * 5
    _write_csv(tmp_path / "d.csv", rows)
    config = {"data": {"source": str(tmp_path / "d.csv"), "val_fraction": 0.2},
              "model": {"hidden_size": 4, "embed_dim": 4}, "train": {"epochs": 2}}
    fit(config, tmp_path / "run", progress=False)
    _keep_checkpoints_only(tmp_path / "run")
    forgot = {**config, "data": {"source": str(tmp_path / "d.csv")}}
    with pytest.raises(CheckpointError) as refused:
        fit(forgot, tmp_path / "run", resume=True, progress=False)
    assert str(refused.value) == (f"{tmp_path / 'run' / 'checkpoints' / 'last.json'}: --resume with other options "
                                  f"than the interrupted run (data.val_fraction: 0.2 -> 0.1); resume with the same "
                                  f"options, or start a new --out")
    assert fit(config, tmp_path / "run", resume=True, progress=False).config["data"]["val_fraction"] == 0.2


def test_a_resumed_runs_train_seconds_count_the_epochs_before_the_interruption(tmp_path, monkeypatch) -> None:
    """metrics.json's train_seconds of a run interrupted in epoch 3 of 4 and resumed equal
    the uninterrupted run's: on a clock that advances 10 s an epoch, 40.0 both (the
    interrupted epoch 3 is done again after the resume, and counted once).
    Catches: the resumed process timing only its own part (20.0: epochs 3 and 4)."""
    from lstmlite.train import trainer

    clock = {"now": 1000.0, "validations": 0, "interrupt_at": None}
    evaluate = trainer.evaluate

    def an_epoch_takes_10_s(*args, **kwargs):  # each epoch validates once, at its end
        clock["now"] += 10.0
        clock["validations"] += 1
        if clock["validations"] == clock["interrupt_at"]:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer, "perf_counter", lambda: clock["now"])
    monkeypatch.setattr(trainer, "evaluate", an_epoch_takes_10_s)
    rows = [(f"{w} movie", "pos" if w in ("good", "great") else "neg") for w in ("good", "great", "bad", "awful")] * 5
    _write_csv(tmp_path / "d.csv", rows)
    config = {"data": {"source": str(tmp_path / "d.csv")}, "model": {"hidden_size": 4, "embed_dim": 4},
              "train": {"epochs": 4, "patience": 0}}
    assert fit(config, tmp_path / "whole", progress=False).metrics["train_seconds"] == 40.0
    clock.update(validations=0, interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        fit(config, tmp_path / "cut", progress=False)
    clock["now"] += 3600.0  # an hour before the resume: not training time
    resumed = fit(config, tmp_path / "cut", resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.metrics["train_seconds"] == 40.0


def test_test_fraction_0_trains_and_reports_no_test_metric(tmp_path) -> None:
    """test_fraction=0 (no test split, as bench_baselines' lm case asks) trains, picks its
    epoch on val and records no test metric: ``metric`` null, ``test`` empty, the val
    perplexity a real one (above 1 for 6 letters after one epoch); evaluating its test
    split is refused. Catches: a test perplexity of 1.0 (loss 0) measured on no windows,
    and the run refused outright for its empty test split."""
    (tmp_path / "c.txt").write_text("".join("abcde "[(k * k + k // 7) % 6] for k in range(3000)))
    config = {"data": {"source": str(tmp_path / "c.txt"), "seq_len": 20, "test_fraction": 0},
              "model": {"hidden_size": 8, "embed_dim": 4, "num_layers": 1}, "train": {"epochs": 1}}
    run = fit(config, tmp_path / "run", progress=False)
    assert run.metrics["metric"] is None and run.metrics["test"] == {}
    assert run.metrics["val"]["perplexity"] > 1.5
    with pytest.raises(ValueError, match="the test split has no rows"):
        evaluate_run(tmp_path / "run")


def test_eval_from_another_folder_says_where_the_runs_data_path_counts_from(tmp_path, monkeypatch) -> None:
    """A run trained on a relative path, evaluated from another folder, cannot find its
    data; the refusal says it is the run's data and how to reach it. Catches: a bare
    "data.csv: no such file", which reads as a typo in the eval command."""
    from lstmlite.data import DataFileNotFoundError

    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    _write_csv(tmp_path / "project" / "data.csv", [("good movie", "pos"), ("bad movie", "neg")] * 10)
    fit({"data": {"source": "data.csv"}, "model": {"hidden_size": 4, "embed_dim": 4}, "train": {"epochs": 1}},
        tmp_path / "run", progress=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataFileNotFoundError, match=r"^data\.csv: no such file \(the data .*run was trained on: run "
                                                    r"from the folder train ran in, put the file back, or pass --data"):
        evaluate_run(tmp_path / "run")
    monkeypatch.chdir(tmp_path / "project")
    assert evaluate_run(tmp_path / "run")["metric"] is not None


def test_eval_on_the_runs_own_training_file_is_refused_when_it_had_a_test_file(tmp_path) -> None:
    """A run trained on train.csv with the test file test.csv, evaluated with
    --data train.csv, would carve train.csv into train/val/test afresh: its "test" rows were
    training rows. That is refused (saying to evaluate without --data); the test file as
    --data is read as usual. Catches: the inflated score (random labels: test accuracy 0.80
    on the carve against 0.48 on the test file, measured)."""
    from lstmlite.data import DataError

    rows = [(f"{w} movie", "pos" if w in ("good", "great") else "neg") for w in ("good", "great", "bad", "awful")]
    _write_csv(tmp_path / "train.csv", rows * 5)
    _write_csv(tmp_path / "test.csv", rows * 5)
    fit({"data": {"source": str(tmp_path / "train.csv"), "test_path": str(tmp_path / "test.csv")},
         "model": {"hidden_size": 4, "embed_dim": 4}, "train": {"epochs": 1}}, tmp_path / "run", progress=False)
    with pytest.raises(DataError, match=r"train\.csv: the file this run was trained on \(its test file: .*test\.csv\)"
                                        r".*evaluate without --data"):
        evaluate_run(tmp_path / "run", source=str(tmp_path / "train.csv"))
    assert evaluate_run(tmp_path / "run", source=str(tmp_path / "test.csv"))["metric"] is not None


def test_eval_on_a_file_too_short_for_the_runs_options_says_they_are_the_runs(tmp_path):
    """A language model's run evaluated on a text shorter than its seq_len: the reader's
    advice ("use a smaller seq_len") names an option --data FILE cannot change, so the
    error says the file is read with the run's own options, and which."""
    from lstmlite.data import DataError

    (tmp_path / "t.txt").write_text("the cat sat on the mat and the dog ran to the cat . " * 40)
    fit({"data": {"source": str(tmp_path / "t.txt"), "task": "lm", "seq_len": 20},
         "model": {"embed_dim": 8, "hidden_size": 8}, "train": {"epochs": 1}}, tmp_path / "run", progress=False)
    (tmp_path / "short.txt").write_text("the cat sat on the mat .")
    with pytest.raises(DataError, match=r"fewer than seq_len \+ 1 = 21; .* \(--data reads .*short.txt with the run's "
                                        r"own data options: seq_len=20, val_fraction=0.1, test_fraction=0.1; give a "
                                        r"file that fits them\)$"):
        load_run_data(load_run(tmp_path / "run"), str(tmp_path / "short.txt"))


def test_the_data_digest_reads_every_array_of_every_split() -> None:
    """The digest a resumed run compares (``run._data_sha256``) changes when one value of
    x, y or lengths changes in any split, when a class name or a vocabulary token changes,
    and when two rows swap; it stays for an equal copy. Catches a digest of the shapes and
    dtypes only (labels flipped in place keep every shape), or one that skips y or lengths."""
    import copy

    from lstmlite.data import DataSpec, Split, TaskData, Vocabulary
    from lstmlite.train.run import _data_sha256

    def split(offset: int) -> Split:
        return Split(np.arange(12, dtype=np.int64).reshape(4, 3) + offset, np.array([0, 1, 0, 1]),
                     np.array([3, 2, 3, 1]))

    data = TaskData(name="toy", task="classify", train=split(0), val=split(20), test=split(40), input_size=0,
                    n_classes=2, class_names=["neg", "pos"], vocab=Vocabulary(["<pad>", "<unk>", "a", "b"]),
                    spec=DataSpec("toy.csv"))
    digest = _data_sha256(data)
    assert _data_sha256(copy.deepcopy(data)) == digest
    for part in ("train", "val", "test"):
        for field in ("x", "y", "lengths"):
            changed = copy.deepcopy(data)
            array = getattr(changed.splits[part], field)
            array.flat[-1] = 1 - array.flat[-1] if field == "y" else array.flat[-1] + 1
            assert _data_sha256(changed) != digest, (part, field)
    swapped = copy.deepcopy(data)
    swapped.train.y[:] = swapped.train.y[::-1].copy()
    assert _data_sha256(swapped) != digest
    renamed = copy.deepcopy(data)
    renamed.class_names = ["neg", "positive"]
    assert _data_sha256(renamed) != digest
    retokened = copy.deepcopy(data)
    retokened.vocab = Vocabulary(["<pad>", "<unk>", "a", "c"])
    assert _data_sha256(retokened) != digest


def test_a_small_training_split_trains_longer_and_the_users_options_win(tmp_path) -> None:
    """Under 128 training sequences: batch 16 (8 under 64), lr 3e-3, 200 epochs, patience 40;
    128 or more keep TrainConfig's; a train option the user gives wins over the default
    (checked in the run's config.json)."""
    from lstmlite.data import DataSpec, load_data
    from lstmlite.train import default_train_config

    small = {"lr": 3e-3, "epochs": 200, "patience": 40}
    airline = load_data(DataSpec(source="airline", task="forecast"))
    assert len(airline.train) == 81
    assert default_train_config(airline) == {**small, "batch_size": 16}
    motions = load_data(DataSpec(source="basic_motions"))
    assert len(motions.train) < 64
    assert default_train_config(motions) == {**small, "batch_size": 8}

    def split_of(rows: int):
        path = tmp_path / f"rows{rows}.csv"
        _write_csv(path, [(f"w{i % 7} w{i % 5}", "ab"[i % 2]) for i in range(rows)])
        return load_data(DataSpec(source=str(path), task="classify"))

    # the boundaries: 8 below 64 training rows, 16 below 128, TrainConfig's from 128
    by_size = {len(d.train): default_train_config(d) for d in map(split_of, (70, 80, 150, 170))}
    for n, options in by_size.items():
        expected = {} if n >= 128 else {**small, "batch_size": 8 if n < 64 else 16}
        assert options == expected, (n, options)
    assert {n < 64 for n in by_size} == {True, False} and {n < 128 for n in by_size} == {True, False}
    run = fit({"data": {"source": "airline", "task": "forecast"}, "model": {"hidden_size": 4},
               "train": {"epochs": 1, "lr": 0.01}}, tmp_path / "run", progress=False)
    train = run.config["train"]
    assert (train["epochs"], train["lr"], train["batch_size"], train["patience"]) == (1, 0.01, 16, 40)


def test_the_airline_default_beats_the_seasonal_naive_forecast(tmp_path) -> None:
    """`lstmlite train --data airline` with nothing else: its test MAE is below the
    seasonal-naive forecast's (with TrainConfig's defaults it was 1.20 times it)."""
    run = fit({"data": {"source": "airline", "task": "forecast"}}, tmp_path / "run", progress=False)
    assert run.metrics["test"]["mae_vs_naive"] < 0.8, run.metrics["test"]


@pytest.mark.slow
def test_the_basic_motions_default_learns(tmp_path) -> None:
    """`lstmlite train --data basic_motions` with nothing else: with TrainConfig's defaults
    (one step a pass of its 32 series, stopped at epoch 11) it scored 0.20 on 4 classes."""
    run = fit({"data": {"source": "basic_motions"}}, tmp_path / "run", progress=False)
    assert run.metrics["test"]["accuracy"] >= 0.7, run.metrics["test"]
