// The canonical form of a Kubernetes object, and the comparison of a signed form with the object as found.
//
// The rule (docs/signatures.md, "The canonical form"): the signer signs the object less what is never the author's
// (server-managed metadata, status, signature annotations, kubectl's last-applied copy) and less the ignored fields;
// empty maps, empty lists and nulls count as absent (the API server drops most of them); a Secret's stringData counts
// as the data the API server makes of it; keys are sorted (JSON, RFC
// 8785 order for the ASCII keys Kubernetes uses). A verifier accepts the object when every signed field is present
// with the same value, and every field it has beyond them is a known default the API server or a built-in controller
// adds (DEFAULTS below), or an ignored field. Anything else is named: "spec.replicas differs (signed 3, found 30)".
import type { KubernetesObject } from '@kubernetes/client-node';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };
export type FieldPath = (string | number)[];

export const SIGNATURE_ANNOTATION_PREFIX = 'signatures.qubesec.io/';
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
/** Metadata the API server or controllers write, never the author: not signed. */
const SERVER_MANAGED_METADATA = ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'selfLink', 'ownerReferences', 'finalizers'];

export interface CanonicalOptions {
  /**
   * Fields neither signed nor compared, for mutations other webhooks make: dotted paths with [n] for a list item,
   * ["key"] for a key with dots or slashes, and * for any key or item, e.g. `spec.template.spec.containers[*].resources`
   * or `metadata.annotations["sidecar.istio.io/status"]`. A path covers everything under it.
   */
  ignoredFields?: string[];
}

export class FieldPathError extends Error {}

/** "a.b[0][\"x.y/z\"].*" as segments; '*' matches any key or item. */
export function parseFieldPath(text: string): string[] {
  const segments: string[] = [];
  const token = /\.?([A-Za-z0-9_$-]+|\*)|\[(\d+|\*)\]|\["((?:[^"\\]|\\.)*)"\]/y;
  let at = 0;
  while (at < text.length) {
    token.lastIndex = at;
    const m = token.exec(text);
    if (!m || (at === 0 && text.startsWith('.'))) throw new FieldPathError(`field path ${JSON.stringify(text)}: cannot read it at character ${at + 1} (write a.b[0].c, ["key.with/dots"], * for any)`);
    segments.push(m[1] ?? m[2] ?? JSON.parse(`"${m[3]}"`));
    at = token.lastIndex;
  }
  if (segments.length === 0) throw new FieldPathError('field path: empty');
  return segments;
}

export function formatPath(path: FieldPath): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : /^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(s) ? `${i === 0 ? '' : '.'}${s}` : `[${JSON.stringify(s)}]`)).join('');
}

function matchesPattern(pattern: string[], path: FieldPath): boolean {
  return pattern.length === path.length && pattern.every((s, i) => s === '*' || s === String(path[i]));
}

/** The object as it is signed and compared: a plain JSON value, stripped and normalized (see the rule above). */
export function signedView(obj: KubernetesObject, options: CanonicalOptions = {}): JsonObject {
  const ignored = (options.ignoredFields ?? []).map(parseFieldPath);
  const copy = JSON.parse(JSON.stringify(obj)) as JsonObject;
  delete copy.status;
  const metadata = copy.metadata as JsonObject | undefined;
  if (metadata && typeof metadata === 'object') {
    for (const field of SERVER_MANAGED_METADATA) delete metadata[field];
    const annotations = metadata.annotations as JsonObject | undefined;
    if (annotations && typeof annotations === 'object') {
      for (const key of Object.keys(annotations)) if (key.startsWith(SIGNATURE_ANNOTATION_PREFIX) || key === LAST_APPLIED) delete annotations[key];
    }
  }
  secretStringData(copy);
  return (normalize(copy, [], ignored) ?? {}) as JsonObject;
}

/** The API server stores a Secret's stringData as base64 in data (stringData wins over data for the same key). */
function secretStringData(obj: JsonObject): void {
  if (kindKey(obj) !== '/Secret' || !isObject(obj.stringData)) return;
  const data: JsonObject = isObject(obj.data) ? obj.data : {};
  for (const [key, value] of Object.entries(obj.stringData)) data[key] = Buffer.from(String(value), 'utf8').toString('base64');
  obj.data = data;
  delete obj.stringData;
}

/** Drops ignored fields, nulls, empty maps and empty lists, bottom up. */
function normalize(value: Json, path: FieldPath, ignored: string[][]): Json | undefined {
  if (ignored.some((p) => matchesPattern(p, path))) return undefined;
  if (value === null) return undefined;
  if (Array.isArray(value)) {
    const items = value.map((v, i) => normalize(v, [...path, i], ignored)).filter((v) => v !== undefined);
    return items.length ? items : undefined;
  }
  if (typeof value === 'object') {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) {
      const n = normalize(v, [...path, k], ignored);
      if (n !== undefined) out[k] = n;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return value;
}

/** JSON with keys sorted at every level and no white space. */
export function canonicalJson(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k]!)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The bytes a signer signs for `obj` (pure). */
export function canonicalForm(obj: KubernetesObject, options: CanonicalOptions = {}): Uint8Array {
  return Buffer.from(canonicalJson(signedView(obj, options)), 'utf8');
}

// ---- defaults: what the API server and built-in controllers add to what the author wrote ----

interface Default {
  /** "group/Kind" ("/Pod" for the core group); all kinds when absent. */
  kinds?: string[];
  path: string;
  /** The defaulted value (a field under `path` may be added alone, with its value in here). */
  value?: Json;
  /** A value the server picks (an allocated IP, a generated selector): any is accepted. */
  assigned?: true;
  /** A default that depends on its siblings. */
  matches?: (value: Json, parent: JsonObject) => boolean;
  /** List items the server adds to a list the author wrote (a ServiceAccount token volume). */
  extraItems?: (item: Json) => boolean;
}

const WORKLOADS = { '/Pod': 'spec', '/ReplicationController': 'spec.template.spec', '/PodTemplate': 'template.spec', 'apps/Deployment': 'spec.template.spec', 'apps/ReplicaSet': 'spec.template.spec', 'apps/StatefulSet': 'spec.template.spec', 'apps/DaemonSet': 'spec.template.spec', 'batch/Job': 'spec.template.spec', 'batch/CronJob': 'spec.jobTemplate.spec.template.spec' } as const;
const PROBE = { timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3, httpGet: { scheme: 'HTTP' } };
const isLatest = (image: Json) => typeof image === 'string' && !image.includes('@') && (!/:[^/]+$/.test(image) || image.endsWith(':latest'));
const JOB_SPEC = { backoffLimit: 6, completions: 1, parallelism: 1, completionMode: 'NonIndexed', suspend: false, podReplacementPolicy: 'TerminatingOrFailed', manualSelector: false };
const JOB_LABELS = ['batch.kubernetes.io/controller-uid', 'batch.kubernetes.io/job-name', 'controller-uid', 'job-name'];

function podDefaults(): Default[] {
  const container = (list: string): Default[] => [
    { path: `${list}[*]`, value: { terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File' } },
    { path: `${list}[*].imagePullPolicy`, matches: (v, c) => v === (isLatest(c.image ?? null) ? 'Always' : 'IfNotPresent') },
    { path: `${list}[*].ports[*].protocol`, value: 'TCP' },
    { path: `${list}[*].env[*].valueFrom.fieldRef.apiVersion`, value: 'v1' },
    ...['livenessProbe', 'readinessProbe', 'startupProbe'].map((probe) => ({ path: `${list}[*].${probe}`, value: PROBE })),
    { kinds: ['/Pod'], path: `${list}[*].volumeMounts`, extraItems: (m: Json) => isTokenVolume(m) },
  ];
  return [
    { path: '$pod', value: { restartPolicy: 'Always', terminationGracePeriodSeconds: 30, dnsPolicy: 'ClusterFirst', schedulerName: 'default-scheduler' } },
    { path: '$pod.serviceAccount', matches: (v, pod) => v === pod.serviceAccountName },
    ...['configMap', 'secret', 'projected', 'downwardAPI'].map((source) => ({ path: `$pod.volumes[*].${source}.defaultMode`, value: 420 })),
    { path: '$pod.volumes[*].hostPath.type', value: '' },
    { path: '$pod.volumes[*].downwardAPI.items[*].fieldRef.apiVersion', value: 'v1' },
    ...container('$pod.containers'),
    ...container('$pod.initContainers'),
    // What admission plugins add to a bare Pod (ServiceAccount, Priority, DefaultTolerationSeconds) and the scheduler.
    { kinds: ['/Pod'], path: '$pod', value: { serviceAccountName: 'default', serviceAccount: 'default', priority: 0, preemptionPolicy: 'PreemptLowerPriority', enableServiceLinks: true } },
    { kinds: ['/Pod'], path: '$pod.nodeName', assigned: true },
    { kinds: ['/Pod'], path: '$pod.volumes', extraItems: isTokenVolume },
    { kinds: ['/Pod'], path: '$pod.tolerations', extraItems: (t) => typeof t === 'object' && t !== null && !Array.isArray(t) && ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable'].includes(t.key as string) && t.effect === 'NoExecute' && t.tolerationSeconds === 300 },
  ];
}

function isTokenVolume(item: Json): boolean {
  return typeof item === 'object' && item !== null && !Array.isArray(item) && typeof item.name === 'string' && item.name.startsWith('kube-api-access-');
}

const DEFAULTS: Default[] = [
  { path: 'metadata.namespace', assigned: true },
  ...podDefaults(),
  { kinds: ['apps/Deployment'], path: 'spec', value: { replicas: 1, revisionHistoryLimit: 10, progressDeadlineSeconds: 600, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } } } },
  { kinds: ['apps/Deployment'], path: 'metadata.annotations["deployment.kubernetes.io/revision"]', assigned: true },
  { kinds: ['apps/ReplicaSet', '/ReplicationController'], path: 'spec.replicas', value: 1 },
  { kinds: ['apps/StatefulSet'], path: 'spec', value: { replicas: 1, revisionHistoryLimit: 10, podManagementPolicy: 'OrderedReady', updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } }, persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' } } },
  { kinds: ['apps/StatefulSet'], path: 'spec.volumeClaimTemplates[*]', value: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', spec: { volumeMode: 'Filesystem' } } },
  { kinds: ['apps/StatefulSet'], path: 'spec.volumeClaimTemplates[*].status', assigned: true },
  { kinds: ['apps/DaemonSet'], path: 'spec', value: { revisionHistoryLimit: 10, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } } } },
  { kinds: ['apps/DaemonSet'], path: 'metadata.annotations["deprecated.daemonset.template.generation"]', assigned: true },
  { kinds: ['batch/Job'], path: 'spec', value: JOB_SPEC },
  { kinds: ['batch/Job'], path: 'spec.selector', assigned: true },
  ...JOB_LABELS.flatMap((label) => ['metadata', 'spec.template.metadata'].map((at) => ({ kinds: ['batch/Job'], path: `${at}.labels[${JSON.stringify(label)}]`, assigned: true as const }))),
  { kinds: ['batch/CronJob'], path: 'spec', value: { concurrencyPolicy: 'Allow', suspend: false, successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 1, jobTemplate: { spec: JOB_SPEC } } },
  { kinds: ['/Service'], path: 'spec', value: { type: 'ClusterIP', sessionAffinity: 'None', internalTrafficPolicy: 'Cluster' } },
  ...['clusterIP', 'clusterIPs', 'ipFamilies', 'ipFamilyPolicy', 'ports[*].nodePort', 'healthCheckNodePort'].map((field) => ({ kinds: ['/Service'], path: `spec.${field}`, assigned: true as const })),
  { kinds: ['/Service'], path: 'spec.ports[*].protocol', value: 'TCP' },
  { kinds: ['/Service'], path: 'spec.ports[*].targetPort', matches: (v, port) => v === port.port },
  { kinds: ['/Service'], path: 'spec.externalTrafficPolicy', matches: (v, spec) => v === 'Cluster' && (spec.type === 'NodePort' || spec.type === 'LoadBalancer') },
  { kinds: ['/Service'], path: 'spec.allocateLoadBalancerNodePorts', matches: (v, spec) => v === true && spec.type === 'LoadBalancer' },
  { kinds: ['/Secret'], path: 'type', value: 'Opaque' },
  { kinds: ['/Namespace'], path: 'metadata.labels["kubernetes.io/metadata.name"]', assigned: true },
  { kinds: ['/Namespace'], path: 'spec.finalizers', value: ['kubernetes'] },
  { kinds: ['/PersistentVolumeClaim'], path: 'spec.volumeMode', value: 'Filesystem' },
  { kinds: ['/PersistentVolumeClaim'], path: 'spec.storageClassName', assigned: true },
  { kinds: ['/PersistentVolumeClaim'], path: 'spec.volumeName', assigned: true },
];

export function kindKey(obj: { apiVersion?: unknown; kind?: unknown }): string {
  const apiVersion = typeof obj.apiVersion === 'string' ? obj.apiVersion : '';
  return `${apiVersion.includes('/') ? apiVersion.split('/')[0] : ''}/${typeof obj.kind === 'string' ? obj.kind : ''}`;
}

interface ExpandedDefault extends Default {
  pattern: string[];
}

const expandedCache = new Map<string, ExpandedDefault[]>();

function defaultsFor(kind: string): ExpandedDefault[] {
  let list = expandedCache.get(kind);
  if (!list) {
    const podSpec = (WORKLOADS as Record<string, string>)[kind];
    list = DEFAULTS.filter((d) => !d.kinds || d.kinds.includes(kind))
      .filter((d) => !d.path.startsWith('$pod') || podSpec !== undefined)
      .map((d) => ({ ...d, pattern: parseFieldPath(d.path.startsWith('$pod') ? `${podSpec}${d.path.slice(4)}` : d.path) }));
    expandedCache.set(kind, list);
  }
  return list;
}

// ---- comparison ----

export interface FieldDifference {
  path: string;
  change: 'differs' | 'removed' | 'added';
  signed?: Json;
  found?: Json;
}

export function describeDifference(d: FieldDifference): string {
  const show = (v: Json | undefined) => {
    const text = JSON.stringify(v);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  };
  switch (d.change) {
    case 'differs':
      return `${d.path} differs (signed ${show(d.signed)}, found ${show(d.found)})`;
    case 'removed':
      return `${d.path} was removed (signed ${show(d.signed)})`;
    case 'added':
      return `${d.path} was added (${show(d.found)}; not signed, not a known default nor an ignored field)`;
  }
}

/** How the object as found (its signedView) departs from what was signed, beyond the known defaults. */
export function compareWithSigned(signed: Json, found: Json, kind: string): FieldDifference[] {
  const defaults = defaultsFor(kind);
  const differences: FieldDifference[] = [];
  walk(signed, found, []);
  return differences;

  function walk(s: Json, f: Json, path: FieldPath): void {
    if (isObject(s) && isObject(f)) {
      for (const key of Object.keys(s)) {
        if (!(key in f)) differences.push({ path: formatPath([...path, key]), change: 'removed', signed: s[key]! });
        else walk(s[key]!, f[key]!, [...path, key]);
      }
      for (const key of Object.keys(f)) if (!(key in s)) added([...path, key], f[key]!, f);
      return;
    }
    if (Array.isArray(s) && Array.isArray(f)) {
      const extra = defaults.find((d) => d.extraItems && matchesPattern(d.pattern, path));
      const items = extra ? f.filter((item) => !extra.extraItems!(item) || s.some((x) => canonicalJson(x) === canonicalJson(item))) : f;
      if (items.length !== s.length) {
        differences.push({ path: formatPath(path), change: 'differs', signed: `${s.length} items`, found: `${items.length} items` });
        return;
      }
      s.forEach((item, i) => walk(item, items[i]!, [...path, i]));
      return;
    }
    if (s !== f && !sameQuantity(path, s, f)) differences.push({ path: formatPath(path), change: 'differs', signed: s, found: f });
  }

  /** A field the signer did not write: a default, or a map of defaults (named down to the field that is not one). */
  function added(path: FieldPath, value: Json, parent: JsonObject): void {
    if (isDefault(path, value, parent)) return;
    if (isObject(value)) for (const key of Object.keys(value)) added([...path, key], value[key]!, value);
    else differences.push({ path: formatPath(path), change: 'added', found: value });
  }

  function isDefault(path: FieldPath, value: Json, parent: JsonObject): boolean {
    for (const d of defaults) {
      if (d.pattern.length > path.length || !matchesPattern(d.pattern, path.slice(0, d.pattern.length))) continue;
      const rest = path.slice(d.pattern.length);
      if (rest.length === 0 && d.assigned) return true;
      if (rest.length === 0 && d.matches?.(value, parent)) return true;
      if (rest.length === 0 && d.extraItems && Array.isArray(value) && value.every(d.extraItems)) return true;
      if (d.value !== undefined) {
        const expected = rest.reduce<Json | undefined>((v, k) => (isObject(v) ? v[k as string] : undefined), d.value);
        if (expected !== undefined && canonicalJson(expected) === canonicalJson(value)) return true;
      }
    }
    return false;
  }
}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// The API server rewrites resource quantities in its canonical form ("1000m" becomes "1", "0.5" becomes "500m").
const QUANTITY_FIELDS = /^(limits|requests|overhead|capacity|sizeLimit|hard)$/;
const SUFFIXES: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

function sameQuantity(path: FieldPath, a: Json, b: Json): boolean {
  if (!path.some((s) => typeof s === 'string' && QUANTITY_FIELDS.test(s))) return false;
  const [x, y] = [quantity(a), quantity(b)];
  return x !== undefined && y !== undefined && Math.abs(x - y) <= 1e-12 * Math.max(Math.abs(x), Math.abs(y));
}

function quantity(v: Json): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return undefined;
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$/.exec(v);
  if (!m) return undefined;
  return Number(m[1]! + (m[2] ?? '')) * SUFFIXES[m[3] ?? '']!;
}
