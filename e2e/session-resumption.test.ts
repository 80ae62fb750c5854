// Session resumption shared through the real API server: two replicas, each with its own NGINX, serve the ticket keys
// and the default certificate the leader keeps in the Secret, so a session from one resumes on the other, across
// rotations, and a bad Secret changes nothing that serves. Sessions are made and offered by the rootfs's openssl
// s_client.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Secret } from '@kubernetes/client-node';
import { CREATED_FIELD, KEYS_FIELD, readSharedSecret } from '../controller/tickets/secret.js';
import { tlsSession } from './lib/clients.js';
import { eventually, rootfs } from './lib/env.js';
import { startTestController, type TestController } from './lib/harness.js';
import { pqIngress } from './lib/objects.js';
import { startClusterSetup, stopClusterSetup, type ClusterSetup } from './lib/setup.js';

const NAMESPACE = 'qubesec';
const SECRET = 'qubesec-session-tickets';
const HOST = 'tickets.pq.example.com';
const PERIOD_MS = 3600_000;

let setup: ClusterSetup;
let sessionDir: string;
const replicas: TestController[] = [];
/** Every key the Secret held during the tests, to look for in logs, Events and metrics at the end. */
const seenKeys = new Set<string>();

const readSecret = () => setup.kube.core.readNamespacedSecret({ namespace: NAMESPACE, name: SECRET });
const writeSecret = (secret: V1Secret, data: Record<string, string>) =>
  setup.kube.core.replaceNamespacedSecret({ namespace: NAMESPACE, name: SECRET, body: { ...secret, data: { ...secret.data, ...data } } });
async function secretKeys(): Promise<Buffer[]> {
  const read = readSharedSecret(await readSecret(), new Date());
  if ('error' in read) throw new Error(read.error);
  for (const key of read.ticketKeys) seenKeys.add(key.bytes.toString('base64'));
  return read.ticketKeys.map((k) => k.bytes);
}
/** The Secret with its current key made older, so that it is due `dueInMs` from now (the leader's timer, or at once). */
async function ageCurrentKey(dueInMs: number): Promise<void> {
  const secret = await readSecret();
  const times = Buffer.from(secret.data![CREATED_FIELD]!, 'base64').toString().split('\n');
  times[0] = new Date(Date.now() - PERIOD_MS + dueInMs).toISOString();
  await writeSecret(secret, { [CREATED_FIELD]: Buffer.from(times.join('\n')).toString('base64') });
}
/** The key files of the configuration this replica's NGINX runs (its generation confirmed by the controller's metric). */
async function servedKeys(replica: TestController): Promise<Buffer[]> {
  const conf = await readFile(join(rootfs(), replica.confDir, 'nginx.conf'), 'utf8');
  const generation = /^# generation ([0-9a-f]{12})$/m.exec(conf)![1]!;
  const running = /^qubesec_config_hash (\S+)$/m.exec(await replica.metricsText())?.[1];
  if (Number(running) !== parseInt(generation, 16)) throw new Error(`generation ${generation} written, not yet confirmed`);
  return Promise.all([...conf.matchAll(/ssl_session_ticket_key (\S+);/g)].map((m) => readFile(join(rootfs(), m[1]!))));
}
const bothServe = (keys: Buffer[]) =>
  eventually(async () => {
    for (const [i, replica] of replicas.entries()) {
      const served = await servedKeys(replica);
      if (served.length !== keys.length || served.some((k, j) => !k.equals(keys[j]!))) throw new Error(`replica ${i} serves ${served.length} other keys`);
    }
    return true;
  }, 30_000, 'both replicas serve the Secret\'s keys');
const session = (name: string) => `${sessionDir.slice(rootfs().length)}/${name}`;
const connect = (replica: TestController, files: Parameters<typeof tlsSession>[2]) => tlsSession(HOST, replica.httpsPort, files);

beforeAll(async () => {
  setup = await startClusterSetup();
  sessionDir = await mkdtemp(join(rootfs(), 'tmp', 'qubesec-sessions-'));
  await setup.kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
  await setup.kube.apply(pqIngress('tickets', HOST, 'absent', { secrets: ['pq-mldsa'] }));
  const flags = ['--election-ttl', '5s', '--controller-namespace', NAMESPACE, '--session-ticket-rotation', '1h', '--session-timeout', '10m'];
  // B watches only the Ingresses' namespace: the Secret reaches it through its informer on the controller namespace.
  for (const extra of [[], ['--watch-namespace', 'default']]) replicas.push(await startTestController({ kubeconfig: setup.cluster.kubeconfigPath }, [...flags, ...extra]));
  await bothServe(await eventually(secretKeys, 30_000, 'the leader creates the Secret'));
}, 300_000);

afterAll(async () => {
  for (const replica of replicas.slice(1)) await replica.stop();
  await stopClusterSetup(setup, replicas[0]);
  if (sessionDir) await rm(sessionDir, { recursive: true, force: true });
});

describe('session tickets shared by two replicas through the Secret', () => {
  it('resumes on replica B a session from replica A: hybrid key exchange again, no certificate signature', async () => {
    const [a, b] = replicas as [TestController, TestController];
    expect(await connect(a, { save: session('a') })).toMatchObject({ reused: false, group: 'X25519MLKEM768', peerSignature: 'mldsa65' });
    expect(await connect(b, { offer: session('a') })).toMatchObject({ reused: true, group: 'X25519MLKEM768', peerSignature: '' });
    await eventually(async () => /^qubesec_tls_handshakes_total\{group="X25519MLKEM768",group_class="hybrid",resumed="true"\} [1-9]/m.test(await b.metricsText()) || undefined, 10_000, 'a resumed handshake counted by B');
  });

  it('serves the Secret\'s default certificate from both replicas: NGINX binds sessions to it', async () => {
    const shared = readSharedSecret(await readSecret(), new Date());
    if ('error' in shared) throw new Error(shared.error);
    const served = await Promise.all(replicas.map(async (r) => /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec((await tlsSession('unknown.example.com', r.httpsPort, {})).output)?.[0]));
    expect(served).toEqual(replicas.map(() => shared.defaultCertificates[0]!.certificatePem.trim()));
  });

  it('rotates on the leader\'s timer: the new key comes first, the previous one still resumes on both replicas, and one rotated out does not', async () => {
    const [a, b] = replicas as [TestController, TestController];
    const [first] = await secretKeys();
    expect(await connect(a, { save: session('before-rotation') })).toMatchObject({ reused: false });

    await ageCurrentKey(2000);
    const rotated = await eventually(async () => {
      const keys = await secretKeys();
      return keys.length === 2 && !keys[0]!.equals(first!) && keys[1]!.equals(first!) ? keys : undefined;
    }, 30_000, 'a new key in front of the previous one');
    await bothServe(rotated);
    for (const replica of [b, a]) expect(await connect(replica, { offer: session('before-rotation') })).toMatchObject({ reused: true });

    await ageCurrentKey(0);
    const again = await eventually(async () => {
      const keys = await secretKeys();
      return keys[1]?.equals(rotated[0]!) ? keys : undefined;
    }, 30_000, 'a second rotation');
    expect(again.some((k) => k.equals(first!))).toBe(false);
    await bothServe(again);
    expect(await connect(b, { offer: session('before-rotation') })).toMatchObject({ reused: false, peerSignature: 'mldsa65' });
  });

  it('warns about a bad Secret from every replica, naming the Secret and the field, while its last good keys keep serving', async () => {
    const [a, b] = replicas as [TestController, TestController];
    const keys = await secretKeys();
    expect(await connect(a, { save: session('before-bad') })).toMatchObject({ reused: false });
    await writeSecret(await readSecret(), { [KEYS_FIELD]: Buffer.alloc(81, 7).toString('base64') });

    const message = `Secret ${NAMESPACE}/${SECRET}: data.${KEYS_FIELD} holds 81 bytes, not one or more 80-byte keys; its last good content keeps serving`;
    await eventually(async () => {
      const events = (await setup.kube.core.listNamespacedEvent({ namespace: NAMESPACE })).items
        .filter((e) => e.involvedObject.kind === 'Secret' && e.involvedObject.name === SECRET && e.type === 'Warning');
      const instances = new Set(events.filter((e) => e.reason === 'InvalidSessionTicketSecret' && e.message === message).map((e) => e.reportingInstance));
      if (replicas.every((r) => instances.has(r.elector!.identity))) return true;
      throw new Error(`Warnings: ${JSON.stringify(events.map((e) => [e.reportingInstance, e.reason, e.message]))}`);
    }, 30_000, 'an InvalidSessionTicketSecret Warning from each replica');
    await bothServe(keys);
    for (const replica of [b, a]) expect(await connect(replica, { offer: session('before-bad') })).toMatchObject({ reused: true });
    // Not due yet: the leader leaves the Secret for a person to fix, rather than overwrite it at once.
    expect(Buffer.from((await readSecret()).data![KEYS_FIELD]!, 'base64')).toHaveLength(81);
  });

  it('deleting the Secret revokes every key: the leader makes a new one, and older sessions make full handshakes', async () => {
    const [a] = replicas as [TestController, TestController];
    await setup.kube.delete({ apiVersion: 'v1', kind: 'Secret', metadata: { namespace: NAMESPACE, name: SECRET } });
    const fresh = await eventually(async () => {
      const keys = await secretKeys();
      return keys.length === 1 ? keys : undefined;
    }, 30_000, 'a new Secret with one key');
    await bothServe(fresh);
    expect(await connect(a, { offer: session('before-bad') })).toMatchObject({ reused: false });
  });

  it('keeps keys out of logs, Events and metrics', async () => {
    expect(seenKeys.size).toBeGreaterThanOrEqual(4);
    const events = JSON.stringify((await setup.kube.core.listNamespacedEvent({ namespace: NAMESPACE })).items);
    const texts = [events, ...(await Promise.all(replicas.map((r) => r.metricsText()))), ...replicas.map((r) => r.logs.join(''))];
    for (const key of seenKeys) {
      const forms = [key, Buffer.from(key, 'base64').toString('hex')];
      expect(texts.filter((text) => forms.some((form) => text.includes(form)))).toEqual([]);
    }
  });
});
