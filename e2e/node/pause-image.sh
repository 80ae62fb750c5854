#!/usr/bin/env bash
# Makes the pause image (the sandbox container of every Pod) for machines that cannot pull registry.k8s.io: Kubernetes'
# own build/pause/linux/pause.c from the k8s.io/kubernetes Go module, compiled static as its Makefile does, committed
# from scratch under the name and tag that Makefile publishes. Prints the image name. Kept if already in
# containers-storage. KUBE_VERSION picks the module version, as in e2e/cluster/build-kube.sh. Needs go, gcc, buildah.
set -euo pipefail
version="${KUBE_VERSION:-v1.36.3}"

source_dir="$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^\s*"Dir": "\(.*\)",*$/\1/p')"
[ -d "$source_dir/build/pause" ] || { echo "qubesec: no build/pause in k8s.io/kubernetes@$version" >&2; exit 1; }
tag="$(sed -n 's/^TAG ?= //p' "$source_dir/build/pause/Makefile")"
[ -n "$tag" ] || { echo "qubesec: no TAG in $source_dir/build/pause/Makefile" >&2; exit 1; }
image="registry.k8s.io/pause:$tag"

if buildah inspect --type image "$image" >/dev/null 2>&1; then
  echo "qubesec: $image is in containers-storage" >&2
  echo "$image"
  exit 0
fi

echo "qubesec: making $image from k8s.io/kubernetes@$version build/pause/linux/pause.c" >&2
# shellcheck source=e2e/node/build-scratch.sh
source "$(dirname "${BASH_SOURCE[0]}")/build-scratch.sh"
# The Makefile's CFLAGS; its VERSION is v<tag>-<git describe>, here the module version stands for the git revision.
gcc -Os -Wall -Werror -static "-DVERSION=v$tag-$version" -o "$work/pause" "$source_dir/build/pause/linux/pause.c"
container="$(buildah from scratch)"
buildah copy --quiet "$container" "$work/pause" /pause >/dev/null
# As build/pause/Dockerfile: an unprivileged user, pause as the entrypoint.
buildah config --user 65535:65535 --entrypoint '["/pause"]' "$container"
buildah commit --quiet --format docker --rm "$container" "$image" >/dev/null
container=""
echo "$image"
