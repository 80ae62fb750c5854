import { parseFlagSet } from '../../config.js';
import { AUDIT_SERVE_FLAGS } from './cli.js';

const REQUIRED = ['--dir', '/var/lib/qubesec/audit', '--key', 'k.pem', '--token-file', 't'];
const refusal = (args: string[]) => {
  try {
    parseFlagSet(AUDIT_SERVE_FLAGS, args);
  } catch (err) {
    return (err as Error).message;
  }
  return 'accepted';
};

describe('qubesec audit serve flags', () => {
  it('hand out typed values and defaults', () => {
    const flags = parseFlagSet(AUDIT_SERVE_FLAGS, [...REQUIRED, '--segment-size', '16Mi', '--max-size', '2Gi', '--checkpoint-interval', '1m', '--tls-certificate', 'a.crt,b.crt']);
    expect([flags.dir, flags['segment-size'], flags['max-size'], flags['checkpoint-interval'], flags['checkpoint-events'], flags.listen, flags['tls-certificate'], flags.origin, flags['max-pending-batches']])
      .toEqual(['/var/lib/qubesec/audit', 16 * 2 ** 20, 2 * 2 ** 30, 60_000, 1000, { host: '', port: 8443 }, ['a.crt', 'b.crt'], 'qubesec.io/audit', 16]);
    expect(parseFlagSet(AUDIT_SERVE_FLAGS, REQUIRED)['max-size']).toBeUndefined();
  });

  it.each([
    [[], 'flag --dir: "" is required; flag --key: "" is required; flag --token-file: "" is required'],
    [[...REQUIRED, '--segment-size', '64MB'], 'flag --segment-size: "64MB" is not a size above 0 and at most 16Gi with a unit Ki, Mi, Gi or Ti, like "64Mi"'],
    [[...REQUIRED, '--segment-size', '17Gi'], 'flag --segment-size: "17Gi" is not a size above 0 and at most 16Gi'],
    [[...REQUIRED, '--max-size', '0Mi'], 'flag --max-size: "0Mi" is not a size above 0'],
    [[...REQUIRED, '--checkpoint-events', '0'], 'flag --checkpoint-events: "0" is not a whole number from 1 to 1000000'],
    [[...REQUIRED, '--checkpoint-interval', '25h'], 'flag --checkpoint-interval: "25h" is not a whole number of seconds, minutes or hours above 0 and at most 24h'],
    [[...REQUIRED, '--origin', 'a b'], 'flag --origin: "a b" is not a key name'],
    [[...REQUIRED, '--origin', 'a+b'], 'flag --origin: "a+b" is not a key name'],
    [[...REQUIRED, '--listen', '8443'], 'flag --listen: "8443" is not :port, ip:port or [ipv6]:port'],
  ])('refuse %j naming the flag and the value', (args, message) => {
    expect(refusal(args)).toContain(message);
  });
});
