// The PKI controller: keeps Issuers' and ClusterIssuers' Ready conditions, issues and renews Certificates into
// Secrets, and creates Certificates for annotated Ingresses (as cert-manager's ingress-shim). Runs with the ingress
// controller against the same API server; the ingress side picks the Secrets up like any other.
import { X509Certificate } from 'node:crypto';
import {
  CoreV1Api,
  CustomObjectsApi,
  NetworkingV1Api,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Ingress,
  type V1Secret,
} from '@kubernetes/client-node';
import { Coalescer } from '../coalescer.js';
import { parseCertificateAnnotations } from '../model/annotations.js';
import type { Diagnostic, ObjectRef } from '../model/types.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { reflectorHooks } from '../sources/kubernetes.js';
import { Reflector, kubernetesListWatch, type ListOptions } from '../sources/reflector.js';
import type { EventRecorder } from '../sources/source.js';
import { KEM_ALGORITHMS, SIGNATURE_ALGORITHMS, generateKeyPair, isSignatureAlgorithm, type SignatureAlgorithm } from './algorithms.js';
import {
  GROUP,
  SECRET_ANNOTATIONS,
  VERSION,
  checkCertificateSpec,
  issuerState,
  mergeCondition,
  plan,
  specHash,
  type CertificateResource,
  type CertificateSpec,
  type Condition,
  type IssuerResource,
  type IssuerState,
} from './resources.js';
import { issueCertificate, privateKeyPem, servedChain, type Issuer } from './x509.js';

export interface PkiControllerOptions {
  /** Namespace of the Secrets that ClusterIssuers name (cert-manager's --cluster-resource-namespace). */
  clusterResourceNamespace: string;
  debounceMs: number;
  /** Algorithm of the Certificates made for annotated Ingresses that do not name one (--default-certificate-algorithm). */
  defaultAlgorithm: SignatureAlgorithm;
}

const MAX_TIMER_MS = 6 * 3600_000;

export class PkiController {
  private readonly reflectors = new Map<string, Reflector<KubernetesObject>>();
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly coalescer: Coalescer;
  private readonly reported = new Set<string>();
  private renewalTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(kc: KubeConfig, private readonly options: PkiControllerOptions, private readonly recorder: EventRecorder, metrics: Metrics, private readonly log: Logger) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    const net = kc.makeApiClient(NetworkingV1Api);
    const customList = (plural: string) => (o: ListOptions) => this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural }, o) as Promise<KubernetesListObject<KubernetesObject>>;
    const add = (name: string, path: string, list: (o: ListOptions) => Promise<KubernetesListObject<KubernetesObject>>) => {
      const resource = `pki/${name}`;
      const reflector = new Reflector(resource, kubernetesListWatch(kc, path, list), () => this.coalescer.schedule(), reflectorHooks(resource, metrics, log));
      this.reflectors.set(name, reflector);
    };
    add('certificates', `/apis/${GROUP}/${VERSION}/certificates`, customList('certificates'));
    add('issuers', `/apis/${GROUP}/${VERSION}/issuers`, customList('issuers'));
    add('clusterissuers', `/apis/${GROUP}/${VERSION}/clusterissuers`, customList('clusterissuers'));
    add('secrets', '/api/v1/secrets', (o) => this.core.listSecretForAllNamespaces({}, o));
    add('ingresses', '/apis/networking.k8s.io/v1/ingresses', (o) => net.listIngressForAllNamespaces({}, o));
    this.coalescer = new Coalescer(() => this.sync(), options.debounceMs, (err) => log.error('PKI sync failed', { error: err.stack ?? err.message }));
  }

  /**
   * Starts the watches and returns: the first sync runs once every kind's first list is in (an Issuer judged without
   * its CA Secret would be marked not ready), so a leader term never waits on an API server that does not answer.
   */
  async start(): Promise<void> {
    for (const reflector of this.reflectors.values()) reflector.start();
    void Promise.all([...this.reflectors.values()].map((r) => r.synced)).then(() => this.coalescer.schedule());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.renewalTimer);
    await this.coalescer.stop();
    await Promise.all([...this.reflectors.values()].map((r) => r.stop()));
  }

  private list<T>(name: string): T[] {
    return (this.reflectors.get(name)?.list() ?? []) as T[];
  }

  private secret(namespace: string, name: string): V1Secret | undefined {
    return this.list<V1Secret>('secrets').find((s) => s.metadata?.namespace === namespace && s.metadata?.name === name);
  }

  private async sync(): Promise<void> {
    if ([...this.reflectors.values()].some((r) => !r.hasSynced)) return;
    const now = new Date();
    await this.shimIngresses();
    const states = new Map<string, IssuerState>();
    for (const issuer of [...this.list<IssuerResource>('issuers'), ...this.list<IssuerResource>('clusterissuers')]) {
      // Stopped (leadership lost) during a sync: no write after that.
      if (this.stopped) return;
      const namespace = issuer.kind === 'ClusterIssuer' ? this.options.clusterResourceNamespace : issuer.metadata.namespace!;
      const state = issuerState(issuer, (name) => this.secret(namespace, name), now);
      states.set(issuerKey(issuer.kind, issuer.metadata.namespace, issuer.metadata.name), state);
      await this.setConditions(issuer, state.ready
        ? { type: 'Ready', status: 'True', reason: 'Ready', message: state.kind === 'selfSigned' ? 'self-signed issuer' : 'the CA Secret holds a valid CA certificate and key' }
        : { type: 'Ready', status: 'False', reason: state.reason, message: state.message });
    }
    let next = Infinity;
    for (const certificate of this.list<CertificateResource>('certificates')) {
      if (this.stopped) return;
      const renewal = await this.reconcileCertificate(certificate, states, now).catch((err: Error) => {
        this.log.error('certificate reconcile failed', { certificate: `${certificate.metadata.namespace}/${certificate.metadata.name}`, error: err.message });
        return Date.now() + 10_000;
      });
      next = Math.min(next, renewal);
    }
    clearTimeout(this.renewalTimer);
    if (next < Infinity) this.renewalTimer = setTimeout(() => this.coalescer.schedule(), Math.max(0, Math.min(next - Date.now(), MAX_TIMER_MS)));
  }

  /** Returns when this Certificate next needs a look (its renewal time), or Infinity. */
  private async reconcileCertificate(resource: CertificateResource, states: Map<string, IssuerState>, now: Date): Promise<number> {
    const namespace = resource.metadata.namespace!;
    const checked = checkCertificateSpec(resource);
    if ('errors' in checked) {
      await this.fail(resource, 'InvalidSpec', `Certificate ${namespace}/${resource.metadata.name}: ${checked.errors.join('; ')}`);
      return Infinity;
    }
    const spec = checked.spec;
    const state = states.get(issuerKey(spec.issuerRef.kind, spec.issuerRef.kind === 'Issuer' ? namespace : undefined, spec.issuerRef.name));
    if (!state || !state.ready) {
      const why = state && !state.ready ? `${state.reason}: ${state.message}` : 'not found';
      await this.fail(resource, 'IssuerNotReady', `${spec.issuerRef.kind} ${spec.issuerRef.name} is not ready (${why})`);
      return Date.now() + 30_000;
    }
    const decision = plan(resource, spec, this.secret(namespace, spec.secretName), now);
    const twinName = `${spec.secretName}-classical`;
    const twinDecision = spec.classicalTwin ? plan(resource, { ...spec, secretName: twinName, algorithm: 'ecdsa-p256' }, this.secret(namespace, twinName), now) : undefined;
    for (const d of [decision, twinDecision]) {
      if (d && 'error' in d) {
        await this.fail(resource, d.reason, d.error);
        return Infinity;
      }
    }
    if ('issue' in decision && !decision.issue && !(twinDecision && 'issue' in twinDecision && twinDecision.issue)) {
      await this.setStatus(resource, { type: 'Ready', status: 'True', reason: 'Issued', message: 'the certificate is up to date' }, {
        algorithm: spec.algorithm, notBefore: decision.notBefore.toISOString(), notAfter: decision.notAfter.toISOString(), renewalTime: decision.renewalTime.toISOString(),
      });
      return decision.renewalTime.getTime();
    }

    let issued;
    try {
      issued = [await this.issue(resource, spec, spec.secretName, spec.algorithm, state.kind === 'ca' ? state.issuer : undefined, now)];
      if (spec.classicalTwin) {
        if (state.kind === 'ca' && !state.classical) throw new Error(`classicalTwin needs ${spec.issuerRef.kind} ${spec.issuerRef.name} to have spec.ca.classicalSecretName (an ECDSA CA)`);
        issued.push(await this.issue(resource, { ...spec, secretName: twinName, algorithm: 'ecdsa-p256' }, twinName, 'ecdsa-p256', state.kind === 'ca' ? state.classical : undefined, now));
      }
    } catch (err) {
      await this.fail(resource, 'IssuanceFailed', `Certificate ${namespace}/${resource.metadata.name}: ${(err as Error).message}`);
      return Infinity;
    }
    // Every Secret is built in memory first, then each is written whole: no half-written Secret.
    for (const secret of issued) await this.writeSecret(secret);
    const primary = new X509Certificate(Buffer.from(issued[0]!.data!['tls.crt']!, 'base64').toString());
    const notAfter = new Date(primary.validTo);
    const renewalTime = new Date(notAfter.getTime() - spec.renewBeforeMs);
    await this.report({ object: ref(resource), type: 'Normal', reason: 'Issued', message: `issued ${spec.algorithm} certificate into Secret ${spec.secretName}${spec.classicalTwin ? ` and ecdsa-p256 into ${twinName}` : ''}, valid until ${notAfter.toISOString()} (${'issue' in decision && decision.issue ? decision.reason : 'classical twin due'})` }, true);
    await this.setStatus(resource, { type: 'Ready', status: 'True', reason: 'Issued', message: 'the certificate is up to date' }, {
      algorithm: spec.algorithm, notBefore: new Date(primary.validFrom).toISOString(), notAfter: notAfter.toISOString(), renewalTime: renewalTime.toISOString(), revision: (resource.status?.revision ?? 0) + 1,
    });
    return renewalTime.getTime();
  }

  private async issue(resource: CertificateResource, spec: CertificateSpec, secretName: string, algorithm: CertificateSpec['algorithm'], ca: Issuer | undefined, now: Date): Promise<V1Secret> {
    const keys = generateKeyPair(algorithm);
    const profile = spec.isCA ? 'ca' : isSignatureAlgorithm(algorithm) ? spec.usages : 'key-establishment';
    const pem = await issueCertificate({
      subject: `CN=${spec.commonName}`,
      dnsNames: spec.dnsNames,
      ipAddresses: spec.ipAddresses,
      profile,
      notBefore: now,
      notAfter: new Date(now.getTime() + spec.durationMs),
      publicKey: keys.publicKey,
    }, ca ?? { selfKey: keys.privateKey });
    const caPem = ca?.certificatePem ?? pem;
    const chain = servedChain(pem, caPem);
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: {
        name: secretName,
        namespace: resource.metadata.namespace,
        annotations: {
          [SECRET_ANNOTATIONS.certificate]: resource.metadata.name,
          [SECRET_ANNOTATIONS.issuer]: `${spec.issuerRef.kind}/${spec.issuerRef.name}`,
          [SECRET_ANNOTATIONS.specHash]: specHash(spec),
        },
        labels: { 'app.kubernetes.io/managed-by': 'qubesec' },
      },
      data: { 'tls.crt': b64(chain), 'tls.key': b64(privateKeyPem(keys.privateKey)), 'ca.crt': b64(caPem) },
    };
  }

  private async writeSecret(secret: V1Secret): Promise<void> {
    const namespace = secret.metadata!.namespace!;
    const current = this.secret(namespace, secret.metadata!.name!);
    if (current) {
      await this.core.replaceNamespacedSecret({ namespace, name: secret.metadata!.name!, body: { ...secret, metadata: { ...secret.metadata, resourceVersion: current.metadata?.resourceVersion } } });
    } else {
      await this.core.createNamespacedSecret({ namespace, body: secret });
    }
  }

  /** Ingresses annotated qubesec.io/issuer or qubesec.io/cluster-issuer get a Certificate per spec.tls Secret. */
  private async shimIngresses(): Promise<void> {
    const existing = this.list<CertificateResource>('certificates');
    for (const ingress of this.list<V1Ingress>('ingresses')) {
      if (this.stopped) return;
      const parsed = parseCertificateAnnotations(ingress.metadata?.annotations, [...SIGNATURE_ALGORITHMS, ...KEM_ALGORITHMS]);
      const object: ObjectRef = { kind: 'Ingress', namespace: ingress.metadata?.namespace ?? '', name: ingress.metadata?.name ?? '', uid: ingress.metadata?.uid };
      for (const error of parsed.errors) await this.report({ object, type: 'Warning', reason: 'BadCertificateRequest', message: `Ingress ${object.namespace}/${object.name}: ${error}` });
      if (!parsed.request) continue;
      const bySecret = new Map<string, string[]>();
      for (const tls of ingress.spec?.tls ?? []) {
        if (!tls.secretName) continue;
        bySecret.set(tls.secretName, [...(bySecret.get(tls.secretName) ?? []), ...(tls.hosts ?? [])]);
      }
      for (const [secretName, hosts] of bySecret) {
        const desired = {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'Certificate',
          metadata: {
            name: secretName,
            namespace: object.namespace,
            ownerReferences: [{ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', name: object.name, uid: object.uid!, controller: true, blockOwnerDeletion: true }],
          },
          spec: { secretName, dnsNames: hosts, issuerRef: parsed.request.issuerRef, algorithm: parsed.request.algorithm ?? this.options.defaultAlgorithm, classicalTwin: parsed.request.classicalTwin },
        };
        const current = existing.find((c) => c.metadata.namespace === object.namespace && c.metadata.name === secretName);
        if (!current) {
          await this.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: object.namespace, plural: 'certificates', body: desired });
          await this.report({ object, type: 'Normal', reason: 'CreateCertificate', message: `created Certificate ${secretName} for ${hosts.join(', ')}` }, true);
        } else if (JSON.stringify(stripUndefined(current.spec)) !== JSON.stringify(stripUndefined(desired.spec)) && ownedBy(current, object.uid)) {
          await this.custom.replaceNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: object.namespace, plural: 'certificates', name: secretName, body: { ...desired, metadata: { ...desired.metadata, resourceVersion: current.metadata.resourceVersion } } });
        }
      }
    }
  }

  private async fail(resource: CertificateResource, reason: string, message: string): Promise<void> {
    await this.report({ object: ref(resource), type: 'Warning', reason, message });
    await this.setStatus(resource, { type: 'Ready', status: 'False', reason, message });
  }

  private async setStatus(resource: CertificateResource, condition: Omit<Condition, 'lastTransitionTime'>, fields: Partial<NonNullable<CertificateResource['status']>> = {}): Promise<void> {
    const status = { ...resource.status, ...fields, conditions: mergeCondition(resource.status?.conditions, condition, resource.metadata.generation) };
    if (JSON.stringify(status) === JSON.stringify(resource.status)) return;
    await this.custom.replaceNamespacedCustomObjectStatus({
      group: GROUP, version: VERSION, namespace: resource.metadata.namespace!, plural: 'certificates', name: resource.metadata.name,
      body: { ...resource, status },
    }).catch((err: Error) => this.log.warn('could not update Certificate status', { certificate: resource.metadata.name, error: err.message }));
  }

  private async setConditions(issuer: IssuerResource, condition: Omit<Condition, 'lastTransitionTime'>): Promise<void> {
    const conditions = mergeCondition(issuer.status?.conditions, condition, issuer.metadata.generation);
    if (JSON.stringify(conditions) === JSON.stringify(issuer.status?.conditions)) return;
    if (condition.status === 'False') await this.report({ object: { kind: issuer.kind, namespace: issuer.metadata.namespace ?? 'default', name: issuer.metadata.name, uid: issuer.metadata.uid }, type: 'Warning', reason: condition.reason, message: condition.message });
    const body = { ...issuer, status: { ...issuer.status, conditions } };
    const request = issuer.kind === 'ClusterIssuer'
      ? this.custom.replaceClusterCustomObjectStatus({ group: GROUP, version: VERSION, plural: 'clusterissuers', name: issuer.metadata.name, body })
      : this.custom.replaceNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace: issuer.metadata.namespace!, plural: 'issuers', name: issuer.metadata.name, body });
    await request.catch((err: Error) => this.log.warn('could not update issuer status', { issuer: issuer.metadata.name, error: err.message }));
  }

  /** Records a diagnostic once (or every time, for one-off events like an issuance). */
  private async report(d: Diagnostic, always = false): Promise<void> {
    const key = `${d.object.kind}/${d.object.namespace}/${d.object.name}|${d.reason}|${d.message}`;
    if (!always && this.reported.has(key)) return;
    this.reported.add(key);
    await this.recorder.record(d);
  }
}

function issuerKey(kind: string, namespace: string | undefined, name: string): string {
  return kind === 'ClusterIssuer' ? `ClusterIssuer/${name}` : `Issuer/${namespace}/${name}`;
}

function ref(resource: CertificateResource): ObjectRef {
  return { kind: 'Certificate', namespace: resource.metadata.namespace!, name: resource.metadata.name, uid: resource.metadata.uid };
}

function ownedBy(resource: CertificateResource, uid: string | undefined): boolean {
  return (resource.metadata.ownerReferences as { uid?: string }[] | undefined)?.some((o) => o.uid === uid) ?? false;
}

function stripUndefined(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? {}));
}
