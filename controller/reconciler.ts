// Sources -> model -> data plane. Each sync takes in what changed by key (SourceView), translates the Ingresses that
// changed (pure), tells the model builder what changed, applies the model, and reports.
// It keeps the last good version of every Secret and the last version of every Ingress that NGINX accepted, so bad
// input never takes down what was serving; an Ingress NGINX refuses is found (acceptance.ts) and fails alone.
import { createHash } from 'node:crypto';
import type { V1ConfigMap, V1EndpointSlice, V1Ingress, V1IngressClass, V1Secret } from '@kubernetes/client-node';
import { isolate, offeredVersion, retryDelay, versionsOf, type Isolation, type Refusal } from './acceptance.js';
import { parseSettings } from './model/annotations.js';
import { ModelBuilder, endpointSliceService, intentKey, type InputChanges } from './model/build.js';
import { PAIR_FIELDS, checkCaConfigMap, checkCaSecret, checkPair, checkTlsSecret, secretData, type CheckedCa } from './model/certificates.js';
import { servedIngresses } from './model/classes.js';
import type { BackendTLSPolicy, GRPCRoute, Gateway, GatewayClass, HTTPRoute, ReferenceGrant, TLSRoute } from './model/gateway-api.js';
import { translateGateways, type GatewayTranslation, type RouteKind } from './model/gateway.js';
import { Coalescer } from './coalescer.js';
import { REJECTED, ingressRef, translateIngress, type BackendRef, type IngressIntent, type IngressTranslation } from './model/ingress.js';
import { defaultPolicy, overrideDefaults, type Capabilities, type TlsDefaults } from './model/pq.js';
import type { CaBundle, CertificatePair, Diagnostic, Model, Server, TlsPolicy } from './model/types.js';
import type { ApplyResult } from './dataplane/applier.js';
import type { Logger } from './observability/log.js';
import type { Metrics } from './observability/metrics.js';
import { keyOf, type EventRecorder, type Snapshot, type Source } from './sources/source.js';
import { SourceView, type ChangedKeys } from './sources/view.js';
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
  /** Gateway API: the GatewayClasses' controllerName served, and the data plane's ports listeners must name. Absent: off. */
  gateway?: { controllerName: string; ports: { http: number; https: number } };
}

/** The Gateway API objects' status as of the last sync, for the status writer. */
export interface GatewayStatus extends Pick<GatewayTranslation, 'gatewayClasses' | 'gateways' | 'routes' | 'policies'> {
  /** Whether the data plane took the last sync's configuration (Programmed). */
  programmed: boolean;
}

type SecretUse = 'serving' | 'client' | 'ca';

/** The snapshot's list of each route kind. */
const ROUTE_LISTS = { HTTPRoute: 'httpRoutes', GRPCRoute: 'grpcRoutes', TLSRoute: 'tlsRoutes' } as const satisfies Record<RouteKind, keyof Snapshot>;

function checkSecret(secret: V1Secret, use: SecretUse, now: Date): { content: CertificatePair | CaBundle; expires?: Date } | { error: string } {
  if (use === 'ca') {
    const checked = checkCaSecret(secret, now);
    return 'error' in checked ? checked : { content: checked.ca };
  }
  const checked = use === 'serving'
    ? checkTlsSecret(secret, now)
    : checkPair(keyOf(secret), secretData(secret, PAIR_FIELDS.certificate) ?? '', secretData(secret, PAIR_FIELDS.key) ?? '', now);
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

/** One Secret as an Ingress's version names it, for one use; keyed "<use> namespace/name". */
interface SecretUseEntry {
  /** Its key in secretUses, one string for every Ingress that makes the use. */
  id: string;
  use: SecretUse;
  key: string;
  /** Per Ingress (namespace/name), the versions offered that name the Secret so. */
  users: Map<string, IngressIntent[]>;
}

/** A use's last good check: the content, the Secret object it came from and a fingerprint of that one's data. */
interface LastGood {
  content: CertificatePair | CaBundle;
  expires?: Date;
  from: V1Secret;
  data: string;
}

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
  private builder = new ModelBuilder();
  /** The source's objects by key, brought up to date at each sync from the changes it told. */
  private readonly view: SourceView<Snapshot>;
  /** Flags and the defaults ConfigMap as of the last sync, with their diagnostics and the default TLS policy. */
  private tlsDefaults: { defaults: TlsDefaults; text: string; policy: TlsPolicy; diagnostics: Diagnostic[] } | undefined;
  /** Per Ingress of ours (namespace/name), its translation's intent now; undefined: rejected. */
  private readonly current = new Map<string, IngressIntent | undefined>();
  /** The defaults the Ingresses in current were translated with. */
  private translatedWith: TlsDefaults | undefined;
  /** Of the Ingresses in current, those translation rejected. */
  private readonly rejectedByTranslation = new Set<string>();
  /** Of the Ingresses in current, the diagnostics of those whose translation has any. */
  private readonly translationDiagnostics = new Map<string, Diagnostic[]>();
  /** Per Ingress, a version not yet accepted, to offer over its accepted one (offeredVersion, no retry). */
  private readonly changedIntents = new Map<string, IngressIntent>();
  /** Per Ingress, the version a sync's first build serves: changed, else accepted. */
  private readonly latest = new Map<string, IngressIntent>();
  /** Since the builder's last build of `latest`, told what changed: what changed, by key. */
  private readonly touched = { intents: new Set<string>(), services: new Set<string>(), endpointSlices: new Set<string>(), certificates: new Set<string>(), caBundles: new Set<string>() };
  /** Whether the builder's last build was of `latest` (not a try's or a retry's versions), so it may be told the changes. */
  private builderOnLatest = false;
  /** Ingresses of ours that went away (or were no longer ours) since the last accepted apply: served no more after the next. */
  private readonly goneSinceApply = new Set<string>();
  /** EndpointSlices grouped by their Service (namespace/name), and the Service of each (by the slice's namespace/name). */
  private readonly slicesByService = new Map<string, V1EndpointSlice[]>();
  private readonly serviceOfSlice = new Map<string, string>();
  /** Per Ingress, the Secret uses its offered versions make; and per use, its Ingresses. */
  private readonly secretUsesOf = new Map<string, string[]>();
  private readonly secretUses = new Map<string, SecretUseEntry>();
  /** Per Secret (namespace/name), the uses made of it. */
  private readonly usesOfSecret = new Map<string, Set<string>>();
  /** Checked pairs and CA bundles as the builder reads them, changed in place entry by entry. */
  private readonly certificates = new Map<string, CertificatePair>();
  private readonly caBundles = new Map<string, CaBundle>();
  /** Whether the refused versions count as offered (a retry's sync). */
  private offeringRefused = false;
  /** Uses whose Ingresses changed since the last checkSecrets. */
  private dirtyUses = new Set<string>();
  /** Per use, what the builder may read of it now: its checked or last good content. */
  private readonly usable = new Map<string, CertificatePair | CaBundle>();
  /** Per use, the last good content: serves while the Secret is bad. */
  private readonly lastGoodSecrets = new Map<string, LastGood>();
  /** Per use whose last check failed, its diagnostics: checked again at every sync, as a check may depend on the time. */
  private readonly failingUses = new Map<string, Diagnostic[]>();
  /** The earliest expiry of a last good content: at that time every use is checked again. */
  private nextExpiry: number | undefined;
  /** The served servers (in host order) whose certificates qubesec_certificate_expiry_timestamp_seconds shows. */
  private expiryShown: readonly Server[] = [];
  private activeDiagnostics = new Set<string>();
  private readonly coalescer: Coalescer;
  private readonly sessionResumption: ServedSessionResumption | undefined;
  private forceNext = false;
  private readonly servedKeys = new Set<string>();
  /** Gateway API: per route intent (intentKey), its JSON, so that an unchanged route keeps its intent object. */
  private readonly gatewayIntents = new Map<string, string>();
  private gatewayDiagnostics: Diagnostic[] = [];
  private gatewaysTranslatedWith: TlsDefaults | undefined;
  /** Secrets (namespace/name) the Gateways' listeners named at the last translation: their changes translate again. */
  private gatewaySecrets = new Set<string>();
  /** ConfigMaps (namespace/name) the BackendTLSPolicies named at the last translation: their changes translate again. */
  private gatewayConfigMaps = new Set<string>();
  private readonly caConfigMapChecks = new WeakMap<V1ConfigMap, CheckedCa>();
  /** Per Secret object a listener names, whether it holds a usable pair. */
  private readonly listenerSecretChecks = new WeakMap<V1Secret, boolean>();
  private gatewayStatusNow: GatewayStatus = { gatewayClasses: [], gateways: [], routes: [], policies: [], programmed: false };
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
    this.view = new SourceView(source);
  }

  async start(): Promise<void> {
    await this.source.start((change) => {
      this.view.note(change);
      this.schedule();
    });
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

  /** The status of QubeSec's GatewayClasses, their Gateways and the HTTPRoutes naming them, as of the last sync. */
  get gatewayStatus(): GatewayStatus {
    return this.gatewayStatusNow;
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
    if (!this.isOurs(ingress, snapshot.ingressClasses)) return { allowed: true, warnings: [] };
    const configMap = snapshot.configMaps.find((c) => keyOf(c) === this.options.configMap);
    const { intent, diagnostics } = this.translate(ingress, this.defaults(configMap, []));
    const warnings = diagnostics.filter((d) => d.type === 'Warning');
    if (!intent) return { allowed: false, message: warnings.filter((d) => d.reason === REJECTED).map((d) => d.message).join('; ') };
    return { allowed: true, warnings: warnings.map((d) => d.message) };
  }

  /**
   * What a sync would make of `route` (an HTTPRoute, GRPCRoute or TLSRoute) among the other objects of the last sync: denied with the values QubeSec
   * refuses (features it does not serve yet are Warnings: another controller may serve them), allowed with the
   * route's Warnings. A route naming none of QubeSec's Gateways is allowed as it is. Pure over memory: no I/O.
   */
  admitRoute(kind: RouteKind, route: HTTPRoute | GRPCRoute | TLSRoute): AdmissionDecision {
    const gateway = this.options.gateway;
    if (!gateway) return { allowed: true, warnings: [] };
    const { namespace, name } = refOf(route);
    const translation = this.translateGatewayApi(gateway, this.tlsDefaults?.defaults ?? this.options.tlsDefaults, { [ROUTE_LISTS[kind]]: route });
    const judged = translation.routes.find((r) => r.ref.kind === kind && r.ref.namespace === namespace && r.ref.name === name);
    if (!judged) return { allowed: true, warnings: [] };
    if (judged.refused.length > 0) return { allowed: false, message: judged.refused.join('; ') };
    return { allowed: true, warnings: warningsAbout(translation, kind, namespace, name) };
  }

  /**
   * Admission of a Gateway: judged by the same translation as a sync, with the reviewed Gateway in place of its
   * current version. A listener value QubeSec refuses (Accepted False UnsupportedValue: a bad hostname or tls.options
   * value, a TLS mode its protocol cannot have) is denied, naming the field; what is not served yet, or a Secret not
   * there yet, is a warning. A Gateway of another controller's class is allowed untouched.
   */
  admitGateway(reviewed: Gateway): AdmissionDecision {
    const gateway = this.options.gateway;
    if (!gateway) return { allowed: true, warnings: [] };
    const { namespace, name } = refOf(reviewed);
    const translation = this.translateGatewayApi(gateway, this.tlsDefaults?.defaults ?? this.options.tlsDefaults, { gateways: reviewed });
    const judged = translation.gateways.find((g) => g.ref.namespace === namespace && g.ref.name === name);
    if (!judged) return { allowed: true, warnings: [] };
    const refused = judged.listeners.filter((l) => !l.notServedYet).flatMap((l) => l.conditions.filter((c) => c.type === 'Accepted' && c.status === 'False' && c.reason === 'UnsupportedValue').map((c) => c.message));
    if (refused.length > 0) return { allowed: false, message: refused.join('; ') };
    return { allowed: true, warnings: warningsAbout(translation, 'Gateway', namespace, name) };
  }

  /**
   * Takes in what changed since the last sync (the source's changes, by key), translates and offers the Ingresses
   * that changed, checks the Secrets whose uses or content changed, and tells the builder all of it: a sync costs
   * what changed, not what is there.
   */
  private async sync(): Promise<void> {
    try {
      await this.syncChanges();
    } catch (err) {
      // What this sync took in may be half done (a builder that threw midway included): the next one starts from the
      // whole snapshot, every key changed, and builds from scratch.
      this.view.reset();
      this.translatedWith = undefined;
      this.builder = new ModelBuilder();
      this.builderOnLatest = false;
      throw err;
    }
  }

  private async syncChanges(): Promise<void> {
    const started = process.hrtime.bigint();
    const changed = this.view.update();
    const diagnostics: Diagnostic[] = [];
    const defaults = this.updateDefaults(changed.configMaps);
    diagnostics.push(...defaults.diagnostics);

    const retry = this.retryNext;
    this.retryNext = false;
    this.offeringRefused = retry;
    if (retry) for (const key of this.refusedIntents.keys()) this.updateSecretUses(key);
    this.updateIngresses(changed.ingresses, changed.ingressClasses.size > 0, defaults.defaults);
    for (const list of this.translationDiagnostics.values()) diagnostics.push(...list);
    this.updateGateways(changed, defaults.defaults);
    diagnostics.push(...this.gatewayDiagnostics);
    this.updateEndpointSlices(changed.endpointSlices);
    for (const key of changed.services) this.touched.services.add(key);

    // A retry offers the refused versions again; the sync after one takes them back out.
    const offeredChanges = new Map(this.changedIntents);
    if (retry) {
      for (const [key, refusal] of this.refusedIntents) {
        const version = offeredVersion(this.current.get(key), this.acceptedIntents.get(key), refusal, true);
        if (version) offeredChanges.set(key, version);
      }
    }
    const offered = { accepted: this.acceptedIntents, changed: offeredChanges };
    // Checked once for every version a try may hold, so that tries neither repeat nor forget a Secret's last good content.
    this.checkSecrets(changed.secrets, diagnostics);
    const shared = this.sessionResumption?.model(this.ticketSecrets(), new Date(), diagnostics);
    const build = (intents: Iterable<IngressIntent>, changes?: InputChanges) => {
      const built = this.builder.build({
        intents,
        services: this.view.of('services'),
        endpointSlices: this.slicesByService,
        certificates: this.certificates,
        caBundles: this.caBundles,
        defaultBackend: this.options.defaultBackend,
        defaultPolicy: defaults.policy,
        defaultCertificates: shared?.defaultCertificates ?? this.options.defaultCertificates,
      }, changes);
      return { ...built, model: { ...built.model, sessionResumption: shared?.resumption } };
    };
    const buildTry = (keys: readonly string[]) => {
      this.builderOnLatest = false;
      return build(versionsOf(offered, keys));
    };

    const force = this.forceNext;
    this.forceNext = false;
    // Every change at once first (the normal apply); only when NGINX refuses it, tries (nginx -t, no reload) find
    // the changes to blame, and the others are applied without them.
    const changedKeys = [...offeredChanges.keys()];
    const steps = isolate(changedKeys);
    steps.next(); // its first try: every change
    const all = retry ? buildTry(changedKeys) : this.buildLatest(build);
    let applied = all;
    let result = await this.dataPlane.apply(all.model, force);
    let isolation: Isolation;
    if (result.status === 'failed' && !result.refused) {
      isolation = { failed: result.error };
    } else {
      let step = steps.next(result.status === 'failed' ? result.error : undefined);
      while (!step.done) step = steps.next(await this.dataPlane.test(buildTry(step.value).model));
      isolation = step.value;
      if (!('failed' in isolation) && isolation.refused.size > 0) {
        applied = buildTry(isolation.accepted);
        result = await this.dataPlane.apply(applied.model, force);
        if (result.status === 'failed') isolation = { failed: result.error };
      }
    }
    if ('failed' in isolation) {
      // Nothing new serves and no Ingress is to blame: one Event, about the first Ingress whose change waits (else the
      // first of ours), not one per Ingress; the retry comes with backoff.
      diagnostics.push(...all.diagnostics);
      const aboutKey = changedKeys[0] ?? this.current.keys().next().value;
      const ingress = aboutKey === undefined ? undefined : this.view.get('ingresses', aboutKey);
      const about = (aboutKey === undefined ? undefined : this.current.get(aboutKey)?.ref) ?? (ingress && ingressRef(ingress));
      const waiting = changedKeys.length > 1 ? ` (the changes of ${changedKeys.length} Ingresses wait, this one's among them)` : '';
      if (about) diagnostics.push({ object: about, type: 'Warning', reason: 'ReloadFailed', message: `the data plane refused the new configuration; the previous one keeps serving: ${isolation.failed}${waiting}` });
    } else {
      diagnostics.push(...applied.diagnostics);
      for (const key of this.goneSinceApply) this.servedKeys.delete(key);
      this.goneSinceApply.clear();
      for (const key of isolation.accepted) {
        this.acceptedIntents.set(key, offeredChanges.get(key)!);
        this.refusedIntents.delete(key);
        this.servedKeys.add(key);
      }
      for (const [key, error] of isolation.refused) {
        const version = offeredChanges.get(key)!;
        const before = this.refusedIntents.get(key);
        // A retry refusing the same version keeps the first message: NGINX's differs in time, PID and line number,
        // and a new message would be a new Event.
        this.refusedIntents.set(key, { version, error: before?.version === version ? before.error : error });
      }
      for (const key of [...isolation.accepted, ...isolation.refused.keys()]) this.reoffer(key);
    }
    for (const [key, { version, error }] of this.refusedIntents) {
      const serving = this.acceptedIntents.has(key) ? 'its last accepted version keeps serving' : 'it is not served';
      diagnostics.push({ object: version.ref, type: 'Warning', reason: REFUSED_BY_NGINX, message: `${version.ref.kind} ${version.ref.namespace}/${version.ref.name}: NGINX refused this version (${serving}): ${error}` });
    }
    // A retry offered the refused versions: their Secret uses count for that sync only.
    this.offeringRefused = false;
    if (retry) for (const key of this.refusedIntents.keys()) this.updateSecretUses(key);
    this.retryLater('failed' in isolation || this.refusedIntents.size > 0);
    await this.report(diagnostics);

    this.gatewayStatusNow = { ...this.gatewayStatusNow, programmed: !('failed' in isolation) };
    const rejected = this.rejectedByTranslation.size + [...this.refusedIntents.keys()].filter((key) => !this.gatewayIntents.has(key)).length;
    this.metrics.ingresses.set({ state: 'served' }, this.current.size - this.gatewayIntents.size - rejected);
    this.metrics.ingresses.set({ state: 'rejected' }, rejected);
    this.showCertificateExpiry(applied.model.servers);
    if (result.status !== 'unchanged') {
      this.metrics.syncDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
    this.onSynced();
  }

  /** The first build of a sync, of `latest`: told what changed when its last build was of `latest` too. */
  private buildLatest<T>(build: (intents: Iterable<IngressIntent>, changes?: InputChanges) => T): T {
    const touched = this.touched;
    const changes: InputChanges | undefined = this.builderOnLatest
      ? { intents: new Map([...touched.intents].map((key) => [key, this.latest.get(key)])), services: touched.services, endpointSlices: touched.endpointSlices, certificates: touched.certificates, caBundles: touched.caBundles }
      : undefined;
    const built = build(this.latest.values(), changes);
    for (const keys of Object.values(touched)) keys.clear();
    this.builderOnLatest = true;
    return built;
  }

  /** The defaults (flags and ConfigMap) and their diagnostics, computed again only when the ConfigMap changed. */
  private updateDefaults(changedConfigMaps: ReadonlySet<string>): NonNullable<Reconciler['tlsDefaults']> {
    if (this.tlsDefaults && !changedConfigMaps.has(this.options.configMap)) return this.tlsDefaults;
    const diagnostics: Diagnostic[] = [];
    const defaults = this.defaults(this.options.configMap ? this.view.get('configMaps', this.options.configMap) : undefined, diagnostics);
    const text = JSON.stringify(defaults);
    // Equal defaults keep the object, so that the translation cache keeps every translation.
    const kept = this.tlsDefaults?.text === text ? this.tlsDefaults : undefined;
    this.tlsDefaults = { defaults: kept?.defaults ?? defaults, text, policy: kept?.policy ?? defaultPolicy(defaults, this.options.capabilities), diagnostics };
    return this.tlsDefaults;
  }

  /**
   * Translates the Ingresses that changed (every one when the IngressClasses or the defaults changed) and offers
   * their new versions.
   */
  private updateIngresses(changedIngresses: ReadonlySet<string>, classesChanged: boolean, tlsDefaults: TlsDefaults): void {
    const everyOne = classesChanged || this.translatedWith !== tlsDefaults;
    this.translatedWith = tlsDefaults;
    const keys = everyOne ? new Set([...this.current.keys(), ...this.view.of('ingresses').keys()]) : changedIngresses;
    const classes = [...this.view.of('ingressClasses').values()];
    for (const key of keys) {
      const ingress = this.view.get('ingresses', key);
      if (!ingress || !this.isOurs(ingress, classes)) {
        this.forget(key);
        this.translationDiagnostics.delete(key);
        this.translations.delete(key);
      } else {
        const translation = this.translations.get(ingress, tlsDefaults);
        this.current.set(key, translation.intent);
        if (translation.intent) this.rejectedByTranslation.delete(key);
        else this.rejectedByTranslation.add(key);
        this.goneSinceApply.delete(key);
        if (translation.diagnostics.length > 0) this.translationDiagnostics.set(key, translation.diagnostics);
        else this.translationDiagnostics.delete(key);
      }
      this.reoffer(key);
    }
  }

  /** An Ingress or route no longer ours to serve: served no more after the next accepted apply. */
  private forget(key: string): void {
    if (this.current.delete(key)) this.goneSinceApply.add(key);
    this.rejectedByTranslation.delete(key);
    this.acceptedIntents.delete(key);
    this.refusedIntents.delete(key);
  }

  /**
   * Translates the Gateway API objects again, all at once (they are few; each Ingress is translated alone), when any
   * of them, a Namespace, a Service, a Secret a listener names or the defaults changed; offers the routes whose
   * intents changed. A route with no intent (not accepted) is not served.
   */
  private updateGateways(changed: ChangedKeys<Snapshot>, tlsDefaults: TlsDefaults): void {
    const gateway = this.options.gateway;
    if (!gateway) return;
    const gatewayKinds = [changed.gatewayClasses, changed.gateways, changed.httpRoutes, changed.grpcRoutes, changed.tlsRoutes, changed.referenceGrants, changed.backendTlsPolicies, changed.namespaces];
    const referenced = this.view.of('gateways').size > 0 && (changed.services.size > 0 || [...changed.secrets].some((key) => this.gatewaySecrets.has(key))
      || [...changed.configMaps].some((key) => this.gatewayConfigMaps.has(key)));
    if (!gatewayKinds.some((keys) => keys.size > 0) && !referenced && this.gatewaysTranslatedWith === tlsDefaults) return;
    this.gatewaysTranslatedWith = tlsDefaults;
    const gateways = [...this.view.of('gateways').values()] as unknown as Gateway[];
    this.gatewaySecrets = new Set(gateways.flatMap((g) => (g.spec?.listeners ?? []).flatMap((l) => (l.tls?.certificateRefs ?? []).map((ref) => `${ref.namespace ?? g.metadata.namespace}/${ref.name}`))));
    const policies = [...this.view.of('backendTlsPolicies').values()] as unknown as BackendTLSPolicy[];
    this.gatewayConfigMaps = new Set(policies.flatMap((p) => (p.spec?.validation?.caCertificateRefs ?? []).map((ref) => `${p.metadata.namespace}/${ref.name}`)));
    const translation = this.translateGatewayApi(gateway, tlsDefaults);
    this.gatewayDiagnostics = translation.diagnostics;
    this.gatewayStatusNow = { gatewayClasses: translation.gatewayClasses, gateways: translation.gateways, routes: translation.routes, policies: translation.policies, programmed: this.gatewayStatusNow.programmed };
    const next = new Map(translation.intents.map((intent) => [intentKey(intent), intent]));
    for (const key of this.gatewayIntents.keys()) {
      if (next.has(key)) continue;
      this.gatewayIntents.delete(key);
      this.forget(key);
      this.reoffer(key);
    }
    for (const [key, intent] of next) {
      const text = JSON.stringify(intent);
      if (this.gatewayIntents.get(key) === text) continue;
      this.gatewayIntents.set(key, text);
      this.current.set(key, intent);
      this.goneSinceApply.delete(key);
      this.reoffer(key);
    }
  }

  /**
   * The one call of translateGateways: syncs and admission reviews judge alike, on the objects of the last sync; a
   * review puts the object it judges in place of its current version.
   */
  private translateGatewayApi(gateway: NonNullable<ReconcilerOptions['gateway']>, tlsDefaults: TlsDefaults, reviewed: { gateways?: Gateway; httpRoutes?: HTTPRoute; grpcRoutes?: GRPCRoute; tlsRoutes?: TLSRoute } = {}): GatewayTranslation {
    const list = <T>(kind: 'gatewayClasses' | 'gateways' | 'httpRoutes' | 'grpcRoutes' | 'tlsRoutes' | 'referenceGrants' | 'backendTlsPolicies') => {
      const held = this.view.of(kind);
      const replacing = reviewed[kind as keyof typeof reviewed];
      if (!replacing) return [...held.values()] as unknown as T[];
      const { namespace, name } = refOf(replacing);
      return [...[...held.entries()].filter(([key]) => key !== `${namespace}/${name}`).map(([, o]) => o), replacing] as unknown as T[];
    };
    return translateGateways({
      gatewayClasses: list<GatewayClass>('gatewayClasses'),
      gateways: list<Gateway>('gateways'),
      httpRoutes: list<HTTPRoute>('httpRoutes'),
      grpcRoutes: list<GRPCRoute>('grpcRoutes'),
      tlsRoutes: list<TLSRoute>('tlsRoutes'),
      referenceGrants: list<ReferenceGrant>('referenceGrants'),
      backendTlsPolicies: list<BackendTLSPolicy>('backendTlsPolicies'),
      namespaceLabels: new Map([...this.view.of('namespaces').values()].map((n) => [n.metadata?.name ?? '', n.metadata?.labels ?? {}])),
      services: this.view.of('services'),
      certificates: { has: (key) => this.certificates.has(key) || this.listenerSecretUsable(key) },
      caConfigMaps: { get: (key) => this.caConfigMap(key) },
    }, { controllerName: gateway.controllerName, defaults: tlsDefaults, capabilities: this.options.capabilities, ports: gateway.ports });
  }

  /** The checked ca.crt of a ConfigMap a BackendTLSPolicy names (once per ConfigMap object), undefined when there is none. */
  private caConfigMap(key: string): CheckedCa | undefined {
    const configMap = this.view.get('configMaps', key);
    if (!configMap) return undefined;
    let checked = this.caConfigMapChecks.get(configMap);
    if (!checked) this.caConfigMapChecks.set(configMap, (checked = checkCaConfigMap(configMap, new Date())));
    return checked;
  }

  /** Whether the Secret a listener names holds a usable serving pair now (checked once per Secret object). */
  private listenerSecretUsable(key: string): boolean {
    const secret = this.view.get('secrets', key);
    if (!secret) return false;
    let usable = this.listenerSecretChecks.get(secret);
    if (usable === undefined) this.listenerSecretChecks.set(secret, (usable = !('error' in checkTlsSecret(secret, new Date()))));
    return usable;
  }

  /**
   * The offer of one Ingress: its refusal holds for the version refused (gone once the Ingress changed or went away),
   * a version not accepted (and not refused) is offered; `latest` and the Secret uses follow.
   */
  private reoffer(key: string): void {
    const version = this.current.get(key);
    const accepted = this.acceptedIntents.get(key);
    if (this.refusedIntents.get(key)?.version !== version) this.refusedIntents.delete(key);
    const offered = offeredVersion(version, accepted, this.refusedIntents.get(key), false);
    if (offered) this.changedIntents.set(key, offered);
    else this.changedIntents.delete(key);
    const latest = this.changedIntents.get(key) ?? accepted;
    if (this.latest.get(key) !== latest) {
      if (latest) this.latest.set(key, latest);
      else this.latest.delete(key);
      this.touched.intents.add(key);
    }
    this.updateSecretUses(key);
  }

  /** Regroups the EndpointSlices that changed by their Service: a Service's list is a new array when it changed. */
  private updateEndpointSlices(changedSlices: ReadonlySet<string>): void {
    for (const key of changedSlices) {
      const slice = this.view.get('endpointSlices', key);
      const before = this.serviceOfSlice.get(key);
      const after = slice && endpointSliceService(slice);
      if (before !== undefined) {
        // Copied to its length: a filtered array keeps room to grow, and there is one list per Service.
        const rest = this.slicesByService.get(before)!.filter((s) => keyOf(s) !== key).slice();
        if (rest.length > 0) this.slicesByService.set(before, rest);
        else this.slicesByService.delete(before);
        this.serviceOfSlice.delete(key);
        this.touched.endpointSlices.add(before);
      }
      if (after !== undefined) {
        this.slicesByService.set(after, (this.slicesByService.get(after) ?? []).concat(slice!));
        this.serviceOfSlice.set(key, after);
        this.touched.endpointSlices.add(after);
      }
    }
  }

  /** The session ticket Secret, when there is one. */
  private ticketSecrets(): V1Secret[] {
    const ref = this.options.sessionResumption?.ticketSecret;
    const secret = ref && this.view.get('secrets', `${ref.namespace}/${ref.name}`);
    return secret ? [secret] : [];
  }

  /**
   * Sets the expiry gauge of the servers that changed since the last sync (a server object is never changed once
   * built): both lists are in host order, so one pass over them by identity finds the servers that came and went.
   */
  private showCertificateExpiry(servers: readonly Server[]): void {
    const before = this.expiryShown;
    this.expiryShown = servers;
    if (before === servers) return;
    const labels = (server: Server) => (server.tls?.certificates ?? []).map((pair) => ({ labels: { host: server.host, secret: pair.source, key_algorithm: pair.keyAlgorithm }, value: pair.notAfter.getTime() / 1000 }));
    let i = 0;
    let j = 0;
    while (i < before.length || j < servers.length) {
      const old = before[i];
      const now = servers[j];
      if (old !== undefined && old === now) {
        i++;
        j++;
        continue;
      }
      const order = old === undefined ? 1 : now === undefined ? -1 : old.host.localeCompare(now.host);
      if (order <= 0) {
        for (const { labels: gone } of labels(old!)) this.metrics.certificateExpiry.remove(gone);
        i++;
      }
      if (order >= 0) {
        for (const { labels: shown, value } of labels(now!)) this.metrics.certificateExpiry.set(shown, value);
        j++;
      }
    }
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

  private isOurs(ingress: V1Ingress, classes: readonly V1IngressClass[]): boolean {
    return servedIngresses([ingress], classes, this.options.controllerName, this.options.ingressClass).length > 0;
  }

  /** The one call of translateIngress: syncs (through the cache) and admission reviews must judge alike. */
  private translate(ingress: V1Ingress, tlsDefaults: TlsDefaults): IngressTranslation {
    return translateIngress(ingress, tlsDefaults, this.options.capabilities, this.options.defaultBackend !== undefined);
  }

  /** Flags, overridden key by key by the defaults ConfigMap when it exists and parses. */
  private defaults(configMap: V1ConfigMap | undefined, diagnostics: Diagnostic[]): TlsDefaults {
    if (!this.options.configMap || !configMap) return this.options.tlsDefaults;
    const parsed = parseSettings(configMap.data, this.options.capabilities, '', (key) => `key ${key}`);
    const ref = { kind: 'ConfigMap', namespace: configMap.metadata?.namespace ?? '', name: configMap.metadata?.name ?? '', uid: configMap.metadata?.uid };
    for (const error of parsed.errors) {
      diagnostics.push({ object: ref, type: 'Warning', reason: 'InvalidDefault', message: `ConfigMap ${this.options.configMap}: ${error}; the flag's value applies` });
    }
    return overrideDefaults(this.options.tlsDefaults, parsed.settings);
  }

  /**
   * The Secret uses of one Ingress's offered versions (accepted, and changed or, on a retry, refused): a serving
   * pair (spec.tls), a CA bundle (auth-tls-secret, proxy-ssl-secret) or a client pair (proxy-ssl-secret). The uses
   * that came, went or changed users are checked at the next checkSecrets.
   */
  private updateSecretUses(key: string): void {
    const changed = this.changedIntents.get(key) ?? (this.offeringRefused ? this.refusedIntents.get(key)?.version : undefined);
    const versions = [...new Set([this.acceptedIntents.get(key), changed])].filter((v) => v !== undefined);
    const wanted = new Map<string, { use: SecretUse; secret: string; users: IngressIntent[] }>();
    const want = (secret: string | undefined, use: SecretUse, intent: IngressIntent) => {
      if (secret === undefined) return;
      const id = `${use} ${secret}`;
      const entry = wanted.get(id) ?? { use, secret, users: [] };
      if (!entry.users.includes(intent)) entry.users.push(intent);
      wanted.set(id, entry);
    };
    for (const intent of versions) {
      for (const entry of intent.tls) want(entry.secret, 'serving', intent);
      want(intent.proxy.clientAuth?.secret, 'ca', intent);
      want(intent.proxy.upstreamTls?.secret, 'client', intent);
      if (intent.proxy.upstreamTls?.verify) want(intent.proxy.upstreamTls.secret, 'ca', intent);
    }
    const before = this.secretUsesOf.get(key) ?? [];
    if (before.length === 0 && wanted.size === 0) return;
    for (const id of before) {
      if (wanted.has(id)) continue;
      const entry = this.secretUses.get(id)!;
      entry.users.delete(key);
      this.dirtyUses.add(id);
      if (entry.users.size > 0) continue;
      this.secretUses.delete(id);
      const ofSecret = this.usesOfSecret.get(entry.key)!;
      ofSecret.delete(id);
      if (ofSecret.size === 0) this.usesOfSecret.delete(entry.key);
    }
    const ids: string[] = [];
    for (const [id, { use, secret, users }] of wanted) {
      let entry = this.secretUses.get(id);
      if (!entry) {
        this.secretUses.set(id, (entry = { id, use, key: secret, users: new Map() }));
        let ofSecret = this.usesOfSecret.get(secret);
        if (!ofSecret) this.usesOfSecret.set(secret, (ofSecret = new Set()));
        ofSecret.add(id);
      }
      ids.push(entry.id);
      const held = entry.users.get(key);
      if (held && held.length === users.length && held.every((v, i) => v === users[i])) continue;
      entry.users.set(key, users);
      this.dirtyUses.add(id);
    }
    if (ids.length > 0) this.secretUsesOf.set(key, ids.slice());
    else this.secretUsesOf.delete(key);
  }

  /**
   * Checks the Secret uses that changed (their Ingresses or their Secret), the ones that failed last time, and all
   * of them once a last good content expires. A Secret that turned bad keeps serving its last good content.
   */
  private checkSecrets(changedSecrets: ReadonlySet<string>, diagnostics: Diagnostic[]): void {
    const now = new Date();
    const dirty = this.dirtyUses;
    this.dirtyUses = new Set();
    for (const key of changedSecrets) for (const id of this.usesOfSecret.get(key) ?? []) dirty.add(id);
    for (const id of this.failingUses.keys()) dirty.add(id);
    if (this.nextExpiry !== undefined && now.getTime() >= this.nextExpiry) for (const id of this.lastGoodSecrets.keys()) dirty.add(id);
    const secretKeys = new Set<string>();
    let lastGoodChanged = false;
    for (const id of dirty) {
      secretKeys.add(id.slice(id.indexOf(' ') + 1));
      lastGoodChanged = this.checkUse(id, now) || lastGoodChanged;
    }
    for (const key of secretKeys) {
      const pair = (this.usable.get(`serving ${key}`) ?? this.usable.get(`client ${key}`)) as CertificatePair | undefined;
      const ca = this.usable.get(`ca ${key}`) as CaBundle | undefined;
      if (this.certificates.get(key) !== pair) {
        if (pair) this.certificates.set(key, pair);
        else this.certificates.delete(key);
        this.touched.certificates.add(key);
      }
      if (this.caBundles.get(key) !== ca) {
        if (ca) this.caBundles.set(key, ca);
        else this.caBundles.delete(key);
        this.touched.caBundles.add(key);
      }
    }
    if (lastGoodChanged) {
      const expiries = [...this.lastGoodSecrets.values()].map((good) => good.expires?.getTime() ?? Infinity);
      const earliest = Math.min(...expiries);
      this.nextExpiry = Number.isFinite(earliest) ? earliest : undefined;
    }
    for (const failed of this.failingUses.values()) diagnostics.push(...failed);
  }

  /** Checks one use; whether its last good content changed. */
  private checkUse(id: string, now: Date): boolean {
    const entry = this.secretUses.get(id);
    const secret = entry && this.view.get('secrets', entry.key);
    this.failingUses.delete(id);
    this.usable.delete(id);
    if (!entry || !secret) return this.lastGoodSecrets.delete(id);
    // A proxy-ssl-secret may hold only ca.crt: no client certificate is then presented.
    if (entry.use === 'client' && !secretData(secret, PAIR_FIELDS.certificate)) return false;
    const fresh = (good: LastGood) => good.expires === undefined || good.expires > now;
    const cached = this.lastGoodSecrets.get(id);
    // The same object is the same content: only its users changed.
    if (cached?.from === secret && fresh(cached)) {
      this.usable.set(id, cached.content);
      return false;
    }
    const data = createHash('sha256').update(JSON.stringify([secret.type, secret.data, secret.stringData])).digest('base64');
    if (cached && cached.data === data && fresh(cached)) {
      this.lastGoodSecrets.set(id, { ...cached, from: secret });
      this.usable.set(id, cached.content);
      return false;
    }
    const checked = checkSecret(secret, entry.use, now);
    if (!('error' in checked)) {
      this.lastGoodSecrets.set(id, { ...checked, from: secret, data });
      this.usable.set(id, checked.content);
      return true;
    }
    const ref = { kind: 'Secret', namespace: secret.metadata?.namespace ?? '', name: secret.metadata?.name ?? '', uid: secret.metadata?.uid };
    const usable = cached && fresh(cached);
    const keeps = usable ? '; the last good certificate keeps serving' : '';
    const failed: Diagnostic[] = [{ object: ref, type: 'Warning', reason: 'InvalidCertificate', message: `${checked.error}${keeps}` }];
    for (const intent of [...entry.users.values()].flat()) {
      failed.push({ object: intent.ref, type: 'Warning', reason: 'InvalidCertificate', message: `Ingress ${intent.ref.namespace}/${intent.ref.name}: ${checked.error}${keeps}` });
    }
    this.failingUses.set(id, failed);
    if (usable) this.usable.set(id, cached.content);
    return false;
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

/** namespace and name of an object under review (an object without namespace is in default, as the API server puts it). */
function refOf(object: { metadata?: { namespace?: string; name?: string } }): { namespace: string; name: string } {
  return { namespace: object.metadata?.namespace ?? 'default', name: object.metadata?.name ?? '' };
}

/** The translation's Warnings about one object, each once: admission passes them to kubectl. */
function warningsAbout(translation: GatewayTranslation, kind: string, namespace: string, name: string): string[] {
  const about = translation.diagnostics.filter((d) => d.type === 'Warning' && d.object.kind === kind && d.object.namespace === namespace && d.object.name === name);
  return [...new Set(about.map((d) => d.message))];
}
