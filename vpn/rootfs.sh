#!/usr/bin/env bash
# Builds (once) a Debian unstable ("sid") rootfs holding the VPN data plane: strongSwan (charon, swanctl) with ML-KEM
# through OpenSSL. Prints the rootfs path. Rebuilt only when vpn/packages.txt or vpn/packages-test.txt changes.
# Needs root (debootstrap, chroot). Refuses a strongSwan other than the one vpn/packages.txt pins, older than 6.0.2,
# or one that does not list ML_KEM_768.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The strongSwan the VPN was tested with (Debian's version), from the list the VPN image installs too. debootstrap
# installs what the suite holds, so the pins are checked after the build: a different version stops here, to be tried
# (ML-KEM, e2e/vpn.test.ts) and pinned anew.
pins="$(grep -v '^#' "$root/vpn/packages.txt" | grep '=' || true)"
STRONGSWAN_PIN="$(sed -n 's/^strongswan-charon=//p' <<<"$pins")"
[ -n "$STRONGSWAN_PIN" ] || { echo "qubesec: vpn/packages.txt pins no strongswan-charon=VERSION" >&2; exit 1; }
# One strongSwan version for all its packages (one source package): the rootfs's cache stamp holds that version.
if grep -v "=$STRONGSWAN_PIN\$" <<<"$pins" >&2; then
  echo "qubesec: vpn/packages.txt pins the packages above to another version than strongswan-charon=$STRONGSWAN_PIN" >&2; exit 1
fi
# shellcheck source=scripts/debootstrap-rootfs.sh
. "$root/scripts/debootstrap-rootfs.sh"
rootfs_begin sid-vpn sid "$STRONGSWAN_PIN" "$root/vpn/packages.txt" "$root/vpn/packages-test.txt"
dir="$rootfs_dir"
# The mirror may serve a frozen sid whose Release has expired: apt inside the rootfs must still read it.
echo 'Acquire::Check-Valid-Until "false";' > "$dir.tmp/etc/apt/apt.conf.d/99qubesec-frozen-mirror"
# The distribution's configuration would load every connection it ships; QubeSec and the tests bring their own.
rm -f "$dir.tmp"/etc/swanctl/conf.d/*.conf

# shellcheck disable=SC2016 # ${Version} is dpkg-query's field, not the shell's
version="$(chroot "$dir.tmp" dpkg-query -W -f '${Version}' strongswan-charon)"
echo "qubesec: strongSwan $version, $(chroot "$dir.tmp" openssl version)" >&2
if ! chroot "$dir.tmp" dpkg --compare-versions "$version" ge 6.0.2; then
  echo "qubesec: strongSwan $version is older than 6.0.2 (no ML-KEM); the VPN needs a newer sid" >&2; exit 1
fi
while IFS='=' read -r package pin; do
  # shellcheck disable=SC2016 # ${Version} is dpkg-query's field, not the shell's
  installed="$(chroot "$dir.tmp" dpkg-query -W -f '${Version}' "$package")"
  if [ "$installed" != "$pin" ]; then
    echo "qubesec: the mirror's sid has $package $installed, vpn/packages.txt pins $pin: try it and update the pins" >&2; exit 1
  fi
done <<<"$pins"
# swanctl --list-algs asks a running charon: start one in the rootfs, ask, stop it.
mount -t tmpfs tmpfs "$dir.tmp/run"
# shellcheck disable=SC2016 # the script runs in the chroot's shell
algorithms="$(chroot "$dir.tmp" /bin/sh -c '/usr/lib/ipsec/charon >/dev/null 2>&1 & pid=$!
  for _ in $(seq 50); do [ -S /run/charon.vici ] && break; sleep 0.1; done
  swanctl --list-algs; kill $pid; wait $pid' || true)"
umount "$dir.tmp/run"
if ! grep -q ML_KEM_768 <<<"$algorithms"; then
  echo "qubesec: strongSwan $version in $dir.tmp lists no ML_KEM_768:" >&2; echo "$algorithms" >&2; exit 1
fi
echo "$version" > "$dir.tmp/.qubesec-strongswan-version"
rootfs_finish
