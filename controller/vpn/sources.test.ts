import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createLogger } from '../observability/log.js';
import { FilesSource } from '../sources/files.js';
import { LogStatusWriter, VPN_KINDS, type VpnSnapshot } from './sources.js';
import { gatewayResource, opaqueSecret, peerResource } from './testing.js';

const log = createLogger('error', { component: 'test' });
let dir: string;
let source: FilesSource<VpnSnapshot> | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'qubesec-vpn-sources-'));
});
afterEach(async () => {
  await source?.stop();
  source = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const write = (file: string, ...docs: object[]) => writeFileSync(join(dir, file), docs.map((d) => stringify(d)).join('---\n'));
const names = (s: VpnSnapshot) => ({
  vpnGateways: s.vpnGateways.map((o) => `${o.metadata.namespace}/${o.metadata.name}`),
  vpnPeers: s.vpnPeers.map((o) => `${o.metadata.namespace}/${o.metadata.name}`),
  secrets: s.secrets.map((o) => `${o.metadata?.namespace}/${o.metadata?.name}`),
});
/** Resolves at the source's next change. */
const nextChange = (changes: (() => void)[]) => new Promise<void>((resolve) => changes.push(resolve));

describe('the VPN kinds through the files source', () => {
  it('reads VpnGateways, VpnPeers and Secrets from a folder, fills in the namespace, ignores other kinds', async () => {
    const gw = gatewayResource('gw', { listen: { address: '198.18.200.1' } });
    delete gw.metadata.namespace;
    write('gw.yaml', gw, opaqueSecret('ppk', { ppk: Buffer.alloc(32) }, 'edge'));
    write('peers.yaml', peerResource('site-b', { gateway: 'gw' }, 'edge'), { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'web' } });
    source = new FilesSource(dir, log, VPN_KINDS);
    await source.start(() => undefined);
    expect(names(source.snapshot())).toEqual({ vpnGateways: ['default/gw'], vpnPeers: ['edge/site-b'], secrets: ['edge/ppk'] });
  });

  it('reloads a changed file, and keeps the last good objects of a file that stops parsing', async () => {
    write('peers.yaml', peerResource('site-b', { gateway: 'gw' }));
    const changes: (() => void)[] = [];
    source = new FilesSource(dir, log, VPN_KINDS);
    await source.start(() => changes.shift()?.());
    let changed = nextChange(changes);
    write('peers.yaml', peerResource('site-b', { gateway: 'gw' }), peerResource('site-c', { gateway: 'gw' }));
    await changed;
    expect(names(source.snapshot()).vpnPeers).toEqual(['vpn/site-b', 'vpn/site-c']);
    changed = nextChange(changes);
    writeFileSync(join(dir, 'peers.yaml'), 'kind: VpnPeer\nmetadata: { name: [\n');
    await changed;
    expect(names(source.snapshot()).vpnPeers).toEqual(['vpn/site-b', 'vpn/site-c']);
  });
});

describe('LogStatusWriter', () => {
  it('keeps the status of every object in one JSON file, replaced whole at each change', async () => {
    const file = join(dir, 'status', 'vpn.json');
    const writer = new LogStatusWriter(log, file);
    await writer.write('vpngateways', gatewayResource('gw', {}), { peers: 1 });
    await writer.write('vpnpeers', peerResource('site-b', {}), { connected: false });
    await writer.write('vpnpeers', peerResource('site-b', {}), { connected: true });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ 'vpngateways/vpn/gw': { peers: 1 }, 'vpnpeers/vpn/site-b': { connected: true } });
  });
});
