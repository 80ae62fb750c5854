#!/usr/bin/env bash
# Prints the folder of the Gateway API standard-channel CRDs QubeSec is tested with (v1.6.3), fetched once into
# .cache/ from the Go module proxy (sigs.k8s.io/gateway-api's module zip holds config/crd/standard) and checked
# against the zip's pinned SHA-256. The CRDs are not QubeSec's: clusters install them (docs/gateway-api.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${QUBESEC_CACHE:-$root/.cache}"
version=v1.6.3
sha256=7c5d0a931d6ffb3e08ac4d5318969faaa6acf25a40ad13cc5978c22117e9b64b
out="$cache/gateway-api-crds-$version"
if [ -f "$out/.complete" ]; then echo "$out"; exit 0; fi

missing=()
for tool in curl unzip; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "qubesec: fetching the Gateway API CRDs needs ${missing[*]}" >&2; exit 1; }
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates "${missing[@]}" >&2
fi
# The first proxy GOPROXY names, as scripts/go.sh reads it ("direct" and "off" are no proxy).
proxy="${GOPROXY:-https://proxy.golang.org}"
proxy="${proxy%%,*}"
proxy="${proxy%%|*}"
case "$proxy" in direct | off | '') proxy=https://proxy.golang.org ;; esac
echo "qubesec: fetching the Gateway API $version CRDs into $out (from $proxy)" >&2
mkdir -p "$cache"
zip="$cache/gateway-api-$version.zip"
curl -fsSL -o "$zip" "$proxy/sigs.k8s.io/gateway-api/@v/$version.zip"
echo "$sha256  $zip" | sha256sum -c --quiet - || { rm -f "$zip"; echo "qubesec: $zip does not match its pinned SHA-256" >&2; exit 1; }
rm -rf "$out" "$out.tmp"
unzip -q "$zip" "sigs.k8s.io/gateway-api@$version/config/crd/standard/*" -d "$out.tmp"
rm -f "$zip"
mv "$out.tmp/sigs.k8s.io/gateway-api@$version/config/crd/standard" "$out"
rm -rf "$out.tmp"
touch "$out/.complete"
echo "$out"
