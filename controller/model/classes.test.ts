import type { V1IngressClass } from '@kubernetes/client-node';
import { servedIngresses } from './classes.js';
import { ingress } from './testing.js';

const CONTROLLER = 'qubesec.io/ingress-controller';
const ingressClass = (name: string, controller: string, isDefault = false): V1IngressClass => ({
  metadata: { name, annotations: isDefault ? { 'ingressclass.kubernetes.io/is-default-class': 'true' } : {} },
  spec: { controller },
});
const named = (name: string, className?: string, annotations?: Record<string, string>) => {
  const i = ingress(name, {}, { annotations });
  if (className === undefined) delete i.spec!.ingressClassName;
  else i.spec!.ingressClassName = className;
  return i;
};

describe('servedIngresses', () => {
  const all = [
    named('ours', 'qubesec'),
    named('renamed', 'pq-edge'),
    named('theirs', 'nginx'),
    named('unknown-class', 'nonexistent'),
    named('classless'),
    named('legacy', undefined, { 'kubernetes.io/ingress.class': 'qubesec' }),
    named('legacy-theirs', undefined, { 'kubernetes.io/ingress.class': 'nginx' }),
  ];
  const classes = [ingressClass('qubesec', CONTROLLER), ingressClass('pq-edge', CONTROLLER), ingressClass('nginx', 'k8s.io/ingress-nginx', true)];

  it('serves Ingresses naming a class of our controller, and the legacy annotation', () => {
    expect(servedIngresses(all, classes, CONTROLLER, 'qubesec').map((i) => i.metadata!.name)).toEqual(['ours', 'renamed', 'legacy']);
  });

  it('serves classless Ingresses only when one of our classes is the default', () => {
    const withDefault = [ingressClass('qubesec', CONTROLLER, true), ingressClass('nginx', 'k8s.io/ingress-nginx')];
    expect(servedIngresses(all, withDefault, CONTROLLER, 'qubesec').map((i) => i.metadata!.name)).toEqual(['ours', 'classless', 'legacy']);
  });

  it('serves nothing by class name alone when no IngressClass of ours exists', () => {
    expect(servedIngresses(all, [], CONTROLLER, 'qubesec').map((i) => i.metadata!.name)).toEqual(['legacy']);
  });
});
