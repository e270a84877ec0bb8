"""Named architectures, each a function returning an uncompiled keras.Model on 28x28x1 inputs in [0, 1]."""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from fmnist_core.data import IMAGE_SIZE, NUM_CLASSES

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)


def augmentation_layers(max_shift: float = 0.06, erasing: float = 0.0) -> list[keras.layers.Layer]:
    """Random horizontal flips and shifts, and optionally random erasing; active only while training."""
    augmenters = [
        layers.RandomFlip("horizontal", dtype="float32", name="augment_flip"),
        layers.RandomTranslation(max_shift, max_shift, fill_mode="constant", fill_value=0.0, dtype="float32",
                                 name="augment_shift"),
    ]
    if erasing > 0:
        # Zhong et al. 2017: erase a random rectangle (2-33 % of the image) with noise in a fraction of images;
        # a (p, p) factor makes p the probability itself, not the upper bound of a random one.
        augmenters.append(layers.RandomErasing(factor=(erasing, erasing), value_range=(0.0, 1.0),
                                               dtype="float32", name="augment_erase"))
    return augmenters


def _image_input() -> keras.KerasTensor:
    return keras.Input(shape=INPUT_SHAPE, name="image")


def _probabilities(hidden: keras.KerasTensor) -> keras.KerasTensor:
    # Float32 even when the rest computes in bfloat16: a bfloat16 softmax rounds 1 - p to 2^-8 near p = 1.
    return layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities")(hidden)


def seed_basic() -> keras.Model:
    """The classic tutorial CNN: Conv32 -> Pool -> Conv64 -> Pool -> Dense128 -> Dense10."""
    inputs = hidden = _image_input()
    hidden = layers.Conv2D(32, 3, activation="relu")(hidden)
    hidden = layers.MaxPooling2D()(hidden)
    hidden = layers.Conv2D(64, 3, activation="relu", name="last_conv")(hidden)
    hidden = layers.MaxPooling2D()(hidden)
    hidden = layers.Flatten()(hidden)
    hidden = layers.Dense(128, activation="relu")(hidden)
    outputs = _probabilities(hidden)
    return keras.Model(inputs, outputs, name="seed_basic")


def seed_lenet() -> keras.Model:
    """LeNet-style tutorial net with batch norm and dropout."""
    inputs = hidden = _image_input()
    hidden = layers.Conv2D(6, 5, padding="same", activation="relu")(hidden)
    hidden = layers.BatchNormalization()(hidden)
    hidden = layers.MaxPooling2D()(hidden)
    hidden = layers.Conv2D(16, 5, padding="same", activation="relu")(hidden)
    hidden = layers.BatchNormalization(name="last_conv")(hidden)
    hidden = layers.MaxPooling2D()(hidden)
    hidden = layers.Flatten()(hidden)
    hidden = layers.Dense(128, activation="relu")(hidden)
    hidden = layers.Dropout(0.2)(hidden)
    hidden = layers.Dense(32, activation="relu")(hidden)
    hidden = layers.Dropout(0.2)(hidden)
    outputs = _probabilities(hidden)
    return keras.Model(inputs, outputs, name="seed_lenet")


def _conv_bn_relu(hidden: keras.KerasTensor, filters: int, name: str | None = None) -> keras.KerasTensor:
    hidden = layers.Conv2D(filters, 3, padding="same", use_bias=False)(hidden)
    hidden = layers.BatchNormalization()(hidden)
    return layers.ReLU(name=name)(hidden)


def vgg_bn(widths: tuple[int, ...], depths: tuple[int, ...], dropout: float, name: str,
           flatten: bool = False) -> keras.Model:
    """A VGG-style net: stages of 3x3 conv + BN + ReLU, max-pool between stages, global average pool.

    The first stage runs at full 28x28 resolution, where each conv costs 4x a 14x14 one, so it gets
    one conv only: that is where the CPU time goes (measured in BENCHMARKS.md).
    """
    inputs = hidden = _image_input()
    for stage, (width, depth) in enumerate(zip(widths, depths)):
        if stage:
            hidden = layers.MaxPooling2D()(hidden)
        for index in range(depth):
            is_last = stage == len(widths) - 1 and index == depth - 1
            hidden = _conv_bn_relu(hidden, width, name="last_conv" if is_last else None)
    # Flatten keeps where things are (fast to learn, more weights); global pooling generalises better.
    hidden = layers.Flatten()(hidden) if flatten else layers.GlobalAveragePooling2D()(hidden)
    hidden = layers.Dropout(dropout)(hidden)
    outputs = _probabilities(hidden)
    return keras.Model(inputs, outputs, name=name.replace("-", "_"))


def lite_net(widths: tuple[int, int, int] = (16, 64, 128)) -> keras.Model:
    """The cheapest net that reaches 91.5 % in three epochs here: built for accuracy per CPU second.

    At 28x28 a plain 16-channel conv without batch norm (the full-resolution layer is where CPU time
    goes, and BN there costs more than the conv); BN convs at 14x14 and 7x7; a flatten head without
    dropout, because three epochs underfit rather than overfit (measured in BENCHMARKS.md).
    """
    inputs = hidden = _image_input()
    hidden = layers.Conv2D(widths[0], 3, padding="same", activation="relu")(hidden)
    hidden = layers.MaxPooling2D()(hidden)
    hidden = _conv_bn_relu(hidden, widths[1])
    hidden = layers.MaxPooling2D()(hidden)
    hidden = _conv_bn_relu(hidden, widths[2], name="last_conv")
    hidden = layers.Flatten()(hidden)
    outputs = _probabilities(hidden)
    return keras.Model(inputs, outputs, name="fmnist_lite")


ARCHITECTURES: dict[str, Callable[[], keras.Model]] = {
    "seed-basic": seed_basic,
    "seed-lenet": seed_lenet,
    "fmnist-lite": lite_net,
    "fmnist-small": lambda: vgg_bn((32, 64, 128), (1, 1, 1), 0.3, "fmnist-small", flatten=True),
    "fmnist-net": lambda: vgg_bn((32, 64, 128), (1, 2, 2), 0.3, "fmnist-net"),
    "fmnist-wide": lambda: vgg_bn((48, 96, 192), (1, 2, 2), 0.3, "fmnist-wide"),
}
DEFAULT_ARCHITECTURE = "fmnist-net"


def build_model(architecture: str, augment: bool = False, erasing: float = 0.0) -> keras.Model:
    """Build a named architecture; with augment, the training-only augmentation layers wrap it.

    The network is a nested model behind the augmentation layers, so its weights (in the same order)
    are all the wrapper has, and an inference copy is the bare network with those weights.
    """
    try:
        factory = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r} (choose from {', '.join(ARCHITECTURES)})") from None
    network = factory()
    if not augment:
        return network
    inputs = hidden = _image_input()
    for layer in augmentation_layers(erasing=erasing):
        hidden = layer(hidden)
    return keras.Model(inputs, network(hidden), name=network.name)
