// Standalone mode has no API server to keep the shared Secret (secret.ts) in: this source adds it to the manifests'
// snapshot, held in memory with ticket keys rotated by the leader's rule, so resumption works there too and survives
// reloads (not restarts of the controller). One process needs no shared default certificate: it keeps its own.
import type { Snapshot, Source } from '../sources/source.js';
import { nextCheckIn, rotate, type RotationPolicy, type TicketKey } from './keys.js';
import { sharedSecret, type SecretRef } from './secret.js';

export class InMemoryTicketKeys implements Source {
  private keys: readonly TicketKey[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly inner: Source, private readonly secret: SecretRef, private readonly policy: RotationPolicy) {}

  async start(onChange: () => void): Promise<void> {
    const rotateNow = () => {
      const now = new Date();
      this.keys = rotate(now, this.keys, this.policy);
      this.timer = setTimeout(() => {
        rotateNow();
        onChange();
      }, nextCheckIn(now, this.keys, this.policy));
    };
    rotateNow();
    await this.inner.start(onChange);
  }

  snapshot(): Snapshot {
    const snapshot = this.inner.snapshot();
    return { ...snapshot, secrets: [sharedSecret(this.secret, { ticketKeys: this.keys, defaultCertificates: [] }), ...snapshot.secrets] };
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.inner.stop();
  }
}
