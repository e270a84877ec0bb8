"""A run directory's files: status.json, history.csv, batches.csv and the cancel flag."""

from __future__ import annotations

import csv
import io
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from fmnist_core.config import TrainConfig
from fmnist_core.fsutil import atomic_write_json, read_json

STATUS_FILE = "status.json"
HISTORY_FILE = "history.csv"
BATCHES_FILE = "batches.csv"
CANCEL_FILE = "cancel"
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "elapsed_s")
MAX_BATCH_POINTS = 400  # keeps batches.csv small however long the run


class TrainingCancelled(RuntimeError):
    """The user asked the run to stop; nothing was registered."""


def request_cancel(run_dir: Path) -> None:
    """Ask a running training to stop at the next batch boundary."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / CANCEL_FILE).touch()


def read_status(run_dir: Path) -> dict | None:
    """The run's status.json, or None when absent or unreadable."""
    try:
        return read_json(Path(run_dir) / STATUS_FILE)
    except (OSError, ValueError):
        return None


def read_history(run_dir: Path, name: str = HISTORY_FILE) -> list[dict]:
    """Rows of history.csv (or batches.csv) as dicts of floats; [] while none exist."""
    try:
        text = (Path(run_dir) / name).read_text(encoding="utf-8")
    except OSError:
        return []
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        rows.append({key: float(value) if value not in ("", None) else None for key, value in row.items()})
    return rows


def csv_text(columns: tuple[str, ...], rows: list[dict]) -> str:
    """Rows (dicts) as CSV text with a header; missing or None values are empty cells."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


class RunReporter:
    """Owns a run directory's status.json; every write is atomic and carries a timestamp."""

    def __init__(self, run_dir: Path, config: TrainConfig):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.started = time.time()
        self.status: dict = {
            "run_id": self.run_dir.name, "state": "starting", "pid": os.getpid(), "config": config.to_dict(),
            "started_at": datetime.now(UTC).isoformat(), "epoch": 0, "epochs": config.total_epochs,
            "batch": 0, "batches_per_epoch": 0, "progress": 0.0, "elapsed_s": 0.0, "eta_s": None,
            "message": "loading data", "model_id": None, "error": None,
        }
        self.write()

    def write(self, **changes) -> None:
        """Merge changes into the status and write it."""
        self.status.update(changes)
        self.status["elapsed_s"] = round(time.time() - self.started, 2)
        self.status["updated_at"] = datetime.now(UTC).isoformat()
        atomic_write_json(self.run_dir / STATUS_FILE, self.status)


def rows_up_to(run_dir: Path, name: str, epochs: int) -> list[dict]:
    """The rows of history.csv or batches.csv that belong to the first `epochs` epochs (a resumed run's past)."""
    return [row for row in read_history(run_dir, name) if row.get("epoch") is not None and row["epoch"] <= epochs]
