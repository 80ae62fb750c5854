// Shared by the long-running commands (controller, demo, audit serve, vpn run). Not in main.ts, which runs on import.
export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    // `on`, not `once`: execa's signal-exit re-raises a signal no other listener is left for, so a `once` listener
    // registered before execa's (vpn run --leader-election starts charon only once leading) removed itself, and the
    // re-raised SIGTERM killed the process before its shutdown. A second signal is ignored; shutdowns are bounded.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => resolve());
  });
}
