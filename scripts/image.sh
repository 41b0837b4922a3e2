#!/usr/bin/env bash
# Builds the container image (Dockerfile) with docker or podman, whichever is installed.
#
#   scripts/image.sh [TAG]                    # default portcullis:dev
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-portcullis:dev}
engine=$(command -v docker || command -v podman || true)
if [ -z "$engine" ]; then
  echo "image: neither docker nor podman is installed; scripts/release-build.sh runs the same build without one" >&2
  exit 1
fi
exec "$engine" build -t "$tag" .
