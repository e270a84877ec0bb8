"""The one place that decides which model answers an input, and builds everything a page or the CLI shows.

A real photo is answered by the photo model (fmnist_core.photo); a drawing, or an image already in the
dataset's form (a small grey 28x28-style picture), by the Fashion-MNIST CNN. The CNN's own 28x28 view
and answer come with every Answer, so the user can see why a 28x28 model struggles with photos.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from fmnist_core.photo import NONE_INDEX, PhotoAnswer, PhotoModel
from fmnist_core.predict import Classifier, Prediction
from fmnist_core.preprocess import (
    PHOTO_SIZE,
    EmptyImageError,
    Preprocessed,
    decode,
    preprocess,
    preprocess_drawing,
)

CHOICES = ("auto", "photo", "cnn")
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cnn-view")
SMALL_IMAGE = 64  # an image no larger than this each way, in grey, is taken to be in the dataset's form


@dataclass
class Answer:
    """Which model answered, its class (or 'not one of the ten') and doubt, and the CNN's view beside it."""

    model: str  # "photo" or "cnn"
    why: str  # why that model answered
    class_name: str
    class_index: int | None  # None: not one of the ten classes
    confidence: float
    sure: bool
    doubts: list[str]
    top_k: list[tuple[str, float]]
    cnn: Prediction | None  # the CNN's answer on its 28x28 view (None when no item could be cut out)
    cnn_problem: str | None = None  # why the CNN has no view, when it has none
    photo: PhotoAnswer | None = field(default=None, repr=False)
    elapsed_ms: float = 0.0  # decode + both models, without heat maps
    photo_heat: np.ndarray | None = field(default=None, repr=False)  # 7 x 7, 0..1
    cnn_heat: np.ndarray | None = field(default=None, repr=False)  # 28 x 28, 0..1

    @property
    def not_clothing(self) -> bool:
        """True when the photo model found nothing worn or carried in the photo (a cat, a cup, a page of text)."""
        return self.photo is not None and self.model == "photo" and self.photo.not_clothing

    @property
    def preprocessed(self) -> Preprocessed | None:
        """How the CNN's 28x28 view was made."""
        return self.cnn.preprocessed if self.cnn else None

    def to_json(self) -> dict:
        """The CLI's per-file JSON record: which model answered, its answer and doubt, the CNN's beside it."""
        record = {"model": self.model, "why": self.why, "class_name": self.class_name,
                  "class_index": self.class_index, "confidence": round(self.confidence, 6), "sure": self.sure,
                  "doubts": self.doubts, "top_k": [[name, round(p, 6)] for name, p in self.top_k],
                  "not_clothing": self.not_clothing}
        if self.model == "photo":
            record["cnn"] = ({"class_name": self.cnn.class_name, "confidence": round(self.cnn.confidence, 6)}
                             if self.cnn else {"error": self.cnn_problem})
        return record


def looks_like_dataset_image(image: Image.Image) -> bool:
    """True for a grey image that is small or bright-on-black: a Fashion-MNIST picture (enlarged or not) or one
    made like it, which the CNN should answer. Colour photos, and grey photos of a garment on a light page, are not."""
    if image.mode not in ("L", "I", "I;16", "F", "1"):
        rgb = np.asarray(image.convert("RGB")).astype(np.int16)
        if int(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).max()) > 8:
            return False
    if max(image.size) <= SMALL_IMAGE:
        return True
    gray = np.asarray(image.convert("L"))
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return float(np.median(border)) < 16.0


def choose_model(image: Image.Image, choice: str, photo_model: PhotoModel | None,
                 photo_problem: str | None = None) -> tuple[str, str]:
    """('photo' | 'cnn', why) for a decoded image; a ValueError when the photo model is asked for but missing."""
    if choice not in CHOICES:
        raise ValueError(f"unknown model choice {choice!r} (choose from {', '.join(CHOICES)})")
    if choice == "cnn":
        return "cnn", "you chose the Fashion-MNIST CNN"
    if choice == "photo":
        if photo_model is None:
            raise ValueError(f"the photo model is not available: {photo_problem or 'not loaded'}")
        return "photo", "you chose the photo model"
    if looks_like_dataset_image(image):
        return "cnn", "a grey image in the dataset's own form: the Fashion-MNIST CNN answers"
    if photo_model is None:
        return "cnn", f"the photo model is not available ({photo_problem or 'not loaded'}): the CNN answers"
    return "photo", "a photo: the photo model (trained on real photos) answers"


def _cnn_answer(prediction: Prediction, why: str) -> tuple:
    return ("cnn", why, prediction.class_name, prediction.class_index, prediction.confidence,
            not prediction.unsure, list(prediction.doubts), prediction.top_k)


def _photo_answer(answer: PhotoAnswer, threshold: float, why: str, top_k: int) -> tuple:
    doubts = []
    if answer.not_clothing:
        doubts.append("this does not look like clothing, shoes or a bag at all")
    elif answer.output == NONE_INDEX:
        doubts.append("this looks like none of the ten classes (a hat, shorts, a skirt or a sock, say)")
    elif not answer.sure:
        doubts.append(f"the photo model is unsure ({answer.confidence:.0%}; a {answer.name} counts as sure from "
                      f"{threshold:.0%}, where its answers were right at least 92 % of the time, 95 % over all classes)")
    class_index = None if answer.output == NONE_INDEX else answer.output
    return ("photo", why, answer.name, class_index, answer.confidence, answer.sure, doubts, answer.top_k(top_k))


def answer_image(source, classifier: Classifier, photo_model: PhotoModel | None = None, choice: str = "auto",
                 top_k: int = 5, heat_maps: bool = False, photo_problem: str | None = None,
                 cnn_view: bool = True) -> Answer:
    """Answer one image (file, bytes, PIL image or array); ImageError for something that is not an image.

    The photo model answers photos (see choose_model); the CNN's 28x28 view and answer are always made
    too (unless cnn_view is False and the photo model answers). With heat_maps, the Answer carries the photo
    model's class activation map and the CNN's Grad-CAM.
    """
    started = time.perf_counter()
    image = decode(source, draft=photo_model.backbone.size if photo_model else PHOTO_SIZE)
    kind, why = choose_model(image, choice, photo_model, photo_problem)
    photo = None
    if kind == "photo":
        # The CNN's view (GrabCut on a busy photo: ~50 ms median, ~110 ms p95 on Zen 3) is made on the other core meanwhile.
        pending = _POOL.submit(_cnn_prediction, image, classifier, top_k) if cnn_view else None
        photo = photo_model.answer_photo(image)
        cnn, cnn_problem = pending.result() if pending else (None, "not asked for")
        if cnn is not None:
            photo = photo_model.with_cnn(photo, cnn.probabilities)
            if photo.cnn_weight:
                why += " (an item on a white page, as Fashion-MNIST's are: the CNN's opinion counts in too)"
        fields = _photo_answer(photo, photo_model.head.threshold_of(photo.output, photo.white_page), why, top_k)
    else:
        cnn, cnn_problem = _cnn_prediction(image, classifier, top_k)
        if cnn is None:
            raise EmptyImageError(cnn_problem)
        fields = _cnn_answer(cnn, why)
    answer = Answer(*fields, cnn=cnn, cnn_problem=cnn_problem, photo=photo,
                    elapsed_ms=(time.perf_counter() - started) * 1000)
    if heat_maps:
        add_heat_maps(answer, classifier, photo_model)
    return answer


def _cnn_prediction(image: Image.Image, classifier: Classifier, top_k: int) -> tuple[Prediction | None, str | None]:
    """The CNN's answer on its 28x28 view, or (None, why) when no item can be cut out of the image."""
    try:
        prepared = preprocess(image)
    except EmptyImageError as error:
        return None, str(error)
    return classifier.classify_array(prepared.model_input(), top_k, prepared), None


def answer_drawing(rgba: np.ndarray, classifier: Classifier, top_k: int = 5, heat_maps: bool = False) -> Answer:
    """A canvas drawing: a silhouette like the dataset's, so the CNN answers."""
    started = time.perf_counter()
    prepared = preprocess_drawing(rgba)
    cnn = classifier.classify_array(prepared.model_input(), top_k, prepared)
    answer = Answer(*_cnn_answer(cnn, "a drawing is a silhouette, as the dataset's images are: the CNN answers"),
                    cnn=cnn, elapsed_ms=(time.perf_counter() - started) * 1000)
    if heat_maps:
        add_heat_maps(answer, classifier, None)
    return answer


def add_heat_maps(answer: Answer, classifier: Classifier, photo_model: PhotoModel | None) -> None:
    """Fill in the photo model's class activation map and the CNN's Grad-CAM for its own answer."""
    if answer.photo is not None and photo_model is not None:
        answer.photo_heat = photo_model.heat_map(answer.photo)
    if answer.cnn is not None:
        answer.cnn_heat = classifier.grad_cam(answer.cnn.preprocessed.image, answer.cnn.class_index)


def answer_many(sources: list, classifier: Classifier, photo_model: PhotoModel | None = None, choice: str = "auto",
                top_k: int = 3, photo_problem: str | None = None) -> list[Answer | Exception]:
    """Answer several images; a bad one comes back as its exception, in place, and never stops the others.

    With choice "cnn" the images are prepared in parallel threads and scored in one batch (the CNN's
    throughput path); otherwise one by one, each through answer_image.
    """
    if choice == "cnn":
        return [item if isinstance(item, Exception) else
                Answer(*_cnn_answer(item, "you chose the Fashion-MNIST CNN"), cnn=item)
                for item in classifier.classify_many(sources, top_k)]
    answers: list[Answer | Exception] = []
    for source in sources:
        try:
            answers.append(answer_image(source, classifier, photo_model, choice, top_k, photo_problem=photo_problem))
        except Exception as error:  # reported per file by the caller
            answers.append(error)
    return answers
