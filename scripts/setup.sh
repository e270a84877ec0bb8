#!/usr/bin/env bash
# Idempotent setup, used by the README's commands, CI and the Dockerfile alike:
#   1. Debian packages when we are root on Debian/Ubuntu: the Fashion-MNIST dataset; with --with-browser
#      Chromium + ChromeDriver for the end-to-end tests (and emoji-free fonts for screenshots); with
#      --with-container podman, runc and debootstrap for the container test.
#   2. A virtual environment in .venv with the pinned run-time requirements (requirements.txt), or with --dev
#      the test and lint tools too (requirements-dev.txt); re-installed only when they change.
# Elsewhere it prints what to install by hand; the loader then falls back to FMNIST_DATA_DIR or the Keras download.
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_BROWSER=0 WITH_CONTAINER=0 REQUIREMENTS=requirements.txt
for arg in "$@"; do
  case "$arg" in
    --with-browser) WITH_BROWSER=1 ;;
    --with-container) WITH_CONTAINER=1 ;;
    --dev) REQUIREMENTS=requirements-dev.txt ;;
    *) echo "usage: scripts/setup.sh [--dev] [--with-browser] [--with-container]" >&2; exit 2 ;;
  esac
done

packages=(dataset-fashion-mnist)
if [ "$WITH_BROWSER" = 1 ]; then packages+=(chromium chromium-driver fonts-dejavu-core); fi
if [ "$WITH_CONTAINER" = 1 ]; then packages+=(podman runc debootstrap uidmap); fi

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
# A venv set up with --dev holds the run-time requirements too, so it satisfies a plain setup as it is.
wanted=$(cat requirements.txt "$REQUIREMENTS" | sha256sum | cut -d' ' -f1)
dev_wanted=none
if [ -f requirements-dev.txt ]; then dev_wanted=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1); fi
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$have" != "$wanted" ] && [ "$have" != "$dev_wanted" ]; then
  echo "setup: installing Python packages from $REQUIREMENTS"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$REQUIREMENTS"
  echo "$wanted" > "$stamp"
fi
echo "setup: ready"
