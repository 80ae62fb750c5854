#!/usr/bin/env bash
# Builds (once) a Debian 13 rootfs holding the PQ data plane: NGINX on OpenSSL >= 3.5, curl, etcd.
# Prints the rootfs path. Rebuilt only when nginx/packages.txt or nginx/packages-test.txt changes. Needs root (debootstrap, chroot).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${QUBESEC_CACHE:-$root/.cache}"
# The image's packages first, then the test tools: the cache stamp hashes the joined names, in this order.
packages="$(cat "$root/nginx/packages.txt" "$root/nginx/packages-test.txt" | grep -v '^#' | xargs | tr ' ' ',')"
stamp="$(printf '%s' "$packages" | sha256sum | cut -c1-12)"
dir="$cache/rootfs-trixie-$stamp"
if [ -f "$dir/.qubesec-ready" ]; then echo "$dir"; exit 0; fi

[ "$(id -u)" = 0 ] || { echo "qubesec: building the data-plane rootfs needs root (debootstrap, chroot)" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
  echo "qubesec: installing debootstrap" >&2
  apt-get update -qq >&2 && apt-get install -y -qq debootstrap >&2
fi
mirror="$(bash "$root/scripts/debian-mirror.sh")"

rm -rf "$dir.tmp"
mkdir -p "$cache"
echo "qubesec: debootstrap trixie ($packages) from $mirror into $dir" >&2
debootstrap --variant=minbase --include="$packages" trixie "$dir.tmp" "$mirror" >&2
# Keep the distribution's nginx from starting on its own and make room for our runtime files.
rm -f "$dir.tmp/etc/nginx/sites-enabled/default"
chroot "$dir.tmp" openssl version >&2
chroot "$dir.tmp" nginx -v >&2
touch "$dir.tmp/.qubesec-ready"
mv "$dir.tmp" "$dir"
echo "$dir"
