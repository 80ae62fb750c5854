import { X509Certificate } from 'node:crypto';
import { generateKeyPair, type SignatureAlgorithm } from './algorithms.js';
import { inspectPem } from './inspect.js';
import { x509 } from './peculiar.js';
import { issueCertificate, readCsr, type Issuer } from './x509.js';

const DAY = 86_400_000;
const inDays = (n: number) => new Date(Date.now() + n * DAY);

async function rootCa(algorithm: SignatureAlgorithm = 'ml-dsa-65', notAfter = inDays(3650), notBefore?: Date): Promise<Issuer> {
  const keys = generateKeyPair(algorithm);
  const certificatePem = await issueCertificate({ subject: `CN=Test Root ${algorithm}`, profile: 'ca', notBefore, notAfter, publicKey: keys.publicKey }, { selfKey: keys.privateKey });
  return { certificatePem, privateKey: keys.privateKey };
}

async function intermediate(root: Issuer, algorithm: SignatureAlgorithm = 'ml-dsa-65'): Promise<Issuer> {
  const keys = generateKeyPair(algorithm);
  const certificatePem = await issueCertificate({ subject: 'CN=Test Intermediate', profile: 'ca', pathLength: 0, notAfter: inDays(365), publicKey: keys.publicKey }, root);
  return { certificatePem, privateKey: keys.privateKey };
}

describe('issueCertificate', () => {
  it.each(['ml-dsa-44', 'ml-dsa-65', 'ml-dsa-87', 'ecdsa-p256', 'ecdsa-p384'] as const)('builds a %s root -> intermediate -> leaf chain that verifies', async (algorithm) => {
    const root = await rootCa(algorithm);
    const inter = await intermediate(root, algorithm);
    const leafKeys = generateKeyPair(algorithm);
    const leafPem = await issueCertificate({ subject: 'CN=app.example.com', dnsNames: ['app.example.com', '*.app.example.com'], ipAddresses: ['10.1.2.3', 'fd00::1'], profile: 'server', notAfter: inDays(90), publicKey: leafKeys.publicKey }, inter);

    const [r, i, l] = [root.certificatePem, inter.certificatePem, leafPem].map((p) => new X509Certificate(p));
    expect(r!.verify(r!.publicKey)).toBe(true);
    expect(i!.checkIssued(r!) && i!.verify(r!.publicKey)).toBe(true);
    expect(l!.checkIssued(i!) && l!.verify(i!.publicKey)).toBe(true);
    expect(l!.verify(r!.publicKey)).toBe(false);
    expect([r!.ca, i!.ca, l!.ca]).toEqual([true, true, false]);
    expect(l!.subjectAltName).toBe('DNS:app.example.com, DNS:*.app.example.com, IP Address:10.1.2.3, IP Address:FD00:0:0:0:0:0:0:1');
    expect(l!.checkPrivateKey(leafKeys.privateKey)).toBe(true);

    const leaf = new x509.X509Certificate(leafPem);
    expect(leaf.getExtension(x509.KeyUsagesExtension)!.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    expect(leaf.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(new x509.X509Certificate(inter.certificatePem).getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
    expect(new x509.X509Certificate(inter.certificatePem).getExtension(x509.BasicConstraintsExtension)).toEqual(expect.objectContaining({ ca: true, pathLength: 0, critical: true }));
  });

  it('signs with an SLH-DSA root (node:crypto, which WebCrypto lacks) under an ML-DSA intermediate', async () => {
    const root = await rootCa('slh-dsa-sha2-128s');
    const inter = await intermediate(root, 'ml-dsa-65');
    const [r, i] = [root.certificatePem, inter.certificatePem].map((p) => new X509Certificate(p));
    expect(r!.publicKey.asymmetricKeyType).toBe('slh-dsa-sha2-128s');
    expect(r!.verify(r!.publicKey) && i!.verify(r!.publicKey)).toBe(true);
    expect(inspectPem(inter.certificatePem).certificates[0]).toEqual(expect.objectContaining({ signatureAlgorithm: 'slh-dsa-sha2-128s', signatureBytes: 7856 }));
  });

  it('gives every certificate a fresh positive serial of at most 20 octets', async () => {
    const root = await rootCa();
    const keys = generateKeyPair('ml-dsa-44');
    const serials = await Promise.all([1, 2, 3].map(() => issueCertificate({ subject: 'CN=s', dnsNames: ['s'], profile: 'server', notAfter: inDays(1), publicKey: keys.publicKey }, root)));
    const hex = serials.map((p) => new X509Certificate(p).serialNumber);
    expect(new Set(hex).size).toBe(3);
    for (const h of hex) expect(h.length <= 40 && parseInt(h[0]!, 16) < 8).toBe(true);
  });

  it('issues ML-KEM key-establishment certificates with keyEncipherment only', async () => {
    const root = await rootCa();
    for (const algorithm of ['ml-kem-512', 'ml-kem-768', 'ml-kem-1024'] as const) {
      const keys = generateKeyPair(algorithm);
      const pem = await issueCertificate({ subject: 'CN=kem', dnsNames: ['kem.local'], profile: 'key-establishment', notAfter: inDays(30), publicKey: keys.publicKey }, root);
      const cert = new X509Certificate(pem);
      expect(cert.publicKey.asymmetricKeyType).toBe(algorithm);
      expect(cert.verify(new X509Certificate(root.certificatePem).publicKey)).toBe(true);
      const parsed = new x509.X509Certificate(pem);
      expect(parsed.getExtension(x509.KeyUsagesExtension)!.usages).toBe(x509.KeyUsageFlags.keyEncipherment);
      expect(parsed.getExtension(x509.ExtendedKeyUsageExtension)).toBeNull();
    }
  });

  it('issues from a CSR after checking its signature, keeping its subject, names and key', async () => {
    const root = await rootCa();
    const keys = await webKeys('ML-DSA-44');
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=from-csr.example.com, O=Tenant',
      keys,
      signingAlgorithm: { name: 'ML-DSA-44' },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'from-csr.example.com' }, { type: 'ip', value: '192.0.2.7' }])],
    });
    const request = await readCsr(csr.toString('pem'));
    expect(request).toEqual(expect.objectContaining({ subject: 'CN=from-csr.example.com, O=Tenant', dnsNames: ['from-csr.example.com'], ipAddresses: ['192.0.2.7'] }));
    const pem = await issueCertificate({ ...request, profile: 'server', notAfter: inDays(30) }, root);
    const cert = new X509Certificate(pem);
    expect(cert.publicKey.export({ type: 'spki', format: 'der' })).toEqual(request.publicKey.export({ type: 'spki', format: 'der' }));
    expect(cert.subject).toBe('CN=from-csr.example.com\nO=Tenant');

    const der = Buffer.from(csr.rawData);
    der[der.length - 1] = der[der.length - 1]! ^ 1; // one bit of the signature
    await expect(readCsr(x509.PemConverter.encode(der, 'CERTIFICATE REQUEST'))).rejects.toThrow("the request's signature does not verify with its own key");
    await expect(readCsr('not a csr')).rejects.toThrow(/not a PEM certificate request/);
  });

  it.each([
    ['a CA key that does not match the CA certificate', async () => ({ ...(await rootCa()), privateKey: generateKeyPair('ml-dsa-65').privateKey }), "the issuer's private key does not match its certificate"],
    ['an expired CA', () => rootCa('ml-dsa-65', new Date(Date.now() - DAY), new Date(Date.now() - 10 * DAY)), 'the issuer certificate expired at'],
    ['an issuer that is not a CA', async () => {
      const root = await rootCa();
      const keys = generateKeyPair('ml-dsa-65');
      return { certificatePem: await issueCertificate({ subject: 'CN=leaf', dnsNames: ['l'], profile: 'server', notAfter: inDays(10), publicKey: keys.publicKey }, root), privateKey: keys.privateKey };
    }, 'the issuer certificate is not a CA'],
    ['a leaf that would outlive its CA', () => rootCa('ml-dsa-65', inDays(5)), 'the certificate would outlive its issuer'],
  ])('refuses %s', async (_name, makeIssuer, message) => {
    const issuer = await makeIssuer();
    const keys = generateKeyPair('ml-dsa-44');
    await expect(issueCertificate({ subject: 'CN=x', dnsNames: ['x'], profile: 'server', notAfter: inDays(30), publicKey: keys.publicKey }, issuer)).rejects.toThrow(message);
  });

  it('refuses an ML-KEM key outside a key-establishment certificate, and a signature key inside one', async () => {
    const root = await rootCa();
    await expect(issueCertificate({ subject: 'CN=x', profile: 'server', notAfter: inDays(1), publicKey: generateKeyPair('ml-kem-768').publicKey }, root)).rejects.toThrow('ml-kem-768 is a key-establishment (ML-KEM) key');
    await expect(issueCertificate({ subject: 'CN=x', profile: 'key-establishment', notAfter: inDays(1), publicKey: generateKeyPair('ml-dsa-65').publicKey }, root)).rejects.toThrow('profile key-establishment needs an ML-KEM key');
  });
});

describe('inspectPem', () => {
  it('reports algorithms, sizes and chain order', async () => {
    const root = await rootCa('ml-dsa-87');
    const inter = await intermediate(root, 'ml-dsa-65');
    const leafKeys = generateKeyPair('ecdsa-p256');
    const leaf = await issueCertificate({ subject: 'CN=a', dnsNames: ['a.example'], profile: 'server', notAfter: inDays(10), publicKey: leafKeys.publicKey }, inter);
    const info = inspectPem(`${leaf}${inter.certificatePem}${root.certificatePem}`);
    expect(info.chainInOrder).toBe(true);
    expect(info.certificates.map((c) => [c.publicKeyAlgorithm, c.signatureAlgorithm, c.signatureBytes])).toEqual([
      ['ecdsa-p256', 'ml-dsa-65', 3309],
      ['ml-dsa-65', 'ml-dsa-87', 4627],
      ['ml-dsa-87', 'ml-dsa-87', 4627],
    ]);
    expect(info.certificates[1]!.publicKeyBytes).toBe(1974);
    const wrongOrder = inspectPem(`${inter.certificatePem}${leaf}`);
    expect(wrongOrder.chainInOrder).toBe(false);
    expect(() => inspectPem('nothing here')).toThrow('no PEM certificate');
  });
});

async function webKeys(name: string) {
  const { webcrypto } = await import('node:crypto');
  return webcrypto.subtle.generateKey({ name }, true, ['sign', 'verify']) as Promise<never>;
}
