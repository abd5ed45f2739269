#!/usr/bin/env bash
# Builds the sandbox image `airlock-sandbox:offline` from Debian packages, without any
# container registry: mmdebstrap makes a minimal root filesystem and `docker import` turns it
# into an image. Used by CI, by the tests and by anyone whose Docker cannot pull images.
#
#   scripts/build-offline-image.sh [--force] [TAG]
#
# Needs root (or fakeroot-capable mmdebstrap), mmdebstrap and a running Docker daemon.
set -euo pipefail

force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
tag="${1:-airlock-sandbox:offline}"
suite="${AIRLOCK_DEBIAN_SUITE:-bookworm}"

if [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "image $tag already exists (pass --force to rebuild)"
    exit 0
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
    echo "mmdebstrap is missing: install it (apt-get install mmdebstrap) and run this again" >&2
    exit 1
fi

# The packages mirror the curated Dockerfile: an interpreter, a shell, the tools the block
# wrapper uses (coreutils for timeout/mktemp, procps to inspect processes).
packages=python3,bash,coreutils,procps,ca-certificates

echo "building $tag from Debian $suite ($packages)"
mmdebstrap --variant=minbase --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='chroot "$1" useradd --uid 1000 --create-home --shell /bin/bash sandbox' \
    --customize-hook='mkdir -p "$1/workspace" && chmod 0777 "$1/workspace"' \
    "$suite" - |
    docker import \
        --change 'WORKDIR /workspace' \
        --change 'ENV PYTHONUNBUFFERED=1 LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        - "$tag"
docker image inspect --format '{{.Id}}' "$tag"
