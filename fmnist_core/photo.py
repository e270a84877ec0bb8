"""The photo model: a pretrained EfficientNet-Lite0 backbone (ONNX, run by OpenCV's dnn) and a head trained on real photos.

The backbone turns a 224x224 view of a photo into a 1280 x 7 x 7 feature map and ImageNet's 1000 scores.
It sees two views of each photo: the whole photo padded to a square, and its centre square (closer). The
head is a linear softmax over the mean-pooled features of both views side by side (2 x 1280), with eleven
outputs: the ten Fashion-MNIST classes and "not one of the ten". Two classes the real-photo pool cannot
teach come from ImageNet's own classes: the bag (ImageNet's backpack, mailbag, purse, plastic bag and
wallet) and the split of a shoe into sandal, sneaker or ankle boot (the photos are labelled only "Shoes").
See PhotoHead.probabilities.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fmnist_core.config import REPO_ROOT
from fmnist_core.data import CLASS_NAMES
from fmnist_core.preprocess import (
    FRAME_VIEWS,
    PHOTO_SIZE,
    centre_share,
    frame_views,
    look_at_page,
    on_white_page,
    view_frame,
)

BACKBONE_DIR = REPO_ROOT / "models" / "backbones"
BACKBONE_NAME = "efficientnet-lite0"
NONE_INDEX = len(CLASS_NAMES)  # the eleventh output: not one of the ten classes
NONE_NAME = "not one of the ten classes"
OUTPUT_NAMES = (*CLASS_NAMES, NONE_NAME)
SANDAL, SNEAKER, BAG, ANKLE_BOOT = 5, 7, 8, 9
SHOES = (SANDAL, SNEAKER, ANKLE_BOOT)

# ImageNet-1k classes the photo model reads (index: name).
BAG_CLASSES = {414: "backpack", 636: "mailbag", 748: "purse", 728: "plastic bag", 893: "wallet"}
SHOE_TYPE_CLASSES = {SANDAL: {774: "sandal"}, SNEAKER: {770: "running shoe", 630: "loafer"},
                     ANKLE_BOOT: {514: "cowboy boot", 502: "clog"}}
# Knitwear and jersey: what tells a sweater (Pullover) from a long-sleeve top (T-shirt/top) in the photos
# labelled only "Longsleeve" (fmnist_core.photo_train.resolve_set_labels).
KNITWEAR_CLASSES = {841: "sweatshirt", 474: "cardigan"}
JERSEY_CLASSES = {610: "jersey, T-shirt"}
# Things worn or carried that are none of the ten (socks, belts, hats, sunglasses, ties, swimwear, skirts):
# ImageNet's summed probability of these goes to "not one of the ten" (fold_in_imagenet), as its bag
# classes' goes to Bag. The pool teaches the head only hats, shorts and skirts; a sock was an ankle boot.
NOT_OF_THE_TEN_CLASSES = {
    806: "sock", 496: "Christmas stocking", 836: "sunglass", 837: "sunglasses", 464: "buckle", 433: "bathing cap",
    452: "bonnet", 515: "cowboy hat", 793: "shower cap", 808: "sombrero", 667: "mortarboard", 518: "crash helmet",
    560: "football helmet", 451: "bolo tie", 457: "bow tie", 906: "Windsor tie", 679: "necklace", 658: "mitten",
    903: "wig", 584: "hair slide", 552: "feather boa", 615: "knee pad", 842: "swimming trunks", 655: "miniskirt",
    445: "bikini", 459: "brassiere",
}
KEPT_IMAGENET = tuple(sorted([*BAG_CLASSES, *(i for group in SHOE_TYPE_CLASSES.values() for i in group),
                              *KNITWEAR_CLASSES, *JERSEY_CLASSES, *NOT_OF_THE_TEN_CLASSES]))
# Everything ImageNet-1k knows that is worn or carried: garments, shoes, bags, hats, accessories, and the
# fabrics a garment on a white page is often taken for. Their summed probability tells a photo of clothing
# from one of a cat, a cup or a page of text (PhotoHead.garment_floor): ImageNet's other 935 classes
# already know such things, the head (which never saw them) does not.
WEARABLE_CLASSES = {
    399: "abaya", 400: "academic gown", 411: "apron", 414: "backpack", 433: "bathing cap", 445: "bikini",
    451: "bolo tie", 452: "bonnet", 457: "bow tie", 459: "brassiere", 464: "buckle", 465: "bulletproof vest",
    474: "cardigan", 496: "Christmas stocking", 501: "cloak", 502: "clog", 514: "cowboy boot", 515: "cowboy hat",
    518: "crash helmet", 529: "diaper", 552: "feather boa", 560: "football helmet", 568: "fur coat", 578: "gown",
    584: "hair slide", 591: "handkerchief", 601: "hoopskirt", 608: "jean", 610: "jersey", 614: "kimono",
    615: "knee pad", 617: "lab coat", 630: "Loafer", 636: "mailbag", 638: "maillot", 639: "tank suit",
    652: "military uniform", 655: "miniskirt", 658: "mitten", 667: "mortarboard", 679: "necklace",
    689: "overskirt", 697: "pajama", 728: "plastic bag", 735: "poncho", 748: "purse", 770: "running shoe",
    774: "sandal", 775: "sarong", 793: "shower cap", 806: "sock", 808: "sombrero", 824: "stole", 834: "suit",
    836: "sunglass", 837: "sunglasses", 841: "sweatshirt", 842: "swimming trunks", 869: "trench coat",
    885: "velvet", 887: "vestment", 893: "wallet", 903: "wig", 906: "Windsor tie", 911: "wool",
}


class PhotoModelError(RuntimeError):
    """The photo model cannot be used (missing or damaged file); the message says which and how to fix it."""


def reference_image(size: int = PHOTO_SIZE) -> np.ndarray:
    """A fixed size x size RGB test pattern (uint8) whose logits the conversion records: no randomness, no file."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / size
    red = 0.5 + 0.5 * np.sin(12 * x + 3 * y)
    green = 0.5 + 0.5 * np.cos(9 * np.hypot(x - 0.5, y - 0.4) * 3)
    blue = np.clip(1.2 - 2 * np.abs(x - y), 0, 1)
    return np.round(np.stack([red, green, blue], axis=-1) * 255).astype(np.uint8)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, numerically stable."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def kept_imagenet_log_probs(logits: np.ndarray) -> np.ndarray:
    """ImageNet log-probabilities of the KEPT_IMAGENET classes only (what the feature cache stores)."""
    return log_softmax(logits)[:, list(KEPT_IMAGENET)]


def wearable_log_mass(logits: np.ndarray) -> np.ndarray:
    """log of ImageNet's summed probability of WEARABLE_CLASSES, per row (N)."""
    from scipy.special import logsumexp

    return logsumexp(log_softmax(logits)[:, list(WEARABLE_CLASSES)], axis=1)


def mean_over_views(log_probs: np.ndarray, axis: int = 0) -> np.ndarray:
    """The log of the mean probability over several views' log-probabilities (ImageNet's view of a photo)."""
    from scipy.special import logsumexp

    log_probs = np.asarray(log_probs, np.float64)
    return logsumexp(log_probs, axis=axis) - np.log(log_probs.shape[axis])


@dataclass
class BackboneOutput:
    """What the backbone says about a batch of photos."""

    feature_maps: np.ndarray  # N x 1280 x 7 x 7
    logits: np.ndarray  # N x 1000, ImageNet

    @property
    def pooled(self) -> np.ndarray:
        """N x 1280 mean-pooled features: the head's input."""
        return self.feature_maps.mean(axis=(2, 3))


class Backbone:
    """The converted EfficientNet-Lite0, run by OpenCV's dnn; one net shared by threads behind a lock."""

    def __init__(self, directory: Path = BACKBONE_DIR, name: str = BACKBONE_NAME):
        import cv2

        self.record_path = Path(directory) / f"{name}.json"
        try:
            self.record = json.loads(self.record_path.read_text(encoding="utf-8"))
            self.path = Path(directory) / self.record["file"]
            data = self.path.read_bytes()
        except (OSError, ValueError, KeyError) as error:
            raise PhotoModelError(f"the photo backbone is missing or unreadable in {directory} ({error}); "
                                  "restore models/backbones from the repository or rerun "
                                  "scripts/convert_backbone.py") from None
        if hashlib.sha256(data).hexdigest() != self.record.get("sha256"):
            raise PhotoModelError(f"{self.path.name} does not match its recorded checksum (damaged file); restore "
                                  "it from the repository or rerun scripts/convert_backbone.py")
        try:
            self._net = cv2.dnn.readNetFromONNX(str(self.path))
        except cv2.error as error:
            raise PhotoModelError(f"OpenCV could not load {self.path.name}: {str(error).strip()[:200]}") from None
        self._lock = threading.Lock()
        self.bag_rows = self._bag_rows(Path(directory))
        self.name = name
        self.size = int(self.record.get("size", PHOTO_SIZE))

    def _bag_rows(self, directory: Path) -> np.ndarray:
        """ImageNet's classifier rows (len(BAG_CLASSES) x 1280) of the bag classes, for the bag's heat map."""
        try:
            with np.load(directory / self.record["kept_imagenet_file"], allow_pickle=False) as data:
                classes = [int(c) for c in data["classes"]]
                if not set(BAG_CLASSES) <= set(classes):
                    raise ValueError("it lacks rows of the bag classes")
                return data["weights"].astype(np.float64)[[classes.index(c) for c in BAG_CLASSES]]
        except (OSError, ValueError, KeyError) as error:
            raise PhotoModelError(f"the backbone's ImageNet rows are missing or damaged ({error}); rerun "
                                  "scripts/convert_backbone.py") from None

    def run(self, pixels: np.ndarray) -> BackboneOutput:
        """N x 224 x 224 x 3 RGB (uint8 or float 0..255) -> feature maps and ImageNet logits."""
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        if pixels.ndim == 3:
            pixels = pixels[None]
        with self._lock:
            self._net.setInput(pixels)
            feature_maps, logits = self._net.forward(["features", "logits"])
        return BackboneOutput(np.array(feature_maps), np.array(logits))


@dataclass
class PhotoHead:
    """The trained part of the photo model: standardisation, a linear softmax, its temperature and threshold."""

    weights: np.ndarray  # (views x 1280) x 11
    bias: np.ndarray  # 11
    mean: np.ndarray  # views x 1280: feature standardisation learnt on the training photos
    scale: np.ndarray  # views x 1280
    temperature: float = 1.0  # fitted on the validation photos (calibration)
    sure_threshold: float = 0.7  # calibrated top probability from which an answer counts as sure
    meta: dict = field(default_factory=dict)
    views: tuple[str, ...] = ("whole",)  # the photo views (preprocess.PHOTO_VIEWS) whose features it reads, in order
    power: float = 1.0  # pooled features are raised to this power (signed) before standardisation
    # True when the head was taught shoe types (the pool's shoes typed by eye, or corrections): its own split
    # between sandal, sneaker and ankle boot then counts beside ImageNet's (fold_in_imagenet).
    taught_shoe_types: bool = False
    # ImageNet's wearable mass (WEARABLE_CLASSES) under which a photo does not look like clothing at all;
    # 0 turns the check off (heads made before it). See clothing_share.
    garment_floor: float = 0.0
    # Per kind of photo (row 0: a phone photo; row 1: an item on a white page) and output (11), the calibrated
    # probability from which that answer counts as sure; None: sure_threshold for every class. A class the
    # head often confuses on one kind of photo needs more there than one it rarely gets wrong.
    class_thresholds: np.ndarray | None = None
    # Weight of the Fashion-MNIST CNN's opinion on a photo of an item on a white page (mix_with_cnn);
    # 0: the photo model alone (heads made before it).
    cnn_weight: float = 0.0
    # ImageNet's mass of worn things none of the ten (NOT_OF_THE_TEN_CLASSES) goes to "not one of the ten"
    # (fold_in_imagenet); False for heads made before it, so that they answer as they were measured.
    worn_others_to_none: bool = True

    def threshold_of(self, output: int, white_page: bool = False) -> float:
        """The probability from which an answer of this output counts as sure, on this kind of photo."""
        if self.class_thresholds is None:
            return self.sure_threshold
        return float(self.class_thresholds[int(white_page), output])

    def clothing_share(self, wearable: np.ndarray | None) -> np.ndarray | None:
        """P(the photo shows something worn or carried), N, from ImageNet's wearable log-mass; None when off.

        A logistic in log-mass, centred on garment_floor, one e-fold wide: ImageNet's mass stays under a few
        per cent for photos of anything else, and is tens of per cent for garments, shoes and bags, on a
        floor or on a shop's page.
        """
        if not self.garment_floor or wearable is None:
            return None
        wearable = np.asarray(wearable, np.float64)
        share = 1.0 / (1.0 + np.exp(-(np.nan_to_num(wearable) - np.log(self.garment_floor)) * GARMENT_SLOPE))
        return np.where(np.isnan(wearable), 1.0, share)  # not known (a cache made before it): no evidence against

    def logits(self, pooled: np.ndarray) -> np.ndarray:
        """Uncalibrated head logits (N x 11) for N x (views x 1280) pooled features, the views side by side."""
        return ((power_normalised(pooled, self.power) - self.mean) / self.scale) @ self.weights + self.bias

    def head_probabilities(self, pooled: np.ndarray) -> np.ndarray:
        """Calibrated softmax of the head alone (N x 11), before ImageNet's bag and shoe types."""
        return np.exp(log_softmax(self.logits(pooled) / self.temperature))

    def probabilities(self, pooled: np.ndarray, imagenet_kept: np.ndarray, wearable: np.ndarray | None = None
                      ) -> np.ndarray:
        """The answer's probabilities (N x 11): the head's, with ImageNet's bag mass and shoe types folded in.

        imagenet_kept: ImageNet log-probabilities of KEPT_IMAGENET (kept_imagenet_log_probs). The bag gets
        ImageNet's summed bag probability and everything else shares the rest; the head's shoe mass is
        split between sandal, sneaker and ankle boot in the proportions of ImageNet's shoe types, times
        the head's own where it was taught them (taught_shoe_types). With wearable (ImageNet's
        wearable log-mass, N) and a garment_floor, the ten classes share only the clothing share of the
        mass; the rest goes to "not one of the ten".
        """
        return self.probabilities_from_logits(self.logits(pooled), imagenet_kept, wearable)

    def probabilities_from_logits(self, logits: np.ndarray, imagenet_kept: np.ndarray,
                                  wearable: np.ndarray | None = None) -> np.ndarray:
        """probabilities() for the head's uncalibrated logits (N x 11), e.g. out-of-fold ones in training."""
        return self.gated(fold_in_imagenet(np.exp(log_softmax(logits / self.temperature)), imagenet_kept,
                                           self.taught_shoe_types, self.worn_others_to_none), wearable)

    def gated(self, probabilities: np.ndarray, wearable: np.ndarray | None) -> np.ndarray:
        """Probabilities (N x 11) whose ten classes keep only the clothing share of their mass (clothing_share)."""
        share = self.clothing_share(wearable)
        if share is None:
            return probabilities
        gated = np.array(probabilities, np.float64)
        gated[:, :NONE_INDEX] *= share[:, None]
        gated[:, NONE_INDEX] = 1.0 - gated[:, :NONE_INDEX].sum(axis=1)
        return gated

    def position_scores(self, feature_maps: np.ndarray, output: int) -> np.ndarray:
        """Each view's per-position share of one output's logit (views x 7 x 7) for one photo's feature maps.

        With power 1 the head is linear on the mean of each view's feature map, so its logit is the sum over
        views of the mean over positions of these scores (Zhou et al. 2016, CAM): exact, one matrix product.
        With another power each channel is weighted by the logit's gradient at the pooled features
        (Grad-CAM, Selvaraju et al. 2017): the head linearised where this photo is.
        feature_maps: views x 1280 x 7 x 7 (or 1280 x 7 x 7 for a one-view head).
        """
        maps = np.asarray(feature_maps, np.float64).reshape(len(self.views), -1, *np.shape(feature_maps)[-2:])
        columns = (self.weights[:, output] / self.scale).reshape(len(self.views), -1)
        if self.power != 1.0:
            pooled = np.abs(maps.mean(axis=(2, 3)))
            columns = columns * self.power * np.maximum(pooled, POWER_FLOOR) ** (self.power - 1.0)
        return np.einsum("vc,vcyx->vyx", columns, maps)

    def heat_map(self, feature_maps: np.ndarray, output: int, share: float = 1.0) -> np.ndarray:
        """Class activation map (0..1) of one photo for one output, in the whole view's frame.

        share: the centre view's side as a share of the whole view's (preprocess.centre_share).
        """
        return views_cam(self.position_scores(feature_maps, output), self.views, share)

    def to_bytes(self) -> bytes:
        """The head as one .npz file (arrays only: loading it runs no code)."""
        buffer = io.BytesIO()
        np.savez(buffer, weights=self.weights.astype(np.float32), bias=self.bias.astype(np.float32),
                 mean=self.mean.astype(np.float32), scale=self.scale.astype(np.float32),
                 temperature=np.float64(self.temperature), sure_threshold=np.float64(self.sure_threshold),
                 views=np.array(self.views, dtype=str), power=np.float64(self.power),
                 taught_shoe_types=np.bool_(self.taught_shoe_types), garment_floor=np.float64(self.garment_floor),
                 class_thresholds=np.full((len(PHOTO_KINDS), len(OUTPUT_NAMES)), np.nan)
                 if self.class_thresholds is None
                 else np.asarray(self.class_thresholds, np.float64), cnn_weight=np.float64(self.cnn_weight),
                 worn_others_to_none=np.bool_(self.worn_others_to_none))
        return buffer.getvalue()

    def save(self, path: Path) -> None:
        """Write head.npz (the registry calls this inside its staging directory)."""
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: Path, meta: dict | None = None) -> PhotoHead:
        """Read a head.npz written by save (allow_pickle off)."""
        with np.load(path, allow_pickle=False) as data:
            # Heads saved before the centre view existed read the whole photo only.
            views = tuple(str(v) for v in data["views"]) if "views" in data.files else ("whole",)
            power = float(data["power"]) if "power" in data.files else 1.0  # older heads: the features as they are
            taught = bool(data["taught_shoe_types"]) if "taught_shoe_types" in data.files else False
            floor = float(data["garment_floor"]) if "garment_floor" in data.files else 0.0
            thresholds = data["class_thresholds"].astype(np.float64) if "class_thresholds" in data.files else None
            if thresholds is not None and (thresholds.shape != (len(PHOTO_KINDS), len(OUTPUT_NAMES))
                                           or np.isnan(thresholds).any()):
                thresholds = None
            cnn_weight = float(data["cnn_weight"]) if "cnn_weight" in data.files else 0.0
            others = bool(data["worn_others_to_none"]) if "worn_others_to_none" in data.files else False
            return cls(data["weights"].astype(np.float64), data["bias"].astype(np.float64),
                       data["mean"].astype(np.float64), data["scale"].astype(np.float64),
                       float(data["temperature"]), float(data["sure_threshold"]), meta or {}, views, power, taught,
                       floor, thresholds, cnn_weight, others)


PHOTO_KINDS = ("phone photo", "item on a white page")  # the rows of PhotoHead.class_thresholds
GARMENT_SLOPE = 4.0  # the clothing share goes from 12 % to 88 % over half an e-fold of wearable mass either side
POWER_FLOOR = 1e-6  # where a channel's pooled value is ~0 its gradient under a power < 1 is capped, not infinite


def power_normalised(features: np.ndarray, power: float) -> np.ndarray:
    """sign(x) |x| ** power, element-wise (float64): power normalisation of pooled features (Perronnin et al. 2010).

    A power below 1 evens out a few channels that fire strongly against many that fire a little.
    """
    features = np.asarray(features, np.float64)
    return features if power == 1.0 else np.sign(features) * np.abs(features) ** power


def imagenet_group_mass(imagenet_kept: np.ndarray, classes) -> np.ndarray:
    """Summed ImageNet probability (N) of some of the KEPT_IMAGENET classes."""
    columns = [KEPT_IMAGENET.index(index) for index in classes]
    return np.exp(np.asarray(imagenet_kept, np.float64)[:, columns]).sum(axis=1)


def fold_in_imagenet(head: np.ndarray, imagenet_kept: np.ndarray, head_shoe_types: bool = False,
                     worn_others: bool = True) -> np.ndarray:
    """Head probabilities (N x 11) with ImageNet's bag probability and shoe-type proportions folded in.

    Last (worn_others), ImageNet's probability of things worn that are none of the ten (NOT_OF_THE_TEN_CLASSES:
    a sock, a belt's buckle, sunglasses, a cap) goes to "not one of the ten", everything else sharing the rest.

    head_shoe_types: the head was taught shoe types (typed pool shoes, corrections), so each type's share is
    ImageNet's times the head's own, renormalised (a product of the two opinions), instead of ImageNet's alone.
    ImageNet alone calls a pair of sneakers seen from above a clog; the head alone knows few ankle boots.
    """
    head = np.asarray(head, np.float64)
    result = head.copy()
    shoe_mass = head[:, list(SHOES)].sum(axis=1)
    type_mass = np.stack([imagenet_group_mass(imagenet_kept, SHOE_TYPE_CLASSES[c]) for c in SHOES], axis=1)
    if head_shoe_types:
        type_mass = type_mass * head[:, list(SHOES)] / np.maximum(shoe_mass[:, None], 1e-12)
    known = type_mass.sum(axis=1) > 1e-6
    shares = np.where(known[:, None], type_mass / np.maximum(type_mass.sum(axis=1, keepdims=True), 1e-12),
                      head[:, list(SHOES)] / np.maximum(shoe_mass[:, None], 1e-12))
    result[:, list(SHOES)] = shoe_mass[:, None] * shares
    bag = imagenet_group_mass(imagenet_kept, BAG_CLASSES)
    result *= (1.0 - bag)[:, None]
    result[:, BAG] += bag
    if worn_others:
        others = imagenet_group_mass(imagenet_kept, NOT_OF_THE_TEN_CLASSES)
        result *= (1.0 - others)[:, None]
        result[:, NONE_INDEX] += others
    return result


GARMENTS_AND_BAG = tuple(index for index in range(NONE_INDEX) if index not in SHOES)


def mix_with_cnn(probabilities: np.ndarray, cnn: np.ndarray, weight: float) -> np.ndarray:
    """The photo model's probabilities (11) mixed with the Fashion-MNIST CNN's (10): a weighted geometric mean.

    Fashion-MNIST is product shots on a white page, so on such a photo the CNN has its own say: it tells
    bags, coats, shirts and trousers apart from their silhouettes. It is mixed over the seven garments and
    the bag and one "shoe" group; within the shoes the photo model's split stands (the CNN calls a pair of
    sneakers seen from above a sandal), and so does its "not one of the ten" share.
    """
    probabilities = np.asarray(probabilities, np.float64)
    cnn = np.asarray(cnn, np.float64)
    ten = probabilities[:NONE_INDEX].sum()
    if weight <= 0 or ten <= 0:
        return probabilities
    groups = list(GARMENTS_AND_BAG)

    def grouped(p: np.ndarray) -> np.ndarray:
        return np.append(p[groups], p[list(SHOES)].sum())

    own = grouped(probabilities[:NONE_INDEX] / ten)
    mixed = np.exp((1 - weight) * np.log(own + 1e-9) + weight * np.log(grouped(cnn / cnn.sum()) + 1e-9))
    mixed = mixed / mixed.sum() * ten
    result = probabilities.copy()
    result[groups] = mixed[:-1]
    shoes = probabilities[list(SHOES)]
    result[list(SHOES)] = mixed[-1] * (shoes / shoes.sum() if shoes.sum() > 0 else np.full(len(SHOES), 1 / 3))
    return result


# ---- the photo model's registry: models/photo/<id>/head.npz + meta.json, with its own active pointer ----

HEAD_FILE = "head.npz"


def photo_models_dir(root: Path | None = None) -> Path:
    """The photo heads' registry: models/photo (inside FMNIST_MODELS_DIR when that is set)."""
    from fmnist_core.config import models_dir

    return Path(root or models_dir()) / "photo"


def save_photo_head(head: PhotoHead, root: Path | None = None, activate: bool = False) -> str:
    """Register a trained head (atomic, like a CNN model); returns its id."""
    from fmnist_core import registry

    model_id = registry.save_model(head, {**head.meta, "architecture": "photo-head"},
                                   model_id=registry.new_model_id(f"photo-{BACKBONE_NAME.split('-')[-1]}"),
                                   root=photo_models_dir(root), model_file=HEAD_FILE)
    if activate:
        registry.set_active(model_id, photo_models_dir(root), model_file=HEAD_FILE)
    return model_id


def list_photo_heads(root: Path | None = None):
    """The registered photo heads (registry.ModelInfo), newest first."""
    from fmnist_core import registry

    return registry.list_models(photo_models_dir(root), model_file=HEAD_FILE)


def active_photo_head_id(root: Path | None = None) -> str | None:
    """The active photo head's id, or None."""
    from fmnist_core import registry

    return registry.get_active_id(photo_models_dir(root))


def activate_photo_head(model_id: str, root: Path | None = None) -> None:
    """Make a registered head the one that answers photos."""
    from fmnist_core import registry

    registry.set_active(model_id, photo_models_dir(root), model_file=HEAD_FILE)


def load_photo_head(model_id: str | None = None, root: Path | None = None) -> PhotoHead:
    """A registered head (the active one when None), or PhotoModelError saying what is wrong."""
    from fmnist_core import registry

    directory = photo_models_dir(root)
    model_id = model_id or registry.get_active_id(directory)
    if model_id is None:
        raise PhotoModelError("no active photo model: train one (python -m fmnist_core train-photo --activate)")
    try:
        meta = registry.read_meta(model_id, directory)
        head = PhotoHead.load(registry.model_dir(model_id, directory) / HEAD_FILE, {**meta, "model_id": model_id})
    except (registry.RegistryError, OSError, ValueError, KeyError) as error:
        raise PhotoModelError(f"photo model {model_id} could not be loaded: {error}") from None
    if head.weights.shape != (head.mean.shape[0], len(OUTPUT_NAMES)) or head.mean.shape[0] % len(head.views):
        raise PhotoModelError(f"photo model {model_id} has weights of the wrong shape {head.weights.shape} "
                              f"for its {len(head.views)} view(s)")
    return head


# ---- answering a photo -----------------------------------------------------------------------------

@dataclass
class PhotoAnswer:
    """The photo model's answer for one photo."""

    output: int  # 0..9 a class, NONE_INDEX for "not one of the ten classes"
    confidence: float  # calibrated probability of that output
    sure: bool  # confidence at or above the head's threshold, and one of the ten classes
    probabilities: np.ndarray = field(repr=False)  # 11
    views: np.ndarray = field(repr=False)  # views x size x size x 3: the RGB images the backbone got
    feature_maps: np.ndarray = field(repr=False)  # views x 1280 x 7 x 7
    imagenet_kept_probabilities: np.ndarray = field(repr=False)  # ImageNet probabilities of KEPT_IMAGENET
    centre_share: float = 1.0  # the centre view's side as a share of the whole view's
    clothing_share: float | None = None  # P(something worn or carried is in the photo), from ImageNet; None: unchecked
    cnn_weight: float = 0.0  # the weight the Fashion-MNIST CNN's opinion had in this answer (0: the photo model alone)
    white_page: bool = False  # the item lies on a white or light-grey page (preprocess.on_white_page)

    @property
    def not_clothing(self) -> bool:
        """True when the answer is "not one of the ten" because the photo does not look like clothing at all."""
        return self.output == NONE_INDEX and self.clothing_share is not None and self.clothing_share < 0.5

    @property
    def view(self) -> np.ndarray:
        """The whole photo as the backbone got it (size x size RGB): the view the heat map is drawn on."""
        return self.views[0]

    @property
    def name(self) -> str:
        """The class name, or NONE_NAME."""
        return OUTPUT_NAMES[self.output]

    def top_k(self, k: int = 5) -> list[tuple[str, float]]:
        """The k most probable outputs with their probabilities."""
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(OUTPUT_NAMES[int(i)], float(self.probabilities[int(i)])) for i in order]


class PhotoModel:
    """The backbone and the active (or a chosen) head, loaded once; answers photos."""

    def __init__(self, backbone: Backbone, head: PhotoHead):
        self.backbone = backbone
        self.head = head

    @classmethod
    def load(cls, head_id: str | None = None, root: Path | None = None) -> PhotoModel:
        """Load the backbone and a registered head; PhotoModelError when either is missing or damaged."""
        return cls(Backbone(), load_photo_head(head_id, root))

    @property
    def model_id(self) -> str | None:
        """The head's registry id."""
        return self.head.meta.get("model_id")

    def answer_photo(self, image) -> PhotoAnswer:
        """The answer for one decoded photo (PIL image): its views through the backbone in one batch, then the head."""
        look = look_at_page(image)  # judged once: the item views' trim and the white page both read it
        frame = view_frame(image, self.head.views, look)
        views = frame_views(frame, self.head.views, self.backbone.size)
        output = self.backbone.run(views)
        kept = mean_over_views(kept_imagenet_log_probs(output.logits))[None]
        wearable = mean_over_views(wearable_log_mass(output.logits))[None]
        row = self.head.probabilities(output.pooled.reshape(1, -1), kept, wearable)[0]
        best = int(row.argmax())
        white_page = on_white_page(image, look)
        sure = bool(row[best] >= self.head.threshold_of(best, white_page) and best != NONE_INDEX)
        share = self.head.clothing_share(wearable)
        return PhotoAnswer(best, float(row[best]), sure, row, views, output.feature_maps, np.exp(kept[0]),
                           centre_share(frame), None if share is None else float(share[0]),
                           white_page=white_page)

    def with_cnn(self, answer: PhotoAnswer, cnn_probabilities: np.ndarray) -> PhotoAnswer:
        """The answer with the CNN's opinion mixed in (mix_with_cnn) when the item lies on a white page."""
        if not answer.white_page or not self.head.cnn_weight:
            return answer
        row = mix_with_cnn(answer.probabilities, cnn_probabilities, self.head.cnn_weight)
        best = int(row.argmax())
        return dataclasses.replace(answer, output=best, confidence=float(row[best]), probabilities=row,
                                   sure=bool(row[best] >= self.head.threshold_of(best, True) and best != NONE_INDEX),
                                   cnn_weight=self.head.cnn_weight)

    def heat_map(self, answer: PhotoAnswer) -> np.ndarray:
        """The answer's class activation map in the whole view's frame, 0..1 (see PhotoHead.heat_map).

        A bag is decided by ImageNet's classes: where they saw it is shown. A shoe's map is the head's own
        column for that type when it was taught types; otherwise its shoe outputs share one direction and
        the sandal column stands for all three.
        """
        if answer.output == BAG:  # where ImageNet's bag classes saw their evidence, weighted by their share
            weights = answer.imagenet_kept_probabilities[[KEPT_IMAGENET.index(i) for i in BAG_CLASSES]]
            rows = self.backbone.bag_rows
            scores = np.einsum("c,vcyx->vyx", weights @ rows, np.asarray(answer.feature_maps, np.float64))
            return views_cam(scores, self.head.views, answer.centre_share)
        output = SANDAL if answer.output in SHOES and not self.head.taught_shoe_types else answer.output
        return self.head.heat_map(answer.feature_maps, output, answer.centre_share)


CAM_GRID = 56  # the combined map's side: fine enough to place the centre view's 7 x 7 inside the whole view's


def views_cam(scores: np.ndarray, views: tuple[str, ...], share: float) -> np.ndarray:
    """Per-view position scores (views x 7 x 7) laid into the whole view's frame and normalised (0..1).

    A one-view head's map stays 7 x 7. With the centre view, its scores are stretched over the centre
    square it saw (share of the side, centred: the whole view pads the photo, the centre view crops it)
    and added to the whole view's.
    """
    import cv2

    scores = np.asarray(scores, np.float64)
    if len(views) == 1:
        return normalised_cam(scores[0])
    combined = np.zeros((CAM_GRID, CAM_GRID))
    for name, view_scores in zip(views, scores):
        side = CAM_GRID if name in FRAME_VIEWS else max(1, int(round(CAM_GRID * share)))
        start = (CAM_GRID - side) // 2
        combined[start:start + side, start:start + side] += cv2.resize(view_scores, (side, side),
                                                                       interpolation=cv2.INTER_LINEAR)
    return normalised_cam(combined)


def normalised_cam(cam: np.ndarray) -> np.ndarray:
    """A class activation map with negative evidence cut and the peak at 1."""
    cam = np.maximum(cam, 0.0)
    top = cam.max()
    return cam / top if top > 0 else cam
