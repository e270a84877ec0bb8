#!/usr/bin/env bash
# Set up (idempotent) and start the app on http://localhost:${PORT:-8501}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec bash scripts/serve.sh "$@"
