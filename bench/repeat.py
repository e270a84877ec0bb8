"""Several runs of each training entry, interleaved, in one session: medians and spread beside the baseline.

    python -m bench.repeat --entries baseline,quick --runs 3

Each run is bench.run's entry (its own process; presets go through fmnist_core.train.train, the code the
CLI and the Train page's job run). Runs are interleaved (baseline, quick, baseline, quick, ...) so that a
slow spell of this noisy machine hits every entry alike. Writes bench/results/repeat.json.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.run import machine_description, run_entry

REPO_ROOT = Path(__file__).resolve().parent.parent


def markdown_table(summary: dict[str, dict]) -> str:
    """Medians with their spread, and each entry's median wall and CPU time over the baseline's."""
    baseline = summary.get("baseline")
    lines = ["| entry | test accuracy, median (min-max) | train seconds, median (min-max) | x baseline | "
             "train CPU seconds, median (min-max) | x baseline (CPU) |", "|---|---|---|---|---|---|"]
    for entry, row in summary.items():
        ratio = f"{row['seconds_median'] / baseline['seconds_median']:.2f}" if baseline else "-"
        cpu_ratio = f"{row['cpu_seconds_median'] / baseline['cpu_seconds_median']:.2f}" if baseline else "-"
        lines.append(f"| {entry} | {row['accuracy_median']:.2%} ({row['accuracy_min']:.2%}-{row['accuracy_max']:.2%}) "
                     f"| {row['seconds_median']:.0f} ({row['seconds_min']:.0f}-{row['seconds_max']:.0f}) | {ratio} "
                     f"| {row['cpu_seconds_median']:.0f} ({row['cpu_seconds_min']:.0f}-{row['cpu_seconds_max']:.0f}) "
                     f"| {cpu_ratio} |")
    return "\n" + "\n".join(lines)


def main() -> None:
    """Run, then print medians, min-max and the ratio of median times to the baseline's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", default="baseline,quick")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    entries = args.entries.split(",")
    results: dict[str, list[dict]] = {entry: [] for entry in entries}
    for run in range(args.runs):
        for entry in entries:
            result = run_entry(entry, quick=False)
            results[entry].append({key: result[key] for key in ("test_accuracy", "train_seconds", "train_cpu_seconds")})
            print(f"run {run + 1} {entry}: {result['test_accuracy']:.4f} in {result['train_seconds']:.0f} s "
                  f"({result['train_cpu_seconds']:.0f} CPU s)", flush=True)
    summary = {}
    for entry, runs in results.items():
        summary[entry] = {}
        for name, key in (("accuracy", "test_accuracy"), ("seconds", "train_seconds"),
                          ("cpu_seconds", "train_cpu_seconds")):
            values = [r[key] for r in runs]
            summary[entry].update({f"{name}_median": float(np.median(values)), f"{name}_min": min(values),
                                   f"{name}_max": max(values)})
    print(markdown_table(summary))
    out = REPO_ROOT / "bench" / "results" / "repeat.json"
    out.write_text(json.dumps({"machine": machine_description(), "created_at": datetime.now(UTC).isoformat(),
                               "runs": results, "summary": summary}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
