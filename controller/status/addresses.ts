// What the leader writes into Ingresses' status.loadBalancer, as ingress-nginx does: the addresses of the Service in
// front of the controllers (--publish-service) or fixed ones (--publish-status-address). Pure; writer.ts writes.
import { isIP } from 'node:net';
import type { V1Ingress, V1IngressLoadBalancerIngress, V1Service } from '@kubernetes/client-node';
import { keyOf } from '../sources/source.js';

/** Where the published addresses come from: a Service (namespace/name) or a fixed list. */
export type PublishFrom = { service: string } | { addresses: V1IngressLoadBalancerIngress[] };

/**
 * The publish flags (checked by config.ts). --publish-status-address wins over --publish-service, as in ingress-nginx
 * (whose chart sets --publish-service by default and users add the address). Neither: undefined, and status is left
 * alone.
 */
export function publishFrom(service: { namespace: string; name: string } | undefined, statusAddresses: readonly string[]): PublishFrom | undefined {
  if (statusAddresses.length > 0) return { addresses: sorted(statusAddresses.map((address) => (isIP(address) ? { ip: address } : { hostname: address }))) };
  return service && { service: `${service.namespace}/${service.name}` };
}

/** The addresses to publish now; an error (naming the Service) while it cannot say. */
export function publishedAddresses(from: PublishFrom, services: readonly V1Service[]): { addresses: V1IngressLoadBalancerIngress[] } | { error: string } {
  if ('addresses' in from) return { addresses: from.addresses };
  const service = services.find((s) => keyOf(s) === from.service);
  if (!service) return { error: `Service ${from.service} (--publish-service) does not exist` };
  const spec = service.spec ?? {};
  const externalIPs = (spec.externalIPs ?? []).map((ip) => ({ ip }));
  const clusterIP = spec.clusterIP && spec.clusterIP !== 'None' ? [{ ip: spec.clusterIP }] : [];
  switch (spec.type ?? 'ClusterIP') {
    case 'ExternalName':
      return { addresses: [{ hostname: spec.externalName }] };
    case 'LoadBalancer': {
      // Only ip and hostname: Services also carry ipMode, which an Ingress's status does not have.
      const balancer = (service.status?.loadBalancer?.ingress ?? []).map(({ ip, hostname }) => (ip ? { ip } : { hostname }));
      return { addresses: sorted([...balancer, ...externalIPs]) };
    }
    case 'NodePort':
      if (externalIPs.length > 0) return { addresses: sorted(externalIPs) };
  }
  if (clusterIP.length === 0) return { error: `Service ${from.service} (--publish-service) is headless and has no address to publish` };
  return { addresses: clusterIP };
}

export interface StatusUpdate {
  ingress: V1Ingress;
  loadBalancer: V1IngressLoadBalancerIngress[];
}

/**
 * The Ingresses whose status must change. Served ones (their current or last good version is in the configuration)
 * get the addresses. One we do not serve (another class now, or rejected with no good version) loses the addresses if
 * they are exactly ours, and is otherwise left to whoever wrote them.
 */
export function statusUpdates(ingresses: readonly V1Ingress[], served: ReadonlySet<string>, addresses: readonly V1IngressLoadBalancerIngress[]): StatusUpdate[] {
  const updates: StatusUpdate[] = [];
  for (const ingress of ingresses) {
    const current = ingress.status?.loadBalancer?.ingress ?? [];
    let wanted: V1IngressLoadBalancerIngress[];
    if (served.has(keyOf(ingress))) wanted = [...addresses];
    else if (current.length > 0 && same(current, addresses)) wanted = [];
    else continue;
    if (!same(current, wanted)) updates.push({ ingress, loadBalancer: wanted });
  }
  return updates;
}

/** IPs, then names; each once. */
function sorted(addresses: V1IngressLoadBalancerIngress[]): V1IngressLoadBalancerIngress[] {
  const unique = new Map(addresses.map((a) => [a.ip ? `0 ${a.ip}` : `1 ${a.hostname ?? ''}`, a]));
  return [...unique.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, a]) => a);
}

function same(a: readonly V1IngressLoadBalancerIngress[], b: readonly V1IngressLoadBalancerIngress[]): boolean {
  const text = (list: readonly V1IngressLoadBalancerIngress[]) => JSON.stringify(list.map((e) => [e.ip ?? '', e.hostname ?? '', e.ports ?? []]));
  return text(a) === text(b);
}
