"""The command line contract: predict --json, evaluate --json, models, activate, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import REPO_ROOT


def run_cli(*args, env_root=None):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    if env_root:
        env["FMNIST_MODELS_DIR"] = str(env_root)
    return subprocess.run([sys.executable, "-m", "fmnist_core", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, timeout=300)


def test_predict_json_contract_good_and_bad_files(registry_dir, dataset, tmp_path):
    good = tmp_path / "trouser.png"
    Image.fromarray(dataset.x_test[2]).resize((112, 112), Image.NEAREST).save(good)
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello, I am text")
    missing = tmp_path / "missing.jpg"
    result = run_cli("predict", good, bad, missing, "--json", "--top-k", "4", env_root=registry_dir)
    assert result.returncode == 2, result.stderr
    records = json.loads(result.stdout)
    assert [record["file"] for record in records] == [str(good), str(bad), str(missing)]
    first = records[0]
    assert set(first) >= {"file", "class_index", "class_name", "confidence", "top_k"}
    assert 0 <= first["class_index"] <= 9 and 0.0 <= first["confidence"] <= 1.0
    assert len(first["top_k"]) == 4 and first["top_k"][0][0] == first["class_name"]
    assert abs(first["top_k"][0][1] - first["confidence"]) < 1e-6
    for record in records[1:]:
        assert set(record) == {"file", "error"} and "\n" not in record["error"] and record["error"]
    assert "no such file" in records[2]["error"]


def test_predict_all_good_exits_zero(registry_dir, dataset, tmp_path):
    path = tmp_path / "shoe.png"
    Image.fromarray(dataset.x_test[0]).save(path)
    result = run_cli("predict", path, env_root=registry_dir)
    assert result.returncode == 0, result.stderr
    assert str(path) in result.stdout


def test_evaluate_json(registry_dir):
    result = run_cli("evaluate", "--json", env_root=registry_dir)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 10_000 and 0.0 < report["accuracy"] <= 1.0 and report["model"]


def test_models_and_activate(registry_dir):
    listing = json.loads(run_cli("models", "--json", env_root=registry_dir).stdout)
    assert len(listing) == 1 and listing[0]["active"]
    result = run_cli("activate", "../../etc", env_root=registry_dir)
    assert result.returncode == 1 and "invalid model id" in result.stderr and "Traceback" not in result.stderr


def test_train_json_small(tmp_path):
    result = run_cli("train", "--preset", "quick", "--architecture", "seed-basic", "--epochs", "1", "--subset", "256",
                     "--test-subset", "100", "--run-dir", tmp_path / "run", "--json", env_root=tmp_path / "models")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert {"test_accuracy", "train_seconds", "train_cpu_seconds", "model_id"} <= set(report)
    assert report["train_cpu_seconds"] > 0
    assert (report["batch_size_used"], report["config"]["batch_size"]) == (32, 256)  # 1 step of 256: too short


def test_evaluate_tta_record_updates_meta(registry_dir):
    from fmnist_core import registry

    model_id = registry.get_active_id(registry_dir)
    result = run_cli("evaluate", "--tta", "flip+shift", "--record", "--json", env_root=registry_dir)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    meta = registry.read_meta(model_id, registry_dir)
    assert report["tta"] == "flip+shift" and meta["tta"] == "flip+shift"
    assert meta["test_metrics"]["accuracy"] == report["accuracy"]
    assert meta["rescored"]["previous"]["tta"] == "off"
    refused = run_cli("evaluate", "--tta", "sideways", env_root=registry_dir)
    assert refused.returncode != 0 and "invalid choice" in refused.stderr


def test_train_overrides_reach_the_config():
    from fmnist_core.cli import build_parser, train_config_from_args

    args = build_parser().parse_args(["train", "--preset", "best", "--random-erasing", "0.25", "--epochs", "7"])
    config = train_config_from_args(args)
    assert (config.preset, config.random_erasing, config.epochs, config.augmentation) == ("best", 0.25, 7, True)
    args = build_parser().parse_args(["train", "--optimizer", "sgd", "--weight-decay", "0.005"])
    assert (train_config_from_args(args).optimizer, train_config_from_args(args).weight_decay) == ("sgd", 0.005)
    args = build_parser().parse_args(["train", "--weight-averaging", "0.999"])
    assert train_config_from_args(args).weight_averaging == 0.999
    args = build_parser().parse_args(["train", "--weight-averaging", "1.5"])
    with pytest.raises(ValueError, match="weight_averaging must be"):
        train_config_from_args(args).validate()
