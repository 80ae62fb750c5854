// `qubesec qrng serve | feed`: the QRNG entropy service and the node feeder (docs/qrng.md). Flags: controller/qrng/flags.ts.
import { parseFlagSet, usage, type FlagSet } from '../config.js';
import { startQrngFeed } from '../qrng/feed.js';
import { QRNG_FEED_FLAGS, QRNG_SERVE_FLAGS } from '../qrng/flags.js';
import { startQrngService } from '../qrng/serve.js';
import { UsageError } from './check.js';
import { untilSignal } from './signals.js';

const SUBCOMMANDS: Record<string, { flags: FlagSet; about: string; start: (argv: string[]) => Promise<{ stop(): Promise<void> }> }> = {
  serve: { flags: QRNG_SERVE_FLAGS, about: 'serve the QRNG Open API from health-tested quantum sources', start: (argv) => startQrngService(parseFlagSet(QRNG_SERVE_FLAGS, argv)) },
  feed: { flags: QRNG_FEED_FLAGS, about: 'feed this node\'s kernel entropy pool from the QRNG service', start: (argv) => startQrngFeed(parseFlagSet(QRNG_FEED_FLAGS, argv)) },
};

export async function runQrng(argv: string[]): Promise<void> {
  const [name = '', ...rest] = argv;
  const sub = SUBCOMMANDS[name];
  if (!sub) throw new UsageError(`usage: qubesec qrng <${Object.keys(SUBCOMMANDS).join('|')}> [flags]\n${Object.entries(SUBCOMMANDS).map(([n, s]) => `  ${n}  ${s.about}`).join('\n')}`);
  if (rest.includes('--help')) {
    console.log(`qubesec qrng ${name} [flags]: ${sub.about}\n${usage(sub.flags)}`);
    return;
  }
  const running = await sub.start(rest);
  await untilSignal();
  await running.stop();
}
