// The VPN's typed model and the pure translation of VpnGateway and VpnPeer resources (qubesec.io/v1alpha1) into it.
// Every value that reaches strongSwan's configuration is parsed and checked here; a bad peer fails alone with an error
// naming the object and the field, a bad gateway loads nothing (charon keeps what it had).
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import type { V1ObjectMeta, V1Secret } from '@kubernetes/client-node';
import { checkHost, checkObjectName, quote } from '../model/names.js';
import type { Diagnostic, ObjectRef } from '../model/types.js';
import { parseDuration } from '../pki/resources.js';
import { contains, overlaps, parseAddress, parseSubnet, type Subnet } from './addresses.js';
import { readStoredPpks, type PpkGeneration } from './ppk.js';

export const GROUP = 'qubesec.io';
export const VERSION = 'v1alpha1';

export type PqMode = 'strict' | 'compatible';
export const PQ_MODES: readonly PqMode[] = ['strict', 'compatible'];
export type MlKem = 'ml-kem-768' | 'ml-kem-1024';
export const ML_KEMS: readonly MlKem[] = ['ml-kem-768', 'ml-kem-1024'];
/** strongSwan's key-exchange keyword of each ML-KEM parameter set (RFC 9370 additional key exchange 1). */
const ML_KEM_KEYWORD: Record<MlKem, string> = { 'ml-kem-768': 'mlkem768', 'ml-kem-1024': 'mlkem1024' };
/** The one classical exchange and the ciphers: AES-256-GCM (AES-GCM-SIV has no IANA ESP or IKEv2 transform). */
const CLASSICAL = { encryption: 'aes256gcm16', prf: 'prfsha384', keyExchange: 'x25519' };
export const DEFAULT_IKE_PORT = 500;
export const DEFAULT_NAT_PORT = 4500;
/** RFC 8784 asks for a PPK with at least 256 bits of entropy. */
export const MIN_PPK_BYTES = 32;

export interface VpnGatewaySpec {
  listen?: { address?: string; port?: number; natTraversalPort?: number };
  /** The address clients dial, when it differs from listen.address (a LoadBalancer's): client-config uses it. */
  publicAddress?: string;
  localSubnets?: string[];
  pqMode?: string;
  keyExchange?: string;
  certificate?: { secretName?: string };
  /** A PPK Secret the user makes (secretName, id), or one QubeSec makes and rotates (generate). */
  ppk?: { secretName?: string; id?: string; required?: boolean; generate?: { rotationInterval?: string } };
  pools?: { name?: string; subnet?: string }[];
  /** Seconds between CHILD_SA rekeys (each one a new hybrid exchange); IKE SAs rekey at 4x. */
  rekeySeconds?: number;
}

export interface VpnPeerSpec {
  gateway?: string;
  site?: { remoteAddress?: string; remoteSubnets?: string[]; identity?: string; caSecretName?: string };
  remoteAccess?: { identity?: string; allowedSubnets?: string[]; pool?: string; caSecretName?: string; certificateSecretName?: string };
}

export interface VpnResource<Spec> {
  apiVersion?: string;
  kind?: string;
  metadata: V1ObjectMeta;
  spec?: Spec;
  status?: unknown;
}
export type VpnGatewayResource = VpnResource<VpnGatewaySpec>;
export type VpnPeerResource = VpnResource<VpnPeerSpec>;

export interface Credential {
  /** The leaf first, then intermediates, as strongSwan loads a certificate file. */
  certificatePem: string;
  privateKeyPem: string;
  /** Subject DN in strongSwan's spelling, e.g. "CN=gw, O=Example": the identity IKE_AUTH sends. */
  identity: string;
  notAfter: Date;
}

export interface Ca {
  /** File name under x509ca/, unique per Secret. */
  file: string;
  pem: string;
}

export interface GatewayModel {
  ref: ObjectRef;
  listenAddress: string;
  publicAddress: string;
  ikePort: number;
  natPort: number;
  localSubnets: Subnet[];
  pqMode: PqMode;
  keyExchange: MlKem;
  ikeProposals: string[];
  espProposals: string[];
  /** strict: every CHILD_SA is made by CREATE_CHILD_SA with its own hybrid exchange (see docs/vpn.md). */
  childless: 'force' | 'allow';
  rekeySeconds: number;
  credential: Credential;
  /** The gateway certificate Secret's ca.crt: the CA remote-access users are trusted by unless a peer names another. */
  ca: Ca | undefined;
  ppk: GatewayPpk | undefined;
  pools: { name: string; subnet: Subnet }[];
}

export interface GatewayPpk {
  /** The id initiators send, and client-config exports: the current PPK's. */
  id: string;
  /** Every PPK the gateway accepts, by the id an initiator sends: the current one, then (generated) the previous one. */
  keys: { id: string; hex: string }[];
  required: boolean;
  /** spec.ppk.generate: when the current PPK was made, and the rotation interval. */
  rotation: { created: Date; intervalMs: number } | undefined;
}

export interface PeerModel {
  ref: ObjectRef;
  /** The swanctl connection (and child) name: the object name, dots made underscores (names have no underscores). */
  connection: string;
  type: 'site' | 'remoteAccess';
  identity: string;
  ca: Ca;
  /** site: its address; remoteAccess: any. */
  remoteAddress: string | undefined;
  /** site: the remote site's subnets; remoteAccess: none (the client's virtual IP). */
  remoteSubnets: Subnet[];
  /** What the peer reaches on our side: site: the gateway's local subnets; remoteAccess: its allowed subnets. */
  localSubnets: Subnet[];
  pool: string | undefined;
}

export interface VpnModel {
  gateway: GatewayModel;
  peers: PeerModel[];
}

export interface Translation {
  /** Undefined when the gateway itself is invalid: nothing is loaded then. */
  model: VpnModel | undefined;
  diagnostics: Diagnostic[];
}

export type SecretLookup = (namespace: string, name: string) => V1Secret | undefined;

class FieldError extends Error {}

function ref(kind: string, obj: { metadata: V1ObjectMeta }): ObjectRef {
  return { kind, namespace: obj.metadata.namespace ?? '', name: obj.metadata.name ?? '', uid: obj.metadata.uid };
}

function fail(field: string, problem: string): never {
  throw new FieldError(`${field} ${problem}`);
}

function required<T>(value: T | undefined | null, field: string): T {
  if (value === undefined || value === null || value === '') fail(field, 'is required');
  return value;
}

function subnets(values: unknown, field: string): Subnet[] {
  if (!Array.isArray(values) || values.length === 0) fail(field, 'must list at least one subnet');
  const parsed = values.map((v, i) => {
    const s = typeof v === 'string' ? parseSubnet(v) : 'is not a string';
    return typeof s === 'string' ? fail(`${field}[${i}]`, `${typeof v === 'string' ? quote(v) : ''} ${s}`.trim()) : s;
  });
  parsed.forEach((a, i) => parsed.slice(i + 1).forEach((b) => {
    if (overlaps(a, b)) fail(field, `lists overlapping subnets ${a.text} and ${b.text}`);
  }));
  return parsed;
}

function address(value: unknown, field: string): string {
  if (typeof value !== 'string') fail(field, 'is required');
  const parsed = parseAddress(value);
  return typeof parsed === 'string' ? fail(field, `${quote(value)} ${parsed}`) : parsed.text;
}

function port(value: unknown, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535 ? value : fail(field, 'is not a port number (1-65535)');
}

const DN_ATTRIBUTES = ['C', 'ST', 'L', 'O', 'OU', 'CN', 'DC', 'SN', 'GN', 'E', 'UID', 'serialNumber'];
// No quotes, backslashes, braces, '#', '*' or control characters: an identity is one quoted swanctl value and matches
// exactly one name (strongSwan reads '*' in an identity as a wildcard).
const DN_VALUE = /^[A-Za-z0-9]([A-Za-z0-9 ._@+:-]*[A-Za-z0-9._])?$/;

/** A peer's identity: a distinguished name (CN=alice, O=Example) or a DNS name its certificate holds; canonical text. */
export function parseIdentity(raw: string): string | { error: string } {
  if (raw.length > 512) return { error: 'is longer than 512 characters' };
  if (!raw.includes('=')) {
    return checkHost(raw) || raw.startsWith('*.') ? { error: `${quote(raw)} is neither a distinguished name (CN=name, O=org) nor a lower-case DNS name` } : raw;
  }
  const rdns = raw.split(',').map((part) => part.trim());
  for (const rdn of rdns) {
    const eq = rdn.indexOf('=');
    const attribute = rdn.slice(0, eq);
    const value = rdn.slice(eq + 1);
    if (!DN_ATTRIBUTES.includes(attribute)) return { error: `${quote(raw)}: ${quote(attribute)} is not a distinguished name attribute (${DN_ATTRIBUTES.join(', ')})` };
    if (!DN_VALUE.test(value)) return { error: `${quote(raw)}: the value of ${attribute} may hold only letters, digits, spaces and . _ @ + : -` };
  }
  return rdns.join(', ');
}

function identity(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') fail(field, 'is required');
  const parsed = parseIdentity(value);
  return typeof parsed === 'string' ? parsed : fail(field, parsed.error);
}

function secretData(secret: V1Secret, key: string): Buffer | undefined {
  const value = secret.data?.[key];
  return value === undefined ? undefined : Buffer.from(value, 'base64');
}

function pemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

/** The subject DN in strongSwan's spelling: RDNs in certificate order, ", " between them. */
function subjectIdentity(cert: X509Certificate): string {
  return cert.subject.split('\n').join(', ');
}

/** A kubernetes.io/tls Secret with an ECDSA certificate: strongSwan 6.1 authenticates with no ML-DSA key yet. */
export function readCredential(secret: V1Secret | undefined, secretName: string, field: string, now: Date): Credential {
  if (!secret) fail(field, `names Secret ${quote(secretName)}, which does not exist`);
  const where = `${field} (Secret ${quote(secretName)})`;
  const crt = secretData(secret, 'tls.crt')?.toString('utf8');
  const keyPem = secretData(secret, 'tls.key')?.toString('utf8');
  if (!crt || !keyPem) fail(where, 'has no tls.crt and tls.key');
  let chain: X509Certificate[];
  let key: KeyObject;
  try {
    chain = pemCertificates(crt);
    key = createPrivateKey(keyPem);
  } catch (err) {
    fail(where, `does not hold a PEM certificate and key: ${(err as Error).message}`);
  }
  const leaf = chain[0] ?? fail(where, 'tls.crt holds no PEM certificate');
  if (leaf.publicKey.asymmetricKeyType !== 'ec') {
    fail(where, `holds a ${leaf.publicKey.asymmetricKeyType} certificate: strongSwan 6.1 has no ML-DSA authentication, issue an ECDSA P-384 certificate (QubeSec PKI algorithm ecdsa-p384) under the same CA`);
  }
  if (!leaf.checkPrivateKey(key)) fail(where, 'tls.key does not match the certificate in tls.crt');
  const notAfter = new Date(leaf.validTo);
  if (notAfter <= now) fail(where, `holds a certificate that expired at ${notAfter.toISOString()}`);
  const identityText = parseIdentity(subjectIdentity(leaf));
  if (typeof identityText !== 'string') fail(where, `holds a certificate whose subject ${identityText.error}`);
  return {
    certificatePem: chain.map((c) => c.toString().trim()).join('\n') + '\n',
    privateKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    identity: identityText,
    notAfter,
  };
}

/** A CA to trust from a Secret's ca.crt: it must hold CA certificates. */
export function readCa(secret: V1Secret | undefined, secretName: string, field: string): Ca {
  if (!secret) fail(field, `names Secret ${quote(secretName)}, which does not exist (unknown CA)`);
  const pem = secretData(secret, 'ca.crt')?.toString('utf8');
  if (!pem) fail(field, `names Secret ${quote(secretName)}, which has no ca.crt (unknown CA)`);
  let certs: X509Certificate[];
  try {
    certs = pemCertificates(pem);
  } catch (err) {
    fail(field, `names Secret ${quote(secretName)}, whose ca.crt is not PEM X.509: ${(err as Error).message}`);
  }
  if (certs.length === 0) fail(field, `names Secret ${quote(secretName)}, whose ca.crt holds no PEM certificate`);
  if (!certs.every((c) => c.ca)) fail(field, `names Secret ${quote(secretName)}, whose ca.crt holds a certificate that is not a CA`);
  return { file: `${secretName}.crt`, pem: certs.map((c) => c.toString().trim()).join('\n') + '\n' };
}

export function proposals(pqMode: PqMode, keyExchange: MlKem): { ike: string[]; esp: string[] } {
  const ke = `ke1_${ML_KEM_KEYWORD[keyExchange]}${pqMode === 'compatible' ? '-ke1_none' : ''}`;
  return {
    ike: [`${CLASSICAL.encryption}-${CLASSICAL.prf}-${CLASSICAL.keyExchange}-${ke}`],
    esp: [`${CLASSICAL.encryption}-${CLASSICAL.keyExchange}-${ke}`],
  };
}

function translateGateway(gw: VpnGatewayResource, secrets: SecretLookup, now: Date): GatewayModel {
  const spec = gw.spec ?? fail('spec', 'is required');
  const namespace = gw.metadata.namespace ?? '';
  const listenAddress = address(spec.listen?.address, 'spec.listen.address');
  const pqMode = (spec.pqMode ?? 'strict') as PqMode;
  if (!PQ_MODES.includes(pqMode)) fail('spec.pqMode', `${quote(String(spec.pqMode))} is not one of ${PQ_MODES.join(', ')}`);
  const keyExchange = (spec.keyExchange ?? 'ml-kem-768') as MlKem;
  if (!ML_KEMS.includes(keyExchange)) fail('spec.keyExchange', `${quote(String(spec.keyExchange))} is not one of ${ML_KEMS.join(', ')}`);
  const localSubnets = subnets(spec.localSubnets, 'spec.localSubnets');
  const certName = required(spec.certificate?.secretName, 'spec.certificate.secretName');
  const certSecret = secrets(namespace, certName);
  const credential = readCredential(certSecret, certName, 'spec.certificate.secretName', now);
  const ca = certSecret?.data?.['ca.crt'] ? readCa(certSecret, certName, 'spec.certificate.secretName') : undefined;

  const ppk = spec.ppk ? translatePpk(gw, secrets) : undefined;

  const pools = (spec.pools ?? []).map((pool, i) => {
    const name = required(pool.name, `spec.pools[${i}].name`);
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name)) fail(`spec.pools[${i}].name`, `${quote(name)} is not a DNS label`);
    const [subnet] = subnets([pool.subnet], `spec.pools[${i}].subnet`);
    for (const local of localSubnets) if (overlaps(local, subnet!)) fail(`spec.pools[${i}].subnet`, `${subnet!.text} overlaps spec.localSubnets ${local.text}`);
    return { name, subnet: subnet! };
  });
  pools.forEach((a, i) => pools.slice(i + 1).forEach((b) => {
    if (a.name === b.name) fail('spec.pools', `names pool ${quote(a.name)} twice`);
    if (overlaps(a.subnet, b.subnet)) fail('spec.pools', `pools ${a.name} and ${b.name} overlap`);
  }));
  const rekeySeconds = spec.rekeySeconds ?? 3600;
  if (!Number.isInteger(rekeySeconds) || rekeySeconds < 10 || rekeySeconds > 86400) fail('spec.rekeySeconds', 'must be a whole number of seconds from 10 to 86400');

  const { ike, esp } = proposals(pqMode, keyExchange);
  return {
    ref: ref('VpnGateway', gw),
    listenAddress,
    publicAddress: spec.publicAddress === undefined ? listenAddress : address(spec.publicAddress, 'spec.publicAddress'),
    ikePort: port(spec.listen?.port, DEFAULT_IKE_PORT, 'spec.listen.port'),
    natPort: port(spec.listen?.natTraversalPort, DEFAULT_NAT_PORT, 'spec.listen.natTraversalPort'),
    localSubnets,
    pqMode,
    keyExchange,
    ikeProposals: ike,
    espProposals: esp,
    childless: pqMode === 'strict' ? 'force' : 'allow',
    rekeySeconds,
    credential,
    ca,
    ppk,
    pools,
  };
}

const DEFAULT_PPK_BASE_ID = 'qubesec-ppk';
const DEFAULT_ROTATION_INTERVAL = '720h';
const ROTATION_INTERVAL_MS = { min: 10_000, max: 8760 * 3600_000 };

/** spec.ppk.generate with its defaults, or undefined for a PPK Secret the user makes. Throws FieldError. */
function parsePpkGeneration(gw: VpnGatewayResource): PpkGeneration | undefined {
  const ppk = gw.spec?.ppk;
  if (!ppk?.generate) return undefined;
  if (typeof ppk.generate !== 'object') fail('spec.ppk.generate', 'must be an object ({rotationInterval: 720h})');
  const secretName = ppk.secretName ?? `${gw.metadata.name ?? ''}-ppk`;
  const nameProblem = checkObjectName(secretName);
  if (nameProblem) fail('spec.ppk.secretName', nameProblem);
  // The id gets a dash and the PPK's creation time (17 characters) and stays within strongSwan's 64.
  const baseId = ppk.id ?? DEFAULT_PPK_BASE_ID;
  if (typeof baseId !== 'string' || !/^[A-Za-z0-9_-]{1,47}$/.test(baseId)) fail('spec.ppk.id', `${quote(String(baseId))} may hold only 1-47 letters, digits, _ and - with spec.ppk.generate (each PPK's id adds its creation time)`);
  const interval = ppk.generate.rotationInterval ?? DEFAULT_ROTATION_INTERVAL;
  const intervalMs = typeof interval === 'string' ? parseDuration(interval) : undefined;
  if (intervalMs === undefined || intervalMs % 1000 !== 0 || intervalMs < ROTATION_INTERVAL_MS.min || intervalMs > ROTATION_INTERVAL_MS.max) {
    fail('spec.ppk.generate.rotationInterval', `${quote(String(interval))} is not a whole number of seconds from 10s to 8760h, like 720h`);
  }
  return { secretName, baseId, intervalMs };
}

/** What the controller makes and rotates for `gw`: undefined without spec.ppk.generate or when it is invalid (translateVpn says why). */
export function ppkGeneration(gw: VpnGatewayResource): PpkGeneration | undefined {
  try {
    return parsePpkGeneration(gw);
  } catch (err) {
    if (err instanceof FieldError) return undefined;
    throw err;
  }
}

function translatePpk(gw: VpnGatewayResource, secrets: SecretLookup): GatewayPpk {
  const spec = gw.spec!.ppk!;
  const namespace = gw.metadata.namespace ?? '';
  const peersMustHaveIt = spec.required ?? true;
  const generation = parsePpkGeneration(gw);
  if (generation) {
    const name = generation.secretName;
    const secret = secrets(namespace, name) ?? fail('spec.ppk.generate', `is set and Secret ${quote(name)} is not made yet (the gateway controller makes it)`);
    const stored = readStoredPpks(secret, gw.metadata.uid);
    if ('error' in stored) fail('spec.ppk.secretName', `names Secret ${quote(name)}, which ${stored.error}`);
    const keys = [stored.current, ...(stored.previous ? [stored.previous] : [])].map((k) => ({ id: k.id, hex: k.bytes.toString('hex') }));
    return { id: stored.current.id, keys, required: peersMustHaveIt, rotation: { created: stored.current.created, intervalMs: generation.intervalMs } };
  }
  const name = required(spec.secretName, 'spec.ppk.secretName');
  const id = required(spec.id, 'spec.ppk.id');
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) fail('spec.ppk.id', `${quote(id)} may hold only 1-64 letters, digits, _ and -`);
  const secret = secrets(namespace, name) ?? fail('spec.ppk.secretName', `names Secret ${quote(name)}, which does not exist`);
  const bytes = secretData(secret, 'ppk') ?? fail('spec.ppk.secretName', `names Secret ${quote(name)}, which has no key "ppk"`);
  if (bytes.length < MIN_PPK_BYTES) fail('spec.ppk.secretName', `names Secret ${quote(name)}, whose ppk has ${bytes.length} bytes (RFC 8784 wants at least ${MIN_PPK_BYTES})`);
  return { id, keys: [{ id, hex: bytes.toString('hex') }], required: peersMustHaveIt, rotation: undefined };
}

/** What earlier (older) peers of the gateway hold: a later peer that collides with them fails, the earlier keeps working. */
interface Claimed {
  subnets: { subnet: Subnet; peer: string }[];
  identities: Map<string, string>;
}

function translatePeer(peer: VpnPeerResource, gateway: GatewayModel, secrets: SecretLookup, claimed: Claimed): PeerModel {
  const spec = peer.spec ?? fail('spec', 'is required');
  const namespace = peer.metadata.namespace ?? '';
  const name = peer.metadata.name ?? '';
  const nameProblem = checkObjectName(name);
  if (nameProblem) fail('metadata.name', nameProblem);
  if (Boolean(spec.site) === Boolean(spec.remoteAccess)) fail('spec', 'must hold exactly one of site and remoteAccess');
  const ca = (caName: string | undefined, field: string): Ca => {
    if (caName !== undefined) return readCa(secrets(namespace, caName), caName, field);
    return gateway.ca ?? fail(field, `is not set and the gateway's certificate Secret has no ca.crt to trust instead (unknown CA)`);
  };
  const base = { ref: ref('VpnPeer', peer), connection: name.replaceAll('.', '_') };
  let model: PeerModel;
  if (spec.site) {
    const site = spec.site;
    const remoteSubnets = subnets(site.remoteSubnets, 'spec.site.remoteSubnets');
    for (const subnet of remoteSubnets) {
      for (const local of gateway.localSubnets) if (overlaps(subnet, local)) fail('spec.site.remoteSubnets', `${subnet.text} overlaps the gateway's local subnet ${local.text}`);
      for (const pool of gateway.pools) if (overlaps(subnet, pool.subnet)) fail('spec.site.remoteSubnets', `${subnet.text} overlaps the gateway's pool ${pool.name} (${pool.subnet.text})`);
      for (const other of claimed.subnets) if (overlaps(subnet, other.subnet)) fail('spec.site.remoteSubnets', `${subnet.text} overlaps ${other.subnet.text} of VpnPeer ${quote(other.peer)}`);
    }
    model = {
      ...base,
      type: 'site',
      identity: identity(site.identity, 'spec.site.identity'),
      ca: ca(required(site.caSecretName, 'spec.site.caSecretName'), 'spec.site.caSecretName'),
      remoteAddress: address(site.remoteAddress, 'spec.site.remoteAddress'),
      remoteSubnets,
      localSubnets: gateway.localSubnets,
      pool: undefined,
    };
  } else {
    const user = spec.remoteAccess!;
    const allowed = subnets(user.allowedSubnets, 'spec.remoteAccess.allowedSubnets');
    for (const subnet of allowed) {
      if (!gateway.localSubnets.some((local) => contains(local, subnet))) fail('spec.remoteAccess.allowedSubnets', `${subnet.text} is not inside the gateway's local subnets (${gateway.localSubnets.map((s) => s.text).join(', ')})`);
    }
    const poolName = required(user.pool, 'spec.remoteAccess.pool');
    if (!gateway.pools.some((p) => p.name === poolName)) fail('spec.remoteAccess.pool', `${quote(poolName)} is not a pool of VpnGateway ${quote(gateway.ref.name)}`);
    model = {
      ...base,
      type: 'remoteAccess',
      identity: identity(user.identity, 'spec.remoteAccess.identity'),
      ca: ca(user.caSecretName, 'spec.remoteAccess.caSecretName'),
      remoteAddress: undefined,
      remoteSubnets: [],
      localSubnets: allowed,
      pool: poolName,
    };
  }
  const holder = claimed.identities.get(model.identity);
  if (holder) fail(model.type === 'site' ? 'spec.site.identity' : 'spec.remoteAccess.identity', `${quote(model.identity)} is already the identity of VpnPeer ${quote(holder)}`);
  claimed.identities.set(model.identity, name);
  for (const subnet of model.remoteSubnets) claimed.subnets.push({ subnet, peer: name });
  return model;
}

/** Older first (then by name): on a collision the peer that came later fails, the one already connected stays. */
function byAge(a: VpnPeerResource, b: VpnPeerResource): number {
  const at = (p: VpnPeerResource) => new Date(p.metadata.creationTimestamp ?? 0).getTime();
  return at(a) - at(b) || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');
}

/**
 * The gateway and its peers (VpnPeers in its namespace whose spec.gateway names it) as the model charon is configured
 * from. Pure: Secrets come through `secrets`, the time through `now`.
 */
export function translateVpn(gateway: VpnGatewayResource, peers: readonly VpnPeerResource[], secrets: SecretLookup, now: Date): Translation {
  const diagnostics: Diagnostic[] = [];
  const invalid = (object: ObjectRef, err: unknown): void => {
    if (!(err instanceof FieldError)) throw err;
    diagnostics.push({ object, type: 'Warning', reason: 'Invalid', message: err.message });
  };
  let gatewayModel: GatewayModel;
  try {
    gatewayModel = translateGateway(gateway, secrets, now);
  } catch (err) {
    invalid(ref('VpnGateway', gateway), err);
    return { model: undefined, diagnostics };
  }
  const claimed: Claimed = { subnets: [], identities: new Map() };
  const models: PeerModel[] = [];
  const ours = peers.filter((p) => p.metadata.namespace === gateway.metadata.namespace && p.spec?.gateway === gateway.metadata.name);
  for (const peer of [...ours].sort(byAge)) {
    try {
      models.push(translatePeer(peer, gatewayModel, secrets, claimed));
    } catch (err) {
      invalid(ref('VpnPeer', peer), err);
    }
  }
  return { model: { gateway: gatewayModel, peers: models }, diagnostics };
}
