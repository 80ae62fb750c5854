// Receives NGINX's one-line-per-connection syslog (templates/nginx.conf.hbs) and counts handshakes by group.
import { createSocket, type Socket } from 'node:dgram';
import { classifyGroup, groupName } from '../model/pq.js';
import type { Metrics } from './metrics.js';

/** Parses "<190>qubesec: X25519MLKEM768 r" (group, then "r" if resumed or "." if not). */
export function parseHandshakeLine(message: string): { group: string; resumed: boolean } | undefined {
  const m = /qubesec: (\S+) (\S+)\s*$/.exec(message);
  if (!m || m[1] === '' || m[1] === '-' || m[1] === undefined) return undefined; // plain HTTP
  return { group: groupName(m[1]), resumed: m[2] === 'r' };
}

export async function listenForHandshakes(metrics: Metrics, port: number): Promise<{ socket: Socket; port: number }> {
  const socket = createSocket('udp4');
  socket.on('message', (buffer) => {
    const handshake = parseHandshakeLine(buffer.toString('utf8'));
    if (!handshake) return;
    const group = handshake.group;
    metrics.handshakes.inc({ group, group_class: classifyGroup(group), resumed: String(handshake.resumed) });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => resolve());
  });
  return { socket, port: socket.address().port };
}
