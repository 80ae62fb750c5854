// What charon reports, as data: `swanctl --list-sas --pretty` parsed into SAs, a VpnPeer's status made from them, and
// charon's log lines turned into refusals. --pretty, not --raw: raw prints values unquoted and space-separated, so a
// distinguished name ("CN=a, O=b") cannot be told from the next key; pretty gives each value its own line. Pure.

export interface ChildSa {
  name: string;
  state: string;
  encryption: string;
  keyExchanges: string[];
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
  /** Seconds since this CHILD_SA was installed (made or rekeyed). */
  installedSeconds: number;
}

export interface IkeSa {
  /** The connection's name (a VpnPeer's connection). */
  connection: string;
  state: string;
  remoteHost: string;
  remoteId: string;
  encryption: string;
  prf: string;
  /** The classical exchange, then each additional exchange (RFC 9370 ake1..ake7), in order. */
  keyExchanges: string[];
  ppk: boolean;
  establishedSeconds: number;
  children: ChildSa[];
}

type Tree = { [key: string]: string | string[] | Tree };

/** Parses swanctl's pretty output (one or more `name {` ... `}` messages) into one tree per top-level message. */
export function parsePretty(text: string): Tree[] {
  const messages: Tree[] = [];
  const stack: Tree[] = [];
  let list: string[] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (list) {
      if (line === ']') list = undefined;
      else list.push(line);
      continue;
    }
    if (line === '}') {
      stack.pop();
      continue;
    }
    const section = /^(.*) \{$/.exec(line);
    if (section) {
      const child: Tree = {};
      if (stack.length === 0) messages.push({ [section[1]!]: child });
      else stack.at(-1)![section[1]!] = child;
      stack.push(child);
      continue;
    }
    const pair = /^([^=]+?) = (.*)$/.exec(line);
    if (!pair || stack.length === 0) continue;
    if (pair[2] === '[') stack.at(-1)![pair[1]!] = list = [];
    else stack.at(-1)![pair[1]!] = pair[2]!;
  }
  return messages;
}

const text = (t: Tree, key: string): string => (typeof t[key] === 'string' ? t[key] : '');
const number = (t: Tree, key: string): number => Number(text(t, key) || 0);

function keyExchanges(t: Tree): string[] {
  const additional = [1, 2, 3, 4, 5, 6, 7].map((i) => text(t, `ake${i}`)).filter(Boolean);
  return [text(t, 'dh-group'), ...additional].filter(Boolean);
}

/** The IKE SAs in `swanctl --list-sas --pretty` output ("list-sa event" messages). */
export function parseSas(output: string): IkeSa[] {
  const sas: IkeSa[] = [];
  for (const message of parsePretty(output)) {
    const event = message['list-sa event'];
    if (!event || typeof event !== 'object' || Array.isArray(event)) continue;
    for (const [connection, value] of Object.entries(event)) {
      if (typeof value !== 'object' || Array.isArray(value)) continue;
      const sa = value;
      const childTree = sa['child-sas'];
      const children = childTree && typeof childTree === 'object' && !Array.isArray(childTree) ? Object.values(childTree) : [];
      sas.push({
        connection,
        state: text(sa, 'state'),
        remoteHost: text(sa, 'remote-host'),
        remoteId: text(sa, 'remote-id'),
        encryption: `${text(sa, 'encr-alg')}${text(sa, 'encr-keysize') ? `-${text(sa, 'encr-keysize')}` : ''}`,
        prf: text(sa, 'prf-alg'),
        keyExchanges: keyExchanges(sa),
        ppk: text(sa, 'ppk') === 'yes',
        establishedSeconds: number(sa, 'established'),
        children: children.filter((c): c is Tree => typeof c === 'object' && !Array.isArray(c)).map((c) => ({
          name: text(c, 'name'),
          state: text(c, 'state'),
          encryption: `${text(c, 'encr-alg')}${text(c, 'encr-keysize') ? `-${text(c, 'encr-keysize')}` : ''}`,
          keyExchanges: keyExchanges(c),
          bytesIn: number(c, 'bytes-in'),
          bytesOut: number(c, 'bytes-out'),
          packetsIn: number(c, 'packets-in'),
          packetsOut: number(c, 'packets-out'),
          installedSeconds: number(c, 'install-time'),
        })),
      });
    }
  }
  return sas;
}

export const isPostQuantum = (keyExchanges: readonly string[]): boolean => keyExchanges.some((ke) => ke.startsWith('ML_KEM_'));

export interface PeerStatus {
  connected: boolean;
  /** False when a connected SA negotiated no ML-KEM (compatible mode with a classical peer). */
  postQuantum: boolean;
  remoteAddress?: string;
  ike?: { encryption: string; prf: string; keyExchanges: string[]; ppk: boolean; established: string };
  children: { encryption: string; keyExchanges: string[]; bytesIn: number; bytesOut: number; lastRekey: string; state: string }[];
  conditions: { type: string; status: 'True' | 'False'; reason: string; message: string; lastTransitionTime?: string }[];
}

const ago = (now: Date, seconds: number) => new Date(now.getTime() - seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A VpnPeer's status from the SAs of its connection (the newest established one counts) and its translation error. */
export function peerStatus(sas: readonly IkeSa[], connection: string, invalid: string | undefined, now: Date): PeerStatus {
  if (invalid) {
    return { connected: false, postQuantum: false, children: [], conditions: [{ type: 'Ready', status: 'False', reason: 'Invalid', message: invalid }] };
  }
  const sa = sas.filter((s) => s.connection === connection && s.state === 'ESTABLISHED').sort((a, b) => a.establishedSeconds - b.establishedSeconds)[0];
  if (!sa) {
    return { connected: false, postQuantum: false, children: [], conditions: [{ type: 'Ready', status: 'False', reason: 'NotConnected', message: 'loaded into charon; no IKE SA is established' }] };
  }
  // A rekeyed CHILD_SA lingers a moment as REKEYED or DELETED next to its successor: only live ones count.
  const live = sa.children.filter((c) => c.state !== 'DELETED' && c.state !== 'REKEYED');
  const children = live.map((c) => ({ encryption: c.encryption, keyExchanges: c.keyExchanges, bytesIn: c.bytesIn, bytesOut: c.bytesOut, lastRekey: ago(now, c.installedSeconds), state: c.state }));
  const postQuantum = isPostQuantum(sa.keyExchanges) && live.every((c) => c.keyExchanges.length === 0 || isPostQuantum(c.keyExchanges));
  return {
    connected: true,
    postQuantum,
    remoteAddress: sa.remoteHost,
    ike: { encryption: sa.encryption, prf: sa.prf, keyExchanges: sa.keyExchanges, ppk: sa.ppk, established: ago(now, sa.establishedSeconds) },
    children,
    conditions: [postQuantum
      ? { type: 'Ready', status: 'True', reason: 'Connected', message: `IKE SA with ${sa.keyExchanges.join(' + ')}${sa.ppk ? ' and a PPK' : ''}` }
      : { type: 'Ready', status: 'True', reason: 'ConnectedClassical', message: `IKE SA with ${sa.keyExchanges.join(' + ')} only: not post-quantum (compatible mode)` }],
  };
}

/** A VpnPeer's status once its VpnGateway is deleted (nothing of it is loaded in charon). */
export function peerStatusWithoutGateway(gateway: string): PeerStatus {
  return { connected: false, postQuantum: false, children: [], conditions: [{ type: 'Ready', status: 'False', reason: 'GatewayDeleted', message: `VpnGateway "${gateway}" was deleted: nothing of it is loaded in charon` }] };
}

/** What charon refused, from its log: a proposal (NO_PROPOSAL_CHOSEN) or an authentication (AUTHENTICATION_FAILED). */
export type Refusal =
  | {
    kind: 'proposal';
    remoteAddress: string;
    /** What the peer offered, as charon prints it (IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519). */
    offered: string;
    configured: string;
  }
  | {
    kind: 'authentication';
    remoteAddress: string;
    /** The identity the peer claimed ('' if it did not get that far). */
    remoteId: string;
    /** charon's last line saying why (no trusted key, CA constraint, PPK), or '' if it gave none. */
    reason: string;
  };

// charon's lines that say why an IKE_AUTH fails (strongSwan 6.1's wording).
const AUTH_FAILURE_REASON = /no trusted \S+ public key found|constraint check failed|no matching peer config|PPK|authentication of .* failed|signature validation failed|no shared key found|no private key found/;

interface SaLog {
  remoteAddress?: string;
  offered?: string;
  configured?: string;
  remoteId?: string;
  reason?: string;
}

/**
 * Follows charon's log (lines like `07[CFG] <3> received proposals: ...`): the lines of one IKE SA (its unique id, with
 * ike_name; else those of one worker thread, which handles one message) belong together: "is initiating IKE_SA",
 * "received proposals", "configured proposals", then "received proposals unacceptable" (a refused proposal); or
 * "looking for peer configs matching ...", a line saying what failed, then an IKE_AUTH response with N(AUTH_FAILED).
 * Returns a refusal when a line completes one. An entry is dropped when it completes, and the map is bounded.
 */
export class RefusalParser {
  private readonly sas = new Map<string, SaLog>();

  line(line: string): Refusal | undefined {
    // "10[CFG] <site-b|3> message": thread, subsystem, the IKE SA (name|unique id, or the id alone while unnamed).
    const match = /^\s*(\d+)\[(\w+)\] (?:<(?:[^>|]*\|)?(\d+)> )?(.*)$/.exec(line);
    if (!match) return undefined;
    const [, thread = '', subsystem = '', sa, message = ''] = match;
    const key = sa === undefined ? `thread ${thread}` : `sa ${sa}`;
    const state = this.sas.get(key) ?? {};
    this.sas.set(key, state);
    if (this.sas.size > 1000) this.sas.delete(this.sas.keys().next().value!);
    let m: RegExpExecArray | null;
    if ((m = /^(\S+) is initiating (an )?IKE_SA/.exec(message))) {
      this.sas.set(key, { remoteAddress: m[1]! });
    } else if ((m = /^received proposals: (.*)$/.exec(message))) {
      state.offered = m[1]!;
    } else if ((m = /^configured proposals: (.*)$/.exec(message))) {
      state.configured = m[1]!;
    } else if (/^received proposals unacceptable|^no acceptable proposal found/.test(message) && state.remoteAddress && state.offered) {
      this.sas.delete(key);
      return { kind: 'proposal', remoteAddress: state.remoteAddress, offered: state.offered, configured: state.configured ?? '' };
    } else if ((m = /^looking for peer configs matching \S+\.\.\.([^[\s]+)\[(.*)\]$/.exec(message))) {
      state.remoteAddress ??= m[1]!;
      state.remoteId = m[2]!;
    } else if (/^generating IKE_AUTH response .*N\(AUTH_FAILED\)/.test(message) && state.remoteAddress) {
      this.sas.delete(key);
      return { kind: 'authentication', remoteAddress: state.remoteAddress, remoteId: state.remoteId ?? '', reason: state.reason ?? '' };
    } else if ((subsystem === 'IKE' || subsystem === 'CFG') && AUTH_FAILURE_REASON.test(message)) {
      state.reason = message;
    }
    return undefined;
  }
}
