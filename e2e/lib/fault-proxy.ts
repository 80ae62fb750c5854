// A plain-HTTP proxy on 127.0.0.1 between the controller and the test cluster's kube-apiserver, with faults the tests
// switch on and off: lists answered 500, watches cut or ended with 410 Gone, requests held (a stalled API server).
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { request } from 'node:https';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { writeKubeconfig, type TestCluster } from '../cluster/cluster.js';

/**
 * Which requests a fault hits: GETs whose path (no query) matches. `expiredWatches` are answered with a 410 Gone
 * ERROR event, as kube-apiserver answers a watch from a resourceVersion it no longer has.
 */
export type Fault = { lists?: RegExp; watches?: RegExp; expiredWatches?: RegExp };

export interface FaultProxy {
  /** A kubeconfig for the controller, pointing at the proxy. */
  kubeconfigPath: string;
  /** From now on, matching lists and watch requests are answered 500 (an API server that fails, etcd behind it down), matching expiredWatches 410. */
  fail(fault: Fault): void;
  /** From now on, matching lists and watch requests get no answer until heal() (a stalled API server). */
  stall(fault: Fault): void;
  /** Ends the faults; held requests go through. */
  heal(): void;
  /** Cuts every open watch (the connection is destroyed, as when an API server restarts). */
  cutWatches(): void;
  /** Ends every open watch with a 410 Gone ERROR event, as kube-apiserver does when a resourceVersion is compacted. */
  expireWatches(): void;
  /** Requests answered, by kind ('list' or 'watch'), path and outcome ('ok', 'failed'); held ones count when released. */
  count(kind: 'list' | 'watch', path: RegExp, outcome?: 'ok' | 'failed'): number;
  /** Watches open now whose path matches. */
  openWatches(path: RegExp): number;
  stop(): Promise<void>;
}

export async function startFaultProxy(cluster: TestCluster): Promise<FaultProxy> {
  const ca = await readFile(join(cluster.dir, 'serving.crt'));
  const upstream = new URL(cluster.server);
  let failing: Fault = {};
  let stalled: Fault = {};
  let held: (() => void)[] = [];
  const watches = new Set<{ path: string; res: ServerResponse; upstream: IncomingMessage }>();
  const answered: { kind: 'list' | 'watch'; path: string; outcome: 'ok' | 'failed' }[] = [];
  const sockets = new Set<Socket>();

  const hits = (fault: Fault, kind: 'list' | 'watch', path: string) => (kind === 'list' ? fault.lists : fault.watches)?.test(path) ?? false;
  const GONE = `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'too old resource version', reason: 'Expired', code: 410 } })}\n`;

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer, kind: 'list' | 'watch' | undefined, path: string) => {
    const out = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: { ...req.headers, host: upstream.host }, ca }, (reply) => {
      res.writeHead(reply.statusCode ?? 502, reply.headers);
      // As kube-apiserver does: a watch's headers go out at once, not with its first event.
      res.flushHeaders();
      if (kind) answered.push({ kind, path, outcome: (reply.statusCode ?? 502) < 300 ? 'ok' : 'failed' });
      if (kind === 'watch') {
        const watch = { path, res, upstream: reply };
        watches.add(watch);
        res.on('close', () => {
          watches.delete(watch);
          reply.destroy();
        });
      }
      reply.pipe(res);
    });
    out.on('error', () => res.destroy());
    out.end(body);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://proxy');
      const kind = req.method === 'GET' ? (url.searchParams.get('watch') === 'true' ? 'watch' : 'list') : undefined;
      const path = url.pathname;
      const body = Buffer.concat(chunks);
      const go = () => {
        if (kind === 'watch' && failing.expiredWatches?.test(path)) {
          answered.push({ kind, path, outcome: 'failed' });
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(GONE);
        } else if (kind && hits(failing, kind, path)) {
          answered.push({ kind, path, outcome: 'failed' });
          res.writeHead(500, { 'Content-Type': 'application/json' })
            .end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'injected fault: etcd unavailable', reason: 'InternalError', code: 500 }));
        } else {
          forward(req, res, body, kind, path);
        }
      };
      if (kind && hits(stalled, kind, path)) held.push(go);
      else go();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const kubeconfigPath = join(cluster.dir, 'kubeconfig-fault-proxy.json');
  await writeKubeconfig(kubeconfigPath, `http://127.0.0.1:${port}`, cluster.token);

  const release = () => {
    const go = held;
    held = [];
    for (const f of go) f();
  };
  return {
    kubeconfigPath,
    fail: (fault) => void (failing = fault),
    stall: (fault) => void (stalled = fault),
    heal() {
      failing = {};
      stalled = {};
      release();
    },
    cutWatches() {
      for (const { res } of watches) res.socket?.destroy();
    },
    expireWatches() {
      for (const { res, upstream: reply } of watches) {
        reply.unpipe(res);
        reply.destroy();
        res.end(GONE);
      }
    },
    count: (kind, path, outcome) => answered.filter((a) => a.kind === kind && path.test(a.path) && (outcome === undefined || a.outcome === outcome)).length,
    openWatches: (path) => [...watches].filter((w) => path.test(w.path)).length,
    async stop() {
      held = [];
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
