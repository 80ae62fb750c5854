// The one way QubeSec's QRNG says "no": no healthy quantum source, so no entropy and no DRBG output. Callers (the
// serving API, the PKI) turn it into a 503 or a refusal; nothing catches it to fall back to the OS generator.

export class EntropyUnavailable extends Error {
  override readonly name = 'EntropyUnavailable';
  constructor(
    message: string,
    /** Each configured source with why it gives nothing now. */
    readonly sources: readonly { name: string; state: string; reason?: string }[] = [],
  ) {
    super(message);
  }
}
