#!/usr/bin/env node
// qubesec: the controller, the demo, certificates, the post-quantum check of an endpoint, Ingress to Gateway API
// migration, signatures and the audit trail, the QRNG service and the VPN gateway.
import { parseFlags, usage } from '../config.js';
import { startController } from '../controller.js';
import { runCert } from './cert.js';
import { runCheck, UsageError } from './check.js';
import { runDemo } from './demo.js';
import { runMigrate } from './migrate.js';
import { untilSignal } from './signals.js';
import { runSign, runVerify } from './signatures.js';
import { runAudit } from '../signatures/audit/cli.js';
import { runQrng } from './qrng.js';
import { runVpn } from './vpn.js';

/** A command resolves with its exit code, or nothing for 0. */
const COMMANDS: Record<string, (argv: string[]) => Promise<number | void>> = {
  async controller(argv) {
    const flags = parseFlags(argv);
    if (flags.help) {
      console.log(`qubesec controller [flags]\n${usage()}`);
      return;
    }
    const controller = await startController(flags);
    await untilSignal();
    await controller.stop();
  },
  demo: runDemo,
  cert: runCert,
  check: runCheck,
  migrate: runMigrate,
  sign: runSign,
  verify: runVerify,
  audit: runAudit,
  qrng: runQrng,
  vpn: runVpn,
};

const [name = '', ...rest] = process.argv.slice(2);
const run = COMMANDS[name];
if (!run) {
  console.error(`usage: qubesec <${Object.keys(COMMANDS).join('|')}> [flags]   (qubesec controller --help lists the flags)`);
  process.exit(2);
}
run(rest).then(
  (code) => process.exit(code ?? 0),
  (err: Error) => {
    console.error(`qubesec ${name}: ${err.message}`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
