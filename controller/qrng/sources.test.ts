// The sources' own checks, without I/O: configuration errors name the source and the field; answers' base64 is
// decoded strictly (the e2e tests run the sources against a real HTTPS server and a FIFO).
import { DeviceSource, OpenApiSource, decodeBlock } from './sources.js';

const model = { sampleBits: 8 as const, minEntropy: 7 };

describe('decodeBlock', () => {
  it('takes exact, well-formed base64 only', () => {
    const block = Buffer.from('0123456789abcdef');
    expect(decodeBlock(block.toString('base64'), 16, 'entropy[0]')).toEqual(block);
    expect(() => decodeBlock(block.toString('base64').slice(0, -4), 16, 'entropy[0]')).toThrow('entropy[0] decodes to 15 bytes, not the 16 asked for');
    expect(() => decodeBlock(block.toString('base64').slice(0, -1), 16, 'entropy[1]')).toThrow('entropy[1] is not base64');
    expect(() => decodeBlock('AAAA!AAA', 6, 'x')).toThrow('x is not base64');
    expect(() => decodeBlock(42, 6, 'x')).toThrow('x is not base64');
  });
});

describe('source configuration', () => {
  it('names the source and the field', () => {
    expect(() => new OpenApiSource({ name: 'idq', url: 'ftp://qrng', model })).toThrow('entropy source "idq": url must be http(s), not ftp:');
    expect(() => new OpenApiSource({ name: 'idq', url: 'not a url', model })).toThrow('entropy source "idq": url "not a url" is not a URL');
    expect(() => new OpenApiSource({ name: 'idq', url: 'https://qrng', model, blockSize: 0 })).toThrow('entropy source "idq": blockSize must be a positive integer, not 0');
    expect(() => new OpenApiSource({ name: 'idq', url: 'https://qrng', model, timeoutMs: 1.5 })).toThrow('timeoutMs must be a positive integer');
    expect(() => new OpenApiSource({ name: 'q', url: 'https://qrng', model, variant: 'qrypt', blockSize: 512 })).toThrow('Qrypt serves 1024-byte blocks');
    expect(() => new OpenApiSource({ name: 'm', url: 'https://qrng', model, cert: 'PEM' })).toThrow('entropy source "m": mTLS needs both cert and key');
    expect(() => new DeviceSource({ name: 'card', path: '', model })).toThrow('entropy source "card": path is empty');
  });
});
