// The VPN data path under a real Linux kernel's IPsec (xfrm, ESP in the kernel): this machine's kernel has no ESP, so
// two user-mode-linux kernels (Debian sid's user-mode-linux, booted with the sid rootfs as hostfs root) run the
// gateway, configured with QubeSec's rendered strongswan.conf and swanctl.conf (translateVpn, renderSwanctl), and a
// remote site with a hand-written one. Their tap devices share a bridge in a network namespace of the test. Each
// kernel runs a scenario script as init and writes what it saw into a shared folder; the test reads it.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { translateVpn } from '../controller/vpn/model.js';
import { renderStrongswanConf, renderSwanctl } from '../controller/vpn/render.js';
import { gatewayResource, lookup, opaqueSecret, peerResource, testCa, tlsSecret } from '../controller/vpn/testing.js';
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

/** The init script both kernels run: mounts, modules, addresses, charon, then the machine's own steps. */
function initScript(m: Machine, steps: string, charonEnv: string): string {
  return `#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp
mkdir -p /shared && mount -t hostfs none /shared -o /shared
mkdir -p ${STATE_DIR}
for m in esp4 xfrm_user xfrm4_tunnel tunnel4 gcm ctr seqiv echainiv authenc ghash-generic; do modprobe $m 2>/dev/null; done
ip link set lo up; ip addr add ${m.lan}/32 dev lo
ip link set vec0 up; ip addr add ${m.address}/24 dev vec0
${charonEnv} /usr/lib/ipsec/charon > /shared/${m.name}-charon.log 2>&1 &
for i in $(seq 100); do ${charonEnv} swanctl --stats > /dev/null 2>&1 && break; sleep 0.1; done
${steps}
echo o > /proc/sysrq-trigger
`;
}

async function boot(m: Machine, init: string, tap: string): Promise<void> {
  writeFileSync(join(m.root, 'qs-init.sh'), init, { mode: 0o755 });
  const log = join(base, `${m.name}-kernel.log`);
  const kernel = execa('ip', ['netns', 'exec', netns, 'chroot', m.root, '/usr/bin/linux.uml', 'mem=256M', 'root=/dev/root', 'rootfstype=hostfs',
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

  // The gateway: QubeSec's translation and rendering, kernel xfrm (no libipsec).
  const ca = await testCa('CN=QubeSec VPN CA');
  const siteCa = await testCa('CN=Site B CA');
  const secrets = [tlsSecret('gw-tls', await ca.issue('CN=gw.vpn.test'), ca.certificatePem), opaqueSecret('site-ca', { 'ca.crt': siteCa.certificatePem })];
  const { model, diagnostics } = translateVpn(
    gatewayResource('gw', { listen: { address: gw.address }, localSubnets: ['198.18.210.0/24'], certificate: { secretName: 'gw-tls' } }),
    [peerResource('site-b', { gateway: 'gw', site: { remoteAddress: site.address, remoteSubnets: ['198.18.220.0/24'], identity: 'CN=site-b', caSecretName: 'site-ca' } })],
    lookup(secrets), new Date());
  expect(diagnostics).toEqual([]);
  const viciSocket = `${STATE_DIR}/charon.vici`;
  const gwFiles = new Map([...renderSwanctl(model!)].map(([path, content]) => [`swanctl/${path}`, content]));
  gwFiles.set('strongswan.conf', renderStrongswanConf({ ikePort: 500, natPort: 4500 }, { libipsec: false, viciSocket }));
  // Written to a staging folder: the kernel mounts a tmpfs on /run, so init copies them into place.
  for (const [path, content] of gwFiles) {
    mkdirSync(join(gw.root, 'qs-state', path, '..'), { recursive: true });
    writeFileSync(join(gw.root, 'qs-state', path), content, { mode: 0o600 });
  }
  const gwEnv = `STRONGSWAN_CONF=${STATE_DIR}/strongswan.conf SWANCTL_DIR=${STATE_DIR}/swanctl`;
  const swanctlGw = `${gwEnv} swanctl --uri unix://${viciSocket}`;
  await boot(gw, initScript(gw, `
${swanctlGw} --load-all --noprompt > /shared/gw-load.txt 2>&1
touch /shared/gw-ready
for i in $(seq 600); do [ -e /shared/site-done ] && break; sleep 0.1; done
${swanctlGw} --list-sas > /shared/gw-sas.txt 2>&1
ip xfrm state > /shared/gw-xfrm.txt 2>&1
`, gwEnv).replace(`mkdir -p ${STATE_DIR}`, `mkdir -p ${STATE_DIR} && cp -a /qs-state/. ${STATE_DIR}/`), 'tap0');

  const siteCert = await siteCa.issue('CN=site-b');
  for (const [path, content] of Object.entries({
    'x509ca/gw-ca.crt': ca.certificatePem, 'x509/me.crt': siteCert.certificatePem, 'private/me.key': siteCert.keyPem,
    'swanctl.conf': sitePeerConf({ localAddress: site.address, remoteAddress: gw.address, id: 'CN=site-b', gatewayId: 'CN=gw.vpn.test', localSubnet: '198.18.220.0/24', remoteSubnet: '198.18.210.0/24', ike: HYBRID_IKE, esp: HYBRID_ESP, childless: 'prefer' }),
  })) writeFileSync(join(site.root, 'etc', 'swanctl', path), content, { mode: 0o600 });
  await boot(site, initScript(site, `
swanctl --load-all --noprompt > /shared/site-load.txt 2>&1
for i in $(seq 300); do [ -e /shared/gw-ready ] && break; sleep 0.1; done
swanctl --initiate --child net > /shared/site-initiate.txt 2>&1
ping -n -c 3 -i 0.2 -W 2 -I ${site.lan} ${gw.lan} > /shared/site-ping.txt 2>&1
ip xfrm state > /shared/site-xfrm.txt 2>&1
swanctl --rekey --child net > /dev/null 2>&1; sleep 2
swanctl --list-sas > /shared/site-sas.txt 2>&1
ping -n -c 2 -i 0.2 -W 2 -I ${site.lan} ${gw.lan} > /shared/site-ping-after-rekey.txt 2>&1
touch /shared/site-done
`, ''), 'tap1');

  // Both kernels power off when their scenario is done.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(kernels), new Promise((r) => (timer = setTimeout(r, 150_000)))]);
  clearTimeout(timer);
  for (const file of ['gw-sas.txt', 'gw-xfrm.txt', 'site-initiate.txt', 'site-ping.txt', 'site-xfrm.txt', 'site-sas.txt', 'site-ping-after-rekey.txt', 'gw-load.txt']) {
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
  it('loads the rendered configuration and negotiates X25519 + ML-KEM-768 for the IKE SA and the CHILD_SA', () => {
    expect(results['gw-load.txt']).toMatch(/loaded connection 'site-b'/);
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
    expect(results['site-sas.txt']).toMatch(/net: #\d+, reqid \d+, INSTALLED, TUNNEL, ESP:AES_GCM_16-256\/CURVE_25519\/KE1_ML_KEM_768/);
    expect(results['site-ping-after-rekey.txt']).toMatch(/2 packets transmitted, 2 received/);
  });
});
