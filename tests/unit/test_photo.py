"""The photo model: the converted backbone's output check, the set-label loss, calibration, the head and its registry."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fmnist_core import photo, photo_train
from fmnist_core.photo import (
    BAG,
    KEPT_IMAGENET,
    NONE_INDEX,
    SHOE_TYPE_CLASSES,
    SHOES,
    Backbone,
    PhotoHead,
    PhotoModelError,
    fold_in_imagenet,
    mean_over_views,
    reference_image,
    views_cam,
)
from fmnist_core.photo_train import PhotoTrainConfig, fit_linear_head, fit_temperature, set_loss, split_of, sure_threshold


@pytest.fixture(scope="module")
def backbone() -> Backbone:
    return Backbone()


def test_backbone_reproduces_the_logits_recorded_at_conversion(backbone):
    """OpenCV's dnn on the ONNX file gives, for the fixed test image, the logits torch gave when converting."""
    record = json.loads(backbone.record_path.read_text())
    output = backbone.run(reference_image(backbone.size))
    recorded = np.array(record["reference"]["logits"])
    assert output.logits.shape == (1, 1000) and output.feature_maps.shape == (1, 1280, 7, 7)
    assert np.abs(output.logits[0] - recorded).max() < 1e-3
    assert np.abs(output.pooled[0, :16] - np.array(record["reference"]["pooled_features_first16"])).max() < 1e-3
    assert int(np.argmax(output.logits[0])) == int(np.argmax(recorded))


def test_backbone_batch_gives_the_same_answer_per_image(backbone):
    image = reference_image(backbone.size)
    single = backbone.run(image).logits[0]
    batch = backbone.run(np.stack([image[::-1], image])).logits
    assert np.abs(batch[1] - single).max() < 1e-3 and np.abs(batch[0] - single).max() > 1e-2


def test_a_damaged_backbone_file_is_refused_clearly(tmp_path, backbone):
    copy = tmp_path / "backbones"
    shutil.copytree(backbone.record_path.parent, copy)
    onnx = copy / backbone.record["file"]
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(PhotoModelError, match="checksum"):
        Backbone(copy)
    onnx.unlink()
    with pytest.raises(PhotoModelError, match="missing or unreadable"):
        Backbone(copy)


def test_set_loss_with_one_allowed_output_is_cross_entropy():
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
    allowed = np.array([[True, False, False], [False, True, False]])
    loss, _ = set_loss(logits, allowed)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log([p[0, 0], p[1, 1]])))


def test_set_loss_counts_any_allowed_class_and_its_gradient_is_exact():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 4))
    allowed = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [1, 1, 1, 1], [0, 0, 1, 1], [1, 0, 0, 1]], bool)
    weights = rng.uniform(0.5, 2, size=5)
    loss, gradient = set_loss(logits, allowed, weights)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = -np.sum(weights * np.log((p * allowed).sum(axis=1))) / weights.sum()
    assert loss == pytest.approx(expected)
    assert set_loss(logits[2:3], allowed[2:3])[0] == pytest.approx(0.0, abs=1e-12)  # everything allowed
    numeric = np.zeros_like(logits)
    for index in np.ndindex(logits.shape):
        step = np.zeros_like(logits)
        step[index] = 1e-6
        numeric[index] = (set_loss(logits + step, allowed, weights)[0] - set_loss(logits - step, allowed, weights)[0]) / 2e-6
    assert np.abs(numeric - gradient).max() < 1e-6


def test_a_set_label_trains_without_telling_which_member():
    """Photos labelled {A, B} let the head learn A or B from other photos; its mass stays inside the set."""
    rng = np.random.default_rng(1)
    a, b, c = (rng.normal(size=8) * 3 for _ in range(3))
    x = np.concatenate([a + rng.normal(size=(40, 8)), b + rng.normal(size=(40, 8)), c + rng.normal(size=(40, 8))])
    allowed = np.zeros((120, 3), bool)
    allowed[:40, 0] = True  # A alone
    allowed[40:80, [0, 1]] = True  # "A or B" (like Longsleeve)
    allowed[80:, 2] = True
    weights, bias = fit_linear_head(x, allowed, np.ones(120), l2=1e-3)
    probabilities = np.exp(x @ weights + bias)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    assert probabilities[40:80, :2].sum(axis=1).mean() > 0.95
    assert probabilities[80:, 2].mean() > 0.95 and probabilities[:40, 0].mean() > 0.9


def test_temperature_scaling_undoes_overconfidence():
    rng = np.random.default_rng(2)
    true_logits = rng.normal(size=(4000, 5)) * 1.5
    probabilities = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in probabilities])
    allowed = np.eye(5, dtype=bool)[labels]
    assert fit_temperature(true_logits * 3.0, allowed) == pytest.approx(3.0, rel=0.12)
    assert fit_temperature(true_logits, allowed) == pytest.approx(1.0, rel=0.12)


def test_sure_threshold_is_the_lowest_that_reaches_the_accuracy():
    confidence = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([True, True, True, True, False, False])
    assert sure_threshold(confidence, correct, 0.95) == pytest.approx(0.61)
    assert sure_threshold(confidence, np.zeros(6, bool), 0.95) == 0.99


def test_sure_threshold_with_a_confidence_bound_wants_more_evidence():
    # 200 answers at 0.9 all right, 100 at 0.6 of which 90 right: 96.7 % right from the lowest threshold on.
    confidence = np.concatenate([np.full(200, 0.9), np.full(100, 0.6)])
    correct = np.concatenate([np.ones(200, bool), np.arange(100) < 90])
    assert sure_threshold(confidence, correct, 0.95) == pytest.approx(0.30)
    # Its one-sided 95 % Wilson lower bound is 94.5 % (290 of 300), under 95 %: only the 200 sure ones count.
    assert sure_threshold(confidence, correct, 0.95, bound_confidence=0.95) == pytest.approx(0.61)
    # Three right answers out of three are not evidence of 95 %.
    assert sure_threshold(np.array([0.9, 0.9, 0.9]), np.ones(3, bool), 0.95, bound_confidence=0.95) == 0.99


def test_the_split_rule_is_fixed_and_about_15_15_70():
    assert split_of("00003aeb-ace5-43bf-9a0c-dc31a03e9cd2.jpg") == split_of("00003aeb-ace5-43bf-9a0c-dc31a03e9cd2.jpg")
    names = [f"{index:05d}.jpg" for index in range(4000)]
    shares = {split: sum(split_of(name) == split for name in names) / 4000 for split in ("train", "val", "test")}
    assert shares["test"] == pytest.approx(0.15, abs=0.02) and shares["val"] == pytest.approx(0.15, abs=0.02)
    # Pinned: the recorded figures depend on this rule never changing.
    assert [split_of(name) for name in ("00003aeb-ace5-43bf-9a0c-dc31a03e9cd2.jpg", "shirt.jpg", "a")] == [
        "test", "val", "train"]


def test_imagenet_folds_in_bag_mass_and_shoe_types():
    head = np.full((1, 11), 0.02)
    head[0, list(SHOES)] = [0.3, 0.3, 0.22]  # 0.82 shoe mass, split by the head arbitrarily
    head /= head.sum()
    kept = np.full((1, len(KEPT_IMAGENET)), np.log(1e-9))
    kept[0, KEPT_IMAGENET.index(next(iter(SHOE_TYPE_CLASSES[9])))] = np.log(0.6)  # ImageNet: a boot
    kept[0, KEPT_IMAGENET.index(next(iter(SHOE_TYPE_CLASSES[7])))] = np.log(0.2)
    folded = fold_in_imagenet(head, kept)
    assert folded.sum() == pytest.approx(1.0)
    shoe_mass = head[0, list(SHOES)].sum()
    assert folded[0, 9] == pytest.approx(shoe_mass * 0.75, rel=1e-4) and folded[0, 5] < 1e-6
    bag_kept = kept.copy()
    bag_kept[0, KEPT_IMAGENET.index(748)] = np.log(0.9)  # purse
    bagged = fold_in_imagenet(head, bag_kept)
    assert bagged.argmax() == BAG and bagged.sum() == pytest.approx(1.0)


def synthetic_feature_file(path, photos_per_label: int = 40, dims: int = 24, views=("item", "item-centre"),
                           cutouts: int = 10, near: dict[str, str] | None = None):
    """Small feature caches in the real files' format, one per view: each source label a cluster.

    near: a label whose cluster lies right beside another label's (they overlap), e.g. {"Skirt": "Dress"}.

    The cut-out composites' caches (cutouts per label, the first photos' names) sit beside them, a little off
    their originals' clusters; ImageNet's wearable mass is between 0.3 and 0.9 (uniform).
    """
    rng = np.random.default_rng(3)
    labels = ["T-Shirt", "Longsleeve", "Pants", "Hoodie", "Dress", "Outwear", "Shirt", "Shoes", "Hat", "Shorts",
              "Skirt", "Not sure"]
    centres = {label: rng.normal(size=dims) * 4 for label in labels}
    for label, beside in (near or {}).items():
        centres[label] = centres[beside] + rng.normal(size=dims) * 0.3
    rows = [(f"{label}-{index}.jpg", label) for label in labels for index in range(photos_per_label)]
    for cutout, chosen in ((False, rows), (True, [row for row in rows if int(row[0].split("-")[-1][:-4]) < cutouts])):
        for view in views:
            shift = 1.0 if cutout else 0.0
            features = np.stack([centres[label] + shift + rng.normal(size=dims) for _, label in chosen])
            kept = np.full((len(chosen), len(KEPT_IMAGENET)), -12.0, np.float16)
            np.savez_compressed(photo_train.view_features_file(path, view, cutout),
                                files=np.array([name for name, _ in chosen]),
                                labels=np.array([label for _, label in chosen]), kids=np.zeros(len(chosen), bool),
                                features=features.astype(np.float16), imagenet_kept=kept,
                                wearable=np.log(rng.uniform(0.3, 0.9, len(chosen))).astype(np.float16),
                                kept_imagenet=np.array(KEPT_IMAGENET), backbone_sha256=np.array("test"),
                                view=np.array(view))
    return path


def test_train_photo_head_calibrates_and_records_how(tmp_path):
    path = synthetic_feature_file(tmp_path / "features.npz")
    steps = []
    head = photo_train.train_photo_head(PhotoTrainConfig(folds=3), path, progress=lambda *a: steps.append(a))
    meta = head.meta
    assert steps[-1][0] == steps[-1][1] and len(steps) == 5  # three folds, the final fit, done
    assert meta["metrics"]["test"]["accuracy"] > 0.9 and meta["metrics"]["test"]["not_of_the_ten_flagged"] > 0.8
    assert "Not sure" not in meta["metrics"]["test"]["per_source_label"]  # labels naming no class are left out
    assert 0.05 <= head.temperature <= 20 and 0.3 <= head.sure_threshold <= 0.99
    assert head.power == meta["config"]["feature_power"] == 0.5 and "Wilson" in meta["calibration"]["sure_threshold_rule"]
    assert meta["calibration"]["set_loss_after"] <= meta["calibration"]["set_loss_before"] + 1e-9
    assert meta["training_data"]["photos"]["test"] + meta["training_data"]["photos"]["fitted"] == 11 * 40 + 11 * 10
    assert meta["training_data"]["photos"]["per_domain"]["shop-like"] + \
        meta["metrics"]["test"]["per_domain"]["shop-like"]["photos"] == 11 * 10
    assert set(meta["metrics"]["test"]["per_domain"]) == {"phone", "shop-like"}
    # The floor: the (view-averaged) wearable masses' 0.5 % quantile; class thresholds never undercut the overall one.
    assert 0.3 <= head.garment_floor <= 0.4 and meta["garment_floor"] == pytest.approx(head.garment_floor, abs=1e-4)
    assert head.class_thresholds.shape == (2, 11) and (head.class_thresholds >= head.sure_threshold).all()
    assert set(meta["class_thresholds"]) == set(photo.PHOTO_KINDS)


def test_photo_head_registry_round_trip(tmp_path):
    path = synthetic_feature_file(tmp_path / "features.npz")
    head = photo_train.train_photo_head(PhotoTrainConfig(folds=2), path)
    model_id = photo.save_photo_head(head, root=tmp_path / "models", activate=True)
    assert photo.active_photo_head_id(tmp_path / "models") == model_id
    assert [info.model_id for info in photo.list_photo_heads(tmp_path / "models")] == [model_id]
    loaded = photo.load_photo_head(root=tmp_path / "models")
    assert loaded.views == ("item", "item-centre") and loaded.weights.shape == (48, 11)
    assert loaded.garment_floor == pytest.approx(head.garment_floor) and loaded.cnn_weight == head.cnn_weight
    assert np.array_equal(loaded.class_thresholds, head.class_thresholds)
    features = np.random.default_rng(4).normal(size=(3, 48))
    kept = np.full((3, len(KEPT_IMAGENET)), -12.0)
    assert np.allclose(loaded.probabilities(features, kept), head.probabilities(features, kept), atol=1e-5)
    assert loaded.meta["calibration"]["temperature"] == pytest.approx(head.temperature, abs=1e-4)
    # The CNN registry does not list the photo folder as a (broken) model.
    from fmnist_core import registry

    assert registry.list_models(tmp_path / "models") == []
    (tmp_path / "models" / "photo" / model_id / "head.npz").write_bytes(b"not an npz")
    with pytest.raises(PhotoModelError, match="could not be loaded"):
        photo.load_photo_head(root=tmp_path / "models")


def test_no_active_photo_head_says_how_to_make_one(tmp_path):
    with pytest.raises(PhotoModelError, match="train-photo"):
        photo.load_photo_head(root=tmp_path)


def test_heat_map_is_each_positions_share_of_the_logit():
    rng = np.random.default_rng(5)
    maps = np.abs(rng.normal(size=(6, 7, 7)))
    maps[:, 2, 5] += 5.0  # strong evidence at one place
    head = PhotoHead(rng.normal(size=(6, 11)), np.zeros(11), np.zeros(6), np.ones(6))
    output = int(np.argmax(head.weights.sum(axis=0)))
    head.weights[:, output] = np.abs(head.weights[:, output])
    cam = head.heat_map(maps, output)
    assert cam.shape == (7, 7) and cam.max() == pytest.approx(1.0)
    assert np.unravel_index(cam.argmax(), cam.shape) == (2, 5)
    per_position = np.tensordot(head.weights[:, output], maps, axes=(0, 0))
    assert per_position.mean() == pytest.approx(head.logits(maps.mean(axis=(1, 2))[None])[0, output])


def test_power_normalised_head_heat_map_is_its_gradient_share():
    rng = np.random.default_rng(8)
    maps = np.abs(rng.normal(size=(6, 7, 7)))
    maps[:, 4, 1] += 5.0
    head = PhotoHead(np.abs(rng.normal(size=(6, 11))), np.zeros(11), np.zeros(6), np.ones(6), power=0.5)
    pooled = maps.mean(axis=(1, 2))
    assert np.allclose(head.logits(pooled[None])[0], np.sqrt(pooled) @ head.weights)
    assert np.allclose(photo.power_normalised(np.array([-4.0, 0.0, 9.0]), 0.5), [-2.0, 0.0, 3.0])
    cam = head.heat_map(maps, 3)
    assert np.unravel_index(cam.argmax(), cam.shape) == (4, 1)
    # Grad-CAM: the positions' mean is the logit's linearisation, d logit / d pooled . pooled (half of it, for sqrt).
    assert head.position_scores(maps, 3).mean() == pytest.approx(0.5 * (np.sqrt(pooled) @ head.weights[:, 3]))


def test_a_head_keeps_its_power_through_save_and_load(tmp_path):
    rng = np.random.default_rng(9)
    head = PhotoHead(rng.normal(size=(6, 11)), np.zeros(11), np.ones(6), np.full(6, 2.0), power=0.5)
    head.save(tmp_path / "head.npz")
    loaded = PhotoHead.load(tmp_path / "head.npz")
    features = np.abs(rng.normal(size=(3, 6)))
    assert loaded.power == 0.5 and np.allclose(loaded.logits(features), head.logits(features))


def test_the_shipped_photo_head_loads_and_has_its_figures():
    head = photo.load_photo_head(root=photo_train.REPO_ROOT / "models")
    test = head.meta["metrics"]["test"]
    assert head.views == ("item", "item-centre") and head.weights.shape == (2 * 1280, 11) and head.power == 0.5
    assert 0.3 < head.sure_threshold < 0.99 and head.sure_threshold == head.meta["calibration"]["sure_threshold"]
    assert head.worn_others_to_none and head.cnn_weight == head.meta["config"]["cnn_weight"] > 0
    assert 0.01 < head.garment_floor < 0.5 and (head.class_thresholds >= head.sure_threshold).all()
    # The targets on the held-out split, as recorded when it was trained: a worse head must not ship. Both
    # kinds of photo it trained on are held out: the phone photos and their shop-like composites.
    assert set(head.meta["training_data"]["photos"]["per_domain"]) == {"phone", "shop-like"}
    for domain in ("phone", "shop-like"):
        figures = test["per_domain"][domain]
        assert figures["sure_accuracy"] >= 0.95 and figures["sure_coverage"] >= 0.70, (domain, figures)
        assert figures["accuracy"] > 0.85 and figures["not_of_the_ten_flagged"] >= 0.85, (domain, figures)
    assert test["photos"] > 1000
    assert head.meta["outputs"][NONE_INDEX] == photo.NONE_NAME


def test_feature_caches_of_the_views_go_side_by_side(tmp_path):
    path = synthetic_feature_file(tmp_path / "features.npz", views=("whole", "centre"))
    whole = photo_train.load_photo_set(path)
    both = photo_train.load_photo_set(path, ("whole", "centre"))
    assert whole.features.shape[1] == 24 and both.features.shape[1] == 48
    assert np.array_equal(both.features[:, :24], whole.features) and np.array_equal(both.files, whole.files)
    # A centre file whose photos are in another order is refused, not silently misaligned.
    with np.load(photo_train.view_features_file(path, "centre")) as data:
        shuffled = {key: data[key] for key in data.files}
    shuffled["files"] = shuffled["files"][::-1]
    np.savez_compressed(photo_train.view_features_file(path, "centre"), **shuffled)
    with pytest.raises(ValueError, match="same photos in the same order"):
        photo_train.load_photo_set(path, ("whole", "centre"))


def test_shop_like_composites_follow_their_originals_split_and_domain(tmp_path):
    path = synthetic_feature_file(tmp_path / "features.npz")
    phone = photo_train.load_photo_set(path, ("item", "item-centre"))
    both = photo_train.load_photo_set(path, ("item", "item-centre"), shop_like=True)
    composites = both.where(both.domains == "shop-like")
    assert set(phone.domains) == {"phone"} and len(composites.files) == 11 * 10
    splits = dict(zip(phone.files, phone.splits))
    assert all(splits[name] == split for name, split in zip(composites.files, composites.splits))
    assert ((np.exp(both.wearable) > 0.299) & (np.exp(both.wearable) < 0.901)).all()


def test_views_must_start_with_a_frame_and_read_one_frame():
    with pytest.raises(ValueError, match="start with a frame"):
        PhotoTrainConfig(views=("centre", "whole"))
    with pytest.raises(ValueError, match="start with a frame"):
        PhotoTrainConfig(views=("whole", "zoom"))
    with pytest.raises(ValueError, match="start with a frame"):
        PhotoTrainConfig(views=("item", "centre"))  # the trimmed item and the untrimmed photo's centre


def test_imagenet_probabilities_are_averaged_over_the_views():
    log_probs = np.log(np.array([[0.2, 0.8], [0.6, 0.4]]))
    assert np.allclose(np.exp(mean_over_views(log_probs)), [0.4, 0.6])


def test_a_head_saved_before_the_centre_view_reads_the_whole_photo(tmp_path):
    rng = np.random.default_rng(6)
    path = tmp_path / "head.npz"
    np.savez(path, weights=rng.normal(size=(6, 11)), bias=np.zeros(11), mean=np.zeros(6), scale=np.ones(6),
             temperature=np.float64(1.2), sure_threshold=np.float64(0.7))  # no "views": an older head
    older = PhotoHead.load(path)
    assert older.views == ("whole",) and older.power == 1.0


def test_two_view_heat_map_places_the_centre_view_inside_the_whole_one():
    rng = np.random.default_rng(7)
    maps = np.zeros((2, 6, 7, 7))
    maps[1] = np.abs(rng.normal(size=(6, 7, 7)))  # evidence only in the centre view
    head = PhotoHead(np.abs(rng.normal(size=(12, 11))), np.zeros(11), np.zeros(12), np.ones(12),
                     views=("whole", "centre"))
    cam = head.heat_map(maps, 3, share=0.5)
    assert cam.shape == (photo.CAM_GRID, photo.CAM_GRID) and cam.max() == pytest.approx(1.0)
    inside = slice(photo.CAM_GRID // 4, 3 * photo.CAM_GRID // 4)
    outside = cam.copy()
    outside[inside, inside] = 0
    assert outside.max() == 0 and cam[inside, inside].min() > 0
    # Each view's position scores add up to the head's logit (CAM stays exact with two views).
    scores = head.position_scores(maps, 3)
    assert scores.mean(axis=(1, 2)).sum() == pytest.approx(head.logits(maps.mean(axis=(2, 3)).reshape(1, -1))[0, 3])
    assert views_cam(scores[:1], ("whole",), 1.0).shape == (7, 7)


def test_a_class_whose_confident_answers_are_wrong_gets_its_own_higher_threshold():
    rng = np.random.default_rng(11)
    confidence = rng.uniform(0.5, 1.0, 600)
    predicted = np.repeat([0, 6, 8], 200)
    correct = np.ones(600, bool)
    shirts = predicted == 6
    correct[shirts] = confidence[shirts] > 0.85  # Shirt answers are right only above 0.85
    few = np.zeros(600, bool)
    thresholds = photo_train.class_thresholds(confidence, predicted, correct, 0.92, 0.6)
    assert thresholds[0] == 0.6 and thresholds.min() == 0.6  # a class always right keeps the overall threshold
    assert 0.83 <= thresholds[6] <= 0.9
    sure = confidence >= thresholds[predicted]
    assert correct[sure & shirts].mean() >= 0.92
    # A class with fewer answers than MIN_CLASS_ANSWERS keeps the overall threshold, however they went.
    few[:10] = True
    sparse = photo_train.class_thresholds(confidence[few], np.full(10, 6), np.zeros(10, bool), 0.92, 0.6)
    assert sparse[6] == 0.6


def test_photo_answers_use_the_threshold_of_their_class(tmp_path):
    phone, white_page = [0.6] * 6 + [0.9] + [0.6] * 4, [0.6] * 4 + [0.8] + [0.6] * 6
    head = PhotoHead(np.zeros((4, 11)), np.zeros(11), np.zeros(4), np.ones(4), sure_threshold=0.6,
                     class_thresholds=np.array([phone, white_page]))
    assert head.threshold_of(0) == 0.6 and head.threshold_of(6) == 0.9 and head.threshold_of(4) == 0.6
    assert head.threshold_of(6, white_page=True) == 0.6 and head.threshold_of(4, white_page=True) == 0.8
    head.save(tmp_path / "head.npz")
    loaded = PhotoHead.load(tmp_path / "head.npz")
    assert loaded.threshold_of(6) == 0.9 and loaded.threshold_of(4, white_page=True) == 0.8
    older = PhotoHead(np.zeros((4, 11)), np.zeros(11), np.zeros(4), np.ones(4), sure_threshold=0.7)
    older.save(tmp_path / "older.npz")
    assert PhotoHead.load(tmp_path / "older.npz").threshold_of(6) == 0.7  # one threshold for all


def test_imagenet_sees_no_clothing_so_the_answer_is_not_clothing():
    head = PhotoHead(np.zeros((4, 11)), np.zeros(11), np.zeros(4), np.ones(4), garment_floor=0.1)
    head.bias[1] = 5.0  # the head alone says Trouser, sure
    pooled, kept = np.zeros((3, 4)), np.full((3, len(KEPT_IMAGENET)), -20.0)
    wearable = np.log(np.array([0.01, 0.8, np.nan]))  # a cup; a garment; not known (an old cache)
    probabilities = head.probabilities(pooled, kept, wearable)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities[0].argmax() == NONE_INDEX and probabilities[0, NONE_INDEX] > 0.99
    assert probabilities[1].argmax() == 1 and probabilities[2].argmax() == 1
    assert np.allclose(probabilities[2], head.probabilities(pooled[2:], kept[2:]))  # unknown: no evidence against
    off = PhotoHead(np.zeros((4, 11)), head.bias, np.zeros(4), np.ones(4))  # garment_floor 0: a head made before
    assert off.probabilities(pooled, kept, wearable)[0].argmax() == 1


def test_imagenet_mass_of_worn_things_outside_the_ten_goes_to_none():
    head = np.full((1, 11), 0.01)
    head[0, 9] = 0.9  # the head alone: an ankle boot
    kept = np.full((1, len(KEPT_IMAGENET)), np.log(1e-9))
    kept[0, KEPT_IMAGENET.index(806)] = np.log(0.7)  # ImageNet: a sock
    folded = fold_in_imagenet(head / head.sum(), kept)
    assert folded.argmax() == NONE_INDEX and folded.sum() == pytest.approx(1.0)


def test_the_cnn_mix_keeps_the_shoe_split_and_the_none_share():
    probabilities = np.array([0.3, 0.0, 0.0, 0.0, 0.2, 0.05, 0.1, 0.15, 0.0, 0.1, 0.1])
    cnn = np.array([0.0, 0.0, 0.0, 0.0, 0.9, 0.0, 0.05, 0.0, 0.05, 0.0]) + 1e-3
    mixed = photo.mix_with_cnn(probabilities, cnn, 0.4)
    assert mixed.sum() == pytest.approx(1.0) and mixed[NONE_INDEX] == pytest.approx(0.1)
    shoes = list(photo.SHOES)
    assert np.allclose(mixed[shoes] / mixed[shoes].sum(), probabilities[shoes] / probabilities[shoes].sum())
    assert mixed.argmax() == 4  # the CNN's coat carries the mix
    assert np.array_equal(photo.mix_with_cnn(probabilities, cnn, 0.0), probabilities)


def write_shoe_types(path, types: dict[str, str]):
    """A shoe-types.csv beside the feature caches at path."""
    lines = ["file,shoe_type", *(f"{name},{kind}" for name, kind in types.items())]
    path.with_name(photo_train.SHOE_TYPES_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_typed_shoes_allow_their_type_only_in_both_kinds_of_photo(tmp_path):
    from fmnist_core.photo import ANKLE_BOOT, SANDAL, SHOES, SNEAKER

    path = synthetic_feature_file(tmp_path / "features.npz")
    untyped = photo_train.load_photo_set(path, ("item", "item-centre"), shop_like=True, shoe_types=True)
    assert not photo_train.teaches_shoe_types(untyped)  # no file: "Shoes" allows all three
    write_shoe_types(path, {"Shoes-0.jpg": "Sneaker", "Shoes-1.jpg": "Sandal", "Shoes-2.jpg": "Ankle boot"})
    photos = photo_train.load_photo_set(path, ("item", "item-centre"), shop_like=True, shoe_types=True)
    for name, shoe in (("Shoes-0.jpg", SNEAKER), ("Shoes-1.jpg", SANDAL), ("Shoes-2.jpg", ANKLE_BOOT)):
        rows = photos.allowed[photos.files == name]
        assert len(rows) == 2 and (rows.sum(axis=1) == 1).all() and rows[:, shoe].all()  # the photo, its composite
    assert photos.allowed[photos.files == "Shoes-3.jpg"][:, list(SHOES)].all()  # untyped: any of the three
    assert photo_train.teaches_shoe_types(photos)
    assert photo_train.typed_shoe_counts(photos) == {"Sandal": 2, "Sneaker": 2, "Ankle boot": 2}
    weighing = photo_train.weighing_labels(photos)
    assert set(weighing[photos.files == "Shoes-2.jpg"]) == {"Shoes: Ankle boot"}
    assert set(weighing[photos.files == "Shoes-3.jpg"]) == {"Shoes"}
    write_shoe_types(path, {"Shoes-0.jpg": "Slipper"})
    with pytest.raises(ValueError, match="Slipper is not a shoe type"):
        photo_train.load_photo_set(path, ("item", "item-centre"), shoe_types=True)


def test_a_head_trained_on_typed_shoes_weighs_its_own_split(tmp_path):
    path = synthetic_feature_file(tmp_path / "features.npz")
    untaught = photo_train.train_photo_head(PhotoTrainConfig(folds=2), path)
    write_shoe_types(path, {f"Shoes-{index}.jpg": "Sneaker" for index in range(20)})
    taught = photo_train.train_photo_head(PhotoTrainConfig(folds=2), path)
    assert not untaught.taught_shoe_types and taught.taught_shoe_types
    assert taught.meta["training_data"]["shoe_types"]["Sneaker"] == 20 + 10  # the photos and their composites
    assert not photo_train.train_photo_head(PhotoTrainConfig(folds=2, shoe_types=False), path).taught_shoe_types


def test_untyped_shoes_set_no_thresholds_once_the_pools_shoes_are_typed(tmp_path):
    path = synthetic_feature_file(tmp_path / "features.npz")
    photos = photo_train.load_photo_set(path, ("item", "item-centre"), shoe_types=True)
    assert photo_train.calibrates(photos).all()  # no types: every photo calibrates, as before
    write_shoe_types(path, {"Shoes-0.jpg": "Sneaker"})
    photos = photo_train.load_photo_set(path, ("item", "item-centre"), shoe_types=True)
    calibrating = photo_train.calibrates(photos)
    assert calibrating[photos.files == "Shoes-0.jpg"].all() and not calibrating[photos.files == "Shoes-1.jpg"].any()
    assert calibrating[photos.labels != "Shoes"].all()


def test_a_shoe_types_heat_map_is_its_own_column_once_the_head_knows_types(backbone):
    from fmnist_core.photo import SANDAL, SNEAKER, PhotoAnswer, PhotoModel

    rng = np.random.default_rng(12)
    maps = np.abs(rng.normal(size=(1, 1280, 7, 7)))
    weights = np.zeros((1280, 11))
    weights[:640, SANDAL] = 1.0  # the sandal's evidence in one half of the channels, the sneaker's in the other
    weights[640:, SNEAKER] = 1.0
    maps[0, :640, :, :4] = 0  # the sandal channels see nothing in the left four columns
    maps[0, 640:, :, 4:] = 0  # the sneaker channels nothing right of them
    answer = PhotoAnswer(SNEAKER, 0.9, True, np.eye(11)[SNEAKER], np.zeros((1, 224, 224, 3)), maps,
                         np.zeros(len(KEPT_IMAGENET)))
    maps_of = {}
    for taught in (False, True):
        head = PhotoHead(weights, np.zeros(11), np.zeros(1280), np.ones(1280), views=("item",),
                         taught_shoe_types=taught)
        maps_of[taught] = PhotoModel(backbone, head).heat_map(answer)
    assert maps_of[True][:, :4].max() > maps_of[True][:, 4:].max()  # the sneaker's own evidence, on the left
    assert maps_of[False][:, 4:].max() > maps_of[False][:, :4].max()  # untaught: the sandal column stands for all


def test_the_none_bias_is_the_smallest_that_flags_the_share_asked_for():
    # Ten hats whose "none" logit sits 0.12, 0.22, ... 1.02 under a T-shirt's: flagging half of them takes a
    # bias past 0.52, all of them past 1.02; a share no bias up to the most reaches gets the most.
    margins = 0.1 * np.arange(1, 11) + 0.02
    logits = np.zeros((10, len(photo.OUTPUT_NAMES)))
    logits[:, 0], logits[:, NONE_INDEX] = 1.0, 1.0 - margins
    hats = photo_train.PhotoSet(
        files=np.array([f"Hat-{i}.jpg" for i in range(10)]), labels=np.array(["Hat"] * 10), features=np.zeros((10, 4)),
        imagenet_kept=np.full((10, len(KEPT_IMAGENET)), -12.0), allowed=photo_train.allowed_outputs(["Hat"] * 10),
        splits=np.array(["train"] * 10), boost=np.ones(10), domains=np.array(["phone"] * 10),
        wearable=np.full(10, np.nan))
    head = PhotoHead(np.zeros((4, 11)), np.zeros(11), np.zeros(4), np.ones(4))
    assert photo_train.none_bias(head, logits, hats, 0.5) == pytest.approx(0.55)
    assert photo_train.none_bias(head, logits, hats, 1.0) == pytest.approx(1.05)
    logits[0, NONE_INDEX] = -10.0
    assert photo_train.none_bias(head, logits, hats, 1.0) == photo_train.MOST_NONE_BIAS
    assert photo_train.none_bias(head, logits, hats.where(np.zeros(10, bool)), 1.0) == 0.0  # no photo of none


def test_a_head_trained_for_a_none_recall_carries_its_bias_and_flags_that_share(tmp_path):
    path = synthetic_feature_file(tmp_path / "features.npz", near={"Skirt": "Dress"})  # skirts pass for dresses
    plain = photo_train.train_photo_head(PhotoTrainConfig(folds=3, none_recall=None), path)
    biased = photo_train.train_photo_head(PhotoTrainConfig(folds=3, none_recall=0.95), path)
    assert plain.meta["metrics"]["cross_validated"]["not_of_the_ten_flagged"] < 0.95
    assert plain.meta["none_bias"] == 0.0 and 0 < biased.meta["none_bias"] < photo_train.MOST_NONE_BIAS
    assert biased.bias[NONE_INDEX] - plain.bias[NONE_INDEX] == pytest.approx(biased.meta["none_bias"])
    assert np.delete(biased.bias, NONE_INDEX) == pytest.approx(np.delete(plain.bias, NONE_INDEX))
    assert biased.meta["metrics"]["cross_validated"]["not_of_the_ten_flagged"] >= 0.95
