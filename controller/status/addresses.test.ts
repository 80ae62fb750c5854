import type { V1Ingress, V1IngressLoadBalancerIngress, V1LoadBalancerIngress, V1Service } from '@kubernetes/client-node';
import { ingress } from '../model/testing.js';
import { publishFrom, publishedAddresses, statusUpdates } from './addresses.js';

const svc = (spec: V1Service['spec'], balancer: V1LoadBalancerIngress[] = []): V1Service => ({
  metadata: { namespace: 'qubesec', name: 'edge' },
  spec,
  status: { loadBalancer: { ingress: balancer } },
});
const withStatus = (name: string, addresses?: V1IngressLoadBalancerIngress[]): V1Ingress => ({ ...ingress(name, {}), status: addresses ? { loadBalancer: { ingress: addresses } } : {} });

describe('publishFrom', () => {
  it('reads IPs as ip and names as hostname, sorted and without repeats', () => {
    expect(publishFrom(undefined, ['lb.example.com', '192.0.2.7', '2001:db8::1', '192.0.2.7'])).toEqual({ addresses: [{ ip: '192.0.2.7' }, { ip: '2001:db8::1' }, { hostname: 'lb.example.com' }] });
  });

  it('prefers --publish-status-address over --publish-service, as ingress-nginx does', () => {
    const edge = { namespace: 'qubesec', name: 'edge' };
    expect(publishFrom(edge, ['192.0.2.7'])).toEqual({ addresses: [{ ip: '192.0.2.7' }] });
    expect(publishFrom(edge, [])).toEqual({ service: 'qubesec/edge' });
    expect(publishFrom(undefined, [])).toBeUndefined();
  });
});

describe('publishedAddresses', () => {
  const from = { service: 'qubesec/edge' };
  it('takes a LoadBalancer Service\'s balancer addresses (ip or hostname only) and its external IPs', () => {
    const service = svc({ type: 'LoadBalancer', clusterIP: '10.96.0.9', externalIPs: ['198.51.100.2', '198.51.100.1'] }, [{ ip: '198.51.100.1', ipMode: 'VIP', ports: [{ port: 443, protocol: 'TCP' }] }, { hostname: 'elb.example.com' }]);
    expect(publishedAddresses(from, [service])).toEqual({ addresses: [{ ip: '198.51.100.1' }, { ip: '198.51.100.2' }, { hostname: 'elb.example.com' }] });
  });

  it('publishes nothing for a balancer still pending, rather than an in-cluster address', () => {
    expect(publishedAddresses(from, [svc({ type: 'LoadBalancer', clusterIP: '10.96.0.9' })])).toEqual({ addresses: [] });
  });

  it('takes a NodePort Service\'s external IPs, else its cluster IP; a ClusterIP Service\'s cluster IP; an ExternalName', () => {
    expect(publishedAddresses(from, [svc({ type: 'NodePort', clusterIP: '10.96.0.9', externalIPs: ['198.51.100.3'] })])).toEqual({ addresses: [{ ip: '198.51.100.3' }] });
    expect(publishedAddresses(from, [svc({ type: 'NodePort', clusterIP: '10.96.0.9' })])).toEqual({ addresses: [{ ip: '10.96.0.9' }] });
    expect(publishedAddresses(from, [svc({ clusterIP: '10.96.0.9' })])).toEqual({ addresses: [{ ip: '10.96.0.9' }] });
    expect(publishedAddresses(from, [svc({ type: 'ExternalName', externalName: 'edge.example.net' })])).toEqual({ addresses: [{ hostname: 'edge.example.net' }] });
  });

  it('names the Service when it is missing or headless', () => {
    expect(publishedAddresses(from, [])).toEqual({ error: 'Service qubesec/edge (--publish-service) does not exist' });
    expect(publishedAddresses(from, [svc({ clusterIP: 'None' })])).toEqual({ error: 'Service qubesec/edge (--publish-service) is headless and has no address to publish' });
  });
});

describe('statusUpdates', () => {
  const ours = [{ ip: '192.0.2.7' }];
  const names = (updates: ReturnType<typeof statusUpdates>) => updates.map((u) => [u.ingress.metadata!.name, u.loadBalancer]);

  it('publishes to served Ingresses whose status differs, and only those', () => {
    const ingresses = [withStatus('new'), withStatus('current', ours), withStatus('stale', [{ ip: '192.0.2.99' }]), withStatus('with-ports', [{ ip: '192.0.2.7', ports: [{ port: 443, protocol: 'TCP' }] }])];
    const served = new Set(['default/new', 'default/current', 'default/stale', 'default/with-ports']);
    expect(names(statusUpdates(ingresses, served, ours))).toEqual([['new', ours], ['stale', ours], ['with-ports', ours]]);
  });

  it('clears our addresses from Ingresses no longer served, and leaves other controllers\' addresses alone', () => {
    const ingresses = [withStatus('moved-class', ours), withStatus('other-controller', [{ ip: '203.0.113.5' }]), withStatus('never-ours')];
    expect(names(statusUpdates(ingresses, new Set(), ours))).toEqual([['moved-class', []]]);
  });

  it('clears served Ingresses when there is nothing to publish (a balancer not yet assigned)', () => {
    expect(names(statusUpdates([withStatus('a', ours), withStatus('b')], new Set(['default/a', 'default/b']), []))).toEqual([['a', []]]);
  });
});
