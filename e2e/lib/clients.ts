// Real TLS clients: curl and OpenSSL 3.5 from the PQ rootfs, and the host's OpenSSL 3.0 as the legacy client.
import { copyFile, mkdtemp } from 'node:fs/promises';
import { request, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../../controller/project.js';
import { rootfs } from './env.js';

export interface CurlResult {
  exitCode: number;
  /** Status of the last transfer; 0 when it got no response. */
  status: number;
  /** Status of each transfer in order: a URL with a range (/x/[1-30]) makes one transfer per value, over one connection. */
  statuses: number[];
  /** Body of the last transfer. */
  body: string;
  /** Response headers of the last transfer, names in lower case. */
  headers: Record<string, string>;
  /** "TLSv1.3 / TLS_AES_256_GCM_SHA384 / X25519MLKEM768 / id-ml-dsa-65" as curl -v prints it. */
  handshake: string;
  group: string;
  signature: string;
  stderr: string;
}

export interface Target {
  host: string;
  port: number;
  /** Where `host` resolves to; 127.0.0.1 unless given (a Pod's address on a test node). */
  address?: string;
  path?: string;
  scheme?: 'http' | 'https';
}

export interface CurlOptions {
  curves?: string;
  /** Trust anchor: a path inside the rootfs. */
  cacert?: string;
  /** Any other curl arguments: -H, -X, --cert, --key... (paths inside the rootfs). */
  args?: string[];
  /** curl's standard input: a request body with `--data-binary @-`. */
  input?: Buffer;
}

// Written after each transfer, so bodies and statuses of several transfers can be told apart.
const STATUS_MARK = /\nqubesec-status:(\d{3})(?:\n|$)/;

/** curl from the PQ rootfs (OpenSSL 3.5). */
export async function pqCurl(target: Target, options: CurlOptions = {}): Promise<CurlResult> {
  const scheme = target.scheme ?? 'https';
  const args = ['-sS', '-v', '--max-time', '10', '--resolve', `${target.host}:${target.port}:${target.address ?? '127.0.0.1'}`, '-w', '\nqubesec-status:%{http_code}\n'];
  if (options.curves) args.push('--curves', options.curves);
  if (options.cacert) args.push('--cacert', options.cacert);
  args.push(...(options.args ?? []), `${scheme}://${target.host}:${target.port}${target.path ?? '/'}`);
  const result = await execa('chroot', [rootfs(), 'curl', ...args], { reject: false, ...(options.input ? { input: options.input } : {}) });
  // split() with a capture group alternates body, status, body, status, ..., rest.
  const pieces = result.stdout.split(STATUS_MARK);
  const statuses = pieces.filter((_, i) => i % 2 === 1).map(Number);
  const lastResponse = result.stderr.split(/^< HTTP\//m).slice(1).at(-1) ?? '';
  const headers = Object.fromEntries([...lastResponse.matchAll(/^< ([^:\s]+): ?(.*?)\r?$/gm)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
  const handshake = /SSL connection using (.*)/.exec(result.stderr)?.[1]?.trim() ?? '';
  const parts = handshake.split(' / ');
  return {
    exitCode: result.exitCode ?? -1,
    status: statuses.at(-1) ?? 0,
    statuses,
    body: pieces.length > 1 ? pieces[pieces.length - 3]! : '',
    headers,
    handshake,
    group: parts[2] ?? '',
    signature: parts[3] ?? '',
    stderr: result.stderr,
  };
}

export interface LegacyHandshake {
  ok: boolean;
  /** "Signature type" as OpenSSL 3.0 -brief reports it: ECDSA for a classical certificate. */
  signatureType: string;
  /** "Server Temp Key": the key exchange, X25519 for a classical client. */
  serverTempKey: string;
  verification: string;
  output: string;
}

/** A handshake by the host's OpenSSL 3.0, which knows neither ML-KEM nor ML-DSA: what legacy clients get. */
export async function legacyHandshake(host: string, port: number, caFile: string, address = '127.0.0.1'): Promise<LegacyHandshake> {
  const result = await execa('openssl', ['s_client', '-brief', '-connect', `${address}:${port}`, '-servername', host, '-CAfile', caFile, '-verify_return_error'], { input: '', reject: false, all: true, timeout: 10_000 });
  const out = result.all ?? '';
  const field = (name: string) => new RegExp(`${name}:\\s*(.*)`).exec(out)?.[1]?.trim() ?? '';
  return { ok: result.exitCode === 0 && /CONNECTION ESTABLISHED/.test(out), signatureType: field('Signature type'), serverTempKey: field('Server Temp Key'), verification: field('Verification'), output: out };
}

export interface TlsSession {
  /** The server resumed the session offered. */
  reused: boolean;
  /** Key exchange group: a resumed TLS 1.3 handshake negotiates one too (psk_dhe_ke). */
  group: string;
  /** Algorithm of the server's CertificateVerify signature; empty when it sent none, as on resumption. */
  peerSignature: string;
  output: string;
}

/**
 * A TLS 1.3 handshake and one request by the rootfs's openssl s_client (OpenSSL 3.5), to 127.0.0.1:`port` with SNI
 * `host`. It offers the session saved in `options.offer` and saves the ticket the server sends in `options.save`
 * (paths inside the rootfs); `options.args` are further s_client options.
 */
export async function tlsSession(host: string, port: number, options: { offer?: string; save?: string; args?: string[] }): Promise<TlsSession> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', host, '-tls1_3', '-ign_eof', ...(options.args ?? [])];
  if (options.offer) args.push('-sess_in', options.offer);
  if (options.save) args.push('-sess_out', options.save);
  // The server sends its tickets after the handshake: waiting for the response gives them time to arrive.
  const request = `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
  const result = await execa('chroot', [rootfs(), 'openssl', ...args], { input: request, reject: false, all: true, timeout: 10_000 });
  const out = result.all ?? '';
  const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(out)?.[1]?.trim() ?? '';
  return { reused: /^Reused, TLSv1\.3/m.test(out), group: field('Negotiated TLS1.3 group'), peerSignature: field('Peer signature type'), output: out };
}

/** Copies the test certificates into the rootfs so its curl can use them as trust anchors; returns rootfs paths. */
export async function installTrustAnchors(): Promise<{ dir: string; mldsa: string; ecdsa: string; hostEcdsa: string; hostMldsa: string }> {
  const root = rootfs();
  const dir = await mkdtemp(join(root, 'tmp', 'qubesec-ca-'));
  for (const name of ['mldsa65.crt', 'ecdsa.crt']) await copyFile(join(PROJECT_ROOT, 'controller', 'testdata', name), join(dir, name));
  const inside = dir.slice(root.length);
  return { dir, mldsa: `${inside}/mldsa65.crt`, ecdsa: `${inside}/ecdsa.crt`, hostEcdsa: join(dir, 'ecdsa.crt'), hostMldsa: join(dir, 'mldsa65.crt') };
}

export interface HttpsReply {
  status: number;
  /** Header names and values as sent, one entry each (a repeated header stays repeated). */
  rawHeaders: string[];
  body: string;
}

/** One request from Node's own HTTPS client (OpenSSL 3.5). */
export function nodeHttps(url: string, options: RequestOptions, body?: string | Buffer): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 20_000, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${options.method ?? 'GET'} ${url}: no answer within 20 s`)));
    req.on('error', reject);
    req.end(body);
  });
}
