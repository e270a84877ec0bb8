"""Fashion-MNIST workbench core: data, models, training, evaluation, registry, preprocessing, CLI.

Importing this package is cheap: TensorFlow/Keras load only when a function that needs them runs.
"""

import os
import platform

__version__ = "0.1.0"

# TensorFlow turns its oneDNN kernels on by itself only on x86 CPUs with AVX-512 VNNI/BF16 or AMX; on
# others (this project's AMD EPYC Zen 3 CI machine) it runs plain Eigen kernels, which took 30-40 % more CPU
# time per training step and per test-set pass here (BENCHMARKS.md). Set before TensorFlow is first imported,
# which every entry point (CLI, app, training jobs, tests, benchmarks) does through this package; an explicit
# TF_ENABLE_ONEDNN_OPTS=0 still wins.
if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
