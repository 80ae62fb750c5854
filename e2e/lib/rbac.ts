// What the controller's ServiceAccount may and may not do, asked of the API server (SelfSubjectAccessReview). One list
// for the tests that bind the rules of charts/qubesec/files/rbac: by hand (leader.test.ts) and through the chart.
import { AuthorizationV1Api, KubeConfig, type V1ResourceAttributes } from '@kubernetes/client-node';

/** Attributes the controller needs (`allowed`) and must not have (`denied`), with its namespace, Lease and session ticket Secret. */
export function controllerAccess(namespace: string, lease: string, ticketSecret = 'qubesec-session-tickets'): { allowed: V1ResourceAttributes[]; denied: V1ResourceAttributes[] } {
  const ingresses = { group: 'networking.k8s.io', resource: 'ingresses', namespace: 'default' };
  const secrets = { group: '', resource: 'secrets', namespace: 'default' };
  const ownSecrets = { ...secrets, namespace };
  const leases = { group: 'coordination.k8s.io', resource: 'leases', namespace };
  return {
    allowed: [
      { ...ingresses, verb: 'patch', subresource: 'status', name: 'app' },
      { ...ingresses, verb: 'watch' },
      { ...secrets, verb: 'list' },
      { ...secrets, verb: 'update', name: 'app-tls' },
      { ...leases, verb: 'update', name: lease },
      { ...ownSecrets, verb: 'create' },
      { ...ownSecrets, verb: 'update', name: ticketSecret },
      { group: '', resource: 'events', namespace: 'default', verb: 'create' },
      { group: 'gateway.networking.k8s.io', resource: 'httproutes', namespace: 'default', verb: 'watch' },
      { group: 'gateway.networking.k8s.io', resource: 'grpcroutes', namespace: 'default', verb: 'list' },
      { group: 'gateway.networking.k8s.io', resource: 'grpcroutes', namespace: 'default', verb: 'patch', subresource: 'status', name: 'calls' },
      { group: 'gateway.networking.k8s.io', resource: 'gateways', namespace: 'default', verb: 'patch', subresource: 'status', name: 'gw' },
      { group: '', resource: 'namespaces', verb: 'list' },
      { group: '', resource: 'configmaps', namespace: 'default', verb: 'watch' },
      { group: 'gateway.networking.k8s.io', resource: 'backendtlspolicies', namespace: 'default', verb: 'list' },
      { group: 'gateway.networking.k8s.io', resource: 'tlsroutes', namespace: 'default', verb: 'watch' },
      { group: 'gateway.networking.k8s.io', resource: 'tlsroutes', namespace: 'default', verb: 'patch', subresource: 'status', name: 'pass' },
      { group: 'gateway.networking.k8s.io', resource: 'backendtlspolicies', namespace: 'default', verb: 'patch', subresource: 'status', name: 'web-tls' },
    ],
    denied: [
      { ...ingresses, verb: 'update', name: 'app' },
      { ...ingresses, verb: 'update', subresource: 'status', name: 'app' },
      { ...ingresses, verb: 'patch', name: 'app' },
      { ...ingresses, verb: 'delete', name: 'app' },
      { ...ingresses, verb: 'create' },
      { ...secrets, verb: 'get', name: 'app-tls' },
      { ...secrets, verb: 'delete', name: 'app-tls' },
      { ...ownSecrets, verb: 'get', name: ticketSecret },
      { ...ownSecrets, verb: 'delete', name: ticketSecret },
      { ...leases, verb: 'update', name: 'kube-scheduler' },
      { ...leases, verb: 'delete', name: lease },
      { ...leases, verb: 'create', namespace: 'default' },
      { group: '', resource: 'events', namespace: 'default', verb: 'patch' },
      { group: '', resource: 'configmaps', namespace: 'default', verb: 'update', name: 'ca' },
      { group: '', resource: 'services', namespace: 'default', verb: 'update', name: 'app' },
      { group: '', resource: 'pods', namespace: 'default', verb: 'create' },
      { group: 'qubesec.io', resource: 'certificates', namespace: 'default', verb: 'delete', name: 'app-tls' },
      { group: 'rbac.authorization.k8s.io', resource: 'clusterroles', verb: 'update', name: 'qubesec' },
      { group: 'gateway.networking.k8s.io', resource: 'gateways', namespace: 'default', verb: 'patch', name: 'gw' },
      { group: 'gateway.networking.k8s.io', resource: 'httproutes', namespace: 'default', verb: 'update', subresource: 'status', name: 'web' },
      { group: 'gateway.networking.k8s.io', resource: 'grpcroutes', namespace: 'default', verb: 'patch', name: 'calls' },
      { group: 'gateway.networking.k8s.io', resource: 'backendtlspolicies', namespace: 'default', verb: 'patch', name: 'web-tls' },
    ],
  };
}

/** Asks the API server, as the kubeconfig's user, whether each attribute set is allowed; returns [attributes, allowed] pairs. */
export async function accessReviews(kubeconfigPath: string, attributes: V1ResourceAttributes[]): Promise<[V1ResourceAttributes, boolean][]> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const answers: [V1ResourceAttributes, boolean][] = [];
  for (const resourceAttributes of attributes) {
    answers.push([resourceAttributes, (await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes } } })).status!.allowed]);
  }
  return answers;
}
