"""Where a run computes and in which precision: the tf.distribute strategy, the CPU's bfloat16 units, dtype policies.

A new precision rule goes into resolve_precision.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def pick_strategy():
    """MirroredStrategy when several GPUs (or logical devices via FMNIST_DEVICES) exist, else the default."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    wanted = os.environ.get("FMNIST_DEVICES")  # e.g. "/cpu:0,/cpu:1" for tests of the multi-device path
    if wanted:
        return tf.distribute.MirroredStrategy(devices=wanted.split(","))
    return tf.distribute.get_strategy()


# /proc/cpuinfo names of the bfloat16 matrix instructions, by kind: with AMX tiles (Intel) `standard` trained
# 2.4x faster than with AVX-512 BF16 alone (AMD Zen 4) (BENCHMARKS.md, "Training presets").
BFLOAT16_CPU_FLAGS = {"amx_bf16": "amx", "avx512_bf16": "avx512_bf16"}


def cpu_bfloat16_units(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """Which bfloat16 matrix instructions this CPU has: "amx", "avx512_bf16", or None (none, or unknown)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return next((kind for flag, kind in BFLOAT16_CPU_FLAGS.items() if flag in flags), None)


def cpu_has_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AMX or AVX-512 BF16); False where unknown."""
    return cpu_bfloat16_units(cpuinfo) is not None


def resolve_precision(precision: str) -> str:
    """The dtype policy a run trains with: "auto" becomes bfloat16 on a CPU with bfloat16 units, else float32."""
    if precision != "auto":
        return precision
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return "float32"  # not measured on GPUs: keep what the shipped models were trained with
    return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"


@contextlib.contextmanager
def dtype_policy(policy: str):
    """Build layers under a Keras dtype policy, restoring the previous one after (Keras keeps it per thread)."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
