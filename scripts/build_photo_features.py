"""Rebuild the photo head's training data (data/photo-features/*.npz) from ../shared/clothing.

    .venv/bin/python scripts/build_photo_features.py [--clothing ../shared/clothing] [--views item,item-centre]
        [--cutouts] [--mask-cache ~/.cache/fmnist-u2netp-masks]

Each photo goes through the same path as an upload (decode, EXIF, the views of preprocess.PHOTO_VIEWS,
the ONNX backbone), and what the head needs is kept, one file per view: the 1280 pooled features
(float16), the ImageNet log-probabilities of the few classes the photo model reads, and the log of
ImageNet's summed probability of everything worn or carried (photo.WEARABLE_CLASSES).

With --cutouts it also builds the shop-like photos (scripts/cutouts.py): each garment cut out by U²-Netp
and laid on a white or light-grey page, then through the same views. U²-Netp's masks are kept in
--mask-cache (about 25 minutes for the pool on 2 cores; minutes once cached).

A fresh clone retrains the head from these files alone (`python -m fmnist_core train-photo`); the photos
themselves are not needed at run time.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from fmnist_core.photo import KEPT_IMAGENET, Backbone, kept_imagenet_log_probs, wearable_log_mass  # noqa: E402
from fmnist_core.photo_train import (  # noqa: E402
    FEATURES_FILE,
    SOURCE_LABEL_TARGETS,
    view_features_file,
)
from fmnist_core.preprocess import PHOTO_VIEWS, decode, photo_views  # noqa: E402

BATCH = 32
CUTOUT_DRAFT = 400  # the photo is decoded at least this large before its garment is cut out


def main() -> None:
    """Read labels.csv, run every photo (and with --cutouts its shop-like composite) through the backbone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clothing", type=Path, default=REPO_ROOT.parent / "shared" / "clothing")
    parser.add_argument("--out", type=Path, default=FEATURES_FILE)
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--views", default="item,item-centre", help=f"comma-separated, of {', '.join(PHOTO_VIEWS)}")
    parser.add_argument("--cutouts", action="store_true", help="also build the shop-like composites' features")
    parser.add_argument("--mask-cache", type=Path, default=Path.home() / ".cache" / "fmnist-u2netp-masks")
    args = parser.parse_args()
    with open(args.clothing / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    backbone = Backbone(name=args.backbone)
    views = tuple(args.views.split(","))
    build(rows, backbone, views, lambda row: decode(args.clothing / row["file"], draft=backbone.size),
          {view: view_features_file(args.out, view) for view in views})
    if args.cutouts:
        from scripts.cutouts import SalientMask, cached_mask, composite, fetch_u2netp

        masker = SalientMask(fetch_u2netp(args.mask_cache))
        labelled = [row for row in rows if row["source_label"] in SOURCE_LABEL_TARGETS]

        def shop_like(row: dict) -> Image.Image | None:
            photo = decode(args.clothing / row["file"], draft=CUTOUT_DRAFT)
            page = composite(np.asarray(photo.convert("RGB")), cached_mask(masker, args.clothing / row["file"],
                                                                             args.mask_cache), Path(row["file"]).name)
            return None if page is None else Image.fromarray(page)

        build(labelled, backbone, views, shop_like, {view: view_features_file(args.out, view, cutout=True)
                                                     for view in views})


def build(rows: list[dict], backbone: Backbone, views: tuple[str, ...], load, outputs: dict[str, Path]) -> None:
    """Run every row's photo (load(row) -> PIL image, or None to skip it) through the views; one file per view."""
    started = time.time()
    kept_rows, pooled, kept, wearable = [], [], [], []

    def prepared(row: dict):
        image = load(row)
        return None if image is None else photo_views(image, views, backbone.size)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(rows), BATCH):
            batch_rows = rows[start:start + BATCH]
            made = list(pool.map(prepared, batch_rows))
            batch_rows = [row for row, stack in zip(batch_rows, made) if stack is not None]
            stacks = [stack for stack in made if stack is not None]
            if stacks:
                output = backbone.run(np.concatenate(stacks))
                shape = (len(stacks), len(views))
                pooled.append(output.pooled.reshape(*shape, -1).astype(np.float16))
                kept.append(kept_imagenet_log_probs(output.logits).reshape(*shape, -1).astype(np.float16))
                wearable.append(wearable_log_mass(output.logits).reshape(shape).astype(np.float16))
                kept_rows += batch_rows
            print(f"\r{start + BATCH}/{len(rows)} photos, {time.time() - started:.0f} s", end="", flush=True)
    print()
    pooled, kept, wearable = np.concatenate(pooled), np.concatenate(kept), np.concatenate(wearable)
    for index, view in enumerate(views):
        out = outputs[view]
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, files=np.array([Path(row["file"]).name for row in kept_rows]),
                            labels=np.array([row["source_label"] for row in kept_rows]),
                            kids=np.array([row["kids"] == "True" for row in kept_rows]),
                            features=pooled[:, index], imagenet_kept=kept[:, index], wearable=wearable[:, index],
                            kept_imagenet=np.array(KEPT_IMAGENET), backbone_sha256=np.array(backbone.record["sha256"]),
                            view=np.array(view))
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), {len(kept_rows)} photos, {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
