// The signature webhook's decisions on real signatures (signObject, verifyObject, ML-DSA-65 keys from node:crypto),
// with policies built by translatePolicy from plain objects: no I/O.
import { generateKeyPairSync } from 'node:crypto';
import type { V1Deployment } from '@kubernetes/client-node';
import type { AdmissionRequest } from '../admission/review.js';
import { generatePrivateKey, privateKeyPem, publicKeyPem } from './algorithms.js';
import { loadSigningKey } from './keys.js';
import { signObject } from './objects.js';
import { translatePolicy, type SignaturePolicyResource, type TrustLookups } from './policy.js';
import { reviewSignatures, systemExemption, type PolicyView } from './review.js';

function keyPair(name: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ml-dsa-65');
  return {
    key: loadSigningKey(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, name),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
}
const release = keyPair('release');
const ops = keyPair('ops');
const stranger = keyPair('stranger');

const lookups: TrustLookups = {
  secret: () => undefined,
  configMap: (namespace, name) => ({ metadata: { namespace, name }, data: { 'release.pem': release.publicPem, 'ops.pem': ops.publicPem } }),
  issuer: () => undefined,
  clusterResourceNamespace: 'qubesec',
};
const TRUST = { keys: ['release.pem', 'ops.pem'].map((key) => ({ configMapRef: { namespace: 'keys', name: 'signers', key } })) };
const DEPLOYMENTS = { kinds: [{ apiGroup: 'apps', kind: 'Deployment' }], namespaces: ['shop'] };
const policy = (name: string, spec: Partial<NonNullable<SignaturePolicyResource['spec']>> = {}) =>
  translatePolicy({ apiVersion: 'qubesec.io/v1alpha1', kind: 'SignaturePolicy', metadata: { name }, spec: { match: DEPLOYMENTS, trust: TRUST, ...spec } }, lookups);
const view = (...policies: ReturnType<typeof policy>[]): PolicyView => ({ synced: true, policies, namespaceLabels: () => ({}) });

const deployment = (replicas = 2): V1Deployment => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop' },
  spec: { replicas, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'example.com/web:1' }] } } },
});
const request = (object: unknown, extra: Partial<AdmissionRequest> = {}): AdmissionRequest => ({
  uid: 'u1', kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, kindText: 'apps/v1/Deployment', name: 'web', namespace: 'shop', operation: 'CREATE',
  subResource: '', dryRun: false, userInfo: { username: 'alice', groups: ['system:authenticated'] }, object, ...extra,
});
const OPTIONS = { controllerNamespace: 'qubesec' };
const deniedWith = (message: string | RegExp) => expect.objectContaining({ verdict: { allowed: false, message: typeof message === 'string' ? message : expect.stringMatching(message) } });

describe('reviewSignatures', () => {
  it('admits an object signed by a trusted key, counting it verified', async () => {
    const review = await reviewSignatures(request(await signObject(deployment(), release.key)), view(policy('signed')), OPTIONS);
    expect(review.verdict).toEqual({ allowed: true, warnings: [] });
    expect(review.outcomes).toEqual([expect.objectContaining({ policy: 'signed', mode: 'enforce', result: 'verified' })]);
    expect(review.outcomes[0]!.verificationSeconds).toBeGreaterThan(0);
  });

  it('denies an unsigned object, naming the object, the policy and the reason', async () => {
    expect(await reviewSignatures(request(deployment()), view(policy('signed')), OPTIONS))
      .toEqual(deniedWith('Deployment shop/web: SignaturePolicy signed (enforce): unsigned: the object carries no signature'));
  });

  it('denies a tampered object, naming the field that changed', async () => {
    const signed = await signObject(deployment(2), release.key);
    const tampered = { ...signed, spec: { ...signed.spec!, replicas: 20 } };
    const review = await reviewSignatures(request(tampered), view(policy('signed')), OPTIONS);
    expect(review).toEqual(deniedWith(/^Deployment shop\/web: SignaturePolicy signed \(enforce\): signatures\.qubesec\.io\/.*spec\.replicas/));
  });

  it('denies a signer it does not trust', async () => {
    const review = await reviewSignatures(request(await signObject(deployment(), stranger.key)), view(policy('signed')), OPTIONS);
    expect(review).toEqual(deniedWith(/^Deployment shop\/web: SignaturePolicy signed \(enforce\): signatures\.qubesec\.io\/\S+: /));
    expect(review.outcomes[0]!.result).toBe('failed');
  });

  it('counts distinct trusted signers against requiredSigners', async () => {
    const once = await signObject(deployment(), release.key);
    const twice = await signObject(once, ops.key);
    const two = policy('two-party', { requiredSigners: 2 });
    expect(await reviewSignatures(request(once), view(two), OPTIONS)).toEqual(deniedWith(/too few signers: 1 trusted \(.+\), 2 required/));
    expect((await reviewSignatures(request(twice), view(two), OPTIONS)).verdict).toEqual({ allowed: true, warnings: [] });
    // Signing again with the same key is idempotent and does not make a second signer.
    expect(await reviewSignatures(request(await signObject(once, release.key)), view(two), OPTIONS)).toEqual(deniedWith(/too few signers: 1 trusted/));
  });

  it('takes the hybrid composite ML-DSA-65 + ECDSA-P256 and SLH-DSA as signers like any other', async () => {
    const [composite, slh] = (['MLDSA65-ECDSA-P256-SHA512', 'SLH-DSA-SHA2-128f'] as const).map((algorithm) => generatePrivateKey(algorithm));
    const anchors = { ...lookups, configMap: () => ({ data: { 'composite.pem': publicKeyPem(composite!.publicKey), 'slh.pem': publicKeyPem(slh!.publicKey) } }) };
    const keys = ['composite.pem', 'slh.pem'].map((key) => ({ configMapRef: { namespace: 'keys', name: 'release', key } }));
    const both = translatePolicy({ apiVersion: 'qubesec.io/v1alpha1', kind: 'SignaturePolicy', metadata: { name: 'hybrid' }, spec: { match: DEPLOYMENTS, trust: { keys }, requiredSigners: 2 } }, anchors);
    const signed = await signObject(await signObject(deployment(), loadSigningKey(privateKeyPem(composite!), 'composite')), loadSigningKey(privateKeyPem(slh!), 'slh'));
    const review = await reviewSignatures(request(signed), view(both), OPTIONS);
    expect([review.verdict, review.outcomes[0]!.result]).toEqual([{ allowed: true, warnings: [] }, 'verified']);
  });

  it('warn mode admits with a warning; audit mode admits silently and reports the failure as an outcome', async () => {
    const warned = await reviewSignatures(request(deployment()), view(policy('heads-up', { mode: 'warn' })), OPTIONS);
    expect(warned.verdict).toEqual({ allowed: true, warnings: ['Deployment shop/web: SignaturePolicy heads-up (warn): unsigned: the object carries no signature'] });
    const audited = await reviewSignatures(request(deployment()), view(policy('watch', { mode: 'audit' })), OPTIONS);
    expect(audited.verdict).toEqual({ allowed: true, warnings: [] });
    expect(audited.outcomes).toEqual([expect.objectContaining({ policy: 'watch', mode: 'audit', result: 'failed', message: expect.stringContaining('unsigned') })]);
    expect(audited.object).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'web' });
  });

  it('leaves alone what no policy matches, DELETE, subresources, and exempt requesters', async () => {
    const untouched = { verdict: { allowed: true, warnings: [] }, outcomes: [] };
    const signed = view(policy('signed', { exemptions: { users: ['bob'] } }));
    const inLab = { ...deployment(), metadata: { name: 'web', namespace: 'lab' } };
    expect(await reviewSignatures(request(inLab, { namespace: 'lab' }), signed, OPTIONS)).toEqual(expect.objectContaining(untouched));
    const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'shop' } };
    expect(await reviewSignatures(request(configMap, { kind: { group: '', version: 'v1', kind: 'ConfigMap' } }), signed, OPTIONS)).toEqual(expect.objectContaining(untouched));
    expect(await reviewSignatures(request(deployment(), { operation: 'DELETE' }), signed, OPTIONS)).toEqual(expect.objectContaining(untouched));
    expect(await reviewSignatures(request(deployment(), { operation: 'UPDATE', subResource: 'scale' }), signed, OPTIONS)).toEqual(expect.objectContaining(untouched));
    expect(await reviewSignatures(request(deployment(), { userInfo: { username: 'bob', groups: [] } }), signed, OPTIONS)).toEqual(expect.objectContaining(untouched));
    expect((await reviewSignatures(request(deployment(), { operation: 'UPDATE' }), signed, OPTIONS)).verdict.allowed).toBe(false);
  });

  it('never reviews the system namespaces, the control plane, kube-system\'s controllers or the controller\'s own namespace', () => {
    const exempt = (namespace: string, username: string) => systemExemption({ namespace, username }, 'qubesec');
    expect(exempt('kube-system', 'alice')).toBe('namespace kube-system is exempt');
    expect(exempt('qubesec', 'alice')).toBe('namespace qubesec is exempt');
    expect(exempt('shop', 'system:serviceaccount:kube-system:replicaset-controller')).toBe('user system:serviceaccount:kube-system:replicaset-controller is exempt');
    expect(exempt('shop', 'system:serviceaccount:qubesec:qubesec')).toBe('user system:serviceaccount:qubesec:qubesec is exempt');
    expect(exempt('shop', 'system:node:worker-1')).toBe('user system:node:worker-1 is exempt');
    expect(exempt('shop', 'system:serviceaccount:shop:deployer')).toBeUndefined();
  });

  it('fails closed before the policies are loaded, and for an enforce policy that cannot be evaluated', async () => {
    const unsynced = await reviewSignatures(request(await signObject(deployment(), release.key)), { synced: false, pending: ['signatures/signaturepolicies'] }, OPTIONS);
    expect(unsynced).toEqual(deniedWith('Deployment shop/web: signature policies cannot be checked yet (the controller\'s first lists of signatures/signaturepolicies are not in); refused until they are'));

    const broken = translatePolicy({ apiVersion: 'qubesec.io/v1alpha1', kind: 'SignaturePolicy', metadata: { name: 'broken' }, spec: { match: DEPLOYMENTS, trust: { keys: [{ secretRef: { namespace: 'keys', name: 'gone', key: 'k' } }] } } }, lookups);
    expect(await reviewSignatures(request(await signObject(deployment(), release.key)), view(broken), OPTIONS))
      .toEqual(deniedWith('Deployment shop/web: SignaturePolicy broken (enforce): cannot be evaluated: spec.trust.keys[0].secretRef: Secret keys/gone not found'));
    const brokenWarn = { ...broken, mode: 'warn' as const };
    const warned = await reviewSignatures(request(deployment()), view(brokenWarn), OPTIONS);
    expect(warned.verdict).toEqual({ allowed: true, warnings: [expect.stringContaining('SignaturePolicy broken (warn): cannot be evaluated')] });
    expect(warned.outcomes[0]!.result).toBe('error');
  });

  it('joins the denials of several enforce policies and keeps the warnings of warn policies out of a denial', async () => {
    const review = await reviewSignatures(request(deployment()), view(policy('a'), policy('b'), policy('c', { mode: 'warn' })), OPTIONS);
    expect(review).toEqual(deniedWith('Deployment shop/web: SignaturePolicy a (enforce): unsigned: the object carries no signature; Deployment shop/web: SignaturePolicy b (enforce): unsigned: the object carries no signature'));
    expect(review.outcomes.map((o) => [o.policy, o.result])).toEqual([['a', 'failed'], ['b', 'failed'], ['c', 'failed']]);
  });
});
