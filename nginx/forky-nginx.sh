#!/usr/bin/env bash
# Run as root inside the Debian 13 system being made (the image's runtime stage, the dev rootfs in its chroot):
#   forky-nginx.sh sources PREFERENCES  adds Debian forky, from the system's own Debian mirror, at the low priority of
#                                       nginx/apt/preferences, which lifts only NGINX and its modules;
#   forky-nginx.sh check                after the install: refuses an NGINX other than the pinned one or an OpenSSL other
#                                       than Debian 13's 3.5 (a forky that moved on would otherwise leave 1.26 in place).
set -euo pipefail
# The NGINX the data plane was measured and tested with (e2e/bench/nginx-choice.ts), and the OpenSSL series under it.
NGINX_PIN="1.30.6-2"
OPENSSL_SERIES="3.5."
case "${1:-}" in
  sources)
    # The first Debian archive the system's sources name (debootstrap's sources.list, or the image's debian.sources).
    mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)"
    [ -n "$mirror" ] || { echo "qubesec: no Debian mirror in this system's apt sources" >&2; exit 1; }
    printf 'Types: deb\nURIs: %s\nSuites: forky\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" \
      > /etc/apt/sources.list.d/qubesec-forky.sources
    install -m 0644 "$2" /etc/apt/preferences.d/qubesec-nginx
    ;;
  check)
    # shellcheck disable=SC2016 # ${Version} is dpkg-query's field, not the shell's
    nginx="$(dpkg-query -W -f '${Version}' nginx)"
    [ "$nginx" = "$NGINX_PIN" ] || { echo "qubesec: installed nginx $nginx, nginx/forky-nginx.sh pins $NGINX_PIN: measure it (e2e/bench/nginx-choice.ts), test it and update the pin" >&2; exit 1; }
    openssl="$(openssl version | cut -d' ' -f2)"
    case "$openssl" in "$OPENSSL_SERIES"*) ;; *) echo "qubesec: OpenSSL $openssl under NGINX, not Debian 13's $OPENSSL_SERIES" >&2; exit 1 ;; esac
    echo "qubesec: nginx $nginx on OpenSSL $openssl" >&2
    ;;
  *)
    echo "usage: forky-nginx.sh sources PREFERENCES | check" >&2; exit 2
    ;;
esac
