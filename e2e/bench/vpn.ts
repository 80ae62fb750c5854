// Benchmark: strongSwan 6.1 (sid rootfs, OpenSSL 3.6, userspace ESP through kernel-libipsec) between two network
// namespaces: IKE SA setup time with X25519 + ML-KEM-768 next to X25519 alone (ratio), IKE SA rekeys per second with
// each, and ESP throughput through the tunnel (iperf3, TCP) next to the same veth path without IPsec. Times come from
// the initiating charon's own log (microsecond timestamps), so swanctl's process start is not counted. Prints figures
// and ratios; asserts nothing on numbers.
import { createInterface } from 'node:readline';
import { testCa } from '../../controller/vpn/testing.js';
import { startVpnLab, type VpnHost } from '../lib/vpn-hosts.js';

const SETUPS = Number(process.env.QUBESEC_BENCH_VPN_SETUPS ?? 40);
const REKEYS = Number(process.env.QUBESEC_BENCH_VPN_REKEYS ?? 40);
const SECONDS = Number(process.env.QUBESEC_BENCH_SECONDS ?? 5);
const A_LAN = '198.18.210.1';
const B_LAN = '198.18.220.1';

const PROPOSALS = {
  hybrid: { ike: 'aes256gcm16-prfsha384-x25519-ke1_mlkem768', esp: 'aes256gcm16-x25519-ke1_mlkem768' },
  classical: { ike: 'aes256gcm16-prfsha384-x25519', esp: 'aes256gcm16-x25519' },
};
type Mode = keyof typeof PROPOSALS;

function conf(me: VpnHost, peer: VpnHost, myLan: string, peerLan: string, mode: Mode): string {
  return `connections {
  bench {
    version = 2
    local_addrs = ${me.address}
    remote_addrs = ${peer.address}
    proposals = ${PROPOSALS[mode].ike}
    childless = force
    local {
      auth = pubkey
      certs = me.crt
      id = "CN=${me.name}"
    }
    remote {
      auth = pubkey
      id = "CN=${peer.name}"
    }
    children {
      net {
        local_ts = ${myLan}/32
        remote_ts = ${peerLan}/32
        esp_proposals = ${PROPOSALS[mode].esp}
      }
    }
  }
}
secrets {
  private-me {
    file = me.key
  }
}
`;
}

/** charon's log lines with their timestamps (seconds), as they come. */
class CharonLog {
  private readonly lines: { at: number; text: string }[] = [];
  private waiters: (() => void)[] = [];

  constructor(stream: NodeJS.ReadableStream) {
    createInterface({ input: stream }).on('line', (line) => {
      const m = /^(\d+\.\d+) (.*)$/.exec(line);
      if (!m) return;
      this.lines.push({ at: Number(m[1]), text: m[2]! });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  get length(): number {
    return this.lines.length;
  }

  /**
   * From index `from`, the IKE SA that charon logged as `outcome` ("IKE_SA bench[7] established" or "... rekeyed",
   * the rekey's new SA) and the line that began it ("initiating IKE_SA bench[7]"): matched by the SA's number, so
   * lines of an earlier SA that arrive late cannot be taken for it.
   */
  async span(from: number, outcome: 'established' | 'rekeyed'): Promise<{ start: { at: number }; done: { at: number } }> {
    const done = await this.next(from, new RegExp(`IKE_SA bench\\[\\d+\\] ${outcome} `));
    const id = /bench\[(\d+)\]/.exec(done.text)![1];
    const start = await this.next(from, new RegExp(`initiating IKE_SA bench\\[${id}\\]`));
    return { start, done };
  }

  /** Waits for a line after index `from` that matches; returns it. */
  async next(from: number, pattern: RegExp, timeoutMs = 10_000): Promise<{ at: number; text: string; index: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.lines.findIndex((l, i) => i >= from && pattern.test(l.text));
      if (index >= 0) return { ...this.lines[index]!, index };
      if (Date.now() > deadline) throw new Error(`charon never logged ${pattern}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function setups(a: VpnHost, b: VpnHost, log: CharonLog, mode: Mode): Promise<number[]> {
  for (const [me, peer, myLan, peerLan] of [[a, b, A_LAN, B_LAN], [b, a, B_LAN, A_LAN]] as const) {
    me.write('/etc/swanctl/swanctl.conf', conf(me, peer, myLan, peerLan, mode), 0o600);
    await me.run('swanctl', ['--load-conns']);
  }
  const times: number[] = [];
  for (let i = 0; i < SETUPS + 2; i++) {
    const from = log.length;
    await b.run('swanctl', ['--initiate', '--ike', 'bench']);
    const { start, done } = await log.span(from, 'established');
    // The first two warm up (caches, the peer's first lookups).
    if (i >= 2) times.push((done.at - start.at) * 1000);
    await b.run('swanctl', ['--terminate', '--ike', 'bench']);
  }
  return times;
}

async function rekeys(b: VpnHost, log: CharonLog): Promise<{ perSecond: number; medianMs: number }> {
  const initiated = log.length;
  await b.run('swanctl', ['--initiate', '--ike', 'bench']);
  await log.span(initiated, 'established');
  const times: number[] = [];
  for (let i = 0; i < REKEYS; i++) {
    const from = log.length;
    await b.run('swanctl', ['--rekey', '--ike', 'bench']);
    const { start, done } = await log.span(from, 'rekeyed');
    times.push((done.at - start.at) * 1000);
  }
  await b.run('swanctl', ['--terminate', '--ike', 'bench']);
  return { perSecond: 1000 / median(times), medianMs: median(times) };
}

async function iperf(a: VpnHost, b: VpnHost, target: string, bind: string): Promise<number> {
  const server = a.spawn('iperf3', ['-s', '-1', '-B', target]);
  await new Promise((r) => setTimeout(r, 500));
  const client = await b.run('iperf3', ['-c', target, '-B', bind, '-t', String(SECONDS), '-J']);
  await server;
  const report = JSON.parse(client.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return report.end.sum_received.bits_per_second / 1e6;
}

async function main(): Promise<void> {
  const lab = await startVpnLab(['a', 'b']);
  try {
    const a = lab.host('a');
    const b = lab.host('b');
    await a.run('ip', ['addr', 'add', `${A_LAN}/32`, 'dev', 'lo']);
    await b.run('ip', ['addr', 'add', `${B_LAN}/32`, 'dev', 'lo']);
    const ca = await testCa('CN=Bench CA');
    for (const host of [a, b]) {
      const cert = await ca.issue(`CN=${host.name}`);
      host.write('/etc/swanctl/x509ca/ca.crt', ca.certificatePem);
      host.write('/etc/swanctl/x509/me.crt', cert.certificatePem);
      host.write('/etc/swanctl/private/me.key', cert.keyPem, 0o600);
      host.write('/etc/strongswan.d/zz-bench.conf', `charon {
  plugins {
    kernel-libipsec {
      load = yes
    }
  }
  filelog {
    stderr {
      default = 1
      time_format = %s
      time_precision = us
    }
  }
}
`);
    }
    a.spawn('/usr/lib/ipsec/charon', []);
    const charonB = b.spawn('/usr/lib/ipsec/charon', []);
    const log = new CharonLog(charonB.stderr!);
    for (const host of [a, b]) {
      for (let i = 0; (await host.run('swanctl', ['--stats'], { reject: false })).exitCode !== 0; i++) {
        if (i > 100) throw new Error(`charon in ${host.name} did not start`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await host.run('swanctl', ['--load-creds', '--noprompt']);
    }

    console.log(`${(await a.run('swanctl', ['--version'])).stdout.trim()}, userspace ESP (kernel-libipsec), two network namespaces on one veth bridge`);
    const setup: Record<Mode, number> = { hybrid: 0, classical: 0 };
    const rekey: Record<Mode, { perSecond: number; medianMs: number }> = { hybrid: { perSecond: 0, medianMs: 0 }, classical: { perSecond: 0, medianMs: 0 } };
    // Classical, hybrid, classical, hybrid: machine load falls on both alike.
    for (const mode of ['classical', 'hybrid', 'classical', 'hybrid'] as const) {
      const times = await setups(a, b, log, mode);
      setup[mode] = setup[mode] ? Math.min(setup[mode], median(times)) : median(times);
      const r = await rekeys(b, log);
      rekey[mode] = rekey[mode].perSecond > r.perSecond ? rekey[mode] : r;
    }
    for (const mode of ['classical', 'hybrid'] as const) {
      console.log(`IKE SA setup, ${PROPOSALS[mode].ike.padEnd(44)} median ${setup[mode].toFixed(2).padStart(6)} ms (${SETUPS} setups, initiator's log)`);
    }
    console.log(`  ratio hybrid / classical setup time: ${(setup.hybrid / setup.classical).toFixed(2)}`);
    for (const mode of ['classical', 'hybrid'] as const) {
      console.log(`IKE SA rekey, ${mode.padEnd(10)} median ${rekey[mode].medianMs.toFixed(2).padStart(6)} ms, ${rekey[mode].perSecond.toFixed(0).padStart(5)} rekeys/s (1 / median)`);
    }
    console.log(`  ratio hybrid / classical rekeys per second: ${(rekey.hybrid.perSecond / rekey.classical.perSecond).toFixed(2)}`);

    await b.run('swanctl', ['--initiate', '--child', 'net']);
    const tunnel = await iperf(a, b, A_LAN, B_LAN);
    await b.run('swanctl', ['--terminate', '--ike', 'bench']);
    const bare = await iperf(a, b, a.address, b.address);
    console.log(`TCP throughput through the ESP tunnel (hybrid CHILD_SA, AES-256-GCM, libipsec): ${tunnel.toFixed(0)} Mbit/s`);
    console.log(`TCP throughput on the same veth path without IPsec:                          ${bare.toFixed(0)} Mbit/s`);
    console.log(`  ratio tunnel / bare: ${(tunnel / bare).toFixed(3)}`);
  } finally {
    await lab.stop();
  }
}

await main();
