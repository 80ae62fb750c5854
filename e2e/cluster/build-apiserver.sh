#!/usr/bin/env bash
# Builds (once) kube-apiserver from the Go module proxy and prints the binary's path. No Docker, no release download:
# a throw-away module requires k8s.io/kubernetes and points each staging module at its published twin.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${QUBESEC_CACHE:-$root/.cache}"
version="${KUBE_VERSION:-v1.36.3}"
staging="v0.${version#v1.}"
out="$cache/kube-apiserver-$version"
if [ -x "$out" ]; then echo "$out"; exit 0; fi
command -v go >/dev/null || { echo "qubesec: building kube-apiserver needs Go (https://go.dev)" >&2; exit 1; }

work="$cache/kube-apiserver-build-$version"
mkdir -p "$work"
cd "$work"
export GOFLAGS=-mod=mod
gomod="$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
{
  echo "module qubesec.local/kube-apiserver"
  echo "go 1.25"
  echo "require k8s.io/kubernetes $version"
  grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" \
    | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
} > go.mod
echo "qubesec: building kube-apiserver $version (first time only; several minutes)" >&2
go build -trimpath -ldflags='-s -w' -o "$out.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2
mv "$out.tmp" "$out"
echo "$out"
