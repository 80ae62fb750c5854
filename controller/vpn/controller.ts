// The VPN gateway controller: follows one VpnGateway, the VpnPeers naming it and the Secrets of its namespace (from the
// API server or a folder of manifests: a Source of VpnSnapshot); once the source's first full view is in, translates
// them (pure), renders swanctl's files (pure), loads them into the charon it runs (never restarting it for a change),
// and reports: VpnPeer status from charon's SAs, Events for invalid resources, for proposals charon refused (a peer
// without ML-KEM at a strict gateway) and for classical SAs.
import { createHash } from 'node:crypto';
import { Coalescer } from '../coalescer.js';
import type { Diagnostic } from '../model/types.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { errorText } from '../sources/reflector.js';
import type { EventRecorder, Source } from '../sources/source.js';
import { Charon, type CharonRuntime } from './charon.js';
import { translateVpn, type Translation, type VpnGatewayResource, type VpnPeerResource } from './model.js';
import { renderSwanctl } from './render.js';
import { statusKey, type VpnPlural, type VpnSnapshot, type VpnStatusWriter } from './sources.js';
import { createVpnMetrics, type VpnMetrics } from './metrics.js';
import { RefusalParser, isPostQuantum, parseSas, peerStatus, type IkeSa, type PeerStatus } from './status.js';

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
}

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
      this.log.warn('VpnGateway not found: nothing new is loaded (charon keeps what it had, if anything)', { gateway: `${namespace}/${name}` });
      return;
    }
    const { secrets } = snapshot;
    const translation = translateVpn(gateway, snapshot.vpnPeers, (ns, n) => secrets.find((s) => s.metadata?.namespace === ns && s.metadata?.name === n), new Date());
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
    if (!this.charon.running) {
      await this.charon.start(ports);
      this.ports = ports;
      this.loadedHash = '';
    } else if (this.ports && (this.ports.ikePort !== ports.ikePort || this.ports.natPort !== ports.natPort)) {
      await this.report({ object: model.gateway.ref, type: 'Warning', reason: 'RestartRequired', message: `charon listens on ports ${this.ports.ikePort}/${this.ports.natPort}: the new ports ${ports.ikePort}/${ports.natPort} apply when the gateway restarts (QubeSec never restarts charon for a change, which would drop every SA)` });
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
        // Which PPK is loaded, for operators confirming a rotation: a short hash of a 256-bit secret reveals nothing.
        ppkFingerprint: model.gateway.ppk ? ppkFingerprint(Buffer.from(model.gateway.ppk.hex, 'hex')) : undefined,
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
      const ppk = model.gateway.ppk;
      const ppkHint = ppk && /signature validation failed/.test(refusal.reason) ? ` (the gateway uses PPK ${ppk.id}: a peer holding another value for it fails exactly so)` : '';
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

  private async updateStatus(): Promise<void> {
    const translation = this.translation;
    if (this.stopped || !translation?.model || !this.charon.running) return;
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
