// What the e2e tests need from their surroundings: the PQ rootfs, free ports, processes to run inside it.
import { join } from 'node:path';
export { freePort } from '../../controller/net.js';

export function rootfs(): string {
  const root = process.env.QUBESEC_ROOTFS;
  if (!root) throw new Error('QUBESEC_ROOTFS is not set: run the e2e tests through `npm test` (scripts/run.sh builds the rootfs)');
  return root;
}

/** A Kubernetes binary (kube-apiserver, kubelet, kubectl, ...) that e2e/cluster/build-kube.sh built. */
export function kubeBinary(name: string): string {
  const dir = process.env.KUBE_BIN;
  if (!dir) throw new Error('KUBE_BIN is not set: run the e2e tests through `npm test` (scripts/run.sh builds Kubernetes)');
  return join(dir, name);
}

/** The folder of Gateway API's standard-channel CRDs that scripts/gateway-api-crds.sh fetched. */
export function gatewayApiCrds(): string {
  const dir = process.env.QUBESEC_GATEWAY_CRDS;
  if (!dir) throw new Error('QUBESEC_GATEWAY_CRDS is not set: run the e2e tests through `npm test` (scripts/run.sh fetches the CRDs)');
  return dir;
}

/** The value of a series (a name, with its labels if any) in a /metrics text (NaN when absent). */
export function metricValue(text: string, name: string): number {
  // A series with labels holds braces and quotes: matched as text, not as a pattern.
  return Number(text.split('\n').find((line) => line.startsWith(`${name} `))?.split(' ')[1] ?? NaN);
}

/** Polls `check` until it returns a value (not undefined) or throws the last failure after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms${last ? `: ${(last as Error).message ?? String(last)}` : ''}`);
}
