"""A run whose process died goes on from its last epoch checkpoint and ends where an unbroken run ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import fmnist_core.train as training
from fmnist_core import registry
from fmnist_core.checkpoints import CHECKPOINT_FILE, read_checkpoint
from fmnist_core.config import TrainConfig
from fmnist_core.train import read_history, read_status, train


class Crash(RuntimeError):
    """Stands for the process dying (killed, out of memory, machine restarted) right after a checkpoint."""


def crash_after_epoch(monkeypatch, epoch: int) -> None:
    real = training.callbacks.write_checkpoint

    def write_then_crash(model, run_dir, done, *args, **kwargs):
        checkpoint = real(model, run_dir, done, *args, **kwargs)
        if done == epoch:
            raise Crash(f"died after epoch {done}")
        return checkpoint

    monkeypatch.setattr(training.callbacks, "write_checkpoint", write_then_crash)


def weights_of(model_id: str, root) -> list[np.ndarray]:
    return registry.load_model(model_id, root).get_weights()


@pytest.mark.parametrize("config", [
    TrainConfig(architecture="fmnist-lite", epochs=3, batch_size=128, subset=2000, test_subset=500,
                validation_split=0.0),
    # Flips, shifts, erasing and dropout draw from random generators; the last stage pairs shoes.
    TrainConfig(architecture="fmnist-small", epochs=1, batch_size=128, subset=2000, test_subset=500,
                validation_split=0.0, augmentation=True, random_erasing=0.5, finetune_epochs=2, shoe_pairs=0.3),
    # The weight average lives in the optimizer's state: a resumed run must carry it on, not start a new one.
    TrainConfig(architecture="fmnist-lite", epochs=3, batch_size=128, subset=2000, test_subset=500,
                validation_split=0.0, weight_averaging=0.99),
], ids=["main-stage", "last-stage-with-augmentation", "main-stage-with-weight-averaging"])
def test_a_resumed_run_ends_with_the_weights_of_an_unbroken_one(config, dataset, tmp_path, monkeypatch):
    unbroken = train(config, tmp_path / "unbroken", dataset=dataset, models_root=tmp_path / "models")

    crash_after_epoch(monkeypatch, 2)
    with pytest.raises(Crash):
        train(config, tmp_path / "broken", dataset=dataset, models_root=tmp_path / "models")
    checkpoint = read_checkpoint(tmp_path / "broken")
    assert checkpoint is not None and checkpoint.epoch == 2
    assert read_status(tmp_path / "broken")["state"] == "failed"
    monkeypatch.undo()

    resumed = train(config, tmp_path / "broken", dataset=dataset, models_root=tmp_path / "models", resume=True)
    assert resumed["state"] == "finished" and resumed["resumed_from_epoch"] == 2
    assert [row["epoch"] for row in read_history(tmp_path / "broken")] == [1, 2, 3], "the curves keep their past"
    for mine, theirs in zip(weights_of(resumed["model_id"], tmp_path / "models"),
                            weights_of(unbroken["model_id"], tmp_path / "models")):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)
    assert resumed["test_accuracy"] == pytest.approx(unbroken["test_accuracy"], abs=0.005)
    assert resumed["train_seconds"] > checkpoint.train_seconds, "the time before the crash is counted"
    assert not (tmp_path / "broken" / CHECKPOINT_FILE).exists(), "a finished run leaves no checkpoint behind"
    assert not list((tmp_path / "broken").glob("*.weights.h5"))


def test_a_run_without_a_checkpoint_or_with_another_config_is_not_resumed(dataset, tmp_path, monkeypatch):
    config = TrainConfig(architecture="fmnist-lite", epochs=2, subset=512, test_subset=100, validation_split=0.0)
    with pytest.raises(ValueError, match="no checkpoint"):
        train(config, tmp_path / "never-ran", dataset=dataset, models_root=tmp_path / "models", resume=True)
    assert read_status(tmp_path / "never-ran") is None, "a refused resume writes nothing"

    crash_after_epoch(monkeypatch, 1)
    with pytest.raises(Crash):
        train(config, tmp_path / "run", dataset=dataset, models_root=tmp_path / "models")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="another configuration"):
        train(config.replace(epochs=5), tmp_path / "run", dataset=dataset, models_root=tmp_path / "models", resume=True)


def test_a_cancelled_run_keeps_no_checkpoint(dataset, tmp_path):
    config = TrainConfig(architecture="fmnist-lite", epochs=2, subset=512, test_subset=100, validation_split=0.0)
    training.request_cancel(tmp_path / "run")
    with pytest.raises(training.TrainingCancelled):
        train(config, tmp_path / "run", dataset=dataset, models_root=tmp_path / "models")
    assert read_checkpoint(tmp_path / "run") is None and not list((tmp_path / "run").glob("*.weights.h5"))


def test_the_cli_resumes_a_run_and_refuses_one_without_a_checkpoint(dataset, tmp_path, monkeypatch):
    from tests.unit.test_cli import run_cli

    config = TrainConfig(architecture="fmnist-lite", epochs=2, subset=512, test_subset=100, validation_split=0.0)
    crash_after_epoch(monkeypatch, 1)
    with pytest.raises(Crash):
        train(config, tmp_path / "runs" / "died", dataset=dataset, models_root=tmp_path / "models")
    monkeypatch.undo()
    result = run_cli("train", "--resume", "died", "--run-dir", tmp_path / "runs" / "died", "--json",
                     env_root=tmp_path / "models")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["config"] == config.to_dict() and report["model_id"]
    assert read_status(tmp_path / "runs" / "died")["resumed_from_epoch"] == 1

    refused = run_cli("train", "--resume", "no-such-run", env_root=tmp_path / "models")
    assert refused.returncode == 1 and "no checkpoint to resume from" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_run_checkpointed_in_float32_goes_on_in_bfloat16_on_a_cpu_that_has_it(dataset, tmp_path, monkeypatch):
    # A long run started on an AVX2-only CPU (float32) may be resumed on one with bfloat16 units, where "auto"
    # trains in bfloat16: the weights and optimizer state are float32 either way, so the checkpoint must load.
    config = TrainConfig(architecture="fmnist-small", epochs=2, batch_size=128, subset=1024, test_subset=500,
                         validation_split=0.0)
    monkeypatch.setattr(training.precision, "cpu_has_bfloat16", lambda: False)
    crash_after_epoch(monkeypatch, 1)
    with pytest.raises(Crash):
        train(config, tmp_path / "run", dataset=dataset, models_root=tmp_path / "models")
    monkeypatch.undo()

    monkeypatch.setattr(training.precision, "cpu_has_bfloat16", lambda: True)
    resumed = train(config, tmp_path / "run", dataset=dataset, models_root=tmp_path / "models", resume=True)
    assert resumed["state"] == "finished" and resumed["resumed_from_epoch"] == 1
    meta = registry.read_meta(resumed["model_id"], tmp_path / "models")
    assert meta["precision"] == "mixed_bfloat16" and meta["resumed_from_epoch"] == 1
    assert meta["epochs_by_precision"] == {"float32": 1, "mixed_bfloat16": 1}
    assert resumed["test_accuracy"] > 0.6, "the resumed run kept what the first epoch learned"


def test_a_checkpoint_from_before_precisions_were_counted_still_resumes(dataset, tmp_path, monkeypatch):
    config = TrainConfig(architecture="fmnist-lite", epochs=2, subset=512, test_subset=100, validation_split=0.0)
    crash_after_epoch(monkeypatch, 1)
    with pytest.raises(Crash):
        train(config, tmp_path / "run", dataset=dataset, models_root=tmp_path / "models")
    monkeypatch.undo()
    path = tmp_path / "run" / CHECKPOINT_FILE
    older = json.loads(path.read_text())
    assert older.pop("epochs_by_precision") == {training.resolve_precision("auto"): 1}
    path.write_text(json.dumps(older))

    resumed = train(config, tmp_path / "run", dataset=dataset, models_root=tmp_path / "models", resume=True)
    meta = registry.read_meta(resumed["model_id"], tmp_path / "models")
    assert meta["epochs_by_precision"] == {"unrecorded": 1, training.resolve_precision("auto"): 1}


def test_the_best_trial_script_carries_a_run_through_a_snapshot_and_finishes_it(dataset, tmp_path, monkeypatch):
    # The long trial outlives a working session as a checkpoint kept in git: snapshot, then resume elsewhere.
    from tests.unit.test_cli import REPO_ROOT

    config = TrainConfig(architecture="fmnist-lite", epochs=2, subset=512, test_subset=100, validation_split=0.0)
    crash_after_epoch(monkeypatch, 1)
    with pytest.raises(Crash):
        train(config, tmp_path / "here" / "trial", dataset=dataset, models_root=tmp_path / "models")
    monkeypatch.undo()

    def script(command: str, run_dir) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHON": sys.executable, "FMNIST_MODELS_DIR": str(tmp_path / "models"),
               "BEST_TRIAL_RUN_DIR": str(run_dir), "BEST_TRIAL_SNAPSHOT": str(tmp_path / "snapshot")}
        return subprocess.run(["bash", "scripts/best_trial.sh", command], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    snapshot = script("snapshot", tmp_path / "here" / "trial")
    assert snapshot.returncode == 0, snapshot.stderr
    assert sorted(path.name for path in (tmp_path / "snapshot").iterdir()) == [
        "batches.csv", "checkpoint-epoch-0001.weights.h5", CHECKPOINT_FILE, "history.csv"]

    elsewhere = tmp_path / "elsewhere" / "trial"  # a fresh clone: only the snapshot is there
    assert script("resume", elsewhere).returncode == 0
    deadline = time.monotonic() + 240
    while (read_status(elsewhere) or {}).get("state") not in ("finished", "failed") and time.monotonic() < deadline:
        time.sleep(1)
    status = read_status(elsewhere)
    assert status["state"] == "finished", (elsewhere.parent / "trial.log").read_text()[-2000:]
    assert status["resumed_from_epoch"] == 1 and registry.read_meta(status["model_id"], tmp_path / "models")
    assert "2 epochs done" in script("status", elsewhere).stdout
    assert script("snapshot", elsewhere).returncode == 1, "a finished run has no checkpoint to carry"
