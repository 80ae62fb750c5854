// What the leader writes into the status of GatewayClasses, Gateways, HTTPRoutes, GRPCRoutes, TLSRoutes and BackendTLSPolicies: the
// translation's conditions (model/gateway.ts), Programmed from the data plane, the published addresses, and
// lastTransitionTime kept while a condition's status stays. Pure; gateway-writer.ts writes. A route's parents and a
// policy's ancestors of other controllers are kept.
import { isIP } from 'node:net';
import type { V1IngressLoadBalancerIngress } from '@kubernetes/client-node';
import type { GatewayCondition, ParentReference } from '../model/gateway-api.js';
import type { GatewayStatusDraft, RouteKind } from '../model/gateway.js';
import type { ObjectRef } from '../model/types.js';
import type { GatewayStatus } from '../reconciler.js';

/** A condition as the API server holds it. */
export interface WrittenCondition extends GatewayCondition {
  lastTransitionTime: string;
}

interface RouteParentStatus {
  parentRef: ParentReference;
  controllerName: string;
  conditions: WrittenCondition[];
}

interface PolicyAncestorStatus {
  ancestorRef: ParentReference;
  controllerName: string;
  conditions: WrittenCondition[];
}

/** The parts of a cached object the status is compared with. */
export interface StatusHolder {
  metadata?: { namespace?: string; name?: string; resourceVersion?: string; generation?: number };
  status?: {
    conditions?: WrittenCondition[];
    addresses?: { type?: string; value: string }[];
    listeners?: { name: string; supportedKinds: { group?: string; kind: string }[]; attachedRoutes: number; conditions: WrittenCondition[] }[];
    parents?: RouteParentStatus[];
    ancestors?: PolicyAncestorStatus[];
  };
}

export type GatewayApiKind = 'GatewayClass' | 'Gateway' | RouteKind | 'BackendTLSPolicy';

export interface StatusPatch {
  kind: GatewayApiKind;
  namespace: string;
  name: string;
  /** The cached object's: the write is refused (409) if a newer one exists, whose own sync then follows. */
  resourceVersion: string;
  status: StatusHolder['status'];
}

export interface GatewayObjects {
  gatewayClasses: readonly StatusHolder[];
  gateways: readonly StatusHolder[];
  httpRoutes: readonly StatusHolder[];
  grpcRoutes: readonly StatusHolder[];
  tlsRoutes: readonly StatusHolder[];
  backendTlsPolicies: readonly StatusHolder[];
}

/**
 * The status writes that would make the objects say what `status` says; objects already saying it get none. A
 * condition keeps its lastTransitionTime while its status stays the same, as metav1.Condition wants.
 */
export function gatewayStatusPatches(status: GatewayStatus, objects: GatewayObjects, addresses: readonly V1IngressLoadBalancerIngress[], controllerName: string, now: Date): StatusPatch[] {
  const time = now.toISOString().replace(/\.\d+Z$/, 'Z');
  const patches: StatusPatch[] = [];
  const byKey = (list: readonly StatusHolder[]) => new Map(list.map((o) => [`${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`, o]));
  const push = (kind: GatewayApiKind, ref: ObjectRef, held: StatusHolder | undefined, wanted: NonNullable<StatusHolder['status']>) => {
    if (!held) return;
    const current = held.status ?? {};
    if (canonical({ ...current, ...wanted }) === canonical(current)) return;
    patches.push({ kind, namespace: ref.namespace, name: ref.name, resourceVersion: held.metadata?.resourceVersion ?? '', status: wanted });
  };

  const classes = byKey(objects.gatewayClasses);
  for (const gatewayClass of status.gatewayClasses) {
    const held = classes.get(`/${gatewayClass.ref.name}`);
    push('GatewayClass', gatewayClass.ref, held, { conditions: merge(held?.status?.conditions, gatewayClass.conditions, time) });
  }

  const gateways = byKey(objects.gateways);
  const published = addresses.map((a) => (a.ip ? { type: isIP(a.ip) ? 'IPAddress' : 'Hostname', value: a.ip } : { type: 'Hostname', value: a.hostname ?? '' }));
  for (const draft of status.gateways) {
    const held = gateways.get(`${draft.ref.namespace}/${draft.ref.name}`);
    push('Gateway', draft.ref, held, gatewayStatus(draft, held, published, status.programmed, time));
  }

  // Route parents and policy ancestors: one entry per parent per controller; ours replaced, a route or policy no
  // longer drafted (it names no Gateway of ours) losing ours.
  const entries = <F extends 'parents' | 'ancestors'>(kind: GatewayApiKind, list: readonly StatusHolder[], field: F, drafts: readonly { ref: ObjectRef; entries: { ref: ParentReference; conditions: GatewayCondition[] }[] }[]) => {
    const refField = field === 'parents' ? 'parentRef' : 'ancestorRef';
    const held = byKey(list);
    const drafted = new Set<string>();
    const heldEntries = (o: StatusHolder | undefined) => (o?.status?.[field] ?? []) as (RouteParentStatus & PolicyAncestorStatus)[];
    for (const draft of drafts) {
      const key = `${draft.ref.namespace}/${draft.ref.name}`;
      drafted.add(key);
      const before = heldEntries(held.get(key));
      const ours = draft.entries.map((e) => {
        const was = before.find((h) => h.controllerName === controllerName && sameParent(h[refField], e.ref, draft.ref.namespace));
        return { [refField]: e.ref, controllerName, conditions: merge(was?.conditions, e.conditions, time) };
      });
      push(kind, draft.ref, held.get(key), { [field]: [...before.filter((h) => h.controllerName !== controllerName), ...ours] });
    }
    for (const [key, o] of held) {
      if (drafted.has(key) || !heldEntries(o).some((h) => h.controllerName === controllerName)) continue;
      const [namespace = '', name = ''] = key.split('/');
      push(kind, { kind, namespace, name }, o, { [field]: heldEntries(o).filter((h) => h.controllerName !== controllerName) });
    }
  };
  for (const [kind, list] of [['HTTPRoute', objects.httpRoutes], ['GRPCRoute', objects.grpcRoutes], ['TLSRoute', objects.tlsRoutes]] as const) {
    entries(kind, list, 'parents', status.routes.filter((r) => r.ref.kind === kind).map((r) => ({ ref: r.ref, entries: r.parents.map((p) => ({ ref: p.parentRef, conditions: p.conditions })) })));
  }
  entries('BackendTLSPolicy', objects.backendTlsPolicies, 'ancestors', status.policies.map((p) => ({ ref: p.ref, entries: p.ancestors.map((a) => ({ ref: a.ancestorRef, conditions: a.conditions })) })));
  return patches;
}

function gatewayStatus(draft: GatewayStatusDraft, held: StatusHolder | undefined, addresses: { type: string; value: string }[], programmed: boolean, time: string): NonNullable<StatusHolder['status']> {
  const generation = held?.metadata?.generation;
  const accepted = draft.conditions.find((c) => c.type === 'Accepted')?.status === 'True';
  const gatewayProgrammed: GatewayCondition = !accepted
    ? { type: 'Programmed', status: 'False', reason: 'Invalid', message: 'the Gateway is not accepted', observedGeneration: generation }
    : programmed
      ? { type: 'Programmed', status: 'True', reason: 'Programmed', message: 'the data plane serves this Gateway', observedGeneration: generation }
      : { type: 'Programmed', status: 'False', reason: 'Pending', message: 'the data plane has not taken the configuration yet; the previous one keeps serving', observedGeneration: generation };
  const listeners = draft.listeners.map((listener) => {
    const heldListener = held?.status?.listeners?.find((l) => l.name === listener.name);
    const usable = listener.conditions.find((c) => c.type === 'Accepted')?.status === 'True' && listener.conditions.find((c) => c.type === 'Conflicted')?.status !== 'True';
    const listenerProgrammed: GatewayCondition = usable && gatewayProgrammed.status === 'True'
      ? { type: 'Programmed', status: 'True', reason: 'Programmed', message: 'the data plane serves this listener', observedGeneration: generation }
      : { type: 'Programmed', status: 'False', reason: usable ? gatewayProgrammed.reason : 'Invalid', message: usable ? gatewayProgrammed.message : 'the listener is not accepted or conflicts with another', observedGeneration: generation };
    return { name: listener.name, supportedKinds: listener.supportedKinds, attachedRoutes: listener.attachedRoutes, conditions: merge(heldListener?.conditions, [...listener.conditions, listenerProgrammed], time) };
  });
  return { addresses, conditions: merge(held?.status?.conditions, [...draft.conditions, gatewayProgrammed], time), listeners };
}

/** The wanted conditions, each with its held lastTransitionTime while its status is unchanged, else `time`. */
function merge(held: readonly WrittenCondition[] | undefined, wanted: readonly GatewayCondition[], time: string): WrittenCondition[] {
  return wanted.map((c) => {
    const before = held?.find((h) => h.type === c.type);
    const lastTransitionTime = before && before.status === c.status ? before.lastTransitionTime : time;
    return { type: c.type, status: c.status, reason: c.reason, message: c.message.slice(0, 32768), ...(c.observedGeneration === undefined ? {} : { observedGeneration: c.observedGeneration }), lastTransitionTime };
  });
}

/** Two parentRefs naming the same parent (the spec's defaults filled in). */
function sameParent(a: ParentReference, b: ParentReference, routeNamespace: string): boolean {
  const norm = (p: ParentReference) => [p.group ?? 'gateway.networking.k8s.io', p.kind ?? 'Gateway', p.namespace ?? routeNamespace, p.name, p.sectionName ?? '', p.port ?? ''].join('|');
  return norm(a) === norm(b);
}

/** JSON with object keys sorted: the API server gives a custom object's fields back in its own order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v));
}
