#!/usr/bin/env bash
# The release build the container image ships (Dockerfile), runnable and checked here because this
# machine has no container engine: `swift build -c release --static-swift-stdlib`, then proof that
# the binary needs no Swift runtime from the system and works.
#
#   scripts/release-build.sh                    # builds into .build (or $RELEASE_SCRATCH_PATH)
#
# The Swift standard library and Foundation are linked in, so the runtime image needs only glibc,
# libstdc++, zlib and CA certificates; a toolchain in the image would add ~1 GB and attack surface.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=${RELEASE_SCRATCH_PATH:-.build}

swift build -c release --static-swift-stdlib --product portcullis --scratch-path "$scratch"
binary="$scratch/release/portcullis"

# No Swift library may come from the system: the runtime image has none.
if ldd "$binary" | grep -E 'libswift|libFoundation|libdispatch|libBlocksRuntime'; then
  echo "release-build: $binary still links the Swift libraries above dynamically" >&2
  exit 1
fi
"$binary" --help >/dev/null
"$binary" policy lint manifests/policies/examples >/dev/null
echo "release-build: $binary ($(du -h "$binary" | cut -f1)), needs only: $(ldd "$binary" | awk '{print $1}' | tr '\n' ' ')"
