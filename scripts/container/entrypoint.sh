#!/usr/bin/env bash
# The image's start command: bring the image's shipped models into the user's registry on the volume
# (fmnist_core.shipped sync), then start the app.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python -m fmnist_core.shipped sync models "${FMNIST_MODELS_DIR:-/data/models}"
exec bash scripts/serve.sh "$@"
