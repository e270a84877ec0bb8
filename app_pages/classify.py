"""Classify: upload photos or draw a garment; see what the model sees, its probabilities and a heat map."""

import time

import numpy as np
import pandas as pd
import streamlit as st
from matplotlib import colormaps

from fmnist_core.predict import Classifier, Prediction
from fmnist_core.preprocess import EmptyImageError, ImageError, preprocess, preprocess_drawing
from ui.common import UPLOAD_LIMIT_MB, get_classifier, upscale

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]
CANVAS_SIZE = 280


def heat_map_overlay(image28: np.ndarray, cam: np.ndarray, factor: int = 8) -> np.ndarray:
    """The model's input in gray with the Grad-CAM heat map blended over it (RGB uint8)."""
    gray = np.repeat((image28.astype(np.float32) / 255.0)[..., None], 3, axis=2)
    heat = colormaps["jet"](cam)[..., :3]
    blended = np.clip(0.55 * gray + 0.45 * heat, 0, 1)
    return upscale((blended * 255).astype(np.uint8), factor)


def show_prediction(classifier: Classifier, prediction: Prediction, elapsed_ms: float) -> None:
    """The answer, the doubts, the model's-eye view, the probabilities and the heat map."""
    prepared = prediction.preprocessed
    verdict = f"**{prediction.class_name}** — {prediction.confidence:.1%} confident"
    if prediction.unsure:
        st.warning(f"Best guess: {verdict}, but be careful: " + "; ".join(prediction.doubts) + ".")
    else:
        st.success(f"This looks like: {verdict}")
    left, middle, right = st.columns([1, 1, 2])
    left.image(upscale(prepared.image, 6), caption="What the model sees (28x28)", width="stretch")
    cam = classifier.grad_cam(prepared.image, prediction.class_index)
    middle.image(heat_map_overlay(prepared.image, cam), caption=f"Where it saw '{prediction.class_name}' (Grad-CAM)",
                 width="stretch")
    probabilities = pd.DataFrame({"class": [name for name, _ in prediction.top_k],
                                  "probability": [p for _, p in prediction.top_k]})
    right.bar_chart(probabilities, x="class", y="probability", horizontal=True, height=220, sort=False)
    right.caption(f"Top {len(prediction.top_k)} of 10 classes · answered in {elapsed_ms:.0f} ms")
    with st.expander("How the image was prepared"):
        columns = st.columns(len(prepared.steps))
        for column, (caption, image) in zip(columns, prepared.steps):
            shown = upscale(image, 4) if image.shape[:2] == (28, 28) else image
            column.image(shown, caption=caption, width="stretch")
        st.caption(f"Background judged: {prepared.background}.")


def classify_upload(classifier: Classifier, upload) -> None:
    """One uploaded file: size check, preprocess, classify, show; any bad file gets one clear line."""
    st.markdown(f"#### {upload.name}")
    if upload.size > UPLOAD_LIMIT_MB * 1024 * 1024:
        st.error(f"{upload.name}: {upload.size / 1e6:.1f} MB is over the {UPLOAD_LIMIT_MB:g} MB upload limit.")
        return
    started = time.perf_counter()
    try:
        with st.spinner("Finding the item in the photo…"):
            prepared = preprocess(upload.getvalue())
            prediction = classifier.classify_array(prepared.model_input(), top_k=5, preprocessed=prepared)
    except EmptyImageError as error:
        st.warning(f"{upload.name}: {error}.")
        return
    except ImageError as error:
        st.error(f"{upload.name}: {error}.")
        return
    elapsed_ms = (time.perf_counter() - started) * 1000
    photo, result = st.columns([1, 3])
    photo.image(prepared.steps[0][1], caption="Your image", width="stretch")
    with result:
        show_prediction(classifier, prediction, elapsed_ms)


def upload_tab(classifier: Classifier) -> None:
    """Several files at once, a result for each."""
    uploads = st.file_uploader("Photos of clothing (one item per photo works best)", type=UPLOAD_TYPES,
                               accept_multiple_files=True, key="classify_uploads",
                               help=f"JPEG, PNG, WebP, BMP or GIF (first frame), up to {UPLOAD_LIMIT_MB:g} MB each.")
    if not uploads:
        st.caption("Tip: a single garment on a plain background gives the most reliable answer; "
                   "busy backgrounds are cut out automatically.")
    for upload in uploads or []:
        classify_upload(classifier, upload)


def draw_tab(classifier: Classifier) -> None:
    """A canvas: light strokes on black, like the dataset."""
    from streamlit_drawable_canvas import st_canvas

    left, right = st.columns([1, 2])
    with left:
        stroke_width = st.slider("Stroke width", 4, 40, 18, key="draw_stroke")
        if st.button("Clear the canvas", icon=":material/delete:", key="draw_clear"):
            st.session_state["canvas_generation"] = st.session_state.get("canvas_generation", 0) + 1
        result = st_canvas(stroke_width=stroke_width, stroke_color="#FFFFFF", background_color="#000000",
                           height=CANVAS_SIZE, width=CANVAS_SIZE, drawing_mode="freedraw", return_image_data=True,
                           key=f"canvas_{st.session_state.get('canvas_generation', 0)}")
        st.caption("Draw a garment filled in, as a silhouette: a T-shirt, trousers, a shoe, a bag…")
    with right:
        image_data = getattr(result, "image_data", None) if result is not None else None
        if image_data is None:
            st.info("Draw something on the canvas.")
            return
        started = time.perf_counter()
        try:
            prepared = preprocess_drawing(np.asarray(image_data))
        except EmptyImageError:
            st.info("The canvas is empty: draw something.")
            return
        except ImageError as error:
            st.error(str(error))
            return
        prediction = classifier.classify_array(prepared.model_input(), top_k=5, preprocessed=prepared)
        show_prediction(classifier, prediction, (time.perf_counter() - started) * 1000)


st.title("Classify a photo or a drawing")
classifier = get_classifier()
if classifier is None:
    st.stop()
st.caption(f"Model: `{classifier.model_id}` "
           f"({classifier.meta.get('test_metrics', {}).get('accuracy', 0):.2%} on the test set).")
upload, draw = st.tabs([":material/photo_camera: Upload", ":material/draw: Draw"])
with upload:
    upload_tab(classifier)
with draw:
    draw_tab(classifier)
