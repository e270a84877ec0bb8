"""Classify: upload or take photos, or draw a garment; see which model answered, its doubt and what each model saw."""

import hashlib
import uuid

import cv2
import numpy as np
import pandas as pd
import streamlit as st
from matplotlib import colormaps

from fmnist_core import exports, feedback
from fmnist_core.answer import Answer, answer_drawing, answer_image
from fmnist_core.predict import Classifier
from fmnist_core.preprocess import EmptyImageError, ImageError
from ui.common import UPLOAD_LIMIT_MB, get_classifier, get_photo_model, upscale

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]
CANVAS_SIZE = 280
FEEDBACK_CHOICES = {**{name: name for name in feedback.CLASS_NAMES},
                    "not one of the ten classes": feedback.NONE_LABEL}
MODEL_CHOICES = {"Automatic: photos to the photo model": "auto", "Always the photo model": "photo",
                 "Always the Fashion-MNIST CNN": "cnn"}


def heat_map_overlay(image: np.ndarray, cam: np.ndarray, factor: int = 8) -> np.ndarray:
    """A heat map (any size, 0..1) blended over an image (28x28 grey or RGB), as RGB uint8."""
    base = image.astype(np.float32) / 255.0
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=2)
    heat = cv2.resize(np.asarray(cam, np.float32), base.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    blended = np.clip(0.55 * base + 0.45 * colormaps["jet"](np.clip(heat, 0, 1))[..., :3], 0, 1)
    blended = (blended * 255).astype(np.uint8)
    return upscale(blended, factor) if image.shape[:2] == (28, 28) else blended


def show_verdict(answer: Answer) -> None:
    """The answer in one line: which model, what it says, how sure."""
    model = "photo model" if answer.model == "photo" else "Fashion-MNIST CNN"
    verdict = f"**{answer.class_name}** — {answer.confidence:.1%} ({model})"
    if answer.not_clothing:
        cnn = (f" The Fashion-MNIST CNN, which knows nothing but the ten classes, would call it "
               f"{answer.cnn.class_name} ({answer.cnn.confidence:.0%})." if answer.cnn else "")
        st.info(f"This does not look like clothing, shoes or a bag: none of the ten Fashion-MNIST classes — "
                f"{answer.confidence:.0%} ({model}).{cnn} Try a photo of one garment, one pair of shoes or one bag.")
    elif answer.class_index is None:
        st.info(f"Not one of the ten Fashion-MNIST classes — {answer.confidence:.0%} ({model}). "
                f"Closest class: {next(name for name, _ in answer.top_k if name != answer.class_name)}.")
    elif answer.sure:
        st.success(f"This looks like: {verdict}")
    else:
        st.warning(f"Best guess: {verdict}, but be careful: " + "; ".join(answer.doubts) + ".")
    st.caption(f"Why this model: {answer.why}. Answered in {answer.elapsed_ms:.0f} ms.")


def show_probabilities(answer: Answer, container) -> None:
    """Top-k bar chart of the answering model."""
    frame = pd.DataFrame({"class": [name for name, _ in answer.top_k], "probability": [p for _, p in answer.top_k]})
    container.bar_chart(frame, x="class", y="probability", horizontal=True, height=220, sort=False)
    container.caption(f"Top {len(answer.top_k)} · calibrated probabilities" if answer.model == "photo"
                      else f"Top {len(answer.top_k)} of 10 classes")


def show_cnn_view(answer: Answer, title: str) -> None:
    """The CNN's 28x28 view, its Grad-CAM and its answer: what a 28x28 model makes of this image."""
    if answer.cnn is None:
        st.caption(f"{title}: no 28x28 view could be made ({answer.cnn_problem}).")
        return
    prepared, cnn = answer.cnn.preprocessed, answer.cnn
    st.markdown(f"**{title}**")
    left, middle, right = st.columns([1, 1, 2])
    left.image(upscale(prepared.image, 6), caption="What the CNN sees (28x28)", width="stretch")
    if answer.cnn_heat is not None:
        middle.image(heat_map_overlay(prepared.image, answer.cnn_heat),
                     caption=f"Where it saw '{cnn.class_name}' (Grad-CAM)", width="stretch")
    if answer.model == "photo":
        agree = "agrees" if cnn.class_name == answer.class_name else "disagrees"
        right.markdown(f"The CNN says **{cnn.class_name}** ({cnn.confidence:.0%}): it {agree} with the photo model.")
        right.caption("Fashion-MNIST is front-view product shots turned into 28x28 grey silhouettes. A garment on "
                      "a bed or a pair of shoes seen from above makes a silhouette that looks like something "
                      "else, which is why photos go to a model trained on real photos.")
    else:
        show_probabilities(answer, right)
    with st.expander("How the 28x28 view was made"):
        columns = st.columns(len(prepared.steps))
        for column, (caption, image) in zip(columns, prepared.steps):
            shown = upscale(image, 4) if image.shape[:2] == (28, 28) else image
            column.image(shown, caption=caption, width="stretch")
        st.caption(f"Background judged: {prepared.background}.")


def show_answer(answer: Answer) -> None:
    """Everything about one answer: verdict, the photo model's view and heat map, the CNN's view beside it."""
    show_verdict(answer)
    if answer.photo is not None:
        left, middle, right = st.columns([1, 1, 2])
        left.image(answer.photo.view, caption="What the photo model sees (224x224)", width="stretch")
        if len(answer.photo.views) > 1:
            left.image(answer.photo.views[1], caption="... and its centre, closer (224x224)", width="stretch")
        if answer.photo_heat is not None:
            middle.image(heat_map_overlay(answer.photo.view, answer.photo_heat),
                         caption=f"Where it saw '{answer.class_name}' (class activation map)", width="stretch")
        show_probabilities(answer, right)
        show_cnn_view(answer, "Beside it: the Fashion-MNIST CNN's own view")
    else:
        show_cnn_view(answer, "The Fashion-MNIST CNN's view")


def feedback_box(data: bytes, answer: Answer, photo_model, cnn_model_id: str, source: str) -> None:
    """'Right' or 'Wrong, it is a ...' under an answer: sends the photo to the corrections store, once."""
    key = hashlib.sha256(data).hexdigest()[:12]
    sent = st.session_state.get(f"feedback_sent_{key}")
    if sent:
        st.caption(f":material/check: Thank you: stored as correction {sent}. An admin reviews it before the photo "
                   "model learns from it.")
        return
    with st.container(border=True):
        st.caption("Was this right? Your photo is kept only if you send an answer below (a copy at most 512 px, "
                   "no location or camera data), and nothing learns from it until an admin accepts it.")
        right, label, send = st.columns([1, 2, 1], vertical_alignment="bottom")
        said_right = right.button("Right", icon=":material/thumb_up:", key=f"feedback_right_{key}")
        given = label.selectbox("Wrong, it is a…", list(FEEDBACK_CHOICES), index=None, key=f"feedback_label_{key}",
                                placeholder="choose what it really is")
        said_wrong = send.button("Send correction", icon=":material/school:", disabled=given is None,
                                 key=f"feedback_send_{key}")
    if not (said_right or said_wrong):
        return
    answered = answer.class_name if answer.class_index is not None else feedback.NONE_LABEL
    correction = feedback.Correction(
        label=answered if said_right else FEEDBACK_CHOICES[given], verdict="right" if said_right else "wrong",
        photo_model_id=photo_model.model_id if answer.model == "photo" else None,
        photo_answer=answered if answer.model == "photo" else None,
        cnn_model_id=cnn_model_id if answer.cnn else None,
        cnn_answer=answer.cnn.class_name if answer.cnn else None,
        token=st.session_state.setdefault("feedback_token", uuid.uuid4().hex), source=source)
    try:
        with st.spinner("Storing your correction…"):
            correction_id = feedback.add_with_model(data, correction, photo_model)
    except feedback.RateLimited as error:
        st.warning(str(error))
    except (feedback.FeedbackError, ImageError, ValueError) as error:
        st.error(f"Your correction was not stored: {error}")
    else:
        st.session_state[f"feedback_sent_{key}"] = correction_id
        st.rerun()


def classify_bytes(name: str, data: bytes, size: int, classifier: Classifier, choice: str, photo_model,
                   problem: str | None, source: str = "upload") -> dict:
    """One uploaded or camera image: size check, answer, show; any bad file gets one clear line.

    Returns the answer's record for the batch CSV (with an "error" instead when there is none).
    """
    st.markdown(f"#### {name}")
    if size > UPLOAD_LIMIT_MB * 1024 * 1024:
        st.error(f"{name}: {size / 1e6:.1f} MB is over the {UPLOAD_LIMIT_MB:g} MB upload limit.")
        return {"file": name, "error": f"over the {UPLOAD_LIMIT_MB:g} MB upload limit"}
    try:
        with st.spinner("Looking at the photo…"):
            answer = answer_image(data, classifier, photo_model, choice, top_k=5, heat_maps=True,
                                  photo_problem=problem)
    except EmptyImageError as error:
        st.warning(f"{name}: {error}.")
        return {"file": name, "error": str(error)}
    except (ImageError, ValueError) as error:  # ValueError: the photo model was asked for and is missing
        st.error(f"{name}: {error}.")
        return {"file": name, "error": str(error)}
    photo, result = st.columns([1, 3])
    # The decoded, upright image (a 16-bit or CMYK file cannot be shown as it was uploaded).
    shown = answer.preprocessed.steps[0][1] if answer.preprocessed else answer.photo.view
    photo.image(shown, caption="Your image", width="stretch")
    with result:
        show_answer(answer)
        feedback_box(data, answer, photo_model, classifier.model_id, source)
    return {"file": name, **answer.to_json()}


def upload_tab(classifier: Classifier, choice: str, photo_model, problem: str | None) -> None:
    """Several files at once, a result for each."""
    uploads = st.file_uploader("Photos of clothing (one item per photo works best)", type=UPLOAD_TYPES,
                               accept_multiple_files=True, key="classify_uploads",
                               help=f"JPEG, PNG, WebP, BMP or GIF (first frame), up to {UPLOAD_LIMIT_MB:g} MB each.")
    if not uploads:
        st.caption("Tip: one garment per photo, whole in the frame. Hats, shorts and skirts are not among the ten "
                   "classes: the photo model says so.")
    records = [classify_bytes(upload.name, upload.getvalue(), upload.size, classifier, choice, photo_model, problem)
               for upload in uploads or []]
    if records:
        st.download_button(f"Answers for these {len(records)} image(s) (CSV)", exports.answers_csv(records),
                           file_name="fmnist-answers.csv", mime="text/csv", on_click="ignore",
                           icon=":material/download:", key="classify_download_answers")


def camera_tab(classifier: Classifier, choice: str, photo_model, problem: str | None) -> None:
    """A photo taken with the device's camera, answered exactly like an upload."""
    # The camera starts only when asked: a hidden tab must not ask every visitor for camera access.
    if not st.toggle("Use the camera", key="classify_camera_on"):
        st.caption("Turn the camera on to take a photo of a garment with this device (a phone's back camera "
                   "works best).")
        return
    shot = st.camera_input("Take a photo of a garment", key="classify_camera",
                           help="Your browser asks for the camera once. On a phone, the back camera works best.")
    if shot is None:
        st.caption("Nothing is sent anywhere but this app's server; the photo is not stored.")
        return
    classify_bytes("Camera photo", shot.getvalue(), shot.size, classifier, choice, photo_model, problem,
                   source="camera")


def draw_tab(classifier: Classifier) -> None:
    """A canvas: light strokes on black, like the dataset; the CNN answers."""
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
        try:
            answer = answer_drawing(np.asarray(image_data), classifier, top_k=5, heat_maps=True)
        except EmptyImageError:
            st.info("The canvas is empty: draw something.")
            return
        except ImageError as error:
            st.error(str(error))
            return
        show_answer(answer)


st.title("Classify a photo or a drawing")
classifier = get_classifier()
if classifier is None:
    st.stop()
photo_model, photo_problem = get_photo_model()
cnn_accuracy = classifier.meta.get("test_metrics", {}).get("accuracy", 0)
if photo_model is not None:
    held_out = ((photo_model.head.meta.get("metrics") or {}).get("test") or {}).get("accuracy")
    st.caption(f"Photos: the photo model `{photo_model.model_id}` "
               f"({held_out:.1%} right on held-out real photos). Drawings and small grey images: the CNN "
               f"`{classifier.model_id}` ({cnn_accuracy:.2%} on the Fashion-MNIST test set).")
else:
    st.warning(f"The photo model is not available ({photo_problem}); the Fashion-MNIST CNN answers photos too, "
               "and it is often wrong on real photos.")
    st.caption(f"Model: `{classifier.model_id}` ({cnn_accuracy:.2%} on the test set).")
choice = MODEL_CHOICES[st.radio("Who answers photos", list(MODEL_CHOICES), horizontal=True, key="classify_choice",
                                help="Automatic sends photos to the photo model and small grey images (the dataset's "
                                     "own form) to the CNN. Drawings always go to the CNN.")]
upload, camera, draw = st.tabs([":material/upload: Upload", ":material/photo_camera: Camera", ":material/draw: Draw"])
with upload:
    upload_tab(classifier, choice, photo_model, photo_problem)
with camera:
    camera_tab(classifier, choice, photo_model, photo_problem)
with draw:
    draw_tab(classifier)
