"""Checkpoints of training runs (training.trainer.train_model's ``checkpoint``; reproduce.py's
``--checkpoints``): a run continued from a checkpoint ends with the same bits as the same run
uninterrupted, and a checkpoint of another run is refused.

The oracle is the uninterrupted run itself: its parameters, its per-epoch losses and its
metrics.  Each model keeps several arrays of state (parameters, two Adam moments, the step
count, the epoch); forgetting any one of them changes the continued run's bits (seen: not
restoring the Adam step count, or the second moment, fails the first test)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from training import cli
from training import results as R
from training import sampling as S
from training import trainer as T
from training.loaders import save_lightgcn_txt
from training.planted import planted_dataset
from training.split import split_per_user

REPO = Path(__file__).resolve().parents[1]


def _tiny(seed=0):
    data = planted_dataset(70, 50, seed=seed, density=0.1)
    return split_per_user(data.matrix, 0.8, 0)


KW = dict(batch_size=32, lr=0.01, dim=6, seed=3, handle_sigint=False, ks=(5, 20))


@pytest.mark.parametrize("model, sampler", [("mf", S.softmax_v(1.0, 10)),
                                            ("mf", S.dns(2, 10)),
                                            ("lightgcn", S.dns(2, 10))])
def test_a_resumed_run_ends_with_the_bits_of_an_uninterrupted_one(tmp_path, model, sampler):
    train, test = _tiny()
    options = {"layers": 2} if model == "lightgcn" else {}
    whole = T.train_model(train, test, sampler, model=model, epochs=5, eval_every=2, **KW,
                          **options)
    path = tmp_path / "run.npz"
    # The first process stops after 3 epochs (checkpoints at epochs 2 and 3) ...
    first = T.train_model(train, test, sampler, model=model, epochs=3, eval_every=2,
                          checkpoint=path, checkpoint_every=2, **KW, **options)
    assert first.epochs_completed == 3 and path.exists()
    # ... the second continues from the checkpoint: epochs 4 and 5 only.
    calls = []
    original = T.Trainer.run_epoch

    def counting(self, *args, **kwargs):
        calls.append(self.epoch)
        return original(self, *args, **kwargs)

    T.Trainer.run_epoch = counting
    try:
        resumed = T.train_model(train, test, sampler, model=model, epochs=5, eval_every=2,
                                checkpoint=path, checkpoint_every=2, **KW, **options)
    finally:
        T.Trainer.run_epoch = original
    assert calls == [3, 4]
    for a, b in zip(whole.model.parameters, resumed.model.parameters):
        np.testing.assert_array_equal(a, b)
    assert resumed.metrics == whole.metrics
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4, 5]
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
    assert resumed.history[1]["recall@20"] == whole.history[1]["recall@20"]  # eval at epoch 2
    assert resumed.epochs_completed == 5 and not resumed.interrupted
    # The 3-epoch model differs from the 5-epoch one: the equalities above can fail.
    assert not np.array_equal(first.model.parameters[1], whole.model.parameters[1])


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    train, test = _tiny()
    path = tmp_path / "run.npz"
    T.train_model(train, test, S.dns(2, 10), epochs=2, checkpoint=path, **KW)
    other_seed = {**KW, "seed": 4}
    changes = [dict(sampler=S.dns(3, 10)), dict(kw=other_seed), dict(kw={**KW, "lr": 0.02}),
               dict(data=_tiny(seed=1)), dict(kw={**KW, "weight_decay": 0.1})]
    for change in changes:
        tr, te = change.get("data", (train, test))
        with pytest.raises(T.CheckpointError, match="another run"):
            T.train_model(tr, te, change.get("sampler", S.dns(2, 10)), epochs=3,
                          checkpoint=path, **change.get("kw", KW))
    with pytest.raises(T.CheckpointError, match="after the 1 epochs"):
        T.train_model(train, test, S.dns(2, 10), epochs=1, checkpoint=path, **KW)
    path.write_bytes(b"not an npz")
    with pytest.raises(T.CheckpointError, match="cannot be read"):
        T.train_model(train, test, S.dns(2, 10), epochs=3, checkpoint=path, **KW)
    with pytest.raises(ValueError, match="checkpoint_every"):
        T.train_model(train, test, S.dns(2, 10), epochs=3, checkpoint_every=0, **KW)


def test_the_runner_continues_a_run_from_its_checkpoint_and_then_deletes_it(tmp_path, capsys):
    """reproduce.py: a checkpoint left by a stopped run (here: a 2-of-3-epoch run's) is
    continued, the row equals an uninterrupted run's, and the checkpoint goes once the row is
    saved."""
    train, test = _tiny()
    save_lightgcn_txt(train, tmp_path / "train.txt")
    save_lightgcn_txt(test, tmp_path / "test.txt")
    spec = importlib.util.spec_from_file_location("reproduce", REPO / "benchmarks" / "reproduce.py")
    rep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rep)
    common = ["--data", str(tmp_path / "train.txt"), "--dataset", "ml-1m", "--only", "DNS:5",
              "--weight-decays", "0.001", "--epochs", "3", "--no-progress"]
    assert rep.main([*common, "--results", str(tmp_path / "whole.csv")]) == 0
    assert not list((tmp_path / ".checkpoints").glob("*.npz"))  # deleted after the row
    # A stopped run's checkpoint: the same run (the runner's settings), 2 of its 3 epochs.
    folder = tmp_path / "ckpt"
    args = rep.argparse.Namespace(dataset="ml-1m", model="mf", epochs=3, checkpoints=folder)
    config = {"seed": 0, "family": "DNS", "param": 5, "weight_decay": 0.001}
    path = rep.Study(args, [config]).checkpoint(config)
    path.parent.mkdir()
    T.train_model(train, test, S.dns(5, 200), epochs=2, checkpoint=path, dim=32,
                  batch_size=4096, lr=1e-3, weight_decay=0.001, seed=0, handle_sigint=False)
    assert path.exists()
    capsys.readouterr()
    assert rep.main([*common, "--results", str(tmp_path / "resumed.csv"),
                     "--checkpoints", str(folder)]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert not path.exists()
    metrics = list(R.METRIC_COLUMNS)
    whole = R.read_results(tmp_path / "whole.csv")[metrics].to_numpy(float)
    resumed = R.read_results(tmp_path / "resumed.csv")[metrics].to_numpy(float)
    np.testing.assert_array_equal(whole, resumed)


def test_the_command_line_continues_from_a_checkpoint(tmp_path, capsys):
    """python -m training --checkpoint: 2 epochs, then 3 from the checkpoint, give the factors
    of 3 epochs in one go; another seed's run refuses the checkpoint with a clear error."""
    common = ["--data", "planted", "--planted-users", "60", "--planted-items", "40",
              "--sampler", "dns", "--m", "2", "--n", "8", "--dim", "4", "--batch-size", "64",
              "--lr", "0.01", "--no-progress", "--ks", "5"]
    ckpt = tmp_path / "run.npz"
    assert cli.main([*common, "--epochs", "2", "--checkpoint", str(ckpt)]) == 0
    assert cli.main([*common, "--epochs", "3", "--checkpoint", str(ckpt),
                     "--save", str(tmp_path / "resumed.npz")]) == 0
    assert cli.main([*common, "--epochs", "3", "--save", str(tmp_path / "whole.npz")]) == 0
    resumed, whole = np.load(tmp_path / "resumed.npz"), np.load(tmp_path / "whole.npz")
    for key in ("user_factors", "item_factors"):
        np.testing.assert_array_equal(resumed[key], whole[key])
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        cli.main([*common, "--epochs", "4", "--seed", "1", "--checkpoint", str(ckpt)])
    assert stop.value.code == 2 and "belongs to another run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([*common, "--epochs", "4", "--checkpoint-every", "0"])
    assert "--checkpoint-every" in capsys.readouterr().err
