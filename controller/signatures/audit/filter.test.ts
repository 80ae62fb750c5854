import { formatEvent, matches, parseTime, type AuditEvent } from './filter.js';

const NOW = Date.parse('2026-12-01T18:00:00Z');
const create: AuditEvent = {
  auditID: 'id-1', stage: 'ResponseComplete', verb: 'create', user: { username: 'alice' },
  objectRef: { resource: 'deployments', apiGroup: 'apps', namespace: 'shop', name: 'web' }, responseStatus: { code: 201 },
  requestReceivedTimestamp: '2026-12-01T17:30:00.000000Z',
};

describe('filters', () => {
  it('match on user, verb, resource (with or without its group), namespace', () => {
    expect(matches({}, create)).toBe(true);
    expect(matches({ user: 'alice', verb: 'create', resource: 'deployments', namespace: 'shop' }, create)).toBe(true);
    expect(matches({ resource: 'deployments.apps' }, create)).toBe(true);
    for (const filter of [{ user: 'bob' }, { verb: 'delete' }, { resource: 'pods' }, { resource: 'deployments.extensions' }, { namespace: 'default' }]) {
      expect(matches(filter, create)).toBe(false);
    }
    expect(matches({ namespace: 'shop' }, { verb: 'list' })).toBe(false);
  });

  it('match on the time the request was received: since inclusive, until exclusive', () => {
    const at = Date.parse('2026-12-01T17:30:00Z');
    expect(matches({ since: at, until: at + 1 }, create)).toBe(true);
    expect(matches({ since: at + 1 }, create)).toBe(false);
    expect(matches({ until: at }, create)).toBe(false);
    expect(matches({ since: 0 }, { verb: 'get' })).toBe(false);
  });

  it('read RFC 3339 times and durations ago, and name the flag of a bad one', () => {
    expect(parseTime('since', '2026-12-01T17:00:00Z', NOW)).toBe(NOW - 3_600_000);
    expect(parseTime('since', '2026-12-01T19:00:00.5+02:00', NOW)).toBe(NOW - 3_600_000 + 500);
    expect(parseTime('since', '30m', NOW)).toBe(NOW - 1_800_000);
    expect(parseTime('until', '7d', NOW)).toBe(NOW - 7 * 86_400_000);
    for (const bad of ['yesterday', '2026-12-01', '10', '5w', '2026-13-01T00:00:00Z']) expect(() => parseTime('until', bad, NOW)).toThrow(/^--until: /);
  });

  it('print one line per event', () => {
    expect(formatEvent(create)).toBe('2026-12-01T17:30:00.000000Z ResponseComplete alice create deployments.apps shop/web 201 id-1');
    expect(formatEvent({ verb: 'get', requestURI: '/healthz' })).toBe('- - - get /healthz - - -');
    expect(formatEvent({ verb: 'list', objectRef: { resource: 'pods', subresource: 'log', namespace: 'ns' } })).toBe('- - - list pods/log ns/ - -');
  });
});
