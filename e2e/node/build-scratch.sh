# shellcheck shell=bash
# Sourced by the scripts that make images with buildah: a scratch folder ($work) and the working container being
# built ($container, empty when none), both removed when the script exits, also on failure.
work="$(mktemp -d)"
container=""
remove_scratch() {
  if [ -n "$container" ]; then buildah rm "$container" >/dev/null || true; fi
  rm -rf "$work"
}
trap remove_scratch EXIT
