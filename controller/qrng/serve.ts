// `qubesec qrng serve`: the configured sources behind the health-tested pool, a DRBG reseeded from it before every
// request, the QRNG Open API over hybrid-PQ TLS, and /metrics. Everything is checked before anything listens.
import type { Server } from 'node:http';
import { Registry } from 'prom-client';
import { stopHttpsServer } from '../admission/server.js';
import { flagFile, type FlagValues } from '../config.js';
import { createLogger } from '../observability/log.js';
import { serveObservability } from '../observability/server.js';
import type { Diagnostic } from '../model/types.js';
import { KubernetesEventRecorder, loadKubeConfig } from '../sources/kubernetes.js';
import { createSources, parseQrngConfig } from './config.js';
import { Drbg } from './drbg.js';
import type { QRNG_SERVE_FLAGS } from './flags.js';
import { createQrngMetrics } from './metrics.js';
import { EntropyPool, type SourceHealthChange } from './pool.js';
import { generate, serveQrng, TokenList } from './service.js';

export type QrngServeFlags = FlagValues<typeof QRNG_SERVE_FLAGS>;

export interface RunningQrngService {
  /** The TLS port (the one asked for, or the one picked for 0). */
  port: number;
  metricsPort: number;
  stop(): Promise<void>;
}

export async function startQrngService(flags: QrngServeFlags): Promise<RunningQrngService> {
  const log = createLogger(flags['log-level'], { component: 'qrng-serve' });
  const config = parseQrngConfig(await flagFile('config', flags.config), flags.config ?? '');
  if (flags['tls-certificate'].length === 0) throw new Error('flag --tls-certificate is required');
  if (flags['tls-certificate'].length !== flags['tls-key'].length) throw new Error(`flag --tls-key: ${flags['tls-key'].length} key file(s) for ${flags['tls-certificate'].length} certificate file(s)`);
  if (!flags.tokens && !flags['client-ca']) throw new Error('flag --tokens or --client-ca is required: the service serves no anonymous client');
  const keyPairs = await Promise.all(flags['tls-certificate'].map(async (cert, i) => ({ certificatePem: await flagFile('tls-certificate', cert), keyPem: await flagFile('tls-key', flags['tls-key'][i]) })));
  const tokens = flags.tokens ? TokenList.parse(await flagFile('tokens', flags.tokens), flags.tokens) : undefined;
  const clientCaPem = flags['client-ca'] ? await flagFile('client-ca', flags['client-ca']) : undefined;
  if (flags['max-request-bytes'] > flags['rate-burst']) throw new Error(`flag --rate-burst: ${flags['rate-burst']} is below --max-request-bytes ${flags['max-request-bytes']}, so the largest request could never be served`);

  const registry = new Registry();
  const metrics = createQrngMetrics(registry);
  const pod = flags['event-pod'];
  const recorder = pod && new KubernetesEventRecorder(loadKubeConfig(flags.kubeconfig), 'qubesec-qrng', pod.name, log);
  const onHealthChange = recorder ? (change: SourceHealthChange) => void recorder.record(sourceHealthEvent(pod, change)) : undefined;
  const pool = new EntropyPool({ sources: createSources(config), allowNonQuantum: config.creditNonQuantum, retry: config.retry, metrics, log, ...(onHealthChange ? { onHealthChange } : {}) });
  if (config.creditNonQuantum) log.warn('non-quantum sources are credited (creditNonQuantum: true): output may not come from a quantum source');
  // The DRBG is instantiated lazily, at the first request the pool can serve: a service started while its sources
  // are down serves 503 until they are healthy, instead of failing to start.
  let drbg: Promise<Drbg> | undefined;
  const instance = (): Promise<Drbg> => {
    drbg ??= Drbg.instantiate(flags.drbg, pool, { predictionResistance: true, metrics }).catch((err: unknown) => {
      drbg = undefined;
      throw err;
    });
    return drbg;
  };
  let api: Awaited<ReturnType<typeof serveQrng>> | undefined;
  let observability: Server | undefined;
  try {
    api = await serveQrng(
      {
        host: flags.listen.host,
        port: flags.listen.port,
        keyPairs,
        ...(tokens ? { tokens } : {}),
        ...(clientCaPem ? { clientCaPem } : {}),
        limits: { maxBlockSize: flags['max-block-size'], maxBlockCount: flags['max-block-count'], maxRequestBytes: flags['max-request-bytes'] },
        rateLimit: { bytesPerSecond: flags['rate-limit'], burstBytes: flags['rate-burst'] },
      },
      async (bytes) => generate(await instance(), bytes),
      pool,
      metrics,
      log,
    );
    observability = await serveObservability({ registry }, flags['metrics-address'], flags['metrics-port'], () => pool.serving);
  } catch (err) {
    if (api) await stopHttpsServer(api);
    await pool.close();
    throw err;
  }
  const port = (api.address() as { port: number }).port;
  const metricsPort = (observability.address() as { port: number }).port;
  log.info('QRNG service listening', { port, metricsPort, sources: config.sources.map((s) => s.name), drbg: flags.drbg });
  return {
    port,
    metricsPort,
    stop: async () => {
      await stopHttpsServer(api);
      await new Promise((resolve) => observability.close(resolve));
      observability.closeAllConnections();
      await pool.close();
    },
  };
}

/** The Event on the service's Pod for a source taken out or back. */
export function sourceHealthEvent(pod: { namespace: string; name: string }, change: SourceHealthChange): Diagnostic {
  const source = `entropy source "${change.source}" (${change.quantum ? 'quantum' : 'non-quantum'})`;
  return {
    object: { kind: 'Pod', namespace: pod.namespace, name: pod.name },
    ...(change.healthy
      ? { type: 'Normal', reason: 'EntropySourceHealthy', message: `${source} passed its start-up health tests and is used again` }
      : { type: 'Warning', reason: 'EntropySourceOut', message: `${source} taken out (${change.cause}): ${change.message}; retried with backoff, and without a healthy quantum source the service answers 503` }),
  };
}
