// Held requests: a request that needs an approval and has none waits here while a pending
// approval is decided outside the agent. kubectl's WebSocket attempt and its SPDY retry are one
// operation: they join one pending approval, and a refusal is remembered briefly so the retry
// gets the same answer instead of a second pending approval. The holds count the clients waiting
// on each pending approval: when the last one goes, the approval is told nobody waits (it is
// abandoned after a grace unless a client comes back for it).
import type { Logger } from '../observability/log.js';
import type { Approval, ApprovalService, HeldRequest, Operation } from '../model/approval.js';
import { scopeFor } from './operation.js';

export interface HoldOptions {
  /** How long a request waits for a decision (default 120 s). */
  holdSeconds: number;
  /** At most this many pending approvals per agent; more holds are refused (429). */
  maxPendingPerAgent: number;
  /** How long a refusal is repeated to a retry of the same operation. */
  refusalMemorySeconds?: number;
  /** Called when a new pending approval is created (webhook). */
  onPending?: (approval: Approval) => void;
  log: Logger;
}

/** Why a held request got no approval; the endpoint words it as a Status (endpoint/refusals.ts). */
export type HoldRefusal =
  /** Denied (or revoked while pending) by an approver. */
  | { reason: 'denied'; approval: Approval }
  /** Nobody decided before the hold ended (or it was abandoned while this request was joining it). */
  | { reason: 'expired'; approval: Approval }
  | { reason: 'limit'; agent: string; pending: number; limit: number }
  | { reason: 'gone'; approval: Approval };

export type HoldOutcome = { ok: true; approval: Approval; held: boolean } | { ok: false; refusal: HoldRefusal };

/** The approval a refusal concerns, if any (for the audit row). */
export function refusedApprovalId(refusal: HoldRefusal): string | null {
  return refusal.reason === 'limit' ? null : refusal.approval.id;
}

interface Remembered {
  refusal: HoldRefusal & { reason: 'denied' | 'expired' };
  at: number;
}

export class HoldManager {
  private readonly refusals = new Map<string, Remembered>();
  /** Clients of this process waiting on each pending approval. */
  private readonly waiters = new Map<string, number>();

  constructor(
    private readonly approvals: ApprovalService,
    private readonly opts: HoldOptions,
  ) {}

  /**
   * Which earlier refusal a request repeats: the same agent and scope, and the same client run when
   * the client names one (kubectl's Kubectl-Session header). The header is client-controlled, but it
   * can only make the bastion repeat a refusal, never allow anything.
   */
  private key(agentId: string, op: Operation, clientRun: string | undefined): string {
    return `${agentId} ${clientRun ?? '-'} ${JSON.stringify(scopeFor(op))}`;
  }

  /**
   * Finds a usable approval, or holds until one is decided. `signal` aborts the hold when the
   * client goes away.
   */
  async obtain(
    agent: { id: string; name: string },
    op: Operation,
    request: HeldRequest['request'],
    signal: AbortSignal,
    clientRun?: string,
  ): Promise<HoldOutcome> {
    const usable = await this.approvals.findUsable(agent.id, op);
    if (usable) return { ok: true, approval: usable, held: false };

    const key = this.key(agent.id, op, clientRun);
    const memory = (this.opts.refusalMemorySeconds ?? 15) * 1000;
    const remembered = this.refusals.get(key);
    if (remembered && Date.now() - remembered.at < memory) {
      return { ok: false, refusal: remembered.refusal };
    }

    const scope = scopeFor(op);
    const pendingForAgent = await this.approvals.list({ state: 'pending', agent: agent.name });
    const pending = pendingForAgent.length;
    const existing = pendingForAgent.find((a) => JSON.stringify(a.scope) === JSON.stringify(scope));
    if (!existing && pending >= this.opts.maxPendingPerAgent) {
      return { ok: false, refusal: { reason: 'limit', agent: agent.name, pending, limit: this.opts.maxPendingPerAgent } };
    }
    const { approval, created } = await this.approvals.requestOrJoin({ agent, scope, request, holdSeconds: this.opts.holdSeconds });
    if (created) {
      this.opts.log.info({ approvalId: approval.id, agent: agent.name, scope }, 'approval pending; request held');
      this.opts.onPending?.(approval);
    }
    const before = this.waiters.get(approval.id) ?? 0;
    this.waiters.set(approval.id, before + 1);
    // Joined while the last other waiter was leaving: its "nobody waiting" mark may have been
    // stored after requestOrJoin cleared it, and must not stand while this client waits.
    if (!created && before === 0) {
      this.approvals.someoneWaiting(approval.id).catch((err: unknown) => this.opts.log.warn({ err, approvalId: approval.id }, 'clearing the nobody-waiting mark failed'));
    }
    const outcome = await this.wait(approval, signal);
    this.left(approval.id, outcome.state === 'gone');
    if (outcome.state === 'approved') {
      // The decided approval covers this operation by construction; re-read it as usable.
      const decided = await this.approvals.findUsable(agent.id, op);
      if (decided) return { ok: true, approval: decided, held: true };
      // A REST approval whose uses a joined clone took first: the endpoint's use count refuses
      // this request with a Status naming the approval (not "not decided in time").
      if (op.kind === 'rest') return { ok: true, approval: outcome.approval, held: true };
    }
    if (outcome.state === 'gone') return { ok: false, refusal: { reason: 'gone', approval } };
    const refusal = { reason: outcome.state === 'denied' ? 'denied' : 'expired', approval: outcome.approval } as const;
    this.refusals.set(key, { refusal, at: Date.now() });
    this.prune(memory);
    return { ok: false, refusal };
  }

  /**
   * One client stopped waiting on `id`. When the last one went away (rather than being answered),
   * the approval is told nobody waits; a client that joined meanwhile is told right after, so the
   * stored mark never outlives a waiter.
   */
  private left(id: string, gone: boolean): void {
    const n = (this.waiters.get(id) ?? 1) - 1;
    if (n > 0) {
      this.waiters.set(id, n);
      return;
    }
    this.waiters.delete(id);
    if (!gone) return;
    const waitingAgain = (): boolean => (this.waiters.get(id) ?? 0) > 0;
    this.approvals
      .nobodyWaiting(id)
      .then((a) => {
        if (a) this.opts.log.info({ approvalId: id, since: a.nobodyWaitingSince }, 'nobody waits on the pending approval any more');
        return a && waitingAgain() ? this.approvals.someoneWaiting(id) : undefined;
      })
      .catch((err: unknown) => this.opts.log.warn({ err, approvalId: id }, 'recording that nobody waits on an approval failed'));
  }

  private prune(memoryMs: number): void {
    const now = Date.now();
    for (const [k, r] of this.refusals) if (now - r.at >= memoryMs) this.refusals.delete(k);
  }

  private wait(approval: Approval, signal: AbortSignal): Promise<{ state: 'approved' | 'denied' | 'expired' | 'gone'; approval: Approval }> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (state: 'approved' | 'denied' | 'expired' | 'gone', a: Approval): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        unwatch();
        signal.removeEventListener('abort', onAbort);
        resolve({ state, approval: a });
      };
      const onChange = (a: Approval): void => {
        if (a.state === 'approved' || a.state === 'denied' || a.state === 'expired' || a.state === 'revoked' || a.state === 'abandoned') {
          finish(a.state === 'revoked' ? 'denied' : a.state === 'abandoned' ? 'expired' : a.state, a);
        }
      };
      const onAbort = (): void => finish('gone', approval);
      // Backstop in case no expiry event arrives: the hold never outlives its deadline by much.
      const deadline = approval.expiresAt ? Date.parse(approval.expiresAt) : Date.now() + this.opts.holdSeconds * 1000;
      // A store that cannot be read answers the held request as not decided (fail closed).
      const timer = setTimeout(() => {
        this.approvals.get(approval.id).then(
          (a) => finish(a?.state === 'approved' ? 'approved' : 'expired', a ?? approval),
          (err: unknown) => {
            this.opts.log.error({ err, approvalId: approval.id }, 'reading a held approval failed; the request is refused');
            finish('expired', approval);
          },
        );
      }, Math.max(0, deadline - Date.now()) + 1000);
      timer.unref();
      const unwatch = this.approvals.watch(approval.id, onChange);
      signal.addEventListener('abort', onAbort);
      // It may have been decided between requestOrJoin and subscribing.
      this.approvals.get(approval.id).then(
        (a) => {
          if (a) onChange(a);
        },
        // The backstop timer answers the hold if the store stays unreadable.
        (err: unknown) => this.opts.log.warn({ err, approvalId: approval.id }, 'reading a held approval failed'),
      );
      if (signal.aborted) onAbort();
    });
  }
}
