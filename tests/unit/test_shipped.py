"""The shipped models' manifest, the image's pruning, and bringing shipped models into a user's registry."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from fmnist_core import registry, shipped
from tests.conftest import REPO_ROOT


def test_the_manifest_names_exactly_the_models_the_repository_tracks():
    manifest = shipped.read_manifest()
    tracked = subprocess.run(["git", "ls-files", "models"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    for kind, sub in (("cnn", "models/"), ("photo", "models/photo/")):
        ids = {path[len(sub):].split("/")[0] for path in tracked
               if path.startswith(sub) and path.count("/") == sub.count("/") + 1}
        ids -= {"photo", "backbones"}
        assert ids == set(manifest[kind].models), kind
    assert json.loads((REPO_ROOT / "models" / "active.json").read_text())["model_id"] == manifest["cnn"].active


def fake_registry(root, cnn=("cnn-a", "cnn-b"), photo=("photo-a",), active=("cnn-a", "photo-a")):
    """A models directory shaped like the repository's, with tiny stand-in model files and a manifest."""
    for model_id in cnn:
        (root / model_id).mkdir(parents=True)
        (root / model_id / "model.keras").write_bytes(model_id.encode())
        (root / model_id / "meta.json").write_text(json.dumps({"model_id": model_id}))
    for model_id in photo:
        (root / "photo" / model_id).mkdir(parents=True)
        (root / "photo" / model_id / "head.npz").write_bytes(model_id.encode())
        (root / "photo" / model_id / "meta.json").write_text(json.dumps({"model_id": model_id}))
    (root / "shipped.json").write_text(json.dumps({"cnn": {"models": list(cnn), "active": active[0]},
                                                   "photo": {"models": list(photo), "active": active[1]}}))
    return root


def test_prune_keeps_only_the_manifests_models_and_its_active_pointers(tmp_path):
    root = fake_registry(tmp_path / "models")
    (root / "my-own-run").mkdir()
    (root / "my-own-run" / "model.keras").write_bytes(b"x")
    (root / "photo" / "my-head").mkdir()
    registry.set_active("cnn-b", root)
    assert sorted(shipped.prune(root)) == ["cnn/my-own-run", "photo/my-head"]
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["cnn-a", "cnn-b", "photo"]
    assert registry.get_active_id(root) == "cnn-a" and registry.get_active_id(root / "photo") == "photo-a"


def test_a_manifest_whose_active_model_is_not_shipped_is_refused(tmp_path):
    root = fake_registry(tmp_path / "models", active=("cnn-z", "photo-a"))
    with pytest.raises(registry.RegistryError, match="not shipped"):
        shipped.read_manifest(root)


def test_sync_fills_an_empty_volume_then_keeps_the_users_models_and_choice(tmp_path):
    image = fake_registry(tmp_path / "image")
    volume = tmp_path / "volume"
    assert len(shipped.sync(image, volume)) == 5  # three models and two active pointers
    assert registry.get_active_id(volume) == "cnn-a" and registry.get_active_id(volume / "photo") == "photo-a"
    # The user trains and activates a model of their own; a restart changes nothing.
    (volume / "mine").mkdir()
    (volume / "mine" / "model.keras").write_bytes(b"mine")
    registry.set_active("mine", volume)
    assert shipped.sync(image, volume) == []
    assert registry.get_active_id(volume) == "mine"


def test_an_upgraded_image_brings_new_and_changed_models_and_moves_a_default_pointer(tmp_path):
    old = fake_registry(tmp_path / "old")
    volume = tmp_path / "volume"
    shipped.sync(old, volume)
    (volume / "mine").mkdir()
    (volume / "mine" / "model.keras").write_bytes(b"mine")
    # The next image ships cnn-c (active), drops cnn-b and retrains photo-a in place.
    new = fake_registry(tmp_path / "new", cnn=("cnn-a", "cnn-c"), active=("cnn-c", "photo-a"))
    (new / "photo" / "photo-a" / "head.npz").write_bytes(b"retrained")
    changes = shipped.sync(new, volume)
    assert "cnn: added shipped model cnn-c" in changes and "photo: updated shipped model photo-a" in changes
    assert not (volume / "cnn-b").exists() and (volume / "mine" / "model.keras").read_bytes() == b"mine"
    assert registry.get_active_id(volume) == "cnn-c"  # the user had kept the shipped default
    assert (volume / "photo" / "photo-a" / "head.npz").read_bytes() == b"retrained"
    assert not [p for p in volume.rglob(".tmp-*")]


def test_an_upgrade_keeps_a_model_the_user_activated_even_when_it_is_no_longer_shipped(tmp_path):
    old = fake_registry(tmp_path / "old")
    volume = tmp_path / "volume"
    shipped.sync(old, volume)
    registry.set_active("cnn-b", volume)
    new = fake_registry(tmp_path / "new", cnn=("cnn-a",), active=("cnn-a", "photo-a"))
    shipped.sync(new, volume)
    assert registry.get_active_id(volume) == "cnn-b" and (volume / "cnn-b").is_dir()


def test_the_command_line_says_what_is_wrong_with_a_missing_manifest(tmp_path, capsys):
    shutil.copytree(fake_registry(tmp_path / "models"), tmp_path / "copy")
    (tmp_path / "copy" / "shipped.json").unlink()
    assert shipped.main(["sync", str(tmp_path / "copy"), str(tmp_path / "volume")]) == 1
    assert "shipped.json is missing or malformed" in capsys.readouterr().err
    assert shipped.main(["bogus"]) == 2
