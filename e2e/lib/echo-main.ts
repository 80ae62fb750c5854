// Runs the echo backend as its own process (inside a test host's network namespace): node echo-main.js NAME PORT ADDRESS
import { startEchoBackend } from '../../controller/cli/echo-backend.js';

const [name = 'echo', port = '8080', address = '0.0.0.0'] = process.argv.slice(2);
await startEchoBackend(name, Number(port), address);
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));
