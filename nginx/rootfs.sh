#!/usr/bin/env bash
# Builds (once) a Debian 13 rootfs holding the PQ data plane: NGINX 1.30 from forky (nginx/forky-nginx.sh) on Debian
# 13's OpenSSL 3.5, curl, etcd. Prints the rootfs path. Rebuilt when nginx/packages.txt, nginx/packages-test.txt,
# nginx/apt/preferences or nginx/forky-nginx.sh changes. Needs root (debootstrap, chroot).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/debootstrap-rootfs.sh
. "$root/scripts/debootstrap-rootfs.sh"
forky="forky-nginx $(cat "$root/nginx/apt/preferences" "$root/nginx/forky-nginx.sh" | sha256sum | cut -c1-12)"
rootfs_begin trixie trixie "$forky" "$root/nginx/packages.txt" "$root/nginx/packages-test.txt"
# Then, as the image does, forky's NGINX over trixie's: the same lists, installed again with forky's pins in place.
# The mirror may serve a frozen forky whose Release has expired: apt inside the rootfs must still read it.
echo 'Acquire::Check-Valid-Until "false";' > "$rootfs_dir.tmp/etc/apt/apt.conf.d/99qubesec-frozen-mirror"
install -m 0755 "$root/nginx/forky-nginx.sh" "$rootfs_dir.tmp/tmp/forky-nginx.sh"
cp "$root/nginx/apt/preferences" "$rootfs_dir.tmp/tmp/nginx-preferences"
chroot "$rootfs_dir.tmp" /tmp/forky-nginx.sh sources /tmp/nginx-preferences
chroot "$rootfs_dir.tmp" apt-get update -qq >&2
grep -hv '^#' "$root/nginx/packages.txt" "$root/nginx/packages-test.txt" \
  | xargs chroot "$rootfs_dir.tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends >&2
chroot "$rootfs_dir.tmp" /tmp/forky-nginx.sh check
rm -f "$rootfs_dir.tmp/tmp/forky-nginx.sh" "$rootfs_dir.tmp/tmp/nginx-preferences"
chroot "$rootfs_dir.tmp" apt-get clean
# Keep the distribution's nginx from starting on its own and make room for our runtime files.
rm -f "$rootfs_dir.tmp/etc/nginx/sites-enabled/default"
# sed, not head: head exits after 3 lines, and nginx, still writing, dies of SIGPIPE, which pipefail makes fatal.
chroot "$rootfs_dir.tmp" nginx -V 2>&1 | sed -n 1,3p >&2
rootfs_finish
