import { httpsRedirectPortFromFlags, parseFlags, sessionResumptionFromFlags } from './config.js';

describe('sessionResumptionFromFlags', () => {
  it('defaults to tickets rotated every 12h, kept in qubesec-session-tickets, sessions resumable for 10 minutes', () => {
    expect(sessionResumptionFromFlags(parseFlags([]), 'qubesec')).toEqual({
      tickets: true,
      timeoutSeconds: 600,
      ticketSecret: { namespace: 'qubesec', name: 'qubesec-session-tickets' },
      rotation: { periodMs: 12 * 3600_000, sessionTimeoutMs: 600_000 },
    });
    const off = sessionResumptionFromFlags(parseFlags(['--session-tickets', 'false', '--session-timeout', '90s']), 'qubesec');
    expect([off.tickets, off.timeoutSeconds]).toEqual([false, 90]);
  });

  it.each([
    [['--session-tickets', 'yes'], 'flag --session-tickets: "yes" is not true or false'],
    [['--session-ticket-secret', 'Tickets'], 'flag --session-ticket-secret: "Tickets" is not a valid object name (RFC 1123 subdomain)'],
    [['--session-ticket-rotation', '1d'], 'flag --session-ticket-rotation: "1d" is not a whole number of seconds, minutes or hours above 0, like "12h"'],
    [['--session-timeout', '0s'], 'flag --session-timeout: "0s" is not a whole number of seconds, minutes or hours above 0, like "12h"'],
    [['--session-ticket-rotation', '1m', '--session-timeout', '10m'], 'flag --session-ticket-rotation: every 1m would keep 10 old keys to decrypt tickets for --session-timeout 10m; rotate at most 8 times per session timeout'],
  ])('refuses %j', (args, message) => {
    expect(() => sessionResumptionFromFlags(parseFlags(args), 'qubesec')).toThrow(message);
  });
});

describe('httpsRedirectPortFromFlags', () => {
  it('is 443 unless set, whatever NGINX listens on', () => {
    expect(httpsRedirectPortFromFlags(parseFlags(['--https-port', '8443']))).toBe(443);
    expect(httpsRedirectPortFromFlags(parseFlags(['--https-redirect-port', '30443']))).toBe(30443);
  });

  it.each(['0', '65536', '', '8443x', ' 443'])('refuses %j', (value) => {
    expect(() => httpsRedirectPortFromFlags(parseFlags(['--https-redirect-port', value]))).toThrow(`flag --https-redirect-port: ${JSON.stringify(value)} is not a port number from 1 to 65535`);
  });
});
