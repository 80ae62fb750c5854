// The audit trail on a real kube-apiserver: its webhook backend POSTs batches to `qubesec audit serve` (a real process,
// over TLS with a bearer token), kubectl makes the events, and `qubesec audit verify` and `show` read the log. The
// checkpoint key comes from OpenSSL 3.5 (the rootfs), which also verifies a checkpoint's ML-DSA signature.
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, statfs, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { stringify } from 'yaml';
import { selfSignedPair } from '../controller/pki/selfsigned.js';
import { AUDIT_PATH } from '../controller/signatures/audit/receiver.js';
import { parseLine, segmentName } from '../controller/signatures/audit/record.js';
import { startCluster, type TestCluster } from './cluster/cluster.js';
import { nodeHttps, tlsSession } from './lib/clients.js';
import { eventually, freePort, kubeBinary, metricValue, rootfs } from './lib/env.js';

const MAIN = fileURLToPath(new URL('../controller/cli/main.js', import.meta.url));
const qubesec = (...args: string[]) => execa(process.execPath, [MAIN, ...args], { reject: false });

let cluster: TestCluster;
let dir: string;
let port: number;
let metricsPort: number;
let files: Record<'key' | 'pub' | 'tokens' | 'cert' | 'tlsKey', string>;
let token: string;
let receiver: { child: ResultPromise; logs: string[] } | undefined;
let mounted: string | undefined;

const kubectl = (...args: string[]) => execa(kubeBinary('kubectl'), ['--kubeconfig', cluster.kubeconfigPath, ...args]);
const inRoot = (path: string) => path.slice(rootfs().length);
const openssl = (...args: string[]) => execa('chroot', [rootfs(), 'openssl', ...args], { reject: false });

/** The receiver on `listenPort`: the API server's audit webhook sends to `port`. */
async function startReceiver(logDir: string, extra: string[] = [], listenPort = port): Promise<void> {
  const child = execa(process.execPath, [MAIN, 'audit', 'serve', '--dir', logDir, '--key', files.key, '--token-file', files.tokens,
    '--tls-certificate', files.cert, '--tls-key', files.tlsKey, '--listen', `127.0.0.1:${listenPort}`,
    '--metrics-address', '127.0.0.1', '--metrics-port', String(metricsPort), '--checkpoint-interval', '1s', ...extra], { reject: false });
  const logs: string[] = [];
  child.stderr!.on('data', (chunk: Buffer) => logs.push(...chunk.toString().split('\n').filter(Boolean)));
  receiver = { child, logs };
  await eventually(async () => ((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok ? true : undefined), 15_000, 'audit receiver ready');
}

async function stopReceiver(): Promise<void> {
  if (!receiver) return;
  const { child, logs } = receiver;
  receiver = undefined;
  child.kill('SIGTERM');
  const result = await child;
  if (result.exitCode !== 0) throw new Error(`qubesec audit serve exited with ${result.exitCode}: ${logs.slice(-10).join('\n')}`);
}

/** Every line of a log, segment after segment, with its file and 0-based line number. */
async function logLines(logDir: string): Promise<{ segment: string; lineIndex: number; text: string }[]> {
  const segments = (await readdir(logDir)).filter((name) => name.startsWith('segment-')).sort();
  const lines = [];
  for (const segment of segments) {
    const texts = (await readFile(join(logDir, segment), 'utf8')).split('\n').filter(Boolean);
    lines.push(...texts.map((text, lineIndex) => ({ segment, lineIndex, text })));
  }
  return lines;
}

const receiverMetrics = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();

/** The events of `audit show` as JSON. */
async function shown(logDir: string, ...filters: string[]): Promise<{ record: number; event: { verb: string; objectRef?: { name?: string }; user: { username: string }; stage: string } }[]> {
  const result = await qubesec('audit', 'show', logDir, '--output', 'json', ...filters);
  if (result.exitCode !== 0) throw new Error(`audit show: ${result.stderr}`);
  return result.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as never);
}

/** Every named ConfigMap's events have come in with the verbs given. */
async function waitForEvents(logDir: string, names: string[], verbs: string[]): Promise<void> {
  await eventually(async () => {
    const events = await shown(logDir, '--resource', 'configmaps', '--namespace', 'default');
    const seen = new Set(events.map((e) => `${e.event.objectRef?.name} ${e.event.verb}`));
    return names.every((n) => verbs.every((v) => seen.has(`${n} ${v}`))) ? true : undefined;
  }, 60_000, `audit events of ${names.join(', ')}`);
}

/** `audit verify` passes with every record under a checkpoint (the receiver signs one each second). */
async function waitVerified(logDir: string): Promise<string> {
  return eventually(async () => {
    const result = await qubesec('audit', 'verify', logDir, '--key', files.pub);
    if (result.exitCode !== 0) throw new Error(result.stdout + result.stderr);
    return result.stdout.includes('note:') ? undefined : result.stdout;
  }, 30_000, 'audit verify with no unsigned record');
}

beforeAll(async () => {
  // Inside the rootfs, so its OpenSSL reads and writes the same files.
  dir = await mkdtemp(join(rootfs(), 'tmp', 'qubesec-audit-e2e-'));
  files = { key: join(dir, 'audit.key'), pub: join(dir, 'audit.pub'), tokens: join(dir, 'tokens'), cert: join(dir, 'tls.crt'), tlsKey: join(dir, 'tls.key') };
  for (const args of [['genpkey', '-algorithm', 'ML-DSA-65', '-out', inRoot(files.key)], ['pkey', '-in', inRoot(files.key), '-pubout', '-out', inRoot(files.pub)]]) {
    const result = await openssl(...args);
    if (result.exitCode !== 0) throw new Error(`openssl ${args[0]}: ${result.stderr}`);
  }
  token = randomBytes(24).toString('base64url');
  await writeFile(files.tokens, `${token}\n`);
  // Go's TLS client in the API server verifies ECDSA, not yet ML-DSA; the key exchange is the hybrid X25519MLKEM768.
  const pair = await selfSignedPair('ecdsa-p256', 'qubesec-audit', ['localhost'], 2);
  await writeFile(files.cert, pair.certificatePem);
  await writeFile(files.tlsKey, pair.keyPem);
  port = await freePort();
  metricsPort = await freePort();

  // As docs/signatures.md shows: the webhook kubeconfig, and a policy that keeps ConfigMap requests with their bodies.
  const webhookConfigFile = join(dir, 'audit-webhook.kubeconfig');
  await writeFile(webhookConfigFile, stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'audit',
    clusters: [{ name: 'qubesec-audit', cluster: { server: `https://localhost:${port}${AUDIT_PATH}`, 'certificate-authority-data': Buffer.from(pair.certificatePem).toString('base64') } }],
    users: [{ name: 'kube-apiserver', user: { token } }],
    contexts: [{ name: 'audit', context: { cluster: 'qubesec-audit', user: 'kube-apiserver' } }],
  }));
  const policyFile = join(dir, 'audit-policy.yaml');
  await writeFile(policyFile, stringify({
    apiVersion: 'audit.k8s.io/v1', kind: 'Policy', omitStages: ['RequestReceived'],
    rules: [
      // The API server's own requests (its identity Lease every 10 s) would come in while the test restarts the receiver.
      { level: 'None', users: ['system:apiserver'] },
      { level: 'Request', resources: [{ group: '', resources: ['configmaps'] }] },
      { level: 'Metadata' },
    ],
  }));
  cluster = await startCluster(undefined, { policyFile, webhookConfigFile });
  // Segments of 4 KiB: a checkpoint alone fills one, so the e2e log spans several and verify crosses their seams.
  await startReceiver(join(dir, 'log'), ['--segment-size', '4Ki']);
});

afterAll(async () => {
  await stopReceiver().catch(() => undefined);
  await cluster?.stop();
  if (mounted) await execa('umount', [mounted]);
  await rm(dir, { recursive: true, force: true });
});

describe('the audit trail on a real API server', () => {
  const logDir = () => join(dir, 'log');

  it('appends the events of kubectl create, update and delete; verify proves the log and OpenSSL verifies a checkpoint', async () => {
    await kubectl('create', 'configmap', 'audited', '--from-literal=colour=blue');
    await kubectl('patch', 'configmap', 'audited', '-p', '{"data":{"colour":"green"}}');
    await kubectl('delete', 'configmap', 'audited');
    await waitForEvents(logDir(), ['audited'], ['create', 'patch', 'delete']);

    const created = await shown(logDir(), '--user', 'admin', '--verb', 'create', '--resource', 'configmaps');
    expect(created.map((e) => [e.event.objectRef?.name, e.event.user.username, e.event.stage])).toEqual([['audited', 'admin', 'ResponseComplete']]);
    const text = await qubesec('audit', 'show', logDir(), '--verb', 'delete', '--namespace', 'default', '--since', '10m');
    expect(text.stdout).toMatch(/ResponseComplete admin delete configmaps default\/audited 200 /);

    const verified = await waitVerified(logDir());
    const [, segments] = /^OK: \d+ records in (\d+) segments, \d+ checkpoints signed by the ML-DSA-65 key/.exec(verified)!;
    expect(Number(segments)).toBeGreaterThanOrEqual(2);

    // The last checkpoint's signature, checked by OpenSSL on its own: signed-note text, ML-DSA-65 over it.
    const last = parseLine((await logLines(logDir())).filter((l) => l.text.startsWith('{"checkpoint"')).at(-1)!.text) as { note: string };
    const split = last.note.lastIndexOf('\n\n');
    const signature = Buffer.from(last.note.slice(split + 2).trim().split(' ').at(-1)!, 'base64').subarray(4);
    await writeFile(join(dir, 'note.txt'), last.note.slice(0, split + 1));
    await writeFile(join(dir, 'note.sig'), signature);
    const checked = await openssl('pkeyutl', '-verify', '-pubin', '-inkey', inRoot(files.pub), '-rawin', '-in', inRoot(join(dir, 'note.txt')), '-sigfile', inRoot(join(dir, 'note.sig')));
    expect(checked.stdout.trim()).toBe('Signature Verified Successfully');

    const metrics = await receiverMetrics();
    expect(metricValue(metrics, 'qubesec_audit_events_appended_total')).toBeGreaterThanOrEqual(3);
    expect(metricValue(metrics, 'qubesec_audit_tree_size')).toBe(Number(/^OK: (\d+) records/.exec(verified)![1]));
    expect(metricValue(metrics, 'qubesec_audit_checkpoints_total')).toBeGreaterThanOrEqual(1);
    expect(metricValue(metrics, 'qubesec_audit_dropped_batches_total')).toBe(0);
  });

  it('serves the hybrid key exchange, and takes batches only with the token, at its path', async () => {
    expect((await tlsSession('localhost', port, {})).group).toBe('X25519MLKEM768');
    const ca = await readFile(files.cert, 'utf8');
    const post = (path: string, headers: Record<string, string>) => nodeHttps(`https://127.0.0.1:${port}${path}`,
      { method: 'POST', ca, servername: 'localhost', headers }, JSON.stringify({ apiVersion: 'audit.k8s.io/v1', kind: 'EventList', items: [] }));
    expect((await post(AUDIT_PATH, {})).status).toBe(401);
    expect((await post(AUDIT_PATH, { Authorization: 'Bearer not-the-token' })).status).toBe(401);
    expect((await post('/audit', { Authorization: `Bearer ${token}` })).status).toBe(404);
    expect(await post(AUDIT_PATH, { Authorization: `Bearer ${token}` })).toMatchObject({ status: 200, body: 'appended 0 events\n' });
    expect(metricValue(await receiverMetrics(), 'qubesec_audit_dropped_batches_total')).toBe(0);
  });

  it('fails verification on one byte changed in the middle of the log, naming the segment, line and record', async () => {
    const copy = join(dir, 'tampered');
    await cp(logDir(), copy, { recursive: true });
    const records = (await logLines(copy)).filter((l) => l.text.startsWith('{"index":'));
    const { segment, lineIndex, text } = records[Math.floor(records.length / 2)]!;
    const record = (parseLine(text) as { index: number }).index;
    const path = join(copy, segment);
    const lines = (await readFile(path, 'utf8')).split('\n');
    // One byte of the event's auditID (a hex digit or a dash) becomes another.
    const at = text.indexOf('"auditID":"') + 12;
    lines[lineIndex] = `${text.slice(0, at)}${text[at] === 'a' ? 'b' : 'a'}${text.slice(at + 1)}`;
    await writeFile(path, lines.join('\n'));

    const result = await qubesec('audit', 'verify', copy, '--key', files.pub);
    expect(result.exitCode).toBe(1);
    expect(result.stdout.trim()).toBe(`FAILED: ${copy}/${segment} line ${lineIndex + 1} (record ${record}): its event does not match its leaf hash: the event (or the hash) was changed`);
    expect((await qubesec('audit', 'verify', logDir(), '--key', files.pub)).exitCode).toBe(0);
    // A checkpoint saved elsewhere catches the log cut back to an earlier one, which verifies on its own.
    const saved = join(dir, 'saved.note');
    const save = await qubesec('audit', 'verify', logDir(), '--key', files.pub, '--save-checkpoint', saved);
    expect([save.exitCode, save.stdout]).toEqual([0, expect.stringContaining(`saved the last checkpoint to ${saved}`)]);
    const withSaved = await qubesec('audit', 'verify', logDir(), '--key', files.pub, '--checkpoint', saved);
    expect([withSaved.exitCode, withSaved.stdout]).toEqual([0, expect.stringMatching(/the log extends the saved checkpoint of \d+ records/)]);
    // Cut back: the last segment deleted; the one before ends with the checkpoint that sealed it.
    const cut = join(dir, 'cut');
    await cp(logDir(), cut, { recursive: true });
    const segments = (await readdir(cut)).filter((name) => name.startsWith('segment-')).sort();
    await rm(join(cut, segments.at(-1)!));
    expect((await qubesec('audit', 'verify', cut, '--key', files.pub)).exitCode).toBe(0);
    const caught = await qubesec('audit', 'verify', cut, '--key', files.pub, '--checkpoint', saved);
    expect([caught.exitCode, caught.stdout]).toEqual([1, expect.stringMatching(/records were removed from its end$/m)]);

    // Usage and input errors are exit code 2, as for qubesec verify.
    for (const args of [[logDir()], [join(dir, 'nowhere'), '--key', files.pub], [logDir(), '--key', files.key], [logDir(), '--key', join(dir, 'nowhere.pub')]]) {
      expect([args, (await qubesec('audit', 'verify', ...args)).exitCode]).toEqual([args, 2]);
    }
  });

  it('answers 503 while the disk is full, the API server retries, and the batches land once there is room: nothing dropped', async () => {
    // A fresh log on a 1 MiB tmpfs, filled to the last byte by another file: ENOSPC from the first batch.
    await stopReceiver();
    const full = join(dir, 'full');
    await mkdir(full);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', full]);
    mounted = full;
    await startReceiver(join(full, 'log'));
    const filler = join(full, 'filler');
    const { bavail, bsize } = await statfs(full);
    await writeFile(filler, Buffer.alloc(bavail * bsize));

    const names = ['full-0', 'full-1', 'full-2'];
    for (const name of names) await kubectl('create', 'configmap', name, `--from-literal=payload=${'x'.repeat(2000)}`);
    const refusedTwice = await eventually(async () => {
      const refused = receiver!.logs.map((l) => JSON.parse(l) as { msg: string; firstAuditID?: string }).filter((l) => l.msg.startsWith('audit batch refused: the store is full'));
      const ids = refused.map((l) => l.firstAuditID);
      return ids.find((id, i) => ids.indexOf(id) !== i);
    }, 30_000, 'the same batch refused twice (the API server retried it)');
    expect(refusedTwice).toEqual(expect.any(String));
    const metrics = await receiverMetrics();
    expect(Number(/^qubesec_audit_refused_batches_total\{reason="full"\} (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
    expect(metricValue(metrics, 'qubesec_audit_dropped_batches_total')).toBe(0);

    // Room again, as when an operator grows or cleans the volume: the retried batches are appended.
    await unlink(filler);
    await waitForEvents(join(full, 'log'), names, ['create']);
    const verified = await waitVerified(join(full, 'log'));
    expect(verified).toMatch(/^OK: /);
    expect((await shown(join(full, 'log'))).some((e) => JSON.stringify(e).includes(refusedTwice))).toBe(true);
    expect(metricValue(await receiverMetrics(), 'qubesec_audit_dropped_batches_total')).toBe(0);

    // The API server gave up on no batch (it counts those it drops after its retries, or could not send).
    const apiMetrics = await execa('curl', ['-sk', '-H', `Authorization: Bearer ${cluster.token}`, `${cluster.server}/metrics`]);
    expect(/^apiserver_audit_error_total\{plugin="webhook"\} (\S+)$/m.exec(apiMetrics.stdout)?.[1] ?? '0').toBe('0');
    expect(Number(/^apiserver_audit_event_total (\S+)$/m.exec(apiMetrics.stdout)?.[1])).toBeGreaterThan(0);
    await stopReceiver();
    expect(await readdir(join(full, 'log'))).toEqual([segmentName(1)]);
  });

  it('answers 429 while --max-pending-batches wait for the writer, and has every batch it acknowledged', async () => {
    await stopReceiver();
    const busyLog = join(dir, 'busy');
    // On a port of its own: the API server's batches would add records to the count below.
    const busyPort = await freePort();
    await startReceiver(busyLog, ['--max-pending-batches', '1'], busyPort);
    const ca = await readFile(files.cert, 'utf8');
    const items = Array.from({ length: 400 }, (_, i) => ({ auditID: `busy-${i}`, verb: 'get', stage: 'ResponseComplete', objectRef: { resource: 'pods', namespace: 'busy' } }));
    const body = JSON.stringify({ apiVersion: 'audit.k8s.io/v1', kind: 'EventList', items });
    const options = { method: 'POST', ca, servername: 'localhost', headers: { Authorization: `Bearer ${token}` } };
    const replies = await Promise.all(Array.from({ length: 12 }, () => nodeHttps(`https://127.0.0.1:${busyPort}${AUDIT_PATH}`, options, body)));
    const statuses = replies.map((r) => r.status);
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(replies.find((r) => r.status === 429)!.rawHeaders).toEqual(expect.arrayContaining(['Retry-After', '1']));
    const metrics = await receiverMetrics();
    expect(Number(/^qubesec_audit_refused_batches_total\{reason="busy"\} (\S+)$/m.exec(metrics)?.[1])).toBe(statuses.filter((s) => s === 429).length);
    expect(metricValue(metrics, 'qubesec_audit_dropped_batches_total')).toBe(0);
    await stopReceiver();
    const verified = await qubesec('audit', 'verify', busyLog, '--key', files.pub);
    expect([verified.exitCode, verified.stdout]).toEqual([0, expect.stringContaining(`OK: ${400 * statuses.filter((s) => s === 200).length} records`)]);
  });
});
