"""AppTest: correcting an answer on the Classify page, reviewing on the Corrections page, training on them."""

from __future__ import annotations

import io

from PIL import Image

from fmnist_core import feedback, jobs
from tests.app.conftest import assert_clean, open_page
from tests.app.test_pages import _jpeg_of_a_garment_on_a_floor, texts
from tests.unit.test_feedback import FakeBackbone, jpeg


def upload(app, *files: tuple[str, bytes]):
    app.file_uploader(key="classify_uploads").set_value([(name, data, "image/jpeg") for name, data in files]).run()
    assert_clean(app)
    return app


def only_key(app, kind: str, prefix: str) -> str:
    """The key of the one widget of a kind whose key starts with prefix."""
    keys = [widget.key for widget in getattr(app, kind) if widget.key and widget.key.startswith(prefix)]
    assert len(keys) == 1, keys
    return keys[0]


def test_a_wrong_answer_is_corrected_and_stored_with_what_the_models_said(photo_registry):
    app = upload(open_page("classify"), ("floor.jpg", _jpeg_of_a_garment_on_a_floor()))
    assert "kept only if you send an answer" in texts(app)
    send = only_key(app, "button", "feedback_send_")
    assert app.button(key=send).disabled  # nothing chosen yet
    app.selectbox(key=only_key(app, "selectbox", "feedback_label_")).set_value("not one of the ten classes").run()
    app.button(key=send).click().run()
    assert_clean(app)
    [row] = feedback.list_corrections()
    assert row["label"] == "none" and row["verdict"] == "wrong" and row["status"] == "pending"
    assert row["photo_model_id"] and row["photo_answer"] and row["cnn_model_id"] and row["source"] == "upload"
    assert f"stored as correction {row['id']}" in texts(app)
    assert not [b for b in app.button if (b.key or "").startswith("feedback_send_")]  # sent once, not twice


def test_right_is_stored_as_the_answer_given(photo_registry):
    app = upload(open_page("classify"), ("floor.jpg", _jpeg_of_a_garment_on_a_floor()))
    app.button(key=only_key(app, "button", "feedback_right_")).click().run()
    [row] = feedback.list_corrections()
    assert row["verdict"] == "right" and row["label"] == row["photo_answer"]


def test_a_tab_over_its_hourly_allowance_is_told_and_nothing_is_stored(photo_registry, monkeypatch):
    monkeypatch.setenv("FMNIST_FEEDBACK_RATE", "1")
    other = io.BytesIO()
    Image.open(io.BytesIO(_jpeg_of_a_garment_on_a_floor())).rotate(90).save(other, "JPEG")
    app = upload(open_page("classify"), ("a.jpg", _jpeg_of_a_garment_on_a_floor()), ("b.jpg", other.getvalue()))
    first, second = [b.key for b in app.button if (b.key or "").startswith("feedback_right_")]
    app.button(key=first).click().run()
    app.button(key=second).click().run()
    assert any("the most allowed" in w.value for w in app.warning)
    assert len(feedback.list_corrections()) == 1


def test_a_damaged_database_is_one_message_and_the_answer_stays(photo_registry, tmp_path, monkeypatch):
    db = tmp_path / "damaged.sqlite3"
    db.write_bytes(b"not a database" * 100)
    monkeypatch.setenv(feedback.DB_ENV, str(db))
    app = upload(open_page("classify"), ("floor.jpg", _jpeg_of_a_garment_on_a_floor()))
    app.button(key=only_key(app, "button", "feedback_right_")).click().run()
    assert_clean(app)
    assert any("not stored" in e.value and "damaged" in e.value for e in app.error)
    assert any("(photo model)" in e.value for kind in ("success", "warning", "info") for e in getattr(app, kind))
    review = open_page("feedback")
    assert_clean(review)
    assert any("cannot be read" in e.value for e in review.error)
    assert db.read_bytes() == b"not a database" * 100


def test_corrections_are_reviewed_behind_the_admin_gate(registry_dir, monkeypatch):
    monkeypatch.setenv("FMNIST_ADMIN_PASSWORD", "s3cret")
    backbone = FakeBackbone()
    ids = [feedback.add(jpeg(colour=(i * 60, 20, 20)), feedback.Correction(label, photo_answer="Ankle boot"), backbone)
           for i, label in enumerate(["none", "Sneaker"])]
    app = open_page("feedback")
    assert_clean(app)
    assert [m.value for m in app.metric][:3] == ["2", "0", "0"]
    assert not [b for b in app.button if b.key == "feedback_accept"]  # locked
    app.selectbox(key="feedback_label").set_value("Sneaker").run()
    assert [c.key for c in app.checkbox if c.key.startswith("feedback_pick_")] == [f"feedback_pick_{ids[1]}"]
    app.text_input(key="password_feedback_review").set_value("s3cret")
    app.button(key="unlock_button_feedback_review").click().run()
    app.checkbox(key=f"feedback_pick_{ids[1]}").check().run()
    app.button(key="feedback_accept").click().run()
    assert_clean(app)
    assert feedback.counts()["accepted"] == {"Sneaker": 1} and feedback.counts()["pending"] == {"none": 1}


def test_the_photo_head_trains_on_accepted_corrections_from_the_train_page(photo_registry):
    from fmnist_core import photo

    for index in range(3):
        feedback.add_with_model(jpeg(colour=(250, 250 - index * 30, 240)), feedback.Correction("Bag"), None,
                                accept=True)
    app = open_page("train")
    assert_clean(app)
    assert app.checkbox(key="photo_with_feedback").value is True
    app.number_input(key="photo_feedback_weight").set_value(40.0)
    app.button(key="photo_train_start").click().run()
    status = jobs.wait(jobs.current_run_id(), timeout=300)
    assert status["state"] == "finished", status
    meta = {info.model_id: info.meta for info in photo.list_photo_heads()}[status["model_id"]]
    assert meta["config"]["with_feedback"] and meta["config"]["feedback_weight"] == 40.0
    assert meta["corrections"]["count"] == 3 and meta["corrections"]["per_label"] == {"Bag": 3}
    app.run()
    assert_clean(app)
    [table] = [frame.value for frame in app.dataframe if "corrections used" in frame.value.columns]
    assert table["corrections used"].tolist()[0] == 3  # the new head first, the active one beside it
