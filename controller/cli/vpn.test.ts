import { UsageError } from './check.js';
import { runVpn } from './vpn.js';

describe('qubesec vpn usage', () => {
  it.each([
    [['run', '--manifests', 'dir', '--kubeconfig', 'kc', '--gateway', 'gw'], /--manifests and --kubeconfig exclude each other/],
    [['run', '--namespace', 'vpn', '--gateway', 'gw', '--status-file', 'f'], /--status-file is for --manifests/],
    [['run', '--gateway', 'gw'], /--namespace is required/],
    [['run', '--manifests', 'dir'], /vpn run needs --gateway NAME/],
    [['client-config', '--manifests', 'dir', '--out', 'o'], /vpn client-config needs one VpnPeer NAME/],
  ])('refuses %j', async (argv, message) => {
    const run = runVpn(argv);
    await expect(run).rejects.toThrow(UsageError);
    await expect(run).rejects.toThrow(message);
  });
});
