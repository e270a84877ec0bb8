"""Train: configure and start a background training job, watch it live, compare and activate the result."""

import pandas as pd
import streamlit as st

from fmnist_core import exports, feedback, jobs, photo, registry
from fmnist_core.config import MAX_EPOCHS, MAX_PATIENCE, OPTIMIZERS, PRESETS, TrainConfig, accuracy_warning
from fmnist_core.estimate import estimate
from fmnist_core.models import ARCHITECTURE_SUMMARIES, ARCHITECTURES
from fmnist_core.photo_train import PhotoTrainConfig
from fmnist_core.train import BATCHES_FILE, HISTORY_COLUMNS, MIN_RUN_STEPS, read_history
from ui.auth import admin_allowed, admin_unlocked
from ui.common import activate_button

ACTIVE_STATES = jobs.ACTIVE_STATES
POLL_SECONDS = 1.0
def format_seconds(seconds) -> str:
    """12 s, 3 min 05 s, 1 h 02 min."""
    if seconds is None:
        return "–"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def show_curves(run_dir) -> list[dict]:
    """Loss and accuracy per epoch (train vs validation), and the per-batch training loss; returns the history."""
    history = read_history(run_dir)
    batches = read_history(run_dir, BATCHES_FILE)
    left, right = st.columns(2)
    if history:
        frame = pd.DataFrame(history).set_index("epoch")
        loss_columns = [c for c in ("loss", "val_loss") if frame[c].notna().any()]
        accuracy_columns = [c for c in ("accuracy", "val_accuracy") if frame[c].notna().any()]
        left.caption("Loss per epoch (train vs validation)")
        left.line_chart(frame[loss_columns], height=240)
        right.caption("Accuracy per epoch (train vs validation)")
        right.line_chart(frame[accuracy_columns], height=240)
    if batches:
        frame = pd.DataFrame(batches).set_index("epoch")
        st.caption("Training loss and accuracy, batch by batch (running average within each epoch)")
        st.line_chart(frame[["loss", "accuracy"]], height=200)
    if not history and not batches:
        st.caption("The curves appear after the first batches.")
    return history


def show_comparison(status: dict) -> None:
    """The finished model next to the active one, with a button to activate it."""
    new_id = status.get("model_id")
    active_id = registry.get_active_id()
    try:
        new_meta = registry.read_meta(new_id)
    except registry.RegistryError as error:
        st.error(str(error))
        return
    active_meta = {}
    if active_id and active_id != new_id:
        try:
            active_meta = registry.read_meta(active_id)
        except registry.RegistryError:
            active_meta = {}
    st.markdown(f"New model **`{new_id}`**: {new_meta['test_metrics']['accuracy']:.2%} test accuracy.")
    warning = accuracy_warning(TrainConfig.from_dict(new_meta.get("config") or {}),
                               new_meta["test_metrics"]["accuracy"])
    if warning:
        st.error(warning, icon=":material/warning:")
    rows = []
    for label, meta in (("new model", new_meta), ("active model", active_meta)):
        if meta:
            rows.append({"": label, "model": meta.get("model_id"), "architecture": meta.get("architecture"),
                         "test accuracy": meta["test_metrics"]["accuracy"], "test loss": meta["test_metrics"]["loss"],
                         "params": meta.get("params"), "train time (s)": meta.get("train_seconds"),
                         "train CPU time (s)": meta.get("train_cpu_seconds")})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if new_id == active_id:
        st.success("This model is the active model.")
    else:
        activate_button(new_id, f"Activate {new_id}", key="train_activate")


def show_photo_comparison(status: dict) -> None:
    """The new photo model next to the active one (real-photo figures), with a button to activate it."""
    new_id, active_id = status.get("model_id"), photo.active_photo_head_id()
    heads = {info.model_id: info.meta for info in photo.list_photo_heads()}
    if new_id not in heads:
        st.error(f"photo model {new_id} is not in the registry")
        return
    rows = [photo_model_row(label, heads[model_id]) for label, model_id in
            (("new photo model", new_id), ("active photo model", active_id))
            if model_id in heads and (label == "new photo model" or model_id != new_id)]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if new_id == active_id:
        st.success("This is the active photo model.")
    elif admin_allowed("Activating a model", key="photo_activate"):
        if st.button(f"Activate photo model {new_id}", key="photo_activate_button", type="primary"):
            try:
                photo.activate_photo_head(new_id)
            except registry.RegistryError as error:
                st.error(f"Not activated: {error}")
                return
            st.toast(f"{new_id} now answers photos")
            st.rerun()


def photo_model_row(label: str, meta: dict) -> dict:
    """One table row of a photo model's held-out figures."""
    test = (meta.get("metrics") or {}).get("test") or {}
    return {"": label, "model": meta.get("model_id"), "held-out photos right": test.get("accuracy"),
            "sure answers right": test.get("sure_accuracy"), "photos answered sure": test.get("sure_coverage"),
            "hats/shorts/skirts flagged": test.get("not_of_the_ten_flagged"),
            "corrections used": (meta.get("corrections") or {}).get("count", 0),
            "corrections right (cross-validated)": (meta.get("corrections") or {}).get("cross_validated_accuracy"),
            "temperature": (meta.get("calibration") or {}).get("temperature"),
            "train time (s)": meta.get("train_seconds")}


def show_job(status: dict) -> None:
    """Progress, timing, curves and the outcome of one job."""
    run_dir = jobs.runs_dir() / status["run_id"]
    if status.get("kind") == "photo":
        show_photo_job(status)
        return
    state = status.get("state")
    epochs, epoch = status.get("epochs") or 0, status.get("epoch") or 0
    batch, batches = status.get("batch") or 0, status.get("batches_per_epoch") or 0
    st.markdown(f"**Job `{status['run_id']}`** — {state}: {status.get('message', '')}")
    label = f"epoch {epoch}/{epochs}, batch {batch}/{batches}" if batches else status.get("message", "")
    st.progress(min(1.0, float(status.get("progress") or 0.0)), text=label)
    columns = st.columns(4)
    columns[0].metric("Elapsed", format_seconds(status.get("elapsed_s")))
    columns[1].metric("Time left (estimate)", format_seconds(status.get("eta_s")) if state in ACTIVE_STATES else "–")
    config = status.get("config", {})
    columns[2].metric("Architecture", config.get("architecture", "?"))
    columns[3].metric("Test accuracy", f"{status['test_accuracy']:.2%}" if status.get("test_accuracy") else "–")
    if status.get("batch_size") and status["batch_size"] != config.get("batch_size"):
        st.caption(f"A short run: it trains in batches of {status['batch_size']} instead of "
                   f"{config.get('batch_size')}, so that the net gets at least {MIN_RUN_STEPS} steps (in fewer it is "
                   "left half-trained).")
    history = show_curves(run_dir)
    if history and state not in ACTIVE_STATES:
        left, right = st.columns(2)
        run_id = status["run_id"]
        left.download_button("Curves (PNG)", lambda: exports.curves_png(history, f"run {run_id}"),
                             file_name=f"run-{run_id}-curves.png", mime="image/png", on_click="ignore",
                             icon=":material/download:", key="train_download_curves")
        right.download_button("History (CSV)", lambda: exports.history_csv(history, HISTORY_COLUMNS),
                              file_name=f"run-{run_id}-history.csv", mime="text/csv", on_click="ignore",
                              icon=":material/download:", key="train_download_history")
    if state == "failed":
        st.error(f"Training failed: {status.get('error') or 'unknown reason'}")
        offer_resume(status)
    elif state == "cancelled":
        st.warning("Training was cancelled; no model was saved.")
    elif state == "finished":
        show_comparison(status)


def offer_resume(status: dict) -> None:
    """For a run that died after finishing some epochs: what it kept, and a button to go on from there."""
    checkpoint = jobs.resumable_checkpoint(status)
    if checkpoint is None:
        return
    st.info(f"It had finished {checkpoint.epoch} of {status.get('epochs')} epochs "
            f"({format_seconds(checkpoint.train_seconds)} of training) and kept a checkpoint of them: resuming goes "
            "on from there with the same settings, and ends with the model an unbroken run would have made.",
            icon=":material/save:")
    if not admin_unlocked():
        st.caption("Unlock training above to resume it.")
        return
    if st.button(f"Resume from epoch {checkpoint.epoch}", icon=":material/play_arrow:", key="train_resume"):
        try:
            jobs.resume(status["run_id"])
            st.toast("Training resumed")
            st.rerun()
        except jobs.JobBusyError as error:
            st.error(f"Not resumed: {error}.")
        except (OSError, ValueError) as error:
            st.error(f"Could not resume: {error}")


def show_photo_job(status: dict) -> None:
    """Progress and outcome of a photo-head job (seconds: no curves)."""
    state = status.get("state")
    st.markdown(f"**Photo model job `{status['run_id']}`** — {state}: {status.get('message', '')}")
    st.progress(min(1.0, float(status.get("progress") or 0.0)), text=status.get("message", ""))
    if state == "failed":
        st.error(f"Training the photo model failed: {status.get('error') or 'unknown reason'}")
    elif state == "finished":
        show_photo_comparison(status)


def corrections_choice() -> tuple[bool, float]:
    """How many accepted corrections there are, per class, and whether (and how much) the head trains on them."""
    try:
        accepted = feedback.counts()["accepted"]
    except feedback.FeedbackError as error:
        st.warning(f"The corrections cannot be read, so the head trains without them: {error}")
        return False, PhotoTrainConfig.feedback_weight
    total = sum(accepted.values())
    if not total:
        st.caption("No accepted corrections yet: when people correct the photo model on the Classify page and an "
                   "admin accepts their corrections (Corrections page), they can train it here.")
        return False, PhotoTrainConfig.feedback_weight
    left, right = st.columns([1, 2])
    with left:
        use = st.checkbox(f"Include the {total} accepted correction(s)", value=True, key="photo_with_feedback")
        weight = st.number_input("Weight of a correction", min_value=1.0, max_value=200.0,
                                 value=PhotoTrainConfig.feedback_weight, step=5.0, disabled=not use,
                                 key="photo_feedback_weight",
                                 help="How much more one correction counts than one photo of the pool: a handful of "
                                      "corrections must be able to move a head fitted on 3,400 photos.")
    right.bar_chart(pd.DataFrame({"class": list(accepted), "accepted corrections": list(accepted.values())}),
                    x="class", y="accepted corrections", horizontal=True, height=180)
    return use, float(weight)


def photo_training_section() -> None:
    """Retrain the photo model's head on the cached real-photo features (about a minute)."""
    st.subheader("Photo model")
    st.caption("The photo model answers real photos: a pretrained EfficientNet-Lite0 whose features feed a head "
               "trained on 3,600 real phone photos and, beside them, the same garments cut out and laid on a white "
               "page as a shop shows them. Retraining the head takes about a minute (5-fold cross-validated "
               "calibration with a sure threshold per class, then the final fit) and runs as the background job "
               "too.")
    with_feedback, weight = corrections_choice()
    if st.button("Train the photo model's head", icon=":material/photo_library:", key="photo_train_start"):
        try:
            jobs.start_photo(with_feedback=with_feedback, feedback_weight=weight)
            st.toast("Photo model training started")
            st.rerun()
        except jobs.JobBusyError as error:
            st.error(f"Not started: {error}.")
        except OSError as error:
            st.error(f"Could not start: {error}")


@st.fragment(run_every=POLL_SECONDS)
def live_job_panel() -> None:
    """Polls the running job once a second; hands back to a full rerun when it ends."""
    run_id = jobs.current_run_id()
    status = jobs.job_status(run_id) if run_id else None
    if not status:
        return
    if status.get("state") not in ACTIVE_STATES:
        # The job ended: the whole page draws its outcome, once, outside this polling fragment, so that the
        # outcome's buttons (activate, resume) never sit in a fragment that is about to disappear.
        st.rerun()
    show_job(status)
    if st.button("Cancel training", icon=":material/stop_circle:", key="train_cancel"):
        jobs.cancel(status["run_id"])
        st.toast("Cancel requested: the job stops after the current batch.")


def training_form() -> TrainConfig | None:
    """Preset, architecture, epochs, the estimate and Start; everything else under Advanced settings.

    Returns a config when Start was pressed. Not an st.form: the estimate follows every change, and only
    the button starts a job (Enter in a field does not).
    """
    left, middle, right = st.columns(3)
    preset_name = left.selectbox("Preset", list(PRESETS), index=list(PRESETS).index("standard"), key="train_preset",
                                 help="quick: the cheapest net that reaches about 92.5 %; standard (the default): "
                                      "about 94 %; best: the shipped model's recipe, about 94.5 %. How long each "
                                      "takes on this machine is estimated below.")
    base = PRESETS[preset_name]
    # Widget keys carry the preset name so that picking a preset resets the fields to its values.
    architecture = middle.selectbox("Architecture", list(ARCHITECTURES), key=f"arch_{preset_name}",
                                    index=list(ARCHITECTURES).index(base.architecture),
                                    help="\n".join(f"- **{name}**: {summary}"
                                                    for name, summary in ARCHITECTURE_SUMMARIES.items()))
    epochs = right.number_input("Epochs", 1, MAX_EPOCHS, base.epochs, key=f"epochs_{preset_name}")
    with st.expander("Advanced settings (the preset's values)"):
        left, middle, right = st.columns(3)
        batch_choices = [32, 64, 128, 256, 512]
        batch_size = left.selectbox("Batch size", batch_choices, index=batch_choices.index(base.batch_size),
                                    key=f"batch_{preset_name}",
                                    help=f"A run that would take fewer than {MIN_RUN_STEPS} steps in batches of "
                                         "this size (a few thousand images for a few epochs) trains in smaller "
                                         "ones, down to 32, so that the net is not left half-trained.")
        learning_rate = middle.number_input("Peak learning rate", 1e-5, 0.1, base.learning_rate, format="%.4f",
                                            key=f"lr_{preset_name}", help="Warm-up, then cosine decay to zero.")
        validation_split = right.slider("Validation split", 0.0, 0.5, base.validation_split, 0.05,
                                        key=f"val_{preset_name}")
        patience = left.number_input("Early stopping patience (0 = off)", 0, MAX_PATIENCE,
                                     base.early_stopping_patience, key=f"patience_{preset_name}",
                                     help="Needs a validation split.")
        augmentation = middle.checkbox("Augmentation (random shifts and flips)", base.augmentation,
                                       key=f"aug_{preset_name}")
        subset = right.number_input("Training images (0 = all 60,000)", 0, 60_000, 0, step=1000,
                                    key=f"subset_{preset_name}")
        erasing = left.slider("Random erasing", 0.0, 1.0, base.random_erasing, 0.05, key=f"erase_{preset_name}",
                              help="With augmentation: the share of images that get a random rectangle blanked "
                                   "out, so the net cannot rely on any one part of the garment.")
        finetune_epochs = middle.number_input("Last-stage epochs (0 = none)", 0, MAX_EPOCHS, base.finetune_epochs,
                                              key=f"finetune_{preset_name}",
                                              help="Extra epochs at the last-stage learning rate "
                                                   f"({base.finetune_learning_rate:g}), after the others.")
        shoe_pairs = right.slider("Shoes shown as pairs (last stage)", 0.0, 1.0, base.shoe_pairs, 0.05,
                                  key=f"pairs_{preset_name}",
                                  help="The share of sandals, sneakers and boots shown as a pair of shoes, as "
                                       "phone photos show them, so that a pair is recognised as the shoe.")
        label_smoothing = left.slider("Label smoothing", 0.0, 0.5, base.label_smoothing, 0.05,
                                      key=f"smoothing_{preset_name}",
                                      help="The share of each training target spread over the ten classes, so "
                                           "that the net is not pushed to be 100 % sure of every image.")
        optimizer = middle.selectbox("Optimizer", list(OPTIMIZERS), index=list(OPTIMIZERS).index(base.optimizer),
                                     key=f"optimizer_{preset_name}",
                                     help="Adam (peak rate about 0.003), or SGD with Nesterov momentum (about 0.1).")
        weight_decay = right.number_input("Weight decay", 0.0, 0.1, base.weight_decay, 0.001, format="%.4f",
                                          key=f"decay_{preset_name}",
                                          help="Each step shrinks the weights by learning rate x this, which "
                                               "keeps them small and the net from memorising (0 = off).")
        averaging = left.number_input("Weight averaging (momentum)", 0.0, 0.9999, base.weight_averaging, 0.001,
                                      format="%.4f", key=f"averaging_{preset_name}",
                                      help="End the main stage with a moving average of its weights, which "
                                           "smooths out the last steps' noise; 0.999 averages about the last "
                                           "1,000 steps (kept to the last quarter of a short run). 0 = off.")
    try:
        config = base.replace(architecture=architecture, epochs=int(epochs), batch_size=int(batch_size),
                              learning_rate=float(learning_rate), validation_split=float(validation_split),
                              early_stopping_patience=int(patience), augmentation=bool(augmentation),
                              random_erasing=float(erasing), finetune_epochs=int(finetune_epochs),
                              shoe_pairs=float(shoe_pairs), label_smoothing=float(label_smoothing),
                              optimizer=str(optimizer), weight_decay=float(weight_decay),
                              weight_averaging=float(averaging),
                              subset=int(subset) if subset and subset >= 32 else None).validate()
    except ValueError as error:
        st.error(str(error))
        config = None
    if config is not None:
        show_estimate(config)
    started = st.button("Start training", icon=":material/play_arrow:", type="primary", key="train_start",
                        disabled=config is None)
    return config if started else None


def show_estimate(config: TrainConfig) -> None:
    """'About N minutes on this machine', from a few timed steps of this network here (once), or a finished run."""
    busy = jobs.running_job() is not None  # a job on the same cores would slow the timing, and it is cached
    try:
        with st.spinner(f"Timing a few training steps of {config.architecture} on this machine…"):
            expected = estimate(config, time_if_missing=not busy)
    except Exception as error:  # an estimate must never keep anyone from training
        st.caption(f"No estimate ({type(error).__name__}); the time left is shown once the job runs.")
        return
    if expected is None:
        st.caption(":material/timer: How long this takes on this machine is estimated when no job is running.")
        return
    st.caption(f":material/timer: Estimated: {expected.describe()}. Refined from the real pace once the job runs.")


st.title("Train a model")
st.caption("Training runs as a background job on the server: you can switch pages, reload or close the tab, "
           "and come back to watch it. One job runs at a time for everyone. Each finished epoch is checkpointed: "
           "a run whose process dies (server restart, out of memory) can be resumed from there.")

running = jobs.running_job()
if running is not None:
    st.info(f"Job `{running['run_id']}` is running (progress below); a new one can start when it ends.")
if admin_allowed("Training", key="train"):
    config = training_form()
    if config is not None:
        try:
            jobs.start(config)
            st.toast("Training started")
            st.rerun()
        except jobs.JobBusyError as error:
            st.error(f"Not started: {error}. Its progress is shown below.")
        except (OSError, ValueError) as error:
            st.error(f"Could not start training: {error}")

    photo_training_section()

st.divider()
current = jobs.current_run_id()
if current is None:
    st.caption("No training job has run yet on this server.")
elif jobs.running_job() is not None:
    live_job_panel()
else:
    status = jobs.job_status(current)
    if status:
        show_job(status)

with st.expander("Earlier runs"):
    runs = jobs.list_runs()
    if runs:
        st.dataframe(pd.DataFrame([{
            "run": r["run_id"], "state": r.get("state"),
            "architecture": r.get("config", {}).get("architecture") or ("photo head" if r.get("kind") == "photo" else None),
            "epochs": r.get("epochs"), "test accuracy": r.get("test_accuracy"), "model": r.get("model_id"),
            "error": r.get("error")} for r in runs]), hide_index=True, width="stretch")
    else:
        st.caption("None yet.")
