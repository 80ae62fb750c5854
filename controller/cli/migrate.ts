// `qubesec migrate`: prints a Gateway per namespace and HTTPRoutes that serve on QubeSec what the Ingresses of its
// class serve (docs/migrate.md), read from the cluster or from a folder of manifests; what does not carry over goes
// to stderr, one note per Ingress and annotation or field.
import { resolve } from 'node:path';
import { CoreV1Api, NetworkingV1Api, type V1Ingress, type V1IngressClass, type V1Service } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { FLAGS, parseFlags, tlsDefaultsFromFlags } from '../config.js';
import { migrateIngresses } from '../migrate/gateway-api.js';
import { servedIngresses } from '../model/classes.js';
import { OPENSSL_3_5_CAPABILITIES } from '../model/pq.js';
import { createLogger } from '../observability/log.js';
import { FilesSource, INGRESS_KINDS } from '../sources/files.js';
import { loadKubeConfig } from '../sources/kubernetes.js';
import { keyOf } from '../sources/source.js';
import { parseCommandLine, UsageError } from './check.js';

const USAGE = `qubesec migrate [--kubeconfig F | --manifests DIR] [--namespace NS] [--gateway-name N] [--gateway-class C]
  prints Gateways and HTTPRoutes for the Ingresses of QubeSec's class; notes on what does not carry over go to stderr`;

/** The flags of `qubesec migrate`; docs/migrate.md has a row for each (controller/docs.test.ts). */
export const MIGRATE_OPTIONS = {
  kubeconfig: { type: 'string', default: '' },
  manifests: { type: 'string', default: '' },
  namespace: { type: 'string' },
  'gateway-name': { type: 'string', default: 'qubesec' },
  'gateway-class': { type: 'string', default: 'qubesec' },
  'ingress-class': { type: 'string', default: FLAGS['ingress-class'].default },
  'controller-class': { type: 'string', default: FLAGS['controller-class'].default },
  help: { type: 'boolean', default: false },
} satisfies Parameters<typeof parseCommandLine>[1];

interface Objects {
  ingresses: V1Ingress[];
  ingressClasses: V1IngressClass[];
  services: V1Service[];
}

async function fromCluster(kubeconfig: string, namespace: string | undefined): Promise<Objects> {
  const kc = loadKubeConfig(kubeconfig);
  const net = kc.makeApiClient(NetworkingV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const [ingresses, ingressClasses, services] = await Promise.all([
    namespace ? net.listNamespacedIngress({ namespace }) : net.listIngressForAllNamespaces(),
    net.listIngressClass(),
    namespace ? core.listNamespacedService({ namespace }) : core.listServiceForAllNamespaces(),
  ]);
  return { ingresses: ingresses.items, ingressClasses: ingressClasses.items, services: services.items };
}

async function fromFolder(folder: string, namespace: string | undefined): Promise<Objects> {
  const source = new FilesSource(resolve(folder), createLogger('warn'), INGRESS_KINDS);
  await source.start(() => undefined);
  const snapshot = source.snapshot();
  await source.stop();
  const inNamespace = <T extends { metadata?: { namespace?: string } }>(list: readonly T[]) => list.filter((o) => namespace === undefined || (o.metadata?.namespace ?? 'default') === namespace);
  return { ingresses: inNamespace(snapshot.ingresses), ingressClasses: [...snapshot.ingressClasses], services: inNamespace(snapshot.services) };
}

export async function runMigrate(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, MIGRATE_OPTIONS, USAGE);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`qubesec migrate takes no arguments (got ${positionals.join(' ')})\n${USAGE}`);
  if (values.manifests && values.kubeconfig) throw new UsageError(`--manifests and --kubeconfig name two sources; give one\n${USAGE}`);
  // The controller's own flag checks, so that a bad name is told as the controller would tell it.
  const flags = parseFlags(['--ingress-class', values['ingress-class'], '--controller-class', values['controller-class'], ...(values.namespace ? ['--watch-namespace', values.namespace] : [])]);
  const objects = values.manifests ? await fromFolder(values.manifests, values.namespace) : await fromCluster(values.kubeconfig, values.namespace);
  const ingresses = servedIngresses(objects.ingresses, objects.ingressClasses, flags['controller-class'], flags['ingress-class']);
  const migration = migrateIngresses(ingresses, new Map(objects.services.map((s) => [keyOf(s), s])), {
    gatewayName: values['gateway-name'],
    gatewayClassName: values['gateway-class'],
    defaults: tlsDefaultsFromFlags(flags, OPENSSL_3_5_CAPABILITIES),
    capabilities: OPENSSL_3_5_CAPABILITIES,
  });
  for (const note of migration.notes) process.stderr.write(`note: ${note}\n`);
  process.stdout.write([...migration.gateways, ...migration.httpRoutes].map((o) => stringify(o)).join('---\n'));
  return 0;
}
