"""The Train page's estimate against the real run, on this machine.

    python -m bench.estimates                       # quick, and a short run of it (12,800 images, 1 epoch)
    python -m bench.estimates --entries quick,standard

For each entry: the estimate the Train page would show (fmnist_core.estimate, timed afresh in a private runs
directory), then the run itself as the Train page's job runs it (`python -m fmnist_core train`, its own
process), timed from start to exit. Reported: both, and their ratio. Writes bench/results/estimates.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ENTRIES = {"quick": ["--preset", "quick"], "short": ["--preset", "quick", "--epochs", "1", "--subset", "12800"],
           "standard": ["--preset", "standard"], "best": ["--preset", "best"]}


def config_of(arguments: list[str]):
    """The TrainConfig the CLI makes of these arguments."""
    from fmnist_core.cli import build_parser, train_config_from_args

    return train_config_from_args(build_parser().parse_args(["train", *arguments]))


def main() -> None:
    """Estimate, run, compare, for each entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", default="quick,short")
    args = parser.parse_args()
    from fmnist_core.estimate import cpu_model, estimate

    results = {"machine": cpu_model(), "date": time.strftime("%Y-%m-%d"), "command": "python -m bench.estimates",
               "entries": {}}
    for name in args.entries.split(","):
        with tempfile.TemporaryDirectory() as scratch:
            runs, models = Path(scratch) / "runs", Path(scratch) / "models"
            started = time.perf_counter()
            expected = estimate(config_of(ENTRIES[name]), root=runs)
            timing_seconds = time.perf_counter() - started
            env = {**os.environ, "FMNIST_RUNS_DIR": str(runs), "FMNIST_MODELS_DIR": str(models)}
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "fmnist_core", "train", *ENTRIES[name], "--json"], cwd=REPO_ROOT,
                           env=env, check=True, capture_output=True)
            real = time.perf_counter() - started
        row = {"arguments": " ".join(ENTRIES[name]), "estimate_s": round(expected.seconds, 1),
               "steps": expected.steps, "ms_per_step": round(expected.timing.seconds_per_step * 1000, 1),
               "timing_took_s": round(timing_seconds, 1), "real_s": round(real, 1),
               "ratio_estimate_to_real": round(expected.seconds / real, 2)}
        results["entries"][name] = row
        print(name, json.dumps(row), flush=True)
    out = REPO_ROOT / "bench" / "results" / "estimates.json"
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"\n{results['machine']}, {results['date']}\n\n| run | estimate | real (process start to exit) | estimate / real "
          "| steps, ms per step (timed) | timing took |\n|---|---|---|---|---|---|")
    for row in results["entries"].values():
        print(f"| `train {row['arguments']}` | {row['estimate_s']:.0f} s | {row['real_s']:.0f} s | "
              f"{row['ratio_estimate_to_real']:.2f} | {row['steps']:,}, {row['ms_per_step']:.0f} | "
              f"{row['timing_took_s']:.0f} s |")


if __name__ == "__main__":
    main()
