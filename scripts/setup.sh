#!/usr/bin/env bash
# Idempotent setup, used by the README's commands, CI and the Dockerfile alike:
#   1. Debian packages when we are root on Debian/Ubuntu: the Fashion-MNIST dataset, and with
#      --with-browser Chromium + ChromeDriver for the end-to-end tests (and emoji-free fonts for screenshots).
#   2. A virtual environment in .venv with the pinned requirements (re-installed only when they change).
# Elsewhere it prints what to install by hand; the loader then falls back to FMNIST_DATA_DIR or the Keras download.
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_BROWSER=0
for arg in "$@"; do
  case "$arg" in
    --with-browser) WITH_BROWSER=1 ;;
    *) echo "usage: scripts/setup.sh [--with-browser]" >&2; exit 2 ;;
  esac
done

packages=(dataset-fashion-mnist)
if [ "$WITH_BROWSER" = 1 ]; then packages+=(chromium chromium-driver fonts-dejavu-core); fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: not root or no apt-get; please install: ${missing[*]}" >&2
    echo "setup: (the app can also use FMNIST_DATA_DIR or download the dataset with Keras at first use)" >&2
  fi
fi

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "setup: installing Python packages from requirements.txt"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  echo "$wanted" > "$stamp"
fi
echo "setup: ready"
