"""Photos of every kind, side by side: the Fashion-MNIST CNN, the previous photo head and the active one, in one run.

    python -m bench.photo_model                              # every domain, every model
    python -m bench.photo_model --limit 60                   # a quick look (at most 60 photos a domain)
    python -m bench.photo_model --previous 20261202-074717-photo-lite0-afbf

Domains: the held-out split of ../shared/clothing (phone photos; fmnist_core.photo_train.split_of "test",
never fitted or calibrated on; a shoe typed in shoe-types.csv counts as its type only), ../shared/photos
(phone photos), ../shared/shop over the ten classes (shop product shots), ../shared/shop/none (worn, but none
of the ten: socks, belts, caps, hats, sunglasses, shorts, skirts) and pictures with no garment at all
(bench.non_garments). Every photo goes through fmnist_core.answer.answer_image as the page and the CLI send
it: "cnn" with choice "cnn", a photo head with choice "photo" and the CNN's view beside it (so a head with a
CNN weight mixes its opinion in on a white page); "active, alone" is the active head without the CNN (cnn_view
off).

Per domain and model: right over the ten classes (a phone label such as Longsleeve allows both of its
classes), the share of sure answers and how often they are right, per class the same, "flagged" (answered
not one of the ten) on the domains with nothing of the ten, and for the active head the coverage/accuracy
curve of its sure answers when every class shares one threshold. The held-out phone photos also per source
label, and over the labels weighing each alike (as a check with the same number of photos per label does).
Also the time per photo of the page's answer (median, p95), model load times and the peak memory of this
process with both models loaded.
Writes bench/results/photo_model.json and prints the tables for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
FOLDER_TO_CLASS = {"tshirt_top": 0, "trouser": 1, "pullover": 2, "dress": 3, "coat": 4, "sandal": 5, "shirt": 6,
                   "sneaker": 7, "bag": 8, "ankle_boot": 9}
PREVIOUS_HEAD = "20261202-074717-photo-lite0-afbf"  # the head shipped before item views, composites and the gate
CURVE = (0.5, 0.6, 0.7, 0.8, 0.9)


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine() -> str:
    """The CPU's name, family and model (Zen 3, 4 and 5 all call themselves "AMD EPYC"), and its cores."""
    from fmnist_core.estimate import cpu_model

    fields = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines()[:12] if ":" in line)
    family, model = fields.get("cpu family\t", "?").strip(), fields.get("model\t\t", "?").strip()
    return f"{cpu_model()}, family {family} model {model}"


@functools.cache
def clothing_rows() -> tuple[tuple[Path, str], ...]:
    """(photo path, source label) of every photo of ../shared/clothing; none when it is not there."""
    clothing = SHARED / "clothing"
    if not (clothing / "labels.csv").is_file():
        return ()
    with open(clothing / "labels.csv", newline="", encoding="utf-8") as handle:
        return tuple((clothing / row["file"], row["source_label"]) for row in csv.DictReader(handle))


def domains(limit: int | None) -> dict[str, list[tuple[object, frozenset]]]:
    """Per domain, (image source, the outputs that count as right) for every photo there is."""
    from bench.non_garments import non_garment_images
    from fmnist_core.photo import NONE_INDEX
    from fmnist_core.photo_train import (
        CHECKED_LABELS,
        FEATURES_FILE,
        NOT_OF_THE_TEN,
        SHOE_TYPES_NAME,
        allowed_outputs,
        read_shoe_types,
        split_of,
        typed_shoes,
    )

    found: dict[str, list] = {}
    if rows := clothing_rows():
        held_out = [(path, label) for path, label in rows
                    if split_of(path.name) == "test" and label in (*CHECKED_LABELS, *NOT_OF_THE_TEN)]
        names, labels = np.array([path.name for path, _ in held_out]), np.array([label for _, label in held_out])
        allowed = typed_shoes(names, labels, allowed_outputs(labels),  # a typed shoe counts as its type only
                              read_shoe_types(FEATURES_FILE.with_name(SHOE_TYPES_NAME)))
        found["phone, held out"] = [(path, frozenset(np.flatnonzero(row).tolist()))
                                    for (path, _), row in zip(held_out, allowed)]
    for name, root in (("phone, ../shared/photos", SHARED / "photos"), ("shop", SHARED / "shop")):
        found[name] = [(path, frozenset({index})) for folder, index in FOLDER_TO_CLASS.items()
                       for path in sorted((root / folder).glob("*.jpg"))]
    found["shop, none of the ten"] = [(path, frozenset({NONE_INDEX}))
                                      for path in sorted((SHARED / "shop" / "none").glob("*.jpg"))]
    found["no garment"] = [(image, frozenset({NONE_INDEX})) for _, image in non_garment_images()]
    return {name: items[:limit] if limit else items for name, items in found.items() if items}


def answered(answer) -> int:
    """The answer's output index (NONE_INDEX for not one of the ten)."""
    from fmnist_core.photo import NONE_INDEX

    return NONE_INDEX if answer.class_index is None else answer.class_index


def source_labels(items: list[tuple[object, frozenset]]) -> np.ndarray | None:
    """The ../shared/clothing source label of each item (None when any item is not one of its photos)."""
    label_of = {path.name: label for path, label in clothing_rows()}
    names = [getattr(source, "name", None) for source, _ in items]
    return np.array([label_of[name] for name in names]) if all(name in label_of for name in names) else None


def per_label(right: np.ndarray, sure: np.ndarray, labels: np.ndarray, ten: np.ndarray) -> dict:
    """Per source label of the photos of the ten: right, sure share and sure right; and the same over all labels
    weighing every label alike, as a check with the same number of photos per label does."""
    rows = {}
    weight = np.zeros(len(labels))  # each label's photos share one unit of weight
    for label in sorted(set(labels[ten])):
        of_label = ten & (labels == label)
        chosen = of_label & sure
        rows[label] = {"photos": int(of_label.sum()), "right": round(float(right[of_label].mean()), 4),
                       "sure_coverage": round(float(chosen.sum() / of_label.sum()), 4),
                       "sure_right": round(float(right[chosen].mean()), 4) if chosen.any() else None}
        weight[of_label] = 1 / of_label.sum()
    chosen = weight * sure
    return {"labels": rows, "right_mean_over_labels": round(float(np.mean([r["right"] for r in rows.values()])), 4),
            "sure_coverage_over_labels": round(float(chosen.sum() / weight.sum()), 4),
            "sure_right_over_labels": round(float((chosen * right).sum() / chosen.sum()), 4) if chosen.any() else None}


def summary(outputs: np.ndarray, sure: np.ndarray, allowed: list[frozenset], not_clothing: np.ndarray,
            labels: np.ndarray | None = None) -> dict:
    """Right, sure coverage and accuracy over the photos of the ten; flagged over the others; per class and label."""
    from fmnist_core.data import CLASS_NAMES
    from fmnist_core.photo import NONE_INDEX

    right = np.array([output in options for output, options in zip(outputs, allowed)])
    ten = np.array([NONE_INDEX not in options for options in allowed])
    result: dict = {"photos": int(len(outputs))}
    if ten.any():
        chosen = sure & ten
        result.update(right=round(float(right[ten].mean()), 4), sure_coverage=round(float(chosen.sum() / ten.sum()), 4),
                      sure_right=round(float(right[chosen].mean()), 4) if chosen.any() else None)
        per_class = {}
        for index, name in enumerate(CLASS_NAMES):
            of_class = ten & np.array([options == frozenset({index}) for options in allowed])
            answered_as = chosen & (outputs == index)
            if of_class.any() or answered_as.any():
                per_class[name] = {"photos": int(of_class.sum()),
                                   "right": round(float(right[of_class].mean()), 4) if of_class.any() else None,
                                   "sure_answers": int(answered_as.sum()),
                                   "sure_right": round(float(right[answered_as].mean()), 4) if answered_as.any()
                                   else None}
        result["per_class"] = per_class
        if labels is not None:
            result["per_source_label"] = per_label(right, sure, labels, ten)
    if (~ten).any():
        result["flagged"] = round(float((outputs[~ten] == NONE_INDEX).mean()), 4)
        result["said_not_clothing"] = round(float(not_clothing[~ten].mean()), 4)
    return result


def curve(confidence: np.ndarray, outputs: np.ndarray, allowed: list[frozenset]) -> list[dict]:
    """Coverage and accuracy of the answers at or above each of CURVE's thresholds (photos of the ten only)."""
    from fmnist_core.photo import NONE_INDEX

    ten = np.array([NONE_INDEX not in options for options in allowed])
    right = np.array([output in options for output, options in zip(outputs, allowed)])
    points = []
    for threshold in CURVE:
        chosen = ten & (confidence >= threshold) & (outputs != NONE_INDEX)
        points.append({"threshold": threshold, "coverage": round(float(chosen.sum() / max(1, ten.sum())), 4),
                       "right": round(float(right[chosen].mean()), 4) if chosen.any() else None})
    return points


def main() -> None:
    """Every model on every domain; write the JSON and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="at most this many photos per domain")
    parser.add_argument("--previous", default=PREVIOUS_HEAD, help="the photo head to compare with (registry id)")
    args = parser.parse_args()

    from fmnist_core.answer import answer_image
    from fmnist_core.photo import Backbone, PhotoModel, load_photo_head
    from fmnist_core.predict import Classifier
    from fmnist_core.preprocess import EmptyImageError

    started = time.perf_counter()
    classifier = Classifier.load()
    cnn_load = time.perf_counter() - started
    started = time.perf_counter()
    active = PhotoModel.load()
    photo_load = time.perf_counter() - started
    previous = PhotoModel(active.backbone, load_photo_head(args.previous))
    models = {
        "cnn": lambda source: answer_image(source, classifier, None, "cnn"),
        "previous head": lambda source: answer_image(source, classifier, previous, "photo"),
        "active, alone": lambda source: answer_image(source, classifier, active, "photo", cnn_view=False),
        "active": lambda source: answer_image(source, classifier, active, "photo"),
    }
    results = {"machine": machine(), "cnn_model": classifier.model_id, "photo_model": active.model_id,
               "previous_photo_model": previous.model_id, "cnn_weight": active.head.cnn_weight,
               "load_seconds": {"cnn": round(cnn_load, 2), "photo_model": round(photo_load, 2)}, "domains": {}}
    for domain, items in domains(args.limit).items():
        allowed = [options for _, options in items]
        labels = source_labels(items)
        row = results["domains"].setdefault(domain, {})
        for name, answer in models.items():
            answer(items[0][0])  # warm
            answers, times = [], []
            for source, _ in items:
                began = time.perf_counter()
                try:
                    answers.append(answer(source))
                except EmptyImageError:  # the CNN found no item: a wrong answer, not sure
                    answers.append(None)
                times.append((time.perf_counter() - began) * 1000)
            outputs = np.array([-1 if a is None else answered(a) for a in answers])
            row[name] = summary(outputs, np.array([a is not None and a.sure for a in answers]), allowed,
                                np.array([a is not None and a.not_clothing for a in answers]), labels)
            row[name].update(ms_median=round(float(np.median(times)), 1),
                             ms_p95=round(float(np.percentile(times, 95)), 1))
            if name == "active":
                confidence = np.array([0.0 if a is None else a.confidence for a in answers])
                row[name]["one_threshold_curve"] = curve(confidence, outputs, allowed)
            print(f"{domain:>24} | {name:>14} | " + json.dumps({k: v for k, v in row[name].items()
                                                                if k not in ("per_class", "one_threshold_curve",
                                                                             "per_source_label")}),
                  flush=True)
    results["peak_rss_mb_both_models"] = round(peak_rss_mb(), 0)
    backbone_only = time.perf_counter()
    Backbone()
    results["load_seconds"]["backbone_again"] = round(time.perf_counter() - backbone_only, 2)
    out = REPO_ROOT / "bench" / "results" / "photo_model.json"
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print_tables(results)


def print_tables(results: dict) -> None:
    """The tables BENCHMARKS.md holds: per domain and model, then per class for the active head."""
    print(f"\n{results['machine']}\n\n| photos | model | right | sure answers right | answered sure | "
          "flagged (none of the ten) | ms median |\n|---|---|---|---|---|---|---|")
    for domain, row in results["domains"].items():
        for name, figures in row.items():
            right = "-" if "right" not in figures else f"{figures['right']:.1%}"
            sure = "-" if figures.get("sure_right") is None else f"{figures['sure_right']:.1%}"
            coverage = "-" if "sure_coverage" not in figures else f"{figures['sure_coverage']:.0%}"
            flagged = "-" if "flagged" not in figures else f"{figures['flagged']:.0%}"
            print(f"| {domain} ({figures['photos']}) | {name} | {right} | {sure} | {coverage} | {flagged} | "
                  f"{figures['ms_median']} |")
    print("\nActive head, per class: right / sure answers right (count)\n")
    ten_domains = [d for d, row in results["domains"].items() if "per_class" in row["active"]]
    print("| class | " + " | ".join(ten_domains) + " |\n|---|" + "---|" * len(ten_domains))
    from fmnist_core.data import CLASS_NAMES

    for name in CLASS_NAMES:
        cells = []
        for domain in ten_domains:
            figures = results["domains"][domain]["active"]["per_class"].get(name)
            if not figures:
                cells.append("-")
                continue
            right = "-" if figures["right"] is None else f"{figures['right']:.0%}"
            sure = "-" if figures["sure_right"] is None else f"{figures['sure_right']:.0%}"
            cells.append(f"{right} / {sure} ({figures['sure_answers']})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    labelled = [(domain, row) for domain, row in results["domains"].items() if "per_source_label" in row["active"]]
    for domain, row in labelled:
        names = [name for name in row if "per_source_label" in row[name]]
        print(f"\n{domain}, per source label: right (the active head's sure answers right / share answered sure)\n")
        print("| label | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
        for label, figures in row["active"]["per_source_label"]["labels"].items():
            cells = [f"{row[name]['per_source_label']['labels'][label]['right']:.0%}" for name in names]
            sure = "-" if figures["sure_right"] is None else f"{figures['sure_right']:.0%}"
            cells[-1] += f" ({sure} / {figures['sure_coverage']:.0%})"
            print(f"| {label} ({figures['photos']}) | " + " | ".join(cells) + " |")
        means = [f"{row[name]['per_source_label']['right_mean_over_labels']:.1%}" for name in names]
        over = row["active"]["per_source_label"]
        sure = "-" if over["sure_right_over_labels"] is None else f"{over['sure_right_over_labels']:.1%}"
        means[-1] += f" ({sure} / {over['sure_coverage_over_labels']:.0%})"
        print("| every label alike | " + " | ".join(means) + " |")


if __name__ == "__main__":
    main()
