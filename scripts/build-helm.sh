#!/usr/bin/env bash
# Builds (once) the helm binary from its Go module and prints its path; the chart tests run the real helm. Same
# pattern as e2e/cluster/build-kube.sh: keyed by version in .cache/, no release download.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${QUBESEC_CACHE:-$root/.cache}"
version="${HELM_VERSION:-v3.22.0}"
out="$cache/helm-$version"
if [ -x "$out" ]; then echo "$out"; exit 0; fi
PATH="$(bash "$root/scripts/go.sh"):$PATH"
export PATH

echo "qubesec: building helm $version (first time only; a few minutes)" >&2
mkdir -p "$cache"
# The flags helm's Makefile sets: without them helm reports no version and assumes Kubernetes 1.20 for
# `helm template` and `helm lint`. The Kubernetes minor is that of the client-go helm is built with.
gomod="$(go mod download -json "helm.sh/helm/v3@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
k8s_minor="$(sed -n 's/^\s*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags="$ldflags -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
done
GOBIN="$cache/helm-build-$version" go install -trimpath -ldflags="$ldflags" "helm.sh/helm/v3/cmd/helm@$version" >&2
mv "$cache/helm-build-$version/helm" "$out"
rm -rf "$cache/helm-build-$version"
echo "$out"
