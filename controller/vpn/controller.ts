// The VPN gateway controller: follows one VpnGateway, the VpnPeers naming it and the Secrets of its namespace (from the
// API server or a folder of manifests: a Source of VpnSnapshot); once the source's first full view is in, translates
// them (pure), renders swanctl's files (pure), loads them into the charon it runs (never restarting it for a change),
// and reports: VpnPeer status from charon's SAs, Events for invalid resources, for proposals charon refused (a peer
// without ML-KEM at a strict gateway) and for classical SAs.
import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { Coalescer } from '../coalescer.js';
import type { Diagnostic } from '../model/types.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { KeyMaterial } from '../pki/key-material.js';
import { EntropyUnavailable } from '../qrng/errors.js';
import { errorText } from '../sources/reflector.js';
import type { EventRecorder, Source } from '../sources/source.js';
import { Charon, type CharonRuntime } from './charon.js';
import { ppkGeneration, translateVpn, type SecretLookup, type Translation, type VpnGatewayResource, type VpnPeerResource } from './model.js';
import { PPK_BYTES, readStoredPpks, rotatedPpkSecret, rotationDueInMs } from './ppk.js';
import { renderSwanctl } from './render.js';
import { statusKey, type VpnPlural, type VpnSnapshot, type VpnStatusWriter } from './sources.js';
import { createVpnMetrics, type VpnMetrics } from './metrics.js';
import { RefusalParser, isPostQuantum, parseSas, peerStatus, peerStatusWithoutGateway, type IkeSa, type PeerStatus } from './status.js';

/** The first 8 hex digits of a PPK's SHA-256, as the 'VPN configuration loaded' log line names it. */
export function ppkFingerprint(ppk: Buffer): string {
  return createHash('sha256').update(ppk).digest('hex').slice(0, 8);
}

/** What VpnGateway status holds: the loaded configuration, and Ready. */
interface GatewayStatus {
  pqMode?: string;
  keyExchange?: string;
  peers?: number;
  invalidPeers?: number;
  certificateNotAfter?: string;
  conditions: Condition[];
}

interface Condition {
  type: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
  lastTransitionTime?: string;
}

export interface VpnControllerOptions {
  namespace: string;
  gateway: string;
  runtime: CharonRuntime;
  debounceMs: number;
  /** How often charon's SAs are read into VpnPeer status. */
  statusIntervalMs: number;
  /** Where generated PPKs come from (--entropy-source: the QRNG service, failing closed; else OpenSSL's generator). */
  keyMaterial: KeyMaterial;
  /**
   * Creates (replace false) or replaces the generated PPK's Secret: the API server's, in a cluster. Undefined without
   * one (--manifests), where spec.ppk.generate is refused: a PPK must be kept where the peers' profiles are read from.
   */
  writePpkSecret?: (body: V1Secret, replace: boolean) => Promise<void>;
}

/** A PPK that could not be drawn or written is tried again after this long. */
const PPK_RETRY_MS = 5000;
/** Timers wait at most a day (setTimeout takes no more than 24.8 days); a later rotation is looked at again then. */
const MAX_TIMER_MS = 86_400_000;

export class VpnController {
  private readonly coalescer: Coalescer;
  private readonly charon: Charon;
  private readonly refusals = new RefusalParser();
  private readonly reported = new Set<string>();
  private translation: Translation | undefined;
  /**
   * Names of the VpnPeers `translation` was made from: status speaks of those only (the source may already hold a peer
   * the next sync translates; until then it would read as "not loaded").
   */
  private translatedPeers = new Set<string>();
  private loadedHash = '';
  private ports: { ikePort: number; natPort: number } | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private ppkTimer: NodeJS.Timeout | undefined;
  /** The status last written per object (statusKey), so an unchanged one is not written again. */
  private readonly written = new Map<string, { text: string; conditions: Condition[] }>();
  private readonly vpnMetrics: VpnMetrics;
  private synced = false;
  private stopped = false;

  constructor(
    private readonly source: Source<VpnSnapshot>,
    private readonly statusWriter: VpnStatusWriter,
    private readonly options: VpnControllerOptions,
    private readonly recorder: EventRecorder,
    metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.vpnMetrics = createVpnMetrics(metrics.registry);
    this.coalescer = new Coalescer(() => this.sync(), options.debounceMs, (err) => log.error('VPN sync failed', { error: err.stack ?? err.message }));
    this.charon = new Charon(options.runtime, log.child({ component: 'charon' }), (line) => this.charonLine(line), () => {
      this.loadedHash = '';
      // A crash restarts charon (its SAs are gone anyway); after a pause, so a charon that cannot start does not spin.
      setTimeout(() => this.coalescer.schedule(), 1000);
    });
  }

  /** Starts the source; the first sync runs once its first full view is in (nothing is loaded from a partial view). */
  async start(): Promise<void> {
    await this.source.start(() => this.coalescer.schedule());
    this.synced = true;
    await this.coalescer.runNow();
    this.statusTimer = setInterval(() => void this.updateStatus().catch((err: Error) => this.log.warn('VPN status update failed', { error: err.message })), this.options.statusIntervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.statusTimer);
    clearTimeout(this.ppkTimer);
    await this.coalescer.stop();
    await this.source.stop();
    await this.charon.stop();
  }

  /** Ready once charon runs with a configuration loaded (for /readyz). */
  get ready(): boolean {
    return this.loadedHash !== '' && this.charon.running;
  }

  private async sync(): Promise<void> {
    if (this.stopped || !this.synced) return;
    const { namespace, gateway: name } = this.options;
    const snapshot = this.source.snapshot();
    const gateway = snapshot.vpnGateways.find((g) => g.metadata.namespace === namespace && g.metadata.name === name);
    if (!gateway) {
      await this.unloadDeletedGateway();
      return;
    }
    const { secrets } = snapshot;
    const lookup: SecretLookup = (ns, n) => secrets.find((s) => s.metadata?.namespace === ns && s.metadata?.name === n);
    const ppk = await this.keepGeneratedPpk(gateway, lookup);
    // A written Secret comes back through its watch, which syncs again with it.
    if (ppk === 'written') return;
    if (ppk === 'unavailable') {
      await this.writeStatus('vpngateways', gateway, { conditions: [{ type: 'Ready', status: 'False', reason: 'EntropyUnavailable', message: 'spec.ppk.generate: no PPK could be drawn from the entropy source yet (see the EntropyUnavailable Event); nothing is loaded without it' }] });
      return;
    }
    const translation = translateVpn(gateway, snapshot.vpnPeers, lookup, new Date());
    this.translation = translation;
    this.translatedPeers = new Set(snapshot.vpnPeers.map((p) => p.metadata.name!));
    for (const d of translation.diagnostics) await this.report(d);
    const invalidPeers = translation.diagnostics.filter((d) => d.object.kind === 'VpnPeer').length;
    this.vpnMetrics.invalidPeers.set(invalidPeers);
    const model = translation.model;
    if (!model) {
      const problem = translation.diagnostics.find((d) => d.object.kind === 'VpnGateway')!;
      await this.writeStatus('vpngateways', gateway, { conditions: [{ type: 'Ready', status: 'False', reason: 'Invalid', message: `${problem.message}; charon keeps the configuration it had` }] });
      return;
    }
    const ports = { ikePort: model.gateway.ikePort, natPort: model.gateway.natPort };
    if (this.charon.running && this.ports && (this.ports.ikePort !== ports.ikePort || this.ports.natPort !== ports.natPort)) {
      // charon binds its ports at start (strongSwan's socket-dynamic plugin, which would not, is not in the packages):
      // the one change that restarts it.
      await this.report({ object: model.gateway.ref, type: 'Warning', reason: 'Restarting', message: `the listen ports change from ${this.ports.ikePort}/${this.ports.natPort} to ${ports.ikePort}/${ports.natPort}, which charon binds only at start: restarting charon, so every SA drops and peers connect again` }, true);
      await this.charon.stop();
    }
    if (!this.charon.running) {
      await this.charon.start(ports);
      this.ports = ports;
      this.loadedHash = '';
    }
    const files = renderSwanctl(model);
    const hash = createHash('sha256').update(JSON.stringify([...files])).digest('hex');
    const loadedStatus: GatewayStatus = {
      pqMode: model.gateway.pqMode,
      keyExchange: model.gateway.keyExchange,
      peers: model.peers.length,
      invalidPeers,
      certificateNotAfter: model.gateway.credential.notAfter.toISOString(),
      conditions: [{ type: 'Ready', status: 'True', reason: 'Loaded', message: `${model.peers.length} peers loaded into charon${invalidPeers ? `, ${invalidPeers} invalid (see their status)` : ''}` }],
    };
    // Nothing new to load (a peer became invalid, say, which renders nothing): the status still says so.
    if (hash === this.loadedHash) {
      await this.writeStatus('vpngateways', gateway, loadedStatus);
      return;
    }
    try {
      await this.charon.load(files);
      this.vpnMetrics.loads.inc({ result: 'ok' });
      this.loadedHash = hash;
      await this.writeStatus('vpngateways', gateway, loadedStatus);
      this.log.info('VPN configuration loaded', {
        gateway: `${namespace}/${name}`,
        peers: model.peers.map((p) => p.ref.name),
        pqMode: model.gateway.pqMode,
        certificateNotAfter: model.gateway.credential.notAfter.toISOString(),
        // Which PPK is current, for operators confirming a rotation: a short hash of a 256-bit secret reveals nothing.
        ppkFingerprint: model.gateway.ppk ? ppkFingerprint(Buffer.from(model.gateway.ppk.keys[0]!.hex, 'hex')) : undefined,
        ppkIds: model.gateway.ppk?.keys.map((k) => k.id),
      });
    } catch (err) {
      this.vpnMetrics.loads.inc({ result: 'failed' });
      await this.report({ object: model.gateway.ref, type: 'Warning', reason: 'LoadFailed', message: (err as Error).message });
      await this.writeStatus('vpngateways', gateway, { conditions: [{ type: 'Ready', status: 'False', reason: 'LoadFailed', message: (err as Error).message }] });
      throw err;
    }
    await this.updateStatus();
  }

  private charonLine(line: string): void {
    this.log.debug('charon', { line });
    const refusal = this.refusals.line(line);
    const model = this.translation?.model;
    if (!refusal || !model) return;
    if (refusal.kind === 'authentication') {
      // A site peer by its address; a remote-access user (any address) by the identity it claimed.
      const peer = model.peers.find((p) => p.remoteAddress === refusal.remoteAddress) ?? model.peers.find((p) => p.type === 'remoteAccess' && p.identity === refusal.remoteId);
      this.vpnMetrics.authenticationsFailed.inc({ peer: peer?.ref.name ?? '' });
      // RFC 8784 mixes the PPK into the keys AUTH is computed with: another PPK looks to charon like a bad signature.
      // An id the gateway does not hold (one rotated out after its grace) charon names itself.
      const ppk = model.gateway.ppk;
      const ppkHint = !ppk ? ''
        : /signature validation failed/.test(refusal.reason) ? ` (the gateway uses PPK ${ppk.id}: a peer holding another value for it fails exactly so)`
          : /no PPK found/.test(refusal.reason) ? ` (the gateway accepts PPK ${ppk.keys.map((k) => k.id).join(' and ')}: the peer needs the current one, ${ppk.id})` : '';
      void this.report({
        object: peer?.ref ?? model.gateway.ref,
        type: 'Warning',
        reason: 'AuthenticationFailed',
        message: `${refusal.remoteAddress}${refusal.remoteId ? ` (${refusal.remoteId})` : ''} failed IKE_AUTH: ${refusal.reason || 'charon gave no reason'}${ppkHint}`,
      }, true);
      return;
    }
    const peer = model.peers.find((p) => p.remoteAddress === refusal.remoteAddress);
    const offeredMlKem = /ML_KEM/.test(refusal.offered);
    this.vpnMetrics.proposalsRefused.inc({ peer: peer?.ref.name ?? '', offered_ml_kem: String(offeredMlKem) });
    const required = refusal.offered.startsWith('ESP:') ? model.gateway.espProposals : model.gateway.ikeProposals;
    const mode = model.gateway.pqMode === 'strict' ? `strict mode requires ${required.join(', ')}` : `configured ${refusal.configured}`;
    void this.report({
      object: peer?.ref ?? model.gateway.ref,
      type: 'Warning',
      reason: 'ProposalRefused',
      message: `${refusal.remoteAddress} offered ${refusal.offered}${offeredMlKem ? '' : ' (no ML-KEM)'}: refused with NO_PROPOSAL_CHOSEN, ${mode}`,
    }, true);
  }

  /**
   * spec.ppk.generate: makes the gateway's PPK Secret, and rotates it when the current PPK is an interval old (the
   * previous one stays in it, accepted until the next rotation). Fails closed: a PPK comes only from the key material
   * (the QRNG service when --entropy-source is set); without it the current PPK stays, or, when there is none yet,
   * nothing is loaded ('unavailable'). 'written' when the Secret was written (its watch brings it back).
   */
  private async keepGeneratedPpk(gateway: VpnGatewayResource, secrets: SecretLookup): Promise<'kept' | 'written' | 'unavailable'> {
    clearTimeout(this.ppkTimer);
    const generation = ppkGeneration(gateway);
    if (!generation) return 'kept';
    const { namespace, name, uid = '' } = gateway.metadata as { namespace: string; name: string; uid?: string };
    const existing = secrets(namespace, generation.secretName);
    const writePpkSecret = this.options.writePpkSecret;
    if (!writePpkSecret) {
      await this.report({ object: { kind: 'VpnGateway', namespace, name, uid }, type: 'Warning', reason: 'InvalidSpec', message: `spec.ppk.generate needs a Kubernetes API server to keep the PPK Secret in; with --manifests, write the PPK into a Secret manifest and name it in spec.ppk.secretName` });
      return 'unavailable';
    }
    const read = existing ? readStoredPpks(existing, uid) : undefined;
    // A Secret that is not ours or does not read: translateVpn says so, and nothing overwrites it.
    if (read && 'error' in read) return 'kept';
    const now = new Date();
    const dueInMs = rotationDueInMs(read, generation.intervalMs, now);
    const again = (ms: number) => (this.ppkTimer = setTimeout(() => this.coalescer.schedule(), Math.min(ms, MAX_TIMER_MS)));
    if (dueInMs > 0) {
      again(dueInMs);
      return 'kept';
    }
    const ref = { kind: 'VpnGateway', namespace, name, uid };
    const secret = `Secret ${namespace}/${generation.secretName}`;
    let bytes: Buffer;
    try {
      bytes = await this.options.keyMaterial.secretBytes(PPK_BYTES);
    } catch (err) {
      if (!(err instanceof EntropyUnavailable)) throw err;
      this.vpnMetrics.ppkRotations.inc({ result: 'failed' });
      again(PPK_RETRY_MS);
      await this.report({ object: ref, type: 'Warning', reason: 'EntropyUnavailable', message: `no new PPK for ${secret}: ${err.message}; ${read ? `the current PPK ${read.current.id} stays until one can be drawn` : 'nothing is loaded until one can be drawn'}` });
      return read ? 'kept' : 'unavailable';
    }
    if (this.stopped) return 'kept';
    const body = rotatedPpkSecret({ namespace, name, uid }, generation, existing, read, bytes, now);
    try {
      await writePpkSecret(body, existing !== undefined);
    } catch (err) {
      // 409: another write came first (a stale view); its version comes through the watch and is looked at then.
      if ((err as { code?: number }).code === 409) return 'written';
      this.vpnMetrics.ppkRotations.inc({ result: 'failed' });
      this.log.warn('could not write the PPK Secret', { secret, error: errorText(err), retryInMs: PPK_RETRY_MS });
      again(PPK_RETRY_MS);
      return read ? 'kept' : 'unavailable';
    } finally {
      bytes.fill(0);
    }
    this.vpnMetrics.ppkRotations.inc({ result: 'ok' });
    const id = Buffer.from(body.data!.id!, 'base64').toString('utf8');
    const next = new Date(now.getTime() + generation.intervalMs).toISOString();
    await this.report({
      object: ref,
      type: 'Normal',
      reason: 'PpkRotated',
      message: `${read ? 'rotated' : 'made'} the PPK in ${secret} from ${this.options.keyMaterial.origin}: peers now send ${id}${read ? `; the previous ${read.current.id} is accepted until the next rotation at ${next}` : ''} (qubesec vpn client-config exports the current one)`,
    }, true);
    return 'written';
  }

  /**
   * The VpnGateway was deleted: its SAs are terminated (peers get a DELETE) and an empty configuration is loaded with
   * the credentials cleared, so nothing of it stays in charon; not ready until it is created again, which loads anew.
   */
  private async unloadDeletedGateway(): Promise<void> {
    const { namespace, gateway: name } = this.options;
    const model = this.translation?.model;
    this.translation = undefined;
    clearTimeout(this.ppkTimer);
    if (this.loadedHash === '' || !this.charon.running || !model) {
      this.log.warn('VpnGateway not found: nothing is loaded', { gateway: `${namespace}/${name}` });
      return;
    }
    const terminated = await this.charon.unloadEverything();
    this.loadedHash = '';
    // A VpnGateway created again under the name is a new object: its status and Events start afresh.
    this.written.clear();
    this.reported.clear();
    for (const peer of model.peers) for (const kind of ['hybrid', 'classical']) this.vpnMetrics.ikeSas.set({ peer: peer.ref.name, key_exchange: kind }, 0);
    for (const peer of this.source.snapshot().vpnPeers.filter((p) => p.metadata.namespace === namespace && p.spec?.gateway === name)) await this.writeStatus('vpnpeers', peer, peerStatusWithoutGateway(name));
    await this.report({ object: model.gateway.ref, type: 'Warning', reason: 'Unloaded', message: `VpnGateway ${namespace}/${name} was deleted: unloaded its ${model.peers.length} connections from charon and terminated ${terminated} IKE SA${terminated === 1 ? '' : 's'}; not ready until it is created again` }, true);
  }

  private async updateStatus(): Promise<void> {
    const translation = this.translation;
    if (this.stopped || !translation?.model || !this.charon.running) return;
    const rotation = translation.model.gateway.ppk?.rotation;
    if (rotation) this.vpnMetrics.ppkAge.set((Date.now() - rotation.created.getTime()) / 1000);
    const sas: IkeSa[] = parseSas((await this.charon.swanctl(['--list-sas', '--pretty'])).stdout);
    const now = new Date();
    const invalid = new Map(translation.diagnostics.filter((d) => d.object.kind === 'VpnPeer').map((d) => [d.object.name, d.message]));
    // The source's current objects (their resourceVersion is the one a status write must carry).
    const peers = this.source.snapshot().vpnPeers.filter((p) => p.metadata.namespace === this.options.namespace && p.spec?.gateway === this.options.gateway && this.translatedPeers.has(p.metadata.name!));
    for (const peer of peers) {
      const name = peer.metadata.name!;
      const model = translation.model.peers.find((p) => p.ref.name === name);
      const status = peerStatus(sas, model?.connection ?? '', invalid.get(name) ?? (model ? undefined : 'not loaded'), now);
      const established = sas.filter((sa) => model && sa.connection === model.connection && sa.state === 'ESTABLISHED');
      for (const kind of ['hybrid', 'classical'] as const) {
        this.vpnMetrics.ikeSas.set({ peer: name, key_exchange: kind }, established.filter((sa) => isPostQuantum(sa.keyExchanges) === (kind === 'hybrid')).length);
      }
      if (status.connected && !status.postQuantum) {
        await this.report({ object: model!.ref, type: 'Warning', reason: 'Classical', message: status.conditions[0]!.message });
      }
      await this.writeStatus('vpnpeers', peer, status);
    }
  }

  /** Replaces a VpnPeer's or the VpnGateway's status when it changed, keeping lastTransitionTime of unchanged conditions. */
  private async writeStatus(plural: VpnPlural, resource: VpnPeerResource | VpnGatewayResource, status: GatewayStatus | PeerStatus): Promise<void> {
    const key = statusKey(plural, resource);
    // What this process wrote last, else what the object holds (a restarted controller, or nothing in a manifest).
    const previous = this.written.get(key)?.conditions ?? (resource.status as { conditions?: Condition[] } | undefined)?.conditions;
    const conditions = status.conditions.map((c) => {
      const before = previous?.find((p) => p.type === c.type);
      return { ...c, lastTransitionTime: before && before.status === c.status ? before.lastTransitionTime : new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
    });
    const body = { ...status, conditions };
    const text = JSON.stringify(body);
    if (this.written.get(key)?.text === text) return;
    try {
      await this.statusWriter.write(plural, resource, body);
      const [before, ready] = [this.written.get(key)?.conditions[0], conditions[0]!];
      if (before) this.vpnMetrics.ready.remove({ object: key, reason: before.reason });
      this.vpnMetrics.ready.set({ object: key, reason: ready.reason }, ready.status === 'True' ? 1 : 0);
      this.written.set(key, { text, conditions });
    } catch (err) {
      this.log.warn('could not update status', { object: key, error: errorText(err) });
    }
  }

  /** Records a diagnostic once while it lasts (or every time, for one-off events like a refused proposal). */
  private async report(d: Diagnostic, always = false): Promise<void> {
    const key = `${d.object.kind}/${d.object.namespace}/${d.object.name}|${d.reason}|${d.message}`;
    if (!always && this.reported.has(key)) return;
    this.reported.add(key);
    this.log.warn(d.message, { object: `${d.object.kind}/${d.object.namespace}/${d.object.name}`, reason: d.reason });
    await this.recorder.record(d);
  }
}
