// `qubesec audit show`'s filters over audit.k8s.io/v1 Events, and its text form of one event.

/** The fields of an audit Event that show reads (the API server sends many more, kept untouched in the log). */
export interface AuditEvent {
  auditID?: string;
  stage?: string;
  verb?: string;
  requestURI?: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string; apiGroup?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp?: string;
  stageTimestamp?: string;
}

export interface EventFilter {
  user?: string;
  verb?: string;
  /** `deployments`, or with its group: `deployments.apps`. */
  resource?: string;
  namespace?: string;
  /** Milliseconds since the epoch: events received at or after. */
  since?: number;
  /** Milliseconds since the epoch: events received before. */
  until?: number;
}

const RELATIVE_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An RFC 3339 time, or a duration before `now` (`90s`, `30m`, `12h`, `7d`); the error names the flag. */
export function parseTime(flag: string, raw: string, now: number): number {
  const relative = /^(\d{1,9})([smhd])$/.exec(raw);
  if (relative) return now - Number(relative[1]) * RELATIVE_UNITS[relative[2]!]!;
  const time = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(raw) ? Date.parse(raw) : NaN;
  if (Number.isNaN(time)) throw new Error(`--${flag}: ${JSON.stringify(raw)} is neither an RFC 3339 time (2026-12-01T18:00:00Z) nor a duration ago (90s, 30m, 12h, 7d)`);
  return time;
}

function eventTime(event: AuditEvent): number {
  return Date.parse(event.requestReceivedTimestamp ?? event.stageTimestamp ?? '');
}

export function matches(filter: EventFilter, event: AuditEvent): boolean {
  const ref = event.objectRef ?? {};
  if (filter.user !== undefined && event.user?.username !== filter.user) return false;
  if (filter.verb !== undefined && event.verb !== filter.verb) return false;
  if (filter.resource !== undefined && filter.resource !== ref.resource && filter.resource !== `${ref.resource}.${ref.apiGroup}`) return false;
  if (filter.namespace !== undefined && ref.namespace !== filter.namespace) return false;
  const time = eventTime(event);
  if (filter.since !== undefined && !(time >= filter.since)) return false;
  if (filter.until !== undefined && !(time < filter.until)) return false;
  return true;
}

/** One line: time, stage, user, verb, resource[/subresource], namespace/name, response code, audit ID. */
export function formatEvent(event: AuditEvent): string {
  const ref = event.objectRef;
  const resource = ref?.resource ? `${ref.resource}${ref.apiGroup ? `.${ref.apiGroup}` : ''}${ref.subresource ? `/${ref.subresource}` : ''}` : (event.requestURI ?? '-');
  const object = ref?.name ? `${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}` : (ref?.namespace ? `${ref.namespace}/` : '-');
  return [event.requestReceivedTimestamp ?? '-', event.stage ?? '-', event.user?.username ?? '-', event.verb ?? '-', resource, object,
    event.responseStatus?.code ?? '-', event.auditID ?? '-'].join(' ');
}
