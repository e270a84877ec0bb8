"""Overview: the active model at a glance, and the registry with a switch of the active model."""

import pandas as pd
import streamlit as st

from fmnist_core import exports, photo, registry
from fmnist_core.config import TrainConfig, tta_summary
from fmnist_core.data import CLASS_NAMES
from ui.auth import model_download_allowed
from ui.common import activate_button, format_model_label

st.title(":material/checkroom: Fashion-MNIST workbench")
st.caption("Explore the dataset, train a CNN while watching it learn, study its mistakes, classify your own photos.")

models = registry.list_models()
active_id = registry.get_active_id()
by_id = {info.model_id: info for info in models}
active = by_id.get(active_id)

if not models:
    st.warning("The model registry is empty. Train a model on the **Train** page "
               "(or run `python -m fmnist_core train --preset quick --activate`).")
elif active is None or not active.ok:
    st.error(f"The active model ({active_id or 'none'}) is missing or broken"
             f"{': ' + active.problem if active and active.problem else ''}. Activate another model below.")
else:
    meta = active.meta
    metrics = meta.get("test_metrics", {})
    config = meta.get("config", {})
    st.subheader(f"Active model: `{active_id}`")
    columns = st.columns(5)
    plain_accuracy = meta.get("test_metrics_without_tta", {}).get("accuracy")
    used_tta = meta.get("tta") not in (None, False, "off")
    columns[0].metric("Test accuracy", f"{metrics.get('accuracy', 0):.2%}",
                      help=f"Test-time augmentation: {tta_summary(meta.get('tta'))}."
                      + (f" Without it: {plain_accuracy:.2%}." if plain_accuracy and used_tta else ""))
    columns[1].metric("Test loss", f"{metrics.get('loss', 0):.3f}")
    columns[2].metric("Architecture", meta.get("architecture", "?"))
    columns[3].metric("Parameters", f"{meta.get('params', 0):,}")
    columns[4].metric("Training time", f"{meta.get('train_seconds', 0) / 60:.1f} min")
    per_class = metrics.get("per_class", {})
    if per_class:
        accuracy = pd.DataFrame({"class": list(per_class), "accuracy": [v["accuracy"] for v in per_class.values()]})
        st.bar_chart(accuracy, x="class", y="accuracy", horizontal=True, height=320, sort=False)
    st.caption(
        f"Trained {meta.get('created_at', '?')[:19].replace('T', ' ')} UTC with preset "
        f"**{config.get('preset') or 'custom'}**: {meta.get('epochs_run', config.get('epochs'))} epochs, batch "
        f"{meta.get('batch_size_used') or config.get('batch_size')}, learning rate {config.get('learning_rate')}, "
        "augmentation: "
        f"{TrainConfig.from_dict(config).augmentation_summary()}; {meta.get('dataset', {}).get('train_images', '?')} "
        f"training images; TensorFlow {meta.get('versions', {}).get('tensorflow', '?')}. Test-time augmentation: "
        f"{tta_summary(meta.get('tta'))}.")

st.divider()
st.subheader("Model registry")
if models:
    table = pd.DataFrame([{
        "active": "★" if info.model_id == active_id else "",
        "model": info.model_id,
        "architecture": info.meta.get("architecture", ""),
        "test accuracy": info.accuracy,
        "params": info.meta.get("params"),
        "train time (s)": info.meta.get("train_seconds"),
        "train CPU time (s)": info.meta.get("train_cpu_seconds"),  # steadier than wall time on a shared machine
        "created": (info.meta.get("created_at") or "")[:19].replace("T", " "),
        "status": "ok" if info.ok else f"broken: {info.problem}",
    } for info in models])
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"test accuracy": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                                 max_value=1)})
    st.caption(f"{len(models)} model(s) in `{registry.models_dir()}`; newest: `{models[0].model_id}`.")
    usable = [info.model_id for info in models if info.ok]
    if usable:
        choice = st.selectbox("Model to activate", usable, key="overview_model_choice",
                              index=usable.index(active_id) if active_id in usable else 0,
                              format_func=lambda model_id: format_model_label(by_id[model_id], active_id))
        if choice != active_id:
            activate_button(choice, f"Make {choice} the active model", key="overview_activate")
        with st.expander("Download a model"):
            st.caption("The `.keras` file with its `meta.json`, zipped: `keras.saving.load_model('model.keras', "
                       "safe_mode=True)` loads it anywhere Keras 3 runs.")
            download_id = st.selectbox("Model to download", usable, key="overview_download_choice",
                                       format_func=lambda model_id: format_model_label(by_id[model_id], active_id))
            if model_download_allowed(key="overview_download"):
                st.download_button(f"Download {download_id} (.zip)", lambda: exports.model_zip(download_id),
                                   file_name=f"{download_id}.zip", mime="application/zip", on_click="ignore",
                                   icon=":material/download:", key="overview_download_button")

st.divider()
st.subheader("Photo model")
photo_heads = photo.list_photo_heads()
active_photo = photo.active_photo_head_id()
photo_by_id = {info.model_id: info for info in photo_heads}
if active_photo not in photo_by_id or not photo_by_id[active_photo].ok:
    st.warning("No usable photo model: real photos are answered by the Fashion-MNIST CNN, which often gets them "
               "wrong. Train one on the **Train** page (or `python -m fmnist_core train-photo --activate`).")
else:
    photo_meta = photo_by_id[active_photo].meta
    held_out = (photo_meta.get("metrics") or {}).get("test") or {}
    test = (held_out.get("per_domain") or {}).get("phone") or held_out  # heads trained on phone photos only: the whole
    fitted = (photo_meta.get("training_data") or {}).get("photos", {})
    composites = (fitted.get("per_domain") or {}).get("shop-like")
    st.markdown(f"Active photo model: `{active_photo}` — EfficientNet-Lite0 features, a head trained on "
                f"{(fitted.get('per_domain') or {}).get('phone', fitted.get('fitted', '?'))} real phone photos"
                + (f" and {composites} shop-like composites of them (each garment cut out onto a white page)."
                   if composites else "."))
    columns = st.columns(4)
    columns[0].metric("Held-out real photos right", f"{test.get('accuracy', 0):.1%}",
                      help=f"{test.get('checked', '?')} photos kept aside by a fixed rule; "
                           + (photo_meta.get("training_data") or {}).get("split_rule", ""))
    columns[1].metric("Sure answers right", f"{test.get('sure_accuracy') or 0:.1%}",
                      help=f"Answers at or above {photo_meta.get('calibration', {}).get('sure_threshold', 0):.0%} "
                           "calibrated probability count as sure.")
    columns[2].metric("Photos answered sure", f"{test.get('sure_coverage', 0):.0%}")
    columns[3].metric("Hats, shorts, skirts flagged", f"{test.get('not_of_the_ten_flagged') or 0:.0%}",
                      help="as not one of the ten classes")
    shop_like = (held_out.get("per_domain") or {}).get("shop-like")
    if shop_like:
        st.caption(f"Held out as shop-like composites: {shop_like['accuracy']:.1%} right; sure answers "
                   f"{shop_like['sure_accuracy'] or 0:.1%} right on {shop_like['sure_coverage']:.0%} of them.")
    per_label = test.get("per_source_label") or {}
    if per_label:
        frame = pd.DataFrame({"photo label": list(per_label), "right": [v["accuracy"] for v in per_label.values()]})
        st.bar_chart(frame, x="photo label", y="right", horizontal=True, height=300, sort=False)
        st.caption("Held-out photos by their source label (Longsleeve counts as right for T-shirt/top or "
                   "Pullover, Shoes for any shoe; Hat, Shorts and Skirt are right when flagged as none of the ten).")
    if model_download_allowed(key="overview_photo_download"):
        st.download_button(f"Download the photo model {active_photo} (.zip, with its ONNX backbone)",
                           lambda: exports.photo_model_zip(active_photo), file_name=f"{active_photo}.zip",
                           mime="application/zip", on_click="ignore", icon=":material/download:",
                           key="overview_photo_download_button")
    others = [info.model_id for info in photo_heads if info.ok and info.model_id != active_photo]
    if others:
        choice = st.selectbox("Photo model to activate", others, key="overview_photo_choice")
        from ui.auth import admin_allowed

        if admin_allowed("Activating a model", key="overview_photo_activate") and st.button(
                f"Make {choice} the active photo model", key="overview_photo_activate_button"):
            photo.activate_photo_head(choice)
            st.rerun()

st.divider()
st.subheader("Where next")
links = st.columns(4)
links[0].page_link("app_pages/dataset.py", label="Browse the dataset", icon=":material/photo_library:")
links[1].page_link("app_pages/train.py", label="Train a model", icon=":material/model_training:")
links[2].page_link("app_pages/evaluate.py", label="Study its mistakes", icon=":material/analytics:")
links[3].page_link("app_pages/classify.py", label="Classify a photo or drawing", icon=":material/search:")
st.caption(f"Classes: {', '.join(CLASS_NAMES)}.")
