// Wires one controller: a source, the reconciler, the NGINX applier, metrics and health, the admission webhook; in a
// cluster, the leader election and what only the leader does (Ingress status, the PKI controller, session ticket keys).
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { CustomObjectsApi, type KubeConfig, type KubernetesObject, type V1Ingress } from '@kubernetes/client-node';
import chokidar, { type FSWatcher } from 'chokidar';
import { GATEWAY_KIND, GRPC_ROUTE_KIND, HTTP_ROUTE_KIND, INGRESS_KIND, TLS_ROUTE_KIND, answerReview } from './admission/review.js';
import { VALIDATE_GATEWAYS_PATH, VALIDATE_GRPC_ROUTES_PATH, VALIDATE_HTTP_ROUTES_PATH, VALIDATE_INGRESSES_PATH, VALIDATE_TLS_ROUTES_PATH, replaceKeyPairs, serveAdmission, stopHttpsServer, type WebhookOptions } from './admission/server.js';
import { Applier } from './dataplane/applier.js';
import { defaultModules, probeCapabilities, type DataPlaneRuntime } from './dataplane/runtime.js';
import { accessLogFromFlags, entropySourceFromFlags, sessionResumptionFromFlags, tlsDefaultsFromFlags, type Flags } from './config.js';
import { LeaderElector } from './leader/elector.js';
import { electionTimings } from './leader/lease.js';
import { freePort } from './net.js';
import { listenForHandshakes } from './observability/handshakes.js';
import { createLogger, type Logger } from './observability/log.js';
import { createMetrics } from './observability/metrics.js';
import { PkiController } from './pki/controller.js';
import { GROUP, VERSION } from './pki/resources.js';
import { defaultCertificatePairs } from './pki/selfsigned.js';
import { serveObservability } from './observability/server.js';
import { Reconciler } from './reconciler.js';
import { FilesSource, INGRESS_KINDS, LogEventRecorder } from './sources/files.js';
import { KubernetesEventRecorder, KubernetesSource, errorText, loadKubeConfig } from './sources/kubernetes.js';
import { INITIAL_BACKOFF_MS, MAX_BACKOFF_MS } from './sources/reflector.js';
import type { EventRecorder, Source } from './sources/source.js';
import { publishFrom } from './status/addresses.js';
import type { GRPCRoute, Gateway, HTTPRoute, TLSRoute } from './model/gateway-api.js';
import { GatewayStatusWriter } from './status/gateway-writer.js';
import { StatusWriter } from './status/writer.js';
import { SignaturePolicies } from './signatures/controller.js';
import { VALIDATE_SIGNATURES_PATH } from './signatures/review.js';
import { TicketKeyRotator } from './tickets/rotator.js';
import { InMemoryTicketKeys } from './tickets/standalone.js';

export interface RunningController {
  reconciler: Reconciler;
  applier: Applier;
  metricsPort: number;
  /** In a cluster: this replica's part in the leader election. */
  elector: LeaderElector | undefined;
  stop(): Promise<void>;
}


export async function startController(flags: Flags, log: Logger = createLogger(flags['log-level'])): Promise<RunningController> {
  const runtime: DataPlaneRuntime = {
    root: flags['nginx-root'] ? resolve(flags['nginx-root']) : '',
    nginxBinary: flags['nginx-binary'],
    opensslBinary: flags['openssl-binary'],
  };
  const capabilities = await probeCapabilities(runtime);
  log.info('data plane OpenSSL', { version: capabilities.opensslVersion, groups: capabilities.groups, signatureAlgorithms: capabilities.signatureAlgorithms });
  const tlsDefaults = tlsDefaultsFromFlags(flags, capabilities);
  const webhookOptions: WebhookOptions | undefined = flags['validating-webhook']
    ? { ...flags['validating-webhook'], keyPairs: await webhookKeyPairs(flags) }
    : undefined;
  const publish = publishFrom(flags['publish-service'], flags['publish-status-address']);
  const electionTiming = electionTimings(flags['election-ttl']);
  const accessLog = accessLogFromFlags(flags, runtime);
  const configMapKey = flags.configmap ? `${flags.configmap.namespace}/${flags.configmap.name}` : '';

  const metrics = createMetrics();
  const handshakes = await listenForHandshakes(metrics, flags['handshake-log-port']);
  const modules = flags['nginx-modules'].length > 0 ? flags['nginx-modules'] : defaultModules(runtime);
  const confDir = flags['conf-dir'];
  const applier = new Applier(
    {
      runtime,
      confDir,
      accessLog,
      newHostReloadMs: flags['new-host-reload-ms'],
      render: {
        bindAddress: flags['bind-address'] ?? '',
        httpPort: flags['http-port'],
        httpsPort: flags['https-port'],
        httpsRedirectPort: flags['https-redirect-port'],
        statusPort: flags['status-port'] || (await freePort()),
        handshakeLogPort: handshakes.port,
        workerProcesses: flags['worker-processes'],
        workerConnections: 4096,
        modules,
      },
    },
    metrics,
    log.child({ component: 'nginx' }),
  );

  let source: Source;
  let recorder: EventRecorder;
  const kc = flags.manifests ? undefined : loadKubeConfig(flags.kubeconfig);
  // The controller namespace: the leader-election Lease and the session ticket Secret live there.
  const namespace = flags['controller-namespace'] || process.env.POD_NAMESPACE || kc?.getContextObject(kc.getCurrentContext())?.namespace || 'default';
  const sessionResumption = sessionResumptionFromFlags(flags, namespace);
  // Unique per replica and per start: the Lease's holder and the Events' reporting instance.
  const identity = `${hostname()}_${randomBytes(4).toString('hex')}`;
  let pkiOn = false;
  if (!kc) {
    const files = new FilesSource(resolve(flags.manifests), log.child({ component: 'files' }), INGRESS_KINDS);
    source = sessionResumption.tickets ? new InMemoryTicketKeys(files, sessionResumption.ticketSecret, sessionResumption.rotation) : files;
    recorder = new LogEventRecorder(log);
  } else {
    source = new KubernetesSource(kc, { watchNamespace: flags['watch-namespace'] ?? '', configMap: configMapKey, publishService: publish && 'service' in publish ? publish.service : '', ticketSecretNamespace: sessionResumption.tickets ? namespace : '', caConfigMaps: Boolean(flags['gateway-controller-name']) }, metrics, log.child({ component: 'kubernetes' }));
    recorder = new KubernetesEventRecorder(kc, flags['controller-class'], identity, log);
    pkiOn = flags['enable-pki'] && (await pkiResourcesInstalled(kc, log));
  }
  if (flags['enable-signatures'] && (!kc || !webhookOptions)) {
    throw new Error('flag --enable-signatures: needs a cluster (not --manifests) and --validating-webhook, whose server it answers on');
  }
  const signatures = flags['enable-signatures'] && kc
    ? new SignaturePolicies(kc, { controllerNamespace: namespace, clusterResourceNamespace: flags['cluster-resource-namespace'], debounceMs: flags['debounce-ms'] }, recorder, metrics, log.child({ component: 'signatures' }))
    : undefined;
  const keyMaterial = kc && flags['entropy-source'] ? await entropySourceFromFlags(flags) : undefined;
  if (keyMaterial) log.info('the PKI\'s key seeds and serial numbers and the session ticket keys come from the QRNG service', { url: flags['entropy-source'] });

  const reconciler = new Reconciler(
    source,
    applier,
    recorder,
    {
      controllerName: flags['controller-class'],
      ingressClass: flags['ingress-class'],
      tlsDefaults,
      configMap: configMapKey,
      capabilities,
      defaultCertificates: await defaultCertificatePairs(),
      defaultBackend: flags['default-backend-service'],
      debounceMs: flags['debounce-ms'],
      sessionResumption,
      gateway: flags['gateway-controller-name'] ? { controllerName: flags['gateway-controller-name'], ports: { http: flags['gateway-http-port'] ?? flags['http-port'], https: flags['gateway-https-port'] ?? flags['https-port'] } } : undefined,
    },
    metrics,
    log,
  );

  applier.onRestart = () => reconciler.schedule(true);
  applier.onReloadDue = () => reconciler.schedule();

  let elector: LeaderElector | undefined;
  if (kc) {
    const cluster = kc;
    const debounceMs = flags['debounce-ms'];
    elector = new LeaderElector(cluster, { namespace, name: flags['election-id'], identity, ...electionTiming }, async () => {
      const status = publish && new StatusWriter(cluster, source, () => reconciler.served, publish, debounceMs, log.child({ component: 'status' }));
      const gatewayController = flags['gateway-controller-name'];
      const gatewayStatus = gatewayController ? new GatewayStatusWriter(cluster, source, () => reconciler.gatewayStatus, gatewayController, publish, debounceMs, log.child({ component: 'gateway-status' })) : undefined;
      const pki = pkiOn ? new PkiController(cluster, { clusterResourceNamespace: flags['cluster-resource-namespace'], debounceMs, defaultAlgorithm: flags['default-certificate-algorithm'], ...(keyMaterial ? { keyMaterial } : {}) }, recorder, metrics, log.child({ component: 'pki' })) : undefined;
      const tickets = sessionResumption.tickets
        ? new TicketKeyRotator(cluster, source, sessionResumption.ticketSecret, sessionResumption.rotation, debounceMs, log.child({ component: 'tickets' }), keyMaterial?.secretBytes)
        : undefined;
      signatures?.startStatus();
      const work = [status, gatewayStatus, pki, tickets].filter((w) => w !== undefined);
      reconciler.onSynced = () => {
        status?.schedule();
        gatewayStatus?.schedule();
        tickets?.schedule();
      };
      const stopWork = async () => {
        metrics.leader.set(0);
        reconciler.onSynced = () => undefined;
        await Promise.all([...work.map((w) => w.stop()), signatures?.stopStatus()]);
      };
      await Promise.all(work.map((w) => w.start())).catch(async (err: unknown) => {
        await stopWork();
        throw err;
      });
      metrics.leader.set(1);
      return stopWork;
    }, log.child({ component: 'leader' }));
  }
  let observability: Server | undefined;
  let watcher: FSWatcher | undefined;
  let webhook: HttpsServer | undefined;
  let webhookWatcher: FSWatcher | undefined;
  try {
    observability = await serveObservability(metrics, flags['metrics-address'], flags['metrics-port'], () => applier.serving);
    // Not awaited: until its first lists are in, signature reviews fail closed, and the rest need not wait for them.
    signatures?.start();
    await reconciler.start();
    // Ingress reviews judge against the reconciler's snapshot, so the server starts once it holds the cluster's state.
    if (webhookOptions) {
      const handlers = {
        [VALIDATE_INGRESSES_PATH]: (body: string) => answerReview(body, INGRESS_KIND, (ingress: V1Ingress) => reconciler.admit(ingress)),
        [VALIDATE_HTTP_ROUTES_PATH]: (body: string) => answerReview(body, HTTP_ROUTE_KIND, (route: KubernetesObject) => reconciler.admitRoute('HTTPRoute', route as unknown as HTTPRoute)),
        [VALIDATE_GRPC_ROUTES_PATH]: (body: string) => answerReview(body, GRPC_ROUTE_KIND, (route: KubernetesObject) => reconciler.admitRoute('GRPCRoute', route as unknown as GRPCRoute)),
        [VALIDATE_TLS_ROUTES_PATH]: (body: string) => answerReview(body, TLS_ROUTE_KIND, (route: KubernetesObject) => reconciler.admitRoute('TLSRoute', route as unknown as TLSRoute)),
        [VALIDATE_GATEWAYS_PATH]: (body: string) => answerReview(body, GATEWAY_KIND, (gateway: KubernetesObject) => reconciler.admitGateway(gateway as unknown as Gateway)),
        ...(signatures ? { [VALIDATE_SIGNATURES_PATH]: (body: string) => signatures.answer(body) } : {}),
      };
      const server = await serveAdmission(webhookOptions, handlers, log.child({ component: 'admission' }));
      webhook = server;
      webhookWatcher = watchWebhookKeyPairs(flags, webhookOptions.keyPairs, (pairs) => replaceKeyPairs(server, pairs), log);
    }
    elector?.start();
    // Someone else changed a file we manage (an editor, a volume update): write ours back and reload.
    const { paths, relevant } = applier.watched;
    watcher = chokidar.watch(paths, { ignoreInitial: true, depth: 1, ignored: (p) => !relevant(p) });
    const onDisk = (file: string) =>
      void applier.changedByOthers(file).then((changed) => {
        if (!changed) return;
        log.warn('managed file changed on disk; restoring and reloading', { file });
        reconciler.schedule(true);
      });
    watcher.on('change', onDisk).on('unlink', onDisk).on('error', (err) => log.warn('file watch failed', { error: err }));
  } catch (err) {
    await Promise.allSettled([webhookWatcher?.close(), webhook && stopHttpsServer(webhook), signatures?.stop(), reconciler.stop(), applier.stop()]);
    observability?.close();
    handshakes.socket.close();
    await keyMaterial?.close();
    throw err;
  }

  const address = observability.address();
  return {
    reconciler,
    applier,
    metricsPort: typeof address === 'object' && address ? address.port : 0,
    elector,
    async stop() {
      await webhookWatcher?.close();
      if (webhook) await stopHttpsServer(webhook);
      await watcher?.close();
      await elector?.stop();
      await signatures?.stop();
      await reconciler.stop();
      await applier.stop();
      await new Promise((r) => observability!.close(r));
      handshakes.socket.close();
      await keyMaterial?.close();
    },
  };
}

/**
 * Re-reads the webhook's files when their folders change (a Secret volume swaps a symlink; cert-manager renews) and
 * hands over pairs that check out; a half-written update is skipped until the next change completes it.
 */
function watchWebhookKeyPairs(flags: Flags, current: WebhookOptions['keyPairs'], replace: (pairs: WebhookOptions['keyPairs']) => void, log: Logger): FSWatcher {
  const files = [...flags['validating-webhook-certificate'], ...flags['validating-webhook-key']];
  let served = JSON.stringify(current);
  let timer: NodeJS.Timeout | undefined;
  const reread = () =>
    void webhookKeyPairs(flags).then((pairs) => {
      if (JSON.stringify(pairs) === served) return;
      served = JSON.stringify(pairs);
      replace(pairs);
      log.info('webhook certificates reloaded', { files });
    }, (err: Error) => log.warn('webhook certificates not reloaded; the current ones keep serving', { error: err.message }));
  return chokidar.watch([...new Set(files.map((f) => dirname(resolve(f))))], { ignoreInitial: true, depth: 1 }).on('all', () => {
    clearTimeout(timer);
    timer = setTimeout(reread, 200).unref();
  });
}

/** The webhook's certificate and key files: each key must match the certificate in its place. */
async function webhookKeyPairs(flags: Flags): Promise<WebhookOptions['keyPairs']> {
  const certificates = flags['validating-webhook-certificate'];
  const keys = flags['validating-webhook-key'];
  if (certificates.length === 0 || certificates.length !== keys.length) {
    throw new Error(`flags --validating-webhook-certificate and --validating-webhook-key: need one key file per certificate file, at least one (got ${certificates.length} and ${keys.length})`);
  }
  return Promise.all(certificates.map(async (certificateFile, i) => {
    const keyFile = keys[i]!;
    const [certificatePem, keyPem] = await Promise.all([readFile(certificateFile, 'utf8'), readFile(keyFile, 'utf8')]);
    let matches: boolean;
    try {
      matches = new X509Certificate(certificatePem).checkPrivateKey(createPrivateKey(keyPem));
    } catch (err) {
      throw new Error(`flags --validating-webhook-certificate and --validating-webhook-key: ${certificateFile} and ${keyFile} are not a PEM certificate and key: ${(err as Error).message}`, { cause: err });
    }
    if (!matches) throw new Error(`flag --validating-webhook-key: ${keyFile} does not match the certificate in ${certificateFile}`);
    return { certificatePem, keyPem };
  }));
}

/**
 * The PKI needs its CRDs; without them (a cluster set up for the ingress alone) it stays off. Only the API server's
 * answer decides that: a failed request (5xx, no connection) is retried, with backoff, so a fault at start-up does not
 * turn the PKI off for the life of the process.
 */
async function pkiResourcesInstalled(kc: KubeConfig, log: Logger): Promise<boolean> {
  for (let delayMs = INITIAL_BACKOFF_MS; ; delayMs = Math.min(delayMs * 2, MAX_BACKOFF_MS)) {
    try {
      await kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'certificates', limit: 1 });
      return true;
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 403 || code === 404) {
        const why = code === 403
          ? 'not allowed to list qubesec.io certificates (bind the ClusterRole in charts/qubesec/files/rbac/pki.yaml)'
          : 'the qubesec.io CRDs are not installed (charts/qubesec/crds)';
        log.warn(`PKI controller off: ${why}`, { error: errorText(err) });
        return false;
      }
      log.warn('cannot tell whether the qubesec.io CRDs are installed; retrying', { error: errorText(err), retryInMs: delayMs });
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

