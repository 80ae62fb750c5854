import { parseSettings } from './annotations.js';
import { CAPABILITIES } from './testing.js';

describe('qubesec.io annotations', () => {
  it('reads pq-mode, tls-groups and tls-min-version', () => {
    const r = parseSettings({
      'qubesec.io/pq-mode': 'strict',
      'qubesec.io/tls-groups': 'x25519mlkem768, SecP384r1MLKEM1024',
      'qubesec.io/tls-min-version': 'TLSv1.3',
      'other.io/thing': 'ignored',
    }, CAPABILITIES);
    expect(r.errors).toEqual([]);
    expect(r.settings).toEqual({ pqMode: 'strict', tlsGroups: ['X25519MLKEM768', 'SecP384r1MLKEM1024'], tlsMinVersion: 'TLSv1.3' });
  });

  it('names the annotation and the value it rejects', () => {
    const r = parseSettings({ 'qubesec.io/pq-mode': 'quantum', 'qubesec.io/tls-groups': 'X25519:Kyber512', 'qubesec.io/tls-min-version': '1.1' }, CAPABILITIES);
    expect(r.errors).toEqual([
      'annotation qubesec.io/pq-mode: "quantum" is not one of hybrid, strict, classical',
      'annotation qubesec.io/tls-groups: group "Kyber512" is not supported by the data plane (OpenSSL 3.5.9)',
      'annotation qubesec.io/tls-min-version: "1.1" is not 1.2 or 1.3',
    ]);
    expect(r.settings).toEqual({});
  });

  it('rejects an empty group list', () => {
    const r = parseSettings({ 'qubesec.io/tls-groups': ' : ' }, CAPABILITIES);
    expect(r.errors).toEqual(['annotation qubesec.io/tls-groups: is empty: list TLS groups separated by ":" or ","']);
  });

  it('reads ConfigMap keys with the same parsers', () => {
    const r = parseSettings({ 'pq-mode': 'classical', 'tls-min-version': '1.2', unrelated: 'x' }, CAPABILITIES, '', (k) => `key ${k}`);
    expect(r.settings).toEqual({ pqMode: 'classical', tlsMinVersion: 'TLSv1.2' });
    expect(parseSettings({ 'pq-mode': 'x' }, CAPABILITIES, '', (k) => `key ${k}`).errors[0]).toMatch(/^key pq-mode: /);
  });
});
