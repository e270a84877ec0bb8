#!/usr/bin/env bash
# Set up (idempotent, with the browser for end-to-end tests) and run the whole test suite
# (unit, AppTest, reliability, browser end-to-end, the Docker image built and run with podman, and the
# benchmark's --quick sanity mode).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev --with-browser --with-container
export TF_CPP_MIN_LOG_LEVEL=2 FMNIST_NO_DOWNLOAD=1
.venv/bin/python -m pytest "$@"
