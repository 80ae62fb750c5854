#!/usr/bin/env bash
# The one entry point behind the npm scripts and .ci/run: installs what a step needs (pinned Node 24, npm packages,
# the PQ data-plane rootfs, Kubernetes, helm, the images), then runs it. Works on a fresh machine; later runs reuse .cache/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
step="${1:-}"
shift || true

PATH="$(bash scripts/node.sh):$PATH"
export PATH

deps() {
  # Reinstall only when package-lock.json changed since the last install.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
}
# Compiles only when what tsc reads changed since the last build (a hash of those files), so `npm run demo` starts
# without recompiling; a change compiles anew into an empty dist/, which leaves no output of a deleted source behind.
build() {
  deps
  local sources
  sources="$( { find controller e2e templates -type f; echo tsconfig.json; echo package-lock.json; } | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"
  if [ "$(cat dist/.qubesec-sources 2>/dev/null)" = "$sources" ]; then return; fi
  rm -rf dist
  npx tsc -p .
  echo "$sources" > dist/.qubesec-sources
}
rootfs() { QUBESEC_ROOTFS="$(bash nginx/rootfs.sh)"; export QUBESEC_ROOTFS; }
# strongSwan with ML-KEM needs Debian unstable's 6.1 (trixie's 6.0.1 has none): a second rootfs, for the VPN tests.
vpn_rootfs() { QUBESEC_VPN_ROOTFS="$(bash vpn/rootfs.sh)"; export QUBESEC_VPN_ROOTFS; }
kube() { KUBE_BIN="$(bash e2e/cluster/build-kube.sh)"; export KUBE_BIN; }
helm() { HELM="$(bash scripts/build-helm.sh)"; export HELM; }
# NIST ACVP vectors for the DRBG tests (controller/qrng), from their Go module.
acvp() { QUBESEC_ACVP="$(bash scripts/acvp-vectors.sh)"; export QUBESEC_ACVP; }
# Gateway API's standard-channel CRDs, pinned, from their Go module (e2e/gateway-crds.test.ts applies them).
gateway_crds() { QUBESEC_GATEWAY_CRDS="$(bash scripts/gateway-api-crds.sh)"; export QUBESEC_GATEWAY_CRDS; }
# The test node: its host packages (containerd, runc, CNI plugins), and the QubeSec and pause images as archives its
# containerd imports (built with buildah here, no Docker needed).
test_node() {
  bash e2e/node/host-packages.sh
  QUBESEC_NODE_IMAGES="$root/.cache/node-images"
  bash e2e/node/images.sh "$QUBESEC_NODE_IMAGES" >/dev/null
  export QUBESEC_NODE_IMAGES
}
# Gateway API's conformance suite and the images its manifests name, from the Go module proxy (e2e/conformance.test.ts).
conformance() {
  QUBESEC_CONFORMANCE="$root/.cache/gateway-conformance"
  bash e2e/conformance/build.sh "$QUBESEC_CONFORMANCE"
  export QUBESEC_CONFORMANCE
}
jest() { node --experimental-vm-modules --no-warnings node_modules/jest/bin/jest.js --runInBand "$@"; }
lint() {
  npx eslint --max-warnings 0 controller e2e
  PATH="$(bash scripts/lint-tools.sh):$PATH" && hadolint images/Dockerfile
  git ls-files -z '*.sh' .ci/run | xargs -0 shellcheck
}

case "$step" in
  build) build ;;
  lint) build; lint ;;
  demo) build; rootfs; node dist/controller/cli/main.js demo "$@" ;;
  test:unit) build; acvp; QUBESEC_TESTS=unit jest "$@" ;;
  test:e2e) build; rootfs; vpn_rootfs; kube; helm; gateway_crds; test_node; conformance; QUBESEC_TESTS=e2e jest "$@" ;;
  test) build; lint; acvp; rootfs; vpn_rootfs; kube; helm; gateway_crds; test_node; conformance; jest "$@" ;;
  bench) build; rootfs; vpn_rootfs; kube; for b in dist/e2e/bench/*.js; do node --disable-warning=ExperimentalWarning "$b"; done ;;
  *) echo "usage: scripts/run.sh build|lint|demo|test|test:unit|test:e2e|bench [args]" >&2; exit 2 ;;
esac
