// The sources' configuration file: what it turns into, and each mistake named by its field.
import { createSources, parseQrngConfig, QrngConfigError } from './config.js';
import { DeviceSource, OpenApiSource, OsSource } from './sources.js';

const errorsOf = (text: string): string => {
  try {
    parseQrngConfig(text, 'sources.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(QrngConfigError);
    return (err as Error).message;
  }
  throw new Error('no error');
};

describe('parseQrngConfig', () => {
  it('reads the three kinds of source with their sample models, alpha as a number or 2^-N', () => {
    const config = parseQrngConfig(
      `retry: {initialMs: 500, maxMs: 30000}
sources:
  - {name: vendor, type: openapi, url: "https://qrng.example/api", variant: qrypt, bearerTokenFile: /run/token, minEntropy: 7.5, alpha: "2^-30"}
  - {name: card, type: device, path: /dev/qrandom0, sampleBits: 1, minEntropy: 0.8, alpha: 9.5367431640625e-7}
  - {name: os, type: os, minEntropy: 8}
`,
      'sources.yaml',
    );
    expect(config).toEqual({
      creditNonQuantum: false,
      retry: { initialMs: 500, maxMs: 30000 },
      sources: [
        { type: 'openapi', name: 'vendor', url: 'https://qrng.example/api', variant: 'qrypt', bearerTokenFile: '/run/token', model: { sampleBits: 8, minEntropy: 7.5, alpha: 2 ** -30 } },
        { type: 'device', name: 'card', path: '/dev/qrandom0', quantum: true, model: { sampleBits: 1, minEntropy: 0.8, alpha: 2 ** -20 } },
        { type: 'os', name: 'os', model: { sampleBits: 8, minEntropy: 8, alpha: 2 ** -20 } },
      ],
    });
  });

  it('takes JSON too', () => {
    expect(parseQrngConfig('{"sources": [{"name": "os", "type": "os", "minEntropy": 8}], "creditNonQuantum": true}', 'x.json').creditNonQuantum).toBe(true);
  });

  it('names every wrong field at once, with the source it belongs to', () => {
    const message = errorsOf(`colour: blue
creditNonQuantum: yes
sources:
  - {name: vendor, type: openapi, url: "ftp://x", minEntropy: 6, certFile: /c, blockSize: 0}
  - {name: vendor, type: device, path: dev/x, minEntropy: 6, quantum: "no"}
  - {name: Bad_Name, type: os}
  - {type: serial}
  - {name: h, type: os, minEntropy: 9, alpha: 0.5}
`);
    for (const expected of [
      'sources.yaml: colour is not a known field',
      'sources.yaml: creditNonQuantum must be true or false',
      'sources[0] ("vendor").url must be an http(s) URL, not "ftp://x"',
      'sources[0] ("vendor").certFile and keyFile go together',
      'sources[0] ("vendor").blockSize must be a positive whole number, not 0',
      'sources[1] ("vendor").name "vendor" names two sources',
      'sources[1] ("vendor").path must be an absolute path',
      'sources[1] ("vendor").quantum must be true or false',
      'sources[2] ("Bad_Name").name must be a lower-case name',
      'sources[2] ("Bad_Name").minEntropy is required',
      'sources[3].type must be openapi, device or os, not "serial"',
      'sources[4] ("h"): minEntropy (H) must be above 0 and at most 8',
    ]) expect(message).toContain(expected);
  });

  it('refuses a file that is no map, has no sources, or a bad retry', () => {
    expect(errorsOf('- a')).toBe('sources.yaml: must be a map with a "sources" list');
    expect(errorsOf('sources: []')).toBe('sources.yaml: sources must be a non-empty list');
    expect(errorsOf('retry: {initialMs: 5000, maxMs: 100, every: 1}\nsources: [{name: os, type: os, minEntropy: 8}]')).toBe(
      'sources.yaml: retry.every is not a field of retry (initialMs, maxMs)\nsources.yaml: retry.initialMs (5000) is above retry.maxMs (100)',
    );
    expect(errorsOf('sources: [{name: os, type: os, minEntropy: 8, alpha: "1/2"}]')).toContain('sources[0] ("os").alpha must be a number or "2^-N", not "1/2"');
  });
});

describe('createSources', () => {
  it('makes each source with its credentials read from the files named, and names a missing file', () => {
    const config = parseQrngConfig('sources:\n  - {name: vendor, type: openapi, url: "https://q.example", bearerTokenFile: /t, minEntropy: 6}\n  - {name: card, type: device, path: /dev/qrandom0, minEntropy: 7}\n  - {name: os, type: os, minEntropy: 8}\n', 's.yaml');
    const read: string[] = [];
    const reader = (path: string) => (read.push(path), path === '/t' ? 'secret-token\n' : '');
    const sources = createSources(config, reader);
    expect(sources.map((s) => s.constructor)).toEqual([OpenApiSource, DeviceSource, OsSource]);
    expect(sources.map((s) => [s.name, s.quantum])).toEqual([['vendor', true], ['card', true], ['os', false]]);
    expect(read).toEqual(['/t']);
    const missing = parseQrngConfig('sources: [{name: vendor, type: openapi, url: "https://q.example", caFile: /nowhere/ca.pem, minEntropy: 6}]', 's.yaml');
    expect(() => createSources(missing)).toThrow('entropy source "vendor": caFile /nowhere/ca.pem: no such file');
    void Promise.all(sources.map((s) => s.close()));
  });
});
