#!/usr/bin/env bash
# The NGINX candidates e2e/bench/nginx-choice.ts compares, each a rootfs built once (scripts/debootstrap-rootfs.sh,
# cached in .cache/): prints one "label<TAB>rootfs" line each. Needs root (debootstrap, chroot).
#   - Debian 13 (trixie) as it was before the choice: NGINX 1.26 on OpenSSL 3.5;
#   - Debian forky: NGINX 1.30 on OpenSSL 3.6 (rng-tools5 is not in forky: the list leaves it out);
#   - the dev rootfs (nginx/rootfs.sh): Debian 13 with forky's NGINX 1.30 on Debian 13's OpenSSL 3.5.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
nginx_packages=(nginx-light libnginx-mod-http-lua libnginx-mod-stream openssl ca-certificates nghttp2-client)
# Each in a subshell: rootfs_begin exits when the rootfs is there already.
build() {
  local name="$1" suite="$2"
  (
    # shellcheck source=scripts/debootstrap-rootfs.sh
    . "$repo/scripts/debootstrap-rootfs.sh"
    rootfs_begin "$name" "$suite" "" <(printf '%s\n' "${nginx_packages[@]}")
    rm -f "$rootfs_dir.tmp/etc/nginx/sites-enabled/default"
    rootfs_finish
  ) | tail -n1
}
printf 'Debian 13 NGINX 1.26\t%s\n' "$(build nginx-candidate-trixie trixie)"
printf 'forky NGINX 1.30, OpenSSL 3.6\t%s\n' "$(build nginx-candidate-forky forky)"
printf 'Debian 13 + forky NGINX 1.30\t%s\n' "$(bash "$repo/nginx/rootfs.sh")"
