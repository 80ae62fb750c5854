// `qubesec check`: how post-quantum an HTTPS endpoint (or every TLS host of the cluster's QubeSec Ingresses) is.
// Prints a report per host (or --json) and exits with the worst host's code (docs/check.md lists them).
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FLAGS } from '../config.js';
import { checkTarget, ingressTargets, type CheckTarget } from '../check/probe.js';
import { buildReport, formatReport, worstExitCode, type CheckOutput, type CheckReport } from '../check/report.js';
import { loadKubeConfig } from '../sources/kubernetes.js';

const USAGE = `qubesec check https://HOST[:PORT] [--address A] [--json] [--cacert F] [--timeout S]
qubesec check --all-ingresses [--kubeconfig F] [--namespace NS] [--address A] [--port N] [--json] [--cacert F] [--timeout S]
exit codes: 0 pq-ready, 3 hybrid-only, 4 classical-only, 5 unreachable, 6 chain not verified by --cacert, 2 usage error`;

/** The flags of `qubesec check`; docs/check.md has a row for each (controller/docs.test.ts). */
export const CHECK_OPTIONS = {
  json: { type: 'boolean', default: false },
  cacert: { type: 'string' },
  address: { type: 'string' },
  port: { type: 'string', default: '443' },
  timeout: { type: 'string', default: '10' },
  'all-ingresses': { type: 'boolean', default: false },
  kubeconfig: { type: 'string', default: '' },
  namespace: { type: 'string' },
  'ingress-class': { type: 'string', default: FLAGS['ingress-class'].default },
  'controller-class': { type: 'string', default: FLAGS['controller-class'].default },
  help: { type: 'boolean', default: false },
} satisfies ParseArgsConfig['options'];

/** A mistake in the command line: exit code 2 with the usage. */
export class UsageError extends Error {}

/** A command's options and positionals; a bad option is a UsageError that shows the command's usage. */
export function parseCommandLine<O extends ParseArgsConfig['options']>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${usage}`);
  }
}

/** Runs the check and returns the exit code. */
export async function runCheck(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, CHECK_OPTIONS, USAGE);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const timeoutSeconds = Number(values.timeout);
  if (!(timeoutSeconds > 0)) throw new UsageError(`--timeout: ${JSON.stringify(values.timeout)} is not a positive number of seconds`);
  const ca = values.cacert === undefined ? undefined : await readFile(values.cacert, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(`--cacert ${values.cacert}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
  const options = { ca, timeoutMs: timeoutSeconds * 1000 };

  const reports: CheckReport[] = [];
  if (values['all-ingresses']) {
    if (positionals.length > 0) throw new UsageError(`--all-ingresses takes no URL (got ${positionals.join(' ')})`);
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port: ${JSON.stringify(values.port)} is not a port number`);
    const { targets, missingAddress } = await ingressTargets(loadKubeConfig(values.kubeconfig), {
      controllerName: values['controller-class'],
      legacyClassName: values['ingress-class'],
      namespace: values.namespace,
      port,
      address: values.address,
    });
    for (const target of targets) reports.push(await checkTarget(target, options));
    for (const target of missingAddress) {
      const error = `Ingress ${target.ingress} has no status.loadBalancer address: give --address`;
      reports.push(buildReport(target, { byGroup: {}, preference: { ok: false, error, refused: false } }, null, ca !== undefined));
    }
    if (reports.length === 0) throw new UsageError(`--all-ingresses: no TLS host in the Ingresses of class ${values['ingress-class']}${values.namespace ? ` in namespace ${values.namespace}` : ''}`);
  } else {
    if (positionals.length !== 1) throw new UsageError(USAGE);
    reports.push(await checkTarget(targetFromUrl(positionals[0]!, values.address), options));
  }

  const output: CheckOutput = { schemaVersion: 1, results: reports };
  console.log(values.json ? JSON.stringify(output, null, 2) : reports.map(formatReport).join('\n\n'));
  return worstExitCode(reports.map((r) => r.exitCode));
}

function targetFromUrl(text: string, address: string | undefined): CheckTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${JSON.stringify(text)} is not a URL: give https://HOST[:PORT]`);
  }
  if (url.protocol !== 'https:') throw new UsageError(`${text}: only https:// URLs can be checked`);
  // URL keeps the brackets of an IPv6 literal; connect() and SNI want the bare address.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(url.port || 443), address: address ?? host, ingress: null };
}
