#!/usr/bin/env bash
# Builds (once) a Debian 13 rootfs holding the PQ data plane: NGINX on OpenSSL >= 3.5, curl, etcd.
# Prints the rootfs path. Rebuilt only when nginx/packages.txt or nginx/packages-test.txt changes. Needs root (debootstrap, chroot).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/debootstrap-rootfs.sh
. "$root/scripts/debootstrap-rootfs.sh"
rootfs_begin trixie trixie "" "$root/nginx/packages.txt" "$root/nginx/packages-test.txt"
# Keep the distribution's nginx from starting on its own and make room for our runtime files.
rm -f "$rootfs_dir.tmp/etc/nginx/sites-enabled/default"
chroot "$rootfs_dir.tmp" openssl version >&2
chroot "$rootfs_dir.tmp" nginx -v >&2
rootfs_finish
