// Kubernetes objects the e2e tests create, as plain data.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1EndpointSlice, V1Ingress, V1IngressClass, V1Secret, V1Service } from '@kubernetes/client-node';
import { PROJECT_ROOT } from '../../controller/project.js';

export const QUBESEC_CLASS: V1IngressClass = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'IngressClass',
  metadata: { name: 'qubesec' },
  spec: { controller: 'qubesec.io/ingress-controller' },
};

export function tlsSecret(name: string, fixture: 'mldsa65' | 'ecdsa' | 'expired' | 'mldsa44-other', namespace = 'default', keyFixture = fixture): V1Secret {
  const read = (file: string) => Buffer.from(readFileSync(join(PROJECT_ROOT, 'controller', 'testdata', file))).toString('base64');
  return { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name, namespace }, data: { 'tls.crt': read(`${fixture}.crt`), 'tls.key': read(`${keyFixture}.key`) } };
}

/** An Opaque Secret with CA certificates in ca.crt, as auth-tls-secret and proxy-ssl-secret read it. */
export function caSecret(name: string, caPem: string, namespace = 'default'): V1Secret {
  return { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name, namespace }, data: { 'ca.crt': Buffer.from(caPem).toString('base64') } };
}

/** A Service plus the EndpointSlice that points it at a local backend port (what the EndpointSlice controller would write). */
export function serviceFor(name: string, backendPort: number, address: string, namespace = 'default'): { service: V1Service; slice: V1EndpointSlice } {
  return {
    service: { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { ports: [{ name: 'http', port: 80, targetPort: backendPort as never }] } },
    slice: {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-local`, namespace, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: backendPort }],
      endpoints: [{ addresses: [address], conditions: { ready: true } }],
    },
  };
}

export function pqIngress(name: string, host: string, service: string, options: { secrets?: string[]; annotations?: Record<string, string>; path?: string; pathType?: 'Prefix' | 'Exact' | 'ImplementationSpecific'; className?: string; namespace?: string } = {}): V1Ingress {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: options.namespace ?? 'default', annotations: options.annotations },
    spec: {
      ingressClassName: options.className ?? 'qubesec',
      tls: (options.secrets ?? []).map((secretName) => ({ hosts: [host], secretName })),
      rules: [{ host, http: { paths: [{ path: options.path ?? '/', pathType: options.pathType ?? 'Prefix', backend: { service: { name: service, port: { name: 'http' } } } }] } }],
    },
  };
}
