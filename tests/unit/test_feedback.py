"""The corrections store: bounded photos, features, review, export, rate limit, bad files and bad databases."""

from __future__ import annotations

import csv
import io
import sqlite3
import zipfile

import numpy as np
import pytest
from PIL import Image

from fmnist_core import feedback, photo_train
from fmnist_core.photo import KEPT_IMAGENET, BackboneOutput
from fmnist_core.preprocess import ImageError
from tests.unit.test_photo import synthetic_feature_file


class FakeBackbone:
    """Stands in for the ONNX backbone: features that depend on the pixels, so different photos differ."""

    size = 224

    def __init__(self, sha: str = "fake-backbone", dims: int = 1280):
        self.record = {"sha256": sha}
        self.dims = dims
        self.calls = 0

    def run(self, pixels: np.ndarray) -> BackboneOutput:
        self.calls += 1
        pixels = np.asarray(pixels, np.float32)
        base = pixels.mean(axis=(1, 2, 3))[:, None, None, None] / 255.0
        maps = np.broadcast_to(base, (len(pixels), self.dims, 7, 7)) + np.arange(self.dims)[None, :, None, None] * 1e-3
        return BackboneOutput(np.array(maps, np.float32), np.zeros((len(pixels), 1000), np.float32))


def jpeg(width: int = 1200, height: int = 900, colour=(200, 40, 40), exif: bool = False) -> bytes:
    image = Image.new("RGB", (width, height), colour)
    buffer = io.BytesIO()
    if exif:
        tags = Image.Exif()
        tags[0x010F] = "PhoneMaker"  # Make
        tags[0x0112] = 6  # orientation: rotated
        image.save(buffer, "JPEG", exif=tags.tobytes())
    else:
        image.save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "feedback" / "feedback.sqlite3"
    monkeypatch.setenv(feedback.DB_ENV, str(path))
    return path


def test_a_correction_keeps_a_bounded_upright_copy_without_exif_and_its_features(db):
    backbone = FakeBackbone()
    correction_id = feedback.add(jpeg(exif=True), feedback.Correction("sneaker", photo_model_id="p1",
                                                                      photo_answer="Ankle boot", token="tab"), backbone)
    stored = Image.open(io.BytesIO(feedback.photo_bytes(correction_id)))
    assert max(stored.size) <= feedback.MAX_SIDE and stored.size == (384, 512)  # turned upright, then bounded
    assert not stored.getexif()  # no camera data kept
    [row] = feedback.list_corrections()
    assert row["label"] == "Sneaker" and row["status"] == "pending" and row["photo_answer"] == "Ankle boot"
    assert row["source"] == "upload" and "token" not in row
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA user_version").fetchone()[0] == feedback.SCHEMA_VERSION


def test_review_filters_accept_reject_delete_and_export(db):
    backbone = FakeBackbone()
    ids = [feedback.add(jpeg(colour=(i * 40, 90, 90)), feedback.Correction(label, photo_answer="Coat"), backbone)
           for i, label in enumerate(["Pullover", "Pullover", "none"])]
    assert feedback.set_status(ids[:2], "accepted") == 2 and feedback.set_status([ids[2]], "rejected") == 1
    assert [r["id"] for r in feedback.list_corrections(status="accepted", label="Pullover")] == ids[1::-1]
    assert feedback.list_corrections(answer="Dress") == []
    assert feedback.counts()["accepted"] == {"Pullover": 2} and feedback.counts()["rejected"] == {"none": 1}
    with pytest.raises(ValueError, match="no correction with id 999"):
        feedback.set_status([ids[0], 999], "rejected")
    assert feedback.list_corrections(status="accepted")  # the refused call changed nothing
    archive = zipfile.ZipFile(io.BytesIO(feedback.export_zip()))
    table = list(csv.DictReader(io.StringIO(archive.read("corrections.csv").decode())))
    assert len(table) == 3 and all(Image.open(io.BytesIO(archive.read(r["photo_file"]))).size for r in table)
    assert feedback.delete([ids[2]]) == 1 and len(feedback.list_corrections()) == 2


def test_accepted_corrections_are_training_rows_and_are_recomputed_for_a_new_backbone(db):
    old = FakeBackbone("old")
    first = feedback.add(jpeg(colour=(10, 200, 10)), feedback.Correction("Bag"), old, accept=True)
    feedback.add(jpeg(colour=(10, 10, 200)), feedback.Correction("Bag"), old)  # pending: not used
    rows = feedback.accepted_rows(("whole", "centre"), backbone=old)
    assert rows.ids.tolist() == [first] and rows.features.shape == (1, 2 * 1280)
    assert rows.imagenet_kept.shape == (1, len(KEPT_IMAGENET))
    new = FakeBackbone("new")
    feedback.accepted_rows(("whole",), backbone=new)
    assert new.calls == 1  # recomputed from the stored photo once
    feedback.accepted_rows(("whole",), backbone=new)
    assert new.calls == 1  # and written back


def test_the_head_trains_on_accepted_corrections_with_their_weight(db, tmp_path, monkeypatch):
    monkeypatch.setattr(feedback, "current_backbone_sha256", lambda: "fake-backbone")
    dims = 24
    path = synthetic_feature_file(tmp_path / "features.npz", dims=dims)
    backbone = FakeBackbone(dims=dims)
    # Photos the pool would call T-shirts (their features sit on the T-shirt cluster) corrected as bags.
    with np.load(photo_train.view_features_file(path, "item")) as data:
        tshirt = data["features"][data["labels"] == "T-Shirt"][:6].astype(np.float32)
    for _ in range(6):
        feedback.add(jpeg(), feedback.Correction("Bag"), backbone, accept=True)
    with sqlite3.connect(db) as connection:  # give them the T-shirt cluster's features, in every view
        for row_id, features in zip(range(1, 7), tshirt):
            connection.execute("UPDATE corrections SET features = ? WHERE id = ?",
                               (np.stack([features] * 4).astype("<f4").tobytes(), row_id))
    config = photo_train.PhotoTrainConfig(folds=3, with_feedback=True, feedback_weight=50.0)
    head = photo_train.train_photo_head(config, path, feedback_path=db)
    summary = head.meta["corrections"]
    assert summary["count"] == 6 and summary["per_label"] == {"Bag": 6} and summary["weight"] == 50.0
    assert summary["cross_validated_accuracy"] is not None
    bag_logit = head.logits(np.concatenate([tshirt, tshirt], axis=1))
    assert (bag_logit.argmax(axis=1) == photo_train.CLASS_NAMES.index("Bag")).all()
    plain = photo_train.train_photo_head(photo_train.PhotoTrainConfig(folds=3), path)
    assert plain.meta["corrections"] is None
    assert (plain.logits(np.concatenate([tshirt, tshirt], axis=1)).argmax(axis=1) == 0).all()


@pytest.mark.parametrize("data, message", [
    (b"this is not an image", "not a readable image"),
    (jpeg()[:600], "truncated|not a readable|broken"),
    (b"\xff" * (feedback.MAX_UPLOAD_BYTES + 1), "over the"),
])
def test_a_bad_photo_is_refused_in_one_line_and_nothing_is_stored(db, data, message):
    with pytest.raises(ImageError, match=message):
        feedback.add(data, feedback.Correction("Coat"), FakeBackbone())
    assert feedback.list_corrections() == []


def test_a_decompression_bomb_is_refused(db):
    buffer = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buffer, "PNG")  # tiny file, 144 megapixels
    with pytest.raises(ImageError, match="too large"):
        feedback.add(buffer.getvalue(), feedback.Correction("Coat"), FakeBackbone())
    assert feedback.list_corrections() == []


def test_an_unknown_label_is_refused():
    with pytest.raises(ValueError, match="unknown label"):
        feedback.label_name("Sock")
    assert feedback.label_name("ankle BOOT") == "Ankle boot" and feedback.label_name("None") == "none"


def test_one_tab_may_send_only_so_many_corrections_an_hour(db, monkeypatch):
    monkeypatch.setenv(feedback.RATE_ENV, "3")
    backbone = FakeBackbone()
    for _ in range(3):
        feedback.add(jpeg(), feedback.Correction("Dress", token="tab-a"), backbone)
    with pytest.raises(feedback.RateLimited, match="3 corrections in the last hour"):
        feedback.add(jpeg(), feedback.Correction("Dress", token="tab-a"), backbone)
    feedback.add(jpeg(), feedback.Correction("Dress", token="tab-b"), backbone)  # another tab
    feedback.add(jpeg(), feedback.Correction("Dress"), backbone)  # the command line
    assert len(feedback.list_corrections()) == 5


def test_a_damaged_database_is_reported_and_left_as_it_is(db):
    db.parent.mkdir(parents=True)
    db.write_bytes(b"garbage, not SQLite" * 100)
    before = db.read_bytes()
    with pytest.raises(feedback.FeedbackError, match="damaged"):
        feedback.list_corrections()
    with pytest.raises(feedback.FeedbackError, match="damaged"):
        feedback.add(jpeg(), feedback.Correction("Coat"), FakeBackbone())
    assert db.read_bytes() == before


def test_a_locked_database_is_reported_as_busy(db, monkeypatch):
    feedback.add(jpeg(), feedback.Correction("Coat"), FakeBackbone())
    monkeypatch.setattr(feedback, "BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(feedback.FeedbackError, match="busy"):
            feedback.add(jpeg(), feedback.Correction("Coat"), FakeBackbone())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(feedback.list_corrections()) == 1


def test_a_database_from_a_newer_app_is_refused(db):
    feedback.add(jpeg(), feedback.Correction("Coat"), FakeBackbone())
    with sqlite3.connect(db) as connection:
        connection.execute(f"PRAGMA user_version = {feedback.SCHEMA_VERSION + 1}")
    with pytest.raises(feedback.FeedbackError, match="newer"):
        feedback.list_corrections()


def test_a_head_taught_shoe_types_weighs_its_own_split_beside_imagenets(tmp_path):
    from fmnist_core.photo import KEPT_IMAGENET, SANDAL, SHOE_TYPE_CLASSES, SHOES, SNEAKER, PhotoHead, fold_in_imagenet

    head = np.zeros((1, 11))
    head[0, list(SHOES)] = [0.05, 0.9, 0.05]  # the head, taught: a sneaker
    kept = np.full((1, len(KEPT_IMAGENET)), -30.0)
    kept[0, KEPT_IMAGENET.index(next(iter(SHOE_TYPE_CLASSES[SANDAL])))] = np.log(0.5)  # ImageNet: a sandal
    kept[0, KEPT_IMAGENET.index(next(iter(SHOE_TYPE_CLASSES[SNEAKER])))] = np.log(0.3)
    assert fold_in_imagenet(head, kept).argmax() == SANDAL  # untaught: ImageNet's split alone
    assert fold_in_imagenet(head, kept, head_shoe_types=True).argmax() == SNEAKER
    saved = PhotoHead(np.zeros((4, 11)), np.zeros(11), np.zeros(4), np.ones(4), taught_shoe_types=True)
    saved.save(tmp_path / "head.npz")
    assert PhotoHead.load(tmp_path / "head.npz").taught_shoe_types


def test_shoe_corrections_narrow_the_pools_clear_shoes_to_imagenets_type():
    from fmnist_core.photo import KEPT_IMAGENET, SANDAL, SHOE_TYPE_CLASSES, SHOES, SNEAKER

    labels = np.array(["Shoes", "Shoes", photo_train.CORRECTION_PREFIX + "Sneaker"])
    allowed = photo_train.allowed_outputs(labels[:2])
    allowed = np.vstack([allowed, np.eye(11, dtype=bool)[SNEAKER]])
    kept = np.full((3, len(KEPT_IMAGENET)), -30.0)
    kept[0, KEPT_IMAGENET.index(next(iter(SHOE_TYPE_CLASSES[SANDAL])))] = np.log(0.8)  # clearly a sandal
    photos = photo_train.PhotoSet(np.array(["a", "b", "c"]), labels, np.zeros((3, 4), np.float32), kept,
                                  allowed, np.array(["train"] * 3), np.ones(3), np.array(["phone"] * 3),
                                  np.zeros(3))
    targets = photo_train.training_targets(photos, photo_train.PhotoTrainConfig(with_feedback=True))
    assert targets[0].tolist() == np.eye(11, dtype=bool)[SANDAL].tolist()  # narrowed
    assert targets[1, list(SHOES)].all()  # ImageNet names no type: the set stays
    assert not photo_train.teaches_shoe_types(photos.where(np.array([True, True, False])))
    # Once the pool's own shoes are typed (by eye, shoe-types.csv), ImageNet no longer narrows the untyped ones.
    photos.allowed[1] = np.eye(11, dtype=bool)[SNEAKER]
    targets = photo_train.training_targets(photos, photo_train.PhotoTrainConfig(with_feedback=True))
    assert targets[0, list(SHOES)].all()


def test_a_correction_stored_before_the_item_views_is_recomputed_for_them(db):
    backbone = FakeBackbone("same")
    first = feedback.add(jpeg(colour=(10, 200, 10)), feedback.Correction("Coat"), backbone, accept=True)
    rows = feedback.accepted_rows(("item", "item-centre"), backbone=backbone)
    assert rows.features.shape == (1, 2 * 1280) and backbone.calls == 1  # stored with every view: no recompute
    with sqlite3.connect(db) as connection:  # as an older version stored it: two views, ImageNet averaged
        connection.execute("UPDATE corrections SET views = 'whole,centre', features = ?, imagenet_kept = ? "
                           "WHERE id = ?", (np.zeros((2, 1280), "<f4").tobytes(),
                                            np.zeros(13, "<f4").tobytes(), first))  # 13 classes kept then
    rows = feedback.accepted_rows(("item", "item-centre"), backbone=backbone)
    assert backbone.calls == 2 and rows.features.shape == (1, 2 * 1280) and rows.features.any()
    assert rows.imagenet_kept.shape == (1, len(KEPT_IMAGENET))
