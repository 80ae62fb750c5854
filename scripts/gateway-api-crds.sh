#!/usr/bin/env bash
# Prints the folder of the Gateway API standard-channel CRDs QubeSec is tested with (v1.6.3), copied once into .cache/
# from the sigs.k8s.io/gateway-api module (config/crd/standard), which `go mod download` fetches into Go's module
# cache and checks against the Go checksum database, as scripts/acvp-vectors.sh does. The CRDs are not QubeSec's:
# clusters install them (docs/gateway-api.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${QUBESEC_CACHE:-$root/.cache}"
module="sigs.k8s.io/gateway-api"
version=v1.6.3
out="$cache/gateway-api-crds-$version"
if [ -f "$out/.complete" ]; then echo "$out"; exit 0; fi
PATH="$(bash "$root/scripts/go.sh"):$PATH"

dir="$(go mod download -json "$module@$version" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')"
[ -d "$dir/config/crd/standard" ] || { echo "qubesec: go mod download gave no config/crd/standard for $module@$version" >&2; exit 1; }
echo "qubesec: copying the Gateway API $version CRDs into $out" >&2
rm -rf "$out"
mkdir -p "$out"
cp "$dir"/config/crd/standard/*.yaml "$out/"
# The module cache's files are read-only; the copies are the project's.
chmod 0644 "$out"/*.yaml
touch "$out/.complete"
echo "$out"
