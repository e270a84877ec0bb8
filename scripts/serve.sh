#!/usr/bin/env bash
# Start the app without setting anything up (the Docker image's entry command; setup ran at build time).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/streamlit run app.py --server.port "${PORT:-8501}" --server.address "${ADDRESS:-0.0.0.0}" \
  --server.headless true --browser.gatherUsageStats false "$@"
