#!/usr/bin/env bash
# Fetches (once) NIST ACVP test vectors for the DRBGs and ML-DSA/ML-KEM key generation (the PKI's seeded keys) and prints the folder they are in. They come from the Go module
# github.com/geomys/acvp-testdata (the one Go's own FIPS 140 tests use), through `go mod download` into Go's module
# cache (checked against the Go checksum database), and are decompressed into .cache/acvp-<version>/ as
# vectors/<name>.json (the ACVP prompts) and expected/<name>.json (NIST's answers).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${QUBESEC_CACHE:-$root/.cache}"
module="github.com/geomys/acvp-testdata"
version="v0.0.0-20251201200548-d893de8b8b1c"
names=(hmacDRBG ctrDRBG ML-DSA ML-KEM)
out="$cache/acvp-$version"
# .complete lists the sets unpacked: a longer list unpacks again.
if [ "$(cat "$out/.complete" 2>/dev/null)" = "${names[*]}" ]; then echo "$out"; exit 0; fi
PATH="$(bash "$root/scripts/go.sh"):$PATH"
command -v bzip2 >/dev/null || { echo "qubesec: installing bzip2 to unpack the ACVP vectors" >&2; apt-get update -qq >&2 && apt-get install -y -qq bzip2 >&2; }

dir="$(go mod download -json "$module@$version" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')"
[ -d "$dir" ] || { echo "qubesec: go mod download gave no folder for $module@$version" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out/vectors" "$out/expected"
for name in "${names[@]}"; do
  for kind in vectors expected; do
    bzip2 -dc "$dir/$kind/$name.bz2" > "$out/$kind/$name.json"
  done
done
echo "${names[*]}" > "$out/.complete"
echo "$out"
