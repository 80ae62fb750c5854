import type { V1Secret } from '@kubernetes/client-node';
import { generateKeyPair } from './algorithms.js';
import { SECRET_ANNOTATIONS, checkCertificateSpec, issuerState, parseDuration, plan, specHash, type CertificateResource, type CertificateSpec, type IssuerResource } from './resources.js';
import { issueCertificate, privateKeyPem } from './x509.js';

const b64 = (t: string) => Buffer.from(t).toString('base64');
const resource = (spec: CertificateResource['spec']): CertificateResource => ({ apiVersion: 'qubesec.io/v1alpha1', kind: 'Certificate', metadata: { name: 'web', namespace: 'shop' }, spec });
const specOf = (r: CertificateResource): CertificateSpec => {
  const checked = checkCertificateSpec(r);
  if ('errors' in checked) throw new Error(checked.errors.join('; '));
  return checked.spec;
};

describe('parseDuration', () => {
  it.each([['2160h', 2160 * 3600_000], ['1h30m', 5400_000], ['45s', 45_000], ['1.5h', 5400_000], ['500ms', 500]])('reads %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
  it.each(['', '10', '3d', '1h 30m', 'h'])('refuses %j', (text) => expect(parseDuration(text)).toBeUndefined());
});

describe('checkCertificateSpec', () => {
  it('applies defaults: ML-DSA-65, 90 days, renewal at two thirds, server usage, Issuer kind', () => {
    expect(specOf(resource({ secretName: 'web', dnsNames: ['shop.example.com'], issuerRef: { name: 'ca' } }))).toEqual({
      secretName: 'web', commonName: 'shop.example.com', dnsNames: ['shop.example.com'], ipAddresses: [], algorithm: 'ml-dsa-65', isCA: false,
      durationMs: 2160 * 3600_000, renewBeforeMs: 720 * 3600_000, usages: 'server', classicalTwin: false, issuerRef: { name: 'ca', kind: 'Issuer' },
    });
  });

  it('names every bad field', () => {
    const checked = checkCertificateSpec(resource({ dnsNames: ['Bad_Host'], ipAddresses: ['999.1.1.1'], algorithm: 'rsa-1024', duration: '5s', issuerRef: { kind: 'Other' } }));
    expect('errors' in checked && checked.errors).toEqual([
      'spec.algorithm: "rsa-1024" is not supported',
      'spec.secretName: is required',
      'spec.issuerRef.name: is required',
      'spec.issuerRef.kind: "Other" is not Issuer or ClusterIssuer',
      'spec.dnsNames[0]: "Bad_Host" is not a lower-case DNS name (an optional leading "*." is allowed)',
      'spec.ipAddresses[0]: "999.1.1.1" is not an IP address',
      'spec.duration: "5s" is not a duration of at least 10s (e.g. 2160h)',
    ]);
    const kem = checkCertificateSpec(resource({ secretName: 's', dnsNames: ['k.example'], algorithm: 'ml-kem-768', isCA: true, issuerRef: { name: 'ca' } }));
    expect('errors' in kem && kem.errors).toEqual(['spec.algorithm: ml-kem-768 keys cannot sign, so isCA and classicalTwin do not apply']);
    const renew = checkCertificateSpec(resource({ secretName: 's', dnsNames: ['k.example'], duration: '1h', renewBefore: '2h', issuerRef: { name: 'ca' } }));
    expect('errors' in renew && renew.errors).toEqual(['spec.renewBefore: "2h" must be a duration shorter than spec.duration']);
  });

  it('shortens rejected values in its errors', () => {
    const checked = checkCertificateSpec(resource({ secretName: 's', commonName: `x;${'y'.repeat(100_000)}`, issuerRef: { name: 'ca' } }));
    expect('errors' in checked && checked.errors).toEqual([`spec.commonName: "x;${'y'.repeat(75)}..." holds characters that are special in a distinguished name`]);
  });

  it('changes the spec hash with what is issued, not with renewBefore', () => {
    const base = specOf(resource({ secretName: 'web', dnsNames: ['a.example'], issuerRef: { name: 'ca' } }));
    expect(specHash({ ...base, renewBeforeMs: 1 })).toBe(specHash(base));
    expect(specHash({ ...base, dnsNames: ['b.example'] })).not.toBe(specHash(base));
  });
});

describe('issuerState and plan', () => {
  const now = new Date();
  let caSecret: V1Secret;
  let leafSecret: (notAfter: Date, spec: CertificateSpec, owner?: string) => Promise<V1Secret>;

  beforeAll(async () => {
    const ca = generateKeyPair('ml-dsa-65');
    const caPem = await issueCertificate({ subject: 'CN=CA', profile: 'ca', notAfter: new Date(Date.now() + 86_400_000), publicKey: ca.publicKey }, { selfKey: ca.privateKey });
    caSecret = { metadata: { name: 'ca' }, data: { 'tls.crt': b64(caPem), 'tls.key': b64(privateKeyPem(ca.privateKey)) } };
    leafSecret = async (notAfter, spec, owner = 'web') => {
      const keys = generateKeyPair('ml-dsa-44');
      const pem = await issueCertificate({ subject: 'CN=a', dnsNames: ['a.example'], profile: 'server', notBefore: new Date(notAfter.getTime() - 3_600_000), notAfter, publicKey: keys.publicKey }, { certificatePem: caPem, privateKey: ca.privateKey });
      return { metadata: { name: 'web', annotations: { [SECRET_ANNOTATIONS.certificate]: owner, [SECRET_ANNOTATIONS.specHash]: specHash(spec) } }, data: { 'tls.crt': b64(pem), 'tls.key': b64(privateKeyPem(keys.privateKey)) } };
    };
  });

  it('says why an issuer is not ready', () => {
    const issuer = (spec: IssuerResource['spec']): IssuerResource => ({ apiVersion: 'qubesec.io/v1alpha1', kind: 'Issuer', metadata: { name: 'i', namespace: 'shop' }, spec });
    expect(issuerState(issuer({ selfSigned: {} }), () => undefined, now)).toEqual({ ready: true, kind: 'selfSigned' });
    expect(issuerState(issuer({ ca: { secretName: 'ca' } }), (n) => (n === 'ca' ? caSecret : undefined), now)).toEqual(expect.objectContaining({ ready: true, kind: 'ca' }));
    expect(issuerState(issuer({ ca: { secretName: 'gone' } }), () => undefined, now)).toEqual({ ready: false, reason: 'SecretNotFound', message: 'spec.ca.secretName: Secret gone not found' });
    expect(issuerState(issuer({}), () => undefined, now)).toEqual(expect.objectContaining({ ready: false, reason: 'InvalidSpec' }));
    const swapped = { ...caSecret, data: { ...caSecret.data, 'tls.key': b64(privateKeyPem(generateKeyPair('ml-dsa-65').privateKey)) } };
    expect(issuerState(issuer({ ca: { secretName: 'ca' } }), () => swapped, now)).toEqual(expect.objectContaining({ ready: false, reason: 'KeyMismatch' }));
    expect(issuerState(issuer({ ca: { secretName: 'ca' } }), () => caSecret, new Date(Date.now() + 2 * 86_400_000))).toEqual(expect.objectContaining({ ready: false, reason: 'Expired' }));
  });

  it('issues when missing, changed or due, waits otherwise, and never takes over a foreign Secret', async () => {
    const r = resource({ secretName: 'web', dnsNames: ['a.example'], duration: '2h', renewBefore: '30m', issuerRef: { name: 'ca' } });
    const spec = specOf(r);
    expect(plan(r, spec, undefined, now)).toEqual({ issue: true, reason: 'the Secret does not exist' });
    const fresh = await leafSecret(new Date(Date.now() + 3_600_000), spec);
    const waiting = plan(r, spec, fresh, now);
    expect('issue' in waiting && !waiting.issue && waiting.renewalTime.getTime()).toBeCloseTo(Date.now() + 30 * 60_000, -4);
    expect(plan(r, spec, await leafSecret(new Date(Date.now() + 20 * 60_000), spec), now)).toEqual(expect.objectContaining({ issue: true, reason: expect.stringMatching(/^renewal time .* reached$/) }));
    expect(plan(r, { ...spec, dnsNames: ['b.example'] }, fresh, now)).toEqual({ issue: true, reason: 'the spec changed' });
    expect(plan(r, spec, await leafSecret(new Date(Date.now() + 3_600_000), spec, 'someone-else'), now)).toEqual(expect.objectContaining({ reason: 'SecretNotOwned' }));
  });
});
