"""Registry: round trip, atomic saves, the active pointer, broken models, path traversal."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fmnist_core import registry
from fmnist_core.data import to_model_input
from fmnist_core.predict import Classifier
from fmnist_core.registry import ModelLoadError, RegistryError


def test_save_load_round_trip_gives_identical_predictions(registry_dir, dataset, tmp_path):
    original = Classifier.load(root=registry_dir)
    images = to_model_input(dataset.x_test[:64])
    before = original.probabilities(images)
    new_id = registry.save_model(original.model, {"architecture": "seed-basic"}, root=registry_dir)
    after = Classifier.load(new_id, root=registry_dir).probabilities(images)
    np.testing.assert_allclose(before, after, rtol=1e-6, atol=1e-6)


def test_meta_json_records_how_the_model_was_made(registry_dir):
    meta = registry.read_meta(registry.get_active_id(registry_dir), registry_dir)
    for key in ("architecture", "config", "test_metrics", "train_seconds", "train_cpu_seconds", "params", "dataset",
                "versions", "created_at"):
        assert key in meta, key
    assert meta["train_cpu_seconds"] > 0
    assert len(meta["test_metrics"]["confusion_matrix"]) == 10
    assert set(meta["test_metrics"]["per_class"]["Trouser"]) >= {"precision", "recall", "f1"}
    assert meta["versions"]["keras"].startswith("3.")


def test_interrupted_save_leaves_active_pointer_and_listing_intact(registry_dir, monkeypatch):
    active = registry.get_active_id(registry_dir)
    model = Classifier.load(root=registry_dir).model
    before = [info.model_id for info in registry.list_models(registry_dir)]

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process is interrupted in the middle of writing

    monkeypatch.setattr(registry, "atomic_write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        registry.save_model(model, {"architecture": "seed-basic"}, root=registry_dir)
    assert registry.get_active_id(registry_dir) == active
    assert [info.model_id for info in registry.list_models(registry_dir)] == before
    assert not [p for p in registry_dir.iterdir() if p.name.startswith(".tmp-")]
    Classifier.load(root=registry_dir)  # still loads


def test_unwritable_registry_gives_clear_error(registry_dir, monkeypatch):
    model = Classifier.load(root=registry_dir).model

    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(model), "save", disk_full)
    with pytest.raises(RegistryError, match="No space left"):
        registry.save_model(model, {"architecture": "x"}, root=registry_dir)
    assert registry.get_active_id(registry_dir) is not None


def test_corrupt_model_file_is_a_clear_error_and_listed_as_such(registry_dir):
    good = registry.get_active_id(registry_dir)
    broken = "broken-model"
    shutil.copytree(registry_dir / good, registry_dir / broken)
    (registry_dir / broken / "model.keras").write_bytes(b"this is not a zip")
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        registry.load_model(broken, registry_dir)
    (registry_dir / broken / "meta.json").write_text("{not json")
    infos = {info.model_id: info for info in registry.list_models(registry_dir)}
    assert not infos[broken].ok and "unreadable" in infos[broken].problem
    assert infos[good].ok
    Classifier.load(good, root=registry_dir)


def test_missing_model_file(registry_dir):
    good = registry.get_active_id(registry_dir)
    (registry_dir / good / "model.keras").unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        registry.load_model(good, registry_dir)


@pytest.mark.parametrize("bad_id", ["../../etc", "..", "/etc/passwd", "a/b", ".hidden", "", "x" * 200, "a\x00b"])
def test_path_traversal_ids_are_refused(registry_dir, bad_id):
    with pytest.raises(RegistryError, match="invalid model id"):
        registry.load_model(bad_id, registry_dir)
    with pytest.raises(RegistryError):
        registry.set_active(bad_id, registry_dir)


def test_activate_and_delete(registry_dir):
    first = registry.get_active_id(registry_dir)
    model = Classifier.load(root=registry_dir).model
    second = registry.save_model(model, {"architecture": "seed-basic"}, root=registry_dir)
    registry.set_active(second, registry_dir)
    assert registry.get_active_id(registry_dir) == second
    with pytest.raises(RegistryError, match="active"):
        registry.delete_model(second, registry_dir)
    registry.delete_model(first, registry_dir)
    assert [info.model_id for info in registry.list_models(registry_dir)] == [second]


def test_activate_unknown_model_is_refused(registry_dir):
    with pytest.raises(RegistryError, match="no model"):
        registry.set_active("does-not-exist", registry_dir)


def test_empty_registry_has_clear_message(empty_registry):
    with pytest.raises(RegistryError, match="no active model"):
        Classifier.load()


def test_grad_cam_highlights_the_item(registry_dir, dataset):
    classifier = Classifier.load(root=registry_dir)
    image = dataset.x_test[1]
    cam = classifier.grad_cam(image)
    assert cam.shape == (28, 28) and 0.0 <= cam.min() and cam.max() <= 1.0 + 1e-6
    again = classifier.grad_cam(image, classifier.classify_array(image).class_index)
    np.testing.assert_allclose(cam, again, atol=1e-5)


def _model_scoring(registry_dir, accuracy: float | None) -> str:
    """A registry copy of the active model whose meta records a full-test-set accuracy."""
    model = Classifier.load(root=registry_dir).model
    meta = {"architecture": "seed-basic", "dataset": {"test_images": 10000}}
    if accuracy is not None:
        meta["test_metrics"] = {"accuracy": accuracy, "loss": 0.3}
    return registry.save_model(model, meta, root=registry_dir)


def test_activating_a_much_worse_model_needs_confirmation(registry_dir):
    good = _model_scoring(registry_dir, 0.93)
    registry.set_active(good, registry_dir)
    slightly_worse, broken, unknown = (_model_scoring(registry_dir, a) for a in (0.925, 0.1017, None))
    assert registry.activation_drop(slightly_worse, registry_dir) is None  # within 1 point
    risk = registry.activation_drop(broken, registry_dir)
    assert risk is not None and risk.points == pytest.approx(82.83)
    assert "82.8 points below the active model" in risk.describe() and good in risk.describe()
    assert "no recorded test accuracy" in registry.activation_drop(unknown, registry_dir).describe()
    assert registry.activation_drop(good, registry_dir) is None  # the active one itself


def test_cli_activate_refuses_a_worse_model_without_force(registry_dir):
    from tests.unit.test_cli import run_cli

    good = _model_scoring(registry_dir, 0.93)
    registry.set_active(good, registry_dir)
    broken = _model_scoring(registry_dir, 0.1)
    refused = run_cli("activate", broken, env_root=registry_dir)
    assert refused.returncode == 1 and "83.0 points below" in refused.stderr and "--force" in refused.stderr
    assert registry.get_active_id(registry_dir) == good
    forced = run_cli("activate", broken, "--force", env_root=registry_dir)
    assert forced.returncode == 0 and "warning" in forced.stdout
    assert registry.get_active_id(registry_dir) == broken


def test_reserved_folder_names_are_not_model_ids(registry_dir):
    for name in ("photo", "backbones"):
        with pytest.raises(RegistryError, match="invalid model id"):
            registry.delete_model(name, registry_dir)
