"""AppTest of the Train page: a tiny background job, its live progress, a refused second start, cancel."""

from __future__ import annotations

import json
import time

from fmnist_core import jobs, registry
from fmnist_core.config import TrainConfig
from tests.app.conftest import assert_clean, open_page


def fill_tiny_job(app, epochs: int = 1, subset: int = 256):
    app.selectbox(key="train_preset").set_value("quick").run()
    app.selectbox(key="arch_quick").set_value("seed-basic")
    app.number_input(key="epochs_quick").set_value(epochs)
    app.number_input(key="subset_quick").set_value(subset)
    app.checkbox(key="aug_quick").check()
    app.slider(key="erase_quick").set_value(0.25)
    return app


def wait_for(predicate, timeout: float = 120, poll: float = 0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("condition not reached in time")


def test_start_tiny_job_shows_progress_and_registers_model(registry_dir):
    before = {info.model_id for info in registry.list_models()}
    app = fill_tiny_job(open_page("train"))
    app.number_input(key="finetune_quick").set_value(1)
    app.slider(key="pairs_quick").set_value(0.5)
    app.slider(key="smoothing_quick").set_value(0.1)
    app.selectbox(key="optimizer_quick").set_value("sgd")
    app.number_input(key="decay_quick").set_value(0.005)
    app.number_input(key="averaging_quick").set_value(0.99)
    app.button(key="train_start").click().run()
    assert_clean(app)
    run_id = jobs.current_run_id()
    assert run_id, "a job was started"
    # The page shows the job's progress bar while it runs or once it has finished.
    assert app.get("progress"), "progress bar visible"
    status = jobs.wait(run_id, timeout=240)
    assert status["state"] == "finished", status
    assert status["config"]["random_erasing"] == 0.25, "every form field reaches the job"
    assert status["config"]["finetune_epochs"] == 1 and status["config"]["shoe_pairs"] == 0.5
    assert status["config"]["label_smoothing"] == 0.1
    assert (status["config"]["optimizer"], status["config"]["weight_decay"]) == ("sgd", 0.005)
    assert status["config"]["weight_averaging"] == 0.99
    assert status["epochs"] == 2, "the last stage's epoch is counted"
    app.run()
    assert_clean(app)
    assert any("finished" in str(m.value) for m in app.markdown)
    assert app.get("vega_lite_chart"), "loss/accuracy curves are drawn"
    # 256 images for 2 epochs are 2 batches of 256 each: the run trained in batches of 32 and says so.
    assert any("batches of 32 instead of 256" in c.value for c in app.caption)
    new = {info.model_id for info in registry.list_models()} - before
    assert new == {status["model_id"]}
    # The finished job offers to activate the new model.
    app.button(key="train_activate_button").click().run()
    assert registry.get_active_id() == status["model_id"]


def test_second_start_from_another_session_is_refused(registry_dir):
    other_session = fill_tiny_job(open_page("train"))  # its form is open before the first job starts
    run_id = jobs.start(TrainConfig(architecture="seed-basic", epochs=3, subset=2048, batch_size=32,
                                    augmentation=False, validation_split=0.0))
    try:
        other_session.button(key="train_start").click().run()
        assert_clean(other_session)
        assert any("already running" in e.value and run_id in e.value for e in other_session.error)
        fresh = open_page("train")  # a new tab: no form, the running job is shown instead
        assert any(run_id in str(i.value) for i in fresh.info)
    finally:
        jobs.cancel(run_id)
        jobs.wait(run_id, timeout=240)


def test_cancel_button_stops_the_job(registry_dir):
    before = {info.model_id for info in registry.list_models()}
    run_id = jobs.start(TrainConfig(architecture="seed-basic", epochs=20, subset=8192, batch_size=32,
                                    augmentation=False, validation_split=0.0))
    wait_for(lambda: (jobs.job_status(run_id) or {}).get("state") == "running", timeout=120)
    app = open_page("train")
    app.button(key="train_cancel").click().run()
    status = jobs.wait(run_id, timeout=120)
    assert status["state"] == "cancelled"
    assert {info.model_id for info in registry.list_models()} == before
    app.run()
    assert any("cancelled" in w.value for w in app.warning)


def test_erasing_without_augmentation_is_explained_and_starts_nothing(registry_dir):
    app = fill_tiny_job(open_page("train"))
    app.checkbox(key="aug_quick").uncheck()
    app.button(key="train_start").click().run()
    assert_clean(app)
    assert any("turn augmentation on" in e.value for e in app.error)
    assert jobs.current_run_id() is None


def test_photo_head_retrains_from_the_train_page(photo_registry):
    from fmnist_core import photo

    before = {info.model_id for info in photo.list_photo_heads()}
    app = open_page("train")
    app.button(key="photo_train_start").click().run()
    assert_clean(app)
    run_id = jobs.current_run_id()
    status = jobs.wait(run_id, timeout=300)
    assert status["state"] == "finished" and status["kind"] == "photo", status
    new = {info.model_id for info in photo.list_photo_heads()} - before
    assert new == {status["model_id"]}
    head = photo.load_photo_head(status["model_id"])  # trained on the repository's item-view features
    assert head.views == ("item", "item-centre") and head.class_thresholds.shape == (2, 11)
    assert head.meta["training_data"]["photos"]["per_domain"]["shop-like"] > 3000 and head.garment_floor > 0
    app.run()
    assert_clean(app)
    assert any("Photo model job" in str(m.value) for m in app.markdown)
    assert photo.active_photo_head_id() != status["model_id"]
    app.button(key="photo_activate_button").click().run()
    assert photo.active_photo_head_id() == status["model_id"]


def test_a_broken_finished_model_is_called_broken(registry_dir):
    from fmnist_core.predict import Classifier

    meta = registry.read_meta(registry.get_active_id())
    broken = registry.save_model(Classifier.load().model, {**meta, "test_metrics": {"accuracy": 0.1017, "loss": 2.3}})
    run_dir = jobs.runs_dir() / "20261201-000000-broken"
    run_dir.mkdir(parents=True)
    from fmnist_core.fsutil import atomic_write_json

    atomic_write_json(run_dir / "status.json", {"run_id": run_dir.name, "state": "finished", "model_id": broken,
                                                "config": TrainConfig(subset=6000, epochs=3).to_dict(),
                                                "test_accuracy": 0.1017, "epochs": 3, "epoch": 3})
    atomic_write_json(jobs.runs_dir() / "current.json", {"run_id": run_dir.name, "pid": None})
    app = open_page("train")
    assert_clean(app)
    assert any("close to chance" in e.value for e in app.error)


INPUT_KINDS = ("selectbox", "number_input", "slider", "checkbox", "text_input", "radio", "toggle", "multiselect")


def inputs(block) -> list[str]:
    """The keys of the input widgets in a page or one of its blocks."""
    return [widget.key for kind in INPUT_KINDS for widget in getattr(block, kind)]


def test_the_first_screen_is_preset_architecture_epochs_and_an_estimate_from_this_machine(registry_dir):
    from fmnist_core import estimate

    app = open_page("train")
    assert_clean(app)
    [advanced] = [block for block in app.expander if "Advanced settings" in block.label]
    first_screen = [key for key in inputs(app) if key not in inputs(advanced)]
    assert first_screen == ["train_preset", "arch_standard", "epochs_standard"]  # at most five, and Start
    assert app.button(key="train_start") and len(inputs(advanced)) == 13
    assert app.number_input(key="lr_standard").value == 3e-3  # the preset's values, one click away
    [said] = [c.value for c in app.caption if "Estimated:" in c.value]
    assert "on this machine" in said and "from timed steps" in said
    assert "Zen" not in said and "AMX" not in said  # no CPU-family prose
    timings = json.loads((jobs.runs_dir() / estimate.TIMINGS_FILE).read_text())
    assert any("fmnist-wide-whitened-pooled|256|" in key for key in timings)  # timed once, then cached
    app.selectbox(key="train_preset").set_value("quick").run()
    assert any("Estimated:" in c.value for c in app.caption) and "epochs_quick" in inputs(app)


def test_a_run_that_died_after_an_epoch_is_offered_and_resumed(registry_dir):
    import os
    import signal

    from fmnist_core.checkpoints import read_checkpoint

    run_id = jobs.start(TrainConfig(architecture="seed-basic", epochs=5, subset=4096, batch_size=32,
                                    augmentation=False, validation_split=0.0, test_subset=500))
    wait_for(lambda: read_checkpoint(jobs.runs_dir() / run_id), timeout=180, poll=0.2)
    os.kill(jobs.job_status(run_id)["pid"], signal.SIGKILL)
    wait_for(lambda: (jobs.job_status(run_id) or {}).get("state") == "failed", timeout=30)
    done = read_checkpoint(jobs.runs_dir() / run_id).epoch

    app = open_page("train")
    assert_clean(app)
    assert any(f"finished {done} of 5 epochs" in i.value for i in app.info)
    app.button(key="train_resume").click().run()
    assert_clean(app)
    status = jobs.wait(run_id, timeout=240)
    assert status["state"] == "finished" and status["resumed_from_epoch"] == done
    assert status["model_id"] in {info.model_id for info in registry.list_models()}
    app.run()
    assert not [b for b in app.button if b.key == "train_resume"], "a finished run offers no resume"
