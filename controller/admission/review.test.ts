// AdmissionReviews answered by the reconciler's own decision (Reconciler.admit) on an in-memory snapshot: no I/O.
import type { V1ConfigMap, V1Ingress } from '@kubernetes/client-node';
import { BUILTIN_TLS_DEFAULTS } from '../model/pq.js';
import { CAPABILITIES, ingress, route } from '../model/testing.js';
import { createLogger } from '../observability/log.js';
import { createMetrics } from '../observability/metrics.js';
import { Reconciler } from '../reconciler.js';
import { emptySnapshot, type Snapshot } from '../sources/source.js';
import { INGRESS_KIND, answerReview, readReview } from './review.js';

const QUBESEC_CLASS = { metadata: { name: 'qubesec' }, spec: { controller: 'qubesec.io/ingress-controller' } };

/** A reconciler over a fixed snapshot; admit reads only the snapshot, so nothing is ever applied or recorded. */
function reconciler(extra: Partial<Snapshot> = {}, configMap = ''): Reconciler {
  const snapshot: Snapshot = { ...emptySnapshot(), ingressClasses: [QUBESEC_CLASS], ...extra };
  return new Reconciler(
    { start: async () => {}, snapshot: () => snapshot, stop: async () => {} },
    { apply: () => Promise.reject(new Error('admission applies nothing')), test: () => Promise.reject(new Error('admission tests nothing')) },
    { record: () => Promise.reject(new Error('admission records nothing')) },
    { controllerName: 'qubesec.io/ingress-controller', ingressClass: 'qubesec', tlsDefaults: BUILTIN_TLS_DEFAULTS, configMap, capabilities: CAPABILITIES, defaultCertificates: [], debounceMs: 0 },
    createMetrics(),
    createLogger('error', {}, () => {}),
  );
}

function review(object: unknown, request: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'review-1', kind: { group: 'networking.k8s.io', version: 'v1', kind: 'Ingress' }, name: 'web', namespace: 'default', operation: 'CREATE', object, ...request },
  });
}

const web = (annotations?: Record<string, string>, extra: Partial<V1Ingress['spec']> = {}) =>
  ingress('web', { rules: [route('a.example.com', '/', 'Prefix', 'svc')], ...extra }, { annotations });

const answer = (body: string, r = reconciler()) => answerReview(body, INGRESS_KIND, (i: V1Ingress) => r.admit(i));
const replyWith = (response: object, about = 'CREATE networking.k8s.io/v1/Ingress default/web') =>
  ({ status: 200, review: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }, about });
const ALLOWED = replyWith({ uid: 'review-1', allowed: true });

describe('answerReview with Reconciler.admit', () => {
  it('admits a good Ingress, echoing the uid', () => {
    expect(answer(review(web()))).toEqual(ALLOWED);
  });

  it('denies what the controller rejects, with the Rejected Event message', () => {
    const reply = answer(review(web({ 'qubesec.io/pq-mode': 'bogus' })));
    expect(reply).toEqual(replyWith({
      uid: 'review-1',
      allowed: false,
      status: { status: 'Failure', code: 400, reason: 'BadRequest', message: 'Ingress default/web: annotation qubesec.io/pq-mode: "bogus" is not one of hybrid, strict, classical' },
    }));
  });

  it('joins several rejections with "; "', () => {
    const reply = answer(review(web({ 'qubesec.io/pq-mode': 'strict', 'qubesec.io/tls-min-version': '1.2' }, { tls: [{ secretName: 'Not_A_Name' }] })));
    expect(reply.status === 200 && reply.review.response.status?.message).toBe(
      'Ingress default/web: annotation qubesec.io/tls-min-version: 1.2 cannot go with pq-mode strict (ML-KEM groups exist only in TLS 1.3); ' +
      'Ingress default/web: spec.tls[0].secretName: "Not_A_Name" is not a valid object name (RFC 1123 subdomain)',
    );
  });

  it('admits with warnings what the controller serves with Warning Events', () => {
    const reply = answer(review(web({ 'qubesec.io/no-such-thing': 'x' })));
    expect(reply.status === 200 && reply.review.response).toEqual({
      uid: 'review-1',
      allowed: true,
      warnings: ['annotation qubesec.io/no-such-thing is not known to QubeSec and has no effect'],
    });
  });

  it('admits Ingresses of other classes, and of ours when no IngressClass names our controller, untouched', () => {
    const foreign = ingress('web', { ingressClassName: 'nginx', rules: [route('a.example.com', '/', 'Prefix', 'svc')] }, { annotations: { 'qubesec.io/pq-mode': 'bogus' } });
    expect(answer(review(foreign))).toEqual(ALLOWED);
    expect(answer(review(web({ 'qubesec.io/pq-mode': 'bogus' })), reconciler({ ingressClasses: [] }))).toEqual(ALLOWED);
  });

  it('judges with the defaults ConfigMap laid over the flags, as a sync does', () => {
    const strict: V1ConfigMap = { metadata: { namespace: 'qubesec', name: 'defaults' }, data: { 'pq-mode': 'strict' } };
    const tls12 = review(web({ 'qubesec.io/tls-min-version': '1.2' }));
    expect(answer(tls12)).toEqual(ALLOWED);
    const reply = answer(tls12, reconciler({ configMaps: [strict] }, 'qubesec/defaults'));
    expect(reply.status === 200 && reply.review.response.status?.message).toBe('Ingress default/web: annotation qubesec.io/tls-min-version: 1.2 cannot go with pq-mode strict (ML-KEM groups exist only in TLS 1.3)');
  });

  it("names the request's namespace when the object carries none", () => {
    const object = web({ 'qubesec.io/pq-mode': 'bogus' });
    delete object.metadata!.namespace;
    const reply = answer(review(object, { namespace: 'team-a' }));
    expect(reply.status === 200 && reply.review.response.status?.message).toMatch(/^Ingress team-a\/web: /);
  });

  it('allows DELETE, which asks nothing new of the data plane', () => {
    expect(answer(review(null, { operation: 'DELETE', oldObject: web() }))).toEqual(replyWith({ uid: 'review-1', allowed: true }, 'DELETE networking.k8s.io/v1/Ingress default/web'));
  });

  it('denies reviews of other kinds, pointing at the webhook rules', () => {
    const reply = answer(review({ apiVersion: 'v1', kind: 'Pod' }, { kind: { group: '', version: 'v1', kind: 'Pod' } }));
    expect(reply.status === 200 && reply.review.response).toEqual(expect.objectContaining({ allowed: false }));
    expect(reply.status === 200 && reply.review.response.status?.message).toBe(
      'this webhook reviews networking.k8s.io/v1 Ingresses, not v1/Pod: check the rules of its ValidatingWebhookConfiguration',
    );
    const noObject = answer(review(undefined, { operation: 'UPDATE' }));
    expect(noObject.status === 200 && noObject.review.response.status?.message).toBe('request.object: is required for UPDATE');
  });

  it('answers HTTP 400 to bodies that are not AdmissionReviews with a uid', () => {
    expect(answer('{"apiVersion": ')).toEqual({ status: 400, error: expect.stringMatching(/^request body is not JSON: /) });
    expect(answer('[]')).toEqual({ status: 400, error: 'request body is not an admission.k8s.io/v1 AdmissionReview (apiVersion and kind)' });
    expect(answer(JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } }))).toEqual(expect.objectContaining({ status: 400 }));
    expect(answer(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 7 } }))).toEqual({ status: 400, error: 'AdmissionReview has no request.uid' });
    expect(answer(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }))).toEqual({ status: 400, error: 'AdmissionReview has no request.uid' });
  });
});

describe('readReview, the envelope every webhook path reads', () => {
  it('reads the request fields the webhooks decide on, with their types checked', () => {
    const read = readReview(review(web(), { operation: 'UPDATE', subResource: 'status', dryRun: true, userInfo: { username: 'system:serviceaccount:ci:deployer', groups: ['system:serviceaccounts', 7] } }));
    expect('request' in read && read.request).toEqual({
      uid: 'review-1', kind: { group: 'networking.k8s.io', version: 'v1', kind: 'Ingress' }, kindText: 'networking.k8s.io/v1/Ingress', name: 'web', namespace: 'default',
      operation: 'UPDATE', subResource: 'status', dryRun: true, userInfo: { username: 'system:serviceaccount:ci:deployer', groups: ['system:serviceaccounts'] }, object: JSON.parse(JSON.stringify(web())),
    });
    const bare = readReview(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, dryRun: 'yes' } }));
    expect('request' in bare && [bare.request.userInfo, bare.request.dryRun, bare.request.subResource, bare.request.operation]).toEqual([{ username: '', groups: [] }, false, '', '']);
  });

  it('answers a verdict in kind: warnings only when there are some, a denial as a 400 Failure', () => {
    const read = readReview(review(web()));
    if (!('request' in read)) throw new Error(read.error);
    expect(read.answer({ allowed: true, warnings: [] })).toEqual(ALLOWED);
    expect(read.answer({ allowed: true, warnings: ['careful'] })).toEqual(replyWith({ uid: 'review-1', allowed: true, warnings: ['careful'] }));
    expect(read.answer({ allowed: false, message: 'no' })).toEqual(replyWith({ uid: 'review-1', allowed: false, status: { status: 'Failure', code: 400, reason: 'BadRequest', message: 'no' } }));
  });
});
