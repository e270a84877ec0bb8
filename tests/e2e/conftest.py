"""A real Streamlit server (started with the Docker image's entry command) and a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOT_DIR = Path(os.environ.get("FMNIST_SCREENSHOT_DIR", REPO_ROOT / "test-artifacts" / "screenshots"))
SERVER_LOG: list[Path] = []  # the running server's log, for failure messages (filled by app_url)
SERVER_MODELS: list[Path] = []  # the running server's private registry (filled by app_url)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("streamlit did not become healthy in time")


@pytest.fixture(scope="session")
def app_url(tmp_path_factory, trained_registry):
    """Start scripts/serve.sh on a free port with a private copy of the registry; yield its URL."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: run scripts/setup.sh --with-browser (installs Debian chromium)")
    root = tmp_path_factory.mktemp("e2e")
    shipped = REPO_ROOT / "models"
    source = shipped if any(shipped.glob("*/model.keras")) else trained_registry
    shutil.copytree(source, root / "models")
    port = free_port()
    env = {**os.environ, "FMNIST_MODELS_DIR": str(root / "models"), "FMNIST_RUNS_DIR": str(root / "runs"),
           "FMNIST_FEEDBACK_DB": str(root / "feedback.sqlite3"),
           "PORT": str(port), "ADDRESS": "127.0.0.1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    log = open(root / "streamlit.log", "w")
    SERVER_LOG[:] = [root / "streamlit.log"]
    SERVER_MODELS[:] = [root / "models"]
    process = subprocess.Popen(["bash", "scripts/serve.sh", "--server.fileWatcherType", "none"], cwd=REPO_ROOT,
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
        log.close()


BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def playwright():
    """One Playwright driver for the session (a second sync driver cannot run beside it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright):
    """Debian's Chromium driven by Playwright (its own browser download does not work here)."""
    instance = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
    yield instance
    instance.close()


@pytest.fixture
def page(browser):
    """A fresh tab, 1400 px wide so the wide layout shows."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    context.close()
