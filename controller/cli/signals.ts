// Shared by the long-running commands (controller, demo, audit serve, vpn run). Not in main.ts, which runs on import.
export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
  });
}
