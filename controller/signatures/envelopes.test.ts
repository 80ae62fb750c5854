import type { KubernetesObject } from '@kubernetes/client-node';
import { webcrypto } from 'node:crypto';
import { compactVerify, importJWK } from 'jose';
import { generatePrivateKey, privateKeyPem, publicKeyPem, type SignatureAlgorithm } from './algorithms.js';
import { pae, parseEnvelope } from './dsse.js';
import { fileStatement, signFile, verifyFile } from './files.js';
import { loadSigningKey } from './keys.js';
import { readManifests, signManifests, verifyManifests } from './manifests.js';
import { signObject, signatureAnnotation } from './objects.js';
import { trustAnchorsFrom } from './trust.js';

function signer(algorithm: SignatureAlgorithm = 'ML-DSA-65') {
  const key = generatePrivateKey(algorithm);
  return { key: loadSigningKey(privateKeyPem(key), 'k.pem'), anchors: trustAnchorsFrom([{ name: 'k.pub', pem: publicKeyPem(key.publicKey) }]) };
}

describe('JWS', () => {
  it.each(['ML-DSA-44', 'ML-DSA-65', 'ML-DSA-87'] as const)('%s object signatures verify with jose (an independent JOSE implementation, RFC 9964), which returns the canonical payload', async (algorithm) => {
    const { key } = signer(algorithm);
    const obj: KubernetesObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { b: '2', a: '1' } } as KubernetesObject;
    const jws = (await signObject(obj, key)).metadata!.annotations![signatureAnnotation(key.keyId)]!;
    const jwk = await webcrypto.subtle.exportKey('jwk', await webcrypto.subtle.importKey('spki', key.publicKey.spki, { name: algorithm }, true, ['verify']));
    const { payload, protectedHeader } = await compactVerify(jws, await importJWK(jwk as never, algorithm), { algorithms: [algorithm] });
    expect(protectedHeader).toEqual({ alg: algorithm, kid: key.keyId, typ: 'qubesec-object+jws' });
    expect(Buffer.from(payload).toString()).toBe('{"apiVersion":"v1","data":{"a":"1","b":"2"},"kind":"ConfigMap","metadata":{"name":"c"}}');
    const other = generatePrivateKey(algorithm);
    const otherJwk = await webcrypto.subtle.exportKey('jwk', await webcrypto.subtle.importKey('spki', other.publicKey.spki, { name: algorithm }, true, ['verify']));
    await expect(compactVerify(jws, await importJWK(otherJwk as never, algorithm))).rejects.toThrow('signature verification failed');
  });
});

describe('DSSE and detached file bundles', () => {
  it('PAE is the DSSE spec\'s', () => {
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe('DSSEv1 29 http://example.com/HelloWorld 11 hello world');
  });

  it.each(['ML-DSA-65', 'SLH-DSA-SHA2-128f', 'MLDSA44-Ed25519-SHA512'] as const)('%s: a file bundle verifies; another file, a changed statement or an unknown key fails, named', async (algorithm) => {
    const { key, anchors } = signer(algorithm);
    const bytes = Buffer.from('chart archive bytes');
    const bundle = await signFile('charts/app-1.0.0.tgz', bytes, key);
    const envelope = parseEnvelope(bundle);
    expect(envelope.payloadType).toBe('application/vnd.in-toto+json');
    expect(JSON.parse(Buffer.from(envelope.payload, 'base64').toString())).toEqual({
      _type: 'https://in-toto.io/Statement/v1', predicateType: 'https://qubesec.io/signatures/file/v1', predicate: {},
      subject: [{ name: 'app-1.0.0.tgz', digest: { sha256: expect.stringMatching(/^[0-9a-f]{64}$/), sha512: expect.stringMatching(/^[0-9a-f]{128}$/) } }],
    });
    expect(verifyFile(bytes, bundle, anchors)).toEqual({ signers: [{ id: key.keyId, algorithm }], failures: [] });
    expect(verifyFile(Buffer.from('other bytes'), bundle, anchors).failures[0]).toEqual({ annotation: 'subject', reason: "the file's SHA-256 and SHA-512 digests differ from the bundle's subject app-1.0.0.tgz (the file changed, or the bundle is another file's)" });
    const forged = JSON.stringify({ ...envelope, payload: fileStatement('app-1.0.0.tgz', Buffer.from('evil')).toString('base64') });
    expect(verifyFile(Buffer.from('evil'), forged, anchors).failures).toEqual([{ annotation: `signatures[0] (keyid ${key.keyId})`, reason: `the ${algorithm} signature by key ${key.keyId} does not verify (signature or payload changed)` }]);
    expect(verifyFile(bytes, bundle, signer().anchors).failures[0]!.reason).toContain('unknown signer');
  });

  it('adds a second signer to a bundle and replaces its own; refuses a malformed bundle', async () => {
    const a = signer();
    const b = signer('ML-DSA-87');
    const bytes = Buffer.from('sha256:4f0c0e0ae6a5c3b8b7a0e3c0f1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0\n');
    const twice = await signFile('digest.txt', bytes, a.key, await signFile('digest.txt', bytes, b.key, await signFile('digest.txt', bytes, a.key)));
    expect(parseEnvelope(twice).signatures.map((s) => s.keyid)).toEqual([b.key.keyId, a.key.keyId]);
    const both = trustAnchorsFrom([{ name: 'a', pem: publicKeyPem(a.key.publicKey) }, { name: 'b', pem: publicKeyPem(b.key.publicKey) }]);
    expect(verifyFile(bytes, twice, both).signers).toHaveLength(2);
    await expect(signFile('digest.txt', Buffer.from('other'), a.key, twice)).rejects.toThrow('the existing envelope is over another payload');
    expect(() => verifyFile(bytes, '{"payload":1}', both)).toThrow('not a DSSE envelope (payloadType, payload, signatures)');
    expect(() => verifyFile(bytes, 'nope', both)).toThrow(/^not JSON/);
    expect(() => verifyFile(bytes, JSON.stringify({ payloadType: 'text/plain', payload: '', signatures: [{ keyid: 'k', sig: '' }] }), both)).toThrow('payloadType is "text/plain", not application/vnd.in-toto+json');
  });
});

describe('manifests', () => {
  const stream = `# the app
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web  # the name
  namespace: shop
spec:
  replicas: 2
---
apiVersion: v1
kind: ConfigMap
metadata: {name: conf}
data: {a: "1"}
`;

  it('signs every document in place, keeping comments, and verifies each; a tampered one fails alone, named', async () => {
    const { key, anchors } = signer();
    const signed = await signManifests(stream, 'app.yaml', key);
    expect(signed).toContain('# the app\n');
    expect(signed).toContain('name: web # the name\n');
    expect(signed).toMatch(/metadata:\n {2}name: conf\n {2}annotations:\n {4}signatures\.qubesec\.io\/[0-9a-f]{16}: ey/);
    // Signing again with the same key replaces its annotation with the same header and payload (ML-DSA signatures are randomized).
    const withoutSignatureBytes = (text: string) => text.replace(/(ey[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+/g, '$1.SIGNATURE');
    expect(withoutSignatureBytes(await signManifests(signed, 'app.yaml', key))).toBe(withoutSignatureBytes(signed));
    expect(readManifests(await signManifests(signed, 'app.yaml', key), 'x').objects.map((o) => Object.keys(o.object.metadata!.annotations!))).toEqual([[signatureAnnotation(key.keyId)], [signatureAnnotation(key.keyId)]]);
    const { results } = await verifyManifests(signed.replace('replicas: 2', 'replicas: 20'), 'app.yaml', anchors);
    expect(results.map((r) => [r.location, r.name, r.signers.length, r.failures.map((f) => f.reason)])).toEqual([
      ['app.yaml document 1', 'Deployment shop/web', 0, ['tampered: spec.replicas differs (signed 2, found 20)']],
      ['app.yaml document 2', 'ConfigMap conf', 1, []],
    ]);
  });

  it('reads kind: List (kubectl get -o yaml) and names a document that is not an object', () => {
    const list = 'apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: Secret, metadata: {name: b, namespace: n}}\n';
    expect(readManifests(list, 'l.yaml').objects.map((o) => [o.location, o.name])).toEqual([['l.yaml document 1 item 0', 'ConfigMap a'], ['l.yaml document 1 item 1', 'Secret n/b']]);
    expect(readManifests('a: [', 'bad.yaml').problems).toEqual([{ location: 'bad.yaml document 1', order: 0, reason: expect.stringMatching(/^not YAML: /) }]);
    const odd = readManifests('kind: X\n---\njust text\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n', 'odd.yaml');
    expect(odd.problems.map((p) => `${p.location}: ${p.reason}`)).toEqual(['odd.yaml document 1: not a Kubernetes object (apiVersion, kind and metadata.name)', 'odd.yaml document 2: not a Kubernetes object (apiVersion, kind and metadata.name)']);
    expect(odd.objects.map((o) => o.name)).toEqual(['ConfigMap fine']);
  });

  it('verifies the other documents of a stream when one is not an object, and signs no stream that has one', async () => {
    const { key, anchors } = signer();
    const signed = await signManifests(stream, 'app.yaml', key);
    const { results, problems } = await verifyManifests(`${signed}---\njust text\n`, 'app.yaml', anchors);
    expect(results.map((r) => r.signers.length)).toEqual([1, 1]);
    expect(problems).toEqual([{ location: 'app.yaml document 3', order: 2, reason: 'not a Kubernetes object (apiVersion, kind and metadata.name)' }]);
    await expect(signManifests(`${stream}---\njust text\n`, 'app.yaml', key)).rejects.toThrow('app.yaml document 3: not a Kubernetes object');
  });
});
