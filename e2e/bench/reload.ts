// Benchmark: what a configuration read and a reload cost raw NGINX (the rootfs's) at 1,000 and 10,000 project-shaped
// hosts (2 Services and 4 locations each, plain HTTP), both sides in one run, taking turns:
// - configuration read (`nginx -t`): the configuration the renderer makes (one Lua-balanced upstream for all Services,
//   each server block in a file nginx.conf includes) next to the same with the blocks in nginx.conf itself, and with
//   an upstream block per Service, as QubeSec rendered it before;
// - reload (SIGHUP until new workers answer with the new generation): with the blocks included, with them in
//   nginx.conf, and with them in nginx.conf and a separate `nginx -t` first.
// Prints figures and ratios; asserts nothing.
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { defaultModules } from '../../controller/dataplane/runtime.js';
import { checkTlsSecret } from '../../controller/model/certificates.js';
import { BUILTIN_TLS_DEFAULTS, defaultPolicy } from '../../controller/model/pq.js';
import { CAPABILITIES, proxyLocation, tlsSecret } from '../../controller/model/testing.js';
import type { Model, Server, Upstream } from '../../controller/model/types.js';
import { ENDPOINTS_FILE, LUA_MODULE_FILE, endpointLines, render, type RenderSettings } from '../../controller/render/render.js';
import { inlined } from '../../controller/render/testing.js';
import { LUA_DIR } from '../../controller/project.js';
import { eventually, freePort, rootfs } from '../lib/env.js';
import { fixed, inRootfs, machine, quantile, row } from './lib.js';

const SIZES = [1000, 10_000];
const ROUNDS = Number(process.env.QUBESEC_BENCH_ROUNDS ?? 3);

/** Hosts as the project renders them: 2 Services, 4 locations each, one endpoint per Service. */
function projectShaped(hosts: number, extraPath = false): Model {
  const checked = checkTlsSecret(tlsSecret('default', 'ecdsa'), new Date());
  if ('error' in checked) throw new Error(checked.error);
  const servers: Server[] = [];
  const upstreams: Upstream[] = [];
  for (let i = 0; i < hosts; i++) {
    const ingress = { kind: 'Ingress', namespace: 'bench', name: `app-${i}` };
    const [web, api] = [`bench_web-${i}_80`, `bench_api-${i}_80`];
    for (const [name, service] of [[web, `web-${i}`], [api, `api-${i}`]] as const) {
      upstreams.push({ name, service: { namespace: 'bench', name: service, port: '80' }, endpoints: [{ address: '198.18.0.1', port: 8080 + (i % 1000) }] });
    }
    const locations = [proxyLocation('prefix', '/', web, ingress), proxyLocation('prefix', '/static', web, ingress), proxyLocation('prefix', '/api', api, ingress), proxyLocation('exact', '/healthz', api, ingress)];
    if (extraPath && i === 0) locations.push(proxyLocation('exact', '/changed', api, ingress));
    servers.push({ host: `app-${i}.bench.qubesec.test`, locations });
  }
  return { servers, upstreams, defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES), defaultCertificates: [checked.pair] };
}

/**
 * The same configuration as QubeSec rendered it before one upstream served all Services: an upstream block per
 * upstream of the model, which each location names in its route() call and proxy_pass.
 */
function withUpstreamPerService(config: string, model: Model): string {
  const blocks = model.upstreams.map((u) => `
    upstream ${u.name} {
        server 0.0.0.1;
        balancer_by_lua_block {
            require("qubesec").balance("${u.name}")
        }
        keepalive 32;
    }
`).join('');
  const perLocation = config.replace(
    /\n {12}set \$qubesec_upstreams "(\S+)";\n( {12}access_by_lua_block \{\n {16}require\("qubesec"\)\.route\(503)\)\n( {12}\})\n {12}proxy_pass http:\/\/qubesec;/g,
    (_all, name: string, call: string, close: string) => `\n${call}, "${name}")\n${close}\n            proxy_pass http://${name};`,
  );
  const replaced = (perLocation.match(/proxy_pass http:\/\/qubesec;/g) ?? []).length;
  // The default server's fallback location (404) is the only one left on the shared upstream.
  if (replaced > 1) throw new Error(`${replaced} locations kept the shared upstream: the template changed, this benchmark must follow it`);
  return perLocation.replace(/(\n {4}upstream qubesec \{)/, `${blocks}$1`);
}

interface Bench {
  dir: string;
  inside: string;
  settings: RenderSettings;
}

async function prepare(): Promise<Bench> {
  const inside = `/tmp/qubesec-bench-reload-${randomBytes(4).toString('hex')}`;
  const dir = join(rootfs(), inside);
  for (const sub of ['certs', 'lua', 'tmp', 'sockets', 'servers']) await mkdir(join(dir, sub), { recursive: true });
  const runtime = { root: rootfs(), nginxBinary: 'nginx', opensslBinary: 'openssl' };
  await execa('cp', [join(LUA_DIR, LUA_MODULE_FILE), join(dir, 'lua', LUA_MODULE_FILE)]);
  const settings: RenderSettings = {
    generation: '', bindAddress: '127.0.0.1', httpPort: await freePort(), httpsPort: await freePort(), httpsRedirectPort: 443,
    statusPort: await freePort(), handshakeLogPort: await freePort(), workerProcesses: 1, workerConnections: 1024, modules: defaultModules(runtime),
    paths: { pid: `${inside}/nginx.pid`, errorLog: 'stderr', accessLog: `${inside}/access.log`, temp: `${inside}/tmp`, certificates: `${inside}/certs`, sockets: `${inside}/sockets`, lua: `${inside}/lua`, servers: `${inside}/servers` },
  };
  return { dir, inside, settings };
}

/**
 * Renders `model` as generation `generation` into `name` (and its server blocks, certificates and endpoints). With
 * `inline`, the server blocks go into it instead of being included from their files, as QubeSec rendered it before,
 * and `inline` then changes the text.
 */
async function writeConfig(bench: Bench, model: Model, generation: string, name: string, inline?: (config: string) => string): Promise<string> {
  const rendered = render(model, { ...bench.settings, generation });
  for (const [file, content] of rendered.certificateFiles) await writeFile(join(bench.dir, 'certs', file), content, { mode: 0o600 });
  for (const [file, content] of rendered.serverFiles) await writeFile(join(bench.dir, 'servers', file), content);
  await writeFile(join(bench.dir, 'lua', ENDPOINTS_FILE), `${[...endpointLines(model).values()].join('\n')}\n`);
  await writeFile(join(bench.dir, name), inline ? inline(inlined(rendered)) : rendered.config);
  return `${bench.inside}/${name}`;
}

/** Blocks in nginx.conf, nothing else changed. */
const INLINE = (config: string) => config;

async function nginxTest(config: string): Promise<number> {
  const start = performance.now();
  const r = await inRootfs(['nginx', '-t', '-q', '-c', config], { timeout: 300_000 });
  if (r.exitCode !== 0) throw new Error(`nginx -t ${config} refused:\n${r.stderr}`);
  return performance.now() - start;
}

const generationOf = (bench: Bench) => fetch(`http://127.0.0.1:${bench.settings.statusPort}/qubesec/generation`, { headers: { connection: 'close' } }).then((r) => r.text(), () => '');

const median = (values: number[]) => quantile(values, 0.5);

async function main(): Promise<void> {
  console.log(await machine());
  console.log(`${ROUNDS} rounds per figure, the variants taking turns; medians in ms`);
  const bench = await prepare();
  let master: ResultPromise | undefined;
  try {
    const reads: [string, string, string, string][] = [];
    const reloads: [string, string, string, string][] = [];
    for (const hosts of SIZES) {
      const model = projectShaped(hosts);
      const included = await writeConfig(bench, model, 'included', 'included.conf');
      const shared = await writeConfig(bench, model, 'shared', 'shared.conf', INLINE);
      const perService = await writeConfig(bench, model, 'perservice', 'per-service.conf', (c) => withUpstreamPerService(c, model));
      const read = { included: [] as number[], shared: [] as number[], perService: [] as number[] };
      for (let i = 0; i < ROUNDS; i++) {
        read.perService.push(await nginxTest(perService));
        read.shared.push(await nginxTest(shared));
        read.included.push(await nginxTest(included));
      }
      reads.push([`${hosts} hosts`, fixed(median(read.perService)), fixed(median(read.shared)), fixed(median(read.included))]);

      // Reloads of the shared configuration: two generations (one location apart) in turn, one nginx.conf.
      const generations = [['a', projectShaped(hosts)], ['b', projectShaped(hosts, true)]] as const;
      const conf = await writeConfig(bench, generations[0][1], 'a', 'nginx.conf');
      master = execa('chroot', [rootfs(), 'nginx', '-c', conf, '-g', 'daemon off;'], { reject: false, stdin: 'ignore', stderr: 'ignore', detached: true, cleanup: true });
      await eventually(async () => ((await generationOf(bench)) === 'a' || undefined), 300_000, 'the benchmark NGINX answering');
      const reload = { included: [] as number[], plain: [] as number[], tested: [] as number[] };
      let turn = 1;
      for (let i = 0; i < ROUNDS; i++) {
        for (const variant of ['included', 'plain', 'tested'] as const) {
          const tested = variant === 'tested';
          const [generation, next] = generations[turn++ % 2]!;
          await writeConfig(bench, next, generation, 'nginx.conf', variant === 'included' ? undefined : INLINE);
          const start = performance.now();
          if (tested) await nginxTest(conf);
          process.kill(master.pid!, 'SIGHUP');
          // Confirmed as the applier does: only new workers answer (old ones stop accepting about 100 ms later).
          let steadySince: number | undefined;
          for (;;) {
            if ((await generationOf(bench)) !== generation) steadySince = undefined;
            else if (steadySince === undefined) steadySince = performance.now();
            else if (performance.now() - steadySince >= 150) break;
            await new Promise((r) => setTimeout(r, 10));
          }
          reload[variant].push(steadySince! - start);
        }
      }
      master.kill('SIGQUIT');
      await master;
      master = undefined;
      reloads.push([`${hosts} hosts`, fixed(median(reload.tested)), fixed(median(reload.plain)), fixed(median(reload.included))]);
    }
    console.log('\nconfiguration read (nginx -t), project-shaped hosts, plain HTTP');
    row('', 'per Service', 'one upstream', 'blocks included', 'ratio included / inline');
    for (const [label, perService, inline, included] of reads) row(label, perService, inline, included, fixed(Number(included) / Number(inline), 2));
    console.log('\nreload: SIGHUP until only new workers answer (with the separate nginx -t before it, the old way; blocks in nginx.conf, or included)');
    row('', 'nginx -t + HUP', 'HUP alone', 'HUP, included', 'ratio included / inline');
    for (const [label, tested, plain, included] of reloads) row(label, tested, plain, included, fixed(Number(included) / Number(plain), 2));
  } finally {
    if (master?.pid) {
      try {
        process.kill(-master.pid, 'SIGKILL');
      } catch {
        // ESRCH: nothing of the group is left.
      }
    }
    await rm(bench.dir, { recursive: true, force: true });
  }
}

await main();
