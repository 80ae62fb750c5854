// What every replica serves for session resumption, from the shared Secret as the source sees it: its ticket keys, and
// its default certificate in place of the replica's own. The leader (rotator.ts) or, standalone, the in-memory source
// (standalone.ts) keeps that Secret; this side only reads it.
import type { V1Secret } from '@kubernetes/client-node';
import type { CertificatePair, Diagnostic, SessionResumption } from '../model/types.js';
import { LastGoodSharedState, type SecretRef } from './secret.js';

export interface SessionResumptionOptions {
  timeoutSeconds: number;
  tickets: boolean;
  /** The Secret shared by the replicas. */
  ticketSecret: SecretRef;
}

export class ServedSessionResumption {
  private readonly shared = new LastGoodSharedState();

  constructor(private readonly options: SessionResumptionOptions) {}

  /**
   * The model's parts: resumption, and the shared default certificate if the Secret has one. A Secret that does not
   * read well gets a Warning while its last good content keeps serving.
   */
  model(secrets: readonly V1Secret[], now: Date, diagnostics: Diagnostic[]): { resumption: SessionResumption; defaultCertificates?: CertificatePair[] } {
    const { timeoutSeconds, tickets, ticketSecret } = this.options;
    if (!tickets) return { resumption: { timeoutSeconds, tickets, ticketKeys: [] } };
    const secret = secrets.find((s) => s.metadata?.namespace === ticketSecret.namespace && s.metadata?.name === ticketSecret.name);
    const { state, error } = this.shared.read(secret, now);
    if (error !== undefined) {
      const keeps = state.ticketKeys.length > 0 ? 'its last good content keeps serving' : 'until it is fixed, each NGINX encrypts tickets with keys of its own';
      diagnostics.push({ object: { kind: 'Secret', ...ticketSecret, uid: secret?.metadata?.uid }, type: 'Warning', reason: 'InvalidSessionTicketSecret', message: `${error}; ${keeps}` });
    }
    return {
      resumption: { timeoutSeconds, tickets, ticketKeys: state.ticketKeys.map((k) => k.bytes) },
      defaultCertificates: state.defaultCertificates.length > 0 ? [...state.defaultCertificates] : undefined,
    };
  }
}
