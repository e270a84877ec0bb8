"""The benchmark's --quick sanity mode runs end to end and writes its JSON and plot."""

from __future__ import annotations

import json
import subprocess
import sys

from fmnist_core.config import TTA_MODES
from tests.conftest import REPO_ROOT


def test_bench_quick_mode(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--entries", "baseline,quick",
                             "--out", str(tmp_path)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "train_quick.json").read_text())
    assert report["quick_mode"] and [r["entry"] for r in report["results"]] == ["baseline", "quick"]
    for row in report["results"]:
        assert 0 < row["train_seconds"] and 0 < row["train_cpu_seconds"] and 0 <= row["test_accuracy"] <= 1
        assert row["latency_array_ms"]["median"] > 0 and row["peak_rss_mb"] > 0
    assert (tmp_path / "train_quick.png").stat().st_size > 1000
    assert "| baseline |" in result.stdout and "x baseline time" in result.stdout


def test_inference_bench_measures_a_registry_model(registry_dir, tmp_path):
    from bench.inference import main

    out = tmp_path / "inference.json"
    assert main(["--calls", "3", "--photos", "4", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["model"] and report["params"] > 0
    assert set(report["eval_10k_seconds"]) == set(report["eval_10k_accuracy"]) == set(TTA_MODES)
    assert all(seconds > 0 for seconds in report["eval_10k_seconds"].values())
    assert all(0 <= accuracy <= 1 for accuracy in report["eval_10k_accuracy"].values())
    for figure in ("latency_array_ms", "latency_photo_ms", "page_upload_ms"):
        assert 0 < report[figure]["median"] <= report[figure]["p95"]


def test_pairs_bench_compares_a_fine_tuned_model_with_its_base(registry_dir, dataset, tmp_path):
    from bench.pairs import main
    from fmnist_core import registry
    from fmnist_core.config import TrainConfig
    from fmnist_core.train import train

    base = registry.get_active_id()
    config = TrainConfig(architecture="seed-basic", epochs=1, batch_size=64, subset=256, test_subset=50,
                         validation_split=0.0, finetune_epochs=1, shoe_pairs=0.5, init_from=base)
    tuned = train(config, tmp_path / "run", dataset=dataset, activate=True)["model_id"]
    out = tmp_path / "pairs.json"
    assert main(["--limit", "60", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n"] == 60 and [row["model"] for row in report["results"]] == [base, tuned]
    for row in report["results"]:
        for key in ("single_accuracy", "single_non_shoe", "paired_accuracy", "paired_non_shoe"):
            assert 0 <= row[key] <= 1


def test_repeat_table_gives_wall_and_cpu_ratios_to_the_baseline():
    from bench.repeat import markdown_table

    def row(seconds, cpu_seconds):
        return {"accuracy_median": 0.9, "accuracy_min": 0.89, "accuracy_max": 0.91, "seconds_median": seconds,
                "seconds_min": seconds, "seconds_max": seconds, "cpu_seconds_median": cpu_seconds,
                "cpu_seconds_min": cpu_seconds, "cpu_seconds_max": cpu_seconds}

    table = markdown_table({"baseline": row(200, 300), "quick": row(100, 240)})
    quick_line = next(line for line in table.splitlines() if line.startswith("| quick"))
    assert "| 0.50 |" in quick_line and quick_line.endswith("| 0.80 |")


def test_drawings_bench_draws_the_garment_the_page_would_see(dataset):
    import numpy as np

    from bench.drawings import STYLES, drawing_of
    from fmnist_core.preprocess import preprocess_drawing

    def overlap(a, b):
        return (a & b).sum() / (a | b).sum()

    rng = np.random.default_rng(0)
    own, other = [], []
    for index in range(20):
        silhouette, next_silhouette = dataset.x_test[index] > 40, dataset.x_test[index + 1] > 40
        for style in STYLES:
            canvas = drawing_of(dataset.x_test[index], style, rng)
            assert canvas.shape == (280, 280, 4) and set(np.unique(canvas[..., 3])) <= {0, 255}
            seen = preprocess_drawing(canvas).image > 127
            if style == "filled":  # the 28x28 view the model gets has the garment's shape, not another's
                own.append(overlap(seen, silhouette))
                other.append(overlap(seen, next_silhouette))
            else:  # an outline: strokes, not a filled square
                assert 0 < seen.sum() < 28 * 28
    assert np.median(own) > 0.7 and np.median(own) > np.median(other) + 0.2, (np.median(own), np.median(other))


def test_drawings_bench_scores_a_registry_model(registry_dir, capsys, monkeypatch):
    import json
    import sys

    from bench import drawings
    from fmnist_core.registry import get_active_id

    model_id = get_active_id()
    monkeypatch.setattr(sys, "argv", ["bench.drawings", "--models", model_id, "--count", "20"])
    drawings.main()
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(report[model_id]) == {"filled", "outline"}
    assert all(0 <= report[model_id][style]["accuracy"] <= 1 for style in ("filled", "outline"))


def test_ensembles_bench_averages_members_over_their_views(registry_dir, tmp_path, monkeypatch):
    import json
    import sys

    import numpy as np

    from bench import ensembles
    from fmnist_core.registry import get_active_id

    model_id = get_active_id()
    out = tmp_path / "ensembles.json"
    monkeypatch.setattr(sys, "argv", ["bench.ensembles", "--models", f"{model_id},{registry_dir / model_id}",
                                      "--out", str(out)])
    ensembles.main()
    alone_by_id, alone_by_dir, together = json.loads(out.read_text())["rows"]
    assert together["members"] == [model_id, model_id] and together["params"] == 2 * alone_by_id["params"] > 0
    for views in ("plain", "flip", "flip+shift"):  # a model averaged with itself answers as it does alone
        assert together[views] == alone_by_id[views] == alone_by_dir[views]
    labels = np.array([0, 1])
    confident_wrong = np.array([[[0.1, 0.9], [0.9, 0.1]]] * 10)  # 10 views x 2 images x 2 classes
    barely_right = np.array([[[0.6, 0.4], [0.4, 0.6]]] * 10)
    assert ensembles.accuracies([barely_right], labels)["plain"] == 1.0
    assert ensembles.accuracies([barely_right, confident_wrong], labels)["flip+shift"] == 0.0


def test_photo_bench_weighs_every_source_label_alike_in_its_mean():
    """Nine right T-shirts and one wrong hoodie: 90 % of the photos, but a mean over the two labels of 50 %."""
    import numpy as np

    from bench.photo_model import per_label

    labels = np.array(["T-Shirt"] * 9 + ["Hoodie", "Hat"])
    right = np.array([True] * 9 + [False, True])
    sure = np.array([True] * 4 + [False] * 5 + [True, False])
    ten = labels != "Hat"
    figures = per_label(right, sure, labels, ten)
    assert figures["right_mean_over_labels"] == 0.5
    assert set(figures["labels"]) == {"T-Shirt", "Hoodie"}
    assert figures["labels"]["T-Shirt"] == {"photos": 9, "right": 1.0, "sure_coverage": 0.4444, "sure_right": 1.0}
    assert figures["labels"]["Hoodie"] == {"photos": 1, "right": 0.0, "sure_coverage": 1.0, "sure_right": 0.0}
    # sure: 4 of 9 T-shirts (right) and the hoodie (wrong), each label weighing one half
    assert figures["sure_coverage_over_labels"] == round((0.5 * 4 / 9 + 0.5) / 1.0, 4)
    assert figures["sure_right_over_labels"] == round((0.5 * 4 / 9) / (0.5 * 4 / 9 + 0.5), 4)
