"""Short runs of every architecture (6,000 images, 3 epochs, Train-page defaults otherwise), several seeds.

    python -m bench.short_runs [--seeds 42 43 44] [--images 6000] [--epochs 3] [--architectures A B]

The run a person tries first for a quick experiment. Before batch-norm statistics were re-estimated at the
end of training, fmnist-net scored 10.17 % here (chance). Goes through fmnist_core.train.train, the code the
Train page's job and the CLI run. Writes bench/results/short_runs.json and prints medians and spreads; with
--architectures, only those are run and the file keeps the other architectures' rows of the same settings.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    """Train each architecture with each seed; report test accuracy median, min, max and seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--architectures", nargs="+", help="only these (default: every architecture)")
    args = parser.parse_args()

    from fmnist_core.config import TrainConfig
    from fmnist_core.data import load_dataset
    from fmnist_core.models import ARCHITECTURES
    from fmnist_core.train import train

    dataset = load_dataset()
    rows = []
    for architecture in sorted(args.architectures or ARCHITECTURES):
        accuracies, seconds = [], []
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as scratch:
                started = time.perf_counter()
                config = TrainConfig(architecture=architecture, epochs=args.epochs, subset=args.images, seed=seed)
                status = train(config, Path(scratch) / "run", dataset=dataset, models_root=Path(scratch) / "models")
                seconds.append(time.perf_counter() - started)
                accuracies.append(status["test_accuracy"])
        rows.append({"architecture": architecture, "accuracies": accuracies,
                     "median": float(np.median(accuracies)), "min": min(accuracies), "max": max(accuracies),
                     "seconds_median": round(float(np.median(seconds)), 1)})
        print(json.dumps(rows[-1]), flush=True)
    out = REPO_ROOT / "bench" / "results" / "short_runs.json"
    rows = kept_rows(out, args, {row["architecture"] for row in rows}) + rows
    rows.sort(key=lambda row: row["architecture"])
    out.write_text(json.dumps({"images": args.images, "epochs": args.epochs, "seeds": args.seeds, "rows": rows},
                              indent=1) + "\n", encoding="utf-8")
    print("\n| architecture | test accuracy, median (min-max) | seconds (median) |\n|---|---|---|")
    for row in rows:
        print(f"| {row['architecture']} | {row['median']:.2%} ({row['min']:.2%}-{row['max']:.2%}) | "
              f"{row['seconds_median']} |")


def kept_rows(out: Path, args: argparse.Namespace, rerun: set[str]) -> list[dict]:
    """The earlier file's rows for architectures not run now, when it was made with the same settings."""
    if not out.is_file():
        return []
    earlier = json.loads(out.read_text(encoding="utf-8"))
    if (earlier.get("images"), earlier.get("epochs"), earlier.get("seeds")) != (args.images, args.epochs, args.seeds):
        return []
    return [row for row in earlier.get("rows", []) if row["architecture"] not in rerun]


if __name__ == "__main__":
    main()
