"""The Train page's estimate: timed once per network on this machine, replaced by a finished run's pace, and right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from fmnist_core import estimate
from fmnist_core.config import PRESETS
from tests.conftest import REPO_ROOT


def test_the_timing_is_cached_and_a_finished_run_replaces_it(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(estimate, "time_steps", lambda config, batch, precision: calls.append(batch) or 0.05)
    config = PRESETS["quick"]
    first = estimate.estimate(config, root=tmp_path)
    assert calls == [256] and first.timing.source == "timed steps"
    assert first.steps == 235 * 3 and first.seconds > first.steps * 0.05
    assert "on this machine" in first.describe() and "timed steps" in first.describe()
    estimate.estimate(config, root=tmp_path)
    assert calls == [256]  # cached: not timed again
    estimate.record_finished_run(config, 256, first_precision(config), 705, 70.5, "run-1", root=tmp_path)
    again = estimate.estimate(config, root=tmp_path)
    assert calls == [256] and again.timing.source == "finished run run-1"
    assert again.timing.seconds_per_step == 0.1


def first_precision(config) -> str:
    from fmnist_core.train import resolve_precision

    return resolve_precision(config.precision)


def test_quick_takes_what_the_estimate_said_within_half_again(tmp_path):
    # quick itself, not a shorter run: on a fast CPU a run of seconds is mostly start-up, which the estimate
    # counts as a fixed 12 s measured on a slow one (BENCHMARKS.md, "Estimates").
    arguments = ["--preset", "quick"]
    from fmnist_core.cli import build_parser, train_config_from_args

    config = train_config_from_args(build_parser().parse_args(["train", *arguments]))
    expected = estimate.estimate(config, root=tmp_path / "runs")
    env = {**os.environ, "FMNIST_RUNS_DIR": str(tmp_path / "runs"), "FMNIST_MODELS_DIR": str(tmp_path / "models")}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "fmnist_core", "train", *arguments, "--json"], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=900)
    real = time.perf_counter() - started
    print(f"estimated {expected.seconds:.0f} s ({expected.timing.seconds_per_step * 1000:.0f} ms a step), took {real:.0f} s")
    assert result.returncode == 0, result.stderr[-2000:]
    assert 1 / 1.5 <= expected.seconds / real <= 1.5, f"estimated {expected.seconds:.0f} s, took {real:.0f} s"
    timings = json.loads((tmp_path / "runs" / estimate.TIMINGS_FILE).read_text())
    assert any(entry["source"].startswith("finished run") for entry in timings.values())


def test_no_timing_while_a_job_runs_unless_one_is_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(estimate, "time_steps", lambda config, batch, precision: 0.05)
    assert estimate.estimate(PRESETS["quick"], root=tmp_path, time_if_missing=False) is None
    assert not (tmp_path / estimate.TIMINGS_FILE).exists()
    estimate.estimate(PRESETS["quick"], root=tmp_path)
    assert estimate.estimate(PRESETS["quick"], root=tmp_path, time_if_missing=False).timing.seconds_per_step == 0.05
