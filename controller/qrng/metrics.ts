// The QRNG's Prometheus metrics, registered on the registry of the process that runs it (the conventions of
// controller/observability/metrics.ts). docs/metrics.md lists each; controller/docs.test.ts checks it does.
import { Counter, Gauge, type Registry } from 'prom-client';

export function createQrngMetrics(registry: Registry) {
  const registers = [registry];
  return {
    sourceHealthy: new Gauge({ name: 'qubesec_qrng_source_healthy', help: '1 while an entropy source passes its health tests and is used, 0 while it starts up or is out', labelNames: ['source', 'quantum'], registers }),
    sourceFailures: new Counter({ name: 'qubesec_qrng_source_failures_total', help: 'Times a source was taken out, by cause: a health test (repetition-count, adaptive-proportion) or a read error (unavailable, timeout, rejected, unauthorized, bad-response)', labelNames: ['source', 'cause'], registers }),
    sourceBytes: new Counter({ name: 'qubesec_qrng_source_bytes_total', help: 'Raw bytes read from a source and passed to its health tests', labelNames: ['source', 'quantum'], registers }),
    poolEntropy: new Gauge({ name: 'qubesec_qrng_pool_entropy_bits', help: 'Conditioned entropy held ready in the pool (bits); emptied when any source fails', registers }),
    refusals: new Counter({ name: 'qubesec_qrng_entropy_refusals_total', help: 'Requests for entropy refused because no healthy quantum source was left (EntropyUnavailable)', registers }),
    reseeds: new Counter({ name: 'qubesec_qrng_drbg_reseeds_total', help: 'DRBG reseeds from the pool, by DRBG and cause (interval, prediction-resistance, requested)', labelNames: ['drbg', 'cause'], registers }),
    servedBytes: new Counter({ name: 'qubesec_qrng_served_bytes_total', help: 'Random bytes the QRNG service answered POST /v1/entropy with, by client (token name or certificate CN)', labelNames: ['client'], registers }),
    requests: new Counter({ name: 'qubesec_qrng_requests_total', help: 'QRNG service requests by path and status code (401 unauthenticated, 413/422 refused request, 429 rate-limited, 503 no healthy quantum source)', labelNames: ['path', 'code'], registers }),
    feedBytes: new Counter({ name: 'qubesec_qrng_feed_bytes_total', help: 'Bytes qubesec qrng feed wrote to its FIFO (read by rngd) or to the random device', registers }),
    feedRngdExits: new Counter({ name: 'qubesec_qrng_feed_rngd_exits_total', help: 'Times the rngd that qubesec qrng feed supervises stopped, by reason (fips-disabled, no-permission, exited); each is restarted after a backoff', labelNames: ['reason'], registers }),
  };
}

export type QrngMetrics = ReturnType<typeof createQrngMetrics>;
