#!/usr/bin/env bash
# Builds (once) the Kubernetes binaries the e2e tests run, in ONE `go build` from the Go module proxy, and prints the
# folder that holds them: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl. No Docker, no
# release download: a throw-away module requires k8s.io/kubernetes and points each staging module at its published twin.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${QUBESEC_CACHE:-$root/.cache}"
version="${KUBE_VERSION:-v1.36.3}"
staging="v0.${version#v1.}"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
out="$cache/kube-$version"
if [ -f "$out/.qubesec-ready" ]; then echo "$out"; exit 0; fi
PATH="$(bash "$root/scripts/go.sh"):$PATH"
export PATH

work="$cache/kube-build-$version"
mkdir -p "$work"
cd "$work"
export GOFLAGS=-mod=mod
gomod="$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
{
  echo "module qubesec.local/kube"
  echo "go 1.25"
  echo "require k8s.io/kubernetes $version"
  grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" \
    | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
} > go.mod
echo "qubesec: building ${binaries[*]} $version (first time only; about 15 minutes on 2 cores)" >&2
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
# The version the binaries report: the kubelet registers it as the node's, kubectl compares it with the server's.
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/client-go/pkg/version.gitVersion=$version"
go build -trimpath -ldflags="$ldflags" -o "$out.tmp/" "${binaries[@]/#/k8s.io/kubernetes/cmd/}" >&2
touch "$out.tmp/.qubesec-ready"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
