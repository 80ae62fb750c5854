#!/usr/bin/env bash
# QubeSec on a local kind cluster, end to end: create the cluster, build and load the image, install the chart, serve a
# demo app through an Ingress with an ML-DSA and an ECDSA certificate, and check it with a PQ client and a legacy one.
# Needs docker (with a running engine), kind, helm and kubectl. Re-running reuses the cluster; QUBESEC_KIND_DELETE=1
# deletes it at the end. Usage: [WITH_OQS=true] e2e/kind/run.sh [extra images/build.sh args, e.g. --build-arg OQS_PROVIDER_SHA256=...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cluster="${QUBESEC_KIND_CLUSTER:-qubesec}"
image="qubesec:kind"
namespace="qubesec"
host="demo.qubesec.test"
context="kind-$cluster"

missing=()
for tool in docker kind helm kubectl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "e2e/kind/run.sh needs docker, kind, helm and kubectl; missing: ${missing[*]}" >&2
  exit 1
fi
docker info >/dev/null 2>&1 || { echo "e2e/kind/run.sh: docker cannot reach an engine (docker info failed)" >&2; exit 1; }

step() { printf '\n== %s\n' "$*" >&2; }
k() { kubectl --context "$context" "$@"; }

step "cluster $cluster"
if ! kind get clusters | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --config "$root/e2e/kind/kind-config.yaml" --wait 120s
fi
certs="$(mktemp -d)"
cleanup() {
  rm -rf "$certs"
  if [ "${QUBESEC_KIND_DELETE:-0}" = 1 ]; then kind delete cluster --name "$cluster"; fi
}
trap cleanup EXIT

step "image $image"
"$root/images/build.sh" "$image" "$@"
kind load docker-image "$image" --name "$cluster"

step "chart charts/qubesec"
# NodePort 30080/30443: kind-config.yaml publishes them on the host's 80/443.
helm upgrade --install qubesec "$root/charts/qubesec" --kube-context "$context" \
  --namespace "$namespace" --create-namespace \
  --set controller.image.repository=qubesec \
  --set controller.image.tag=kind \
  --set controller.image.pullPolicy=Never \
  --set controller.service.type=NodePort \
  --set controller.service.nodePorts.http=30080 \
  --set controller.service.nodePorts.https=30443 \
  --wait --timeout 5m

step "demo app and Ingress for $host"
# The image's OpenSSL 3.5 makes both certificates; the host's openssl may be too old for ML-DSA.
for kind_of_key in mldsa65 ec; do
  key_args=(-newkey "$kind_of_key")
  [ "$kind_of_key" = ec ] && key_args=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
  docker run --rm --user "$(id -u):$(id -g)" -v "$certs:/certs" --entrypoint openssl "$image" \
    req -x509 "${key_args[@]}" -nodes -days 30 -subj "/CN=$host" -addext "subjectAltName=DNS:$host" \
    -keyout "/certs/$kind_of_key.key" -out "/certs/$kind_of_key.crt" 2>/dev/null
  k create secret tls "demo-$kind_of_key" --cert "$certs/$kind_of_key.crt" --key "$certs/$kind_of_key.key" \
    --dry-run=client -o yaml | k apply -f -
done
k apply -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: { name: demo }
spec:
  selector: { matchLabels: { app: demo } }
  template:
    metadata: { labels: { app: demo } }
    spec:
      containers:
        - name: demo
          # The QubeSec image has Node.js: a tiny HTTP server, so the demo pulls no other image.
          image: $image
          imagePullPolicy: Never
          command: [node, -e, "require('http').createServer((q, s) => s.end('hello from the demo app\\\\n')).listen(8080)"]
          ports: [{ containerPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: demo }
spec:
  selector: { app: demo }
  ports: [{ port: 80, targetPort: 8080 }]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: demo }
spec:
  ingressClassName: qubesec
  tls:
    - { hosts: [$host], secretName: demo-mldsa65 }
    - { hosts: [$host], secretName: demo-ec }
  rules:
    - host: $host
      http:
        paths:
          - { path: /, pathType: Prefix, backend: { service: { name: demo, port: { number: 80 } } } }
YAML
k rollout status deployment/demo --timeout 120s

# Clients run from the image (curl and OpenSSL 3.5) on kind's Docker network, straight to the node's NodePort.
node="$cluster-control-plane"
client() { docker run --rm --network kind --entrypoint "$1" "$image" "${@:2}"; }

step "PQ client: curl --curves X25519MLKEM768"
pq=""
for _ in $(seq 1 30); do
  if pq="$(client curl -sS -v -k --curves X25519MLKEM768 --connect-to "$host:443:$node:30443" "https://$host/" 2>&1)" \
    && grep -q 'hello from the demo app' <<<"$pq"; then break; fi
  sleep 2
done
grep -m1 'SSL connection using' <<<"$pq" >&2 || true
grep -q 'SSL connection using TLSv1.3 / .* / X25519MLKEM768 / id-ml-dsa-65' <<<"$pq" \
  || { echo "FAIL: no X25519MLKEM768 + ML-DSA-65 handshake with $host:"; echo "$pq"; exit 1; } >&2

step "legacy client: X25519 and ECDSA signatures only"
legacy="$(client openssl s_client -brief -connect "$node:30443" -servername "$host" -groups X25519 \
  -sigalgs ECDSA+SHA256 </dev/null 2>&1 || true)"
grep -E 'Peer Temp Key|Signature type' <<<"$legacy" >&2 || true
if ! grep -q 'Peer Temp Key: X25519' <<<"$legacy" || ! grep -q 'Signature type: ecdsa_secp256r1_sha256' <<<"$legacy"; then
  { echo "FAIL: the legacy client did not get X25519 and the ECDSA certificate:"; echo "$legacy"; } >&2
  exit 1
fi

step "passed: $host serves X25519MLKEM768 + ML-DSA-65 to PQ clients and X25519 + ECDSA to legacy ones"
echo "From this machine: curl --curves X25519MLKEM768 -k --resolve $host:443:127.0.0.1 https://$host/ (curl on OpenSSL >= 3.5)" >&2
