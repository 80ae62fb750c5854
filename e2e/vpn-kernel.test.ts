// The VPN data path under a real Linux kernel's IPsec (xfrm, ESP in the kernel): this machine's kernel has no ESP, so
// two user-mode-linux kernels (Debian sid's user-mode-linux, booted with the sid rootfs as hostfs root) run the
// gateway, `qubesec vpn run --manifests` (the compiled dist/ and the host's Node 24, both through hostfs: QubeSec's
// translation, rendering and loading, and its charon under the kernel backend), and a remote site with a hand-written
// swanctl.conf. Their tap devices share a bridge in a network namespace of the test. Each kernel runs a scenario script
// as init and writes what it saw into a shared folder; the test reads it.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { stringify } from 'yaml';
import { PROJECT_ROOT } from '../controller/project.js';
import { gatewayResource, opaqueSecret, peerResource, testCa, tlsSecret } from '../controller/vpn/testing.js';
import { sitePeerConf, vpnRootfs } from './lib/vpn-hosts.js';

const UML_MODULES = '/usr/lib/uml/modules';
const STATE_DIR = '/run/qubesec-vpn';
const HYBRID_IKE = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const HYBRID_ESP = 'aes256gcm16-x25519-ke1_mlkem768';

interface Machine {
  name: string;
  root: string;
  address: string;
  lan: string;
}

const base = mkdtempSync(join(tmpdir(), 'qubesec-vpn-uml-'));
const shared = join(base, 'shared');
const netns = `qsuml-${process.pid % 10000}`;
const mounts: string[] = [];
const kernels: ResultPromise[] = [];
const results: Record<string, string> = {};

/** The init script both kernels run: mounts, modules, addresses, then the machine's own steps. */
function initScript(m: Machine, steps: string): string {
  return `#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp
for m in esp4 xfrm_user xfrm4_tunnel tunnel4 gcm ctr seqiv echainiv authenc ghash-generic; do modprobe $m 2>/dev/null; done
ip link set lo up; ip addr add ${m.lan}/32 dev lo
ip link set vec0 up; ip addr add ${m.address}/24 dev vec0
${steps}
echo o > /proc/sysrq-trigger
`;
}

/** Waits (in the kernel's shell) until `command` succeeds, for at most `tenths` tenths of a second. */
const until = (command: string, tenths: number) => `for i in $(seq ${tenths}); do ${command} && break; sleep 0.1; done`;

async function boot(m: Machine, init: string, tap: string): Promise<void> {
  writeFileSync(join(m.root, 'qs-init.sh'), init, { mode: 0o755 });
  const log = join(base, `${m.name}-kernel.log`);
  const kernel = execa('ip', ['netns', 'exec', netns, 'chroot', m.root, '/usr/bin/linux.uml', 'mem=384M', 'root=/dev/root', 'rootfstype=hostfs',
    'rootflags=/', 'rw', 'init=/qs-init.sh', 'con=null', 'con0=null,fd:1', `vec0:transport=tap,ifname=${tap}`, 'TMPDIR=/tmp'],
  { reject: false, stdin: 'ignore', stdout: { file: log }, stderr: { file: log } });
  kernels.push(kernel);
}

beforeAll(async () => {
  const rootfs = vpnRootfs();
  mkdirSync(shared);
  const sh = (...args: string[]) => execa(args[0]!, args.slice(1));
  await sh('ip', 'netns', 'add', netns);
  await sh('ip', 'netns', 'exec', netns, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
  await sh('ip', 'netns', 'exec', netns, 'ip', 'link', 'set', 'br0', 'up');
  const machines: Machine[] = [
    { name: 'gw', root: '', address: '198.18.200.1', lan: '198.18.210.1' },
    { name: 'site', root: '', address: '198.18.200.2', lan: '198.18.220.1' },
  ];
  for (const [i, m] of machines.entries()) {
    const dir = join(base, m.name);
    for (const d of ['upper', 'work', 'merged']) mkdirSync(join(dir, d), { recursive: true });
    m.root = join(dir, 'merged');
    await sh('mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${rootfs},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`, m.root);
    mounts.push(m.root);
    // The UML process itself needs /proc (its own executable), /dev (the tap's /dev/net/tun) and a /tmp for its memory.
    await sh('mount', '-t', 'proc', 'proc', join(m.root, 'proc'));
    mounts.push(join(m.root, 'proc'));
    await sh('mount', '--rbind', '/dev', join(m.root, 'dev'));
    await sh('mount', '--make-rslave', join(m.root, 'dev'));
    mounts.push(join(m.root, 'dev'));
    await sh('mount', '-t', 'tmpfs', 'tmpfs', join(m.root, 'tmp'));
    mounts.push(join(m.root, 'tmp'));
    mkdirSync(join(m.root, 'shared'));
    await sh('mount', '--bind', shared, join(m.root, 'shared'));
    mounts.push(join(m.root, 'shared'));
    mkdirSync(join(m.root, 'lib', 'modules'), { recursive: true });
    // modprobe in the UML kernel looks in /lib/modules/<its version>; Debian ships them under /usr/lib/uml/modules.
    const kernelVersion = readdirSync(join(rootfs, UML_MODULES))[0]!;
    if (!existsSync(join(m.root, 'lib', 'modules', kernelVersion))) symlinkSync(`${UML_MODULES}/${kernelVersion}`, join(m.root, 'lib', 'modules', kernelVersion));
    await sh('ip', 'netns', 'exec', netns, 'ip', 'tuntap', 'add', `tap${i}`, 'mode', 'tap');
    await sh('ip', 'netns', 'exec', netns, 'ip', 'link', 'set', `tap${i}`, 'master', 'br0');
    await sh('ip', 'netns', 'exec', netns, 'ip', 'link', 'set', `tap${i}`, 'up');
  }
  const [gw, site] = machines as [Machine, Machine];

  // The gateway: `qubesec vpn run --manifests` in the kernel, its charon on the kernel backend (no --libipsec). Its
  // manifests lie in its root; the compiled project and the host's Node are bind-mounted into it read-only, which the
  // kernel's hostfs root shows (as it shows /shared).
  mkdirSync(join(gw.root, 'qubesec'));
  mkdirSync(join(gw.root, 'qubesec-node'));
  for (const [from, to] of [[PROJECT_ROOT, join(gw.root, 'qubesec')], [dirname(process.execPath), join(gw.root, 'qubesec-node')]] as const) {
    await sh('mount', '--bind', from, to);
    await sh('mount', '-o', 'remount,bind,ro', to);
    mounts.push(to);
  }
  const ca = await testCa('CN=QubeSec VPN CA');
  const siteCa = await testCa('CN=Site B CA');
  const manifests = [
    tlsSecret('gw-tls', await ca.issue('CN=gw.vpn.test'), ca.certificatePem),
    opaqueSecret('site-ca', { 'ca.crt': siteCa.certificatePem }),
    gatewayResource('gw', { listen: { address: gw.address }, localSubnets: ['198.18.210.0/24'], certificate: { secretName: 'gw-tls' } }),
    peerResource('site-b', { gateway: 'gw', site: { remoteAddress: site.address, remoteSubnets: ['198.18.220.0/24'], identity: 'CN=site-b', caSecretName: 'site-ca' } }),
  ];
  mkdirSync(join(gw.root, 'qs-manifests'));
  writeFileSync(join(gw.root, 'qs-manifests', 'gateway.yaml'), manifests.map((m) => stringify(m)).join('---\n'));
  const node = `/qubesec-node/${basename(process.execPath)}`;
  // io_uring off in this kernel: the ring libuv sets up for epoll batching (whatever UV_USE_IO_URING says), inherited by
  // the child Node forks for charon, makes this UML kernel (7.2.7) fault at the child's exec ("Bad page map" on
  // [io_uring], then a panic). Refused, libuv falls back to plain epoll_ctl.
  const swanctlGw = `swanctl --uri unix://${STATE_DIR}/charon.vici`;
  await boot(gw, initScript(gw, `
echo 2 > /proc/sys/kernel/io_uring_disabled
${node} -e "require('http').createServer((q, s) => s.end('behind the gateway\\n')).listen(8080, '${gw.lan}')" > /shared/gw-http.log 2>&1 &
${node} /qubesec/dist/controller/cli/main.js vpn run --manifests /qs-manifests --namespace vpn --gateway gw --state-dir ${STATE_DIR} \\
  --debounce-ms 100 --status-interval-ms 500 --status-file /shared/gw-status.json --metrics-address 127.0.0.1 > /shared/gw-controller.log 2>&1 &
controller=$!
${until(`${swanctlGw} --list-conns > /shared/gw-conns.txt 2>&1 && grep -q site-b: /shared/gw-conns.txt`, 900)}
touch /shared/gw-ready
${until('[ -e /shared/site-done ]', 900)}
${swanctlGw} --list-sas > /shared/gw-sas.txt 2>&1
ip xfrm state > /shared/gw-xfrm.txt 2>&1
${until(`grep -q '"reason": "Connected"' /shared/gw-status.json`, 100)}
kill -TERM $controller; wait $controller
`), 'tap0');

  const siteCert = await siteCa.issue('CN=site-b');
  for (const [path, content] of Object.entries({
    'x509ca/gw-ca.crt': ca.certificatePem, 'x509/me.crt': siteCert.certificatePem, 'private/me.key': siteCert.keyPem,
    'swanctl.conf': sitePeerConf({ localAddress: site.address, remoteAddress: gw.address, id: 'CN=site-b', gatewayId: 'CN=gw.vpn.test', localSubnet: '198.18.220.0/24', remoteSubnet: '198.18.210.0/24', ike: HYBRID_IKE, esp: HYBRID_ESP, childless: 'prefer' }),
  })) writeFileSync(join(site.root, 'etc', 'swanctl', path), content, { mode: 0o600 });
  await boot(site, initScript(site, `
/usr/lib/ipsec/charon > /shared/site-charon.log 2>&1 &
${until('swanctl --stats > /dev/null 2>&1', 100)}
swanctl --load-all --noprompt > /shared/site-load.txt 2>&1
${until('[ -e /shared/gw-ready ]', 900)}
swanctl --initiate --child net > /shared/site-initiate.txt 2>&1
ping -n -c 3 -i 0.2 -W 2 -I ${site.lan} ${gw.lan} > /shared/site-ping.txt 2>&1
curl -sS --max-time 5 --interface ${site.lan} http://${gw.lan}:8080/ > /shared/site-http.txt 2>&1
ip xfrm state > /shared/site-xfrm.txt 2>&1
swanctl --rekey --child net > /dev/null 2>&1; sleep 2
swanctl --list-sas > /shared/site-sas.txt 2>&1
ping -n -c 2 -i 0.2 -W 2 -I ${site.lan} ${gw.lan} > /shared/site-ping-after-rekey.txt 2>&1
touch /shared/site-done
`), 'tap1');

  // Both kernels power off when their scenario is done.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(kernels), new Promise((r) => (timer = setTimeout(r, 150_000)))]);
  clearTimeout(timer);
  for (const file of ['gw-conns.txt', 'gw-sas.txt', 'gw-xfrm.txt', 'gw-status.json', 'gw-controller.log', 'site-initiate.txt', 'site-ping.txt', 'site-http.txt', 'site-xfrm.txt', 'site-sas.txt', 'site-ping-after-rekey.txt']) {
    results[file] = existsSync(join(shared, file)) ? readFileSync(join(shared, file), 'utf8') : '';
  }
  if (process.env.QUBESEC_E2E_LOGS) for (const [file, text] of Object.entries(results)) console.log(`--- ${file}\n${text}`);
}, 200_000);

afterAll(async () => {
  for (const kernel of kernels) kernel.kill('SIGKILL');
  await Promise.allSettled(kernels);
  // The kernels' helper processes (UML threads) live in the namespace too.
  for (const pid of (await execa('ip', ['netns', 'pids', netns], { reject: false })).stdout.split('\n').filter(Boolean)) await execa('kill', ['-KILL', pid], { reject: false });
  for (const mount of mounts.reverse()) await execa('umount', ['-l', mount], { reject: false });
  await execa('ip', ['netns', 'del', netns], { reject: false });
  rmSync(base, { recursive: true, force: true });
}, 60_000);

describe('the VPN under a real kernel (user-mode-linux, xfrm)', () => {
  it('runs qubesec vpn run --manifests, which loads its rendered configuration into charon (kernel backend)', () => {
    expect(results['gw-controller.log']).toMatch(/"msg":"charon started".*"libipsec":false/);
    expect(results['gw-controller.log']).toMatch(/"msg":"VPN configuration loaded".*"peers":\["site-b"\]/);
    expect(results['gw-conns.txt']).toMatch(/site-b: IKEv2, no reauthentication, rekeying every \d+s/);
    expect(results['gw-conns.txt']).toMatch(/remote: 198\.18\.220\.0\/24/);
  });

  it('negotiates X25519 + ML-KEM-768 for the IKE SA and the CHILD_SA', () => {
    expect(results['site-initiate.txt']).toMatch(/CHILD_SA net\{\d+\} established/);
    expect(results['gw-sas.txt']).toMatch(/AES_GCM_16-256\/PRF_HMAC_SHA2_384\/CURVE_25519\/KE1_ML_KEM_768/);
    expect(results['gw-sas.txt']).toMatch(/site-b: #\d+, reqid \d+, INSTALLED, TUNNEL, ESP:AES_GCM_16-256\/CURVE_25519\/KE1_ML_KEM_768/);
  });

  it('installs ESP SAs in the kernel and carries ping through them, also after a hybrid rekey', () => {
    expect(results['site-ping.txt']).toMatch(/3 packets transmitted, 3 received/);
    for (const xfrm of [results['site-xfrm.txt'], results['gw-xfrm.txt']]) {
      expect(xfrm).toMatch(/src 198\.18\.200\.\d dst 198\.18\.200\.\d\s+proto esp spi 0x[0-9a-f]+ reqid \d+ mode tunnel/);
      expect(xfrm).toMatch(/aead rfc4106\(gcm\(aes\)\) 0x[0-9a-f]+ 128/);
      expect(xfrm).not.toMatch(/encap type espinudp/);
    }
    // The CHILD_SA the rekey made (#2 and later; #1 was made at initiation), keyed by its own hybrid exchange.
    expect(results['site-sas.txt']).toMatch(/net: #([2-9]|\d{2,}), reqid \d+, INSTALLED, TUNNEL, ESP:AES_GCM_16-256\/CURVE_25519\/KE1_ML_KEM_768/);
    expect(results['site-ping-after-rekey.txt']).toMatch(/2 packets transmitted, 2 received/);
    expect(results['site-http.txt']).toBe('behind the gateway\n');
  });

  it("writes the peer's status, read from charon's SAs, into the status file", () => {
    const status = (JSON.parse(results['gw-status.json'] || '{}') as Record<string, { connected?: boolean; postQuantum?: boolean; ike?: object; conditions?: object[] }>)['vpnpeers/vpn/site-b'];
    expect(status).toMatchObject({ connected: true, postQuantum: true, remoteAddress: '198.18.200.2', ike: { keyExchanges: ['CURVE_25519', 'ML_KEM_768'] }, conditions: [{ reason: 'Connected' }] });
  });
});
