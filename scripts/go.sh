#!/usr/bin/env bash
# Prints the bin directory of a Go toolchain for the builds that need one (Kubernetes, helm, test vectors): the
# machine's `go` when it is at least the version the Kubernetes module asks for, else the pinned toolchain, fetched
# once into .cache/ from the Go module proxy (golang.org/toolchain, what GOTOOLCHAIN downloads) and checked against
# its pinned SHA-256. A fresh Debian has no Go, and Debian 12's golang (1.19) is too old.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${QUBESEC_CACHE:-$root/.cache}"
minimum=1.25
version=1.26.8
sha256=30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7

# go version prints "go version go1.26.8 linux/amd64".
if command -v go >/dev/null; then
  have="$(go version | sed -n 's/^go version go\([0-9]*\.[0-9]*\).*/\1/p')"
  if [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$minimum" "$have" | sort -V | head -1)" = "$minimum" ]; then
    dirname "$(command -v go)"
    exit 0
  fi
fi
dir="$cache/go-$version"
if [ ! -x "$dir/bin/go" ]; then
  [ "$(uname -m)" = x86_64 ] || { echo "qubesec: the pinned Go toolchain is for linux/amd64; install Go >= $minimum" >&2; exit 1; }
  missing=()
  for tool in curl unzip; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "qubesec: fetching Go needs ${missing[*]}" >&2; exit 1; }
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates "${missing[@]}" >&2
  fi
  proxy="${GOPROXY:-https://proxy.golang.org}"
  proxy="${proxy%%,*}"
  echo "qubesec: installing Go $version into $dir (from $proxy)" >&2
  mkdir -p "$cache"
  zip="$cache/go-$version.zip"
  curl -fsSL -o "$zip" "$proxy/golang.org/toolchain/@v/v0.0.1-go$version.linux-amd64.zip"
  echo "$sha256  $zip" | sha256sum -c --quiet - || { rm -f "$zip"; echo "qubesec: $zip does not match its pinned SHA-256" >&2; exit 1; }
  rm -rf "$dir.tmp"
  unzip -q "$zip" -d "$dir.tmp"
  rm -f "$zip"
  mv "$dir.tmp/golang.org/toolchain@v0.0.1-go$version.linux-amd64" "$dir"
  rm -rf "$dir.tmp"
fi
echo "$dir/bin"
