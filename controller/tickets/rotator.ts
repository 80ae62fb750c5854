// Leader-only: keeps the Secret the replicas share for session resumption (secret.ts). Creates it, puts a new
// encrypting key in front every period, drops keys no ticket can still need, and renews the default certificate before
// it expires. It reads the Secret from the source's snapshot (the informers' view), like every replica; writes carry
// the resourceVersion read, so a stale view or a former leader's write ends in 409, not a lost update.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { CoalescedWork } from '../coalescer.js';
import type { Logger } from '../observability/log.js';
import { defaultCertificatePairs } from '../pki/selfsigned.js';
import { errorText } from '../sources/kubernetes.js';
import type { Source } from '../sources/source.js';
import { TICKET_KEY_BYTES, nextCheckIn, rotate, rotationDue, type RotationPolicy } from './keys.js';
import { LastGoodSharedState, NOTHING_SHARED, sharedSecret, type SecretRef } from './secret.js';

const RETRY_MS = 5000;
/** A renewed default certificate ends resumption of the sessions before it once (one full handshake each): rarely. */
const RENEW_DEFAULT_CERTIFICATE_BEFORE_MS = 30 * 86_400_000;

export class TicketKeyRotator extends CoalescedWork {
  private readonly api: CoreV1Api;
  private readonly shared = new LastGoodSharedState();

  constructor(
    kc: KubeConfig,
    private readonly source: Source,
    private readonly secret: SecretRef,
    private readonly policy: RotationPolicy,
    debounceMs: number,
    private readonly log: Logger,
    /** Where new ticket keys come from (--entropy-source); OpenSSL's generator when absent. */
    private readonly newKeyBytes?: (bytes: number) => Promise<Buffer>,
  ) {
    super(debounceMs, (err) => log.error('session resumption Secret sync failed', { error: err.stack ?? err.message }));
    this.api = kc.makeApiClient(CoreV1Api);
  }

  /** Looks at the Secret (at start, after the source changed, when due); writes only when it is missing or something is due. */
  protected async sync(): Promise<void> {
    const { namespace, name } = this.secret;
    const current = this.source.snapshot().secrets.find((s) => s.metadata?.namespace === namespace && s.metadata?.name === name);
    const now = new Date();
    // A deleted Secret starts afresh (how to revoke every key at once). One that does not read well is replaced when
    // its last good keys are due, or at once without them; replicas warn about it meanwhile.
    const stored = current ? this.shared.read(current, now).state : NOTHING_SHARED;
    let ticketKeys = stored.ticketKeys;
    let keyRefused = false;
    if (this.newKeyBytes && rotationDue(now, stored.ticketKeys, this.policy)) {
      try {
        const drawn = await this.newKeyBytes(TICKET_KEY_BYTES);
        ticketKeys = rotate(now, stored.ticketKeys, this.policy, () => drawn);
      } catch (err) {
        // Fail closed: no key but from the entropy source. The current key (if any) goes on encrypting meanwhile;
        // the default certificate is still kept up.
        this.log.warn('no new session ticket key: the entropy source gave none', { secret: `${namespace}/${name}`, error: errorText(err), retryInMs: RETRY_MS });
        keyRefused = true;
      }
    } else ticketKeys = rotate(now, stored.ticketKeys, this.policy);
    const renew = stored.defaultCertificates.length === 0 || stored.defaultCertificates.some((p) => p.notAfter.getTime() - now.getTime() < RENEW_DEFAULT_CERTIFICATE_BEFORE_MS);
    const next = { ticketKeys, defaultCertificates: renew ? await defaultCertificatePairs() : stored.defaultCertificates };
    if (this.stopped) return;
    if (ticketKeys !== stored.ticketKeys || renew) {
      try {
        const body = sharedSecret(this.secret, next);
        if (current) await this.api.replaceNamespacedSecret({ namespace, name, body: { ...current, data: body.data } });
        else await this.api.createNamespacedSecret({ namespace, body });
        const what = { secret: `${namespace}/${name}`, keys: ticketKeys.length, rotated: ticketKeys !== stored.ticketKeys, defaultCertificateRenewed: renew };
        this.log.info(current ? 'session resumption Secret updated' : 'session resumption Secret created', what);
      } catch (err) {
        // 409: another write came first; its version reaches the snapshot and schedules a new look.
        if ((err as { code?: number }).code !== 409) {
          this.log.warn('could not write the session resumption Secret', { secret: `${namespace}/${name}`, error: errorText(err) });
          this.syncAgainIn(RETRY_MS);
          return;
        }
      }
    }
    this.syncAgainIn(keyRefused ? RETRY_MS : nextCheckIn(now, ticketKeys, this.policy));
  }
}
