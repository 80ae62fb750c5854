// Which Ingresses are ours: by IngressClass (spec.controller), by the default-class annotation, or by the legacy
// kubernetes.io/ingress.class annotation, as Kubernetes and ingress-nginx define it.
import type { V1Ingress, V1IngressClass } from '@kubernetes/client-node';

const IS_DEFAULT_CLASS = 'ingressclass.kubernetes.io/is-default-class';
const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';

export function servedIngresses(
  ingresses: readonly V1Ingress[],
  classes: readonly V1IngressClass[],
  controllerName: string,
  legacyClassName: string,
): V1Ingress[] {
  const ours = classes.filter((c) => c.spec?.controller === controllerName);
  const names = new Set(ours.map((c) => c.metadata?.name ?? ''));
  const isDefault = ours.some((c) => c.metadata?.annotations?.[IS_DEFAULT_CLASS] === 'true');
  return ingresses.filter((ingress) => {
    const className = ingress.spec?.ingressClassName;
    if (className !== undefined && className !== null) return names.has(className);
    const legacy = ingress.metadata?.annotations?.[LEGACY_CLASS_ANNOTATION];
    if (legacy !== undefined) return legacy === legacyClassName;
    return isDefault;
  });
}
