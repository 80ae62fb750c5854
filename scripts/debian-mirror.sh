#!/usr/bin/env bash
# Prints the Debian mirror for debootstrap: QUBESEC_DEBIAN_MIRROR, else the one the host's apt sources already name
# (the host trusts it), so no script names a mirror host.
set -euo pipefail
mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
  | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)"
mirror="${QUBESEC_DEBIAN_MIRROR:-$mirror}"
[ -n "$mirror" ] || { echo "qubesec: no Debian mirror found in /etc/apt sources; set QUBESEC_DEBIAN_MIRROR" >&2; exit 1; }
echo "$mirror"
