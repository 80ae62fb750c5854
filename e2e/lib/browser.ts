// Headless Chromium driven over the DevTools protocol (Node's WebSocket, no driver library): what a browser user gets
// from the ingress, with a trust store (an NSS database in a fresh HOME) that holds only the roots a test gives it.
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { eventually } from './env.js';

/** What Chromium reports of a top-level navigation over TLS. */
export interface BrowserVisit {
  /** HTTP status; absent when the load failed. */
  status?: number;
  /** Chromium's net error, e.g. net::ERR_CERT_AUTHORITY_INVALID, when the load failed. */
  error?: string;
  body?: string;
  /** From Network.Response.securityDetails. */
  tls?: { protocol: string; keyExchangeGroup?: string; serverSignatureAlgorithm?: number; subjectName: string; issuer: string };
}

export interface Browser {
  /** `ignoreCertificateErrors`: load even what the trust store refuses, to see which certificate came. */
  visit(url: string, options?: { ignoreCertificateErrors?: boolean }): Promise<BrowserVisit>;
  stop(): Promise<void>;
}

interface CdpMessage { id?: number; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { message: string }; sessionId?: string }

/**
 * Starts Chromium with `trustedRoots` (PEM files) as its only added trust anchors and every host name resolving to
 * 127.0.0.1 (the ingress under test); the system roots stay as they are and reach nothing here.
 */
export async function startBrowser(trustedRoots: string[]): Promise<Browser> {
  const home = await mkdtemp(join(tmpdir(), 'qubesec-chromium-'));
  const nssdb = join(home, '.pki', 'nssdb');
  await mkdir(nssdb, { recursive: true });
  await execa('certutil', ['-d', `sql:${nssdb}`, '-N', '--empty-password']);
  for (const [i, root] of trustedRoots.entries()) {
    // C,, : a CA trusted to issue server certificates.
    await execa('certutil', ['-d', `sql:${nssdb}`, '-A', '-t', 'C,,', '-n', `qubesec-test-root-${i}`, '-i', root]);
  }
  const profile = join(home, 'profile');
  // A process group of its own, so that the renderer and utility processes can be killed with the browser; TMPDIR in
  // HOME, so that what Chromium leaves there goes with it.
  const child = spawn('chromium', [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--no-first-run', `--user-data-dir=${profile}`, '--remote-debugging-port=0', '--host-resolver-rules=MAP * 127.0.0.1',
    'about:blank',
  ], { env: { ...process.env, HOME: home, TMPDIR: home }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Helper processes may still be writing to the profile when the browser itself is gone; the group goes first, and
  // removal retries what they wrote meanwhile.
  const kill = async () => {
    try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* the group has already gone */ }
    await exited;
    await rm(home, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  };
  try {
    const [port, path] = await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`chromium exited ${child.exitCode}: ${stderr}`);
      const text = await readFile(join(profile, 'DevToolsActivePort'), 'utf8').catch(() => '');
      const lines = text.split('\n');
      return lines.length >= 2 && lines[1] ? [lines[0], lines[1]] as const : undefined;
    }, 30_000, 'Chromium DevTools port');
    const cdp = await connect(`ws://127.0.0.1:${port}${path}`);
    return {
      visit: (url, options) => visit(cdp, url, options?.ignoreCertificateErrors ?? false),
      async stop() {
        // Browser.close lets Chromium stop its helpers and flush the profile; the kill is for a browser that hangs.
        await withTimeout(cdp.send('Browser.close'), 5_000, 'closing Chromium').catch(() => undefined);
        cdp.close();
        await withTimeout(exited, 5_000, 'Chromium exiting').catch(() => undefined);
        await kill();
      },
    };
  } catch (err) {
    await kill();
    throw err;
  }
}

interface Cdp {
  send(method: string, params?: Record<string, unknown>, sessionId?: string): Promise<Record<string, unknown>>;
  on(listener: (message: CdpMessage) => void): () => void;
  close(): void;
}

async function connect(url: string): Promise<Cdp> {
  const socket = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener('open', () => resolve(), { once: true });
    socket.addEventListener('error', () => reject(new Error(`cannot connect to Chromium at ${url}`)), { once: true });
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  const listeners = new Set<(message: CdpMessage) => void>();
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as CdpMessage;
    if (message.id !== undefined) {
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      if (message.error) waiter?.reject(new Error(message.error.message));
      else waiter?.resolve(message.result ?? {});
      return;
    }
    for (const listener of listeners) listener(message);
  });
  return {
    send(method, params = {}, sessionId) {
      const id = nextId++;
      socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
    },
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: () => socket.close(),
  };
}

/**
 * Opens `url` in a tab of a new browser context and reports the main document's response, or the error that stopped
 * it. A context of its own has its own connections: Chromium would otherwise reuse one to another host whose
 * certificate also covers this one (HTTP/2 connection coalescing), and report that connection's handshake.
 */
async function visit(cdp: Cdp, url: string, ignoreCertificateErrors: boolean): Promise<BrowserVisit> {
  const { browserContextId } = await cdp.send('Target.createBrowserContext', { disposeOnDetach: true }) as { browserContextId: string };
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank', browserContextId }) as { targetId: string };
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true }) as { sessionId: string };
  try {
    await cdp.send('Network.enable', {}, sessionId);
    if (ignoreCertificateErrors) await cdp.send('Security.setIgnoreCertificateErrors', { ignore: true }, sessionId);
    let documentRequest: string | undefined;
    let visited: BrowserVisit | undefined;
    const outcome = new Promise<BrowserVisit>((resolve) => {
      const off = cdp.on((m) => {
        if (m.sessionId !== sessionId) return;
        const p = m.params ?? {};
        if (m.method === 'Network.requestWillBeSent' && p.type === 'Document' && documentRequest === undefined) documentRequest = p.requestId as string;
        if (p.requestId !== documentRequest) return;
        if (m.method === 'Network.responseReceived') {
          const response = p.response as { status: number; securityDetails?: BrowserVisit['tls'] };
          const details = response.securityDetails;
          visited = { status: response.status, tls: details && { protocol: details.protocol, keyExchangeGroup: details.keyExchangeGroup, serverSignatureAlgorithm: details.serverSignatureAlgorithm, subjectName: details.subjectName, issuer: details.issuer } };
        } else if (m.method === 'Network.loadingFinished' && visited) {
          off();
          resolve(visited);
        } else if (m.method === 'Network.loadingFailed') {
          off();
          resolve({ error: p.errorText as string });
        }
      });
    });
    await cdp.send('Page.navigate', { url }, sessionId);
    const result = await withTimeout(outcome, 20_000, `loading ${url}`);
    if (result.status !== undefined && documentRequest) {
      const { body } = await cdp.send('Network.getResponseBody', { requestId: documentRequest }, sessionId) as { body: string };
      result.body = body;
    }
    return result;
  } finally {
    await cdp.send('Target.disposeBrowserContext', { browserContextId });
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out ${what}`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
