#!/usr/bin/env bash
# Where no image registry can be reached, build a local stand-in for python:3.11-slim from Debian packages:
# debootstrap a minimal bookworm, import it, add Python 3.11 with venv and pip. A real registry's image is
# used instead wherever one is reachable (podman build --pull=never takes whichever is tagged locally).
#   bash scripts/container/standin_base.sh [WORK_DIR]
set -euo pipefail
IMAGE=docker.io/library/python:3.11-slim
if podman image exists "$IMAGE"; then echo "standin: $IMAGE is already here"; exit 0; fi
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
rootfs="$work/rootfs"
if [ ! -x "$rootfs/bin/sh" ]; then
  echo "standin: debootstrap bookworm (minbase) into $rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { tail -5 "$work/debootstrap.log"; exit 1; }
fi
tar -C "$rootfs" -c . | podman import - localhost/debian-bookworm-minbase:latest >/dev/null
cat >"$work/Containerfile" <<'CONTAINERFILE'
FROM localhost/debian-bookworm-minbase:latest
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3.11 python3.11-venv python3-pip ca-certificates >/dev/null \
 && ln -sf /usr/bin/python3.11 /usr/local/bin/python \
 && rm -rf /var/lib/apt/lists/*
CMD ["python3.11"]
CONTAINERFILE
podman build --pull=never --network host -t "$IMAGE" -f "$work/Containerfile" "$work" >"$work/build.log" 2>&1 \
  || { tail -20 "$work/build.log"; exit 1; }
echo "standin: built $IMAGE"
