// `qubesec check`, the I/O part: TLS handshakes with node:tls (OpenSSL 3.5), one per probed group plus one preference
// probe, and the targets of --all-ingresses read from the cluster. Connects only to the target.
import { X509Certificate } from 'node:crypto';
import { connect, type DetailedPeerCertificate, type TLSSocket } from 'node:tls';
import type { KubeConfig, V1Ingress } from '@kubernetes/client-node';
import { NetworkingV1Api } from '@kubernetes/client-node';
import { servedIngresses } from '../model/classes.js';
import { inspectPem } from '../pki/inspect.js';
import { buildReport, describeChain, PREFERENCE_OFFER, PROBED_GROUPS, type CertificateReport, type CheckReport, type HandshakeOutcome, type ProbeResults } from './report.js';

export interface CheckTarget {
  /** SNI and the name the certificate must match. */
  host: string;
  port: number;
  /** Where to connect; the host itself unless given. */
  address: string;
  ingress: string | null;
}

export interface ProbeOptions {
  /** PEM trust anchors (--cacert); Node's bundled roots when undefined. */
  ca?: string;
  timeoutMs: number;
}

interface Handshake {
  outcome: HandshakeOutcome;
  certificate: CertificateReport | null;
}

function handshake(target: CheckTarget, groups: string[], options: ProbeOptions): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = connect({
      host: target.address,
      port: target.port,
      servername: target.host,
      ecdhCurve: groups.join(':'),
      minVersion: 'TLSv1.2',
      ca: options.ca,
      // Verification is reported, not enforced: the groups and the chain are worth seeing either way.
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    socket.setTimeout(options.timeoutMs, () => socket.destroy(new Error(`no TLS handshake within ${options.timeoutMs / 1000} s`)));
    socket.once('secureConnect', () => {
      const outcome: HandshakeOutcome = { ok: true, group: negotiatedGroup(socket), protocol: socket.getProtocol() ?? 'unknown' };
      const certificate: CertificateReport = {
        verified: socket.authorized,
        verifyError: socket.authorized ? null : String(socket.authorizationError),
        chain: describeChain(inspectPem(peerChainPem(socket)).certificates, new Date()),
      };
      socket.destroy();
      resolve({ outcome, certificate });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.destroy();
      // OpenSSL reports the server's alert (handshake_failure for no shared group) as ERR_SSL_..._ALERT_...
      const refused = /^ERR_SSL_/.test(err.code ?? '');
      resolve({ outcome: { ok: false, error: err.code ? `${err.code}: ${err.message.split('\n')[0]}` : err.message, refused }, certificate: null });
    });
  });
}

/** Node reports classical groups as ECDH keys and ML-KEM groups as TLSGroup, both by their OpenSSL name. */
function negotiatedGroup(socket: TLSSocket): string {
  const info = socket.getEphemeralKeyInfo();
  return info && 'name' in info && typeof info.name === 'string' ? info.name : 'unknown';
}

/** The chain as the server sent it, leaf first; Node links the certificates by issuerCertificate, ending in a self-reference. */
function peerChainPem(socket: TLSSocket): string {
  const pems: string[] = [];
  const seen = new Set<string>();
  for (let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true); cert?.raw && !seen.has(cert.fingerprint256); cert = cert.issuerCertificate) {
    seen.add(cert.fingerprint256);
    pems.push(new X509Certificate(cert.raw).toString());
  }
  return pems.join('');
}

/** Every probe, one handshake at a time (a server sees no more than one connection from us at once). */
export async function checkTarget(target: CheckTarget, options: ProbeOptions): Promise<CheckReport> {
  const preference = await handshake(target, PREFERENCE_OFFER, options);
  const byGroup: ProbeResults['byGroup'] = {};
  let certificate = preference.certificate;
  for (const group of Object.values(PROBED_GROUPS).flat()) {
    const probe = await handshake(target, [group], options);
    byGroup[group] = probe.outcome;
    certificate ??= probe.certificate;
  }
  return buildReport({ host: target.host, port: target.port, address: target.address, ingress: target.ingress }, { byGroup, preference: preference.outcome }, certificate, options.ca !== undefined);
}

export interface IngressTargetOptions {
  controllerName: string;
  legacyClassName: string;
  namespace?: string;
  port: number;
  /** Overrides the Ingresses' status.loadBalancer addresses. */
  address?: string;
}

/** One target per TLS host of each Ingress the controller serves; an Ingress without an address yields an error entry. */
export async function ingressTargets(kc: KubeConfig, options: IngressTargetOptions): Promise<{ targets: CheckTarget[]; missingAddress: CheckTarget[] }> {
  const api = kc.makeApiClient(NetworkingV1Api);
  const [ingresses, classes] = await Promise.all([
    options.namespace ? api.listNamespacedIngress({ namespace: options.namespace }) : api.listIngressForAllNamespaces(),
    api.listIngressClass(),
  ]);
  const targets: CheckTarget[] = [];
  const missingAddress: CheckTarget[] = [];
  for (const ingress of servedIngresses(ingresses.items, classes.items, options.controllerName, options.legacyClassName)) {
    const address = options.address ?? loadBalancerAddress(ingress);
    for (const host of tlsHosts(ingress)) {
      const target = { host, port: options.port, address: address ?? '', ingress: `${ingress.metadata?.namespace}/${ingress.metadata?.name}` };
      (address ? targets : missingAddress).push(target);
    }
  }
  return { targets, missingAddress };
}

function tlsHosts(ingress: V1Ingress): string[] {
  return [...new Set((ingress.spec?.tls ?? []).flatMap((tls) => tls.hosts ?? []))].sort();
}

function loadBalancerAddress(ingress: V1Ingress): string | undefined {
  const first = ingress.status?.loadBalancer?.ingress?.[0];
  return first?.ip ?? first?.hostname;
}
