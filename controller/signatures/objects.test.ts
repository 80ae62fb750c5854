/* eslint-disable @typescript-eslint/no-explicit-any -- the tests reach into nested manifests by path */
import type { KubernetesObject } from '@kubernetes/client-node';
import fc from 'fast-check';
import { generatePrivateKey, privateKeyPem, publicKeyPem, type SignatureAlgorithm } from './algorithms.js';
import { canonicalJson, formatPath, parseFieldPath, signedView, type Json } from './canonical.js';
import { loadSigningKey, type SigningKey } from './keys.js';
import { canonicalForm, signObject, signatureAnnotation, verifyObject } from './objects.js';
import { trustAnchorsFrom, type TrustAnchors } from './trust.js';

type Obj = KubernetesObject & Record<string, unknown>;

function newSigner(algorithm: SignatureAlgorithm = 'ML-DSA-65'): { key: SigningKey; anchors: TrustAnchors } {
  const privateKey = generatePrivateKey(algorithm);
  return { key: loadSigningKey(privateKeyPem(privateKey), 'test key'), anchors: trustAnchorsFrom([{ name: 'test.pub', pem: publicKeyPem(privateKey.publicKey) }]) };
}

/** A Deployment as its author writes it. */
function deployment(): Obj {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', labels: { app: 'web' }, annotations: { team: 'payments' } },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [{
            name: 'web', image: 'nginx:1.27', ports: [{ containerPort: 80 }], env: [{ name: 'MODE', value: 'prod' }],
            resources: { limits: { cpu: '1000m', memory: '128Mi' } },
            readinessProbe: { httpGet: { path: '/healthz', port: 80 } },
          }],
          volumes: [{ name: 'conf', configMap: { name: 'web-conf' } }],
        },
      },
    },
  };
}

/** The same Deployment as the API server and the deployment controller give it back (kubectl get -o json). */
function asServed(obj: Obj): Obj {
  const served = JSON.parse(JSON.stringify(obj)) as Obj;
  served.metadata = {
    ...served.metadata, namespace: 'shop', uid: '9f1c', resourceVersion: '4711', generation: 2, creationTimestamp: new Date(0),
    managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
    annotations: { ...served.metadata!.annotations, 'deployment.kubernetes.io/revision': '2', 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
  };
  const spec = served.spec as Record<string, any>;
  Object.assign(spec, { revisionHistoryLimit: 10, progressDeadlineSeconds: 600, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } } });
  spec.template.metadata.creationTimestamp = null;
  Object.assign(spec.template.spec, { restartPolicy: 'Always', terminationGracePeriodSeconds: 30, dnsPolicy: 'ClusterFirst', securityContext: {}, schedulerName: 'default-scheduler' });
  const container = spec.template.spec.containers[0];
  Object.assign(container, { terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent' });
  container.ports[0].protocol = 'TCP';
  container.resources.limits.cpu = '1';
  Object.assign(container.readinessProbe, { timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 });
  container.readinessProbe.httpGet.scheme = 'HTTP';
  spec.template.spec.volumes[0].configMap.defaultMode = 420;
  served.status = { replicas: 3, readyReplicas: 3 };
  return served;
}

describe('signObject and verifyObject', () => {
  it.each(['ML-DSA-44', 'ML-DSA-65', 'ML-DSA-87', 'SLH-DSA-SHA2-128f', 'MLDSA65-ECDSA-P256-SHA512', 'MLDSA87-Ed448-SHAKE256'] as const)('%s: a signed Deployment verifies, also as the API server serves it', async (algorithm) => {
    const { key, anchors } = newSigner(algorithm);
    const signed = await signObject(deployment(), key);
    expect(Object.keys(signed.metadata!.annotations!)).toEqual(['team', signatureAnnotation(key.keyId)]);
    expect(signatureAnnotation(key.keyId)).toMatch(/^signatures\.qubesec\.io\/[0-9a-f]{16}$/);
    expect(await verifyObject(signed, anchors)).toEqual({ signers: [{ id: key.keyId, algorithm }], failures: [] });
    expect(await verifyObject(asServed(signed), anchors)).toEqual({ signers: [{ id: key.keyId, algorithm }], failures: [] });
  });

  it('accepts what admission plugins and the scheduler add to a bare Pod, and nothing more', async () => {
    const { key, anchors } = newSigner();
    const pod: Obj = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'n' }, spec: { containers: [{ name: 'c', image: 'busybox', volumeMounts: [{ name: 'data', mountPath: '/data' }] }], volumes: [{ name: 'data', emptyDir: {} }] } };
    const served = JSON.parse(JSON.stringify(await signObject(pod, key))) as Record<string, any>;
    const token = { name: 'kube-api-access-x7k2p', projected: { defaultMode: 420, sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] } };
    Object.assign(served.spec, {
      serviceAccountName: 'default', serviceAccount: 'default', nodeName: 'node-1', priority: 0, preemptionPolicy: 'PreemptLowerPriority', enableServiceLinks: true,
      restartPolicy: 'Always', dnsPolicy: 'ClusterFirst', schedulerName: 'default-scheduler', terminationGracePeriodSeconds: 30,
      tolerations: ['not-ready', 'unreachable'].map((t) => ({ key: `node.kubernetes.io/${t}`, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 })),
    });
    served.spec.volumes.push(token);
    Object.assign(served.spec.containers[0], { imagePullPolicy: 'Always', terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File' });
    served.spec.containers[0].volumeMounts.push({ name: 'kube-api-access-x7k2p', readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' });
    expect(await verifyObject(served as Obj, anchors)).toEqual({ signers: [{ id: key.keyId, algorithm: 'ML-DSA-65' }], failures: [] });

    served.spec.volumes.push({ name: 'host', hostPath: { path: '/' } });
    served.spec.containers[0].imagePullPolicy = 'IfNotPresent';
    expect((await verifyObject(served as Obj, anchors)).failures[0]!.reason).toBe('tampered: spec.containers[0].imagePullPolicy was added ("IfNotPresent"; not signed, not a known default nor an ignored field); spec.volumes differs (signed "1 items", found "2 items")');
  });

  it('refuses to sign an object whose annotations would pass the API server\'s 256 KiB with the signature', async () => {
    const { key, anchors } = newSigner();
    const configMap = (bytes: number): Obj => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'big', namespace: 'shop' }, data: { blob: 'x'.repeat(bytes) } });
    // The signed form is base64url in the JWS: 4/3 of the data, so about 190 KB of data still fits and 200 KB does not.
    expect((await verifyObject(await signObject(configMap(180_000), key), anchors)).failures).toEqual([]);
    await expect(signObject(configMap(200_000), key)).rejects.toThrow(/^metadata\.annotations would hold \d+ bytes with this signature .* over the API server's 262144: sign the manifest file instead/);
  });

  it('does not change the object it signs', async () => {
    const { key } = newSigner();
    const original = deployment();
    await signObject(original, key);
    expect(original).toEqual(deployment());
  });

  it('names the field that was changed, removed or added', async () => {
    const { key, anchors } = newSigner();
    const served = asServed(await signObject(deployment(), key));
    const spec = served.spec as Record<string, any>;
    spec.template.spec.containers[0].image = 'evil:1.0';
    delete spec.template.spec.containers[0].env;
    spec.template.spec.hostNetwork = true;
    const result = await verifyObject(served, anchors);
    expect(result.signers).toEqual([]);
    expect(result.failures).toEqual([{
      annotation: signatureAnnotation(key.keyId),
      reason: 'tampered: spec.template.spec.containers[0].env was removed (signed [{"name":"MODE","value":"prod"}]); '
        + 'spec.template.spec.containers[0].image differs (signed "nginx:1.27", found "evil:1.0"); '
        + 'spec.template.spec.hostNetwork was added (true; not signed, not a known default nor an ignored field)',
    }]);
  });

  it('refuses a default value the author did not choose when it is not the default (imagePullPolicy Never)', async () => {
    const { key, anchors } = newSigner();
    const served = asServed(await signObject(deployment(), key));
    (served.spec as any).template.spec.containers[0].imagePullPolicy = 'Never';
    (served.spec as any).replicas = 1;
    expect((await verifyObject(served, anchors)).failures[0]!.reason).toBe('tampered: spec.replicas differs (signed 3, found 1); spec.template.spec.containers[0].imagePullPolicy was added ("Never"; not signed, not a known default nor an ignored field)');
  });

  it('fails for a change to any signed field, naming it', async () => {
    const { key, anchors } = newSigner('ML-DSA-44');
    const signed = await signObject(deployment(), key);
    const leaves: (string | number)[][] = [];
    const collect = (v: Json, path: (string | number)[]) => {
      if (Array.isArray(v)) v.forEach((x, i) => collect(x, [...path, i]));
      else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) collect(x, [...path, k]);
      else leaves.push(path);
    };
    collect(signedView(signed), []);
    expect(leaves.length).toBeGreaterThan(15);
    for (const path of leaves) {
      const tampered = JSON.parse(JSON.stringify(signed)) as Record<string, any>;
      const parent = path.slice(0, -1).reduce((o, k) => o[k], tampered);
      const last = path[path.length - 1]!;
      parent[last] = typeof parent[last] === 'number' ? parent[last] + 7 : `${parent[last]}-changed`;
      const { signers, failures } = await verifyObject(tampered as KubernetesObject, anchors);
      expect(signers).toEqual([]);
      expect(failures[0]!.reason).toContain(`${formatPath(path)} differs`);
    }
  });

  it('ignores the fields the verifier or the signer name, and only those', async () => {
    const { key, anchors } = newSigner();
    const mutated = (obj: Obj) => {
      const copy = asServed(obj);
      (copy.spec as any).template.spec.containers[0].resources = { requests: { cpu: '10m' } };
      (copy.metadata!.annotations as Record<string, string>)['sidecar.istio.io/status'] = '{"containers":["istio-proxy"]}';
      return copy;
    };
    const ignoredFields = ['spec.template.spec.containers[*].resources', 'metadata.annotations["sidecar.istio.io/status"]'];
    const plain = await signObject(deployment(), key);
    expect((await verifyObject(mutated(plain), anchors)).signers).toEqual([]);
    expect((await verifyObject(mutated(plain), anchors, { ignoredFields })).signers).toHaveLength(1);
    const bySigner = await signObject(deployment(), key, { ignoredFields });
    expect((await verifyObject(mutated(bySigner), anchors)).signers).toHaveLength(1);
    const imageChanged = mutated(bySigner);
    (imageChanged.spec as any).template.spec.containers[0].image = 'other';
    expect((await verifyObject(imageChanged, anchors)).failures[0]!.reason).toContain('spec.template.spec.containers[0].image differs');
  });

  it('keeps other signers, replaces its own signature, and counts distinct signers', async () => {
    const a = newSigner();
    const b = newSigner('SLH-DSA-SHA2-128f');
    const anchors = trustAnchorsFrom([{ name: 'a.pub', pem: publicKeyPem(a.key.publicKey) }, { name: 'b.pub', pem: publicKeyPem(b.key.publicKey) }]);
    const once = await signObject(await signObject(deployment(), a.key), b.key);
    const twice = await signObject(once, a.key);
    const annotations = twice.metadata!.annotations!;
    expect(Object.keys(annotations).sort()).toEqual(['team', signatureAnnotation(a.key.keyId), signatureAnnotation(b.key.keyId)].sort());
    const payload = (jws: string) => jws.split('.')[1];
    expect(payload(annotations[signatureAnnotation(a.key.keyId)]!)).toBe(payload(once.metadata!.annotations![signatureAnnotation(a.key.keyId)]!));
    const result = await verifyObject(twice, anchors);
    expect(result.signers.map((s) => s.id).sort()).toEqual([a.key.keyId, b.key.keyId].sort());
    expect(result.failures).toEqual([]);
    expect((await verifyObject(twice, a.anchors)).failures).toEqual([{ annotation: signatureAnnotation(b.key.keyId), reason: expect.stringContaining(`unknown signer: key ${b.key.keyId} is not among the trusted keys`) }]);
  });

  it('refuses a signature moved to another key\'s annotation, a broken JWS, and a forged one', async () => {
    const { key, anchors } = newSigner();
    const signed = await signObject(deployment(), key);
    const jws = signed.metadata!.annotations![signatureAnnotation(key.keyId)]!;
    const [h, p, s] = jws.split('.');
    const forgedPayload = Buffer.from(p!, 'base64url').toString().replace('nginx:1.27', 'nginx:evil');
    const cases: Record<string, string> = {
      [`${signatureAnnotation('0000000000000000')}`]: jws,
      [`${signatureAnnotation(key.keyId)}`]: `${h}.${Buffer.from(forgedPayload).toString('base64url')}.${s}`,
      'signatures.qubesec.io/broken': 'not a jws',
    };
    const reasons = await Promise.all(Object.entries(cases).map(async ([annotation, value]) => {
      const obj = { ...deployment(), metadata: { ...deployment().metadata, annotations: { [annotation]: value } } };
      return (await verifyObject(obj, anchors)).failures[0]!.reason;
    }));
    expect(reasons).toEqual([
      `the signature is by key ${key.keyId}, but it is in the annotation of key 0000000000000000`,
      `the ML-DSA-65 signature by key ${key.keyId} does not verify (signature or payload changed)`,
      'not a JWS in compact serialization (three base64url parts)',
    ]);
  });
});

describe('canonicalForm', () => {
  const shuffled = (value: Json, seed: number): Json => {
    if (Array.isArray(value)) return value.map((v) => shuffled(v, seed));
    if (value === null || typeof value !== 'object') return value;
    const keys = Object.keys(value);
    const order = keys.map((k, i) => [k, (i * 7919 + seed) % (keys.length + 3)] as const).sort((a, b) => a[1] - b[1]).map(([k]) => k);
    return Object.fromEntries(order.map((k) => [k, shuffled(value[k]!, seed)]));
  };

  it('is the same whatever the order of keys', () => {
    const base = canonicalForm(deployment());
    fc.assert(fc.property(fc.integer({ min: 0, max: 10_000 }), (seed) => {
      expect(Buffer.from(canonicalForm(shuffled(deployment() as unknown as Json, seed) as unknown as KubernetesObject)).equals(Buffer.from(base))).toBe(true);
    }));
  });

  it('leaves out server-managed metadata, status, signatures, last-applied, empty values and ignored fields', () => {
    const served = asServed(deployment());
    served.metadata!.annotations![signatureAnnotation('abcdef0123456789')] = 'x';
    const view = JSON.parse(Buffer.from(canonicalForm(served, { ignoredFields: ['spec.template.spec.volumes[*].configMap'] })).toString()) as Record<string, any>;
    expect(Object.keys(view.metadata).sort()).toEqual(['annotations', 'labels', 'name', 'namespace']);
    expect(view.metadata.annotations).toEqual({ team: 'payments', 'deployment.kubernetes.io/revision': '2' });
    expect(view.status).toBeUndefined();
    expect(view.spec.template.metadata).toEqual({ labels: { app: 'web' } });
    expect(view.spec.template.spec.securityContext).toBeUndefined();
    expect(view.spec.template.spec.volumes).toEqual([{ name: 'conf' }]);
    expect(canonicalJson(view as Json)).toBe(Buffer.from(canonicalForm(served, { ignoredFields: ['spec.template.spec.volumes[*].configMap'] })).toString());
  });

  it('reads and writes field paths', () => {
    expect(parseFieldPath('metadata.annotations["a.b/c"].x[0].*[*]')).toEqual(['metadata', 'annotations', 'a.b/c', 'x', '0', '*', '*']);
    expect(formatPath(['metadata', 'annotations', 'a.b/c', 'x', 0])).toBe('metadata.annotations["a.b/c"].x[0]');
    expect(() => parseFieldPath('spec..x')).toThrow('field path "spec..x": cannot read it at character 5');
    expect(() => parseFieldPath('.spec')).toThrow('cannot read it at character 1');
  });
});
