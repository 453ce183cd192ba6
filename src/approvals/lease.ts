// The one authority on "may this byte pass": a live handle on what a request was admitted under
// (its approval, if any, and its agent), taken at the instant the gate decided. From then on every
// revocation, expiry or agent revocation ends the lease at once, whether the session is still
// being set up (dialing, waiting for the agent's streams) or already relaying; `confirm` re-reads
// the stored state just before bytes start to flow, and again every `recheckMs` while the lease
// lives: a change the watch missed ends it within that interval, and a store that can no longer be
// read ends it at once (reason `error`): what the bastion cannot check, revoke or record does not
// run on. Sessions and REST exchanges hold one.
import type { AgentRevocation, Approval, ApprovalChange, ApprovalService } from '../model/approval.js';
import { deadlines } from './deadline-clock.js';

export type LeaseEndReason = 'revoked' | 'expired' | 'agent-revoked' | 'error';

export interface LeaseEnd {
  reason: LeaseEndReason;
  /** The approval as it was when the lease ended (null for a request that needed none). */
  approval: Approval | null;
  /** Who ended it: `user:<name>` for a revocation, `system` for an expiry or a store failure. */
  by: string;
  /** The revoker's reason, when one was given. */
  why: string | null;
  /** ISO 8601: when it took effect. */
  at: string;
}

export interface LeaseDeps {
  approvals: Pick<ApprovalService, 'watch' | 'watchAgent' | 'get'>;
  /** Whether the agent is still active (not revoked), read from the agent store. */
  agentActive(agentId: string): Promise<boolean>;
  /** How often the approval and the agent are re-read while the lease lives, in ms (default 1000; 0: never). */
  recheckMs?: number;
}

/** Default interval of the lease's own re-read of the stored state. */
export const LEASE_RECHECK_MS = 1000;

/**
 * Reads shared by the leases re-checked in one round: each source (an approval service, an
 * agent-state reader) is asked about each id once, however many leases hold it. Same instant, same
 * answer: sharing changes nothing a lease sees, only how often the store is read.
 */
class SharedReads {
  private readonly bySource = new Map<object, Map<string, Promise<unknown>>>();

  once<T>(source: object, id: string, read: () => Promise<T>): Promise<T> {
    let reads = this.bySource.get(source);
    if (!reads) this.bySource.set(source, (reads = new Map()));
    let p = reads.get(id) as Promise<T> | undefined;
    if (!p) reads.set(id, (p = read()));
    return p;
  }
}

/**
 * One timer per interval for every live lease (not one per lease): at 1,000 sessions, per-lease
 * timers re-read the same approval and agent 2,000 times a second on the event loop; a round reads
 * each once.
 */
class RecheckClock {
  private readonly leases = new Set<ApprovalLease>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly every: number,
    private readonly onIdle: () => void,
  ) {}

  add(lease: ApprovalLease): () => void {
    this.leases.add(lease);
    if (!this.timer) {
      this.timer = setInterval(() => this.round(), this.every);
      this.timer.unref();
    }
    return () => {
      this.leases.delete(lease);
      if (this.leases.size > 0) return;
      clearInterval(this.timer);
      this.timer = undefined;
      this.onIdle();
    };
  }

  private round(): void {
    const reads = new SharedReads();
    for (const lease of [...this.leases]) lease.recheck(reads);
  }
}

const clocks = new Map<number, RecheckClock>();

function joinRecheck(every: number, lease: ApprovalLease): () => void {
  let clock = clocks.get(every);
  if (!clock) clocks.set(every, (clock = new RecheckClock(every, () => clocks.delete(every))));
  return clock.add(lease);
}

export class ApprovalLease {
  private end: LeaseEnd | undefined;
  private readonly listeners = new Set<(end: LeaseEnd) => void>();
  private readonly unsubscribe: Array<() => void> = [];
  private leaveDeadline = (): void => {};
  private leaveRecheck = (): void => {};
  private checking = false;
  /** Epoch ms from which on (at or after it) nothing may pass (the approval's expiry); undefined without an approval. */
  readonly deadline: number | undefined;

  constructor(
    private readonly deps: LeaseDeps,
    readonly agent: { id: string; name: string },
    readonly approval: Approval | null,
  ) {
    this.deadline = approval?.expiresAt ? Date.parse(approval.expiresAt) : undefined;
    if (approval) {
      this.unsubscribe.push(deps.approvals.watch(approval.id, (a, change) => this.onApproval(a, change)));
      this.armDeadline();
    }
    this.unsubscribe.push(deps.approvals.watchAgent(agent.id, (r) => this.onAgentRevoked(r)));
    const every = deps.recheckMs ?? LEASE_RECHECK_MS;
    if (every > 0) this.leaveRecheck = joinRecheck(every, this);
  }

  /**
   * Why the lease ended, once it has. Past the deadline the lease has ended even if its timer has
   * not run yet (a stalled event loop): reading this ends it then and there.
   */
  get ended(): LeaseEnd | undefined {
    if (!this.end && this.deadline !== undefined && Date.now() >= this.deadline) this.expire();
    return this.end;
  }

  /** Calls `listener` once when the lease ends (at once if it already has). Returns an unsubscribe. */
  onEnd(listener: (end: LeaseEnd) => void): () => void {
    if (this.end) {
      listener(this.end);
      return () => {};
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Re-reads the approval and the agent from the store: the check at the moment relaying starts
   * (and the periodic one). Changes after the read arrive through the watch, which has been live
   * since the gate decided. Never rejects: a store that cannot be read ends the lease (`error`).
   */
  async confirm(): Promise<LeaseEnd | undefined> {
    return this.check(undefined);
  }

  /** confirm(), with the reads of a recheck round shared among the leases in it. */
  private async check(shared: SharedReads | undefined): Promise<LeaseEnd | undefined> {
    if (this.end) return this.end;
    const { approvals, agentActive } = this.deps;
    try {
      const active = shared ? shared.once(agentActive, this.agent.id, () => agentActive(this.agent.id)) : agentActive(this.agent.id);
      if (!(await active)) {
        this.finish({ reason: 'agent-revoked', approval: this.approval, by: 'system', why: `agent "${this.agent.name}" is revoked`, at: new Date().toISOString() });
      } else if (this.approval) {
        const id = this.approval.id;
        const current = await (shared ? shared.once(approvals, id, () => approvals.get(id)) : approvals.get(id));
        if (!current) this.finish({ reason: 'revoked', approval: this.approval, by: 'system', why: 'the approval no longer exists', at: new Date().toISOString() });
        else this.onApproval(current, { event: 'approval.read', actor: 'system' });
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.finish({ reason: 'error', approval: this.approval, by: 'system', why: `kube-bastion cannot read its database (${message}), so it can neither check nor record what runs`, at: new Date().toISOString() });
    }
    if (!this.end && this.deadline !== undefined && Date.now() >= this.deadline) this.expire();
    return this.end;
  }

  /** Stops watching. Idempotent. */
  release(): void {
    this.leaveDeadline();
    this.leaveDeadline = () => {};
    this.leaveRecheck();
    this.leaveRecheck = () => {};
    for (const off of this.unsubscribe.splice(0)) off();
    this.listeners.clear();
  }

  /** The periodic re-read (RecheckClock); skipped while the previous one is still running. */
  recheck(shared: SharedReads): void {
    if (this.checking || this.end) return;
    this.checking = true;
    void this.check(shared).finally(() => {
      this.checking = false;
    });
  }

  private onApproval(a: Approval, change: ApprovalChange): void {
    if (a.state === 'revoked') {
      // The revocation's own record names its author and reason (the approval's reason is the approver's).
      const revocation = a.decisions.findLast((d) => d.kind === 'revoked');
      const by = revocation?.by ?? a.revokedBy ?? (change.event === 'approval.revoked' ? change.actor : 'an approver');
      this.finish({ reason: 'revoked', approval: a, by, why: revocation?.reason ?? null, at: revocation?.at ?? a.revokedAt ?? new Date().toISOString() });
    } else if (a.state === 'expired' || (a.state === 'approved' && a.expiresAt !== null && Date.parse(a.expiresAt) <= Date.now())) {
      this.expire(a);
    } else if (a.state !== 'approved') {
      // Denied or pending: not a state a lease can be held under.
      this.finish({ reason: 'revoked', approval: a, by: change.actor, why: a.reason, at: new Date().toISOString() });
    }
  }

  private onAgentRevoked(r: AgentRevocation): void {
    this.finish({ reason: 'agent-revoked', approval: this.approval, by: r.by, why: r.reason, at: r.at });
  }

  /** On the process's deadline clock: any relayed chunk after the instant ends the lease, not only its turn of a timer. */
  private armDeadline(): void {
    if (this.deadline === undefined) return;
    if (Date.now() >= this.deadline) return this.expire();
    this.leaveDeadline = deadlines.add(this.deadline, () => this.expire());
  }

  private expire(a: Approval | null = this.approval): void {
    this.finish({ reason: 'expired', approval: a, by: 'system', why: null, at: a?.expiresAt ?? new Date().toISOString() });
  }

  private finish(end: LeaseEnd): void {
    if (this.end) return;
    this.end = end;
    for (const listener of [...this.listeners]) listener(end);
    this.release();
  }
}
