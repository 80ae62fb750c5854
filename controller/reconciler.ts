// Sources -> model -> data plane. Each sync reads a snapshot, translates it (pure), applies the model, and reports.
// It keeps the last good version of every Secret and the last version of every Ingress that NGINX accepted, so bad
// input never takes down what was serving; an Ingress NGINX refuses is found (acceptance.ts) and fails alone.
import type { V1Ingress, V1Secret } from '@kubernetes/client-node';
import { isolate, offer, retryDelay, versionsOf, type Isolation, type Refusal } from './acceptance.js';
import { parseSettings } from './model/annotations.js';
import { ModelBuilder, endpointSliceService } from './model/build.js';
import { checkCaSecret, checkPair, checkTlsSecret, secretData } from './model/certificates.js';
import { servedIngresses } from './model/classes.js';
import { Coalescer } from './coalescer.js';
import { REJECTED, ingressRef, translateIngress, type BackendRef, type IngressIntent, type IngressTranslation } from './model/ingress.js';
import { defaultPolicy, overrideDefaults, type Capabilities, type TlsDefaults } from './model/pq.js';
import type { CaBundle, CertificatePair, Diagnostic, Model, Server } from './model/types.js';
import type { ApplyResult } from './dataplane/applier.js';
import type { Logger } from './observability/log.js';
import type { Metrics } from './observability/metrics.js';
import { keyOf, type EventRecorder, type Snapshot, type Source } from './sources/source.js';
import { ServedSessionResumption, type SessionResumptionOptions } from './tickets/served.js';
import { TranslationCache } from './translations.js';

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
  /** This replica's own, for when the shared Secret (sessionResumption) has none. */
  defaultCertificates: CertificatePair[];
  /** Quiet time that gathers a burst of changes into one sync. */
  debounceMs: number;
  /** --default-backend-service: serves requests no Ingress matches. */
  defaultBackend?: BackendRef;
  /** Absent: NGINX's defaults. */
  sessionResumption?: SessionResumptionOptions;
}

type SecretUse = 'serving' | 'client' | 'ca';

function checkSecret(secret: V1Secret, use: SecretUse, now: Date): { content: CertificatePair | CaBundle; expires?: Date } | { error: string } {
  if (use === 'ca') {
    const checked = checkCaSecret(secret, now);
    return 'error' in checked ? checked : { content: checked.ca };
  }
  const checked = use === 'serving'
    ? checkTlsSecret(secret, now)
    : checkPair(keyOf(secret), secretData(secret, 'tls.crt') ?? '', secretData(secret, 'tls.key') ?? '', now);
  return 'error' in checked ? checked : { content: checked.pair, expires: checked.pair.notAfter };
}

/** The admission webhook's verdict on one Ingress. */
export type AdmissionDecision = { allowed: true; warnings: string[] } | { allowed: false; message: string };

export interface DataPlane {
  apply(model: Model, force?: boolean): Promise<ApplyResult>;
  /** `nginx -t` on `model`, the running configuration untouched: NGINX's message, or undefined when it would load. */
  test(model: Model): Promise<string | undefined>;
}

/** The Event of an Ingress whose version NGINX refused. */
export const REFUSED_BY_NGINX = 'RefusedByNginx';

export class Reconciler {
  /** Per Ingress, the version in the configuration NGINX last accepted. */
  private readonly acceptedIntents = new Map<string, IngressIntent>();
  /** Per Ingress, its current version when NGINX refused it; tried again on retries only. */
  private readonly refusedIntents = new Map<string, Refusal<IngressIntent>>();
  /** Failed or partly refused applies in a row; the retry timer waits retryDelay(failures). */
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryNext = false;
  private readonly translations = new TranslationCache((ingress, tlsDefaults) => this.translate(ingress, tlsDefaults));
  /** Keeps the model's pieces between syncs and tries: each build rebuilds only the hosts and upstreams that changed. */
  private readonly builder = new ModelBuilder();
  /** Per host, the served server whose certificates qubesec_certificate_expiry_timestamp_seconds shows. */
  private expiryShown = new Map<string, Server>();
  /** Keyed "<use> namespace/name". */
  private readonly lastGoodSecrets = new Map<string, { content: CertificatePair | CaBundle; expires?: Date; key: string; data: string }>();
  private activeDiagnostics = new Set<string>();
  private readonly coalescer: Coalescer;
  private readonly sessionResumption: ServedSessionResumption | undefined;
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
    this.sessionResumption = options.sessionResumption && new ServedSessionResumption(options.sessionResumption);
  }

  async start(): Promise<void> {
    await this.source.start(() => this.schedule());
    await this.coalescer.runNow();
  }

  async stop(): Promise<void> {
    clearTimeout(this.retryTimer);
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

  /**
   * What a sync would make of `ingress` on the current snapshot: the same class filter, defaults and translation.
   * Denied with the messages of its Rejected Events; allowed with its other Warnings. Pure over memory: no I/O.
   */
  admit(ingress: V1Ingress): AdmissionDecision {
    const snapshot = this.source.snapshot();
    if (this.ours([ingress], snapshot).length === 0) return { allowed: true, warnings: [] };
    const { intent, diagnostics } = this.translate(ingress, this.defaults(snapshot, []));
    const warnings = diagnostics.filter((d) => d.type === 'Warning');
    if (!intent) return { allowed: false, message: warnings.filter((d) => d.reason === REJECTED).map((d) => d.message).join('; ') };
    return { allowed: true, warnings: warnings.map((d) => d.message) };
  }

  private async sync(): Promise<void> {
    const started = process.hrtime.bigint();
    const snapshot = this.source.snapshot();
    const diagnostics: Diagnostic[] = [];
    const tlsDefaults = this.defaults(snapshot, diagnostics);

    const ours = this.ours(snapshot.ingresses, snapshot);
    const current = new Map<string, IngressIntent | undefined>();
    let rejected = 0;
    for (const ingress of ours) {
      const translation = this.translations.get(ingress, tlsDefaults);
      diagnostics.push(...translation.diagnostics);
      current.set(keyOf(ingress), translation.intent);
      if (!translation.intent) rejected++;
    }
    for (const key of this.acceptedIntents.keys()) if (!current.has(key)) this.acceptedIntents.delete(key);
    // A refusal holds for the version refused: gone once the Ingress changed, or went away.
    for (const [key, { version }] of this.refusedIntents) if (current.get(key) !== version) this.refusedIntents.delete(key);
    this.translations.retain(new Set(current.keys()));

    const retry = this.retryNext;
    this.retryNext = false;
    const offered = offer(current, this.acceptedIntents, this.refusedIntents, retry);
    // Checked once for every version a try may hold, so that tries neither repeat nor forget a Secret's last good content.
    const { certificates, caBundles } = this.checkSecrets(snapshot.secrets, [...offered.accepted.values(), ...offered.changed.values()], diagnostics);
    const services = new Map(snapshot.services.map((s) => [keyOf(s), s]));
    const endpointSlices = new Map<string, typeof snapshot.endpointSlices[number][]>();
    for (const slice of snapshot.endpointSlices) {
      const service = endpointSliceService(slice);
      if (!service) continue;
      const slices = endpointSlices.get(service);
      if (slices) slices.push(slice);
      else endpointSlices.set(service, [slice]);
    }
    const shared = this.sessionResumption?.model(snapshot.secrets, new Date(), diagnostics);
    const build = (changes: readonly string[]) => {
      const built = this.builder.build({
        intents: versionsOf(offered, changes),
        services,
        endpointSlices,
        certificates,
        caBundles,
        defaultBackend: this.options.defaultBackend,
        defaultPolicy: defaultPolicy(tlsDefaults, this.options.capabilities),
        defaultCertificates: shared?.defaultCertificates ?? this.options.defaultCertificates,
      });
      return { ...built, model: { ...built.model, sessionResumption: shared?.resumption } };
    };

    const force = this.forceNext;
    this.forceNext = false;
    // Every change at once first (the normal apply); only when NGINX refuses it, tries (nginx -t, no reload) find
    // the changes to blame, and the others are applied without them.
    const changed = [...offered.changed.keys()];
    const steps = isolate(changed);
    steps.next(); // its first try: every change
    const all = build(changed);
    let applied = all;
    let result = await this.dataPlane.apply(all.model, force);
    let isolation: Isolation;
    if (result.status === 'failed' && !result.refused) {
      isolation = { failed: result.error };
    } else {
      let step = steps.next(result.status === 'failed' ? result.error : undefined);
      while (!step.done) step = steps.next(await this.dataPlane.test(build(step.value).model));
      isolation = step.value;
      if (!('failed' in isolation) && isolation.refused.size > 0) {
        applied = build(isolation.accepted);
        result = await this.dataPlane.apply(applied.model, force);
        if (result.status === 'failed') isolation = { failed: result.error };
      }
    }
    if ('failed' in isolation) {
      // Nothing new serves and no Ingress is to blame: one Event, about the first Ingress whose change waits (else the
      // first of ours), not one per Ingress; the retry comes with backoff.
      diagnostics.push(...all.diagnostics);
      const about = changed.length > 0 ? ours.find((i) => keyOf(i) === changed[0]) : ours[0];
      const waiting = changed.length > 1 ? ` (the changes of ${changed.length} Ingresses wait, this one's among them)` : '';
      if (about) diagnostics.push({ object: ingressRef(about), type: 'Warning', reason: 'ReloadFailed', message: `the data plane refused the new configuration; the previous one keeps serving: ${isolation.failed}${waiting}` });
    } else {
      diagnostics.push(...applied.diagnostics);
      for (const key of isolation.accepted) {
        this.acceptedIntents.set(key, offered.changed.get(key)!);
        this.refusedIntents.delete(key);
      }
      for (const [key, error] of isolation.refused) {
        const version = offered.changed.get(key)!;
        const before = this.refusedIntents.get(key);
        // A retry refusing the same version keeps the first message: NGINX's differs in time, PID and line number,
        // and a new message would be a new Event.
        this.refusedIntents.set(key, { version, error: before?.version === version ? before.error : error });
      }
      this.servedKeys = new Set(versionsOf(offered, isolation.accepted).map((i) => `${i.ref.namespace}/${i.ref.name}`));
    }
    for (const [key, { version, error }] of this.refusedIntents) {
      const serving = this.acceptedIntents.has(key) ? 'its last accepted version keeps serving' : 'it is not served';
      diagnostics.push({ object: version.ref, type: 'Warning', reason: REFUSED_BY_NGINX, message: `Ingress ${key}: NGINX refused this version (${serving}): ${error}` });
    }
    this.retryLater('failed' in isolation || this.refusedIntents.size > 0);
    await this.report(diagnostics);

    rejected += this.refusedIntents.size;
    this.metrics.ingresses.set({ state: 'served' }, ours.length - rejected);
    this.metrics.ingresses.set({ state: 'rejected' }, rejected);
    this.showCertificateExpiry(applied.model.servers);
    if (result.status !== 'unchanged') {
      this.metrics.syncDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
    this.onSynced();
  }

  /** Sets the expiry gauge of the servers that changed since the last sync (a server object is never changed once built). */
  private showCertificateExpiry(servers: readonly Server[]): void {
    const shown = new Map(servers.map((server) => [server.host, server]));
    const labels = (server: Server) => (server.tls?.certificates ?? []).map((pair) => ({ labels: { host: server.host, secret: pair.source, key_algorithm: pair.keyAlgorithm }, value: pair.notAfter.getTime() / 1000 }));
    for (const [host, before] of this.expiryShown) {
      if (shown.get(host) === before) continue;
      for (const { labels: old } of labels(before)) this.metrics.certificateExpiry.remove(old);
    }
    for (const [host, server] of shown) {
      if (this.expiryShown.get(host) === server) continue;
      for (const { labels: now, value } of labels(server)) this.metrics.certificateExpiry.set(now, value);
    }
    this.expiryShown = shown;
  }

  /**
   * After a failed or partly refused apply, syncs again with backoff even when nothing changes (refused versions
   * included); a clean sync resets the backoff. A sync for a change in between keeps the timer running.
   */
  private retryLater(failed: boolean): void {
    if (!failed) {
      this.failures = 0;
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      return;
    }
    if (this.retryTimer) return;
    this.failures++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.retryNext = true;
      this.metrics.applyRetries.inc();
      this.coalescer.schedule();
    }, retryDelay(this.failures));
  }

  private ours(ingresses: readonly V1Ingress[], snapshot: Snapshot): V1Ingress[] {
    return servedIngresses(ingresses, snapshot.ingressClasses, this.options.controllerName, this.options.ingressClass);
  }

  /** The one call of translateIngress: syncs (through the cache) and admission reviews must judge alike. */
  private translate(ingress: V1Ingress, tlsDefaults: TlsDefaults): IngressTranslation {
    return translateIngress(ingress, tlsDefaults, this.options.capabilities, this.options.defaultBackend !== undefined);
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

  /**
   * Checks every Secret an intent names, for the use it names it for: a serving pair (spec.tls), a CA bundle
   * (auth-tls-secret, proxy-ssl-secret) or a client pair (proxy-ssl-secret). A Secret that turned bad keeps serving
   * its last good content.
   */
  private checkSecrets(secrets: readonly V1Secret[], intents: IngressIntent[], diagnostics: Diagnostic[]): { certificates: Map<string, CertificatePair>; caBundles: Map<string, CaBundle> } {
    const uses = new Map<string, { use: SecretUse; key: string; intents: IngressIntent[] }>();
    const want = (key: string | undefined, use: SecretUse, intent: IngressIntent) => {
      if (key === undefined) return;
      const id = `${use} ${key}`;
      const entry = uses.get(id) ?? { use, key, intents: [] };
      entry.intents.push(intent);
      uses.set(id, entry);
    };
    for (const intent of intents) {
      for (const entry of intent.tls) want(entry.secret, 'serving', intent);
      want(intent.proxy.clientAuth?.secret, 'ca', intent);
      want(intent.proxy.upstreamTls?.secret, 'client', intent);
      if (intent.proxy.upstreamTls?.verify) want(intent.proxy.upstreamTls.secret, 'ca', intent);
    }
    const byKey = new Map(secrets.map((s) => [keyOf(s), s]));
    const now = new Date();
    const certificates = new Map<string, CertificatePair>();
    const caBundles = new Map<string, CaBundle>();
    for (const [id, cached] of this.lastGoodSecrets) if (!uses.has(id) || !byKey.has(cached.key)) this.lastGoodSecrets.delete(id);
    for (const [id, { use, key, intents: users }] of uses) {
      const secret = byKey.get(key);
      if (!secret) continue;
      // A proxy-ssl-secret may hold only ca.crt: no client certificate is then presented.
      if (use === 'client' && !secretData(secret, 'tls.crt')) continue;
      const data = JSON.stringify([secret.type, secret.data, secret.stringData]);
      const cached = this.lastGoodSecrets.get(id);
      let checked: { content: CertificatePair | CaBundle; expires?: Date } | { error: string };
      if (cached && cached.data === data && (cached.expires === undefined || cached.expires > now)) {
        checked = cached;
      } else {
        checked = checkSecret(secret, use, now);
        if (!('error' in checked)) this.lastGoodSecrets.set(id, { ...checked, key, data });
      }
      if ('error' in checked) {
        const ref = { kind: 'Secret', namespace: secret.metadata?.namespace ?? '', name: secret.metadata?.name ?? '', uid: secret.metadata?.uid };
        const usable = cached && (cached.expires === undefined || cached.expires > now);
        const keeps = usable ? '; the last good certificate keeps serving' : '';
        diagnostics.push({ object: ref, type: 'Warning', reason: 'InvalidCertificate', message: `${checked.error}${keeps}` });
        for (const intent of users) {
          diagnostics.push({ object: intent.ref, type: 'Warning', reason: 'InvalidCertificate', message: `Ingress ${intent.ref.namespace}/${intent.ref.name}: ${checked.error}${keeps}` });
        }
        if (!usable) continue;
        checked = cached;
      }
      if (use === 'ca') caBundles.set(key, checked.content as CaBundle);
      else certificates.set(key, checked.content as CertificatePair);
    }
    return { certificates, caBundles };
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
