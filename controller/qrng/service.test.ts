// The service's decisions without a network: what a request may ask for, whose token it is, how much a client may draw.
import { checkEntropyRequest, RateLimiter, TokenList } from './service.js';
import { rngdExitReason } from './feed.js';

const LIMITS = { maxBlockSize: 1024, maxBlockCount: 8, maxRequestBytes: 4096 };

describe('checkEntropyRequest', () => {
  it('takes block_size, block_count (default 1) and entropy_type "conditioned"', () => {
    expect(checkEntropyRequest('{"block_size": 1024, "block_count": 4}', LIMITS)).toEqual({ blockSize: 1024, blockCount: 4 });
    expect(checkEntropyRequest('{"block_size": 16, "entropy_type": "conditioned"}', LIMITS)).toEqual({ blockSize: 16, blockCount: 1 });
  });

  it.each([
    ['{"block_size": 1025}', 'block_size: 1025 is not a whole number from 1 to 1024'],
    ['{"block_size": 0}', 'block_size: 0 is not a whole number from 1 to 1024'],
    ['{"block_size": 1.5}', 'block_size: 1.5 is not a whole number from 1 to 1024'],
    ['{"block_size": "64"}', 'block_size: "64" is not a whole number from 1 to 1024'],
    ['{"block_count": 2}', 'block_size: undefined is not a whole number from 1 to 1024'],
    ['{"block_size": 8, "block_count": 9}', 'block_count: 9 is not a whole number from 1 to 8'],
    ['{"block_size": 1024, "block_count": 5}', 'block_size * block_count is 5120 bytes, above the 4096 bytes one request may ask for'],
    ['{"block_size": 8, "entropy_type": "raw"}', 'entropy_type: "raw" is not served; this service serves "conditioned"'],
    ['{"block_size": 8, "size": 1}', 'size: not a field of an entropy request (block_size, block_count, entropy_type)'],
    ['[8]', 'the body must be a JSON object {"block_size": n, "block_count": n}'],
    ['{', 'the body is not JSON: send {"block_size": n, "block_count": n}'],
  ])('refuses %s naming the field', (body, error) => {
    expect(checkEntropyRequest(body, LIMITS)).toEqual({ error });
  });
});

describe('TokenList', () => {
  const tokens = TokenList.parse('# clients\nalice 0123456789abcdef\n\nbob   fedcba9876543210xyz\n', 'tokens');

  it('names the client of a token and nobody for another one, a prefix or an empty one', () => {
    expect(tokens.client('0123456789abcdef')).toBe('alice');
    expect(tokens.client('fedcba9876543210xyz')).toBe('bob');
    expect(tokens.client('0123456789abcde')).toBeUndefined();
    expect(tokens.client('')).toBeUndefined();
  });

  it('refuses malformed lines, short tokens, a client twice and an empty list, with the line', () => {
    expect(() => TokenList.parse('alice\n', 't')).toThrow('t:1: not "<client-name> <token>"');
    expect(() => TokenList.parse('alice short\n', 't')).toThrow('t:1: the token of client "alice" is shorter than 16 characters');
    expect(() => TokenList.parse('a 0123456789abcdef\na 0123456789abcdeg\n', 't')).toThrow('t:2: client "a" is listed twice');
    expect(() => TokenList.parse('# none\n', 't')).toThrow('t: lists no token');
  });
});

describe('RateLimiter', () => {
  it('lets a client draw its burst, then at its rate, each client on its own', () => {
    const limiter = new RateLimiter({ bytesPerSecond: 1000, burstBytes: 4000 });
    expect(limiter.take('a', 4000, 0)).toBe(0);
    expect(limiter.take('a', 1000, 0)).toBe(1000);
    expect(limiter.take('b', 4000, 0)).toBe(0);
    expect(limiter.take('a', 1000, 500)).toBe(500);
    expect(limiter.take('a', 1000, 1000)).toBe(0);
    limiter.refund('a', 1000);
    expect(limiter.take('a', 1000, 1000)).toBe(0);
    expect(limiter.take('a', 5000, 100_000)).toBe(Infinity);
  });
});

describe('rngdExitReason', () => {
  it('tells a source rngd disabled (exit 0) and a missing capability from another exit, by what rngd printed', () => {
    expect(rngdExitReason('too many FIPS failures, disabling entropy source\nNo entropy sources working, exiting rngd\n')).toBe('fips-disabled');
    expect(rngdExitReason('RNDADDENTROPY failed: Operation not permitted\n')).toBe('no-permission');
    expect(rngdExitReason('Terminated\n')).toBe('exited');
  });
});
