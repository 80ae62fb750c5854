// What the ingress source keeps of the objects it lists: what its readers read, and nothing else.
import type { V1EndpointSlice, V1Secret, V1Service } from '@kubernetes/client-node';
import { readyEndpoints, endpointSliceService } from '../model/build.js';
import { checkTlsSecret } from '../model/certificates.js';
import { publishedAddresses } from '../status/addresses.js';
import { tlsSecret } from '../model/testing.js';
import { stripperOf } from './source.js';

const LAST_APPLIED = { 'kubectl.kubernetes.io/last-applied-configuration': '{"big":"copy"}', team: 'shop' };

describe('stripperOf', () => {
  it('keeps of an EndpointSlice its Service label, ports and each endpoint\'s addresses and readiness', () => {
    const slice: V1EndpointSlice = {
      addressType: 'IPv4',
      metadata: { name: 'web-x7', namespace: 'shop', resourceVersion: '9', labels: { 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'x' }, annotations: LAST_APPLIED, managedFields: [{ manager: 'kcm' }] },
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: [
        { addresses: ['10.0.0.1'], conditions: { ready: true, serving: true }, nodeName: 'n1', zone: 'z', targetRef: { kind: 'Pod', name: 'web-1' } },
        { addresses: ['10.0.0.2'], conditions: { ready: false, terminating: true }, nodeName: 'n2' },
        { addresses: ['10.0.0.3'] },
      ],
    };
    const before = { endpoints: readyEndpoints([slice], 'http'), service: endpointSliceService(slice) };
    stripperOf('endpointSlices')(slice);
    expect(slice).toEqual({
      addressType: 'IPv4',
      metadata: { name: 'web-x7', namespace: 'shop', resourceVersion: '9', labels: { 'kubernetes.io/service-name': 'web' } },
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true } }, { addresses: ['10.0.0.2'], conditions: { ready: false } }, { addresses: ['10.0.0.3'], conditions: {} }],
    });
    expect({ endpoints: readyEndpoints([slice], 'http'), service: endpointSliceService(slice) }).toEqual(before);
  });

  it('keeps of a Secret only the fields a pair, a CA bundle or the ticket Secret has', () => {
    const secret: V1Secret = { ...tlsSecret('web', 'ecdsa'), metadata: { name: 'web', namespace: 'default', annotations: LAST_APPLIED } };
    secret.data = { ...secret.data, 'ca.crt': 'Q0E=', release: 'H4sIAAAA'.repeat(1000), 'tickets.key': 'a2V5' };
    const now = new Date('2026-11-28T00:00:00Z');
    const checked = checkTlsSecret(secret, now);
    stripperOf('secrets')(secret);
    expect(Object.keys(secret.data!).sort()).toEqual(['ca.crt', 'tickets.key', 'tls.crt', 'tls.key']);
    expect(secret.metadata!.annotations).toEqual({ team: 'shop' });
    expect(checkTlsSecret(secret, now)).toEqual(checked);
  });

  it('keeps of a Service its ports and what --publish-service publishes', () => {
    const service: V1Service = {
      metadata: { name: 'front', namespace: 'qubesec' },
      spec: { type: 'LoadBalancer', clusterIP: '10.96.0.9', clusterIPs: ['10.96.0.9'], selector: { app: 'front' }, externalIPs: ['198.18.0.9'], ipFamilies: ['IPv4'], ports: [{ name: 'https', port: 443, targetPort: 8443, protocol: 'TCP' }] },
      status: { loadBalancer: { ingress: [{ ip: '198.18.0.1' }] }, conditions: [] },
    };
    const published = publishedAddresses({ service: 'qubesec/front' }, [service]);
    stripperOf('services')(service);
    expect(service.spec).toEqual({ type: 'LoadBalancer', clusterIP: '10.96.0.9', externalIPs: ['198.18.0.9'], ports: [{ name: 'https', port: 443 }] });
    expect(publishedAddresses({ service: 'qubesec/front' }, [service])).toEqual(published);
  });
});
