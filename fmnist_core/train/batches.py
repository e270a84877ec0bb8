"""The batch stream a run fits on: an endless shuffled tf.data stream, the validation tail, run-length batches."""

from __future__ import annotations

import numpy as np

from fmnist_core.config import TrainConfig
from fmnist_core.data import to_model_input_tensor

VALIDATION_BATCH = 1000


def batch_count(images: int, batch_size: int) -> int:
    """Batches in one pass over `images` images (the last one may be short)."""
    return -(-images // batch_size)


def endless_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int | None = None,
                    first_pass: int = 0, alternating_flips: bool = False, flip_phase: int = 0):
    """uint8 images and labels as an endless tf.data stream of model-input batches, reshuffled each pass if seeded.

    Endless, with fit told the steps per epoch, so that Keras keeps one iterator for the whole fit: with
    arrays it starts a new one each epoch, and here both cores then sat idle for about 8 s at every epoch
    boundary (BENCHMARKS.md). Each pass draws a permutation of the indices (from the seed and the pass
    number) and gathers whole batches from it: tf.data's own shuffle moved the images one at a time and
    took 15 % of the CPU of a training step. Scaling per batch spares a 188 MB float copy of the images.
    A resumed run starts at the pass (epoch) where it stopped, so it sees the same order as one that never did.
    With alternating flips (seeded only), a random half of the images is mirrored in even passes and the
    other half in odd ones, so that every two epochs show each image both ways (Jordan 2024, "airbench");
    `flip_phase` counts the epochs of earlier streams (the last stage starts a stream per epoch).
    """
    import tensorflow as tf

    count = len(images)
    all_images, all_labels = tf.constant(images), tf.constant(labels)
    batches_per_pass = batch_count(count, batch_size)

    def one_pass(pass_number):
        if seed is None:
            order = tf.range(count)
        else:
            keys = tf.random.stateless_uniform([count], seed=tf.stack([tf.constant(seed, tf.int64), pass_number]))
            order = tf.argsort(keys)
        return tf.data.Dataset.range(batches_per_pass).map(
            lambda batch: (order[batch * batch_size:(batch + 1) * batch_size], pass_number))

    flip_parity = (None if seed is None or not alternating_flips else
                   tf.random.stateless_uniform([count], seed=[seed, -1], maxval=2, dtype=tf.int64))

    def gathered(indices, pass_number):
        batch = tf.gather(all_images, indices)
        if flip_parity is not None:
            mirrored = tf.equal((tf.gather(flip_parity, indices) + pass_number + flip_phase) % 2, 1)
            batch = tf.where(mirrored[:, None, None], tf.reverse(batch, axis=[2]), batch)
        return to_model_input_tensor(batch), tf.gather(all_labels, indices)

    data = tf.data.Dataset.range(first_pass, 2**62).flat_map(one_pass).map(gathered).prefetch(2)
    # Without tf.data's autotuning thread: tearing down an iterator waits for it, and here that wait
    # took from seconds to half a minute of idle cores at the end of a fit (BENCHMARKS.md).
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.with_options(options)


# A run shorter than this many optimizer steps trains with smaller batches (run_length_batch_size).
MIN_RUN_STEPS = 200
MIN_RUN_LENGTH_BATCH = 32


def run_length_batch_size(n_fit: int, config: TrainConfig) -> int:
    """The batch size a run trains with: the configured one, halved (not below 32) until the run takes 200 steps.

    6,000 images for 3 epochs in batches of 256 are 66 steps: too few for the tutorial net (78 %; 83.7 % in
    batches of 64, 267 steps), and the batch-norm nets ended 2-3 points under their batch-64 runs in about
    the same time (BENCHMARKS.md). Full-size runs and the presets keep their batch size.
    """
    batch_size = config.batch_size
    while batch_size > MIN_RUN_LENGTH_BATCH and batch_count(n_fit, batch_size) * config.total_epochs < MIN_RUN_STEPS:
        batch_size = max(MIN_RUN_LENGTH_BATCH, batch_size // 2)
    return batch_size


def fit_split(n_images: int, config: TrainConfig) -> tuple[int, int, int, int]:
    """Images fitted and held out for validation (the tail), the batch size trained with, and batches per epoch."""
    n_val = int(n_images * config.validation_split)
    n_fit = n_images - n_val
    batch_size = run_length_batch_size(n_fit, config)
    return n_fit, n_val, batch_size, batch_count(n_fit, batch_size)


def fit_arguments(images: np.ndarray, labels: np.ndarray, config: TrainConfig, seed: int, first_pass: int = 0,
                  flip_phase: int = 0) -> dict:
    """fit's data arguments: the training stream and, when the config holds out a share, the validation one."""
    n_fit, n_val, batch_size, steps_per_epoch = fit_split(len(images), config)
    arguments = {"x": endless_batches(images[:n_fit], labels[:n_fit], batch_size, seed, first_pass,
                                      alternating_flips=config.alternating_flips, flip_phase=flip_phase),
                 "steps_per_epoch": steps_per_epoch,
                 "shuffle": False}  # the stream shuffles itself (Keras would only warn that it cannot)
    if n_val:  # the tail, as Keras's validation_split would take it
        arguments["validation_data"] = endless_batches(images[n_fit:], labels[n_fit:], VALIDATION_BATCH)
        arguments["validation_steps"] = batch_count(n_val, VALIDATION_BATCH)
    return arguments
