#!/usr/bin/env bash
# Installs (once) the Debian packages the e2e tests run on the host: for the node containerd with runc, the CNI
# plugins, iptables and procps (pgrep for teardown); for e2e/container.test.ts setcap and setpriv; for
# e2e/browser.test.ts headless Chromium (Debian 12's security suite ships 156, which offers ML-DSA-65) and NSS's
# certutil (the browser's own trust store). Only what is
# missing; needs root. The Kubernetes binaries come from e2e/cluster/build-kube.sh, the images from e2e/node/images.sh.
set -euo pipefail
declare -A package_of=(
  [containerd]=containerd [ctr]=containerd [runc]=runc [/usr/lib/cni/bridge]=containernetworking-plugins
  [iptables-save]=iptables [ip6tables-save]=iptables [pgrep]=procps [ip]=iproute2
  [setcap]=libcap2-bin [setpriv]=util-linux [chromium]=chromium [certutil]=libnss3-tools
)
missing=()
for tool in "${!package_of[@]}"; do
  if [ "${tool:0:1}" = / ] && [ -x "$tool" ]; then continue; fi
  if [ "${tool:0:1}" != / ] && command -v "$tool" >/dev/null; then continue; fi
  missing+=("${package_of[$tool]}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || { echo "qubesec: the e2e tests need root to install ${missing[*]}" >&2; exit 1; }
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "qubesec: installing ${packages[*]} for the e2e tests" >&2
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2
