// `qubesec vpn run`: the VPN gateway controller (charon under it, configured from VpnGateway and VpnPeer resources in
// a cluster, or with --manifests from a folder of their manifests: no Kubernetes, for edge sites and hosts).
// `qubesec vpn client-config NAME --out DIR`: a remote-access user's strongSwan profile (swanctl.conf, certificates, key).
import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { randomBytes } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { duration, entropySourceFromFlags, httpsUrl } from '../config.js';
import { LeaderElector, type LeaderTerm } from '../leader/elector.js';
import { electionTimings } from '../leader/lease.js';
import { createLogger, type Level, type Logger } from '../observability/log.js';
import { OPENSSL_KEY_MATERIAL } from '../pki/key-material.js';
import { createMetrics } from '../observability/metrics.js';
import { serveObservability } from '../observability/server.js';
import { FilesSource, LogEventRecorder } from '../sources/files.js';
import { KubernetesEventRecorder, loadKubeConfig } from '../sources/kubernetes.js';
import { VpnController } from '../vpn/controller.js';
import { GROUP, VERSION, readCredential, translateVpn, type VpnGatewayResource, type VpnPeerResource } from '../vpn/model.js';
import { renderClientProfile } from '../vpn/render.js';
import { KubernetesStatusWriter, KubernetesVpnSource, LogStatusWriter, VPN_KINDS, type VpnSnapshot } from '../vpn/sources.js';
import { UsageError, parseCommandLine } from './check.js';
import { untilSignal } from './signals.js';

const USAGE = `qubesec vpn run --namespace NS --gateway NAME [--kubeconfig F] [--root DIR] [--netns NAME] [--state-dir DIR] [--libipsec] [--debounce-ms N] [--status-interval-ms N] [--log-level L] [--metrics-address A] [--metrics-port N] [--entropy-source URL [--entropy-source-ca F] [--entropy-source-token-file F]] [--leader-election [--election-ttl D]]
qubesec vpn run --manifests DIR --gateway NAME [--namespace NS] [--status-file F] [the same runtime flags, no --leader-election]
qubesec vpn client-config NAME --namespace NS --out DIR [--kubeconfig F | --manifests DIR]`;

/** The namespace manifests without one are in (as the files source fills it in, and kubectl would). */
const MANIFESTS_NAMESPACE = 'default';

/** The flags of `qubesec vpn`; docs/vpn.md has a row for each (controller/docs.test.ts). */
export const VPN_OPTIONS = {
  kubeconfig: { type: 'string', default: '' },
  manifests: { type: 'string', default: '' },
  'status-file': { type: 'string', default: '' },
  namespace: { type: 'string', default: '' },
  gateway: { type: 'string', default: '' },
  root: { type: 'string', default: '' },
  netns: { type: 'string', default: '' },
  'state-dir': { type: 'string', default: '/run/qubesec-vpn' },
  libipsec: { type: 'boolean', default: false },
  'debounce-ms': { type: 'string', default: '500' },
  'status-interval-ms': { type: 'string', default: '5000' },
  'log-level': { type: 'string', default: 'info' },
  'metrics-address': { type: 'string', default: '0.0.0.0' },
  'metrics-port': { type: 'string', default: '10256' },
  out: { type: 'string', default: '' },
  'entropy-source': { type: 'string', default: '' },
  'entropy-source-ca': { type: 'string', default: '' },
  'entropy-source-token-file': { type: 'string', default: '' },
  'leader-election': { type: 'boolean', default: false },
  'election-ttl': { type: 'string', default: '15s' },
  help: { type: 'boolean', default: false },
} satisfies ParseArgsConfig['options'];

function positiveInteger(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${flag}: ${JSON.stringify(value)} is not a positive whole number`);
  return n;
}

export async function runVpn(argv: string[]): Promise<number> {
  const [command = '', ...rest] = argv;
  const { values, positionals } = parseCommandLine(rest, VPN_OPTIONS, USAGE);
  if (values.help || command === '--help') {
    console.log(USAGE);
    return 0;
  }
  if (values.manifests && values.kubeconfig) throw new UsageError(`--manifests and --kubeconfig exclude each other: the objects come from a folder or from a cluster\n${USAGE}`);
  if (values['status-file'] && !values.manifests) throw new UsageError(`--status-file is for --manifests (in a cluster, status goes to the objects)\n${USAGE}`);
  const namespace = values.namespace || (values.manifests ? MANIFESTS_NAMESPACE : '');
  if (!namespace) throw new UsageError(`--namespace is required\n${USAGE}`);
  if (command === 'run') {
    if (!values.gateway || positionals.length > 0) throw new UsageError(`vpn run needs --gateway NAME and no other argument\n${USAGE}`);
    const level = values['log-level'] as Level;
    if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new UsageError(`--log-level: ${JSON.stringify(level)} is not debug, info, warn or error`);
    const log = createLogger(level, { component: 'vpn' });
    const metrics = createMetrics();
    const metricsPort = positiveInteger(values['metrics-port'], 'metrics-port');
    if (metricsPort > 65535) throw new UsageError(`--metrics-port: ${metricsPort} is not a port number`);
    let electionTtlMs: number;
    try {
      electionTtlMs = parseElectionTtl(values['election-ttl']);
    } catch (err) {
      throw new UsageError(`--election-ttl: ${JSON.stringify(values['election-ttl'])} ${(err as Error).message}`);
    }
    if (values.manifests && values['leader-election']) throw new UsageError(`--leader-election needs a cluster (a Lease), not --manifests\n${USAGE}`);
    const entropySource = await entropySourceOf(values);
    if (entropySource) log.info('generated PPKs come from the QRNG service', { url: values['entropy-source'] });
    const kc: KubeConfig | undefined = values.manifests ? undefined : loadKubeConfig(values.kubeconfig);
    const options = {
      namespace,
      gateway: values.gateway,
      runtime: { root: values.root, netns: values.netns, stateDir: values['state-dir'], libipsec: values.libipsec },
      debounceMs: positiveInteger(values['debounce-ms'], 'debounce-ms'),
      statusIntervalMs: positiveInteger(values['status-interval-ms'], 'status-interval-ms'),
      keyMaterial: entropySource ?? OPENSSL_KEY_MATERIAL,
      writePpkSecret: kc && ppkSecretWriter(kc, namespace),
    };
    let controller: VpnController;
    if (!kc) {
      // Standalone: no API server, so Events and status become log lines (status also in --status-file).
      const source = new FilesSource(resolve(values.manifests), log.child({ component: 'files' }), VPN_KINDS);
      controller = new VpnController(source, new LogStatusWriter(log, values['status-file'] && resolve(values['status-file'])), options, new LogEventRecorder(log), metrics, log);
    } else {
      controller = new VpnController(new KubernetesVpnSource(kc, namespace, metrics, log), new KubernetesStatusWriter(kc), options, new KubernetesEventRecorder(kc, 'qubesec-vpn', hostname(), log), metrics, log);
    }
    const server = await serveObservability(metrics, values['metrics-address'], metricsPort, () => controller.ready);
    const exitCode = values['leader-election']
      ? await runWhileLeading(controller, (lead) => new LeaderElector(kc!, {
        namespace, name: `qubesec-vpn-${values.gateway}`, identity: `${hostname()}_${randomBytes(4).toString('hex')}`, ...electionTimings(electionTtlMs),
      }, lead, log.child({ component: 'leader' })), log)
      : await controller.start().then(untilSignal).then(() => 0);
    await controller.stop();
    await entropySource?.close();
    server.close();
    return exitCode;
  }
  if (command === 'client-config') {
    const [name, ...extra] = positionals;
    if (!name || extra.length > 0 || !values.out) throw new UsageError(`vpn client-config needs one VpnPeer NAME and --out DIR\n${USAGE}`);
    const snapshot = values.manifests ? await manifestsSnapshot(values.manifests) : await clusterSnapshot(values.kubeconfig, namespace);
    for (const [path, content] of clientProfile(snapshot, namespace, name)) {
      const target = join(values.out, path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, content, { mode: path === 'swanctl.conf' || path.startsWith('private/') ? 0o600 : 0o644 });
    }
    console.log(`wrote the profile of VpnPeer ${namespace}/${name} to ${values.out}: copy it to /etc/swanctl, then swanctl --load-all && swanctl --initiate --child qubesec-${name.replaceAll('.', '_')}`);
    return 0;
  }
  throw new UsageError(USAGE);
}

/** The Lease of a gateway's replicas is qubesec-vpn-NAME in its namespace (--election-ttl as the controller's). */
const parseElectionTtl = duration(['s', 'm'], '10m');

/**
 * --leader-election: one active gateway among the replicas. A standby starts no charon, writes nothing and is not
 * ready (a Service sends IKE only to the active one); the replica holding the Lease starts the controller (charon,
 * loads, status, PPK rotations). A replica that loses the Lease stops charon and exits 1, so it comes back as a
 * standby (its controller is not restartable, and two charons must never answer the same peers).
 */
async function runWhileLeading(controller: VpnController, electorFor: (lead: LeaderTerm) => LeaderElector, log: Logger): Promise<number> {
  let lost: () => void = () => undefined;
  const lostLease = new Promise<'lost'>((resolve) => (lost = () => resolve('lost')));
  let shuttingDown = false;
  const elector = electorFor(async () => {
    await controller.start().catch((err: unknown) => {
      lost();
      throw err;
    });
    return async () => {
      await controller.stop();
      if (!shuttingDown) lost();
    };
  });
  elector.start();
  const ended = await Promise.race([untilSignal().then(() => 'signal' as const), lostLease]);
  shuttingDown = true;
  await elector.stop();
  if (ended === 'signal') return 0;
  log.error('no longer the active gateway (the Lease is lost): charon stopped, exiting to come back as a standby');
  return 1;
}

/** --entropy-source as the controller reads it (an https URL; its CA and token files only with it), or undefined without it. */
async function entropySourceOf(values: Record<'entropy-source' | 'entropy-source-ca' | 'entropy-source-token-file', string>): Promise<Awaited<ReturnType<typeof entropySourceFromFlags>> | undefined> {
  if (!values['entropy-source']) {
    if (values['entropy-source-ca'] || values['entropy-source-token-file']) throw new UsageError('--entropy-source-ca and --entropy-source-token-file need --entropy-source');
    return undefined;
  }
  try {
    httpsUrl(values['entropy-source']);
  } catch (err) {
    throw new UsageError(`--entropy-source: ${JSON.stringify(values['entropy-source'])} ${(err as Error).message}`);
  }
  return entropySourceFromFlags(values);
}

/** Creates or replaces the gateway's generated PPK Secret through the API server. */
function ppkSecretWriter(kc: KubeConfig, namespace: string): (body: V1Secret, replace: boolean) => Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  return async (body, replace) => {
    if (replace) await core.replaceNamespacedSecret({ namespace, name: body.metadata!.name!, body });
    else await core.createNamespacedSecret({ namespace, body });
  };
}

/** The namespace's VpnGateways, VpnPeers and Secrets, read once from the API server. */
async function clusterSnapshot(kubeconfig: string, namespace: string): Promise<VpnSnapshot> {
  const kc = loadKubeConfig(kubeconfig);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const list = async <T>(plural: string) => ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural })) as { items: T[] }).items;
  return {
    vpnGateways: await list<VpnGatewayResource>('vpngateways'),
    vpnPeers: await list<VpnPeerResource>('vpnpeers'),
    secrets: (await kc.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace })).items,
  };
}

/** The folder's objects, read once as the gateway reads them. */
async function manifestsSnapshot(dir: string): Promise<VpnSnapshot> {
  const source = new FilesSource(resolve(dir), createLogger('warn', { component: 'files' }), VPN_KINDS);
  await source.start(() => undefined);
  await source.stop();
  return source.snapshot();
}

/** The peer's profile, rendered with the same checks the gateway runs, from its gateway and the namespace's Secrets. */
export function clientProfile(snapshot: VpnSnapshot, namespace: string, name: string): Map<string, string> {
  const peer = snapshot.vpnPeers.find((p) => p.metadata.namespace === namespace && p.metadata.name === name);
  if (!peer) throw new Error(`VpnPeer ${namespace}/${name} not found`);
  const gatewayName = peer.spec?.gateway ?? '';
  const gateway = snapshot.vpnGateways.find((g) => g.metadata.namespace === namespace && g.metadata.name === gatewayName);
  if (!gateway) throw new Error(`VpnPeer ${namespace}/${name}: spec.gateway names VpnGateway ${JSON.stringify(gatewayName)}, which does not exist`);
  const lookup = (ns: string, n: string) => snapshot.secrets.find((s) => s.metadata?.namespace === ns && s.metadata?.name === n);
  const now = new Date();
  const { model, diagnostics } = translateVpn(gateway, snapshot.vpnPeers, lookup, now);
  const problem = diagnostics.find((d) => d.object.kind === 'VpnGateway' || d.object.name === name);
  if (problem) throw new Error(`${problem.object.kind} ${namespace}/${problem.object.name}: ${problem.message}`);
  const peerModel = model!.peers.find((p) => p.ref.name === name)!;
  const certName = peer.spec?.remoteAccess?.certificateSecretName;
  if (!certName) throw new Error(`VpnPeer ${namespace}/${name}: spec.remoteAccess.certificateSecretName is required for a client profile`);
  let user;
  try {
    user = readCredential(lookup(namespace, certName), certName, 'spec.remoteAccess.certificateSecretName', now);
  } catch (err) {
    throw new Error(`VpnPeer ${namespace}/${name}: ${(err as Error).message}`, { cause: err });
  }
  return renderClientProfile(model!.gateway, peerModel, user);
}
