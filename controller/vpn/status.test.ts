import { RefusalParser, parsePretty, parseSas, peerStatus } from './status.js';

// `swanctl --list-sas --pretty` as strongSwan 6.1 printed it on a site peer (e2e setup), shortened; a second,
// rekeyed CHILD_SA added.
const LIST_SAS = `list-sa event {
  site-b {
    uniqueid = 3
    version = 2
    state = ESTABLISHED
    local-host = 198.18.200.1
    local-id = CN=gw.vpn.test, O=QubeSec
    remote-host = 198.18.200.2
    remote-id = CN=site-b
    encr-alg = AES_GCM_16
    encr-keysize = 256
    prf-alg = PRF_HMAC_SHA2_384
    dh-group = CURVE_25519
    ake1 = ML_KEM_768
    ppk = yes
    established = 20
    child-sas {
      site-b-1 {
        name = site-b
        state = DELETED
        encr-alg = AES_GCM_16
        encr-keysize = 256
        dh-group = CURVE_25519
        ake1 = ML_KEM_768
        bytes-in = 5
        bytes-out = 5
        install-time = 20
      }
      site-b-2 {
        name = site-b
        state = INSTALLED
        encr-alg = AES_GCM_16
        encr-keysize = 256
        dh-group = CURVE_25519
        ake1 = ML_KEM_768
        bytes-in = 840
        packets-in = 10
        bytes-out = 840
        packets-out = 10
        install-time = 2
        local-ts = [
          198.18.210.0/24
        ]
        remote-ts = [
          198.18.220.0/24
        ]
      }
    }
  }
}
list-sa event {
  legacy {
    state = ESTABLISHED
    remote-host = 198.18.200.4
    encr-alg = AES_GCM_16
    encr-keysize = 256
    prf-alg = PRF_HMAC_SHA2_384
    dh-group = CURVE_25519
    established = 5
    child-sas {
      legacy-3 {
        name = legacy
        state = INSTALLED
        encr-alg = AES_GCM_16
        encr-keysize = 256
        dh-group = CURVE_25519
        install-time = 5
      }
    }
  }
}
list-sas reply {
}
`;

const now = new Date('2026-12-01T12:00:00Z');

describe('parsePretty', () => {
  it('keeps values with spaces and "=" whole, and lists as lists', () => {
    const [first] = parsePretty(LIST_SAS);
    const sa = (first!['list-sa event'] as Record<string, Record<string, unknown>>)['site-b']!;
    expect(sa['local-id']).toBe('CN=gw.vpn.test, O=QubeSec');
    expect((sa['child-sas'] as Record<string, Record<string, unknown>>)['site-b-2']!['remote-ts']).toEqual(['198.18.220.0/24']);
  });
});

describe('parseSas and peerStatus', () => {
  const sas = parseSas(LIST_SAS);

  it('reads each IKE SA with its key exchanges (classical, then RFC 9370 additional ones) and its CHILD_SAs', () => {
    expect(sas.map((s) => [s.connection, s.keyExchanges, s.ppk, s.children.length])).toEqual([
      ['site-b', ['CURVE_25519', 'ML_KEM_768'], true, 2],
      ['legacy', ['CURVE_25519'], false, 1],
    ]);
  });

  it('reports a hybrid SA as connected and post-quantum, with the live CHILD_SA only', () => {
    expect(peerStatus(sas, 'site-b', undefined, now)).toEqual({
      connected: true,
      postQuantum: true,
      remoteAddress: '198.18.200.2',
      ike: { encryption: 'AES_GCM_16-256', prf: 'PRF_HMAC_SHA2_384', keyExchanges: ['CURVE_25519', 'ML_KEM_768'], ppk: true, established: '2026-12-01T11:59:40Z' },
      children: [{ encryption: 'AES_GCM_16-256', keyExchanges: ['CURVE_25519', 'ML_KEM_768'], bytesIn: 840, bytesOut: 840, lastRekey: '2026-12-01T11:59:58Z', state: 'INSTALLED' }],
      conditions: [{ type: 'Ready', status: 'True', reason: 'Connected', message: 'IKE SA with CURVE_25519 + ML_KEM_768 and a PPK' }],
    });
  });

  it('reports a classical SA as connected but not post-quantum', () => {
    const s = peerStatus(sas, 'legacy', undefined, now);
    expect(s).toMatchObject({ connected: true, postQuantum: false });
    expect(s.conditions[0]).toMatchObject({ reason: 'ConnectedClassical', message: 'IKE SA with CURVE_25519 only: not post-quantum (compatible mode)' });
  });

  it('reports no SA, and an invalid peer, as not connected with the reason', () => {
    expect(peerStatus(sas, 'alice', undefined, now).conditions[0]).toMatchObject({ status: 'False', reason: 'NotConnected' });
    expect(peerStatus(sas, 'site-b', 'spec.site.identity is required', now)).toMatchObject({ connected: false, conditions: [{ reason: 'Invalid', message: 'spec.site.identity is required' }] });
  });
});

describe('RefusalParser', () => {
  it("follows an IKE SA's log lines to the refusal, with what the peer offered", () => {
    const parser = new RefusalParser();
    const lines = [
      '10[NET] <1> received packet: from 198.18.200.4[500] to 198.18.200.1[500] (240 bytes)',
      '10[IKE] <1> 198.18.200.4 is initiating IKE_SA (unnamed)[1]',
      '11[IKE] <site-b|2> 198.18.200.2 is initiating IKE_SA site-b[2]',
      '10[CFG] <1> received proposals: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519',
      '10[CFG] <1> configured proposals: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519/KE1_ML_KEM_768',
      '11[CFG] <site-b|2> received proposals: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519/KE1_ML_KEM_768',
    ];
    expect(lines.map((l) => parser.line(l)).filter(Boolean)).toEqual([]);
    expect(parser.line('10[IKE] <1> received proposals unacceptable')).toEqual({
      kind: 'proposal',
      remoteAddress: '198.18.200.4',
      offered: 'IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519',
      configured: 'IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519/KE1_ML_KEM_768',
    });
    expect(parser.line('10[IKE] <1> received proposals unacceptable')).toBeUndefined();
  });
});

describe('RefusalParser on a failed IKE_AUTH', () => {
  it("names the peer's address, claimed identity and charon's reason", () => {
    const parser = new RefusalParser();
    for (const line of [
      '14[IKE] <1> 198.18.200.4 is initiating IKE_SA (unnamed)[1]',
      '13[CFG] <1> looking for peer configs matching 198.18.200.1[CN=gw.vpn.test]...198.18.200.4[CN=legacy]',
      "13[CFG] <legacy|1> selected peer config 'legacy'",
      '13[IKE] <legacy|1> signature validation failed, looking for another key',
      '13[IKE] <legacy|1> peer supports MOBIKE, but disabled in config',
    ]) expect(parser.line(line)).toBeUndefined();
    expect(parser.line('13[ENC] <legacy|1> generating IKE_AUTH response 1 [ N(AUTH_FAILED) ]')).toEqual({
      kind: 'authentication', remoteAddress: '198.18.200.4', remoteId: 'CN=legacy', reason: 'signature validation failed, looking for another key',
    });
  });
});
