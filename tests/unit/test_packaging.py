"""What CI can check of the Docker image without a Docker engine, and that README, CI and setup agree."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT


def dockerfile() -> str:
    return (REPO_ROOT / "Dockerfile").read_text()


def test_dockerfile_installs_with_the_same_setup_script():
    text = dockerfile()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert re.search(r"^RUN bash scripts/setup\.sh", text, re.M), "one install script for Docker, README and CI"
    assert "dataset-fashion-mnist" in (REPO_ROOT / "scripts" / "setup.sh").read_text()


def test_dockerfile_runs_safely_and_persists_models():
    text = dockerfile()
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^EXPOSE 8501", text, re.M)
    assert re.search(r"^HEALTHCHECK .*", text, re.M) and "/_stcore/health" in text
    assert re.search(r'^VOLUME \["/app/models"\]', text, re.M)
    assert re.search(r'^CMD \["bash", "scripts/serve.sh"\]', text, re.M)


def test_ci_runs_the_readme_test_command():
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/start.sh" in readme
    assert re.search(r"^bash scripts/test\.sh", ci, re.M)


def test_requirements_are_pinned():
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert "==" in line, line


def test_shipped_model_is_active_and_small():
    from fmnist_core import registry

    root = REPO_ROOT / "models"
    active = registry.get_active_id(root)
    assert active, "models/ ships an active model"
    size = sum(p.stat().st_size for p in (root / active).iterdir())
    assert size < 8 * 1024 * 1024
    meta = registry.read_meta(active, root)
    assert meta["test_metrics"]["accuracy"] >= 0.935


def _onednn_setting_after_import(environment: dict) -> str:
    import subprocess
    import sys

    code = "import os, fmnist_core; print(os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset'))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                               cwd=REPO_ROOT, env=environment)
    return completed.stdout.strip()


def test_importing_the_core_turns_on_onednn_on_x86_unless_the_user_said_otherwise():
    import os
    import platform

    clean = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    expected = "1" if platform.machine().lower() in ("x86_64", "amd64") else "unset"
    assert _onednn_setting_after_import(clean) == expected
    assert _onednn_setting_after_import({**clean, "TF_ENABLE_ONEDNN_OPTS": "0"}) == "0"
