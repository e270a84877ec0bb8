"""Named architectures, each a function returning an uncompiled keras.Model on 28x28x1 inputs in [0, 1]."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
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


class FusedBatchNormalization(layers.BatchNormalization):
    """Keras's BatchNormalization computed by TensorFlow's fused kernel: one op forward, one backward.

    Keras 3 normalises with about ten separate element-wise ops each way (cast to float32, mean, squared
    difference, mean, scale, shift, cast back); here they took half of every training step (fmnist-net: 145
    vs 64 ms per step of 256 images, BENCHMARKS.md). Same weights, same moving-average update, so a network
    trained with it is saved with the plain layer (build_model's fused_batch_norm=False) and loads anywhere.
    The batch variance the fused kernel reports (hence the moving variance) is the unbiased one: n/(n-1)
    for n >= 12,544 values per channel here.
    """

    def call(self, inputs, training=None, mask=None):
        if mask is not None or self.renorm or self.synchronized or len(inputs.shape) != 4 or self.axis not in (-1, 3):
            return super().call(inputs, training=training, mask=mask)
        gamma = self.gamma if self.scale else tf.ones(inputs.shape[-1], "float32")
        beta = self.beta if self.center else tf.zeros(inputs.shape[-1], "float32")
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, mean=self.moving_mean, variance=self.moving_variance, epsilon=self.epsilon,
                data_format="NHWC", is_training=False)
        return tf.cast(outputs, self.compute_dtype)


Norm = Callable[[], keras.layers.Layer]  # makes one batch-normalization layer


def _image_input() -> keras.KerasTensor:
    return keras.Input(shape=INPUT_SHAPE, name="image")


def _probabilities(hidden: keras.KerasTensor) -> keras.KerasTensor:
    # Float32 even when the rest computes in bfloat16: a bfloat16 softmax rounds 1 - p to 2^-8 near p = 1.
    return layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities")(hidden)


def seed_basic(norm: Norm = layers.BatchNormalization) -> keras.Model:
    """The classic tutorial CNN: Conv32 -> Pool -> Conv64 -> Pool -> Dense128 -> Dense10 (no batch norm)."""
    inputs = hidden = _image_input()
    hidden = layers.Conv2D(32, 3, activation="relu")(hidden)
    hidden = layers.MaxPooling2D()(hidden)
    hidden = layers.Conv2D(64, 3, activation="relu", name="last_conv")(hidden)
    hidden = layers.MaxPooling2D()(hidden)
    hidden = layers.Flatten()(hidden)
    hidden = layers.Dense(128, activation="relu")(hidden)
    outputs = _probabilities(hidden)
    return keras.Model(inputs, outputs, name="seed_basic")


def seed_lenet(norm: Norm = layers.BatchNormalization) -> keras.Model:
    """LeNet-style tutorial net with batch norm and dropout."""
    inputs = hidden = _image_input()
    hidden = layers.Conv2D(6, 5, padding="same", activation="relu")(hidden)
    hidden = norm()(hidden)
    hidden = layers.MaxPooling2D()(hidden)
    hidden = layers.Conv2D(16, 5, padding="same", activation="relu")(hidden)
    hidden = norm(name="last_conv")(hidden)
    hidden = layers.MaxPooling2D()(hidden)
    hidden = layers.Flatten()(hidden)
    hidden = layers.Dense(128, activation="relu")(hidden)
    hidden = layers.Dropout(0.2)(hidden)
    hidden = layers.Dense(32, activation="relu")(hidden)
    hidden = layers.Dropout(0.2)(hidden)
    outputs = _probabilities(hidden)
    return keras.Model(inputs, outputs, name="seed_lenet")


def _conv_bn_relu(hidden: keras.KerasTensor, filters: int, norm: Norm, name: str | None = None,
                  pool_first: bool = False) -> keras.KerasTensor:
    hidden = layers.Conv2D(filters, 3, padding="same", use_bias=False)(hidden)
    if pool_first:  # BN and ReLU then touch a quarter of the values (ReLU commutes with max-pooling)
        hidden = layers.MaxPooling2D()(hidden)
    hidden = norm()(hidden)
    return layers.ReLU(name=name)(hidden)


def vgg_bn(widths: tuple[int, ...], depths: tuple[int, ...], dropout: float, name: str,
           flatten: bool = False, norm: Norm = layers.BatchNormalization, pool_before_norm: bool = False,
           whitened: bool = False) -> keras.Model:
    """A VGG-style net: stages of 3x3 conv + BN + ReLU, max-pool between stages, global average pool.

    The first stage runs at full 28x28 resolution, where each conv costs 4x a 14x14 one, so it gets
    one conv only: that is where the CPU time goes (measured in BENCHMARKS.md). With pool_before_norm,
    a stage's last conv is pooled before its BN and ReLU, which then touch a quarter of the values
    (ReLU commutes with max-pooling; BN's statistics come from the pooled map). With whitened, the first
    stage is the frozen patch-whitening stem instead (its width and depth are unused).
    """
    inputs = hidden = _image_input()
    first_stage = 0
    if whitened:
        hidden, first_stage = _whitening_stem(hidden), 1
    for stage, (width, depth) in list(enumerate(zip(widths, depths)))[first_stage:]:
        is_last_stage = stage == len(widths) - 1
        for index in range(depth):
            ends_stage = index == depth - 1
            hidden = _conv_bn_relu(hidden, width, norm, name="last_conv" if is_last_stage and ends_stage else None,
                                   pool_first=pool_before_norm and ends_stage and not is_last_stage)
        if not is_last_stage and not pool_before_norm:
            hidden = layers.MaxPooling2D()(hidden)
    # Flatten keeps where things are (fast to learn, more weights); global pooling generalises better.
    hidden = layers.Flatten()(hidden) if flatten else layers.GlobalAveragePooling2D()(hidden)
    hidden = layers.Dropout(dropout)(hidden)
    outputs = _probabilities(hidden)
    return keras.Model(inputs, outputs, name=name.replace("-", "_"))


def lite_net(widths: tuple[int, int, int] = (16, 64, 128), norm: Norm = layers.BatchNormalization) -> keras.Model:
    """The cheapest net that reaches 91.5 % in three epochs here: built for accuracy per CPU second.

    At 28x28 a plain 16-channel conv without batch norm (the full-resolution layer is where CPU time
    goes, and BN there costs more than the conv); BN convs at 14x14 and 7x7; a flatten head without
    dropout, because three epochs underfit rather than overfit (measured in BENCHMARKS.md).
    """
    inputs = hidden = _image_input()
    hidden = layers.Conv2D(widths[0], 3, padding="same", activation="relu")(hidden)
    hidden = layers.MaxPooling2D()(hidden)
    hidden = _conv_bn_relu(hidden, widths[1], norm)
    hidden = layers.MaxPooling2D()(hidden)
    hidden = _conv_bn_relu(hidden, widths[2], norm, name="last_conv")
    hidden = layers.Flatten()(hidden)
    outputs = _probabilities(hidden)
    return keras.Model(inputs, outputs, name="fmnist_lite")


WHITENING_LAYER = "patch_whitening"


def patch_whitening_weights(images: np.ndarray, size: int = 3, epsilon: float = 5e-4,
                            sample: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """Kernel and bias of a frozen first conv whose filters whiten size x size patches (PCA), in +/- pairs.

    Each eigenvector of the patch covariance, scaled by 1/sqrt(eigenvalue + epsilon), is a filter; its
    negative is another, so that the ReLU after it keeps both signs. The bias centres the patches. From
    the first `sample` images (uint8, N x 28 x 28), scaled as the model sees them.
    """
    mean, covariance = _patch_moments(images[:sample], size)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    filters = eigenvectors / np.sqrt(eigenvalues + epsilon)  # columns: one whitening filter each
    filters = np.concatenate([filters, -filters], axis=1)
    kernel = filters.reshape(size, size, 1, -1).astype(np.float32)
    bias = (-(mean @ filters)).astype(np.float32)
    return kernel, bias


def _patch_moments(images: np.ndarray, size: int, chunk: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of all size x size patches of the images, a chunk of images at a time.

    All 10,000 images' patches at once are 6.8 M x 9 float64 values (490 MB, twice over inside np.cov):
    enough to take a training run past its 2 GB. Sums over chunks need 25 MB.
    """
    count, total, products = 0, np.zeros(size * size), np.zeros((size * size, size * size))
    for start in range(0, len(images), chunk):
        scaled = images[start:start + chunk].astype(np.float64) / 255.0
        patches = np.lib.stride_tricks.sliding_window_view(scaled, (size, size), axis=(1, 2)).reshape(-1, size * size)
        count, total, products = count + len(patches), total + patches.sum(axis=0), products + patches.T @ patches
    mean = total / count
    return mean, (products - count * np.outer(mean, mean)) / (count - 1)


def whiten_first_layer(model: keras.Model, images: np.ndarray) -> bool:
    """Set a model's patch-whitening layer (if it has one, also inside a wrapper) from training images."""
    for layer in all_layers(model):
        if layer.name == WHITENING_LAYER:
            size = layer.kernel.shape[0]
            layer.set_weights(list(patch_whitening_weights(images, size=size)))
            return True
    return False


def all_layers(model: keras.Model):
    """Every layer of a model, depth first, the layers of nested models included."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


def _whitening_stem(hidden: keras.KerasTensor, size: int = 3) -> keras.KerasTensor:
    """A frozen patch-whitening conv at 28x28 (set from the data by whiten_first_layer), ReLU, 2x2 max-pool.

    It stands in for a learned full-resolution conv and its batch norm: the costliest part of a step per
    weight, and the part a short run learns least (Jordan 2024, airbench).
    """
    hidden = layers.Conv2D(2 * size * size, size, padding="same", trainable=False, name=WHITENING_LAYER)(hidden)
    hidden = layers.ReLU()(hidden)
    return layers.MaxPooling2D()(hidden)


def whitened_lite_net(size: int = 3, widths: tuple[int, int] = (64, 128),
                      norm: Norm = layers.BatchNormalization) -> keras.Model:
    """fmnist-lite with its learned 28x28 conv replaced by a frozen patch-whitening one (set from the data)."""
    inputs = _image_input()
    hidden = _whitening_stem(inputs, size)
    hidden = _conv_bn_relu(hidden, widths[0], norm)
    hidden = layers.MaxPooling2D()(hidden)
    hidden = _conv_bn_relu(hidden, widths[1], norm, name="last_conv")
    hidden = layers.Flatten()(hidden)
    return keras.Model(inputs, _probabilities(hidden), name="fmnist_lite_whitened")


def _residual_block(hidden: keras.KerasTensor, filters: int, norm: Norm, name: str | None = None) -> keras.KerasTensor:
    """He et al. 2016's basic block: conv-BN-ReLU-conv-BN plus the input (projected where the width changes)."""
    shortcut = hidden
    if hidden.shape[-1] != filters:
        shortcut = norm()(layers.Conv2D(filters, 1, use_bias=False)(hidden))
    hidden = _conv_bn_relu(hidden, filters, norm)
    hidden = norm()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(hidden))
    return layers.ReLU(name=name)(layers.Add()([hidden, shortcut]))


def residual_net(widths: tuple[int, ...], blocks: tuple[int, ...], stem: int, dropout: float, name: str,
                 norm: Norm = layers.BatchNormalization) -> keras.Model:
    """A small ResNet for 28x28: one conv at full resolution, then stages of residual blocks at 14x14 and 7x7.

    As in the VGG-style nets, full resolution gets a single conv (that is where CPU time goes); the depth
    goes where the maps are small, with identity shortcuts so that the deeper net still trains quickly.
    """
    inputs = hidden = _image_input()
    hidden = _conv_bn_relu(hidden, stem, norm, pool_first=True)
    for stage, (width, count) in enumerate(zip(widths, blocks)):
        if stage:
            hidden = layers.MaxPooling2D()(hidden)
        for index in range(count):
            is_last = stage == len(widths) - 1 and index == count - 1
            hidden = _residual_block(hidden, width, norm, name="last_conv" if is_last else None)
    hidden = layers.GlobalAveragePooling2D()(hidden)
    hidden = layers.Dropout(dropout)(hidden)
    return keras.Model(inputs, _probabilities(hidden), name=name.replace("-", "_"))


# Each factory takes the batch-normalization layer to build with (the plain Keras one by default).
ARCHITECTURES: dict[str, Callable[[Norm], keras.Model]] = {
    "seed-basic": seed_basic,
    "seed-lenet": seed_lenet,
    "fmnist-lite": lambda norm: lite_net(norm=norm),
    "fmnist-lite-whitened": lambda norm: whitened_lite_net(norm=norm),
    "fmnist-small": lambda norm: vgg_bn((32, 64, 128), (1, 1, 1), 0.3, "fmnist-small", flatten=True, norm=norm),
    "fmnist-net": lambda norm: vgg_bn((32, 64, 128), (1, 2, 2), 0.3, "fmnist-net", norm=norm),
    "fmnist-wide": lambda norm: vgg_bn((48, 96, 192), (1, 2, 2), 0.3, "fmnist-wide", norm=norm),
    "fmnist-wide-pooled": lambda norm: vgg_bn((48, 96, 192), (1, 2, 2), 0.3, "fmnist-wide-pooled", norm=norm,
                                              pool_before_norm=True),
    "fmnist-wide-whitened-pooled": lambda norm: vgg_bn((48, 96, 192), (1, 2, 2), 0.3, "fmnist-wide-whitened-pooled",
                                                       norm=norm, whitened=True, pool_before_norm=True),
    "fmnist-wider-whitened": lambda norm: vgg_bn((48, 112, 240), (1, 2, 2), 0.3, "fmnist-wider-whitened",
                                                 norm=norm, whitened=True),
    "fmnist-resnet": lambda norm: residual_net((64, 128), (2, 2), 32, 0.3, "fmnist-resnet", norm=norm),
}
DEFAULT_ARCHITECTURE = "fmnist-net"
# Each architecture in a few words, for the Train page (parameter counts as built here).
ARCHITECTURE_SUMMARIES = {
    "seed-basic": "the tutorials' CNN: two convs, a dense layer, no batch norm (225 k parameters)",
    "seed-lenet": "a LeNet with batch norm and dropout (108 k)",
    "fmnist-lite": "one plain conv at 28x28, batch-norm convs at 14x14 and 7x7, flatten head (147 k)",
    "fmnist-lite-whitened": "fmnist-lite with a frozen patch-whitening first conv set from the data (148 k; quick)",
    "fmnist-small": "three conv stages with batch norm, flatten head (156 k)",
    "fmnist-net": "VGG-style 32-64-128, global average pool, dropout (280 k)",
    "fmnist-wide": "VGG-style 48-96-192 (627 k; best, the shipped model)",
    "fmnist-wide-pooled": "fmnist-wide with batch norm after pooling, 13 % faster per step (627 k)",
    "fmnist-wide-whitened-pooled": "fmnist-wide-pooled with the frozen whitening conv at 28x28, 12 % faster per "
                                   "step (601 k; standard)",
    "fmnist-wider-whitened": "the whitening conv, then 112 and 240 channels at 14x14 and 7x7 (897 k)",
    "fmnist-resnet": "a small residual net: one conv at 28x28, residual blocks at 14x14 and 7x7 (661 k)",
}


def build_model(architecture: str, augment: bool = False, erasing: float = 0.0,
                fused_batch_norm: bool = False) -> keras.Model:
    """Build a named architecture; with augment, the training-only augmentation layers wrap it.

    The network is a nested model behind the augmentation layers, so its weights (in the same order)
    are all the wrapper has, and an inference copy is the bare network with those weights. Training
    builds with fused_batch_norm (the same weights, computed faster); saved models use Keras's own layer.
    """
    try:
        factory = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r} (choose from {', '.join(ARCHITECTURES)})") from None
    network = factory(FusedBatchNormalization if fused_batch_norm else layers.BatchNormalization)
    if not augment:
        return network
    inputs = hidden = _image_input()
    for layer in augmentation_layers(erasing=erasing):
        hidden = layer(hidden)
    return keras.Model(inputs, network(hidden), name=network.name)
