// The approval life cycle over the storage interfaces.
//
//   pending  -> approved | denied | expired | abandoned
//                                                (pending expires at its hold deadline; it is
//                                                abandoned when nobody has waited on it for the grace)
//   approved -> revoked | expired                (approved expires at decidedAt + ttlSeconds)
//
// - Who decides: users with role approver or admin (and a policy rule, through autoApprove or as
//   the actor of approve/deny). Agents never decide, reviewers never decide, and nobody approves
//   a request they made. Revoke: approver, admin, or `system`.
// - Expiry is computed on every read (a pending/approved approval whose expiresAt has passed IS
//   expired, whether or not that has been written yet) and persisted by one timer armed for the
//   next deadline, which writes the `approval.expired` audit row and emits 'changed'.
// - Abandonment works the same way: the holds say when the last client waiting on a pending
//   approval went away (nobodyWaitingSince) and when one joins again; a pending approval nobody has
//   waited on for `abandonGraceSeconds` IS abandoned on read, and the timer writes it
//   (`approval.abandoned`). Approving it is refused, and the approve's compare-and-set loses to it.
// - Every state change is a compare-and-set in the store with its one audit row in the same
//   transaction (built from the approval as stored, so the row carries its state, scope and
//   expiresAt: `audit verify` cross-checks the table against it), then 'changed' (emitted
//   synchronously, listener by listener, so a held request or a live session reacts at once). If
//   the audit row cannot be written, nothing changes and the error is thrown.
import { EventEmitter } from 'node:events';
import { DeadlineTimer } from './deadline-timer.js';
import { deadlines } from './deadline-clock.js';
import { MAX_AUTO_APPROVE_TTL_SECONDS } from '../policy/schema.js';
import { BastionError, ErrorCode, isBastionError } from '../errors/index.js';
import type { AgentStore, ApprovalStore, ApprovalTransition, AuditEventInput, Clock, NewApproval } from '../store/types.js';
import { canonicalScope, hasUsesLeft, scopeCovers, splitScopedResource, widenRestScope } from '../model/scope.js';
import {
  actorId,
  type Actor,
  type AgentRevocation,
  type Approval,
  type ApprovalChange,
  type ApprovalEvents,
  type ApprovalFilter,
  type ApprovalScope,
  type ApprovalService,
  type ApprovalState,
  type ApproveOptions,
  APPROVAL_STATES,
  type GrantInput,
  type HeldRequest,
  type Operation,
} from '../model/approval.js';
import { invalidField, optionalReason, validateReason, validateRequest, validateScope, validateTtl, validateWidening } from '../model/approval-input.js';
import { MAX_TTL_SECONDS, PORT_FORWARD_GRANT_PORTS } from '../model/approval-schema.js';
import { auditedRequest } from '../model/held-body.js';
import { DECIDER_ROLES, type UserRole } from '../model/vocabulary.js';

/** Validity of an approval decided on a held request when the approver gives no ttlSeconds. */
export const DEFAULT_APPROVAL_TTL_SECONDS = 900;

/** After a failed expiry sweep, try again this soon. */
const SWEEP_RETRY_MS = 1000;

/** How long a pending approval stays pending once every client waiting on it has gone. */
export const DEFAULT_ABANDON_GRACE_SECONDS = 30;

export interface SqliteApprovalServiceOptions {
  approvals: ApprovalStore;
  agents: AgentStore;
  clock?: Clock;
  /** Validity of approvals created from held requests, until an approver says otherwise (default 900 s). */
  defaultTtlSeconds?: number;
  /** Called when the service cannot do something in the background (an expiry sweep failed). */
  onError?: (err: unknown) => void;
  /**
   * Roles whose users may approve requests of (and grant to) agents they own (serve
   * --owner-may-approve). Default: none; an owner is never the one who lets their own agent act.
   */
  ownerMayApprove?: readonly UserRole[];
  /** How long a pending approval nobody waits on stays pending before it is abandoned (default 30 s). */
  abandonGraceSeconds?: number;
}

/**
 * The state an approval is in at `now`: a pending or approved one past its expiresAt is expired;
 * with `abandonGraceMs`, a pending one nobody has waited on for that long (before its expiry) is
 * abandoned.
 */
export function effectiveState(a: Approval, now: Date, abandonGraceMs?: number): ApprovalState {
  const expiresAt = a.expiresAt === null ? Infinity : Date.parse(a.expiresAt);
  if (a.state === 'pending' && abandonGraceMs !== undefined && a.nobodyWaitingSince !== null) {
    const abandonAt = Date.parse(a.nobodyWaitingSince) + abandonGraceMs;
    if (abandonAt <= now.getTime() && abandonAt < expiresAt) return 'abandoned';
  }
  if ((a.state === 'pending' || a.state === 'approved') && expiresAt <= now.getTime()) {
    return 'expired';
  }
  return a.state;
}

/** The approval as it is at `now` (see effectiveState). */
export function asOf(a: Approval, now: Date, abandonGraceMs?: number): Approval {
  const state = effectiveState(a, now, abandonGraceMs);
  return state === a.state ? a : { ...a, state };
}

type Decision = 'grant' | 'approve' | 'deny' | 'revoke';

/** Who may do what. Throws FORBIDDEN. */
function authorize(decision: Decision, actor: Actor): void {
  const kind = (actor as { kind?: unknown } | undefined)?.kind;
  if (kind === 'agent') {
    throw new BastionError(ErrorCode.FORBIDDEN, `an agent can never ${decision} an approval (decisions are made outside the agent)`, {
      actor: actorId(actor),
    });
  }
  if (kind === 'user') {
    const role = (actor as { role?: unknown }).role;
    if ((DECIDER_ROLES as readonly unknown[]).includes(role)) return;
    throw new BastionError(
      ErrorCode.FORBIDDEN,
      `user ${JSON.stringify((actor as { name?: unknown }).name)} has role ${String(role)}; only approvers and admins can ${decision} approvals`,
      { actor: actorId(actor) },
    );
  }
  if (kind === 'policy' && (decision === 'approve' || decision === 'deny')) return;
  if (kind === 'system' && (decision === 'deny' || decision === 'revoke')) return;
  if (kind === 'policy' || kind === 'system') {
    throw new BastionError(ErrorCode.FORBIDDEN, `${actorId(actor)} cannot ${decision} an approval`, { actor: actorId(actor) });
  }
  throw new BastionError(ErrorCode.FORBIDDEN, `unknown actor; cannot ${decision} an approval`);
}

type ScopeAuditFields = Pick<AuditEventInput, 'namespace' | 'name' | 'verb' | 'apiGroup' | 'resource' | 'subresource' | 'stream'>;

/**
 * Audit columns naming what a scope is about, with the meanings request rows give them (resource
 * without its group, the group in apiGroup); the whole scope is in details.
 */
function scopeAuditFields(scope: ApprovalScope): ScopeAuditFields {
  if (scope.kind === 'stream') {
    const single = scope.verbs.length === 1 ? scope.verbs[0]! : undefined;
    return {
      namespace: scope.namespace,
      name: scope.pod,
      apiGroup: '',
      resource: 'pods',
      ...(single ? { subresource: single, stream: single } : {}),
    };
  }
  return {
    namespace: scope.namespace,
    name: scope.name,
    verb: scope.verb,
    ...splitScopedResource(scope.resource),
  };
}

export class SqliteApprovalService extends EventEmitter<ApprovalEvents> implements ApprovalService {
  private readonly approvals: ApprovalStore;
  private readonly agents: AgentStore;
  private readonly clock: Clock;
  private readonly defaultTtlSeconds: number;
  private readonly abandonGraceMs: number;
  private readonly onError: (err: unknown) => void;
  private readonly ownerMayApprove: readonly UserRole[];
  private readonly timer: DeadlineTimer;
  private closed = false;
  private readonly watchers = new Map<string, Set<(a: Approval, change: ApprovalChange) => void>>();
  private readonly agentWatchers = new Map<string, Set<(r: AgentRevocation) => void>>();
  /** The sweep in progress, so overlapping triggers share it. */
  private sweeping: Promise<Approval[]> | undefined;
  private sweepAgain = false;

  constructor(opts: SqliteApprovalServiceOptions) {
    super();
    this.approvals = opts.approvals;
    this.agents = opts.agents;
    this.clock = opts.clock ?? (() => new Date());
    this.defaultTtlSeconds = validateTtl(opts.defaultTtlSeconds ?? DEFAULT_APPROVAL_TTL_SECONDS, 'defaultTtlSeconds');
    this.ownerMayApprove = opts.ownerMayApprove ?? [];
    this.abandonGraceMs = validateTtl(opts.abandonGraceSeconds ?? DEFAULT_ABANDON_GRACE_SECONDS, 'abandonGraceSeconds') * 1000;
    this.onError = opts.onError ?? ((err) => process.emitWarning(`kube-bastion approvals: ${err instanceof Error ? err.message : String(err)}`));
    this.timer = new DeadlineTimer(() => void this.expireDue().catch(() => undefined), () => this.clock().getTime());
    // Approvals stored by an earlier run may be due already, or soon.
    this.rescheduleFromStore();
  }

  // -------------------------------------------------------------------------------------------
  // Decisions

  async grant(input: GrantInput, actor: Actor): Promise<Approval> {
    authorize('grant', actor);
    if (typeof input !== 'object' || input === null) throw invalidField('agent', 'grant needs agent, scope, ttlSeconds and reason');
    const agent = await this.activeAgent(input.agent, 'name');
    this.refuseOwner(agent, actor, 'grant');
    const scope = validateScope(input.scope);
    requirePortsOfGrant(scope);
    const ttlSeconds = validateTtl(input.ttlSeconds);
    const reason = validateReason(input.reason);
    const now = this.clock();
    const by = actorId(actor);
    const expiresAt = new Date(now.getTime() + ttlSeconds * 1000).toISOString();
    const approval = await this.approvals.create({
      state: 'approved',
      agentId: agent.id,
      agent: agent.name,
      scope,
      requestedBy: by,
      decidedBy: by,
      reason,
      ttlSeconds,
      createdAt: now.toISOString(),
      decidedAt: now.toISOString(),
      expiresAt,
      request: null,
      decision: { kind: 'granted', by, at: now.toISOString(), reason, ttlSeconds, expiresAt },
    }, (a) => this.auditEvent('approval.granted', a, by, { reason, ttlSeconds }, now));
    return this.committed(approval, 'approval.granted', by, now);
  }

  async requestOrJoin(held: HeldRequest): Promise<{ approval: Approval; created: boolean }> {
    if (typeof held !== 'object' || held === null) throw invalidField('agent', 'a held request needs agent, scope, request and holdSeconds');
    const agent = await this.heldAgent(held.agent);
    const scope = validateScope(held.scope);
    const request = validateRequest(held.request);
    const holdSeconds = validateTtl(held.holdSeconds, 'holdSeconds');
    const now = this.clock();
    const input: NewApproval & { state: 'pending' } = {
      state: 'pending',
      agentId: agent.id,
      agent: agent.name,
      scope,
      requestedBy: `agent:${agent.name}`,
      decidedBy: null,
      reason: null,
      ttlSeconds: this.defaultTtlSeconds,
      createdAt: now.toISOString(),
      decidedAt: null,
      expiresAt: new Date(now.getTime() + holdSeconds * 1000).toISOString(),
      request,
    };
    const details = { request: auditedRequest(request), holdSeconds };
    // The row names the client of this request (a joining clone may come from another address).
    const source = { source: request.client ?? null };
    const { approval, created } = await this.approvals.createOrJoinPending(input, now.toISOString(), (a, isNew) => ({
      ...this.auditEvent(isNew ? 'approval.requested' : 'approval.joined', a, input.requestedBy, details, now),
      ...source,
    }));
    if (created) return { approval: this.committed(approval, 'approval.requested', input.requestedBy, now), created };
    // Joining changes no state: audited (the review record shows both attempts), not emitted.
    this.scheduleAt(approval.expiresAt);
    return { approval: this.asOf(approval, now), created };
  }

  async approve(id: string, actor: Actor, opts: ApproveOptions = {}): Promise<Approval> {
    authorize('approve', actor);
    const ttlOverride = opts.ttlSeconds === undefined ? undefined : validateTtl(opts.ttlSeconds);
    const reason = optionalReason(opts.reason);
    const current = await this.require(id);
    const now = this.clock();
    // The state first: approving what is already decided is the clearer error.
    this.expectState(current, 'pending', 'approve', now);
    this.refuseSelf(current, actor, 'approve');
    this.refuseOwner(await this.ownedAgent(current.agentId), actor, 'approve');
    const widened = approvedScope(current.scope, opts);
    const ttlSeconds = ttlOverride ?? Math.min(current.ttlSeconds, MAX_TTL_SECONDS);
    const expiresAt = new Date(now.getTime() + ttlSeconds * 1000).toISOString();
    const by = actorId(actor);
    const changes = { decidedBy: by, decidedAt: now.toISOString(), expiresAt, ttlSeconds, ...(reason !== undefined ? { reason } : {}), ...(widened ? { scope: widened } : {}) };
    const decision = { kind: 'approved', by, at: now.toISOString(), reason: reason ?? null, ttlSeconds, expiresAt } as const;
    const asked = widened ? { requestedScope: current.scope } : {};
    const audit = (a: Approval): AuditEventInput => this.auditEvent('approval.approved', a, by, { ...asked, reason: reason ?? null, ttlSeconds }, now);
    // Loses to an abandonment that is due: nobody would receive what it lets through.
    const approval = await this.transition(
      current,
      'approve',
      { from: 'pending', to: 'approved', ifUnexpiredAt: now.toISOString(), ifWaitedSince: this.unwaitedCutoff(now), set: changes, decision, audit },
      now,
    );
    return this.committed(approval, 'approval.approved', by, now);
  }

  async deny(id: string, actor: Actor, reason: string): Promise<Approval> {
    authorize('deny', actor);
    const why = validateReason(reason);
    const current = await this.require(id);
    const now = this.clock();
    const by = actorId(actor);
    const approval = await this.transition(
      current,
      'deny',
      // A denied approval has no deadline.
      {
        from: 'pending',
        to: 'denied',
        ifUnexpiredAt: now.toISOString(),
        set: { decidedBy: by, decidedAt: now.toISOString(), expiresAt: null, reason: why },
        decision: { kind: 'denied', by, at: now.toISOString(), reason: why, ttlSeconds: null, expiresAt: null },
        audit: (a) => this.auditEvent('approval.denied', a, by, { reason: why }, now),
      },
      now,
    );
    return this.committed(approval, 'approval.denied', by, now);
  }

  async revoke(id: string, actor: Actor, reason?: string): Promise<Approval> {
    authorize('revoke', actor);
    const why = optionalReason(reason) ?? (actor.kind === 'system' ? optionalReason(actor.reason) : undefined);
    const current = await this.require(id);
    const now = this.clock();
    const by = actorId(actor);
    const approval = await this.transition(
      current,
      'revoke',
      // The revocation is its own decision: the approver's reason stays on the approval.
      {
        from: 'approved',
        to: 'revoked',
        ifUnexpiredAt: now.toISOString(),
        set: { revokedAt: now.toISOString() },
        decision: { kind: 'revoked', by, at: now.toISOString(), reason: why ?? null, ttlSeconds: null, expiresAt: null },
        audit: (a) => this.auditEvent('approval.revoked', a, by, { reason: why ?? null, sessionsStarted: a.sessionsStarted }, now),
      },
      now,
    );
    return this.committed(approval, 'approval.revoked', by, now);
  }

  async autoApprove(held: Omit<HeldRequest, 'holdSeconds'>, rule: string, policyHash: string, ttlSeconds: number): Promise<Approval> {
    if (typeof held !== 'object' || held === null) throw invalidField('agent', 'autoApprove needs agent, scope and request');
    if (typeof rule !== 'string' || rule.length === 0) throw invalidField('rule', 'rule is required');
    if (typeof policyHash !== 'string' || policyHash.length === 0) throw invalidField('policyHash', 'policyHash is required');
    const agent = await this.heldAgent(held.agent);
    const scope = validateScope(held.scope);
    const request = validateRequest(held.request);
    // Policy rules may grant up to the policy schema's limit (7 days), more than a person may.
    const ttl = validateTtl(ttlSeconds, 'ttlSeconds', MAX_AUTO_APPROVE_TTL_SECONDS);
    const now = this.clock();
    const by = actorId({ kind: 'policy', rule, policyHash });
    const reason = `auto-approved by policy rule ${rule}`;
    const expiresAt = new Date(now.getTime() + ttl * 1000).toISOString();
    const approval = await this.approvals.create({
      state: 'approved',
      agentId: agent.id,
      agent: agent.name,
      scope,
      requestedBy: `agent:${agent.name}`,
      decidedBy: by,
      reason,
      ttlSeconds: ttl,
      createdAt: now.toISOString(),
      decidedAt: now.toISOString(),
      expiresAt,
      request,
      decision: { kind: 'auto-approved', by, at: now.toISOString(), reason, ttlSeconds: ttl, expiresAt },
    }, (a) => ({
      ...this.auditEvent('approval.auto-approved', a, by, { request: auditedRequest(request), reason, ttlSeconds: ttl }, now),
      rule,
      policyHash,
      source: request.client ?? null,
    }));
    return this.committed(approval, 'approval.auto-approved', by, now);
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  async get(id: string): Promise<Approval | undefined> {
    const a = await this.approvals.get(id);
    if (!a) return undefined;
    return this.effective(a);
  }

  async list(filter: ApprovalFilter = {}): Promise<Approval[]> {
    if (filter.state !== undefined && !(APPROVAL_STATES as readonly string[]).includes(filter.state)) {
      throw invalidField('state', `state ${JSON.stringify(filter.state)} must be one of ${APPROVAL_STATES.join(', ')}`);
    }
    const now = this.clock();
    const rows = await this.approvals.list({
      ...(filter.state !== undefined ? { state: filter.state } : {}),
      ...(filter.agent !== undefined ? { agent: filter.agent } : {}),
      asOf: now.toISOString(),
    });
    const out = rows.map((a) => this.effective(a, now));
    // The store filters on expiry; abandonment (its grace is the service's) is applied here.
    return filter.state === undefined ? out : out.filter((a) => a.state === filter.state);
  }

  async findUsable(agentId: string, op: Operation): Promise<Approval | undefined> {
    const now = this.clock();
    // Latest expiry first, so the first that covers the operation is the one to prefer.
    for (const a of await this.approvals.listApproved(agentId, now.toISOString())) {
      if (this.stateAt(a, now) !== 'approved' || a.revokedAt !== null) continue;
      if (a.agentId !== agentId) continue;
      if (!scopeCovers(a.scope, op)) continue;
      if (!hasUsesLeft(a.scope, a.sessionsStarted)) continue;
      return a;
    }
    return undefined;
  }

  async startSession(id: string): Promise<boolean> {
    const now = this.clock();
    const a = await this.approvals.incrementSessions(id, now.toISOString());
    if (!a) {
      if (!(await this.approvals.get(id))) throw new BastionError(ErrorCode.NOT_FOUND, `approval ${JSON.stringify(id)} not found`, { id });
      return false;
    }
    this.emitChanged(a, { event: 'approval.session-started', actor: 'system' });
    return true;
  }

  async useForRequest(id: string): Promise<boolean> {
    const now = this.clock();
    // The same compare-and-set as a session: approved, unexpired, unrevoked and under the cap.
    const a = await this.approvals.incrementSessions(id, now.toISOString());
    if (!a) {
      if (!(await this.approvals.get(id))) throw new BastionError(ErrorCode.NOT_FOUND, `approval ${JSON.stringify(id)} not found`, { id });
      return false;
    }
    this.emitChanged(a, { event: 'approval.used', actor: 'system' });
    return true;
  }

  async pendingCount(agentId: string): Promise<number> {
    return this.approvals.countPending(agentId, this.clock().toISOString());
  }

  // -------------------------------------------------------------------------------------------
  // Waiters (told by the holds)

  async nobodyWaiting(id: string): Promise<Approval | undefined> {
    const now = this.clock();
    const a = await this.approvals.setNobodyWaiting(id, now.toISOString());
    if (!a) return undefined;
    if (a.nobodyWaitingSince !== null) this.armAt(Date.parse(a.nobodyWaitingSince) + this.abandonGraceMs);
    // Not a state change (no audit row; the abandonment row says since when): shown to approvers.
    this.emitChanged(this.asOf(a, now), { event: 'approval.nobody-waiting', actor: 'system' });
    return this.asOf(a, now);
  }

  async someoneWaiting(id: string): Promise<Approval | undefined> {
    const now = this.clock();
    const a = await this.approvals.setNobodyWaiting(id, null);
    if (!a) return undefined;
    this.emitChanged(this.asOf(a, now), { event: 'approval.someone-waiting', actor: 'system' });
    return this.asOf(a, now);
  }

  // -------------------------------------------------------------------------------------------
  // Expiry

  /**
   * Persists every approval whose deadline has passed as `expired` (audit row + 'changed' each),
   * then arms the timer for the next deadline. Called by the timer; public for startup and tests.
   */
  expireDue(): Promise<Approval[]> {
    if (this.sweeping) {
      this.sweepAgain = true;
      return this.sweeping;
    }
    // Sessions under an approval due now are cut before its expiry is written: the write (a
    // transaction, fsync'd) takes milliseconds on the event loop, and an expiry is no decision
    // that must be committed before it takes effect (expiresAt was, when it was granted).
    deadlines.poll();
    const run = async (): Promise<Approval[]> => {
      const expired: Approval[] = [];
      try {
        do {
          this.sweepAgain = false;
          const now = this.clock();
          const cutoff = this.unwaitedCutoff(now);
          for (const due of this.closed ? [] : await this.approvals.listDue(now.toISOString(), cutoff)) {
            // Closed meanwhile (the store may be closing too): stop; the next start picks it up.
            if (this.closed) break;
            if (this.stateAt(due, now) === 'abandoned') {
              const a = await this.approvals.transition(due.id, {
                from: 'pending',
                to: 'abandoned',
                ifUnwaitedSince: cutoff,
                audit: (x) => this.auditEvent('approval.abandoned', x, 'system', { nobodyWaitingSince: x.nobodyWaitingSince, abandonGraceSeconds: this.abandonGraceMs / 1000 }, now),
              });
              if (!a) continue; // decided, or a client came back, meanwhile
              this.committed(a, 'approval.abandoned', 'system', now);
              expired.push(a);
              continue;
            }
            const a = await this.approvals.transition(due.id, {
              from: due.state,
              to: 'expired',
              ifExpiredAt: now.toISOString(),
              audit: (x) => this.auditEvent('approval.expired', x, 'system', { previousState: due.state, sessionsStarted: x.sessionsStarted }, now),
            });
            if (!a) continue; // decided, revoked or extended meanwhile
            this.committed(a, 'approval.expired', 'system', now);
            expired.push(a);
          }
        } while (this.sweepAgain && !this.closed);
      } finally {
        this.sweeping = undefined;
      }
      return expired;
    };
    const started = this.clock().getTime();
    this.sweeping = run();
    const sweep = this.sweeping;
    void sweep.then(
      () => this.rescheduleFromStore(started),
      (err: unknown) => {
        this.onError(err);
        this.armAt(this.clock().getTime() + SWEEP_RETRY_MS, true);
      },
    );
    return sweep;
  }

  // -------------------------------------------------------------------------------------------
  // Watching

  watch(id: string, listener: (a: Approval, change: ApprovalChange) => void): () => void {
    return subscribe(this.watchers, id, listener);
  }

  watchAgent(agentId: string, listener: (r: AgentRevocation) => void): () => void {
    return subscribe(this.agentWatchers, agentId, listener);
  }

  async agentRevoked(agent: { id: string; name: string }, actor: Actor, reason?: string): Promise<Approval[]> {
    authorize('revoke', actor);
    const why = `agent "${agent.name}" was revoked${reason ? `: ${reason}` : ''}`;
    const ended: Approval[] = [];
    // A failure ending one approval (its audit row, say) neither spares the others nor keeps the
    // agent's watchers from being told: the first error is thrown once everything was tried.
    let failure: { err: unknown } | undefined;
    try {
      for (const a of await this.approvals.list({ agent: agent.name })) {
        if (a.agentId !== agent.id) continue;
        const state = this.stateAt(a, this.clock());
        try {
          if (state === 'approved') ended.push(await this.revoke(a.id, actor, why));
          else if (state === 'pending') ended.push(await this.deny(a.id, actor, why));
        } catch (err) {
          // Decided or expired meanwhile: nothing left to end.
          if (!isBastionError(err, 'INVALID_STATE')) failure ??= { err };
        }
      }
    } catch (err) {
      failure ??= { err };
    }
    const revocation: AgentRevocation = { agent, by: actorId(actor), reason: reason ?? null, at: this.clock().toISOString() };
    for (const listener of [...(this.agentWatchers.get(agent.id) ?? [])]) {
      try {
        listener(revocation);
      } catch (err) {
        this.onError(err);
      }
    }
    if (failure) throw failure.err;
    return ended;
  }

  close(): void {
    this.closed = true;
    this.timer.close();
  }

  // -------------------------------------------------------------------------------------------
  // Internals

  /** effectiveState with this service's abandonment grace. */
  private stateAt(a: Approval, now: Date): ApprovalState {
    return effectiveState(a, now, this.abandonGraceMs);
  }

  private asOf(a: Approval, now: Date): Approval {
    return asOf(a, now, this.abandonGraceMs);
  }

  /** A pending approval nobody has waited on since this instant or earlier is abandoned at `now`. */
  private unwaitedCutoff(now: Date): string {
    return new Date(now.getTime() - this.abandonGraceMs).toISOString();
  }

  private effective(a: Approval, now = this.clock()): Approval {
    const e = this.asOf(a, now);
    // Computed as expired or abandoned but not yet written: let the sweep write it (audit row, 'changed').
    if (e.state !== a.state) this.armAt(now.getTime(), false, now);
    return e;
  }

  private async require(id: string): Promise<Approval> {
    if (typeof id !== 'string' || id.length === 0) throw invalidField('id', 'approval id is required');
    const a = await this.approvals.get(id);
    if (!a) throw new BastionError(ErrorCode.NOT_FOUND, `approval ${JSON.stringify(id)} not found`, { id });
    return a;
  }

  private refuseSelf(a: Approval, actor: Actor, decision: Decision): void {
    if (a.requestedBy === actorId(actor)) {
      throw new BastionError(ErrorCode.FORBIDDEN, `${actorId(actor)} requested approval ${a.id} and cannot ${decision} it; another approver must`, {
        id: a.id,
        actor: actorId(actor),
      });
    }
  }

  /**
   * An agent's owner does not approve its requests nor grant to it (the person running an agent
   * is not its check), unless the owner's role is listed in `ownerMayApprove`.
   */
  private refuseOwner(agent: { name: string; owner: string | null }, actor: Actor, decision: 'approve' | 'grant'): void {
    if (actor.kind !== 'user' || agent.owner === null || agent.owner !== actor.name) return;
    if (this.ownerMayApprove.includes(actor.role)) return;
    const what = decision === 'grant' ? 'grant to it' : 'approve its requests';
    throw new BastionError(
      ErrorCode.FORBIDDEN,
      `${actorId(actor)} owns agent "${agent.name}" and cannot ${what} (rule owner-may-not-approve: another approver must; ` +
        `serve --owner-may-approve ROLE lets owners with that role decide)`,
      { actor: actorId(actor), agent: agent.name, rule: 'owner-may-not-approve' },
    );
  }

  private async ownedAgent(agentId: string): Promise<{ name: string; owner: string | null }> {
    const agent = await this.agents.getAgentById(agentId);
    if (!agent) throw new BastionError(ErrorCode.INTERNAL, `the agent of an approval (${agentId}) is missing from the store`);
    return { name: agent.name, owner: agent.owner };
  }

  private refuseState(a: Approval, state: ApprovalState, from: ApprovalState, decision: Decision): BastionError {
    const done = decision === 'deny' ? 'denied' : `${decision}d`;
    // Said plainly: approving it would let nothing through now, and nobody would notice.
    const why =
      state === 'abandoned'
        ? `; nobody is waiting for it (every client that asked went away${a.nobodyWaitingSince ? ` at ${a.nobodyWaitingSince}` : ''} and none came back within ${this.abandonGraceMs / 1000} s), so it can no longer be ${done}; the agent has to ask again`
        : `; only ${from === 'pending' ? 'a pending' : 'an approved'} approval can be ${done}`;
    return new BastionError(
      ErrorCode.INVALID_STATE,
      `approval ${a.id} is ${state}${why}`,
      { field: 'state', id: a.id, state },
      { field: 'state' },
    );
  }

  /** Throws INVALID_STATE naming the current (effective) state unless it is `from`. */
  private expectState(current: Approval, from: ApprovalState, decision: Decision, now: Date): void {
    const state = this.stateAt(current, now);
    if (state === from) return;
    // Computed as expired or abandoned but not yet written: let the sweep write it.
    if (state !== current.state) this.armAt(now.getTime(), false, now);
    throw this.refuseState(current, state, from, decision);
  }

  /** The compare-and-set, with a message naming the current state when it does not apply. */
  private async transition(current: Approval, decision: Decision, t: ApprovalTransition, now: Date): Promise<Approval> {
    this.expectState(current, t.from, decision, now);
    const a = await this.approvals.transition(current.id, t);
    if (a) return a;
    // Lost a race (another decider, or the deadline passed): report what it is now.
    const after = await this.approvals.get(current.id);
    throw this.refuseState(after ?? current, after ? this.stateAt(after, this.clock()) : current.state, t.from, decision);
  }

  /** After a stored (and audited) change: re-arm the expiry timer, emit 'changed'. Returns the approval as of `now`. */
  private committed(a: Approval, event: string, actor: string, now: Date): Approval {
    this.scheduleAt(a.expiresAt);
    const out = this.asOf(a, now);
    this.emitChanged(out, { event, actor });
    return out;
  }

  /**
   * The audit row of a change, from the approval as the change stored it: every row carries the
   * columns the bastion decides from (state, scope, expiresAt, decidedBy), so the chain alone says
   * what the approvals table must hold.
   */
  private auditEvent(event: string, a: Approval, actor: string, details: Record<string, unknown>, now: Date): AuditEventInput {
    return {
      event,
      time: now,
      agent: { id: a.agentId, name: a.agent },
      actor,
      approvalId: a.id,
      ...scopeAuditFields(a.scope),
      ...(a.request ? { method: a.request.method, path: a.request.path } : {}),
      details: { state: a.state, requestedBy: a.requestedBy, decidedBy: a.decidedBy, scope: a.scope, expiresAt: a.expiresAt, ...details },
    };
  }

  /** Calls every listener; one that throws neither stops the others nor fails the caller. */
  private emitChanged(a: Approval, change: ApprovalChange): void {
    for (const listener of [...(this.watchers.get(a.id) ?? [])]) {
      try {
        listener(a, change);
      } catch (err) {
        this.onError(err);
      }
    }
    for (const listener of this.listeners('changed')) {
      try {
        (listener as (a: Approval, change: ApprovalChange) => void).call(this, a, change);
      } catch (err) {
        this.onError(err);
      }
    }
  }

  private async activeAgent(ref: unknown, how: 'name' | 'id'): Promise<{ id: string; name: string; owner: string | null }> {
    if (typeof ref !== 'string' || ref.length === 0) throw invalidField('agent', 'agent is required (the agent name)');
    const agent =
      how === 'name'
        ? ((await this.agents.getAgentByName(ref)) ?? (await this.agents.getAgentById(ref)))
        : await this.agents.getAgentById(ref);
    if (!agent) throw invalidField('agent', `agent ${JSON.stringify(ref)} does not exist`);
    if (agent.revokedAt !== null) throw invalidField('agent', `agent ${JSON.stringify(agent.name)} was revoked at ${agent.revokedAt}`);
    return { id: agent.id, name: agent.name, owner: agent.owner };
  }

  private async heldAgent(v: unknown): Promise<{ id: string; name: string }> {
    const ref = v as { id?: unknown; name?: unknown } | null | undefined;
    if (typeof ref !== 'object' || ref === null || typeof ref.id !== 'string') throw invalidField('agent', 'agent must be { id, name }');
    const agent = await this.activeAgent(ref.id, 'id');
    if (ref.name !== undefined && ref.name !== agent.name) throw invalidField('agent.name', `agent name ${JSON.stringify(ref.name)} does not match the agent's id`);
    return agent;
  }

  private scheduleAt(expiresAt: string | null): void {
    if (expiresAt !== null) this.armAt(Date.parse(expiresAt));
  }

  /** Arms the expiry timer for instant `at` unless an earlier one is armed; `force` replaces it. */
  private armAt(at: number, force = false, now = this.clock()): void {
    this.timer.armAt(at, force, now.getTime());
  }

  /**
   * Arms the timer for the earliest stored deadline. `sweptAt`: the instant a sweep that just
   * finished started; a deadline it should have handled but did not (another process holds it, a
   * race) is retried a little later rather than at once, so the timer can never spin.
   */
  private rescheduleFromStore(sweptAt?: number): void {
    if (this.closed) return;
    Promise.all([this.approvals.nextExpiry(), this.approvals.nextUnwaited()]).then(
      ([expiry, unwaited]) => {
        const at = Math.min(expiry === undefined ? Infinity : Date.parse(expiry), unwaited === undefined ? Infinity : Date.parse(unwaited) + this.abandonGraceMs);
        if (!Number.isFinite(at)) return;
        this.armAt(sweptAt !== undefined && at <= sweptAt ? this.clock().getTime() + SWEEP_RETRY_MS : at);
      },
      (err: unknown) => {
        this.onError(err);
        this.armAt(this.clock().getTime() + SWEEP_RETRY_MS, true);
      },
    );
  }
}

/** The refusal of a port-forward approved without ports: it would reach nothing. */
const PORTS_TO_NAME = 'ports is required: name the pod ports this port-forward may reach (--ports)';

/**
 * The scope approved: as asked, a REST scope widened by its approver (`uses`, `scope`), or a
 * port-forward's ports as its approver names them (a request over SPDY or the WebSocket tunnel
 * names none: its ports travel inside the stream); undefined when unchanged. Anything else about a
 * stream scope is changed by a new grant, never on approval.
 */
function approvedScope(asked: ApprovalScope, opts: ApproveOptions): ApprovalScope | undefined {
  const { uses, scope, ports } = validateWidening(opts);
  if (asked.kind === 'rest') {
    if (ports !== undefined) throw invalidField('ports', 'ports names the pod ports of a portforward approval; this approval is for a REST request');
    if (uses === undefined && scope === undefined) return undefined;
    const widened = widenRestScope(asked, { uses, scope });
    return JSON.stringify(widened) === JSON.stringify(canonicalScope(asked)) ? undefined : widened;
  }
  if (uses !== undefined || scope !== undefined) {
    const field = uses !== undefined ? 'uses' : 'scope';
    throw invalidField(field, `${field} widens REST approvals only; the scope of an exec, attach or portforward approval is changed by a new grant`);
  }
  if (!asked.verbs.includes('portforward')) {
    if (ports !== undefined) throw invalidField('ports', `ports names the pod ports a port-forward may reach; this approval is for ${asked.verbs.join(', ')}`);
    return undefined;
  }
  const approved = canonicalScope({ ...asked, ...(ports !== undefined ? { ports } : {}) });
  if (approved.kind !== 'stream' || approved.ports === undefined) throw invalidField('ports', PORTS_TO_NAME);
  return JSON.stringify(approved) === JSON.stringify(canonicalScope(asked)) ? undefined : approved;
}

/** A direct grant that forwards names its ports (nobody is asked later). */
function requirePortsOfGrant(scope: ApprovalScope): void {
  if (scope.kind === 'stream' && scope.verbs.includes('portforward') && scope.ports === undefined) {
    throw invalidField('scope.ports', `scope.ports ${PORT_FORWARD_GRANT_PORTS}`);
  }
}

function subscribe<T>(map: Map<string, Set<T>>, key: string, listener: T): () => void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(listener);
  return () => {
    set.delete(listener);
    if (set.size === 0 && map.get(key) === set) map.delete(key);
  };
}
