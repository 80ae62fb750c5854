import { eventsOfBatch } from './receiver.js';

describe('eventsOfBatch', () => {
  it('takes the items of an audit.k8s.io/v1 EventList, each as JSON', () => {
    const items = [{ auditID: 'a', verb: 'get' }, { auditID: 'b', objectRef: { resource: 'pods' } }];
    expect(eventsOfBatch(JSON.stringify({ apiVersion: 'audit.k8s.io/v1', kind: 'EventList', metadata: {}, items }))).toEqual({ events: items.map((i) => JSON.stringify(i)), firstAuditID: 'a' });
    expect(eventsOfBatch('{"apiVersion":"audit.k8s.io/v1","kind":"EventList","items":[]}')).toEqual({ events: [], firstAuditID: undefined });
  });

  it('says what is wrong with anything else', () => {
    expect(eventsOfBatch('{')).toEqual({ error: expect.stringMatching(/^the body is not JSON/) as string });
    expect(eventsOfBatch('{"apiVersion":"audit.k8s.io/v1beta1","kind":"EventList","items":[]}')).toEqual({ error: 'apiVersion/kind audit.k8s.io/v1beta1/EventList: only audit.k8s.io/v1 EventList is accepted' });
    expect(eventsOfBatch('null')).toEqual({ error: 'apiVersion/kind undefined/undefined: only audit.k8s.io/v1 EventList is accepted' });
    expect(eventsOfBatch('{"apiVersion":"audit.k8s.io/v1","kind":"EventList","items":{}}')).toEqual({ error: 'items: not a list' });
    expect(eventsOfBatch('{"apiVersion":"audit.k8s.io/v1","kind":"EventList","items":[{},[],1]}')).toEqual({ error: 'items[1]: not an Event object' });
  });
});
