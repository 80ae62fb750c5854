#!/usr/bin/env bash
# Builds what Gateway API's conformance suite needs here, from the Go module proxy (no registry is reachable): the
# suite's test binary (sigs.k8s.io/gateway-api/conformance, pinned in go.mod beside this script) and the images its
# manifests name, as docker-archive tars the e2e node's containerd imports:
#   - registry.k8s.io/gateway-api/echo-basic under the tags the suite's manifests use, all built from the echo-basic
#     source of the pinned suite (static, from scratch, as its docker/Dockerfile.echo-basic builds it);
#   - registry.k8s.io/coredns/coredns at the tag the base manifests name, from that CoreDNS module version.
# Usage: e2e/conformance/build.sh OUTDIR. Writes OUTDIR/conformance.test and OUTDIR/images/*.tar; keeps what it built
# for the same pins. Needs root, buildah and skopeo (e2e/node/images.sh installs them); Go from scripts/go.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PATH="$(bash "$here/../../scripts/go.sh"):$PATH"
out="${1:?usage: e2e/conformance/build.sh OUTDIR}"
fail() { echo "qubesec: e2e/conformance/build.sh: $*" >&2; exit 1; }

suite_version="$(cd "$here" && go list -m -f '{{.Version}}' sigs.k8s.io/gateway-api/conformance)"
[ -n "$suite_version" ] || fail "no sigs.k8s.io/gateway-api/conformance version in $here/go.mod"
# go mod download fetches the module (go list -m leaves Dir empty on a machine that has not).
suite_dir="$(cd "$here" && go mod download -json sigs.k8s.io/gateway-api/conformance | sed -n 's/^\s*"Dir": "\(.*\)",*$/\1/p')"
# Every image tag the suite's manifests name.
mapfile -t echo_tags < <(grep -rhoE 'registry.k8s.io/gateway-api/echo-basic:[^ "]+' "$suite_dir/base" "$suite_dir/tests" | sort -u)
coredns_image="$(grep -rhoE 'registry.k8s.io/coredns/coredns:[^ "]+' "$suite_dir/base" | sort -u | head -1)"
if [ "${#echo_tags[@]}" -eq 0 ] || [ -z "$coredns_image" ]; then fail "cannot read the image names from $suite_dir"; fi

stamp="$out/.built-$suite_version"
if [ -f "$stamp" ]; then echo "qubesec: conformance suite $suite_version already built in $out" >&2; exit 0; fi
rm -rf "$out"
mkdir -p "$out/images" "$out/bin"
out="$(cd "$out" && pwd)"

echo "qubesec: building the conformance suite $suite_version and echo-basic" >&2
(cd "$here" && CGO_ENABLED=0 go test -c -o "$out/conformance.test" sigs.k8s.io/gateway-api/conformance) || fail "building the suite failed"
(cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out/bin/echo-basic" sigs.k8s.io/gateway-api/conformance/echo-basic) || fail "building echo-basic failed"
coredns_version="${coredns_image##*:}"
echo "qubesec: building CoreDNS $coredns_version" >&2
GOBIN="$out/bin" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath -ldflags='-s -w' "github.com/coredns/coredns@$coredns_version" || fail "building CoreDNS failed"

# shellcheck source=e2e/node/build-scratch.sh
source "$(dirname "${BASH_SOURCE[0]}")/../node/build-scratch.sh"
# One static binary from scratch as the entrypoint, committed under the first name, tagged with the others; a tar for each.
commit_image() {
  local binary="$1" user="$2"; shift 2
  container="$(buildah from scratch)"
  buildah copy --quiet "$container" "$out/bin/$binary" "/$binary" >/dev/null
  buildah config --user "$user" --entrypoint "[\"/$binary\"]" "$container"
  buildah commit --quiet --format docker --rm "$container" "$1" >/dev/null
  container=""
  local name
  for name in "$@"; do
    buildah tag "$1" "$name"
    local tar
    tar="$out/images/$(echo "${name#registry.k8s.io/}" | tr '/:' '--').tar"
    skopeo copy --quiet "containers-storage:$name" "docker-archive:$tar:$name" || fail "exporting $name failed"
  done
}
# distroless/static:nonroot's user, as upstream's image runs.
commit_image echo-basic 65532:65532 "${echo_tags[@]}"
# CoreDNS binds port 53 with the NET_BIND_SERVICE capability the manifest adds.
commit_image coredns 0:0 "$coredns_image"
touch "$stamp"
echo "qubesec: conformance suite and images in $out" >&2
