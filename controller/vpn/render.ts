// Renders the VPN model into charon's files: strongswan.conf (daemon settings) and the swanctl directory
// (swanctl.conf, the gateway's certificate and key, the CAs peers are trusted by). Pure: returns the files' contents.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Handlebars from 'handlebars';
import { TEMPLATES_DIR } from '../project.js';
import type { Credential, GatewayModel, PeerModel, VpnModel } from './model.js';

export interface CharonSettings {
  /** Userspace ESP (strongSwan's kernel-libipsec plugin, a TUN device) for nodes whose kernel has no xfrm ESP. */
  libipsec: boolean;
  /** Path of charon's vici socket, as charon sees it. */
  viciSocket: string;
}

/** Paths relative to the swanctl directory (SWANCTL_DIR), and their contents. */
export type SwanctlFiles = Map<string, string>;

const templates = (() => {
  const hbs = Handlebars.create();
  // noEscape: swanctl.conf is not HTML; values are checked by assertInert instead.
  const compile = (file: string) => hbs.compile(readFileSync(join(TEMPLATES_DIR, 'vpn', file), 'utf8'), { noEscape: true, strict: true, data: false });
  return { swanctl: compile('swanctl.conf.hbs'), strongswan: compile('strongswan.conf.hbs'), client: compile('client-swanctl.conf.hbs') };
})();

// What strongSwan's settings parser reads as structure or as the end of a value: quotes, braces, '=', '#' comments,
// backslashes and line breaks. Values handed to templates hold none of these (the model checked them; this catches a
// check that was missed). '=' is allowed: distinguished names hold it, and they are always rendered quoted.
const UNSAFE = /["{}#\\\r\n\0]/;

export class RenderError extends Error {}

function assertInert(value: unknown, path: string): void {
  if (typeof value === 'string') {
    if (UNSAFE.test(value)) throw new RenderError(`refusing to render ${path}: ${JSON.stringify(value)} holds a character strongSwan would interpret`);
  } else if (Array.isArray(value)) value.forEach((v, i) => assertInert(v, `${path}[${i}]`));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) assertInert(v, `${path}.${k}`);
}

function gatewayView(gateway: GatewayModel) {
  return {
    namespace: gateway.ref.namespace,
    name: gateway.ref.name,
    listenAddress: gateway.listenAddress,
    ikePort: gateway.ikePort,
    ikeProposals: gateway.ikeProposals.join(','),
    espProposals: gateway.espProposals.join(','),
    childless: gateway.childless,
    rekeySeconds: gateway.rekeySeconds,
    ikeRekeySeconds: gateway.rekeySeconds * 4,
    identity: gateway.credential.identity,
    publicAddress: gateway.publicAddress,
    // The current PPK (what an initiator sends) and every one the gateway accepts (generated: the previous one too).
    ppk: gateway.ppk ? { id: gateway.ppk.id, hex: gateway.ppk.keys[0]!.hex, required: gateway.ppk.required ? 'yes' : 'no', keys: gateway.ppk.keys } : null,
  };
}

export function renderSwanctl(model: VpnModel): SwanctlFiles {
  const view = {
    gateway: gatewayView(model.gateway),
    connections: model.peers.map((peer) => ({
      name: peer.connection,
      remoteAddress: peer.remoteAddress ?? '%any',
      identity: peer.identity,
      caFile: peer.ca.file,
      localSubnets: peer.localSubnets.map((s) => s.text).join(','),
      remoteSubnets: peer.type === 'site' ? peer.remoteSubnets.map((s) => s.text).join(',') : 'dynamic',
      pool: peer.pool ?? null,
    })),
    pools: model.gateway.pools.map((p) => ({ name: p.name, subnet: p.subnet.text })),
  };
  assertInert(view, 'swanctl');
  const files: SwanctlFiles = new Map([
    ['swanctl.conf', templates.swanctl(view)],
    ['x509/gateway.crt', model.gateway.credential.certificatePem],
    ['private/gateway.key', model.gateway.credential.privateKeyPem],
  ]);
  const cas = [...model.peers.map((p) => p.ca), ...(model.gateway.ca ? [model.gateway.ca] : [])];
  for (const ca of cas) files.set(`x509ca/${ca.file}`, ca.pem);
  return files;
}

/** What a deleted VpnGateway leaves loaded: nothing. */
export const EMPTY_SWANCTL: SwanctlFiles = new Map([['swanctl.conf', '# The VpnGateway was deleted: nothing is loaded.\n']]);

/** charon's strongswan.conf: the distribution's plugin settings, then ports, vici, libipsec and logging to stderr. */
export function renderStrongswanConf(ports: { ikePort: number; natPort: number }, settings: CharonSettings): string {
  const view = { ikePort: ports.ikePort, natPort: ports.natPort, libipsec: settings.libipsec ? 'yes' : 'no', viciSocket: settings.viciSocket };
  assertInert(view, 'strongswan.conf');
  return templates.strongswan(view);
}

export class ProfileError extends Error {}

/**
 * A remote-access user's swanctl directory for a Linux strongSwan client: swanctl.conf (the gateway's proposals,
 * PPK if it has one, the user's allowed subnets), the user's certificate and key, and the CA the gateway's certificate
 * chains to. The PPK, like the key, is the user's secret: the folder is to be kept as private as the key.
 */
export function renderClientProfile(gateway: GatewayModel, peer: PeerModel, user: Credential): SwanctlFiles {
  if (peer.type !== 'remoteAccess') throw new ProfileError(`VpnPeer ${peer.ref.namespace}/${peer.ref.name} is a site peer: only remoteAccess users get a client profile`);
  if (user.identity !== peer.identity) throw new ProfileError(`VpnPeer ${peer.ref.namespace}/${peer.ref.name}: the certificate's subject ${JSON.stringify(user.identity)} is not spec.remoteAccess.identity ${JSON.stringify(peer.identity)}`);
  if (!gateway.ca) throw new ProfileError(`VpnGateway ${gateway.ref.namespace}/${gateway.ref.name}: its certificate Secret has no ca.crt, so a client could not verify the gateway`);
  const view = {
    gateway: gatewayView(gateway),
    name: `qubesec-${peer.connection}`,
    identity: peer.identity,
    // The virtual IP to request: any address of the pool's family (strongSwan asks for IPv6 with ::).
    virtualIp: gateway.pools.find((p) => p.name === peer.pool)?.subnet.family === 6 ? '::' : '0.0.0.0',
    remoteSubnets: peer.localSubnets.map((s) => s.text).join(','),
  };
  assertInert(view, 'client profile');
  return new Map([
    ['swanctl.conf', templates.client(view)],
    ['x509/client.crt', user.certificatePem],
    ['private/client.key', user.privateKeyPem],
    ['x509ca/gateway-ca.crt', gateway.ca.pem],
  ]);
}
