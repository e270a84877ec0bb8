"""Corrections: what people told the photo model, as a gallery; accept, reject, delete and export (admin)."""

import streamlit as st

from fmnist_core import feedback
from ui.auth import admin_allowed

GALLERY_SIZE = 48
COLUMNS = 6
ANY = "any"

st.title("Corrections")
st.caption("Under every answer on the Classify page a visitor can say it was right, or what it really is. The "
           "photo is kept only then. Nothing a visitor sends trains the photo model until an admin accepts it; "
           "accepted corrections go into **Train the photo model's head** on the Train page.")
try:
    totals = feedback.counts()
    every = feedback.list_corrections()
except feedback.FeedbackError as error:
    st.error(f"**The corrections cannot be read.** {error}")
    st.stop()

pending, accepted, rejected = (sum(totals[status].values()) for status in feedback.STATUSES)
first, second, third = st.columns(3)
first.metric("Waiting for review", pending)
second.metric("Accepted (used for training)", accepted)
third.metric("Rejected", rejected)
if not every:
    st.info("No corrections yet. They appear here when someone answers \"Right\" or \"Wrong, it is a…\" under a "
            "photo on the Classify page (or with `python -m fmnist_core feedback add`).")
    st.stop()

status_filter, label_filter, answer_filter = st.columns(3)
status = status_filter.selectbox("Status", [ANY, *feedback.STATUSES], index=1 if pending else 0,
                                 key="feedback_status")
label = label_filter.selectbox("Class given", [ANY, *feedback.LABELS], key="feedback_label")
answers = sorted({row["photo_answer"] for row in every if row["photo_answer"]})
answer = answer_filter.selectbox("Photo model's answer", [ANY, *answers], key="feedback_answer")
rows = feedback.list_corrections(status=None if status == ANY else status, label=None if label == ANY else label,
                                 answer=None if answer == ANY else answer)
st.caption(f"{len(rows)} correction(s) match" + (f"; the newest {GALLERY_SIZE} are shown" if len(rows) > GALLERY_SIZE
                                                  else "") + ". Tick the ones to act on.")

selected = []
shown = rows[:GALLERY_SIZE]
for start in range(0, len(shown), COLUMNS):
    for cell, row in zip(st.columns(COLUMNS), shown[start:start + COLUMNS]):
        cell.image(feedback.photo_bytes(row["id"]), width="stretch")
        said = row["photo_answer"] or "-"
        mark = {"pending": ":material/hourglass_empty:", "accepted": ":material/check_circle:",
                "rejected": ":material/cancel:"}[row["status"]]
        cell.caption(f"{mark} #{row['id']} · **{row['label']}** · model said {said} · {row['verdict']}")
        if cell.checkbox("select", key=f"feedback_pick_{row['id']}", label_visibility="collapsed"):
            selected.append(row["id"])

st.divider()
if admin_allowed("Reviewing corrections", key="feedback_review"):
    accept, reject, delete, export = st.columns(4)
    try:
        if accept.button(f"Accept {len(selected)}", icon=":material/check:", disabled=not selected,
                         key="feedback_accept", type="primary"):
            st.toast(f"accepted {feedback.set_status(selected, 'accepted')} correction(s)")
            st.rerun()
        if reject.button(f"Reject {len(selected)}", icon=":material/block:", disabled=not selected,
                         key="feedback_reject"):
            st.toast(f"rejected {feedback.set_status(selected, 'rejected')} correction(s)")
            st.rerun()
        if delete.button(f"Delete {len(selected)}", icon=":material/delete:", disabled=not selected,
                         key="feedback_delete"):
            st.toast(f"deleted {feedback.delete(selected)} correction(s), photos and all")
            st.rerun()
    except (feedback.FeedbackError, ValueError) as error:
        st.error(f"Nothing was changed: {error}")
    export.download_button("Export all (ZIP: photos + CSV)", feedback.export_zip, file_name="fmnist-corrections.zip",
                           mime="application/zip", icon=":material/download:", on_click="ignore",
                           key="feedback_export")
