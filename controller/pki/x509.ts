// X.509 issuance with @peculiar/x509 (ASN.1) and Node 24's OpenSSL (keys and signatures): no hand-written crypto.
import { X509Certificate as NodeX509, createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { quote } from '../model/names.js';
import { nodeSigningKey, x509 } from './peculiar.js';
import { algorithmOf, isSignatureAlgorithm, isSlhDsa, webSigningAlgorithm, type KeyAlgorithm, type SignatureAlgorithm } from './algorithms.js';

export type Profile = 'ca' | 'server' | 'client' | 'server-client' | 'key-establishment';

export interface CertificateSpec {
  /** Subject distinguished name, e.g. "CN=api.example.com,O=Example". */
  subject: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  profile: Profile;
  /** For profile 'ca': how many intermediates may follow (undefined: no limit). */
  pathLength?: number;
  notBefore?: Date;
  notAfter: Date;
  publicKey: KeyObject;
  /** 20 random bytes for the serial number (KeyMaterial.serialBytes); default: from OpenSSL's generator. */
  serialBytes?: Buffer;
}

/** The CA that signs: its certificate (PEM) and private key. */
export interface Issuer {
  certificatePem: string;
  privateKey: KeyObject;
}

export class PkiError extends Error {}

/** Issues a certificate signed by `issuer`, or self-signed with `selfKey` (a root CA, or a self-signed server). Returns PEM. */
export async function issueCertificate(spec: CertificateSpec, signer: Issuer | { selfKey: KeyObject }): Promise<string> {
  const subjectAlgorithm = algorithmOf(spec.publicKey);
  if (!subjectAlgorithm) throw new PkiError(`unsupported public key type ${spec.publicKey.asymmetricKeyType}`);
  if (spec.profile === 'key-establishment' ? isSignatureAlgorithm(subjectAlgorithm) : !isSignatureAlgorithm(subjectAlgorithm)) {
    throw new PkiError(spec.profile === 'key-establishment'
      ? `profile key-establishment needs an ML-KEM key, not ${subjectAlgorithm}`
      : `${subjectAlgorithm} is a key-establishment (ML-KEM) key: it can only go in a key-establishment certificate`);
  }
  const notBefore = spec.notBefore ?? new Date();
  if (spec.notAfter <= notBefore) throw new PkiError('notAfter must be after notBefore');
  for (const ip of spec.ipAddresses ?? []) if (isIP(ip) === 0) throw new PkiError(`ipAddresses: ${quote(ip)} is not an IP address`);

  let signingKey: KeyObject;
  let issuerName: string;
  let authorityKeyId: string | undefined;
  if ('selfKey' in signer) {
    if (!matches(signer.selfKey, spec.publicKey)) throw new PkiError('the self-signing key does not match the public key');
    signingKey = signer.selfKey;
    issuerName = spec.subject;
  } else {
    const ca = checkIssuer(signer, notBefore);
    if (spec.notAfter > new Date(ca.validTo)) {
      throw new PkiError(`the certificate would outlive its issuer (issuer ${ca.subject.replace(/\n/g, ', ')} expires ${new Date(ca.validTo).toISOString()})`);
    }
    signingKey = signer.privateKey;
    const peculiar = new x509.X509Certificate(signer.certificatePem);
    issuerName = peculiar.subject;
    authorityKeyId = peculiar.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  }
  const signingAlgorithm = algorithmOf(signingKey);
  if (!signingAlgorithm || !isSignatureAlgorithm(signingAlgorithm)) throw new PkiError(`the issuer's key (${signingKey.asymmetricKeyType}) cannot sign`);

  const spki = spec.publicKey.export({ type: 'spki', format: 'der' });
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(spec.profile === 'ca', spec.profile === 'ca' ? spec.pathLength : undefined, true),
    new x509.KeyUsagesExtension(keyUsage(spec.profile), true),
    await x509.SubjectKeyIdentifierExtension.create(new Uint8Array(spki)),
  ];
  const eku = extendedKeyUsage(spec.profile);
  if (eku.length > 0) extensions.push(new x509.ExtendedKeyUsageExtension(eku, false));
  if (authorityKeyId) extensions.push(new x509.AuthorityKeyIdentifierExtension(authorityKeyId));
  const names = [
    ...(spec.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(spec.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));

  const web = webSigningAlgorithm(signingAlgorithm);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(spec.serialBytes ?? randomBytes(20)),
    subject: spec.subject,
    issuer: issuerName,
    notBefore,
    notAfter: spec.notAfter,
    signingAlgorithm: web,
    publicKey: new Uint8Array(spki),
    signingKey: isSlhDsa(signingAlgorithm) ? nodeSigningKey(signingKey, web) : signingKey.toCryptoKey(web, false, ['sign']),
    extensions,
  });
  return certificate.toString('pem');
}

/** What a server sends: the leaf, then its issuer when that is an intermediate (a root stays with the clients). */
export function servedChain(leafPem: string, issuerPem: string): string {
  const issuer = new NodeX509(issuerPem);
  return issuer.checkIssued(issuer) ? leafPem : `${leafPem.trim()}\n${issuerPem.trim()}\n`;
}

/** A CSR's subject, names and public key, after checking its self-signature. */
export async function readCsr(csrPem: string): Promise<{ subject: string; dnsNames: string[]; ipAddresses: string[]; publicKey: KeyObject }> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new PkiError(`not a PEM certificate request (PKCS#10): ${(err as Error).message}`);
  }
  const publicKey = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  const algorithm = algorithmOf(publicKey);
  if (!algorithm) throw new PkiError(`the request's key type ${publicKey.asymmetricKeyType} is not supported`);
  if (!(await verifyCsr(csr, algorithm))) throw new PkiError("the request's signature does not verify with its own key");
  const san = csr.extensions.find((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension);
  const names = san?.names.items ?? [];
  return {
    subject: csr.subject,
    dnsNames: names.filter((n) => n.type === 'dns').map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === 'ip').map((n) => n.value),
    publicKey,
  };
}

export function readPrivateKey(pem: string, what = 'private key'): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new PkiError(`${what} is not a PEM private key: ${(err as Error).message}`);
  }
}

export function privateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** The issuer must be a CA that may sign certificates, be valid now, and hold the key that matches. */
function checkIssuer(issuer: Issuer, at: Date): NodeX509 {
  let ca: NodeX509;
  try {
    ca = new NodeX509(issuer.certificatePem);
  } catch (err) {
    throw new PkiError(`the issuer certificate is not PEM X.509: ${(err as Error).message}`);
  }
  if (!ca.ca) throw new PkiError('the issuer certificate is not a CA (basicConstraints CA:TRUE)');
  if (!ca.checkPrivateKey(issuer.privateKey)) throw new PkiError("the issuer's private key does not match its certificate");
  if (new Date(ca.validTo) <= at) throw new PkiError(`the issuer certificate expired at ${new Date(ca.validTo).toISOString()}`);
  return ca;
}

async function verifyCsr(csr: x509.Pkcs10CertificateRequest, algorithm: KeyAlgorithm): Promise<boolean> {
  if (!isSignatureAlgorithm(algorithm)) return false; // an ML-KEM key cannot sign its own request
  return csr.verify().catch(() => false);
}

function matches(privateKey: KeyObject, publicKey: KeyObject): boolean {
  return createPublicKey(privateKey).export({ type: 'spki', format: 'der' }).equals(publicKey.export({ type: 'spki', format: 'der' }));
}

function keyUsage(profile: Profile): number {
  const F = x509.KeyUsageFlags;
  switch (profile) {
    case 'ca':
      return F.keyCertSign | F.cRLSign | F.digitalSignature;
    case 'key-establishment':
      // The ML-KEM certificate profile allows keyEncipherment alone.
      return F.keyEncipherment;
    default:
      return F.digitalSignature;
  }
}

function extendedKeyUsage(profile: Profile): string[] {
  const E = x509.ExtendedKeyUsage;
  return { ca: [], server: [E.serverAuth], client: [E.clientAuth], 'server-client': [E.serverAuth, E.clientAuth], 'key-establishment': [] }[profile];
}

/** 159 of 20 random bytes' bits: positive, at most 20 octets (RFC 5280). */
function serialNumber(random: Buffer): string {
  if (random.length !== 20) throw new PkiError(`a serial number takes 20 random bytes, not ${random.length}`);
  const bytes = Buffer.from(random);
  bytes[0] = bytes[0]! & 0x7f;
  if (bytes[0] === 0) bytes[0] = 1;
  return bytes.toString('hex');
}

export type { SignatureAlgorithm };
