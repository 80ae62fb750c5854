// A small backend that answers with what it saw: used by the demo and the e2e tests. A query parameter delay-ms holds
// the answer back that long (timeouts' tests). One port speaks HTTP/1.x and HTTP/2 with prior knowledge (h2c); a gRPC
// call (content-type application/grpc) gets the same JSON as one gRPC message, and grpc-status 0 as its trailer.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttp2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer as createNetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';

export interface EchoBackend {
  /** Stops listening and drops every connection, kept-alive ones too: a closed backend refuses at once. */
  close(): void;
}

export async function startEchoBackend(name: string, port: number, address = '127.0.0.1'): Promise<EchoBackend> {
  const answer = async (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
    let received = 0;
    for await (const chunk of req) received += (chunk as Buffer).length;
    const delay = Number(new URL(req.url ?? '/', 'http://echo').searchParams.get('delay-ms') ?? 0);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(delay, 60_000)));
    const body = JSON.stringify({
      backend: name,
      method: req.method,
      path: req.url,
      host: req.headers[':authority'] ?? req.headers.host,
      httpVersion: req.httpVersion,
      received,
      tlsGroup: req.headers['x-qubesec-tls-group'] ?? null,
      forwardedProto: req.headers['x-forwarded-proto'] ?? null,
      clientSubjectDn: req.headers['ssl-client-subject-dn'] ?? null,
      headers: req.headers,
    });
    if (String(req.headers['content-type']).startsWith('application/grpc')) {
      // A gRPC message: no compression flag, a 4-byte length, the bytes.
      const message = Buffer.from(body);
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      message.copy(frame, 5);
      (res as ServerResponse).writeHead(200, { 'content-type': 'application/grpc' });
      res.addTrailers({ 'grpc-status': '0' });
      res.end(frame);
      return;
    }
    (res as ServerResponse).writeHead(200, { 'Content-Type': 'application/json' }).end(`${body}\n`);
  };
  const http1: Server = createServer((req, res) => void answer(req, res));
  const http2 = createHttp2Server((req, res) => void answer(req, res));
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.once('data', (first: Buffer) => dispatch(socket, first));
  });
  // The first bytes tell the protocols apart: HTTP/2's connection preface starts "PRI".
  const dispatch = (socket: Socket, first: Buffer) => {
    if (first.subarray(0, 3).toString() === 'PRI') {
      http2.emit('connection', replaying(socket, first));
    } else {
      socket.pause();
      socket.unshift(first);
      http1.emit('connection', socket);
      socket.resume();
    }
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  return {
    close: () => {
      server.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** The socket as a stream that gives `first` again: node:http2 reads a net.Socket's handle, past what was unshifted. */
function replaying(socket: Socket, first: Buffer): Duplex {
  const stream = new Duplex({
    read: () => void socket.resume(),
    write: (chunk, encoding, done) => void socket.write(chunk, encoding, done),
    final: (done) => void socket.end(done),
    destroy: (err, done) => {
      socket.destroy(err ?? undefined);
      done(err);
    },
  });
  stream.push(first);
  socket.on('data', (chunk) => {
    if (!stream.push(chunk)) socket.pause();
  });
  socket.on('end', () => stream.push(null));
  socket.on('error', (err) => stream.destroy(err));
  socket.on('close', () => stream.destroy());
  return stream;
}
