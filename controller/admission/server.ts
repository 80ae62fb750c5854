// The validating admission webhooks' HTTPS server, shared by every system that reviews objects: one path per webhook
// (the Ingress check, the signature policies). Per request it reads a bounded body, asks that path's handler (memory
// and node:crypto only) and writes the answer: no file, no process, no NGINX. A request's content never reaches `nginx -t` or any
// other program, the hole that IngressNightmare (CVE-2025-1974) opened in ingress-nginx's webhook.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import { GROUPS_BY_MODE, opensslGroupList } from '../model/pq.js';
import type { Logger } from '../observability/log.js';
import type { ReviewReply } from './review.js';

export const VALIDATE_INGRESSES_PATH = '/validate/networking/v1/ingresses';
export const VALIDATE_HTTP_ROUTES_PATH = '/validate/gateway.networking.k8s.io/v1/httproutes';
export const VALIDATE_GRPC_ROUTES_PATH = '/validate/gateway.networking.k8s.io/v1/grpcroutes';
export const VALIDATE_TLS_ROUTES_PATH = '/validate/gateway.networking.k8s.io/v1/tlsroutes';
export const VALIDATE_GATEWAYS_PATH = '/validate/gateway.networking.k8s.io/v1/gateways';

/** Request body in, reply out: readReview and a verdict, for one path. */
export type ReviewHandler = (body: string) => ReviewReply | Promise<ReviewReply>;

/** An UPDATE review carries the new Ingress (at most 3 MiB, the API server's request limit) and the stored one. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface WebhookOptions {
  /** '' listens on all addresses. */
  host: string;
  port: number;
  /** PEM pairs of different key types (ML-DSA and ECDSA, say): OpenSSL gives each client one it can verify. */
  keyPairs: { certificatePem: string; keyPem: string }[];
}

/** Serves each path's handler: `{ [VALIDATE_INGRESSES_PATH]: ..., [VALIDATE_SIGNATURES_PATH]: ... }`. */
export async function serveAdmission(options: WebhookOptions, handlers: Record<string, ReviewHandler>, log: Logger): Promise<Server> {
  const server = createServer(
    {
      ...hybridTlsOptions(options.keyPairs),
      handshakeTimeout: 10_000,
      headersTimeout: 10_000,
      requestTimeout: 30_000,
      // Above the API server's idle timeout for pooled connections (90 s), so it never reuses one we just closed.
      keepAliveTimeout: 120_000,
    },
    (req, res) => handle(req, res, handlers, log),
  );
  server.on('tlsClientError', (err) => log.debug('webhook TLS handshake failed', { error: err.message }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host || undefined, () => resolve());
  });
  return server;
}

/** New connections get these pairs; open ones keep theirs (a rotated certificate needs no restart). */
export function replaceKeyPairs(server: Server, keyPairs: WebhookOptions['keyPairs']): void {
  server.setSecureContext(hybridTlsOptions(keyPairs));
}

/** TLS of QubeSec's own HTTPS servers (this webhook, the QRNG service): the key pairs, hybrid ML-KEM groups first. */
export function hybridTlsOptions(keyPairs: WebhookOptions['keyPairs']): SecureContextOptions {
  return {
    cert: keyPairs.map((p) => p.certificatePem),
    key: keyPairs.map((p) => p.keyPem),
    // The data plane's hybrid tiers: ML-KEM hybrids first, classical groups for clients without them.
    ecdhCurve: opensslGroupList(GROUPS_BY_MODE.hybrid),
    // Hybrid groups need TLS 1.3, which every current API server speaks; 1.2 stays for clients that stop there.
    minVersion: 'TLSv1.2',
  };
}

/** Stops listening and closes every connection, idle or not (the webhook, the QRNG service). */
export async function stopHttpsServer(server: Server): Promise<void> {
  const closed = new Promise((resolve) => server.close(resolve));
  server.closeAllConnections();
  await closed;
}

function handle(req: IncomingMessage, res: ServerResponse, handlers: Record<string, ReviewHandler>, log: Logger): void {
  // The API server appends ?timeout=...s to the configured URL.
  const path = (req.url ?? '').split('?')[0] ?? '';
  const handler = Object.hasOwn(handlers, path) ? handlers[path] : undefined;
  if (!handler) return plain(res, 404, `no such path: POST AdmissionReviews to ${Object.keys(handlers).join(' or ')}`);
  if (req.method !== 'POST') return plain(res, 405, `${req.method ?? ''} ${path}: only POST is served`, { Allow: 'POST' });
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return tooLarge(req, res);

  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      chunks.length = 0;
      if (!res.headersSent) tooLarge(req, res);
      return;
    }
    chunks.push(chunk);
  });
  req.on('error', (err) => log.debug('webhook request failed', { error: err.message }));
  const answer = async (body: string) => {
    if (res.headersSent) return;
    let reply;
    try {
      reply = await handler(body);
    } catch (err) {
      log.error('admission review failed', { path, error: (err as Error).stack ?? String(err) });
      return plain(res, 500, `review failed: ${(err as Error).message}`);
    }
    if (reply.status === 400) {
      log.warn('admission review refused', { path, error: reply.error });
      return plain(res, 400, reply.error);
    }
    const { response } = reply.review;
    if (response.allowed) log.debug('admission allowed', { path, review: reply.about, uid: response.uid, warnings: response.warnings });
    else log.info('admission denied', { path, review: reply.about, uid: response.uid, message: response.status?.message });
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(reply.review));
  };
  req.on('end', () => void answer(Buffer.concat(chunks).toString('utf8')));
}

/**
 * Answers at once and discards the rest of the body as it arrives (requestTimeout bounds that). Closing instead would
 * reset the connection under a client still sending, which then may never read the answer.
 */
function tooLarge(req: IncomingMessage, res: ServerResponse): void {
  plain(res, 413, `request body exceeds ${MAX_BODY_BYTES} bytes`);
  req.resume();
}

/** A plain-text answer (errors, and the audit receiver's acknowledgements). */
export function plain(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers }).end(`${message}\n`);
}
