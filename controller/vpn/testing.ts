// Test fixtures for the VPN model: an ECDSA P-384 CA and certificates issued by QubeSec's PKI, Secrets, resources.
import type { V1Secret } from '@kubernetes/client-node';
import { generateKeyPair } from '../pki/algorithms.js';
import { issueCertificate, privateKeyPem } from '../pki/x509.js';
import type { SecretLookup, VpnGatewayResource, VpnGatewaySpec, VpnPeerResource, VpnPeerSpec } from './model.js';

export interface TestCa {
  certificatePem: string;
  keyPem: string;
  issue(subject: string, algorithm?: 'ecdsa-p384' | 'ml-dsa-65', days?: number): Promise<{ certificatePem: string; keyPem: string }>;
}

export async function testCa(subject = 'CN=QubeSec VPN Test CA'): Promise<TestCa> {
  const keys = generateKeyPair('ecdsa-p384');
  const notAfter = new Date(Date.now() + 30 * 86400_000);
  const certificatePem = await issueCertificate({ subject, profile: 'ca', notAfter, publicKey: keys.publicKey }, { selfKey: keys.privateKey });
  return {
    certificatePem,
    keyPem: privateKeyPem(keys.privateKey),
    async issue(leafSubject, algorithm = 'ecdsa-p384', days = 10) {
      const leaf = generateKeyPair(algorithm);
      const pem = await issueCertificate(
        { subject: leafSubject, profile: 'server-client', notAfter: new Date(Date.now() + days * 86400_000), publicKey: leaf.publicKey },
        { certificatePem, privateKey: keys.privateKey },
      );
      return { certificatePem: pem, keyPem: privateKeyPem(leaf.privateKey) };
    },
  };
}

const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64');

export function tlsSecret(name: string, cert: { certificatePem: string; keyPem: string }, caPem?: string, namespace = 'vpn'): V1Secret {
  return {
    apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name, namespace },
    data: { 'tls.crt': b64(cert.certificatePem), 'tls.key': b64(cert.keyPem), ...(caPem ? { 'ca.crt': b64(caPem) } : {}) },
  };
}

export function opaqueSecret(name: string, data: Record<string, string | Buffer>, namespace = 'vpn'): V1Secret {
  return { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name, namespace }, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])) };
}

export function lookup(secrets: V1Secret[]): SecretLookup {
  return (namespace, name) => secrets.find((s) => s.metadata?.namespace === namespace && s.metadata?.name === name);
}

export function gatewayResource(name: string, spec: VpnGatewaySpec, namespace = 'vpn'): VpnGatewayResource {
  return { apiVersion: 'qubesec.io/v1alpha1', kind: 'VpnGateway', metadata: { name, namespace, uid: `uid-${name}` }, spec };
}

export function peerResource(name: string, spec: VpnPeerSpec, namespace = 'vpn', created = '2026-01-01T00:00:00Z'): VpnPeerResource {
  return { apiVersion: 'qubesec.io/v1alpha1', kind: 'VpnPeer', metadata: { name, namespace, uid: `uid-${name}`, creationTimestamp: new Date(created) }, spec };
}
