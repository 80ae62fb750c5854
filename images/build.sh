#!/usr/bin/env bash
# Builds the QubeSec image from the repository root with Docker (BuildKit) where a Docker engine answers, else with
# buildah (daemonless), from the same Dockerfile with the same build arguments. Node.js comes from .node-version, the
# version the tests run on. WITH_OQS=true builds the oqs-provider variant (the Dockerfile's `oqs` target).
# QUBESEC_IMAGE_BUILDER=docker|buildah forces the builder.
# Usage: images/build.sh [image[:tag]] [extra build args, e.g. --build-arg OQS_PROVIDER_SHA256=...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image="${1:-qubesec:dev}"
shift || true

builder="${QUBESEC_IMAGE_BUILDER:-}"
if [ -z "$builder" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then builder=docker; else builder=buildah; fi
fi
command -v "$builder" >/dev/null || { echo "qubesec: images/build.sh needs a Docker engine or buildah ($builder not found)" >&2; exit 1; }

args=(
  --file "$root/images/Dockerfile"
  --build-arg "NODE_VERSION=$(cat "$root/.node-version")"
  --tag "$image"
)
if [ "${WITH_OQS:-false}" = true ]; then args+=(--target oqs); fi

case "$builder" in
  docker)
    DOCKER_BUILDKIT=1 docker build "${args[@]}" "$@" "$root"
    ;;
  buildah)
    # As docker build does by default: a base image already in local storage is used, a missing one pulled.
    # Docker's image format keeps HEALTHCHECK; --layers caches each step as docker does. Like BuildKit, buildah
    # reads images/Dockerfile.dockerignore for the context.
    buildah bud --pull=false --format docker --layers "${args[@]}" "$@" "$root"
    ;;
  *)
    echo "qubesec: QUBESEC_IMAGE_BUILDER must be docker or buildah, not $builder" >&2
    exit 1
    ;;
esac
