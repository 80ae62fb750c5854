// Sources -> model -> data plane. Each sync reads a snapshot, translates it (pure), applies the model, and reports.
// It keeps the last good version of every Ingress and Secret, so bad input never takes down what was serving.
import type { V1Secret } from '@kubernetes/client-node';
import { parseSettings } from './model/annotations.js';
import { buildModel, endpointSliceService } from './model/build.js';
import { checkTlsSecret } from './model/certificates.js';
import { servedIngresses } from './model/classes.js';
import { Coalescer } from './coalescer.js';
import { ingressRef, translateIngress, type IngressIntent } from './model/ingress.js';
import { defaultPolicy, overrideDefaults, type Capabilities, type TlsDefaults } from './model/pq.js';
import type { CertificatePair, Diagnostic, Model } from './model/types.js';
import type { ApplyResult } from './dataplane/applier.js';
import type { Logger } from './observability/log.js';
import type { Metrics } from './observability/metrics.js';
import { keyOf, type EventRecorder, type Snapshot, type Source } from './sources/source.js';

export interface ReconcilerOptions {
  /** spec.controller of the IngressClasses we serve. */
  controllerName: string;
  /** Class name also accepted in the legacy kubernetes.io/ingress.class annotation. */
  ingressClass: string;
  /** Defaults from flags; a ConfigMap's keys override them. */
  tlsDefaults: TlsDefaults;
  /** namespace/name of the defaults ConfigMap, or ''. */
  configMap: string;
  capabilities: Capabilities;
  defaultCertificates: CertificatePair[];
  /** Quiet time that gathers a burst of changes into one sync. */
  debounceMs: number;
}

export interface DataPlane {
  apply(model: Model, force?: boolean): Promise<ApplyResult>;
}

export class Reconciler {
  private readonly lastGoodIntents = new Map<string, IngressIntent>();
  private readonly lastGoodPairs = new Map<string, { pair: CertificatePair; data: string }>();
  private activeDiagnostics = new Set<string>();
  private readonly coalescer: Coalescer;
  private forceNext = false;
  private servedKeys: ReadonlySet<string> = new Set();
  /** Called after every sync: the leader publishes Ingress status from what is served now. */
  onSynced: () => void = () => undefined;

  constructor(
    private readonly source: Source,
    private readonly dataPlane: DataPlane,
    private readonly recorder: EventRecorder,
    private readonly options: ReconcilerOptions,
    private readonly metrics: Metrics,
    log: Logger,
  ) {
    this.coalescer = new Coalescer(() => this.sync(), options.debounceMs, (err) => log.error('sync failed', { error: err.stack ?? err.message }));
  }

  async start(): Promise<void> {
    await this.source.start(() => this.schedule());
    await this.coalescer.runNow();
  }

  async stop(): Promise<void> {
    await this.source.stop();
    await this.coalescer.stop();
  }

  /** namespace/name of the Ingresses the running configuration serves, in their current or last good version. */
  get served(): ReadonlySet<string> {
    return this.servedKeys;
  }

  /** One sync after a burst of changes; `force` rewrites and reloads even an unchanged configuration. */
  schedule(force = false): void {
    this.forceNext ||= force;
    this.coalescer.schedule();
  }

  private async sync(): Promise<void> {
    const started = process.hrtime.bigint();
    const snapshot = this.source.snapshot();
    const diagnostics: Diagnostic[] = [];
    const tlsDefaults = this.defaults(snapshot, diagnostics);

    const ours = servedIngresses(snapshot.ingresses, snapshot.ingressClasses, this.options.controllerName, this.options.ingressClass);
    const intents: IngressIntent[] = [];
    let rejected = 0;
    for (const ingress of ours) {
      const key = keyOf(ingress);
      const translation = translateIngress(ingress, tlsDefaults, this.options.capabilities);
      diagnostics.push(...translation.diagnostics);
      if (translation.intent) {
        this.lastGoodIntents.set(key, translation.intent);
        intents.push(translation.intent);
      } else {
        rejected++;
        const lastGood = this.lastGoodIntents.get(key);
        if (lastGood) intents.push(lastGood);
      }
    }
    const live = new Set(ours.map(keyOf));
    for (const key of this.lastGoodIntents.keys()) if (!live.has(key)) this.lastGoodIntents.delete(key);

    const certificates = this.checkSecrets(snapshot.secrets, intents, diagnostics);
    const services = new Map(snapshot.services.map((s) => [keyOf(s), s]));
    const endpointSlices = new Map<string, typeof snapshot.endpointSlices[number][]>();
    for (const slice of snapshot.endpointSlices) {
      const service = endpointSliceService(slice);
      if (service) endpointSlices.set(service, [...(endpointSlices.get(service) ?? []), slice]);
    }
    const built = buildModel({
      intents,
      services,
      endpointSlices,
      certificates,
      defaultPolicy: defaultPolicy(tlsDefaults, this.options.capabilities),
      defaultCertificates: this.options.defaultCertificates,
    });
    diagnostics.push(...built.diagnostics);

    const force = this.forceNext;
    this.forceNext = false;
    const result = await this.dataPlane.apply(built.model, force);
    if (result.status === 'failed') {
      for (const ingress of ours) {
        diagnostics.push({ object: ingressRef(ingress), type: 'Warning', reason: 'ReloadFailed', message: `the data plane refused the new configuration; the previous one keeps serving: ${result.error}` });
      }
    } else {
      this.servedKeys = new Set(intents.map((i) => `${i.ref.namespace}/${i.ref.name}`));
    }
    await this.report(diagnostics);

    this.metrics.ingresses.set({ state: 'served' }, ours.length - rejected);
    this.metrics.ingresses.set({ state: 'rejected' }, rejected);
    this.metrics.certificateExpiry.reset();
    for (const server of built.model.servers) {
      for (const pair of server.tls?.certificates ?? []) {
        this.metrics.certificateExpiry.set({ host: server.host, secret: pair.source, key_algorithm: pair.keyAlgorithm }, pair.notAfter.getTime() / 1000);
      }
    }
    if (result.status !== 'unchanged') {
      this.metrics.syncDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
    this.onSynced();
  }

  /** Flags, overridden key by key by the defaults ConfigMap when it exists and parses. */
  private defaults(snapshot: Snapshot, diagnostics: Diagnostic[]): TlsDefaults {
    if (!this.options.configMap) return this.options.tlsDefaults;
    const configMap = snapshot.configMaps.find((c) => keyOf(c) === this.options.configMap);
    if (!configMap) return this.options.tlsDefaults;
    const parsed = parseSettings(configMap.data, this.options.capabilities, '', (key) => `key ${key}`);
    const ref = { kind: 'ConfigMap', namespace: configMap.metadata?.namespace ?? '', name: configMap.metadata?.name ?? '', uid: configMap.metadata?.uid };
    for (const error of parsed.errors) {
      diagnostics.push({ object: ref, type: 'Warning', reason: 'InvalidDefault', message: `ConfigMap ${this.options.configMap}: ${error}; the flag's value applies` });
    }
    return overrideDefaults(this.options.tlsDefaults, parsed.settings);
  }

  /** Checks every Secret an intent names; a Secret that turned bad keeps serving its last good pair. */
  private checkSecrets(secrets: readonly V1Secret[], intents: IngressIntent[], diagnostics: Diagnostic[]): Map<string, CertificatePair> {
    const wanted = new Set(intents.flatMap((i) => i.tls.map((t) => t.secret)));
    const byKey = new Map(secrets.map((s) => [keyOf(s), s]));
    const now = new Date();
    const pairs = new Map<string, CertificatePair>();
    for (const key of this.lastGoodPairs.keys()) if (!wanted.has(key) || !byKey.has(key)) this.lastGoodPairs.delete(key);
    for (const key of wanted) {
      const secret = byKey.get(key);
      if (!secret) continue;
      const data = JSON.stringify([secret.type, secret.data, secret.stringData]);
      const cached = this.lastGoodPairs.get(key);
      if (cached && cached.data === data && cached.pair.notAfter > now) {
        pairs.set(key, cached.pair);
        continue;
      }
      const checked = checkTlsSecret(secret, now);
      if ('pair' in checked) {
        this.lastGoodPairs.set(key, { pair: checked.pair, data });
        pairs.set(key, checked.pair);
        continue;
      }
      const ref = { kind: 'Secret', namespace: secret.metadata?.namespace ?? '', name: secret.metadata?.name ?? '', uid: secret.metadata?.uid };
      const keeps = cached ? '; the last good certificate keeps serving' : '';
      diagnostics.push({ object: ref, type: 'Warning', reason: 'InvalidCertificate', message: `${checked.error}${keeps}` });
      for (const intent of intents.filter((i) => i.tls.some((t) => t.secret === key))) {
        diagnostics.push({ object: intent.ref, type: 'Warning', reason: 'InvalidCertificate', message: `Ingress ${intent.ref.namespace}/${intent.ref.name}: ${checked.error}${keeps}` });
      }
      if (cached && cached.pair.notAfter > now) pairs.set(key, cached.pair);
    }
    return pairs;
  }

  /** Records each diagnostic once when it appears; it is recorded again only after it went away and came back. */
  private async report(diagnostics: Diagnostic[]): Promise<void> {
    const next = new Set<string>();
    for (const d of diagnostics) {
      const key = `${d.object.kind}/${d.object.namespace}/${d.object.name}|${d.reason}|${d.message}`;
      if (next.has(key)) continue;
      next.add(key);
      if (!this.activeDiagnostics.has(key)) await this.recorder.record(d);
    }
    this.activeDiagnostics = next;
  }
}
