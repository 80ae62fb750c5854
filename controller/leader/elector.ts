// Leader election on a coordination.k8s.io Lease (client-node has no helper for it). Every replica serves traffic; the
// one holding the Lease also runs the leader-only work (Ingress status, the PKI controller), for one term at a time.
// Writes carry the Lease's resourceVersion, so two candidates never both win: the slower one gets 409 Conflict.
import { performance } from 'node:perf_hooks';
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../observability/log.js';
import { errorText } from '../sources/kubernetes.js';
import { claim, heldByAnother, released, type ElectionTimings } from './lease.js';

export interface ElectionOptions extends ElectionTimings {
  namespace: string;
  /** The Lease's name (--election-id). */
  name: string;
  /** holderIdentity: unique per replica and per start. */
  identity: string;
}

/** Starts the leader-only work of one term; returns what stops it. */
export type LeaderTerm = () => Promise<() => Promise<void>>;

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private leading = false;
  private term: Promise<(() => Promise<void>) | undefined> | undefined;
  /** The last step-down's stopping of the leader-only work, which can outlast the step-down itself. */
  private stopping: Promise<void> = Promise.resolve();
  private observed = { resourceVersion: '', atMs: 0 };
  private renewDeadline: NodeJS.Timeout | undefined;
  /** After a term failed to start, stay out of the race for one lease duration so another replica can try. */
  private pausedUntilMs = 0;
  private loop: Promise<void> | undefined;
  private stopped = false;
  private wake: () => void = () => undefined;

  constructor(kc: KubeConfig, private readonly options: ElectionOptions, private readonly lead: LeaderTerm, private readonly log: Logger) {
    this.api = kc.makeApiClient(CoordinationV1Api);
  }

  get identity(): string {
    return this.options.identity;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.log.info('joining leader election', { lease: `${this.options.namespace}/${this.options.name}`, identity: this.identity });
    this.loop = this.run();
  }

  /** Stops the leader-only work and hands the Lease back if this replica holds it, so another takes over at its next try. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.loop;
    await this.stepDown('shutting down');
    await this.release().catch((err: unknown) => this.log.warn('could not release the lease', { error: errorText(err) }));
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (performance.now() >= this.pausedUntilMs) {
        const started = performance.now();
        try {
          if (await this.tryAcquireOrRenew()) this.renewed(started);
          else if (this.leading) await this.stepDown('another replica holds the lease');
        } catch (err) {
          this.log.warn('lease request failed', { lease: this.options.name, error: errorText(err) });
        }
      }
      // Jitter keeps candidates that started together from retrying in lockstep, as client-go does.
      await this.sleep(this.options.retryPeriodMs * (this.leading ? 1 : 1 + Math.random() * 0.2));
    }
  }

  /** True when this replica holds the Lease after the attempt. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity, leaseDurationSeconds } = this.options;
    const current = await this.readLease();
    const nowMs = performance.now();
    if (current && current.metadata?.resourceVersion !== this.observed.resourceVersion) {
      this.observed = { resourceVersion: current.metadata?.resourceVersion ?? '', atMs: nowMs };
    }
    if (heldByAnother(current?.spec, identity, this.observed.atMs, nowMs)) return false;
    const spec = claim(current?.spec, identity, new Date(), leaseDurationSeconds);
    const write = current
      ? this.api.replaceNamespacedLease({ namespace, name, body: { ...current, spec } })
      : this.api.createNamespacedLease({ namespace, body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { namespace, name }, spec } });
    const written = await write.catch((err: { code?: number }) => {
      if (err.code === 409) return undefined;
      throw err;
    });
    if (written) this.observed = { resourceVersion: written.metadata?.resourceVersion ?? '', atMs: nowMs };
    return written !== undefined;
  }

  /** Starts a term on the first success; every success moves the renew deadline on. */
  private renewed(attemptStartedMs: number): void {
    clearTimeout(this.renewDeadline);
    const remaining = this.options.renewDeadlineMs - (performance.now() - attemptStartedMs);
    this.renewDeadline = setTimeout(() => void this.stepDown('could not renew the lease before the renew deadline'), remaining);
    if (this.leading) return;
    this.leading = true;
    this.log.info('became leader; starting leader-only work', { lease: this.options.name, identity: this.identity });
    this.term = this.lead().catch(async (err: Error) => {
      // Not stepDown(): it awaits this very promise.
      this.log.error('leader-only work failed to start; handing the lease to another replica', { error: err.stack ?? err.message });
      this.pausedUntilMs = performance.now() + this.options.leaseDurationSeconds * 1000;
      this.leading = false;
      clearTimeout(this.renewDeadline);
      await this.release().catch(() => undefined);
      return undefined;
    });
  }

  /** Stops the leader-only work at once: from here on this replica does none of it until it leads again. */
  private stepDown(why: string): Promise<void> {
    if (!this.leading) return this.stopping;
    this.leading = false;
    clearTimeout(this.renewDeadline);
    this.log.info('stopped leading; stopping leader-only work', { lease: this.options.name, identity: this.identity, reason: why });
    const term = this.term;
    this.term = undefined;
    this.stopping = (term ?? Promise.resolve(undefined))
      .then((stopWork) => stopWork?.())
      .catch((err: Error) => this.log.error('stopping leader-only work failed', { error: err.stack ?? err.message }));
    return this.stopping;
  }

  private async release(): Promise<void> {
    const { namespace, name, identity } = this.options;
    const current = await this.readLease();
    if (!current?.spec || current.spec.holderIdentity !== identity) return;
    await this.api.replaceNamespacedLease({ namespace, name, body: { ...current, spec: released(current.spec, new Date()) } });
    this.log.info('released the lease', { lease: name, identity });
  }

  private readLease(): Promise<V1Lease | undefined> {
    return this.api.readNamespacedLease({ namespace: this.options.namespace, name: this.options.name }).catch((err: { code?: number }) => {
      if (err.code === 404) return undefined;
      throw err;
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
