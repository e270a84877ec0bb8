"""AppTest helpers: open app.py on a page with a generous timeout (TensorFlow import alone takes seconds)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO_ROOT

TIMEOUT = 180


def open_page(page: str) -> AppTest:
    """Run app.py switched to app_pages/<page>.py."""
    app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=TIMEOUT)
    app.switch_page(f"app_pages/{page}.py")
    app.run()
    return app


def assert_clean(app: AppTest) -> None:
    """No exception box on the page."""
    assert not app.exception, [e.message for e in app.exception]


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches():
    """Each test sees its own registry: clear st.cache_resource between tests."""
    import streamlit as st

    st.cache_resource.clear()
    yield
    st.cache_resource.clear()
