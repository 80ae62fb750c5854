# shellcheck shell=bash
# Sourced by nginx/rootfs.sh and vpn/rootfs.sh: a Debian minbase rootfs of the packages their lists name, built once
# with debootstrap (needs root) from the mirror the host's apt uses, cached in .cache/ under a stamp of the package
# names (and a pin, if any), so that a changed list builds anew.

# rootfs_begin NAME SUITE PIN LIST...: sets rootfs_packages (comma-separated) and rootfs_dir; when that rootfs is
# built already, prints its path and exits; else debootstraps SUITE into "$rootfs_dir.tmp" for the caller to finish.
rootfs_begin() {
  local name="$1" suite="$2" pin="$3" root cache stamp mirror script
  shift 3
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  cache="${QUBESEC_CACHE:-$root/.cache}"
  # The image's packages first, then the test tools: the stamp hashes the joined names, in this order. debootstrap
  # takes names only: a list's `name=version` pins are the caller's to check (vpn/rootfs.sh).
  rootfs_packages="$(cat "$@" | grep -v '^#' | sed 's/=.*//' | xargs | tr ' ' ',')"
  stamp="$(printf '%s%s' "$rootfs_packages" "${pin:+ $pin}" | sha256sum | cut -c1-12)"
  rootfs_dir="$cache/rootfs-$name-$stamp"
  if [ -f "$rootfs_dir/.qubesec-ready" ]; then echo "$rootfs_dir"; exit 0; fi

  [ "$(id -u)" = 0 ] || { echo "qubesec: building the $name rootfs needs root (debootstrap, chroot)" >&2; exit 1; }
  if ! command -v debootstrap >/dev/null; then
    echo "qubesec: installing debootstrap" >&2
    apt-get update -qq >&2 && apt-get install -y -qq debootstrap >&2
  fi
  mirror="$(bash "$root/scripts/debian-mirror.sh")"
  rm -rf "$rootfs_dir.tmp"
  mkdir -p "$cache"
  echo "qubesec: debootstrap $suite ($rootfs_packages) from $mirror into $rootfs_dir" >&2
  # A debootstrap older than the suite has no script for it: Debian's suites since bookworm bootstrap as sid does.
  script="/usr/share/debootstrap/scripts/$suite"
  [ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
  debootstrap --variant=minbase --include="$rootfs_packages" "$suite" "$rootfs_dir.tmp" "$mirror" "$script" >&2
}

# rootfs_finish: marks the tree complete, moves it in place and prints its path.
rootfs_finish() {
  touch "$rootfs_dir.tmp/.qubesec-ready"
  mv "$rootfs_dir.tmp" "$rootfs_dir"
  echo "$rootfs_dir"
}
