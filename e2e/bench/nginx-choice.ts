// Benchmark: which NGINX the data plane should run, and how its certificates should be configured. Raw NGINX from
// each candidate rootfs (e2e/bench/nginx-candidates.sh: Debian 13's NGINX 1.26, forky's 1.30 on OpenSSL 3.6, forky's
// 1.30 on Debian 13's OpenSSL 3.5) with generated configurations of N hosts, each with an ML-DSA-65 and an ECDSA P-256
// certificate, in two designs:
//   per-host:   today's, a TLS server block per host holding its certificates;
//   by-variable: one TLS server per listener naming its certificates by variables from a map on $ssl_server_name
//               (plus ssl_certificate_cache where the NGINX has it), host servers without ssl_* directives.
// Measured, candidates and designs taking turns in one run (medians): `nginx -t`, SIGHUP -> first answer over
// X25519MLKEM768 + ML-DSA-65 that comes from the new configuration, full and resumed handshakes/s for a PQ client
// (X25519MLKEM768, ML-DSA only) and a legacy one (X25519, ECDSA only) with NGINX's CPU per handshake. Then the ML-DSA
// key's encoding: the seed-only PKCS#8 the PKI writes against the same key with its expanded form; and a new host's
// handshakes on the catch-all path (the Lua hook) against a known host's. Prints figures
// and ratios; asserts nothing on numbers, but stops if a handshake is not the one asked for.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { execa, type ResultPromise } from 'execa';
import { selfSignedPair } from '../../controller/pki/selfsigned.js';
import { LUA_DIR } from '../../controller/project.js';
import { freePort } from '../lib/env.js';
import { SECONDS, fixed, groupCpuSeconds, h2load, killGroup, opensslSpeed, quantile, row, startGroup, type LoadResult } from './lib.js';

const HOSTS = (process.env.QUBESEC_BENCH_HOSTS ?? '1000').split(',').filter(Boolean).map(Number);
/** Rounds of the configuration-time figures (nginx -t, SIGHUP -> first PQ answer) per candidate and design. */
const ROUNDS = Number(process.env.QUBESEC_BENCH_ROUNDS ?? 5);
const FULL_BATCH = 100;
const RESUMING_CLIENTS = 32;
/** Hosts the handshakes go to, spread over the map; each batch takes the next. */
const TARGET_HOSTS = 8;

type Design = 'per-host' | 'by-variable';
const DESIGNS: Design[] = ['per-host', 'by-variable'];
interface Client { name: string; file: string; groups: string; signatureAlgorithms: string; signatureType: string }
const PQ: Client = { name: 'PQ (X25519MLKEM768 + ML-DSA-65)', file: 'pq.cnf', groups: 'X25519MLKEM768', signatureAlgorithms: 'mldsa65', signatureType: 'mldsa65' };
const LEGACY: Client = { name: 'legacy (X25519 + ECDSA)', file: 'legacy.cnf', groups: 'X25519', signatureAlgorithms: 'ecdsa_secp256r1_sha256', signatureType: 'ecdsa_secp256r1_sha256' };
/** ECDSA over the same hybrid group as PQ: the difference to PQ is the signature alone. */
const ECDSA_HYBRID: Client = { name: 'ECDSA over X25519MLKEM768', file: 'ecdsa-hybrid.cnf', groups: 'X25519MLKEM768', signatureAlgorithms: 'ecdsa_secp256r1_sha256', signatureType: 'ecdsa_secp256r1_sha256' };

interface Candidate { label: string; root: string; nginx: string; openssl: string; certificateCache: boolean }

const hostName = (i: number) => `h${i}.bench.qubesec.test`;

/** The candidates e2e/bench/nginx-candidates.sh builds (once, cached): one "label<TAB>rootfs" line each. */
async function candidates(): Promise<Candidate[]> {
  const script = join(import.meta.dirname, '..', '..', '..', 'e2e', 'bench', 'nginx-candidates.sh');
  const lines = (await execa('bash', [script], { stderr: 'inherit' })).stdout.split('\n').filter(Boolean);
  const found: Candidate[] = [];
  for (const line of lines) {
    const [label, root] = line.split('\t') as [string, string];
    const nginx = (await execa('chroot', [root, 'nginx', '-v'])).stderr.replace('nginx version: nginx/', '').trim();
    const openssl = (await execa('chroot', [root, 'openssl', 'version'])).stdout.split(' ')[1]!;
    const [major, minor, patch] = nginx.split('.').map(Number) as [number, number, number];
    found.push({ label, root, nginx, openssl, certificateCache: major * 10_000 + minor * 100 + patch >= 12_704 });
  }
  return found;
}

interface Pair { file: string; pem: string }
interface HostFiles { mldsa: Pair; ecdsa: Pair }

/** One PEM (key, then certificate) per pair, as the controller writes them; `n` hosts and the default pair. */
async function makeCertificates(n: number): Promise<{ hosts: HostFiles[]; fallback: HostFiles }> {
  const pair = async (kind: 'ml-dsa-65' | 'ecdsa-p256', name: string, tag: string): Promise<Pair> => {
    const made = await selfSignedPair(kind, name, [name], 2);
    return { file: `${tag}-${kind}.pem`, pem: `${made.keyPem.trim()}\n${made.certificatePem.trim()}\n` };
  };
  const hosts: HostFiles[] = [];
  for (let i = 0; i < n; i++) hosts.push({ mldsa: await pair('ml-dsa-65', hostName(i), `h${i}`), ecdsa: await pair('ecdsa-p256', hostName(i), `h${i}`) });
  return { hosts, fallback: { mldsa: await pair('ml-dsa-65', 'ingress.local', 'default'), ecdsa: await pair('ecdsa-p256', 'ingress.local', 'default') } };
}

/** nginx.conf of one design; `generation` is what every host answers, so a reload is seen to have taken. */
function configuration(design: Design, candidate: Candidate, dir: string, port: number, n: number, generation: string): string {
  const cert = (file: string) => [`ssl_certificate ${dir}/${file};`, `ssl_certificate_key ${dir}/${file};`];
  const lines = [
    'worker_processes 2;', `pid ${dir}/nginx-${design}.pid;`, `error_log ${dir}/error-${design}.log warn;`,
    'events { worker_connections 4096; }',
    'http {',
    `  access_log ${dir}/access-${design}.log combined;`,
    'server_names_hash_bucket_size 128;', `server_names_hash_max_size ${Math.max(512, 2 * n)};`, 'map_hash_bucket_size 128;',
    `map_hash_max_size ${Math.max(2048, 2 * n)};`,
    'ssl_protocols TLSv1.2 TLSv1.3;', 'ssl_ecdh_curve X25519MLKEM768:X25519;', 'ssl_prefer_server_ciphers off;',
    'ssl_session_cache shared:bench:10m;', 'ssl_session_tickets on;',
  ];
  if (design === 'per-host') {
    lines.push(`server { listen 127.0.0.1:${port} ssl default_server; server_name _;`, ...cert('default-ml-dsa-65.pem'), ...cert('default-ecdsa-p256.pem'), 'return 404; }');
    for (let i = 0; i < n; i++) {
      lines.push(`server { listen 127.0.0.1:${port} ssl; server_name ${hostName(i)};`, ...cert(`h${i}-ml-dsa-65.pem`), ...cert(`h${i}-ecdsa-p256.pem`),
        `location / { return 200 "${generation}"; } }`);
    }
  } else {
    // The map holds only names the controller knows; an unknown one gets the default pair without a file lookup.
    for (const kind of ['ml-dsa-65', 'ecdsa-p256']) {
      lines.push(`map $ssl_server_name $bench_${kind.replace(/-/g, '_')} {`, '  hostnames;');
      for (let i = 0; i < n; i++) lines.push(`  ${hostName(i)} ${dir}/h${i}-${kind}.pem;`);
      lines.push(`  default ${dir}/default-${kind}.pem;`, '}');
    }
    if (candidate.certificateCache) lines.push(`ssl_certificate_cache max=${4 * n + 16} inactive=1h valid=1h;`);
    lines.push(`server { listen 127.0.0.1:${port} ssl default_server; server_name _;`,
      'ssl_certificate $bench_ml_dsa_65;', 'ssl_certificate_key $bench_ml_dsa_65;', 'ssl_certificate $bench_ecdsa_p256;', 'ssl_certificate_key $bench_ecdsa_p256;',
      'return 404; }');
    for (let i = 0; i < n; i++) lines.push(`server { listen 127.0.0.1:${port} ssl; server_name ${hostName(i)}; location / { return 200 "${generation}"; } }`);
  }
  lines.push('}', '');
  return lines.join('\n');
}

/** One NGINX master of one candidate, with its own configuration in the run's folder of that rootfs, and port. */
class Server {
  readonly dir: string;
  readonly conf: string;
  private master?: ResultPromise;
  private generation = 0;
  port = 0;

  /**
   * `configure` renders the configuration, which answers `generation` on host 0 (or on any name: its default
   * server); the reload waits for that answer over X25519MLKEM768 with `probeSignatures`.
   */
  constructor(readonly candidate: Candidate, readonly name: string, id: string,
    private readonly configure: (dir: string, port: number, generation: string) => string, private readonly probeSignatures = 'mldsa65') {
    this.dir = `/tmp/qubesec-nginx-choice-${id}`;
    this.conf = `${this.dir}/nginx-${name}.conf`;
  }

  get label(): string {
    return `${this.candidate.label}, ${this.name}`;
  }

  outside(name: string): string {
    return join(this.candidate.root, this.dir, name);
  }

  async write(): Promise<void> {
    this.generation++;
    await writeFile(this.outside(`nginx-${this.name}.conf`), this.configure(this.dir, this.port, `generation ${this.generation}`));
  }

  /** Milliseconds `nginx -t` takes on the current configuration. */
  async test(): Promise<number> {
    const start = performance.now();
    const r = await execa('chroot', [this.candidate.root, 'nginx', '-q', '-t', '-c', this.conf], { reject: false });
    if (r.exitCode !== 0) throw new Error(`${this.label}: nginx -t refused the configuration:\n${r.stderr}`);
    return performance.now() - start;
  }

  async start(): Promise<void> {
    this.master = startGroup('chroot', [this.candidate.root, 'nginx', '-c', this.conf, '-g', 'daemon off;']);
    await this.answered(`generation ${this.generation}`, 120_000);
  }

  /** Milliseconds from SIGHUP (with a new generation written) to the first PQ answer of that generation. */
  async reload(): Promise<number> {
    await this.write();
    const expected = `generation ${this.generation}`;
    const start = performance.now();
    process.kill(await this.pid(), 'SIGHUP');
    await this.answered(expected, 120_000);
    return performance.now() - start;
  }

  async pid(): Promise<number> {
    return Number((await readFile(this.outside(`nginx-${this.name}.pid`), 'utf8')).trim());
  }

  /** Polls host 0 over X25519MLKEM768 every 5 ms until it answers `expected`. */
  private async answered(expected: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      last = await pqGet(this.port, hostName(0), this.probeSignatures).catch((err: Error) => err.message);
      if (last === expected) return;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`${this.label}: no "${expected}" over PQ TLS within ${timeoutMs} ms (last: ${last})`);
  }

  async cpu(): Promise<number> {
    return groupCpuSeconds(await this.pid());
  }

  async stop(): Promise<void> {
    if (!this.master) return;
    process.kill(await this.pid().catch(() => this.master!.pid!), 'SIGQUIT');
    const timer = setTimeout(() => killGroup(this.master!.pid!), 15_000);
    await this.master;
    clearTimeout(timer);
    killGroup(this.master.pid!);
    this.master = undefined;
  }
}

/** One GET over X25519MLKEM768 with only `sigalgs` offered (Node's OpenSSL 3.5); resolves with the body. */
function pqGet(port: number, host: string, sigalgs: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: host, ecdhCurve: 'X25519MLKEM768', sigalgs, rejectUnauthorized: false }, () => {
      socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (reply += d));
    socket.on('end', () => resolve(reply.split('\r\n\r\n')[1] ?? ''));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('timed out')));
  });
}

/** The client's OpenSSL configuration: exactly its groups and signature algorithms (h2load has no option for the latter). */
function clientConfig(client: Client): string {
  return ['openssl_conf = qubesec', '[qubesec]', 'ssl_conf = ssl', '[ssl]', 'system_default = defaults', '[defaults]',
    `Groups = ${client.groups}`, `SignatureAlgorithms = ${client.signatureAlgorithms}`, ''].join('\n');
}

/** The client's tools run from the first candidate's rootfs (Debian 13: h2load and openssl on OpenSSL 3.5). */
class Clients {
  constructor(private readonly root: string, private readonly dir: string) {}

  async prepare(): Promise<void> {
    await mkdir(join(this.root, this.dir), { recursive: true });
    for (const c of [PQ, LEGACY, ECDSA_HYBRID]) await writeFile(join(this.root, this.dir, c.file), clientConfig(c));
  }

  env(client: Client) {
    return { OPENSSL_CONF: `${this.dir}/${client.file}` };
  }

  /** One s_client handshake: throws unless it negotiated the client's group and signature type. */
  async verify(server: Server, client: Client, host: string): Promise<void> {
    const r = await execa('chroot', [this.root, 'openssl', 's_client', '-brief', '-connect', `127.0.0.1:${server.port}`, '-servername', host],
      { reject: false, input: '', env: this.env(client), timeout: 20_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(out)?.[1]?.trim() ?? '';
    const group = field('Negotiated TLS1.3 group') || field('Peer Temp Key').split(',')[0]!;
    if (group !== client.groups || field('Signature type') !== client.signatureType) {
      throw new Error(`${server.label}, ${host}: ${client.name} got group "${group}", signature "${field('Signature type')}":\n${out}`);
    }
  }

  h2load(server: Server, client: Client, host: string, args: string[]): Promise<LoadResult> {
    return h2load({ inside: (name) => `${this.dir}/${name}`, outside: (name) => join(this.root, this.dir, name) },
      ['--h1', '-H', 'Connection: close', '-t', '2', ...args, '--groups', client.groups, '--sni', host, '--connect-to', `127.0.0.1:${server.port}`, `https://${host}/`],
      false, { root: this.root, env: this.env(client) });
  }
}

interface Rate { done: number; seconds: number; cpu: number }
const rate = () => ({ done: 0, seconds: 0, cpu: 0 });

/** Full (batches of new clients) or resumed (32 clients reconnecting with tickets) handshakes, servers in turns. */
async function handshakes(servers: Server[], clients: Clients, client: Client, resumed: boolean, n: number): Promise<Map<Server, Rate>> {
  const rates = new Map(servers.map((s) => [s, rate()]));
  let turn = 0;
  const args = resumed ? ['-c', String(RESUMING_CLIENTS), '-D', '1', '--warm-up-time', '300ms'] : ['-c', String(FULL_BATCH), '-n', String(FULL_BATCH)];
  while ([...rates.values()].some((r) => r.seconds < SECONDS)) {
    const host = hostName(Math.floor((turn++ % TARGET_HOSTS) * (n / TARGET_HOSTS)));
    for (const server of servers) {
      const before = await server.cpu();
      const r = await clients.h2load(server, client, host, args);
      const used = (await server.cpu()) - before;
      const figure = rates.get(server)!;
      figure.done += r.done;
      figure.seconds += r.seconds;
      figure.cpu += used;
    }
  }
  return rates;
}

function median(values: number[]): number {
  return quantile(values, 0.5);
}

async function measureSize(list: Candidate[], n: number, certificates: Awaited<ReturnType<typeof makeCertificates>>): Promise<void> {
  const id = randomBytes(4).toString('hex');
  const servers = list.flatMap((c) => DESIGNS.map((d) => new Server(c, d, id, (dir, port, generation) => configuration(d, c, dir, port, n, generation))));
  const clients = new Clients(list[0]!.root, `/tmp/qubesec-nginx-choice-clients-${id}`);
  try {
    for (const c of list) {
      // Readable by the workers (nobody): with certificates by variable they, not the root master, load the keys.
      const dir = join(c.root, `/tmp/qubesec-nginx-choice-${id}`);
      await mkdir(dir, { recursive: true, mode: 0o755 });
      for (const h of [...certificates.hosts, certificates.fallback]) for (const p of [h.mldsa, h.ecdsa]) await writeFile(join(dir, p.file), p.pem, { mode: 0o644 });
    }
    await clients.prepare();
    for (const s of servers) {
      s.port = await freePort();
      await s.write();
    }

    // nginx -t: rounds, every server in each.
    const tests = new Map(servers.map((s) => [s, [] as number[]]));
    for (let round = 0; round < ROUNDS; round++) for (const s of servers) tests.get(s)!.push(await s.test());

    for (const s of servers) await s.start();
    for (const s of servers) {
      for (const client of [PQ, LEGACY]) {
        await clients.verify(s, client, hostName(0));
        await clients.verify(s, client, hostName(n - 1));
      }
    }
    const reloads = new Map(servers.map((s) => [s, [] as number[]]));
    for (let round = 0; round < ROUNDS; round++) for (const s of servers) reloads.get(s)!.push(await s.reload());

    console.log(`\n${n} hosts, each an ML-DSA-65 + ECDSA P-256 pair: configuration read (medians of ${ROUNDS})`);
    row('candidate, design', 'nginx -t ms', 'HUP->PQ ms', 'vs per-host');
    for (const s of servers) {
      const same = servers.find((o) => o.candidate === s.candidate && o.name === 'per-host')!;
      row(`  ${s.label}`, fixed(median(tests.get(s)!)), fixed(median(reloads.get(s)!)),
        `${fixed(median(tests.get(s)!) / median(tests.get(same)!), 2)} / ${fixed(median(reloads.get(s)!) / median(reloads.get(same)!), 2)}`);
    }

    const base = servers[0]!;
    for (const resumed of [false, true]) {
      for (const client of [PQ, LEGACY]) {
        const rates = await handshakes(servers, clients, client, resumed, n);
        const b = rates.get(base)!;
        console.log(`\n${n} hosts, ${resumed ? 'resumed' : 'full'} handshakes, ${client.name} (h2load, ${resumed ? `${RESUMING_CLIENTS} clients reconnecting with tickets` : `batches of ${FULL_BATCH} new clients`})`);
        row('candidate, design', 'handshakes/s', 'per NGINX s', 'NGINX ms', 'vs first /s', 'vs first CPU');
        for (const s of servers) {
          const r = rates.get(s)!;
          row(`  ${s.label}`, fixed(r.done / r.seconds, 1), fixed(r.done / r.cpu), fixed((r.cpu * 1000) / r.done, 3),
            fixed(r.done / r.seconds / (b.done / b.seconds), 2), fixed(r.done / r.cpu / (b.done / b.cpu), 2));
        }
      }
    }
    console.log(`  (vs first: against ${base.label}; per NGINX s: handshakes per CPU-second of its master and workers;`);
    console.log('   resumed CPU includes each client\'s first, full handshake in the warm-up)');
  } finally {
    for (const s of servers) await s.stop().catch((err: Error) => console.error(`bench cleanup: ${err.message}`));
    for (const c of list) await rm(join(c.root, `/tmp/qubesec-nginx-choice-${id}`), { recursive: true, force: true });
    await rm(join(list[0]!.root, `/tmp/qubesec-nginx-choice-clients-${id}`), { recursive: true, force: true });
  }
}

/**
 * What an ML-DSA-65 signature costs NGINX against `openssl speed` (QUBESEC_ROOTFS's, the dev rootfs): one host per
 * NGINX, one worker, no log, no session reuse, `return 200`. Its key as the PKI writes it (Node's seed-only PKCS#8, 54
 * bytes, which OpenSSL expands once when it loads it), the same key with its expanded form too (seed-priv, from
 * `openssl pkey -provparam ml-dsa.output_formats=seed-priv`), and an ECDSA P-256 host, all over X25519MLKEM768 in
 * turns: ML-DSA minus ECDSA in NGINX CPU per handshake against 1/sign of each in `openssl speed`.
 */
async function keyEncodings(candidate: Candidate): Promise<void> {
  const id = randomBytes(4).toString('hex');
  const dir = `/tmp/qubesec-nginx-choice-${id}`;
  const outside = (name: string) => join(candidate.root, dir, name);
  const clients = new Clients(candidate.root, `/tmp/qubesec-nginx-choice-clients-${id}`);
  const configure = (name: string) => (d: string, port: number, generation: string) => [
    'worker_processes 1;', `pid ${d}/nginx-${name}.pid;`, `error_log ${d}/error-${name}.log warn;`, 'events { }',
    'http { access_log off; ssl_session_tickets off; ssl_session_cache off; ssl_ecdh_curve X25519MLKEM768;',
    `server { listen 127.0.0.1:${port} ssl; ssl_certificate ${d}/${name}.pem; ssl_certificate_key ${d}/${name}.pem; return 200 "${generation}"; } }`, '',
  ].join('\n');
  const servers = [
    { server: new Server(candidate, 'ml-dsa-65-seed', id, configure('ml-dsa-65-seed')), client: PQ },
    { server: new Server(candidate, 'ml-dsa-65-seed-priv', id, configure('ml-dsa-65-seed-priv')), client: PQ },
    { server: new Server(candidate, 'ecdsa-p256', id, configure('ecdsa-p256'), 'ecdsa_secp256r1_sha256'), client: ECDSA_HYBRID },
  ];
  try {
    await mkdir(outside(''), { recursive: true, mode: 0o755 });
    await clients.prepare();
    const mldsa = await selfSignedPair('ml-dsa-65', hostName(0), [hostName(0)], 2);
    const ecdsa = await selfSignedPair('ecdsa-p256', hostName(0), [hostName(0)], 2);
    await writeFile(outside('seed.key'), mldsa.keyPem);
    const expanded = await execa('chroot', [candidate.root, 'openssl', 'pkey', '-in', `${dir}/seed.key`, '-provparam', 'ml-dsa.output_formats=seed-priv']);
    const der = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64').length;
    console.log(`\nML-DSA-65 key encodings: PKCS#8 of ${der(mldsa.keyPem)} bytes as the PKI writes it (seed only), ${der(expanded.stdout)} bytes with the expanded key (seed-priv)`);
    for (const [name, key, certificate] of [['ml-dsa-65-seed', mldsa.keyPem, mldsa.certificatePem], ['ml-dsa-65-seed-priv', expanded.stdout, mldsa.certificatePem], ['ecdsa-p256', ecdsa.keyPem, ecdsa.certificatePem]]) {
      await writeFile(outside(`${name}.pem`), `${key!.trim()}\n${certificate!.trim()}\n`, { mode: 0o644 });
    }
    for (const { server, client } of servers) {
      server.port = await freePort();
      await server.write();
      await server.start();
      await clients.verify(server, client, hostName(0));
    }
    const rates = new Map(servers.map((s) => [s.server, rate()]));
    while ([...rates.values()].some((r) => r.seconds < SECONDS)) {
      for (const { server, client } of servers) {
        const before = await server.cpu();
        const r = await clients.h2load(server, client, hostName(0), ['-c', '20', '-n', '300']);
        const figure = rates.get(server)!;
        figure.cpu += (await server.cpu()) - before;
        figure.done += r.done;
        figure.seconds += r.seconds;
      }
    }
    const speed = await opensslSpeed(['ML-DSA-65', 'ecdsap256'], 1, 3);
    row('host key', 'handshakes/s', 'NGINX ms');
    for (const { server } of servers) row(`  ${server.name}`, fixed(rates.get(server)!.done / rates.get(server)!.seconds, 1), fixed((rates.get(server)!.cpu * 1000) / rates.get(server)!.done, 3));
    const ms = (s: Server) => (rates.get(s)!.cpu * 1000) / rates.get(s)!.done;
    const [seed, seedPriv, ec] = servers.map((s) => s.server) as [Server, Server, Server];
    const predicted = 1000 / speed['ML-DSA-65']!.sign! - 1000 / speed.ecdsap256!.sign!;
    console.log(`  ML-DSA-65 - ECDSA per handshake in NGINX: ${fixed(ms(seed) - ms(ec), 3)} ms (seed only), ${fixed(ms(seedPriv) - ms(ec), 3)} ms (seed-priv);`);
    console.log(`  openssl speed: 1/sign ML-DSA-65 - ECDSA P-256 = ${fixed(predicted, 3)} ms (${fixed(speed['ML-DSA-65']!.sign!)} and ${fixed(speed.ecdsap256!.sign!)} signs per CPU-second);`);
    console.log(`  seed-priv / seed-only NGINX ms: ${fixed(ms(seedPriv) / ms(seed), 3)}`);
  } finally {
    for (const { server } of servers) await server.stop().catch((err: Error) => console.error(`bench cleanup: ${err.message}`));
    await rm(outside(''), { recursive: true, force: true });
    await rm(join(candidate.root, `/tmp/qubesec-nginx-choice-clients-${id}`), { recursive: true, force: true });
  }
}

/**
 * The configuration of a host served before its reload (docs/architecture.md#new-hosts-without-a-reload): the maps
 * know no host, and the catch-all server (any name, by its regular expression) takes the handshake, whose certificates
 * the project's Lua hook sets from the new hosts' table, as the controller's line gives them.
 */
function newHostConfiguration(certificates: { hosts: HostFiles[]; fallback: HostFiles }, dir: string, port: number, generation: string): string {
  const files = (h: HostFiles) => `${dir}/${h.mldsa.file},${dir}/${h.ecdsa.file}`;
  const variables = ['ssl_certificate $bench_ml_dsa_65;', 'ssl_certificate_key $bench_ml_dsa_65;', 'ssl_certificate $bench_ecdsa_p256;', 'ssl_certificate_key $bench_ecdsa_p256;'];
  return [
    'load_module /usr/lib/nginx/modules/ndk_http_module.so;', 'load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;',
    'worker_processes 2;', `pid ${dir}/nginx-new-host.pid;`, `error_log ${dir}/error-new-host.log warn;`, 'events { worker_connections 4096; }',
    'http {', `  access_log ${dir}/access-new-host.log combined;`,
    'ssl_protocols TLSv1.2 TLSv1.3;', 'ssl_ecdh_curve X25519MLKEM768:X25519;', 'ssl_prefer_server_ciphers off;',
    'ssl_session_cache shared:bench:10m;', 'ssl_session_tickets on;',
    `lua_package_path "${dir}/?.lua;;";`, 'lua_shared_dict qubesec_endpoints 1m;', 'lua_shared_dict qubesec_new_hosts 1m;',
    // "<host> <certificate files> <redirect port or -> <match> <path> <upstreams>": the line the controller posts.
    `init_by_lua_block { ngx.shared.qubesec_new_hosts:set("${hostName(0)}", "${files(certificates.hosts[0]!)} - prefix / bench") }`,
    ...['ml-dsa-65', 'ecdsa-p256'].map((kind) => `map $ssl_server_name $bench_${kind.replace(/-/g, '_')} { hostnames; default ${dir}/default-${kind}.pem; }`),
    `server { listen 127.0.0.1:${port} ssl default_server; server_name _;`, ...variables, 'return 404; }',
    `server { listen 127.0.0.1:${port} ssl; server_name "~^";`, ...variables,
    `ssl_certificate_by_lua_block { require("qubesec").certificate("${files(certificates.fallback)}") }`,
    `location / { return 200 "${generation}"; } }`,
    '}', '',
  ].join('\n');
}

/** Handshakes of a host on the catch-all path (the Lua hook) against the same host known to the maps, in turns. */
async function newHostHandshakes(candidate: Candidate): Promise<void> {
  const id = randomBytes(4).toString('hex');
  const certificates = await makeCertificates(1);
  // Named as their configurations name their pid files.
  const servers = [
    new Server(candidate, 'by-variable', id, (dir, port, generation) => configuration('by-variable', candidate, dir, port, 1, generation)),
    new Server(candidate, 'new-host', id, (dir, port, generation) => newHostConfiguration(certificates, dir, port, generation)),
  ];
  const labels: Record<string, string> = { 'by-variable': 'known host (the maps)', 'new-host': 'new host (the Lua hook)' };
  const clients = new Clients(candidate.root, `/tmp/qubesec-nginx-choice-clients-${id}`);
  const dir = join(candidate.root, `/tmp/qubesec-nginx-choice-${id}`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    for (const h of [...certificates.hosts, certificates.fallback]) for (const p of [h.mldsa, h.ecdsa]) await writeFile(join(dir, p.file), p.pem, { mode: 0o644 });
    await writeFile(join(dir, 'qubesec.lua'), await readFile(join(LUA_DIR, 'qubesec.lua')));
    await clients.prepare();
    for (const s of servers) {
      s.port = await freePort();
      await s.write();
      await s.start();
      for (const client of [PQ, LEGACY]) await clients.verify(s, client, hostName(0));
    }
    for (const resumed of [false, true]) {
      for (const client of [PQ, LEGACY]) {
        const rates = await handshakes(servers, clients, client, resumed, 1);
        const base = rates.get(servers[0]!)!;
        console.log(`\nOne host, ${resumed ? 'resumed' : 'full'} handshakes, ${client.name}, ${candidate.label}`);
        row('host', 'handshakes/s', 'per NGINX s', 'NGINX ms', 'vs known /s', 'vs known CPU');
        for (const s of servers) {
          const r = rates.get(s)!;
          row(`  ${labels[s.name]}`, fixed(r.done / r.seconds, 1), fixed(r.done / r.cpu), fixed((r.cpu * 1000) / r.done, 3),
            fixed(r.done / r.seconds / (base.done / base.seconds), 2), fixed(r.done / r.cpu / (base.done / base.cpu), 2));
        }
      }
    }
  } finally {
    for (const s of servers) await s.stop().catch((err: Error) => console.error(`bench cleanup: ${err.message}`));
    await rm(dir, { recursive: true, force: true });
    await rm(join(candidate.root, `/tmp/qubesec-nginx-choice-clients-${id}`), { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const list = await candidates();
  console.log(`machine: ${(await execa('nproc')).stdout} cores, ${SECONDS} s per handshake figure; client tools from ${list[0]!.label}`);
  for (const c of list) console.log(`  ${c.label}: nginx ${c.nginx}, OpenSSL ${c.openssl}${c.certificateCache ? ', ssl_certificate_cache' : ''} (${c.root})`);
  for (const n of HOSTS) await measureSize(list, n, await makeCertificates(n));
  // The chosen NGINX: the dev rootfs, nginx-candidates.sh's last line.
  await keyEncodings(list.at(-1)!);
  await newHostHandshakes(list.at(-1)!);
}

await main();
