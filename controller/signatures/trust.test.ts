import { X509Certificate } from 'node:crypto';
import { generateKeyPair } from '../pki/algorithms.js';
import { issueCertificate, privateKeyPem, type Issuer } from '../pki/x509.js';
import { generatePrivateKey, publicKeyPem } from './algorithms.js';
import { signFile, verifyFile } from './files.js';
import { loadSigningKey } from './keys.js';
import { signObject, signatureAnnotation, verifyObject } from './objects.js';
import { trustAnchorsFrom } from './trust.js';

const DAY = 86_400_000;
const inDays = (n: number) => new Date(Date.now() + n * DAY);
const configMap = () => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'shop' }, data: { mode: 'prod' } });

async function ca(subject: string, parent?: Issuer): Promise<Issuer> {
  const keys = generateKeyPair('ml-dsa-65');
  const spec = { subject, profile: 'ca' as const, notBefore: inDays(-60), notAfter: inDays(3650), publicKey: keys.publicKey };
  const certificatePem = parent ? await issueCertificate({ ...spec, notAfter: inDays(365) }, parent) : await issueCertificate(spec, { selfKey: keys.privateKey });
  return { certificatePem, privateKey: keys.privateKey };
}

/** A signer certificate from QubeSec's PKI (controller/pki), and its key. */
async function signerCertificate(issuer: Issuer, validity: { notBefore?: Date; notAfter: Date } = { notAfter: inDays(90) }) {
  const keys = generateKeyPair('ml-dsa-65');
  const pem = await issueCertificate({ subject: 'CN=release-bot,O=Example', profile: 'client', publicKey: keys.publicKey, ...validity }, issuer);
  return { keyPem: privateKeyPem(keys.privateKey), certificatePem: `${pem.trim()}\n${issuer.certificatePem.trim()}\n` };
}

describe('trust anchors', () => {
  it('verifies a signer whose certificate chains through an intermediate to a trusted ML-DSA root', async () => {
    const root = await ca('CN=Root');
    const inter = await ca('CN=Intermediate', root);
    const cert = await signerCertificate(inter);
    const key = loadSigningKey(cert.keyPem, 'bot.key', cert.certificatePem);
    expect(key.certificateChainPem).toHaveLength(2);
    const signed = await signObject(configMap(), key);
    const anchors = trustAnchorsFrom([{ name: 'root.crt', pem: root.certificatePem }]);
    expect(await verifyObject(signed, anchors)).toEqual({ signers: [{ id: key.keyId, subject: 'CN=release-bot, O=Example', algorithm: 'ML-DSA-65' }], failures: [] });
    const other = trustAnchorsFrom([{ name: 'other-root.crt', pem: (await ca('CN=Other')).certificatePem }]);
    expect((await verifyObject(signed, other)).failures[0]!.reason).toBe(`unknown signer: CN=release-bot, O=Example (key ${key.keyId}) does not chain to a trusted CA`);
  });

  it('refuses an expired signer certificate, and one revoked by serial or by key id', async () => {
    const root = await ca('CN=Root');
    const expired = await signerCertificate(root, { notBefore: inDays(-30), notAfter: inDays(-1) });
    expect(() => loadSigningKey(expired.keyPem, 'old.key', expired.certificatePem)).toThrow(/^old\.key: the certificate CN=release-bot, O=Example expired at /);
    const signedThen = await signObject(configMap(), loadSigningKey(expired.keyPem, 'old.key', expired.certificatePem, inDays(-10)));
    const anchors = trustAnchorsFrom([{ name: 'root.crt', pem: root.certificatePem }]);
    expect((await verifyObject(signedThen, anchors)).failures[0]!.reason).toMatch(/^the signer certificate CN=release-bot, O=Example expired at \d{4}-/);
    expect((await verifyObject(signedThen, anchors, { now: inDays(-5) })).signers).toHaveLength(1);

    const current = await signerCertificate(root);
    const key = loadSigningKey(current.keyPem, 'bot.key', current.certificatePem);
    const signed = await signObject(configMap(), key);
    const serial = new X509Certificate(current.certificatePem).serialNumber;
    const bySerial = trustAnchorsFrom([{ name: 'root.crt', pem: root.certificatePem }], { revoked: [serial.replace(/(..)(?!$)/g, '$1:').toLowerCase()] });
    expect((await verifyObject(signed, bySerial)).failures[0]!.reason).toContain(`(serial ${serial.replace(/^0+/, '')}) is revoked`);
    const byKey = trustAnchorsFrom([{ name: 'root.crt', pem: root.certificatePem }], { revoked: [key.keyId] });
    expect((await verifyObject(signed, byKey)).failures[0]!.reason).toBe(`the signer's key ${key.keyId} is revoked`);
  });

  it('verifies a file bundle whose signer certificate (x5c in the DSSE signature) chains to the trusted root', async () => {
    const root = await ca('CN=Root');
    const inter = await ca('CN=Intermediate', root);
    const cert = await signerCertificate(inter);
    const key = loadSigningKey(cert.keyPem, 'bot.key', cert.certificatePem);
    const bundle = await signFile('app.tgz', Buffer.from('bytes'), key);
    expect(JSON.parse(bundle).signatures[0].x5c).toHaveLength(2);
    const anchors = trustAnchorsFrom([{ name: 'root.crt', pem: root.certificatePem }]);
    expect(verifyFile(Buffer.from('bytes'), bundle, anchors)).toEqual({ signers: [{ id: key.keyId, subject: 'CN=release-bot, O=Example', algorithm: 'ML-DSA-65' }], failures: [] });
    const revoked = trustAnchorsFrom([{ name: 'root.crt', pem: root.certificatePem }], { revoked: [new X509Certificate(inter.certificatePem).serialNumber] });
    expect(verifyFile(Buffer.from('bytes'), bundle, revoked).failures[0]!.reason).toMatch(/^CA certificate CN=Intermediate \(serial [0-9A-F]+\) is revoked$/);
  });

  it('trusts a plain public key, and names a source that holds none', () => {
    const key = generatePrivateKey('ML-DSA-87');
    const anchors = trustAnchorsFrom([{ name: 'Secret ops/keys key release.pub', pem: publicKeyPem(key.publicKey) }]);
    expect([...anchors.keys.keys()]).toEqual([key.publicKey.keyId]);
    expect(() => trustAnchorsFrom([{ name: 'Secret ops/keys key junk', pem: 'hello' }])).toThrow('Secret ops/keys key junk: no public key (-----BEGIN PUBLIC KEY-----) or certificate in it');
    expect(() => trustAnchorsFrom([{ name: 'k.pem', pem: '-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n' }])).toThrow('(it holds a private key: give the public key, openssl pkey -pubout)');
    expect(() => trustAnchorsFrom([], { revoked: ['not-hex!'] })).toThrow('revoked: "not-hex!" is neither');
  });

  it('refuses a certificate that is not for the signing key', async () => {
    const root = await ca('CN=Root');
    const cert = await signerCertificate(root);
    const otherKey = privateKeyPem(generateKeyPair('ml-dsa-65').privateKey);
    expect(() => loadSigningKey(otherKey, 'k.pem', cert.certificatePem)).toThrow('k.pem: the certificate (CN=release-bot, O=Example) is not for this key');
    expect(signatureAnnotation('abc')).toBe('signatures.qubesec.io/abc');
  });
});
