// Starts the real controller (in this process) against a cluster or a manifests folder, on free ports.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseFlags } from '../../controller/config.js';
import { startController, type RunningController } from '../../controller/controller.js';
import { createLogger } from '../../controller/observability/log.js';
import { freePort, metricValue, rootfs } from './env.js';

export interface TestController extends RunningController {
  httpsPort: number;
  httpPort: number;
  confDir: string;
  /** Lines the controller logged (JSON), for asserting on standalone-mode events. */
  logs: string[];
  metricsText(): Promise<string>;
  /** The value of an unlabelled metric (NaN when absent). */
  metric(name: string): Promise<number>;
}

/** Where NGINX listens when not on 127.0.0.1 and free ports: where a suite that reads the Gateway's address goes. */
export interface Listen { address: string; httpPort: number; httpsPort: number }

export async function startTestController(source: { kubeconfig: string } | { manifests: string }, extra: string[] = [], listen?: Listen): Promise<TestController> {
  const [httpsPort, httpPort] = listen ? [listen.httpsPort, listen.httpPort] : [await freePort(), await freePort()];
  const confDir = `/run/qubesec-e2e-${randomBytes(4).toString('hex')}`;
  const logs: string[] = [];
  const flags = parseFlags([
    ...('kubeconfig' in source ? ['--kubeconfig', source.kubeconfig] : ['--manifests', source.manifests]),
    '--nginx-root', rootfs(),
    '--conf-dir', confDir,
    '--bind-address', listen?.address ?? '127.0.0.1',
    '--https-port', String(httpsPort),
    '--http-port', String(httpPort),
    '--status-port', '0',
    '--metrics-address', '127.0.0.1',
    '--metrics-port', '0',
    '--debounce-ms', '50',
    '--worker-processes', '1',
    ...extra,
  ]);
  const log = createLogger('debug', {}, (line) => {
    logs.push(line);
    if (process.env.QUBESEC_E2E_LOGS === '1') process.stderr.write(line);
  });
  const controller = await startController(flags, log);
  const metricsText = () => fetch(`http://127.0.0.1:${controller.metricsPort}/metrics`).then((r) => r.text());
  return {
    ...controller,
    httpsPort,
    httpPort,
    confDir,
    logs,
    metricsText,
    metric: async (name) => metricValue(await metricsText(), name),
    async stop() {
      await controller.stop();
      await rm(join(rootfs(), confDir), { recursive: true, force: true });
    },
  };
}
