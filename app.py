"""Fashion-MNIST workbench: the Streamlit entry point. Routes over the thin pages in pages/."""

import streamlit as st

st.set_page_config(page_title="Fashion-MNIST workbench", page_icon=":material/checkroom:", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/analytics:"),
    st.Page("pages/classify.py", title="Classify", icon=":material/search:"),
]

st.navigation(PAGES).run()
