"""Concurrent starts, concurrent classification, switching models under load, and a killed training job."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fmnist_core import jobs, registry
from fmnist_core.config import TrainConfig
from fmnist_core.predict import Classifier

LONG_JOB = TrainConfig(architecture="seed-basic", epochs=30, subset=8192, batch_size=32, augmentation=False,
                       validation_split=0.0)


def _start_in_process(barrier, results, runs_dir, models_dir):
    os.environ["FMNIST_RUNS_DIR"], os.environ["FMNIST_MODELS_DIR"] = runs_dir, models_dir
    barrier.wait()
    try:
        results.put(("started", jobs.start(LONG_JOB)))
    except jobs.JobBusyError as error:
        results.put(("refused", error.run_id))


def test_simultaneous_starts_from_four_processes_start_exactly_one_job(registry_dir):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    processes = [context.Process(target=_start_in_process,
                                 args=(barrier, results, os.environ["FMNIST_RUNS_DIR"], str(registry_dir)))
                 for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    outcomes = [results.get(timeout=10) for _ in processes]
    started = [run_id for kind, run_id in outcomes if kind == "started"]
    refused = [run_id for kind, run_id in outcomes if kind == "refused"]
    try:
        assert len(started) == 1 and len(refused) == 3
        assert set(refused) == set(started), "the refusal names the running job"
    finally:
        jobs.cancel(started[0])
        jobs.wait(started[0], timeout=120)


def test_sigkill_mid_epoch_fails_the_job_frees_the_lock_and_keeps_the_active_model(registry_dir):
    active = registry.get_active_id()
    models_before = {info.model_id for info in registry.list_models()}
    run_id = jobs.start(LONG_JOB)
    deadline = time.time() + 120
    while (jobs.job_status(run_id) or {}).get("batch", 0) < 5:
        assert time.time() < deadline, "job never reached batch 5"
        time.sleep(0.3)
    os.kill(jobs.job_status(run_id)["pid"], signal.SIGKILL)
    time.sleep(0.5)
    status = jobs.job_status(run_id)
    assert status["state"] == "failed" and "ended unexpectedly" in status["error"]
    assert jobs.running_job() is None, "stale lock detected by PID"
    assert registry.get_active_id() == active
    assert {info.model_id for info in registry.list_models()} == models_before
    Classifier.load()  # the active model still loads
    tiny = TrainConfig(architecture="seed-basic", epochs=1, subset=256, batch_size=64, augmentation=False,
                       validation_split=0.0, test_subset=100)
    next_run = jobs.start(tiny)
    assert jobs.wait(next_run, timeout=240)["state"] == "finished"


def test_twenty_concurrent_classifications_agree_with_sequential(registry_dir, dataset):
    classifier = Classifier.load()
    images = [dataset.x_test[i] for i in range(20)]
    expected = [classifier.classify_image(image).class_index for image in images]
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda image: classifier.classify_image(image).class_index, images))
    assert answers == expected


def test_switching_active_model_while_others_classify(registry_dir, dataset):
    first = registry.get_active_id()
    second = registry.save_model(Classifier.load().model, registry.read_meta(first))
    classifiers = {first: Classifier.load(first), second: Classifier.load(second)}
    errors, answers = [], []
    stop = threading.Event()

    def classify_forever():
        while not stop.is_set():
            try:
                model_id = registry.resolve_model_id()
                answers.append(classifiers[model_id].classify_array(dataset.x_test[0]).class_index)
            except Exception as error:  # any error at all fails the test
                errors.append(error)

    def switch_forever():
        for index in range(40):
            registry.set_active(second if index % 2 == 0 else first)
            time.sleep(0.01)

    workers = [threading.Thread(target=classify_forever) for _ in range(8)]
    for worker in workers:
        worker.start()
    switch_forever()
    stop.set()
    for worker in workers:
        worker.join()
    assert not errors and len(answers) > 40
    assert len(set(answers)) == 1  # same weights, same answer, whichever model was active


def test_app_restart_sees_a_job_that_kept_running(registry_dir):
    """A job started by a server process that then 'died' is still visible to a fresh session."""
    from tests.app.conftest import assert_clean, open_page

    run_id = jobs.start(LONG_JOB)
    try:
        app = open_page("train")
        assert_clean(app)
        assert any(run_id in str(info.value) for info in app.info)
        assert app.get("progress")
    finally:
        jobs.cancel(run_id)
        jobs.wait(run_id, timeout=120)


def test_a_killed_job_is_resumed_from_its_last_checkpoint_in_the_same_run(registry_dir):
    from fmnist_core.checkpoints import read_checkpoint
    from fmnist_core.config import runs_dir
    from fmnist_core.train import read_history

    config = TrainConfig(architecture="seed-basic", epochs=6, subset=4096, batch_size=32, augmentation=False,
                         validation_split=0.0, test_subset=500)
    run_id = jobs.start(config)
    run_dir = runs_dir() / run_id
    deadline = time.time() + 180
    while read_checkpoint(run_dir) is None:
        assert time.time() < deadline and jobs.running_job(), "the job never finished an epoch"
        time.sleep(0.2)
    os.kill(jobs.job_status(run_id)["pid"], signal.SIGKILL)
    time.sleep(0.5)
    status = jobs.job_status(run_id)
    checkpoint = jobs.resumable_checkpoint(status)
    assert status["state"] == "failed" and checkpoint is not None and 1 <= checkpoint.epoch < 6

    assert jobs.resume(run_id) == run_id, "a resumed run keeps its id"
    final = jobs.wait(run_id, timeout=240)
    assert final["state"] == "finished" and final["resumed_from_epoch"] == checkpoint.epoch
    assert [row["epoch"] for row in read_history(run_dir)] == [1, 2, 3, 4, 5, 6]
    assert final["model_id"] in {info.model_id for info in registry.list_models()}
    assert jobs.resumable_checkpoint(jobs.job_status(run_id)) is None
    with pytest.raises(ValueError, match="cannot be resumed"):
        jobs.resume(run_id)
