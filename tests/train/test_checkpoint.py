"""Checkpoints a resume can trust: every RNG restored, tensors bound to their metadata
by hash, a crash between two files never mixes epochs, and a resume with other options
is refused with the differences listed."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lstmlite.nn import SequenceClassifier
from lstmlite.train import TrainConfig, train
from lstmlite.train import checkpoint as ckpt
from lstmlite.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def _classifier():
    torch.manual_seed(0)
    return SequenceClassifier(input_size=3, hidden_size=8, n_classes=2)


def _parts(model):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return optimizer, None


class StopAt:
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, metrics):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_numpy_python_and_torch_rngs_are_restored(tmp_path):
    model = _classifier()
    optimizer, scheduler = _parts(model)
    np.random.seed(5), random.seed(5), torch.manual_seed(5)
    save_checkpoint(tmp_path, model, optimizer, scheduler, {"epoch": 1}, config={"train": {"lr": 1}})
    expected = (np.random.random(), random.random(), torch.rand(1).item())
    np.random.seed(99), random.seed(99), torch.manual_seed(99)
    load_checkpoint(tmp_path, model, optimizer, scheduler, config={"train": {"lr": 1}})
    assert (np.random.random(), random.random(), torch.rand(1).item()) == expected


def test_resume_with_other_options_is_refused_listing_them(toy_classify, tmp_path):
    config = TrainConfig(epochs=4, lr=1e-2, seed=1)
    with pytest.raises(KeyboardInterrupt):
        train(_classifier(), toy_classify, config, out_dir=tmp_path, callbacks=[StopAt(2)], progress=False)
    changed = TrainConfig(epochs=6, lr=2e-2, seed=1)
    with pytest.raises(CheckpointError, match=r"train.epochs: 4 -> 6; train.lr: 0.01 -> 0.02"):
        train(_classifier(), toy_classify, changed, out_dir=tmp_path, resume=True, progress=False)


@pytest.mark.parametrize("which", ["last", "best"])
def test_a_changed_tensor_file_is_refused(toy_classify, tmp_path, which):
    with pytest.raises(KeyboardInterrupt):
        train(_classifier(), toy_classify, TrainConfig(epochs=4, seed=1), out_dir=tmp_path,
              callbacks=[StopAt(2)], progress=False)
    [path] = (tmp_path / "checkpoints").glob(f"{which}.e*.safetensors")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the SHA-256"):
        train(_classifier(), toy_classify, TrainConfig(epochs=4, seed=1), out_dir=tmp_path, resume=True,
              progress=False)


def test_a_crash_between_tensors_and_metadata_resumes_from_the_previous_epoch(toy_classify, tmp_path, monkeypatch):
    """Killed after epoch 3's tensors were written but before last.json: the resume
    starts from epoch 2's consistent pair and ends exactly where an uninterrupted run does."""
    config = TrainConfig(epochs=5, lr=1e-2, seed=1)
    reference = _classifier()
    train(reference, toy_classify, config, progress=False)

    real_write_json = ckpt.write_json

    def crash_at_epoch_3(path, payload):
        if payload.get("epoch") == 3:
            raise KeyboardInterrupt  # as if killed between the two files
        real_write_json(path, payload)

    monkeypatch.setattr(ckpt, "write_json", crash_at_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(_classifier(), toy_classify, config, out_dir=tmp_path, progress=False)
    monkeypatch.undo()
    assert (tmp_path / "checkpoints" / "last.e3.safetensors").exists()  # the orphan
    resumed = _classifier()
    result = train(resumed, toy_classify, config, out_dir=tmp_path, resume=True, progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5]
    for (name, x), y in zip(resumed.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(x, y), name
    left = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert len(left) == 3 and left[0].startswith("best.e") and left[1:] == ["last.e5.safetensors", "last.json"], left


def test_a_run_whose_callback_never_completed_resumes_with_its_latest_weights(toy_classify, tmp_path):
    """A callback still changing the model at the last epoch (``complete = False``: a
    pruning schedule running past the run's end) makes no epoch selectable, so the run
    ends with its latest weights. Its checkpoint must carry those as the best state: a
    resume with no epochs left ends with the same weights, not the initial ones."""
    class StillPruning:
        complete = False

    config = TrainConfig(epochs=3, lr=1e-2, seed=1)
    finished = _classifier()
    initial = {k: v.clone() for k, v in finished.state_dict().items()}
    expected = train(finished, toy_classify, config, out_dir=tmp_path, callbacks=[StillPruning()], progress=False)
    assert expected.best_epoch == 0 and len(expected.history) == 3
    assert not all(torch.equal(initial[k], v) for k, v in finished.state_dict().items())  # the premise: it trained
    resumed = _classifier()
    result = train(resumed, toy_classify, config, out_dir=tmp_path, callbacks=[StillPruning()], resume=True,
                   progress=False)
    assert result.history == expected.history and result.best_epoch == 0
    for (name, x), y in zip(resumed.state_dict().items(), finished.state_dict().values()):
        assert torch.equal(x, y), name


def test_an_epoch_that_does_not_improve_keeps_the_best_weights_saved_before(tmp_path):
    """Epoch 1 improves (best = A), epoch 2 does not (no best_state, live weights A + 1):
    the checkpoint still restores A as the best, so a run resumed after a non-improving
    epoch ends as the uninterrupted one. Catches the best file overwritten with the live
    weights, or the earlier files dropped (the resume test's checkpoint never followed a
    non-improving epoch)."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=8, n_classes=2)
    optimizer = torch.optim.AdamW(model.parameters())
    best = {k: v.clone() for k, v in model.state_dict().items()}
    save_checkpoint(tmp_path, model, optimizer, None, {"epoch": 1}, best_state=best)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    save_checkpoint(tmp_path, model, optimizer, None, {"epoch": 2}, best_state=None)
    restored = load_checkpoint(tmp_path, model, optimizer, None)["best_state"]
    assert set(restored) == set(best) and all(torch.equal(restored[k], best[k]) for k in best)


class TakesTenSeconds:
    """A callback standing in for an epoch's work on a fake clock: 10 s an epoch."""

    def __init__(self, clock):
        self.clock = clock

    def on_epoch_end(self, epoch, metrics):
        self.clock["now"] += 10.0


@pytest.mark.parametrize("saved_by", ["this version", "a version without train_seconds"])
def test_the_checkpoint_carries_the_training_time_of_the_epochs_before_it(toy_classify, tmp_path, monkeypatch,
                                                                           saved_by):
    """Interrupted in epoch 3 of 4 and resumed, on a clock that advances 10 s an epoch:
    the checkpoint of epoch 2 holds 20 s, and the resumed run reports 40 s, as the
    uninterrupted one does (epoch 3 is done again, and counted once). A checkpoint of an
    older lstmlite has no train_seconds: it resumes, its earlier epochs counted as 0 s.
    Catches: a resume timing only its own epochs (20 s), or refusing an older checkpoint."""
    import json

    from lstmlite.train import trainer

    clock = {"now": 500.0}
    monkeypatch.setattr(trainer, "perf_counter", lambda: clock["now"])
    config = TrainConfig(epochs=4, lr=1e-2, seed=1, patience=0)
    whole = train(_classifier(), toy_classify, config, callbacks=[TakesTenSeconds(clock)], progress=False)
    assert whole.extra["train_seconds"] == 40.0
    with pytest.raises(KeyboardInterrupt):
        train(_classifier(), toy_classify, config, out_dir=tmp_path, callbacks=[TakesTenSeconds(clock), StopAt(3)],
              progress=False)
    meta_path = tmp_path / "checkpoints" / "last.json"
    meta = json.loads(meta_path.read_text())
    assert meta["epoch"] == 2 and meta["train_seconds"] == 20.0
    if saved_by != "this version":
        del meta["train_seconds"]
        meta_path.write_text(json.dumps(meta))
    clock["now"] += 3600.0  # between the interruption and the resume: not training time
    resumed = train(_classifier(), toy_classify, config, out_dir=tmp_path, callbacks=[TakesTenSeconds(clock)],
                    resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.extra["train_seconds"] == (40.0 if saved_by == "this version" else 20.0)
