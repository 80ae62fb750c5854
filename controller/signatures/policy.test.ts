// SignaturePolicy into its model, with the Secrets, ConfigMaps and Issuers it names given as plain objects: no I/O.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import type { IssuerResource } from '../pki/resources.js';
import { PROJECT_ROOT } from '../project.js';
import { readyCondition, translatePolicy, type MatchSubject, type SignaturePolicyResource, type TrustLookups } from './policy.js';

const b64 = (t: string) => Buffer.from(t).toString('base64');
const PUBLIC_PEM = generateKeyPairSync('ml-dsa-65').publicKey.export({ type: 'spki', format: 'pem' }) as string;
const CA_PEM = readFileSync(join(PROJECT_ROOT, 'controller', 'testdata', 'mldsa-ca.crt'), 'utf8');

const secret = (namespace: string, name: string, data: Record<string, string>): V1Secret =>
  ({ metadata: { namespace, name }, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])) });
const configMap = (namespace: string, name: string, data: Record<string, string>): V1ConfigMap => ({ metadata: { namespace, name }, data });
const issuer = (kind: 'Issuer' | 'ClusterIssuer', name: string, spec: IssuerResource['spec'], namespace?: string): IssuerResource =>
  ({ apiVersion: 'qubesec.io/v1alpha1', kind, metadata: { name, namespace }, spec });

function lookups(objects: { secrets?: V1Secret[]; configMaps?: V1ConfigMap[]; issuers?: IssuerResource[] } = {}): TrustLookups {
  const find = <T extends { metadata?: { namespace?: string; name?: string } }>(list: T[] | undefined, namespace: string, name: string) =>
    list?.find((o) => (o.metadata?.namespace ?? '') === namespace && o.metadata?.name === name);
  return {
    secret: (ns, name) => find(objects.secrets, ns, name),
    configMap: (ns, name) => find(objects.configMaps, ns, name),
    issuer: (kind, ns, name) => objects.issuers?.find((i) => i.kind === kind && (i.metadata.namespace ?? '') === ns && i.metadata.name === name),
    clusterResourceNamespace: 'qubesec',
  };
}

const KEYS = { secrets: [secret('keys', 'release-key', { 'key.pem': PUBLIC_PEM })] };
const policy = (spec: SignaturePolicyResource['spec']): SignaturePolicyResource => ({ apiVersion: 'qubesec.io/v1alpha1', kind: 'SignaturePolicy', metadata: { name: 'signed-apps' }, spec });
const DEPLOYMENTS = { kinds: [{ apiGroup: 'apps', kind: 'Deployment' }] };
const TRUST = { keys: [{ secretRef: { namespace: 'keys', name: 'release-key', key: 'key.pem' } }] };
const subject = (extra: Partial<MatchSubject> = {}): MatchSubject =>
  ({ group: 'apps', kind: 'Deployment', namespace: 'shop', namespaceLabels: {}, username: 'alice', groups: ['system:authenticated'], ...extra });

describe('translatePolicy', () => {
  it('applies the defaults (enforce, one signer) and resolves a public key from a Secret', () => {
    const model = translatePolicy(policy({ match: DEPLOYMENTS, trust: TRUST }), lookups(KEYS));
    expect(model).toEqual(expect.objectContaining({ name: 'signed-apps', mode: 'enforce', requiredSigners: 1, ignoredFields: [], trustedSigners: 1, problem: undefined }));
    expect(model.anchors).toBeDefined();
    expect(readyCondition(model)).toEqual({ type: 'Ready', status: 'True', reason: 'TrustResolved', message: '1 trusted key(s) or CA certificate(s); enforce mode' });
  });

  it('matches kinds by apiGroup and kind, with * for either, CRDs included', () => {
    const kinds = [{ apiGroup: '', kind: 'ConfigMap' }, { apiGroup: 'example.com', kind: '*' }, { apiGroup: '*', kind: 'Ingress' }];
    const { matches } = translatePolicy(policy({ match: { kinds }, trust: TRUST }), lookups(KEYS));
    expect(matches!(subject({ group: '', kind: 'ConfigMap' }))).toBe(true);
    expect(matches!(subject({ group: 'example.com', kind: 'Widget' }))).toBe(true);
    expect(matches!(subject({ group: 'networking.k8s.io', kind: 'Ingress' }))).toBe(true);
    expect(matches!(subject({ group: 'apps', kind: 'Deployment' }))).toBe(false);
    expect(matches!(subject({ group: 'apps', kind: 'ConfigMap' }))).toBe(false);
  });

  it('matches namespaces by name or label selector; without either, every namespace and cluster-scoped objects', () => {
    const selected = translatePolicy(policy({
      match: { ...DEPLOYMENTS, namespaces: ['billing'], namespaceSelector: { matchLabels: { tier: 'prod' }, matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['lab'] }] } },
      trust: TRUST,
    }), lookups(KEYS)).matches!;
    expect(selected(subject({ namespace: 'billing' }))).toBe(true);
    expect(selected(subject({ namespaceLabels: { tier: 'prod' } }))).toBe(true);
    expect(selected(subject({ namespaceLabels: { tier: 'prod', team: 'lab' } }))).toBe(false);
    expect(selected(subject({ namespaceLabels: { tier: 'dev' } }))).toBe(false);
    expect(selected(subject({ namespace: '' }))).toBe(false);
    const everywhere = translatePolicy(policy({ match: { kinds: [{ apiGroup: '*', kind: '*' }] }, trust: TRUST }), lookups(KEYS)).matches!;
    expect(everywhere(subject({ namespace: '', group: 'rbac.authorization.k8s.io', kind: 'ClusterRole' }))).toBe(true);
  });

  it('exempts namespaces, service accounts, users and groups', () => {
    const { exempts } = translatePolicy(policy({
      match: DEPLOYMENTS, trust: TRUST,
      exemptions: { namespaces: ['sandbox'], serviceAccounts: ['ci/deployer'], users: ['bob'], groups: ['break-glass'] },
    }), lookups(KEYS));
    expect(exempts(subject({ namespace: 'sandbox' }))).toBe(true);
    expect(exempts(subject({ username: 'system:serviceaccount:ci:deployer' }))).toBe(true);
    expect(exempts(subject({ username: 'bob' }))).toBe(true);
    expect(exempts(subject({ groups: ['break-glass'] }))).toBe(true);
    expect(exempts(subject())).toBe(false);
  });

  it('names every bad field of a spec, and the policy then matches nothing', () => {
    const model = translatePolicy(policy({
      match: { kinds: [{ apiGroup: 'apps' } as never], namespaces: ['Bad_NS'], namespaceSelector: { matchExpressions: [{ key: 'a', operator: 'Near' }, { key: 'b', operator: 'In' }] } },
      trust: TRUST, mode: 'block', requiredSigners: 0, ignoredFields: ['spec..x'], exemptions: { serviceAccounts: ['nobody'] },
    }), lookups(KEYS));
    expect(model.problem?.reason).toBe('InvalidSpec');
    expect(model.problem?.message.split('; ')).toEqual([
      'spec.mode: "block" is not one of enforce, warn, audit',
      'spec.requiredSigners: 0 is not a whole number from 1 to 16',
      'spec.ignoredFields[0]: field path "spec..x": cannot read it at character 5 (write a.b[0].c, ["key.with/dots"], * for any)',
      'spec.match.kinds[0].kind: is required ("*" for any)',
      'spec.match.namespaces[0]: "Bad_NS" is not a valid namespace name (RFC 1123 label)',
      'spec.match.namespaceSelector.matchExpressions[0].operator: "Near" is not one of In, NotIn, Exists, DoesNotExist',
      'spec.match.namespaceSelector.matchExpressions[1].values: In needs at least one value',
      'spec.exemptions.serviceAccounts[0]: "nobody" is not namespace/name',
    ]);
    expect(model.matches).toBeUndefined();
    expect(model.anchors).toBeUndefined();
    expect(readyCondition(model)).toEqual(expect.objectContaining({ status: 'False', reason: 'InvalidSpec' }));
  });

  it('cannot be evaluated when a trust source is missing, but still matches, so enforce fails closed for those objects', () => {
    const missing = translatePolicy(policy({ match: DEPLOYMENTS, trust: TRUST }), lookups());
    expect(missing.problem).toEqual({ reason: 'TrustSourceNotFound', message: 'spec.trust.keys[0].secretRef: Secret keys/release-key not found' });
    expect(missing.anchors).toBeUndefined();
    expect(missing.matches!(subject())).toBe(true);

    const noKey = translatePolicy(policy({ match: DEPLOYMENTS, trust: { keys: [{ configMapRef: { namespace: 'keys', name: 'pubs', key: 'ops.pem' } }] } }), lookups({ configMaps: [configMap('keys', 'pubs', { 'dev.pem': PUBLIC_PEM })] }));
    expect(noKey.problem).toEqual({ reason: 'TrustSourceNotFound', message: 'spec.trust.keys[0].configMapRef: ConfigMap keys/pubs has no key "ops.pem"' });
  });

  it('refuses a trust source that holds no key or certificate, naming it', () => {
    const model = translatePolicy(policy({ match: DEPLOYMENTS, trust: { keys: [{ configMapRef: { namespace: 'keys', name: 'pubs', key: 'ops.pem' } }] } }), lookups({ configMaps: [configMap('keys', 'pubs', { 'ops.pem': 'not a PEM' })] }));
    expect(model.problem?.reason).toBe('TrustSourceInvalid');
    expect(model.problem?.message).toMatch(/^ConfigMap keys\/pubs key ops\.pem: /);
  });

  it('anchors on the CA certificate of a PKI issuer: a ClusterIssuer\'s CA Secret in the cluster resource namespace, an Issuer\'s in its own', () => {
    const objects = {
      issuers: [issuer('ClusterIssuer', 'root', { ca: { secretName: 'root-ca' } }), issuer('Issuer', 'team', { ca: { secretName: 'team-ca' } }, 'shop'), issuer('ClusterIssuer', 'self', { selfSigned: {} })],
      secrets: [secret('qubesec', 'root-ca', { 'tls.crt': CA_PEM, 'tls.key': 'unused' }), secret('shop', 'team-ca', { 'tls.crt': CA_PEM })],
    };
    const both = translatePolicy(policy({ match: DEPLOYMENTS, trust: { issuers: [{ kind: 'ClusterIssuer', name: 'root' }, { kind: 'Issuer', name: 'team', namespace: 'shop' }] } }), lookups(objects));
    expect([both.problem, both.trustedSigners]).toEqual([undefined, 2]);

    const self = translatePolicy(policy({ match: DEPLOYMENTS, trust: { issuers: [{ name: 'self' }] } }), lookups(objects));
    expect(self.problem).toEqual({ reason: 'TrustSourceInvalid', message: 'spec.trust.issuers[0]: ClusterIssuer self is not a CA issuer (spec.ca.secretName), so no CA certificate anchors its certificates' });
    const noNamespace = translatePolicy(policy({ match: DEPLOYMENTS, trust: { issuers: [{ kind: 'Issuer', name: 'team' }] } }), lookups(objects));
    expect(noNamespace.problem).toEqual({ reason: 'TrustSourceInvalid', message: 'spec.trust.issuers[0].namespace: is required for an Issuer' });
    const gone = translatePolicy(policy({ match: DEPLOYMENTS, trust: { issuers: [{ name: 'root' }] } }), lookups({ issuers: objects.issuers }));
    expect(gone.problem).toEqual({ reason: 'TrustSourceNotFound', message: 'spec.trust.issuers[0]: the CA Secret qubesec/root-ca of ClusterIssuer root is missing or has no tls.crt' });
  });

  it('needs at least one trust source', () => {
    expect(translatePolicy(policy({ match: DEPLOYMENTS, trust: {} }), lookups()).problem).toEqual({ reason: 'InvalidSpec', message: 'spec.trust: names no key and no issuer, so no signer could be trusted' });
  });
});
