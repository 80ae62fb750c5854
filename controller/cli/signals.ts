// Waiting for the signal that ends a long-running command (Ctrl-C, or the kubelet's SIGTERM).
export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
  });
}
