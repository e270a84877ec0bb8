"""Dataset: samples per class, class balance, mean images, pixel statistics."""

import numpy as np
import pandas as pd
import streamlit as st

from fmnist_core.data import CLASS_NAMES
from ui.common import get_dataset, show_image_grid, upscale


@st.cache_resource(show_spinner="Computing class statistics…")
def class_statistics(_dataset, source: str) -> tuple[list[np.ndarray], pd.DataFrame, np.ndarray]:
    """Mean image per class, intensity statistics per class, and an intensity histogram (computed once)."""
    pixels = _dataset.x_train.reshape(len(_dataset.x_train), -1)
    means = [_dataset.x_train[_dataset.y_train == k].mean(axis=0).astype(np.uint8) for k in range(10)]
    stats = pd.DataFrame({
        "class": CLASS_NAMES,
        "mean intensity": [pixels[_dataset.y_train == k].mean() for k in range(10)],
        "std": [pixels[_dataset.y_train == k].std() for k in range(10)],
        "ink (share of pixels > 0)": [(pixels[_dataset.y_train == k] > 0).mean() for k in range(10)],
    })
    histogram, _ = np.histogram(pixels[::10], bins=32, range=(0, 256))
    return means, stats, histogram


st.title("The Fashion-MNIST dataset")
dataset = get_dataset()
if dataset is None:
    st.stop()

st.caption(f"{len(dataset.x_train):,} training and {len(dataset.x_test):,} test images, 28x28 grayscale, "
           f"10 classes. Loaded from `{dataset.source}`.")

st.subheader("Samples")
left, right = st.columns([3, 1])
choice = left.selectbox("Class", ["All classes", *CLASS_NAMES], key="dataset_class")
if right.button("Reshuffle", icon=":material/shuffle:", key="dataset_reshuffle", width="stretch"):
    st.session_state["dataset_seed"] = int(np.random.default_rng().integers(1 << 31))
rng = np.random.default_rng(st.session_state.get("dataset_seed", 0))

if choice == "All classes":
    images, captions = [], []
    for index, name in enumerate(CLASS_NAMES):
        picks = rng.choice(np.flatnonzero(dataset.y_train == index), 6, replace=False)
        images += [dataset.x_train[i] for i in picks]
        captions += [name] * 6
    show_image_grid(images, captions, columns=12, factor=3)
else:
    index = CLASS_NAMES.index(choice)
    picks = rng.choice(np.flatnonzero(dataset.y_train == index), 32, replace=False)
    show_image_grid([dataset.x_train[i] for i in picks], [f"#{i}" for i in picks], columns=8, factor=4)

st.subheader("Class balance")
counts = pd.DataFrame({
    "class": CLASS_NAMES,
    "train": np.bincount(dataset.y_train, minlength=10),
    "test": np.bincount(dataset.y_test, minlength=10),
})
st.bar_chart(counts, x="class", y=["train", "test"], stack=False, height=300, sort=False)
st.caption("Perfectly balanced: 6,000 training and 1,000 test images per class.")

st.subheader("Mean image of each class")
means, stats, histogram = class_statistics(dataset, dataset.source)
columns = st.columns(10)
for column, name, mean in zip(columns, CLASS_NAMES, means):
    column.image(upscale(mean, 4), caption=name, width="stretch")

st.subheader("Pixel intensities")
left, right = st.columns(2)
left.dataframe(stats.style.format({"mean intensity": "{:.1f}", "std": "{:.1f}",
                                   "ink (share of pixels > 0)": "{:.1%}"}), hide_index=True, width="stretch")
right.bar_chart(pd.DataFrame({"intensity": np.arange(0, 256, 8), "pixels": histogram}), x="intensity", y="pixels",
                height=300)
right.caption("Histogram of pixel values (every 10th training image): mostly black background, a long tail of ink.")
