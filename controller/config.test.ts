import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlags, sessionResumptionFromFlags } from './config.js';
import { PROJECT_ROOT } from './project.js';

const refusal = (args: string[]) => {
  try {
    parseFlags(args);
  } catch (err) {
    return (err as Error).message;
  }
  return 'accepted';
};

describe('parseFlags', () => {
  it('hands out typed defaults', () => {
    const flags = parseFlags([]);
    expect([flags['http-port'], flags['metrics-port'], flags['worker-processes'], flags['debounce-ms'], flags['enable-pki'], flags['bind-address'], flags['election-ttl']])
      .toEqual([80, 10254, 'auto', 100, true, undefined, 15_000]);
    expect([flags['publish-status-address'], flags['nginx-modules'], flags.configmap, flags['default-backend-service'], flags['validating-webhook']]).toEqual([[], [], undefined, undefined, undefined]);
  });

  it.each([
    [['--enable-pki', 'false'], 'enable-pki', false],
    [['--session-tickets', 'true'], 'session-tickets', true],
    [['--worker-processes', '4'], 'worker-processes', 4],
    [['--debounce-ms', '50'], 'debounce-ms', 50],
    [['--metrics-port', '0'], 'metrics-port', 0],
    [['--validating-webhook', '[::1]:8443'], 'validating-webhook', { host: '::1', port: 8443 }],
    [['--validating-webhook', ':8443'], 'validating-webhook', { host: '', port: 8443 }],
    [['--election-ttl', '1m'], 'election-ttl', 60_000],
    [['--session-timeout', '90s'], 'session-timeout', 90_000],
    [['--configmap', '1ns/qubesec.defaults'], 'configmap', { namespace: '1ns', name: 'qubesec.defaults' }],
    [['--publish-service', 'qubesec/edge'], 'publish-service', { namespace: 'qubesec', name: 'edge' }],
    [['--publish-status-address', ' lb.example.com,192.0.2.7 ,'], 'publish-status-address', ['lb.example.com', '192.0.2.7']],
    [['--default-backend-service', 'web/errors:http'], 'default-backend-service', { namespace: 'web', service: 'errors', port: 'http' }],
    [['--nginx-modules', '/usr/lib/nginx/modules/a.so,/m/b.so'], 'nginx-modules', ['/usr/lib/nginx/modules/a.so', '/m/b.so']],
  ] as const)('reads %j', (args, name, value) => {
    expect(parseFlags([...args])[name]).toEqual(value);
  });

  it.each([
    // booleans: true or false only
    [['--enable-pki', 'yes'], 'flag --enable-pki: "yes" is not true or false'],
    [['--session-tickets', 'False'], 'flag --session-tickets: "False" is not true or false'],
    // integers, with bounds
    [['--worker-processes', 'abc'], 'flag --worker-processes: "abc" is not a whole number from 1 to 1024'],
    [['--worker-processes', '0'], 'flag --worker-processes: "0" is not a whole number from 1 to 1024'],
    [['--debounce-ms=-5'], 'flag --debounce-ms: "-5" is not a whole number from 1 to 60000'],
    [['--debounce-ms', '1e3'], 'flag --debounce-ms: "1e3" is not a whole number from 1 to 60000'],
    [['--http-port', '0'], 'flag --http-port: "0" is not a whole number from 1 to 65535'],
    [['--https-redirect-port', ' 443'], 'flag --https-redirect-port: " 443" is not a whole number from 1 to 65535'],
    [['--status-port', '65536'], 'flag --status-port: "65536" is not a whole number from 0 to 65535'],
    // addresses
    [['--bind-address', '0.0.0.0; include /etc/passwd'], 'flag --bind-address: "0.0.0.0; include /etc/passwd" is not an IPv4 or IPv6 address'],
    [['--metrics-address', 'localhost'], 'flag --metrics-address: "localhost" is not an IPv4 or IPv6 address'],
    [['--validating-webhook', '::1:8443'], 'flag --validating-webhook: "::1:8443" is not :port, ip:port or [ipv6]:port'],
    [['--validating-webhook', ':0'], 'flag --validating-webhook: ":0" is not :port, ip:port or [ipv6]:port'],
    [['--publish-status-address', '192.0.2.7,*.example.com'], 'flag --publish-status-address: "192.0.2.7,*.example.com" holds "*.example.com", which is neither an IP address nor a lower-case DNS name'],
    // durations
    [['--election-ttl', '1h'], 'flag --election-ttl: "1h" is not a whole number of seconds or minutes above 0 and at most 10m, like "15s"'],
    [['--session-ticket-rotation', '1d'], 'flag --session-ticket-rotation: "1d" is not a whole number of seconds, minutes or hours above 0 and at most 168h, like "12h"'],
    [['--session-timeout', '0s'], 'flag --session-timeout: "0s" is not a whole number of seconds, minutes or hours above 0 and at most 24h, like "12h"'],
    [['--session-ticket-rotation', '1000h'], 'flag --session-ticket-rotation: "1000h" is not a whole number of seconds, minutes or hours above 0 and at most 168h'],
    [['--election-ttl', '11m'], 'flag --election-ttl: "11m" is not a whole number of seconds or minutes above 0 and at most 10m'],
    // names, as the API server checks them
    [['--watch-namespace', 'Team'], 'flag --watch-namespace: "Team" is not a valid namespace name (RFC 1123 label)'],
    [['--session-ticket-secret', 'Tickets'], 'flag --session-ticket-secret: "Tickets" is not a valid object name (RFC 1123 subdomain)'],
    [['--election-id', 'a b'], 'flag --election-id: "a b" is not a valid object name (RFC 1123 subdomain)'],
    [['--controller-class', 'ingress-controller'], 'flag --controller-class: "ingress-controller" is not a domain-prefixed path like example.com/ingress-controller'],
    [['--configmap', 'defaults'], 'flag --configmap: "defaults" is not namespace/name of a ConfigMap'],
    [['--publish-service', 'qubesec/1edge'], 'flag --publish-service: "qubesec/1edge" is not namespace/name of a Service'],
    [['--default-backend-service', 'web/errors:0'], 'flag --default-backend-service: "web/errors:0" is not namespace/name or namespace/name:port of a Service'],
    // paths rendered into nginx.conf
    [['--conf-dir', 'run/qubesec'], 'flag --conf-dir: "run/qubesec" is not an absolute path of letters, digits and . _ / + @ = -'],
    [['--access-log', '/var/log/a b.log'], 'flag --access-log: "/var/log/a b.log" is not an absolute path of letters, digits and . _ / + @ = -'],
    [['--nginx-modules', '/m/a.so,/m/b.so;'], 'flag --nginx-modules: "/m/a.so,/m/b.so;" holds "/m/b.so;", which is not an absolute path of letters, digits and . _ / + @ = -'],
    // one of a set
    [['--log-level', 'trace'], 'flag --log-level: "trace" is not one of debug, info, warn, error'],
    [['--default-certificate-algorithm', 'rsa'], 'flag --default-certificate-algorithm: "rsa" is not one of ml-dsa-44'],
  ])('refuses %j', (args, message) => {
    expect(refusal(args)).toContain(message);
  });

  it('names every bad flag at once, with long values shortened', () => {
    const message = refusal(['--enable-pki', 'on', '--worker-processes', 'x'.repeat(100_000)]);
    expect(message).toBe(`flag --worker-processes: "${'x'.repeat(77)}..." is not a whole number from 1 to 1024; flag --enable-pki: "on" is not true or false`);
  });
});

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

  it('refuses a rotation that would keep more old keys than it may', () => {
    expect(() => sessionResumptionFromFlags(parseFlags(['--session-ticket-rotation', '1m', '--session-timeout', '10m']), 'qubesec'))
      .toThrow('flag --session-ticket-rotation: every 60s would keep 10 old keys to decrypt tickets for --session-timeout 600s; rotate at most 8 times per session timeout');
  });
});

describe("the chart's schema and the flags it feeds", () => {
  const schema = JSON.parse(readFileSync(join(PROJECT_ROOT, 'charts', 'qubesec', 'values.schema.json'), 'utf8'));
  const sessionValues = schema.properties.controller.properties.sessionResumption.properties;

  // helm install must refuse what the controller would refuse at start, not leave a crash-looping pod.
  it.each([
    ['ticketRotation', '--session-ticket-rotation', 168],
    ['timeout', '--session-timeout', 24],
  ])('%s accepts only durations %s accepts, and each one written without leading zeros', (value, flag, maxHours) => {
    const pattern = new RegExp(sessionValues[value].pattern);
    const disagreements: string[] = [];
    for (const [unit, perHour] of [['h', 1], ['m', 60], ['s', 3600]] as const) {
      const limit = maxHours * perHour;
      // Every count up to twice the limit in h and m; in s (where that is 1.2 million flag parses) the first 2,000,
      // the 2,000 around the limit, and every 97th.
      const counts = Array.from({ length: 2 * limit + 1 }, (_, n) => n).filter((n) => unit !== 's' || n < 2000 || Math.abs(n - limit) < 1000 || n % 97 === 0);
      for (const n of counts) {
        for (const text of [`${n}${unit}`, `0${n}${unit}`]) {
          const byFlag = !refusal([`${flag}=${text}`]).startsWith('flag');
          const bySchema = pattern.test(text);
          if (bySchema ? !byFlag : byFlag && !text.startsWith('0')) disagreements.push(`${text}: schema ${bySchema}, flag ${byFlag}`);
        }
      }
    }
    expect(disagreements).toEqual([]);
  });
});
