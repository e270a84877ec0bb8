"""A Classifier that loads a registry model once and answers arrays or images: top-k, doubt, heat map."""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from fmnist_core import registry
from fmnist_core.config import tta_mode
from fmnist_core.data import CLASS_NAMES, IMAGE_SIZE
from fmnist_core.preprocess import Preprocessed, preprocess

LOW_CONFIDENCE = 0.6  # below this top probability the answer is flagged as unsure
# TTA scores extra views only of images whose plain top probability is below a threshold: for the others
# they cannot move the answer (on the shipped model the 10,000 test images score the same with 8 % of them
# mirrored as with all of them, BENCHMARKS.md), and augmenting everything multiplies the evaluation time.
# "shift" has four extra views, so its threshold is lower. "flip-then-shift" first mirrors the images under
# flip's threshold, then adds the eight shifted views only where the two still give no class half the
# probability: most of what flip+shift gains, at a fifth of its cost.
TTA_BELOW = {"flip": 0.8, "shift": 0.65, "flip+shift": 0.8, "flip-then-shift": 0.5}


@dataclass
class Prediction:
    """One classified image."""

    class_index: int
    class_name: str
    confidence: float
    probabilities: np.ndarray = field(repr=False)
    top_k: list[tuple[str, float]]
    doubts: list[str]
    preprocessed: Preprocessed | None = field(default=None, repr=False)

    @property
    def unsure(self) -> bool:
        """True when the model or the preprocessing has a reason for doubt."""
        return bool(self.doubts)

    def to_json(self) -> dict:
        """The CLI's per-file JSON record."""
        return {"class_index": self.class_index, "class_name": self.class_name,
                "confidence": round(self.confidence, 6),
                "top_k": [[name, round(probability, 6)] for name, probability in self.top_k],
                "doubts": self.doubts}


class Classifier:
    """A loaded model with a compiled inference function; safe to share between threads."""

    def __init__(self, model, model_id: str | None = None, meta: dict | None = None):
        import tensorflow as tf

        self.model = model
        self.model_id = model_id
        self.meta = meta or {}
        self._inference_model = folded_batch_norm(model)
        # One traced graph for any batch size: avoids model.predict's per-call set-up (~70 ms).
        self._forward = tf.function(lambda images: self._inference_model(images, training=False),
                                    reduce_retracing=True,
                                    input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32)])
        with warnings.catch_warnings():
            # Keras 3 warns at trace time when a loaded model's input structure is a list of one; harmless.
            warnings.filterwarnings("ignore", message="The structure of `inputs`")
            self._forward(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 1), np.float32))  # trace now, not on first user

    @classmethod
    def load(cls, model_id: str | None = None, root: Path | None = None) -> Classifier:
        """Load a registry model by id (the active one when None)."""
        model_id = registry.resolve_model_id(model_id, root)
        meta = registry.read_meta(model_id, root)
        return cls(registry.load_model(model_id, root), model_id, meta)

    @property
    def tta(self) -> str:
        """This model's test-time augmentation, one of TTA_MODES (recorded in meta.json)."""
        return tta_mode(self.meta.get("tta"))

    def probabilities(self, images: np.ndarray, batch_size: int = 2000, tta: str | bool | None = None) -> np.ndarray:
        """Class probabilities for float32 N x 28 x 28 x 1 inputs in [0, 1] (TTA: the model's own by default)."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[..., None]
        mode = self.tta if tta is None else tta_mode(tta)
        if mode != "off":
            return tta_averaged(lambda batch: self.probabilities(batch, batch_size, tta="off"), images, mode)
        outputs = [np.asarray(self._forward(images[start:start + batch_size]))
                   for start in range(0, len(images), batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros((0, len(CLASS_NAMES)), np.float32)

    def classify_array(self, image28: np.ndarray, top_k: int = 3,
                       preprocessed: Preprocessed | None = None) -> Prediction:
        """Classify one 28x28 image already in the dataset's form (uint8 0..255 or float 0..1)."""
        image = np.asarray(image28, dtype=np.float32)
        if image.max() > 1.0:
            image = image / 255.0
        probabilities = self.probabilities(image.reshape(1, IMAGE_SIZE, IMAGE_SIZE, 1))[0]
        return make_prediction(probabilities, top_k, preprocessed)

    def classify_image(self, source, top_k: int = 3) -> Prediction:
        """Preprocess any image (file, bytes, PIL, array) and classify it."""
        prepared = preprocess(source)
        return self.classify_array(prepared.model_input(), top_k, prepared)

    def classify_many(self, sources: list, top_k: int = 3) -> list[Prediction | Exception]:
        """Preprocess the sources in parallel threads, classify them in one batch; errors come back in place."""
        def prepare(source) -> Preprocessed | Exception:
            try:
                return preprocess(source)
            except Exception as error:  # reported per file by the caller
                return error

        # Decoding (Pillow) and OpenCV / NumPy work release the GIL, so threads use every core.
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            prepared = list(pool.map(prepare, sources))
        good = [item for item in prepared if isinstance(item, Preprocessed)]
        probabilities = iter(self.probabilities(np.stack([item.model_input() for item in good])) if good else [])
        return [make_prediction(next(probabilities), top_k, item) if isinstance(item, Preprocessed) else item
                for item in prepared]

    def grad_cam(self, image28: np.ndarray, class_index: int | None = None) -> np.ndarray:
        """Grad-CAM heat map (28x28, 0..1) of where the last conv layer saw evidence for the class."""
        image = np.asarray(image28, dtype=np.float32).reshape(1, IMAGE_SIZE, IMAGE_SIZE, 1)
        if image.max() > 1.0:
            image = image / 255.0
        if class_index is None:
            class_index = int(np.argmax(self.probabilities(image)[0]))
        return np.asarray(self._grad_cam_function()(image, np.int32(class_index)))

    def _grad_cam_function(self):
        # Built once per classifier: a probe model and a traced gradient computation (~ms per call).
        if getattr(self, "_grad_cam", None) is None:
            import keras
            import tensorflow as tf

            conv_layer = _last_conv_layer(self._inference_model)
            probe = keras.Model(self._inference_model.inputs, [conv_layer.output, self._inference_model.output])

            @tf.function(input_signature=[tf.TensorSpec([1, IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32),
                                          tf.TensorSpec([], tf.int32)])
            def compute(image, class_index):
                with tf.GradientTape() as tape:
                    features, outputs = probe(image, training=False)
                    score = outputs[:, class_index]
                gradients = tape.gradient(score, features)[0]
                weights = tf.reduce_mean(gradients, axis=(0, 1))
                cam = tf.nn.relu(tf.reduce_sum(features[0] * weights, axis=-1))
                cam = cam / tf.maximum(tf.reduce_max(cam), 1e-8)
                return tf.image.resize(cam[..., None], (IMAGE_SIZE, IMAGE_SIZE), method="bilinear")[..., 0]

            self._grad_cam = compute
        return self._grad_cam


def shifted(images: np.ndarray, down: int, right: int) -> np.ndarray:
    """N x H x W x C images moved by whole pixels, the uncovered edge black (as RandomTranslation fills it)."""
    height, width = images.shape[1:3]
    padded = np.pad(images, ((0, 0), (abs(down),) * 2, (abs(right),) * 2, (0, 0)))
    top, left = abs(down) - down, abs(right) - right
    return padded[:, top:top + height, left:left + width]


def tta_views(images: np.ndarray, mode: str) -> list[np.ndarray]:
    """The views TTA scores besides the images themselves (N x 28 x 28 x 1 each)."""
    if mode == "shift":
        return one_pixel_shifts(images)
    if mode == "flip":
        return [mirror(images)]
    return [mirror(images)] + shifts_of_image_and_mirror(images)


def mirror(images: np.ndarray) -> np.ndarray:
    """N x H x W x C images flipped left to right."""
    return np.ascontiguousarray(images[:, :, ::-1])


def one_pixel_shifts(images: np.ndarray) -> list[np.ndarray]:
    """The images moved one pixel up, down, left and right."""
    return [shifted(images, down, right) for down, right in ((-1, 0), (1, 0), (0, -1), (0, 1))]


def shifts_of_image_and_mirror(images: np.ndarray) -> list[np.ndarray]:
    """The eight one-pixel shifts of the images and of their mirror images."""
    return one_pixel_shifts(images) + one_pixel_shifts(mirror(images))


def tta_averaged(score, images: np.ndarray, mode: str = "flip", plain: np.ndarray | None = None,
                 below: float | None = None) -> np.ndarray:
    """Test-time augmentation: the mean of score() over the images and their tta_views (N x 28 x 28 x 1).

    plain: score(images) when the caller already has it, so it is not computed again. below: augment only
    the images whose plain top probability is under it (None: the mode's TTA_BELOW; np.inf: all); the
    others keep their plain scores. flip-then-shift applies `below` to the mirrored average instead.
    """
    below = TTA_BELOW.get(mode, np.inf) if below is None else below
    plain = np.asarray(score(images)) if plain is None else np.asarray(plain)
    if mode == "off":
        return plain.copy()
    if mode == "flip-then-shift":
        mirrored = tta_averaged(score, images, "flip", plain)
        return _averaged_in(score, images, mirrored, 2, mirrored.max(axis=1) < below, shifts_of_image_and_mirror)
    return _averaged_in(score, images, plain, 1, plain.max(axis=1) < below, partial(tta_views, mode=mode))


def _averaged_in(score, images: np.ndarray, current: np.ndarray, counted: int, unsure: np.ndarray,
                 views_of) -> np.ndarray:
    """current (a mean over `counted` views) with views_of(images[unsure]) averaged in where unsure."""
    averaged = current.copy()
    if unsure.any():
        views = views_of(images[unsure])
        scores = np.asarray(score(np.concatenate(views))).reshape(len(views), int(unsure.sum()), -1)
        averaged[unsure] = (current[unsure] * counted + scores.sum(axis=0)) / (counted + len(views))
    return averaged


def _folded_away_layer():
    from keras import layers

    class FoldedAway(layers.Layer):
        """Where a folded batch norm was: passes its input on (and accepts the call arguments batch norm took)."""

        def call(self, inputs, training=None, mask=None):
            return inputs

        def compute_output_shape(self, input_shape):
            return input_shape

    return FoldedAway


def folded_batch_norm(model):
    """The same network with each bias-free Conv2D + BatchNormalization pair merged into one Conv2D.

    At inference batch norm is a fixed per-channel scale and shift, so it folds into the convolution's
    kernel and bias: the same answers (to float rounding) 13 % faster on the shipped model here. The graph
    keeps its shape (residual shortcuts included): each folded batch norm becomes an identity. A batch
    norm after anything but such a conv (a pooling, a conv whose output is also used elsewhere) stays;
    a fold whose answers differ keeps the original model.
    """
    import keras
    from keras import layers

    def feeding_conv(norm):
        source = norm.input._keras_history.operation
        if isinstance(source, layers.Conv2D) and not source.use_bias and len(source._outbound_nodes) == 1:
            return source
        return None

    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    pairs = {id(conv): norm for norm in norms if (conv := feeding_conv(norm)) is not None}
    if not pairs:
        return model
    folded_norms = {id(norm) for norm in pairs.values()}
    folded_away = _folded_away_layer()

    def clone(layer):
        if id(layer) in folded_norms:
            return folded_away(name=layer.name)
        config = layer.get_config()
        if id(layer) in pairs:
            config["use_bias"] = True
        return type(layer).from_config(config)

    try:
        folded = keras.models.clone_model(model, clone_function=clone)
        for layer in model.layers:
            if id(layer) in pairs:
                norm = pairs[id(layer)]
                gamma, beta, mean, variance = norm.get_weights()
                scale = gamma / np.sqrt(variance + norm.epsilon)
                folded.get_layer(layer.name).set_weights([layer.get_weights()[0] * scale, beta - mean * scale])
            elif id(layer) not in folded_norms and layer.weights:
                folded.get_layer(layer.name).set_weights(layer.get_weights())
        probe = np.random.default_rng(0).random((8, IMAGE_SIZE, IMAGE_SIZE, 1), np.float32)
        if np.allclose(np.asarray(folded(probe, training=False)), np.asarray(model(probe, training=False)),
                       atol=1e-4):
            return folded
    except Exception:  # an unusual layer that cannot be copied: fall back to the original
        pass
    return model


def _last_conv_layer(model):
    named = [layer for layer in model.layers if layer.name == "last_conv"]
    if named:
        return named[0]
    spatial = [layer for layer in model.layers if len(getattr(layer, "output", None).shape or ()) == 4]
    if not spatial:
        raise ValueError("model has no spatial layer for Grad-CAM")
    return spatial[-1]


def make_prediction(probabilities: np.ndarray, top_k: int = 3,
                    preprocessed: Preprocessed | None = None) -> Prediction:
    """Turn a probability vector into a Prediction with top-k and the reasons for doubt."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    order = np.argsort(probabilities)[::-1]
    best = int(order[0])
    confidence = float(probabilities[best])
    doubts = list(preprocessed.doubts) if preprocessed else []
    if confidence < LOW_CONFIDENCE:
        doubts.insert(0, f"low confidence ({confidence:.0%}): the model is unsure")
    top_k = max(1, min(top_k, len(CLASS_NAMES)))
    return Prediction(best, CLASS_NAMES[best], confidence, probabilities,
                      [(CLASS_NAMES[int(i)], float(probabilities[int(i)])) for i in order[:top_k]],
                      doubts, preprocessed)
