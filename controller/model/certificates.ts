// Checks a kubernetes.io/tls Secret before its pair is served: key matches certificate, in validity, names readable.
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import type { CaBundle, CertificatePair } from './types.js';

/** Tolerated difference between the issuer's clock and ours. */
const CLOCK_SKEW_MS = 5 * 60_000;

export type CheckedPair = { pair: CertificatePair } | { error: string };

/** The fields of a Secret this module reads: a pair's, and CA certificates' (sources/source.ts keeps only these). */
export const PAIR_FIELDS = { certificate: 'tls.crt', key: 'tls.key' } as const;
export const CA_FIELD = 'ca.crt';

/** Pure given `now`: no I/O, so the reconciler can keep the last good pair when a Secret turns bad. */
export function checkTlsSecret(secret: V1Secret, now: Date): CheckedPair {
  const source = `${secret.metadata?.namespace ?? ''}/${secret.metadata?.name ?? ''}`;
  if (secret.type !== undefined && secret.type !== 'kubernetes.io/tls') {
    return { error: `Secret ${source}: type is ${secret.type}, not kubernetes.io/tls` };
  }
  const certificatePem = secretData(secret, PAIR_FIELDS.certificate);
  const keyPem = secretData(secret, PAIR_FIELDS.key);
  if (!certificatePem || !keyPem) return { error: `Secret ${source}: data.tls.crt and data.tls.key are both required` };
  return checkPair(source, certificatePem, keyPem, now);
}

/** `fields` name the Secret's fields in messages. */
export function checkPair(source: string, certificatePem: string, keyPem: string, now: Date, fields: { certificate: string; key: string } = PAIR_FIELDS): CheckedPair {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certificatePem);
  } catch (err) {
    return { error: `Secret ${source}: data.${fields.certificate} is not a PEM certificate (${(err as Error).message})` };
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    return { error: `Secret ${source}: data.${fields.key} is not a PEM private key (${(err as Error).message})` };
  }
  if (!certificate.checkPrivateKey(key)) {
    return { error: `Secret ${source}: data.${fields.key} does not match the certificate in data.${fields.certificate}` };
  }
  const notAfter = new Date(certificate.validTo);
  if (notAfter <= now) return { error: `Secret ${source}: the certificate expired at ${notAfter.toISOString()}` };
  const notBefore = new Date(certificate.validFrom);
  // A certificate issued a moment ago on a host whose clock runs ahead is still good.
  if (notBefore.getTime() > now.getTime() + CLOCK_SKEW_MS) return { error: `Secret ${source}: the certificate is not valid before ${notBefore.toISOString()}` };
  return {
    pair: pemByFingerprintInJson({
      source,
      certificatePem,
      keyPem,
      keyAlgorithm: key.asymmetricKeyType ?? 'unknown',
      notAfter,
      names: certificateNames(certificate),
      fingerprint: createHash('sha256').update(certificatePem).update('\0').update(keyPem).digest('hex'),
    }),
  };
}

/**
 * The JSON of a pair or CA bundle leaves its PEM out: the fingerprint already names it. JSON of the model (the
 * applier's change check) would otherwise copy every PEM once per host that serves it, hundreds of MiB at 10,000
 * hosts. toJSON is not enumerable, so the object keeps exactly its fields.
 */
function pemByFingerprintInJson<T extends CertificatePair | CaBundle>(value: T): T {
  const pemFields = new Set(['certificatePem', 'keyPem', 'pem']);
  const json = Object.fromEntries(Object.entries(value).filter(([field]) => !pemFields.has(field)));
  Object.defineProperty(value, 'toJSON', { value: () => json });
  return value;
}

export type CheckedCa = { ca: CaBundle } | { error: string };

/** Reads the ca.crt of a Secret (any type, as ingress-nginx): one or more CA certificates, at least one valid now. */
export function checkCaSecret(secret: V1Secret, now: Date): CheckedCa {
  const source = `${secret.metadata?.namespace ?? ''}/${secret.metadata?.name ?? ''}`;
  return checkCaPem(`Secret ${source}`, source, secretData(secret, CA_FIELD), now);
}

/** Reads the ca.crt of a ConfigMap (BackendTLSPolicy's caCertificateRefs), as a Secret's. */
export function checkCaConfigMap(configMap: V1ConfigMap, now: Date): CheckedCa {
  const source = `${configMap.metadata?.namespace ?? ''}/${configMap.metadata?.name ?? ''}`;
  return checkCaPem(`ConfigMap ${source}`, source, configMap.data?.[CA_FIELD], now);
}

/** `object` names the holder in messages ("Secret ns/name"); `source` is its namespace/name. */
function checkCaPem(object: string, source: string, pem: string | undefined, now: Date): CheckedCa {
  if (!pem) return { error: `${object}: data.ca.crt is required (the CA certificates to verify with)` };
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return { error: `${object}: data.ca.crt holds no PEM certificate` };
  let valid = 0;
  for (const [i, block] of blocks.entries()) {
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(block);
    } catch (err) {
      return { error: `${object}: certificate ${i + 1} of data.ca.crt does not parse (${(err as Error).message})` };
    }
    if (!certificate.ca) return { error: `${object}: certificate ${i + 1} of data.ca.crt (${certificate.subject.replace(/\n/g, ', ')}) is not a CA certificate` };
    if (new Date(certificate.validTo) > now) valid++;
  }
  if (valid === 0) return { error: `${object}: every certificate in data.ca.crt has expired` };
  return { ca: caBundle(source, `${blocks.join('\n')}\n`) };
}

/** One bundle of several (a BackendTLSPolicy naming more than one ConfigMap); a single one stays as it is. */
export function joinCaBundles(bundles: readonly CaBundle[]): CaBundle {
  if (bundles.length === 1) return bundles[0]!;
  return caBundle(bundles.map((b) => b.source).join(','), bundles.map((b) => b.pem).join(''));
}

function caBundle(source: string, pem: string): CaBundle {
  return pemByFingerprintInJson({ source, pem, fingerprint: createHash('sha256').update(pem).digest('hex') });
}

function certificateNames(certificate: X509Certificate): string[] {
  const san = certificate.subjectAltName;
  if (san) {
    return san
      .split(', ')
      .map((entry) => /^(?:DNS|IP Address):(.+)$/.exec(entry)?.[1])
      .filter((name): name is string => name !== undefined);
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(certificate.subject)?.[1];
  return cn ? [cn] : [];
}

/** A Secret's value as text, from data (base64) or stringData. */
export function secretData(secret: V1Secret, key: string): string | undefined {
  const b64 = secret.data?.[key];
  if (b64 !== undefined) return Buffer.from(b64, 'base64').toString('utf8');
  return secret.stringData?.[key];
}
