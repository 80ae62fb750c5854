import { BearerTokens, bearerToken } from './bearer-tokens.js';

describe('bearer tokens', () => {
  it('reads the token of an Authorization header, and nothing from another scheme or a malformed one', () => {
    expect(bearerToken('Bearer abc.def-123')).toBe('abc.def-123');
    expect([bearerToken(undefined), bearerToken('Basic YWxpY2U6eA=='), bearerToken('Bearer '), bearerToken('Bearer a b'), bearerToken('bearer abc')]).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it('names the holder of a listed token, whatever the lengths, and no one for a prefix or an extension of one', () => {
    const tokens = new BearerTokens([{ token: '0123456789abcdef', holder: 'alice' }, { token: 'x'.repeat(200), holder: 'bob' }]);
    expect([tokens.holderOf('0123456789abcdef'), tokens.holderOf('x'.repeat(200))]).toEqual(['alice', 'bob']);
    expect([tokens.holderOf('0123456789abcde'), tokens.holderOf('0123456789abcdef0'), tokens.holderOf('')]).toEqual([undefined, undefined, undefined]);
  });
});
