"""Rebuild the photo head's training data (data/photo-features/clothing-lite0*.npz) from ../shared/clothing.

    .venv/bin/python scripts/build_photo_features.py [--clothing ../shared/clothing] [--views whole,centre]

Each photo goes through the same path as an upload (decode, EXIF, each view of preprocess.PHOTO_VIEWS,
the ONNX backbone), and what the head needs is kept, one file per view: the 1280 pooled features
(float16) and the ImageNet log-probabilities of the few classes the photo model reads. A fresh clone
retrains the head from these files alone (`python -m fmnist_core train-photo`); the photos themselves are
not needed at run time.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from fmnist_core.photo import KEPT_IMAGENET, Backbone, kept_imagenet_log_probs  # noqa: E402
from fmnist_core.photo_train import FEATURES_FILE, view_features_file  # noqa: E402
from fmnist_core.preprocess import PHOTO_VIEWS, decode  # noqa: E402

BATCH = 32


def main() -> None:
    """Read labels.csv, run every photo through the backbone, write the compressed feature file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clothing", type=Path, default=REPO_ROOT.parent / "shared" / "clothing")
    parser.add_argument("--out", type=Path, default=FEATURES_FILE)
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--views", default=",".join(PHOTO_VIEWS), help="comma-separated views to (re)build")
    args = parser.parse_args()
    with open(args.clothing / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    backbone = Backbone(name=args.backbone)
    for view_name in args.views.split(","):
        build_view(rows, backbone, args.clothing, view_name, view_features_file(args.out, view_name))


def build_view(rows: list[dict], backbone: Backbone, clothing: Path, view_name: str, out: Path) -> None:
    """Run every photo's view through the backbone and write that view's compressed feature file."""
    started = time.time()
    pooled, kept = [], []
    make_view = PHOTO_VIEWS[view_name]

    def view(row: dict) -> np.ndarray:
        return make_view(decode(clothing / row["file"], draft=backbone.size), backbone.size)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(rows), BATCH):
            batch = np.stack(list(pool.map(view, rows[start:start + BATCH])))
            output = backbone.run(batch)
            pooled.append(output.pooled.astype(np.float16))
            kept.append(kept_imagenet_log_probs(output.logits).astype(np.float16))
            print(f"\r{view_name}: {start + len(batch)}/{len(rows)} photos, {time.time() - started:.0f} s", end="",
                  flush=True)
    print()
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, files=np.array([Path(row["file"]).name for row in rows]),
                        labels=np.array([row["source_label"] for row in rows]),
                        kids=np.array([row["kids"] == "True" for row in rows]),
                        features=np.concatenate(pooled), imagenet_kept=np.concatenate(kept),
                        kept_imagenet=np.array(KEPT_IMAGENET), backbone_sha256=np.array(backbone.record["sha256"]),
                        view=np.array(view_name))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
