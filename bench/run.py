"""Side-by-side training benchmark: the seed tutorial baseline vs our presets, in one run on one machine.

    python -m bench.run                      # baseline + quick + standard on the full data (~15 min here)
    python -m bench.run --entries baseline,quick,standard,best
    python -m bench.run --quick              # sanity mode for CI: tiny subsets, one epoch, ~2 min

Each entry runs in its own process (peak memory is per entry). Writes JSON, a plot of accuracy vs
training time, and prints a Markdown table with ratios to the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def machine_description() -> str:
    """CPU model, core count and memory, for the record."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                             if line.startswith("MemTotal")))
    except (OSError, StopIteration, ValueError):
        memory_kb = 0
    return f"{cpu}, {os.cpu_count()} cores, {memory_kb / 1024 / 1024:.0f} GiB RAM, no GPU"


def run_entry(entry: str, quick: bool) -> dict:
    """Run bench.worker for one entry and parse its JSON line."""
    command = [sys.executable, "-m", "bench.worker", entry]
    if quick:
        command += ["--epochs", "1", "--subset", "2000", "--latency-calls", "30", "--photos", "20"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    if completed.returncode != 0:
        raise RuntimeError(f"{entry} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def markdown_table(results: list[dict]) -> str:
    """The BENCHMARKS.md table, with time and throughput ratios to the baseline."""
    baseline = next((r for r in results if r["entry"] == "baseline"), None)
    lines = ["| entry | architecture | params | epochs | test acc. | train time (s) | x baseline time | images/s "
             "| peak RSS (MB) | eval 10k (s) | 1 image (ms, median / p95) | 400px photo (ms, median) "
             "| many photos (ms/image) | Classify page upload incl. heat map (ms) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ratio = f"{r['train_seconds'] / baseline['train_seconds']:.2f}" if baseline else "–"
        lines.append(
            f"| {r['entry']} | {r['config']['architecture']} | {r['params']:,} | {r['config']['epochs']} "
            f"| {r['test_accuracy']:.2%} | {r['train_seconds']:.0f} | {ratio} | {r['images_per_second']:.0f} "
            f"| {r['peak_rss_mb']:.0f} | {r['eval_10k_seconds']:.2f} "
            f"| {r['latency_array_ms']['median']:.1f} / {r['latency_array_ms']['p95']:.1f} "
            f"| {r['latency_photo_ms']['median']:.1f} | {r['batch_photo_ms_per_image']:.2f} "
            f"| {_median(r.get('page_upload_ms'))} |")
    if baseline and baseline.get("tutorial_predict_ms"):
        lines.append(f"\nTutorial-style `model.predict` on one image: "
                     f"{baseline['tutorial_predict_ms']['median']:.1f} ms median (baseline row uses our compiled call).")
    return "\n".join(lines)


def _median(latency: dict | None) -> str:
    return f"{latency['median']:.0f}" if latency else "–"


def plot(results: list[dict], path: Path) -> None:
    """Accuracy vs training time, one point per entry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for r in results:
        axes.scatter(r["train_seconds"], r["test_accuracy"] * 100, s=40)
        axes.annotate(r["entry"], (r["train_seconds"], r["test_accuracy"] * 100), textcoords="offset points",
                      xytext=(5, 5))
    axes.set_xlabel("training wall time (s)")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title("Accuracy vs training time (this machine)")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    """Run the entries, write JSON + plot, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", default="baseline,quick,standard")
    parser.add_argument("--quick", action="store_true", help="tiny subsets: a sanity check, not a measurement")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for entry in args.entries.split(","):
        print(f"bench: running {entry}{' (quick mode)' if args.quick else ''}…", file=sys.stderr, flush=True)
        results.append(run_entry(entry, args.quick))
        print(f"bench: {entry}: {results[-1]['test_accuracy']:.4f} in {results[-1]['train_seconds']:.0f} s",
              file=sys.stderr, flush=True)
    report = {"machine": machine_description(), "quick_mode": args.quick,
              "date": datetime.now(UTC).isoformat(), "command": "python -m bench.run " + " ".join(
                  argv if argv is not None else sys.argv[1:]), "results": results}
    name = "quick" if args.quick else "full"
    (args.out / f"train_{name}.json").write_text(json.dumps(report, indent=2))
    plot(results, args.out / f"train_{name}.png")
    print(f"Machine: {report['machine']}\n")
    print(markdown_table(results))
    return 0


def table_from_json(path: Path) -> str:
    """Re-print the table of a saved run."""
    report = json.loads(Path(path).read_text())
    return f"Machine: {report['machine']}\n\n" + markdown_table(report["results"])


if __name__ == "__main__":
    sys.exit(main())
