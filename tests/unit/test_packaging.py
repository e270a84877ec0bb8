"""The Docker recipe read as text (tests/e2e/test_container.py builds and runs it); README, CI and setup agree."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT


def dockerfile() -> str:
    return (REPO_ROOT / "Dockerfile").read_text()


def test_dockerfile_installs_with_the_same_setup_script():
    text = dockerfile()
    assert re.search(r"^FROM python:3\.11-slim AS build", text, re.M) and re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"&& bash scripts/setup\.sh \\$", text, re.M), "one install script for Docker, README and CI"
    assert "dataset-fashion-mnist" in (REPO_ROOT / "scripts" / "setup.sh").read_text()


def test_dockerfile_runs_safely_and_keeps_the_users_registry_apart():
    text = dockerfile()
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^EXPOSE 8501", text, re.M)
    health = text[text.index("HEALTHCHECK"):]
    assert "/_stcore/health" in health and "os.environ.get('PORT'" in health
    assert re.search(r'^VOLUME \["/data"\]', text, re.M) and "FMNIST_MODELS_DIR=/data/models" in text
    assert "FMNIST_FEEDBACK_DB=/data/" in text  # /app is read-only for the app's user
    assert re.search(r'^CMD \["bash", "scripts/container/entrypoint.sh"\]', text, re.M)


def test_the_build_context_leaves_out_what_a_checkout_makes():
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for name in (".venv", ".git", "runs", "test-artifacts", "feedback"):
        assert name in ignored, name


def test_ci_runs_the_readme_test_command():
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/start.sh" in readme
    assert re.search(r"^bash scripts/test\.sh", ci, re.M)


def test_requirements_are_pinned_and_the_test_tools_kept_out_of_the_run_time_ones():
    runtime = (REPO_ROOT / "requirements.txt").read_text()
    dev = (REPO_ROOT / "requirements-dev.txt").read_text()
    for line in (runtime + dev).splitlines():
        if line.strip() and not line.startswith(("#", "-r ")):
            assert "==" in line, line
    assert "-r requirements.txt" in dev
    for tool in ("pytest", "playwright", "ruff"):
        assert tool not in runtime and tool in dev


def test_shipped_model_is_active_and_small():
    from fmnist_core import registry

    root = REPO_ROOT / "models"
    active = registry.get_active_id(root)
    assert active, "models/ ships an active model"
    size = sum(p.stat().st_size for p in (root / active).iterdir())
    assert size < 8 * 1024 * 1024
    meta = registry.read_meta(active, root)
    assert meta["test_metrics"]["accuracy"] >= 0.935
