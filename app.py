"""Fashion-MNIST workbench: the Streamlit entry point. Routes over the thin pages in app_pages/.

Not pages/: Streamlit also auto-discovers that folder and, on a fresh server, serves /classify as a bare
script without this file's navigation and page config.
"""

import streamlit as st

st.set_page_config(page_title="Fashion-MNIST workbench", page_icon=":material/checkroom:", layout="wide")

PAGES = [
    st.Page("app_pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("app_pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/analytics:"),
    st.Page("app_pages/classify.py", title="Classify", icon=":material/search:"),
    st.Page("app_pages/feedback.py", title="Corrections", icon=":material/rate_review:"),
]

st.navigation(PAGES).run()
