#!/usr/bin/env bash
# The images the e2e node runs, built daemonless here and written as docker-archive tars for
# `ctr -n k8s.io images import`: the QubeSec image and the VPN image (images/build.sh with buildah, on local bases
# where the registry cannot be reached) and the pause image. Prints the tar paths, one a line; progress goes to stderr.
# Usage: e2e/node/images.sh OUTDIR. Needs root; installs buildah, skopeo, debootstrap and gcc if missing.
# QUBESEC_VPN_ROOTFS (optional) lends the sid base image the packages vpn/rootfs.sh downloaded (e2e/node/base-images.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:?usage: e2e/node/images.sh OUTDIR}"
qubesec_image="qubesec.local/qubesec-controller:e2e"
vpn_image="qubesec.local/qubesec-vpn:e2e"

fail() { echo "qubesec: e2e/node/images.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, containers-storage)"
command -v go >/dev/null || fail "needs Go for the pause image's source (https://go.dev)"
missing=()
for tool in buildah skopeo debootstrap gcc; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "qubesec: installing ${missing[*]}" >&2
  # libc6-dev: gcc -static links its libc.a.
  apt-get update -qq >&2 && apt-get install -y -qq buildah skopeo debootstrap gcc libc6-dev >&2
fi

bash "$here/base-images.sh" || fail "making the base images failed"
# The host network: no CNI bridge or firewall rules on a machine whose iptables the node harness saves and restores.
# --force-rm: a failed build leaves no working container behind in containers-storage.
build() { QUBESEC_IMAGE_BUILDER=buildah bash "$root/images/build.sh" "$@" --network host --force-rm >&2; }
build "$qubesec_image" || fail "building $qubesec_image failed"
# The same Dockerfile's vpn target: its build and app stages come from the layer cache the controller image just filled.
build "$vpn_image" --target vpn || fail "building $vpn_image failed"
pause_image="$(bash "$here/pause-image.sh")" || fail "making the pause image failed"

mkdir -p "$out"
export_tar() {
  local image="$1" tar="$out/$2.tar"
  # skopeo refuses to write into an existing docker-archive.
  rm -f "$tar"
  skopeo copy --quiet "containers-storage:$image" "docker-archive:$tar:$image" >&2 || fail "exporting $image failed"
  echo "$tar"
}
export_tar "$qubesec_image" qubesec-controller
export_tar "$vpn_image" qubesec-vpn
export_tar "$pause_image" pause
