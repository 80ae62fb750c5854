// TEST DOUBLE: a stand-in for a QRNG vendor's appliance, which the tests cannot reach. A real HTTPS server (Node's
// TLS on OpenSSL 3.5, an ML-DSA-65 certificate from a test CA) on 127.0.0.1 speaking the QRNG Open API
// (GET /v1/capabilities, POST /v1/entropy, GET /v1/healthtest) and Qrypt's GET /api/v1/quantum-entropy, with the
// authentication a vendor asks for (Bearer token, X-API-KEY, client certificates) and the faults a test switches on:
// 503, slow answers, stuck output (one repeated byte), biased output, truncated base64, 422. Its "entropy" is the OS
// generator's: it is not a QRNG, and nothing outside e2e/ may use it.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { generateKeyPair } from '../../controller/pki/algorithms.js';
import { issueCertificate, privateKeyPem } from '../../controller/pki/x509.js';

export type QrngFault = 'none' | 'unavailable' | 'slow' | 'stuck' | 'biased' | 'truncated' | 'rejected';

export interface QrngTestServerOptions {
  bearerToken?: string;
  apiKey?: string;
  /** Ask for and require a client certificate from the test CA. */
  clientCertificates?: boolean;
  maxBlockSize?: number;
  maxBlockCount?: number;
  /** How long a 'slow' answer waits (default 5 s). */
  slowMs?: number;
}

export interface QrngTestServer {
  /** https://127.0.0.1:<port> */
  url: string;
  /** The test CA (PEM): it signed the server certificate and the client certificate. */
  caPem: string;
  client: { certPem: string; keyPem: string };
  fault: QrngFault;
  /** Raw bytes handed out in entropy answers. */
  bytesServed: number;
  /** Requests answered, by path. */
  requests: Map<string, number>;
  stop(): Promise<void>;
}

/** Bytes where 0x00 is every 4th value (probability 1/4) and never twice in a row: APT fails, RCT does not. */
function biased(n: number): Buffer {
  const out = randomBytes(n);
  for (let i = 0; i < n; i++) out[i] = i % 4 === 0 ? 0 : out[i]! || 1;
  return out;
}

export async function startQrngTestServer(options: QrngTestServerOptions = {}): Promise<QrngTestServer> {
  const notAfter = new Date(Date.now() + 86_400_000);
  const caKeys = generateKeyPair('ml-dsa-65');
  const caPem = await issueCertificate({ subject: 'CN=QRNG test double CA,O=QubeSec tests', profile: 'ca', notAfter: new Date(notAfter.getTime() + 86_400_000), publicKey: caKeys.publicKey }, { selfKey: caKeys.privateKey });
  const issuer = { certificatePem: caPem, privateKey: caKeys.privateKey };
  const serverKeys = generateKeyPair('ml-dsa-65');
  const serverPem = await issueCertificate({ subject: 'CN=qrng test double', ipAddresses: ['127.0.0.1'], profile: 'server', notAfter, publicKey: serverKeys.publicKey }, issuer);
  const clientKeys = generateKeyPair('ml-dsa-65');
  const clientPem = await issueCertificate({ subject: 'CN=qubesec qrng client', profile: 'client', notAfter, publicKey: clientKeys.publicKey }, issuer);
  const maxBlockSize = options.maxBlockSize ?? 4096;
  const maxBlockCount = options.maxBlockCount ?? 64;
  const timers = new Set<NodeJS.Timeout>();

  const state: QrngTestServer = {
    url: '',
    caPem,
    client: { certPem: clientPem, keyPem: privateKeyPem(clientKeys.privateKey) },
    fault: 'none',
    bytesServed: 0,
    requests: new Map(),
    stop: async () => undefined,
  };

  const reply = (res: ServerResponse, status: number, body: object) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  /** `count` blocks of `size` raw bytes as the fault says, base64 (cut short when truncated). */
  const blocks = (size: number, count: number): string[] =>
    Array.from({ length: count }, () => {
      const raw = state.fault === 'stuck' ? Buffer.alloc(size, 0xa5) : state.fault === 'biased' ? biased(size) : randomBytes(size);
      state.bytesServed += size;
      const text = raw.toString('base64');
      return state.fault === 'truncated' ? text.slice(0, Math.max(4, text.length - 8)) : text;
    });

  const authorized = (req: IncomingMessage): boolean => {
    if (options.bearerToken && req.headers.authorization !== `Bearer ${options.bearerToken}`) return false;
    if (options.apiKey && req.headers['x-api-key'] !== options.apiKey) return false;
    return true;
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const url = new URL(req.url ?? '/', 'https://qrng.test');
    state.requests.set(url.pathname, (state.requests.get(url.pathname) ?? 0) + 1);
    if (!authorized(req)) return reply(res, 401, { error: 'unauthorized' });
    if (state.fault === 'unavailable') return reply(res, 503, { error: 'entropy source unavailable' });
    if (req.method === 'GET' && url.pathname === '/v1/capabilities') {
      return reply(res, 200, {
        entropy: { min_block_size: 1, max_block_size: maxBlockSize, min_block_count: 1, max_block_count: maxBlockCount, entropy_types: ['raw', 'conditioned'] },
        healthtest: { test_threshold: [{ test_type: 'nist_90b', time_stamp: new Date().toISOString() }], source_count: 1 },
      });
    }
    if (req.method === 'GET' && url.pathname === '/v1/healthtest') {
      return reply(res, 200, { test_result: [{ test_type: 'nist_90b', test_result: 0.94, time_stamp: new Date().toISOString() }] });
    }
    if (req.method === 'POST' && url.pathname === '/v1/entropy') {
      let request: { block_size?: unknown; block_count?: unknown };
      try {
        request = JSON.parse(body) as typeof request;
      } catch {
        return reply(res, 422, { error: 'body is not JSON' });
      }
      const size = request.block_size;
      const count = request.block_count ?? 1;
      if (state.fault === 'rejected' || !Number.isInteger(size) || !Number.isInteger(count) || (size as number) < 1 || (size as number) > maxBlockSize || (count as number) < 1 || (count as number) > maxBlockCount) {
        return reply(res, 422, { error: `block_size must be 1 to ${maxBlockSize}, block_count 1 to ${maxBlockCount}` });
      }
      return reply(res, 200, { entropy: blocks(size as number, count as number) });
    }
    if (req.method === 'GET' && url.pathname === '/api/v1/quantum-entropy') {
      const kib = Number(url.searchParams.get('size') ?? 1);
      if (state.fault === 'rejected' || !Number.isInteger(kib) || kib < 1 || kib > 512) return reply(res, 422, { error: 'size must be 1 to 512 KiB' });
      return reply(res, 200, { random: blocks(1024, kib), size: kib });
    }
    reply(res, 404, { error: 'not found' });
  };

  const server: Server = createServer(
    { cert: serverPem, key: privateKeyPem(serverKeys.privateKey), ca: caPem, requestCert: options.clientCertificates ?? false, rejectUnauthorized: options.clientCertificates ?? false },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (state.fault !== 'slow') return handle(req, res, body);
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (!res.destroyed) handle(req, res, body);
        }, options.slowMs ?? 5000);
        timers.add(timer);
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.stop = async () => {
    for (const timer of timers) clearTimeout(timer);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return state;
}
