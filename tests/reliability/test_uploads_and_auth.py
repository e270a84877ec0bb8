"""Hostile uploads through the real Classify page, the admin gate, and the Streamlit settings."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from fmnist_core import registry
from tests.app.conftest import assert_clean, open_page
from tests.conftest import REPO_ROOT

CORPUS = REPO_ROOT / "tests" / "data" / "uploads"


def registry_snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_every_corpus_file_gets_a_message_or_result_and_changes_nothing(registry_dir):
    files = sorted(CORPUS.iterdir())
    assert len(files) >= 15
    before = registry_snapshot(registry_dir)
    app = open_page("classify")
    uploads = [(path.name, path.read_bytes(), "application/octet-stream") for path in files]
    # Plus one file over the upload limit (5 MB by default).
    uploads.append(("over_limit.jpg", b"\xff\xd8" + b"\x00" * (6 * 1024 * 1024), "image/jpeg"))
    app.file_uploader(key="classify_uploads").set_value(uploads).run()
    assert_clean(app)
    headings = [m.value for m in app.markdown if str(m.value).startswith("#### ")]
    assert len(headings) == len(uploads), "every file gets its own result block"
    outcomes = " ".join(e.value for e in app.error) + " ".join(w.value for w in app.warning) + " ".join(
        s.value for s in app.success)
    for name in ("empty.png", "truncated.jpg", "text_named.png", "html_named.jpg", "bomb_50000x50000.png",
                 "zip_named.png", "over_limit.jpg"):
        assert name in outcomes, name
    assert "upload limit" in outcomes and "decompression bomb" in outcomes
    for error in app.error:
        assert "\n" not in error.value.strip() and "Traceback" not in error.value
    assert registry_snapshot(registry_dir) == before


def test_admin_password_gates_training_and_activation(registry_dir, monkeypatch):
    monkeypatch.setenv("FMNIST_ADMIN_PASSWORD", "correct horse")
    app = open_page("train")
    assert_clean(app)
    assert not [b for b in app.button if b.key == "train_start"], "no Start button before unlocking"
    app.text_input(key="password_train").set_value("wrong")
    app.button(key="unlock_button_train").click().run()
    assert any("Wrong password" in e.value for e in app.error)
    app.text_input(key="password_train").set_value("correct horse")
    app.button(key="unlock_button_train").click().run()
    assert_clean(app)
    assert [b for b in app.button if b.key == "train_start"], "Start button after unlocking"


def test_admin_password_never_shown(registry_dir, monkeypatch):
    monkeypatch.setenv("FMNIST_ADMIN_PASSWORD", "s3cret-value")
    app = open_page("train")
    rendered = " ".join(str(element.value) for kind in ("markdown", "caption", "error", "info")
                        for element in getattr(app, kind))
    assert "s3cret-value" not in rendered
    from fmnist_core.security import admin_policy

    assert "s3cret-value" not in repr(admin_policy())


def test_admin_actions_can_be_turned_off(registry_dir, monkeypatch):
    monkeypatch.setenv("FMNIST_DISABLE_ADMIN", "1")
    app = open_page("train")
    assert_clean(app)
    assert any("turned off" in i.value for i in app.info)
    assert not [b for b in app.button if b.key == "train_start"]
    # Viewing and classifying stay open.
    assert_clean(open_page("classify"))


def test_password_comparison_is_constant_time_and_exact():
    from fmnist_core.security import AdminPolicy, password_matches

    policy = AdminPolicy("password", "abc")
    assert password_matches("abc", policy)
    assert not password_matches("abd", policy) and not password_matches("", policy)
    assert not password_matches(None, policy) and not password_matches("abc", AdminPolicy("open"))


def test_streamlit_settings_are_safe():
    settings = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["server"]["maxUploadSize"] <= 10
    assert settings["server"]["enableXsrfProtection"] is True
    assert settings["server"]["headless"] is True
    assert settings["browser"]["gatherUsageStats"] is False


def test_broken_model_is_marked_and_app_keeps_working(registry_dir):
    good = registry.get_active_id(registry_dir)
    broken = registry_dir / "zz-broken"
    broken.mkdir()
    (broken / "model.keras").write_bytes(b"garbage")
    (broken / "meta.json").write_text("{ nope")
    app = open_page("overview")
    assert_clean(app)
    classify = open_page("classify")
    assert_clean(classify)
    evaluate = open_page("evaluate")
    assert_clean(evaluate)
    assert registry.get_active_id(registry_dir) == good
    infos = {info.model_id: info for info in registry.list_models(registry_dir)}
    assert not infos["zz-broken"].ok


def test_active_model_corrupt_gives_clear_message(registry_dir):
    good = registry.get_active_id(registry_dir)
    (registry_dir / good / "model.keras").write_bytes(b"not a model")
    app = open_page("classify")
    assert_clean(app)
    assert any("could not be loaded" in e.value for e in app.error)


@pytest.mark.parametrize("bad", ["../../etc", "..%2f..%2fetc", "/etc/passwd"])
def test_model_ids_from_outside_are_refused(registry_dir, bad):
    with pytest.raises(registry.RegistryError):
        registry.model_dir(bad)
