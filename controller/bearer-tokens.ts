// Bearer tokens (RFC 6750) of QubeSec's own HTTPS servers: the audit receiver and the QRNG service.
import { createHash, timingSafeEqual } from 'node:crypto';

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
}

/**
 * Accepted tokens, each naming who holds it. Compared as SHA-256 digests (equal lengths for timingSafeEqual) against
 * every entry, so the time taken says nothing about a token's length, its first bytes or which entry matched.
 */
export class BearerTokens<Holder> {
  private readonly entries: { digest: Buffer; holder: Holder }[];

  constructor(entries: { token: string; holder: Holder }[]) {
    this.entries = entries.map((e) => ({ digest: digest(e.token), holder: e.holder }));
  }

  holderOf(token: string): Holder | undefined {
    const presented = digest(token);
    let match: Holder | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.digest, presented)) match ??= e.holder;
    return match;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
