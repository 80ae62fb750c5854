// `qubesec audit serve | verify | show`: the receiver of the API server's audit webhook, the proof that its log is
// intact, and a filtered listing of its events. docs/signatures.md#the-audit-trail describes the format.
import { readFile, writeFile } from 'node:fs/promises';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ParseArgsConfig } from 'node:util';
import { UsageError, parseCommandLine } from '../../cli/check.js';
import { untilSignal } from '../../cli/signals.js';
import { EXIT } from '../../cli/signatures.js';
import { byteSize, duration, integer, ipAddress, list, listenAddress, oneOf, optional, parseFlagSet, text, usage, type FlagParser } from '../../config.js';
import { createLogger, type Level } from '../../observability/log.js';
import { createAuditMetrics } from '../../observability/metrics.js';
import { serveObservability } from '../../observability/server.js';
import { KeyError, type PublicKey } from '../algorithms.js';
import { loadSigningKey } from '../keys.js';
import { trustAnchorsFrom } from '../trust.js';
import { openCheckpoint } from './checkpoint.js';
import { formatEvent, matches, parseTime, type AuditEvent, type EventFilter } from './filter.js';
import { serveAuditReceiver } from './receiver.js';
import { describeProblem, scanLog } from './scan.js';
import { openStore } from './store.js';

const USAGE = `qubesec audit serve --dir DIR --key KEY.pem --token-file F --tls-certificate F --tls-key F [flags]   (serve --help lists them)
qubesec audit verify DIR --key PUB.pem [--key OLD.pem] [--checkpoint NOTE] [--save-checkpoint NOTE]
qubesec audit show DIR [--user U] [--verb V] [--resource R] [--namespace N] [--since T] [--until T] [--output json|text]
exit codes (as qubesec verify): 0 ok, 1 verification failed (or show met a damaged line), 2 usage or input error`;

const required: FlagParser<string> = (raw) => {
  if (raw === '') throw new Error('is required');
  return raw;
};

/** A signed-note key name: not empty, no space, no +. */
const origin: FlagParser<string> = (raw) => {
  if (raw === '' || /\s|\+/.test(raw)) throw new Error('is not a key name (a schema-less URL such as example.com/audit: no space, no +)');
  return raw;
};

/** The flags of `qubesec audit serve`; docs/flags.md has a row for each (controller/docs.test.ts). */
export const AUDIT_SERVE_FLAGS = {
  dir: { type: 'string', default: '', parse: required, description: 'folder of the log (segment files), on a PersistentVolume with one writer: this receiver' },
  key: { type: 'string', default: '', parse: required, description: 'private key (PKCS#8 PEM, as openssl genpkey -algorithm ML-DSA-65 writes it) that signs the checkpoints: ML-DSA-65 recommended, any algorithm of qubesec sign accepted' },
  origin: { type: 'string', default: 'qubesec.io/audit', parse: origin, description: 'the checkpoints\' origin line and signature key name: a schema-less URL naming this log, unique per cluster' },
  listen: { type: 'string', default: ':8443', parse: listenAddress, description: 'HTTPS address of the webhook: :port, ip:port or [ipv6]:port' },
  'tls-certificate': { type: 'string', default: '', parse: list(text), description: 'PEM certificate file(s) the receiver serves, comma-separated for several key types; the API server (Go) verifies ECDSA or RSA, not yet ML-DSA' },
  'tls-key': { type: 'string', default: '', parse: list(text), description: 'PEM private key file(s), in the order of --tls-certificate' },
  'token-file': { type: 'string', default: '', parse: required, description: 'file of accepted bearer tokens, one per line (the token of the API server\'s webhook kubeconfig; two during a rotation)' },
  'checkpoint-events': { type: 'string', default: '1000', parse: integer(1, 1_000_000), description: 'a checkpoint is signed after this many records (1-1000000) since the last one' },
  'checkpoint-interval': { type: 'string', default: '10s', parse: duration(['s', 'm', 'h'], '24h'), description: 'and at least this often while records come in (s, m or h, at most 24h); also when a segment is sealed and at shutdown' },
  'segment-size': { type: 'string', default: '64Mi', parse: byteSize(16 * 2 ** 30), description: 'a segment file is sealed with a checkpoint and the next one started before it would pass this size (Ki, Mi, Gi; at most 16Gi)' },
  'max-size': { type: 'string', default: '', parse: optional(byteSize(2 ** 50)), description: 'batches that would take the log past this size are refused with 503 (the API server retries); empty: the disk\'s size (ENOSPC is answered the same way)' },
  'max-pending-batches': { type: 'string', default: '16', parse: integer(1, 1024), description: 'batches being received or waiting for the writer (1-1024) beyond which new ones get 429 (the API server retries); each is held in memory, up to 64 MiB' },
  'metrics-address': { type: 'string', default: '0.0.0.0', parse: ipAddress, description: 'IPv4 or IPv6 address of the receiver\'s /metrics, /healthz and /readyz' },
  'metrics-port': { type: 'string', default: '10254', parse: integer(0, 65535), description: 'port of the receiver\'s /metrics, /healthz and /readyz (0: any free port)' },
  'log-level': { type: 'string', default: 'info', parse: oneOf<Level>(['debug', 'info', 'warn', 'error']), description: 'debug, info, warn or error' },
  help: { type: 'boolean', default: false, description: 'print the flags' },
} as const;

/** The options of `qubesec audit verify`; docs/signatures.md has a row for each. */
export const AUDIT_VERIFY_OPTIONS = {
  key: { type: 'string', multiple: true, default: [] as string[] },
  checkpoint: { type: 'string' },
  'save-checkpoint': { type: 'string' },
} satisfies ParseArgsConfig['options'];

/** The options of `qubesec audit show`; docs/signatures.md has a row for each. */
export const AUDIT_SHOW_OPTIONS = {
  user: { type: 'string' },
  verb: { type: 'string' },
  resource: { type: 'string' },
  namespace: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  output: { type: 'string', default: 'text' },
} satisfies ParseArgsConfig['options'];

export async function runAudit(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': return serve(rest);
    case 'verify': return verifyCommand(rest);
    case 'show': return show(rest);
    default: throw new UsageError(USAGE);
  }
}


async function readInput(path: string, flag: string): Promise<string> {
  return readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(`${flag} ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
}

async function serve(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    console.log(`qubesec audit serve [flags]\n${usage(AUDIT_SERVE_FLAGS)}`);
    return EXIT.ok;
  }
  let flags;
  try {
    flags = parseFlagSet(AUDIT_SERVE_FLAGS, argv);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const certificates = flags['tls-certificate'];
  if (certificates.length === 0 || certificates.length !== flags['tls-key'].length) {
    throw new UsageError(`flag --tls-certificate and --tls-key: give as many keys as certificates, at least one (got ${certificates.length} and ${flags['tls-key'].length})`);
  }
  const pem = await readInput(flags.key, '--key');
  const signer = keyOrUsage(() => loadSigningKey(pem, `--key ${flags.key}`));
  const tokens = (await readInput(flags['token-file'], '--token-file')).split('\n').map((t) => t.trim()).filter(Boolean);
  if (tokens.length === 0) throw new UsageError(`--token-file ${flags['token-file']}: holds no token`);
  const keyPairs = await Promise.all(certificates.map(async (certificate, i) => ({
    certificatePem: await readInput(certificate, '--tls-certificate'),
    keyPem: await readInput(flags['tls-key'][i]!, '--tls-key'),
  })));

  const log = createLogger(flags['log-level'], { component: 'audit' });
  const metrics = createAuditMetrics();
  const store = await openStore({
    dir: flags.dir, signer, origin: flags.origin, segmentBytes: flags['segment-size'], maxBytes: flags['max-size'],
    checkpointEvents: flags['checkpoint-events'], checkpointIntervalMs: flags['checkpoint-interval'], log, metrics,
  });
  let receiver: Server | undefined;
  try {
    receiver = await serveAuditReceiver({ ...flags.listen, keyPairs, tokens, maxPendingBatches: flags['max-pending-batches'] }, store, metrics, log);
    const observability = await serveObservability(metrics, flags['metrics-address'], flags['metrics-port'], () => true);
    log.info('audit receiver serving', {
      port: (receiver.address() as AddressInfo).port, metricsPort: (observability.address() as AddressInfo).port,
      keyAlgorithm: signer.algorithm, origin: flags.origin,
    });
    await untilSignal();
    observability.close();
  } finally {
    // In-flight batches finish (each gets its answer) before the last checkpoint seals the log.
    if (receiver) {
      const closed = new Promise((resolve) => receiver!.close(resolve));
      receiver.closeIdleConnections();
      await closed;
    }
    await store.close();
    log.info('audit receiver stopped', { records: store.size });
  }
  return EXIT.ok;
}

/** A bad key file is a usage error (exit 2), as for qubesec verify. */
function keyOrUsage<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof KeyError) throw new UsageError(err.message);
    throw err;
  }
}

async function verifyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, AUDIT_VERIFY_OPTIONS, USAGE);
  if (positionals.length !== 1 || values.key.length === 0) throw new UsageError(USAGE);
  const dir = positionals[0]!;
  const sources = await Promise.all(values.key.map(async (path) => ({ name: `--key ${path}`, pem: await readInput(path, '--key') })));
  const keys: PublicKey[] = [...keyOrUsage(() => trustAnchorsFrom(sources)).keys.values()].map((k) => k.publicKey);
  let witness;
  if (values.checkpoint) {
    try {
      witness = openCheckpoint(await readInput(values.checkpoint, '--checkpoint'), keys);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      console.log(`FAILED: --checkpoint ${values.checkpoint}: ${(err as Error).message}`);
      return EXIT.verificationFailed;
    }
  }
  const result = await scanLog(dir, { keys, witness }).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(`${dir}: ${err.code === 'ENOENT' ? 'no such folder' : err.message}`);
  });
  if (result.problem) {
    console.log(`FAILED: ${dir}/${describeProblem(result.problem)}`);
    return EXIT.verificationFailed;
  }
  if (result.tornTail) {
    console.log(`FAILED: ${dir}/${result.tornTail.segment}: its last line is cut short after byte ${result.tornTail.bytes} (a write that did not complete was never acknowledged; the receiver removes it when it starts)`);
    return EXIT.verificationFailed;
  }
  const { tree, lastCheckpoint } = result;
  if (!lastCheckpoint) {
    console.log(`FAILED: ${dir}: ${result.segments.length === 0 ? 'no segment files' : `${tree.size} records and no checkpoint: nothing is signed yet`}`);
    return EXIT.verificationFailed;
  }
  console.log(`OK: ${tree.size} records in ${result.segments.length} segments, ${result.checkpoints} checkpoints signed by ${keys.map((k) => `the ${k.algorithm} key ${k.keyId}`).join(' or ')}`);
  console.log(`last checkpoint: origin ${lastCheckpoint.origin}, ${lastCheckpoint.size} records, root ${lastCheckpoint.root.toString('base64')}`);
  if (witness) console.log(`the log extends the saved checkpoint of ${witness.size} records`);
  if (values['save-checkpoint']) {
    await writeFile(values['save-checkpoint'], result.lastNote!);
    console.log(`saved the last checkpoint to ${values['save-checkpoint']}`);
  }
  if (tree.size > lastCheckpoint.size) {
    console.log(`note: records ${lastCheckpoint.size} to ${tree.size - 1} came after the last checkpoint: their leaf hashes match, but no signature covers them yet, so their removal would go unnoticed`);
  }
  return EXIT.ok;
}

async function show(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, AUDIT_SHOW_OPTIONS, USAGE);
  if (positionals.length !== 1) throw new UsageError(USAGE);
  if (values.output !== 'text' && values.output !== 'json') throw new UsageError(`--output: ${JSON.stringify(values.output)} is not json or text`);
  const now = Date.now();
  const time = (flag: 'since' | 'until') => {
    const raw = values[flag];
    if (raw === undefined) return undefined;
    try {
      return parseTime(flag, raw, now);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
  const filter: EventFilter = { user: values.user, verb: values.verb, resource: values.resource, namespace: values.namespace, since: time('since'), until: time('until') };
  const json = values.output === 'json';
  const dir = positionals[0]!;
  const result = await scanLog(dir, {
    onRecord(index, eventText) {
      const event = JSON.parse(eventText) as AuditEvent;
      if (!matches(filter, event)) return;
      process.stdout.write(`${json ? JSON.stringify({ record: index, event }) : `${index} ${formatEvent(event)}`}\n`);
    },
  }).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(`${dir}: ${err.code === 'ENOENT' ? 'no such folder' : err.message}`);
  });
  if (result.problem) {
    console.error(`qubesec audit show: stopped at ${dir}/${describeProblem(result.problem)} (qubesec audit verify checks the whole log)`);
    return EXIT.verificationFailed;
  }
  return EXIT.ok;
}
