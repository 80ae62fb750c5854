import type { KubernetesObject } from '@kubernetes/client-node';
import { checkMetadata } from './files.js';

const object = (kind: string, name: string | undefined, namespace?: string): KubernetesObject => ({ apiVersion: 'v1', kind, metadata: { name, namespace } });

describe('checkMetadata', () => {
  it.each([
    ['Ingress', 'web.v2', 'team-a'],
    ['Secret', '0-tls', '1team'],
    ['IngressClass', 'qubesec', undefined],
    ['Service', 'web', undefined],
  ])('accepts the %s %j in %j, as the API server does', (kind, name, namespace) => {
    expect(checkMetadata(object(kind, name, namespace))).toBeUndefined();
  });

  it.each([
    ['Ingress', undefined, 'default', 'metadata.name is required'],
    ['Ingress', 'web app', 'default', 'metadata.name: "web app" is not a valid object name (RFC 1123 subdomain)'],
    ['Ingress', 'web;', 'default', 'metadata.name: "web;" is not a valid object name (RFC 1123 subdomain)'],
    ['Secret', 'a'.repeat(254), 'default', `metadata.name: "${'a'.repeat(77)}..." is not a valid object name (RFC 1123 subdomain)`],
    ['Service', 'web.v2', 'default', 'metadata.name: "web.v2" is not a valid Service name (RFC 1035 label)'],
    ['Service', '1web', 'default', 'metadata.name: "1web" is not a valid Service name (RFC 1035 label)'],
    ['EndpointSlice', 'web-abc', 'team a', 'metadata.namespace: "team a" is not a valid namespace name (RFC 1123 label)'],
    ['ConfigMap', 'defaults', 'team.a', 'metadata.namespace: "team.a" is not a valid namespace name (RFC 1123 label)'],
  ])('refuses the %s %j in %j, as the API server does', (kind, name, namespace, message) => {
    expect(checkMetadata(object(kind, name, namespace))).toBe(message);
  });
});
