// What a verifier trusts: public keys (SPKI PEM, or a certificate's key) and CA certificates (QubeSec's PKI roots and
// intermediates), plus revoked certificate serials and key ids. The PKI keeps no revocation list, so the trust
// configuration holds one (--revoked, documented in docs/signatures.md).
import { X509Certificate } from 'node:crypto';
import { KeyError, importPublicKey, keyIdOf, type PublicKey } from './algorithms.js';
import { oneLine } from './keys.js';
import { pemBlocks } from './pem.js';

export interface TrustedKey {
  publicKey: PublicKey;
  /** Where it came from: a file name or "Secret ns/name key k". */
  source: string;
  /** The certificate's subject, when the key came in a certificate. */
  subject?: string;
}

export interface CertificateAuthority {
  certificate: X509Certificate;
  source: string;
}

export interface TrustAnchors {
  /** Trusted public keys by key id. */
  keys: Map<string, TrustedKey>;
  certificateAuthorities: CertificateAuthority[];
  /** Revoked certificate serial numbers (upper-case hex) and key ids (lower-case hex). */
  revoked: Set<string>;
}

export interface TrustOptions {
  /** Certificate serial numbers (hex, colons allowed) or key ids no longer to trust. */
  revoked?: string[];
}

/** The trust anchors in `sources`; a source that holds no key or certificate, or a bad one, fails naming `name`. */
export function trustAnchorsFrom(sources: { name: string; pem: string }[], options: TrustOptions = {}): TrustAnchors {
  const anchors: TrustAnchors = { keys: new Map(), certificateAuthorities: [], revoked: new Set() };
  for (const { name, pem } of sources) {
    const blocks = pemBlocks(pem).filter((b) => b.label === 'PUBLIC KEY' || b.label === 'CERTIFICATE');
    if (blocks.length === 0) {
      throw new KeyError(`${name}: no public key (-----BEGIN PUBLIC KEY-----) or certificate in it${/PRIVATE KEY-----/.test(pem) ? ' (it holds a private key: give the public key, openssl pkey -pubout)' : ''}`);
    }
    for (const block of blocks) {
      if (block.label === 'PUBLIC KEY') {
        const publicKey = importPublicKey(block.der, name);
        anchors.keys.set(publicKey.keyId, { publicKey, source: name });
        continue;
      }
      let certificate: X509Certificate;
      try {
        certificate = new X509Certificate(block.der);
      } catch (err) {
        throw new KeyError(`${name}: a certificate is not X.509: ${(err as Error).message}`);
      }
      if (certificate.ca) {
        anchors.certificateAuthorities.push({ certificate, source: name });
      } else {
        const publicKey = importPublicKey(certificate.publicKey.export({ type: 'spki', format: 'der' }), name);
        anchors.keys.set(publicKey.keyId, { publicKey, source: name, subject: oneLine(certificate.subject) });
      }
    }
  }
  for (const entry of options.revoked ?? []) anchors.revoked.add(normalizeRevoked(entry));
  return anchors;
}

function normalizeRevoked(entry: string): string {
  const hex = entry.replace(/:/g, '').trim();
  if (!/^[0-9a-fA-F]+$/.test(hex)) throw new KeyError(`revoked: ${JSON.stringify(entry)} is neither a certificate serial (hex) nor a key id`);
  return hex.length === 16 ? hex.toLowerCase() : hex.toUpperCase().replace(/^0+(?=.)/, '');
}

/** Who signed, as the trust anchors vouch for it. */
export interface ResolvedSigner {
  publicKey: PublicKey;
  keyId: string;
  subject?: string;
}

/**
 * The key behind `keyId`: a trusted key, or the leaf of `chainPem` when the chain leads to a trusted CA, every
 * certificate on it valid at `now` and none revoked. Throws a reason fit for a SignatureFailure.
 */
export function resolveSigner(anchors: TrustAnchors, keyId: string, chainPem: string[] | undefined, now: Date): ResolvedSigner {
  if (anchors.revoked.has(keyId)) throw new Error(`the signer's key ${keyId} is revoked`);
  const trusted = anchors.keys.get(keyId);
  if (trusted) return { publicKey: trusted.publicKey, keyId, ...(trusted.subject ? { subject: trusted.subject } : {}) };
  if (!chainPem?.length) throw new Error(`unknown signer: key ${keyId} is not among the trusted keys and the signature carries no certificate`);

  const chain = chainPem.map((text, i) => {
    try {
      return new X509Certificate(text);
    } catch {
      throw new Error(`certificate ${i + 1} of the signature's chain is not X.509`);
    }
  });
  const leaf = chain[0]!;
  const spki = leaf.publicKey.export({ type: 'spki', format: 'der' });
  if (keyIdOf(spki) !== keyId) throw new Error(`the signature's certificate is for key ${keyIdOf(spki)}, not ${keyId}`);
  if (anchors.certificateAuthorities.length === 0) throw new Error(`unknown signer: ${oneLine(leaf.subject)} (key ${keyId}); no CA certificate is trusted`);

  const path = [leaf];
  for (let current = leaf; ; ) {
    const anchor = anchors.certificateAuthorities.find((ca) => issued(ca.certificate, current));
    if (anchor) {
      path.push(anchor.certificate);
      break;
    }
    const next = chain.find((c) => c.ca && !path.includes(c) && issued(c, current));
    if (!next || path.length > 8) throw new Error(`unknown signer: ${oneLine(leaf.subject)} (key ${keyId}) does not chain to a trusted CA`);
    path.push(next);
    current = next;
  }
  for (const certificate of path) {
    const what = `${certificate === leaf ? 'the signer certificate' : 'CA certificate'} ${oneLine(certificate.subject)}`;
    if (new Date(certificate.validTo) < now) throw new Error(`${what} expired at ${new Date(certificate.validTo).toISOString()}`);
    if (new Date(certificate.validFrom) > now) throw new Error(`${what} is not valid before ${new Date(certificate.validFrom).toISOString()}`);
    const serial = certificate.serialNumber.toUpperCase().replace(/^0+(?=.)/, '');
    if (anchors.revoked.has(serial)) throw new Error(`${what} (serial ${serial}) is revoked`);
    if (anchors.revoked.has(keyIdOf(certificate.publicKey.export({ type: 'spki', format: 'der' })))) throw new Error(`${what}: its key is revoked`);
  }
  return { publicKey: importPublicKey(spki, 'the signer certificate'), keyId, subject: oneLine(leaf.subject) };
}

function issued(issuer: X509Certificate, subject: X509Certificate): boolean {
  return subject.checkIssued(issuer) && subject.verify(issuer.publicKey);
}
