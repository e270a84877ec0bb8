"""Fashion-MNIST workbench core: data, models, training, evaluation, registry, preprocessing, CLI.

Importing this package is cheap: TensorFlow/Keras load only when a function that needs them runs.
"""

__version__ = "0.1.0"
