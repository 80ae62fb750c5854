// VPN hosts for the e2e tests: each one a network namespace with its own overlay copy of the sid strongSwan rootfs
// (own /etc/swanctl, own tmpfs /run for charon's vici socket and pid file), joined to the others by veth pairs on a
// bridge in an "underlay" namespace at 198.18.200.0/24 (family 6: 2001:2::/64, RFC 5180's benchmarking range), or
// (routedFromHost) each by its own veth pair to this host, which routes it on (to the test node's Pod network, say).
// Everything created here is removed by stop().
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { eventually } from './env.js';

export function vpnRootfs(): string {
  const root = process.env.QUBESEC_VPN_ROOTFS;
  if (!root) throw new Error('QUBESEC_VPN_ROOTFS is not set: run the e2e tests through `npm test` (scripts/run.sh builds vpn/rootfs.sh)');
  return root;
}

export const UNDERLAY_PREFIX = '198.18.200';
export const UNDERLAY_PREFIX_V6 = '2001:2::';

export interface VpnHost {
  name: string;
  netns: string;
  /** The merged overlay: charon's root as the host sees it. */
  root: string;
  /** Address on the underlay. */
  address: string;
  /** Runs a command in the namespace, chrooted into the host's root; rejects on a non-zero exit. */
  run(file: string, args: string[], options?: { reject?: boolean }): Promise<{ stdout: string; stderr: string; exitCode: number | undefined }>;
  /** Starts a long-running process the same way; stop() ends it. */
  spawn(file: string, args: string[], env?: Record<string, string>): ResultPromise;
  /** Writes a file into the host's root (a path as the host's processes see it). */
  write(path: string, content: string, mode?: number): void;
}

export interface VpnLab {
  hosts: Map<string, VpnHost>;
  host(name: string): VpnHost;
  stop(): Promise<void>;
}

let labs = 0;

export interface VpnLabOptions {
  /** The underlay's address family. */
  family?: 4 | 6;
  /**
   * Instead of the underlay (IPv4 only): host i's eth0 is PREFIX.(4i+2)/30, its default route PREFIX.(4i+1) on the
   * other end of its veth pair, in this host's namespace, so this host's routes (and forwarding) take its traffic on.
   */
  routedFromHost?: { prefix: string };
}

/**
 * Creates hosts named `names` on one underlay; host i gets 198.18.200.(i+1) (family 6: 2001:2::(i+1)) and each may add
 * inner addresses.
 */
export async function startVpnLab(names: string[], options: VpnLabOptions = {}): Promise<VpnLab> {
  const family = options.family ?? 4;
  const id = `${process.pid % 10000}-${labs++}`;
  const underlay = `qsvpn-${id}-wan`;
  const base = mkdtempSync(join(tmpdir(), 'qubesec-vpn-'));
  const rootfs = vpnRootfs();
  const namespaces: string[] = [];
  const mounts: string[] = [];
  const children: ResultPromise[] = [];
  const hosts = new Map<string, VpnHost>();
  const sh = (args: string[]) => execa(args[0]!, args.slice(1));
  const stop = async () => {
    for (const child of children) child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(children), new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    for (const child of children) child.kill('SIGKILL');
    await Promise.allSettled(children);
    // Whatever else runs in these namespaces was started in them by the test (a charon whose controller died first).
    for (const ns of namespaces) {
      const pids = (await execa('ip', ['netns', 'pids', ns], { reject: false })).stdout.split('\n').filter(Boolean);
      for (const pid of pids) await execa('kill', ['-KILL', pid], { reject: false });
    }
    for (const mount of mounts.reverse()) await execa('umount', ['-l', mount], { reject: false });
    // Deleting a namespace deletes the veth ends and TUN devices in it.
    for (const ns of namespaces) await execa('ip', ['netns', 'del', ns], { reject: false });
    rmSync(base, { recursive: true, force: true });
  };
  const routed = options.routedFromHost;
  const inWan = (...args: string[]) => sh(['ip', 'netns', 'exec', underlay, ...args]);
  try {
    if (!routed) {
      await sh(['ip', 'netns', 'add', underlay]);
      namespaces.push(underlay);
      await inWan('ip', 'link', 'add', 'br0', 'type', 'bridge');
      await inWan('ip', 'link', 'set', 'br0', 'up');
      await inWan('ip', 'link', 'set', 'lo', 'up');
    }
    for (const [i, name] of names.entries()) {
      const netns = `qsvpn-${id}-${name}`;
      await sh(['ip', 'netns', 'add', netns]);
      namespaces.push(netns);
      const dir = join(base, name);
      for (const d of ['upper', 'work', 'merged']) mkdirSync(join(dir, d), { recursive: true });
      const root = join(dir, 'merged');
      await sh(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${rootfs},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`, root]);
      mounts.push(root);
      await sh(['mount', '-t', 'tmpfs', 'tmpfs', join(root, 'run')]);
      mounts.push(join(root, 'run'));
      await sh(['mount', '-t', 'proc', 'proc', join(root, 'proc')]);
      mounts.push(join(root, 'proc'));
      await sh(['mount', '--rbind', '/dev', join(root, 'dev')]);
      await sh(['mount', '--make-rslave', join(root, 'dev')]);
      mounts.push(join(root, 'dev'));
      const hostSide = `qv${id.replace('-', '')}${i}`.slice(0, 15);
      const inNs = (...args: string[]) => sh(['ip', 'netns', 'exec', netns, ...args]);
      let address: string;
      if (routed) {
        // The pair's ends go with the namespace when it is deleted.
        await sh(['ip', 'link', 'add', 'eth0', 'netns', netns, 'type', 'veth', 'peer', 'name', hostSide]);
        const gateway = `${routed.prefix}.${4 * i + 1}`;
        address = `${routed.prefix}.${4 * i + 2}`;
        await sh(['ip', 'addr', 'add', `${gateway}/30`, 'dev', hostSide]);
        await sh(['ip', 'link', 'set', hostSide, 'up']);
        await inNs('ip', 'addr', 'add', `${address}/30`, 'dev', 'eth0');
        await inNs('ip', 'link', 'set', 'eth0', 'up');
        await inNs('ip', 'route', 'add', 'default', 'via', gateway);
      } else {
        await sh(['ip', 'link', 'add', 'eth0', 'netns', netns, 'type', 'veth', 'peer', 'name', hostSide, 'netns', underlay]);
        await inWan('ip', 'link', 'set', hostSide, 'master', 'br0');
        await inWan('ip', 'link', 'set', hostSide, 'up');
        address = family === 4 ? `${UNDERLAY_PREFIX}.${i + 1}` : `${UNDERLAY_PREFIX_V6}${i + 1}`;
        // nodad: an IPv6 address is usable at once, not after duplicate address detection's second.
        await inNs('ip', 'addr', 'add', ...(family === 4 ? [`${address}/24`] : [`${address}/64`, 'nodad']), 'dev', 'eth0');
        await inNs('ip', 'link', 'set', 'eth0', 'up');
      }
      await inNs('ip', 'link', 'set', 'lo', 'up');
      const wrap = (file: string, args: string[]) => ['netns', 'exec', netns, 'chroot', root, file, ...args];
      hosts.set(name, {
        name,
        netns,
        root,
        address,
        run: async (file, args, options) => {
          const r = await execa('ip', wrap(file, args), { reject: options?.reject ?? true, stdin: 'ignore' });
          return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
        },
        spawn: (file, args, env) => {
          const child = execa('ip', wrap(file, args), { reject: false, stdin: 'ignore', all: true, env, buffer: { all: true } });
          children.push(child);
          return child;
        },
        write: (path, content, mode = 0o644) => {
          const target = join(root, path);
          mkdirSync(join(target, '..'), { recursive: true });
          writeFileSync(target, content, { mode });
        },
      });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    hosts,
    host: (name) => hosts.get(name) ?? (() => { throw new Error(`no VPN host ${name}`); })(),
    stop,
  };
}

/**
 * A peer's own charon (libipsec, logging to stderr) with its swanctl.conf and files (paths under /etc/swanctl) loaded.
 * `charonSettings`, if given, is more of strongswan.conf's charon section (the host's own settings, not the profile's).
 */
export async function startPeerCharon(host: VpnHost, conf: string, files: Record<string, string>, charonSettings = ''): Promise<void> {
  host.write('/etc/strongswan.d/zz-qubesec-test.conf', `charon {\n  plugins {\n    kernel-libipsec {\n      load = yes\n    }\n  }\n${charonSettings}}\n`);
  host.write('/etc/swanctl/swanctl.conf', conf, 0o600);
  for (const [path, content] of Object.entries(files)) host.write(`/etc/swanctl/${path}`, content, path.startsWith('private/') ? 0o600 : 0o644);
  host.spawn('/usr/lib/ipsec/charon', []);
  await eventually(async () => ((await host.run('swanctl', ['--stats'], { reject: false })).exitCode === 0 ? true : undefined), 10_000, `${host.name}'s charon`);
  await host.run('swanctl', ['--load-all', '--noprompt']);
}

/** An exported client profile (`qubesec vpn client-config --out DIR`): each file's text by its path under DIR. */
export function readProfile(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (folder: string) => readdirSync(folder).forEach((f) => {
    const path = join(folder, f);
    if (statSync(path).isDirectory()) walk(path);
    else files[relative(dir, path)] = readFileSync(path, 'utf8');
  });
  walk(dir);
  return files;
}

/** A remote site's hand-written swanctl.conf (another operator's strongSwan): one connection "gw" with child "net". */
export function sitePeerConf(o: {
  localAddress: string; remoteAddress: string; id: string; gatewayId: string; localSubnet: string; remoteSubnet: string;
  ike: string; esp: string; childless: string; ppkHex?: string; ppkId?: string;
}): string {
  const id = o.ppkId ?? 'qubesec-ppk';
  const ppk = o.ppkHex ? { conn: `\n    ppk_id = ${id}\n    ppk_required = yes`, secret: `\n  ppk-qubesec {\n    id = ${id}\n    secret = 0x${o.ppkHex}\n  }` } : { conn: '', secret: '' };
  return `connections {
  gw {
    version = 2
    local_addrs = ${o.localAddress}
    remote_addrs = ${o.remoteAddress}
    proposals = ${o.ike}
    childless = ${o.childless}${ppk.conn}
    local {
      auth = pubkey
      certs = me.crt
      id = "${o.id}"
    }
    remote {
      auth = pubkey
      id = "${o.gatewayId}"
      cacerts = gw-ca.crt
    }
    children {
      net {
        local_ts = ${o.localSubnet}
        remote_ts = ${o.remoteSubnet}
        esp_proposals = ${o.esp}
      }
    }
  }
}
secrets {
  private-me {
    file = me.key
  }${ppk.secret}
}
`;
}
