// A small HTTP backend that answers with what it saw: used by the demo and the e2e tests. A query parameter
// delay-ms holds the answer back that long (timeouts' tests).
import { createServer, type Server } from 'node:http';

export async function startEchoBackend(name: string, port: number, address = '127.0.0.1'): Promise<Server> {
  const server = createServer(async (req, res) => {
    const delay = Number(new URL(req.url ?? '/', 'http://echo').searchParams.get('delay-ms') ?? 0);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(delay, 60_000)));
    const body = JSON.stringify({
      backend: name,
      method: req.method,
      path: req.url,
      host: req.headers.host,
      tlsGroup: req.headers['x-qubesec-tls-group'] ?? null,
      forwardedProto: req.headers['x-forwarded-proto'] ?? null,
      clientSubjectDn: req.headers['ssl-client-subject-dn'] ?? null,
      headers: req.headers,
    });
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(`${body}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  return server;
}
