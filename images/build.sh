#!/usr/bin/env bash
# Builds the QubeSec image with Docker (BuildKit) from the repository root. Node.js comes from .node-version, the
# version the tests run on. Usage: images/build.sh [image[:tag]] [extra docker build args, e.g. --build-arg WITH_OQS=true]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image="${1:-qubesec:dev}"
shift || true
command -v docker >/dev/null || { echo "qubesec: images/build.sh needs docker" >&2; exit 1; }
DOCKER_BUILDKIT=1 docker build \
  --file "$root/images/Dockerfile" \
  --build-arg "NODE_VERSION=$(cat "$root/.node-version")" \
  --tag "$image" \
  "$@" \
  "$root"
