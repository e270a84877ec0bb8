"""Time of one training step, and (with --profile) which TensorFlow ops the time goes to.

    python -m bench.step_profile fmnist-lite fmnist-net --plain --fused       # ms per step, both batch norms
    python -m bench.step_profile fmnist-lite --fused --profile                # and the 25 costliest ops

Random images through the training stream (fmnist_core.train.endless_batches), batch 256, the precision
that training would pick ("auto"), the same compile as train; each variant in its own process so that one
does not warm another's caches. The first 10 steps (tracing) are not timed.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import fmnist_core  # noqa: F401  (sets TensorFlow's oneDNN default; TensorFlow reads it when it loads)

TIMED_STEPS = 60
PROFILED_STEPS = 20


def op_milliseconds(logdir: Path) -> collections.Counter:
    """Host time per op name (ms, summed over the profiled steps) from a tf.profiler trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = sorted(logdir.glob("**/*.xplane.pb"))[-1]
    space = xplane_pb2.XSpace()
    space.ParseFromString(path.read_bytes())
    totals: collections.Counter = collections.Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if "TraceMe" in line.name or "python" in line.name.lower():
                continue
            for event in line.events:
                totals[names.get(event.metadata_id, "?")] += event.duration_ps / 1e9
    return totals


def measure(architecture: str, fused: bool, augment: bool, precision: str, profile: bool) -> dict:
    """Wall and CPU ms per training step in this process, and the costliest ops when profiling."""
    import keras
    import tensorflow as tf

    from fmnist_core.models import build_model
    from fmnist_core.train import dtype_policy, endless_batches, resolve_precision

    policy = resolve_precision(precision)
    with dtype_policy(policy):
        model = build_model(architecture, augment=augment, erasing=0.5 if augment else 0.0, fused_batch_norm=fused)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    data = endless_batches(rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8), rng.integers(0, 10, 60000), 256, 1)
    model.fit(data, steps_per_epoch=10, epochs=1, verbose=0)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(data, steps_per_epoch=TIMED_STEPS, epochs=1, verbose=0)
    result = {"architecture": architecture, "batch_norm": "fused" if fused else "keras", "augment": augment,
              "precision": policy, "wall_ms": 1000 * (time.perf_counter() - wall) / TIMED_STEPS,
              "cpu_ms": 1000 * (time.process_time() - cpu) / TIMED_STEPS}
    if profile:
        with tempfile.TemporaryDirectory() as logdir:
            tf.profiler.experimental.start(logdir)
            model.fit(data, steps_per_epoch=PROFILED_STEPS, epochs=1, verbose=0)
            tf.profiler.experimental.stop()
            totals = op_milliseconds(Path(logdir))
        result["top_ops_ms_per_step"] = [[name, round(ms / PROFILED_STEPS, 2)] for name, ms in totals.most_common(25)]
    return result


def main() -> None:
    """Run each architecture x batch-norm variant in its own process and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("architectures", nargs="+")
    parser.add_argument("--plain", action="store_true", help="Keras's BatchNormalization")
    parser.add_argument("--fused", action="store_true", help="fmnist_core.models.FusedBatchNormalization")
    parser.add_argument("--augment", action="store_true", help="with flips, shifts and random erasing")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.architectures[0], args.fused, args.augment, args.precision, args.profile)))
        return
    variants = [fused for fused, wanted in ((False, args.plain), (True, args.fused)) if wanted] or [True]
    print("| architecture | batch norm | augmentation | precision | wall ms / step | CPU ms / step |")
    print("|---|---|---|---|---|---|")
    for architecture in args.architectures:
        for fused in variants:
            command = [sys.executable, "-m", "bench.step_profile", architecture, "--one", "--precision", args.precision]
            command += ["--fused"] * fused + ["--augment"] * args.augment + ["--profile"] * args.profile
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            print(f"| {architecture} | {result['batch_norm']} | {'on' if args.augment else 'off'} | {result['precision']} "
                  f"| {result['wall_ms']:.1f} | {result['cpu_ms']:.1f} |", flush=True)
            for name, ms in result.get("top_ops_ms_per_step", []):
                print(f"    {ms:7.2f} ms/step  {name[:120]}")


if __name__ == "__main__":
    main()
