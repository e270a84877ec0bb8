"""Fashion-MNIST workbench core: data, models, training, evaluation, registry, preprocessing, CLI.

Importing this package is cheap: TensorFlow/Keras load only when a function that needs them runs.
"""

import os

# TensorFlow turns its oneDNN kernels on by itself only on some x86 CPUs: on a 2-core AMD EPYC (AVX2) they
# were off, and on they made a training step of fmnist-net 1.47x and of fmnist-resnet 1.49x faster
# (BENCHMARKS.md, "Training presets"). TensorFlow reads this once, at its own import; a user's setting wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
