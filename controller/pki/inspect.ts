// Describes a PEM bundle: per certificate its algorithms and sizes, names, validity, and whether the chain is in order.
import { X509Certificate } from 'node:crypto';
import { x509 } from './peculiar.js';
import { PkiError } from './x509.js';

export interface CertificateInfo {
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  isCA: boolean;
  publicKeyAlgorithm: string;
  publicKeyBytes: number;
  signatureAlgorithm: string;
  signatureBytes: number;
  dnsNames: string[];
  ipAddresses: string[];
  selfSigned: boolean;
}

export interface BundleInfo {
  certificates: CertificateInfo[];
  /** Each certificate is issued by the next one (leaf first); a single certificate is in order. */
  chainInOrder: boolean;
  /** Human-readable reasons when chainInOrder is false. */
  chainProblems: string[];
}

export function inspectPem(pem: string): BundleInfo {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new PkiError('no PEM certificate (-----BEGIN CERTIFICATE-----) found');
  const node = blocks.map((b) => new X509Certificate(b));
  const certificates = blocks.map((block, i) => describe(node[i]!, new x509.X509Certificate(block)));
  const chainProblems: string[] = [];
  for (let i = 0; i + 1 < node.length; i++) {
    const [child, parent] = [node[i]!, node[i + 1]!];
    if (!child.checkIssued(parent)) chainProblems.push(`certificate ${i + 1} (${oneLine(child.subject)}) is not issued by certificate ${i + 2} (${oneLine(parent.subject)})`);
    else if (!child.verify(parent.publicKey)) chainProblems.push(`certificate ${i + 1}'s signature does not verify with certificate ${i + 2}'s key`);
  }
  return { certificates, chainInOrder: chainProblems.length === 0, chainProblems };
}

function describe(cert: X509Certificate, peculiar: x509.X509Certificate): CertificateInfo {
  const key = cert.publicKey;
  const keyType = key.asymmetricKeyType ?? 'unknown';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const sig = peculiar.signatureAlgorithm as { name: string; hash?: { name: string } | string };
  const hash = typeof sig.hash === 'string' ? sig.hash : sig.hash?.name;
  const san = (cert.subjectAltName ?? '').split(', ').filter(Boolean);
  return {
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    serialNumber: cert.serialNumber,
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    isCA: cert.ca,
    publicKeyAlgorithm: keyType === 'ec' ? `ecdsa-${curve === 'prime256v1' ? 'p256' : curve === 'secp384r1' ? 'p384' : curve}` : keyType,
    publicKeyBytes: key.export({ type: 'spki', format: 'der' }).length,
    signatureAlgorithm: hash ? `${sig.name.toLowerCase()}-with-${hash.toLowerCase()}` : sig.name.toLowerCase(),
    signatureBytes: peculiar.signature.byteLength,
    dnsNames: san.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)),
    ipAddresses: san.filter((s) => s.startsWith('IP Address:')).map((s) => s.slice(11)),
    selfSigned: cert.checkIssued(cert),
  };
}

function oneLine(dn: string): string {
  return dn.split('\n').join(', ');
}
