// The HTTPS endpoint of the API server's audit webhook backend: it POSTs audit.k8s.io/v1 EventList batches, with the
// bearer token of its --audit-webhook-config-file kubeconfig. A batch gets 200 only once the store has it on disk;
// when the store is full or the writer behind it answers 503 or 429 with Retry-After, which the API server retries
// (--audit-webhook-initial-backoff, five tries); a batch it would not retry (malformed, too large) is counted dropped.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { plain, tlsOptions, type WebhookOptions } from '../../admission/server.js';
import type { Logger } from '../../observability/log.js';
import type { AuditMetrics } from '../../observability/metrics.js';
import { StoreFullError, type AuditStore } from './store.js';

export const AUDIT_PATH = '/audit/v1/events';

/**
 * The API server batches at most --audit-webhook-batch-max-size events (400); with the RequestResponse level each may
 * hold an object of up to 3 MiB, so clusters that log bodies set --audit-webhook-truncate-enabled (10 MB batches).
 */
export const MAX_BATCH_BYTES = 64 * 1024 * 1024;

export interface ReceiverOptions extends WebhookOptions {
  /** Bearer tokens accepted (several while one is being rotated). */
  tokens: string[];
  /** Batches being received or waiting for the writer beyond which new ones get 429. */
  maxPendingBatches: number;
}

/** The events of an EventList body, each serialised again as JSON (and the first's auditID, for logs), or why the body is not one. */
export function eventsOfBatch(body: string): { events: string[]; firstAuditID: unknown } | { error: string } {
  let list: unknown;
  try {
    list = JSON.parse(body);
  } catch (err) {
    return { error: `the body is not JSON: ${(err as Error).message}` };
  }
  const { apiVersion, kind, items } = (list ?? {}) as { apiVersion?: unknown; kind?: unknown; items?: unknown };
  if (apiVersion !== 'audit.k8s.io/v1' || kind !== 'EventList') return { error: `apiVersion/kind ${String(apiVersion)}/${String(kind)}: only audit.k8s.io/v1 EventList is accepted` };
  if (!Array.isArray(items)) return { error: 'items: not a list' };
  const bad = items.findIndex((item) => item === null || typeof item !== 'object' || Array.isArray(item));
  if (bad >= 0) return { error: `items[${bad}]: not an Event object` };
  return { events: items.map((item) => JSON.stringify(item)), firstAuditID: (items[0] as { auditID?: unknown } | undefined)?.auditID };
}

const digest = (token: string) => createHash('sha256').update(token).digest();

export async function serveAuditReceiver(options: ReceiverOptions, store: AuditStore, metrics: AuditMetrics, log: Logger): Promise<Server> {
  const tokens = options.tokens.map(digest);
  let pending = 0;
  const authorized = (header: string | undefined) => {
    const token = /^Bearer (\S+)$/.exec(header ?? '')?.[1];
    // Compared as digests, so the time taken says nothing about a token's length or its first bytes.
    return token !== undefined && tokens.some((t) => timingSafeEqual(t, digest(token)));
  };
  const server = createServer(
    { ...tlsOptions(options.keyPairs), handshakeTimeout: 10_000, headersTimeout: 10_000, requestTimeout: 120_000, keepAliveTimeout: 120_000 },
    (req, res) => handle(req, res),
  );

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== AUDIT_PATH) return plain(res, 404, `no such path: POST EventLists to ${AUDIT_PATH}`);
    if (req.method !== 'POST') return plain(res, 405, `${req.method ?? ''} ${path}: only POST is served`, { Allow: 'POST' });
    if (!authorized(req.headers.authorization)) {
      log.warn('audit batch refused: no valid bearer token', { remote: req.socket.remoteAddress });
      return plain(res, 401, 'a bearer token of --token-file is required');
    }
    // Counted from the headers to the answer, so the bodies held in memory are bounded too (64 MiB each at most).
    if (pending >= options.maxPendingBatches) {
      metrics.refusedBatches.inc({ reason: 'busy' });
      log.warn('audit batch refused: the writer is behind (the API server retries)', { pending });
      return plain(res, 429, `${pending} batches are being received or wait for the writer; try again`, { 'Retry-After': '1' });
    }
    pending += 1;
    res.once('close', () => { pending -= 1; });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BATCH_BYTES) chunks.push(chunk);
    });
    req.on('error', (err) => log.debug('audit request failed', { error: err.message }));
    req.on('end', () => {
      if (size > MAX_BATCH_BYTES) {
        metrics.droppedBatches.inc();
        log.error('audit batch dropped: too large (set --audit-webhook-truncate-enabled on the API server)', { bytes: size, max: MAX_BATCH_BYTES });
        return plain(res, 413, `a batch of ${size} bytes exceeds ${MAX_BATCH_BYTES}`);
      }
      const batch = eventsOfBatch(Buffer.concat(chunks).toString('utf8'));
      if ('error' in batch) {
        metrics.droppedBatches.inc();
        log.error('audit batch dropped: not an EventList', { error: batch.error });
        return plain(res, 400, batch.error);
      }
      store.append(batch.events).then(
        () => {
          log.debug('audit batch appended', { events: batch.events.length, records: store.size });
          plain(res, 200, `appended ${batch.events.length} events`);
        },
        (err: Error) => {
          const full = err instanceof StoreFullError;
          metrics.refusedBatches.inc({ reason: full ? 'full' : 'error' });
          log.error(full ? 'audit batch refused: the store is full (the API server retries; free space or raise --max-size)' : 'audit batch refused: the write failed (the API server retries)', { events: batch.events.length, firstAuditID: batch.firstAuditID, error: err.message });
          plain(res, full ? 503 : 500, err.message, full ? { 'Retry-After': '5' } : {});
        },
      );
    });
  }

  server.on('tlsClientError', (err) => log.debug('audit TLS handshake failed', { error: err.message }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host || undefined, () => resolve());
  });
  return server;
}
