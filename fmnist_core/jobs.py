"""The one background training job: start, status, cancel. Works across processes and sessions.

A start takes a short exclusive flock on runs/.start.lock, checks runs/current.json for a live job,
spawns `python -m fmnist_core train --run-dir runs/<id>` in its own session and records its PID.
A job whose PID is gone while its status says running is reported failed, and no longer blocks; if it
had finished an epoch, `resume` starts it again in the same run directory from its last checkpoint.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from fmnist_core.checkpoints import Checkpoint, read_checkpoint
from fmnist_core.config import REPO_ROOT, TrainConfig, runs_dir
from fmnist_core.fsutil import atomic_write_json, read_json
from fmnist_core.train import STATUS_FILE, read_status, request_cancel

CURRENT_FILE = "current.json"
LOCK_FILE = ".start.lock"
LOG_FILE = "log.txt"
ACTIVE_STATES = ("starting", "running")


class JobBusyError(RuntimeError):
    """A training job is already running; the message names it."""

    def __init__(self, run_id: str):
        super().__init__(f"a training job is already running ({run_id}); wait for it or cancel it first")
        self.run_id = run_id


@contextmanager
def _start_lock(root: Path):
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel even if this process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pid_alive(pid: int | None) -> bool:
    """True when the process exists and is not a zombie (reaping our own finished children)."""
    if not pid:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our child and has exited
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child (started by another server process): fall through
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def new_run_id() -> str:
    """A sortable run id."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def job_status(run_id: str, root: Path | None = None) -> dict | None:
    """status.json of a run, with a dead process turned into a failed job."""
    run_dir = Path(root or runs_dir()) / run_id
    status = read_status(run_dir)
    if status is None:
        return None
    if status.get("state") in ACTIVE_STATES and not pid_alive(status.get("pid")):
        # Re-read: the process may have finished and written its last status just now.
        status = read_status(run_dir) or status
        if status.get("state") in ACTIVE_STATES:
            status.update(state="failed", message="failed",
                          error="the training process ended unexpectedly (killed, out of memory or server restart); "
                                f"see {run_dir / LOG_FILE}")
            atomic_write_json(run_dir / STATUS_FILE, status)
    return status


def current_run_id(root: Path | None = None) -> str | None:
    """The most recently started job's id (running or not), or None."""
    try:
        return read_json(Path(root or runs_dir()) / CURRENT_FILE)["run_id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running_job(root: Path | None = None) -> dict | None:
    """The status of the live job, or None when no job is running."""
    run_id = current_run_id(root)
    status = job_status(run_id, root) if run_id else None
    return status if status and status.get("state") in ACTIVE_STATES else None


def start(config: TrainConfig, root: Path | None = None, activate: bool = False,
          extra_env: dict | None = None) -> str:
    """Start training in a separate process; raises JobBusyError if one is running. Returns the run id."""
    config.validate()
    arguments = ["train", "--config-json", json.dumps(config.to_dict())] + (["--activate"] if activate else [])
    return _spawn(arguments, config.to_dict(), config.total_epochs, "cnn", root, extra_env)


def start_photo(root: Path | None = None, activate: bool = False, extra_env: dict | None = None,
                with_feedback: bool = False, feedback_weight: float | None = None) -> str:
    """Train the photo model's head as the background job (the same lock: one job at a time for everyone).

    with_feedback: include the accepted corrections, each weighing feedback_weight (default: the config's).
    """
    from fmnist_core.photo_train import PhotoTrainConfig

    config = PhotoTrainConfig(with_feedback=with_feedback,
                              **({} if feedback_weight is None else {"feedback_weight": float(feedback_weight)}))
    arguments = ["train-photo"] + (["--activate"] if activate else []) + (
        ["--with-feedback", "--feedback-weight", str(config.feedback_weight)] if with_feedback else [])
    return _spawn(arguments, config.to_dict(), config.total_epochs, "photo", root, extra_env)


def resumable_checkpoint(status: dict | None, root: Path | None = None) -> Checkpoint | None:
    """The checkpoint a failed CNN run can go on from, or None (running, finished, cancelled, or none written)."""
    if not status or status.get("kind", "cnn") != "cnn" or status.get("state") != "failed":
        return None
    return read_checkpoint(Path(root or runs_dir()) / status["run_id"])


def resume(run_id: str, root: Path | None = None, activate: bool = False, extra_env: dict | None = None) -> str:
    """Start a failed run again from its last checkpoint, in its own directory; raises JobBusyError or ValueError."""
    root = Path(root or runs_dir())
    checkpoint = resumable_checkpoint(job_status(run_id, root), root)
    if checkpoint is None:
        raise ValueError(f"run {run_id} cannot be resumed: only a run that failed after finishing an epoch can")
    config = TrainConfig.from_dict(checkpoint.config)
    arguments = ["train", "--resume", run_id] + (["--activate"] if activate else [])
    return _spawn(arguments, config.to_dict(), config.total_epochs, "cnn", root, extra_env, run_id=run_id,
                  first_epoch=checkpoint.epoch)


def _spawn(arguments: list[str], config: dict, epochs: int, kind: str, root: Path | None,
           extra_env: dict | None, run_id: str | None = None, first_epoch: int = 0) -> str:
    """Under the start lock: refuse when a job runs, else start `python -m fmnist_core ARGS --run-dir DIR`.

    With a run id, in that (existing) run's directory: a resumed run keeps its id, curves and log.
    """
    root = Path(root or runs_dir())
    with _start_lock(root):
        busy = running_job(root)
        if busy:
            raise JobBusyError(busy["run_id"])
        run_id = run_id or new_run_id()
        run_dir = root / run_id
        run_dir.mkdir(parents=True, exist_ok=first_epoch > 0)
        command = [sys.executable, "-m", "fmnist_core", *arguments, "--run-dir", str(run_dir)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
               "TF_CPP_MIN_LOG_LEVEL": "2", **(extra_env or {})}
        with open(run_dir / LOG_FILE, "a" if first_epoch else "w") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=REPO_ROOT, env=env, start_new_session=True)
        # Written before the lock is released, so a second start in any process sees this job.
        atomic_write_json(run_dir / STATUS_FILE, {
            "run_id": run_id, "kind": kind, "state": "starting", "pid": process.pid, "config": config,
            "started_at": datetime.now(UTC).isoformat(), "message": "starting Python",
            "epoch": first_epoch, "epochs": epochs, "batch": 0, "batches_per_epoch": 0,
            "progress": round(first_epoch / max(1, epochs), 4),
            "elapsed_s": 0.0, "eta_s": None, "model_id": None, "error": None})
        atomic_write_json(root / CURRENT_FILE, {"run_id": run_id, "pid": process.pid})
    return run_id


def cancel(run_id: str | None = None, root: Path | None = None) -> bool:
    """Ask the (given or current) job to stop between batches; False when nothing is running."""
    root = Path(root or runs_dir())
    run_id = run_id or current_run_id(root)
    status = job_status(run_id, root) if run_id else None
    if not status or status.get("state") not in ACTIVE_STATES:
        return False
    request_cancel(root / run_id)
    return True


def wait(run_id: str, timeout: float = 600, root: Path | None = None, poll: float = 0.5) -> dict:
    """Block until the job leaves the running states (for the CLI and tests)."""
    deadline = time.time() + timeout
    while True:
        status = job_status(run_id, root) or {}
        if status.get("state") not in ACTIVE_STATES or time.time() > deadline:
            return status
        time.sleep(poll)


def list_runs(root: Path | None = None, limit: int = 20) -> list[dict]:
    """Recent runs' statuses, newest first."""
    root = Path(root or runs_dir())
    if not root.is_dir():
        return []
    names = sorted((p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True)
    return [status for name in names[:limit] if (status := job_status(name, root))]
