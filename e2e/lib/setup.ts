// What an e2e test file on a real API server starts first and stops last: one cluster per file.
import { execa } from 'execa';
import { startCluster, type TestCluster } from '../cluster/cluster.js';
import { installTrustAnchors } from './clients.js';
import type { TestController } from './harness.js';
import { Kube } from './kube.js';
import { createTestHost, type TestHost } from './netns.js';
import { QUBESEC_CLASS, tlsSecret } from './objects.js';

export interface ClusterSetup {
  cluster: TestCluster;
  kube: Kube;
  /** Test certificates inside the rootfs; its folder may hold the file's other files for chrooted curl and NGINX. */
  anchors: Awaited<ReturnType<typeof installTrustAnchors>>;
  /** Network namespace for backends: EndpointSlices refuse loopback addresses. */
  testHost: TestHost;
}

/** A real API server with the qubesec IngressClass and Secret pq-mldsa (ML-DSA-65 for *.pq.example.com), a test host, trust anchors. */
export async function startClusterSetup(): Promise<ClusterSetup> {
  const setup: Partial<ClusterSetup> = {};
  try {
    setup.cluster = await startCluster();
    setup.kube = new Kube(setup.cluster.kc);
    setup.anchors = await installTrustAnchors();
    setup.testHost = await createTestHost();
    await setup.kube.apply(QUBESEC_CLASS);
    await setup.kube.apply(tlsSecret('pq-mldsa', 'mldsa65'));
    return setup as ClusterSetup;
  } catch (err) {
    await stopClusterSetup(setup);
    throw err;
  }
}

/** Stops the file's controller, then what startClusterSetup started, in that order. */
export async function stopClusterSetup(setup: Partial<ClusterSetup> | undefined, controller?: TestController): Promise<void> {
  await controller?.stop();
  await setup?.testHost?.stop();
  await setup?.cluster?.stop();
  if (setup?.anchors) await execa('rm', ['-rf', setup.anchors.dir]);
}
