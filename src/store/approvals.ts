// Approval records. This file stores and queries them; the life cycle (who may decide, which
// transitions exist, audit, expiry timers) is src/approvals/service.ts. State changes are
// compare-and-set updates, so two deciders (or a decider and the expiry timer) cannot both win,
// and a trigger refuses any transition outside the life cycle. A change's audit row (built by the
// caller from the approval as stored) is appended to the chain in the change's own transaction.
import { randomBytes } from 'node:crypto';
import { canonicalScope, scopeJson } from '../model/scope.js';
import type { Approval, ApprovalDecision, ApprovalScope, ApprovalState } from '../model/approval.js';
import { BastionError, ErrorCode } from '../errors/index.js';
import type { Db } from './db.js';
import { appendAuditEvent, commitPendingAudit } from './audit.js';
import type {
  ApprovalAudit,
  ApprovalChanges,
  AuditEventInput,
  ApprovalStore,
  ApprovalStoreFilter,
  ApprovalTransition,
  NewApproval,
} from './types.js';

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const ID_RANDOM_LENGTH = 20;

/**
 * `prefix` + 20 random lower-case base32 characters (100 bits). Lower case only, so ids are safe
 * as file names on case-insensitive file systems (recordings/<approval-id>/...).
 */
export function randomId(prefix: string): string {
  const bytes = randomBytes(ID_RANDOM_LENGTH);
  let out = prefix;
  // 256 is a multiple of 32: taking the low 5 bits of a uniform byte is uniform.
  for (const b of bytes) out += ID_ALPHABET[b & 31];
  return out;
}

export const APPROVAL_ID_PREFIX = 'apr_';
export const APPROVAL_ID_PATTERN = /^apr_[a-z2-7]{20}$/;

export function newApprovalId(): string {
  return randomId(APPROVAL_ID_PREFIX);
}

interface ApprovalRow {
  id: string;
  state: ApprovalState;
  agent_id: string;
  agent_name: string;
  scope_kind: 'stream' | 'rest';
  scope: string;
  max_sessions: number | null;
  requested_by: string;
  decided_by: string | null;
  reason: string | null;
  ttl_seconds: number;
  created_at: string;
  decided_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
  sessions_started: number;
  request: string | null;
  nobody_waiting_since: string | null;
}

/** A row as read: the approval's columns and its decision history (JSON, oldest first). */
interface ApprovalReadRow extends ApprovalRow {
  decisions: string;
}

const ROW_COLUMNS =
  'id, state, agent_id, agent_name, scope_kind, scope, max_sessions, requested_by, decided_by, reason, ttl_seconds, ' +
  'created_at, decided_at, expires_at, revoked_at, sessions_started, request, nobody_waiting_since';

/** Every read carries the decision history, so no Approval is ever seen without it. */
const COLUMNS =
  `${ROW_COLUMNS}, (SELECT json_group_array(json_object('kind', d.kind, 'by', d.actor, 'at', d.at, 'reason', d.reason, ` +
  `'ttlSeconds', d.ttl_seconds, 'expiresAt', d.expires_at) ORDER BY d.id) FROM approval_decisions d WHERE d.approval_id = approvals.id) AS decisions`;

function toApproval(row: ApprovalReadRow): Approval {
  const decisions = JSON.parse(row.decisions) as ApprovalDecision[];
  return {
    id: row.id,
    state: row.state,
    agent: row.agent_name,
    agentId: row.agent_id,
    scope: canonicalScope(JSON.parse(row.scope) as ApprovalScope),
    requestedBy: row.requested_by,
    decidedBy: row.decided_by,
    reason: row.reason,
    ttlSeconds: row.ttl_seconds,
    createdAt: row.created_at,
    decidedAt: row.decided_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    revokedBy: decisions.findLast((d) => d.kind === 'revoked')?.by ?? null,
    decisions,
    sessionsStarted: row.sessions_started,
    request: row.request === null ? null : (JSON.parse(row.request) as Approval['request']),
    nobodyWaitingSince: row.nobody_waiting_since,
  };
}

/** The cap the max_sessions column holds: a stream scope's maxSessions, a REST scope's maxUses. */
function maxUsesOf(scope: ApprovalScope): number | null {
  return (scope.kind === 'stream' ? scope.maxSessions : scope.maxUses) ?? null;
}

/** Approval field -> column, for the fields a transition may set (`scope` sets max_sessions too). */
const CHANGE_COLUMNS: Record<keyof ApprovalChanges, keyof ApprovalRow> = {
  scope: 'scope',
  decidedBy: 'decided_by',
  decidedAt: 'decided_at',
  expiresAt: 'expires_at',
  revokedAt: 'revoked_at',
  reason: 'reason',
  ttlSeconds: 'ttl_seconds',
};

/** Still open at `?`: no deadline, or a deadline after the instant. */
const UNEXPIRED = '(expires_at IS NULL OR expires_at > ?)';

export class SqliteApprovalStore implements ApprovalStore {
  private readonly byId;
  private readonly insertRow;
  private readonly pendingFor;
  private readonly extendPending;
  private readonly approvedFor;
  private readonly pendingCount;
  private readonly due;
  private readonly next;
  private readonly increment;
  private readonly insertDecision;
  private readonly unwaited;
  private readonly rewaited;
  private readonly nextUnwaitedAt;
  private readonly transitions = new Map<string, ReturnType<Db['prepare']>>();

  /**
   * Every time-dependent method takes its instant (`asOf`) from the caller; `clock` only stamps an
   * audit row that brings no time of its own.
   */
  constructor(
    private readonly db: Db,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.byId = db.prepare<[string], ApprovalReadRow>(`SELECT ${COLUMNS} FROM approvals WHERE id = ?`);
    this.insertRow = db.prepare(
      `INSERT INTO approvals (${ROW_COLUMNS}) VALUES (@id, @state, @agent_id, @agent_name, @scope_kind, @scope, @max_sessions,
        @requested_by, @decided_by, @reason, @ttl_seconds, @created_at, @decided_at, @expires_at, @revoked_at,
        @sessions_started, @request, @nobody_waiting_since)`,
    );
    this.pendingFor = db.prepare<[string, string, string], ApprovalReadRow>(
      `SELECT ${COLUMNS} FROM approvals WHERE agent_id = ? AND state = 'pending' AND scope = ? AND ${UNEXPIRED}
       ORDER BY created_at, rowid LIMIT 1`,
    );
    this.extendPending = db.prepare<[string, string, string]>(
      `UPDATE approvals SET expires_at = ? WHERE id = ? AND state = 'pending' AND expires_at IS NOT NULL AND expires_at < ?`,
    );
    this.approvedFor = db.prepare<[string, string], ApprovalReadRow>(
      `SELECT ${COLUMNS} FROM approvals WHERE agent_id = ? AND state = 'approved' AND revoked_at IS NULL AND ${UNEXPIRED}
       ORDER BY expires_at IS NULL DESC, expires_at DESC, created_at DESC, rowid DESC`,
    );
    this.pendingCount = db.prepare<[string, string], { n: number }>(
      `SELECT COUNT(*) AS n FROM approvals WHERE agent_id = ? AND state = 'pending' AND ${UNEXPIRED}`,
    );
    this.due = db.prepare<[string, string], ApprovalReadRow>(
      `SELECT ${COLUMNS} FROM approvals
       WHERE (state IN ('pending', 'approved') AND expires_at IS NOT NULL AND expires_at <= ?)
          OR (state = 'pending' AND nobody_waiting_since IS NOT NULL AND nobody_waiting_since <= ?)
       ORDER BY expires_at, rowid`,
    );
    this.unwaited = db.prepare<[string, string], ApprovalReadRow>(
      `UPDATE approvals SET nobody_waiting_since = COALESCE(nobody_waiting_since, ?) WHERE id = ? AND state = 'pending' RETURNING ${COLUMNS}`,
    );
    this.rewaited = db.prepare<[string], ApprovalReadRow>(
      `UPDATE approvals SET nobody_waiting_since = NULL WHERE id = ? AND state = 'pending' RETURNING ${COLUMNS}`,
    );
    this.nextUnwaitedAt = db.prepare<[], { t: string | null }>(
      `SELECT MIN(nobody_waiting_since) AS t FROM approvals WHERE state = 'pending' AND nobody_waiting_since IS NOT NULL`,
    );
    this.next = db.prepare<[], { t: string | null }>(
      `SELECT MIN(expires_at) AS t FROM approvals WHERE state IN ('pending', 'approved') AND expires_at IS NOT NULL`,
    );
    this.increment = db.prepare<[string, string], ApprovalReadRow>(
      `UPDATE approvals SET sessions_started = sessions_started + 1
       WHERE id = ? AND state = 'approved' AND revoked_at IS NULL AND ${UNEXPIRED}
         AND (max_sessions IS NULL OR sessions_started < max_sessions)
       RETURNING ${COLUMNS}`,
    );
    this.insertDecision = db.prepare(
      `INSERT INTO approval_decisions (approval_id, kind, actor, at, reason, ttl_seconds, expires_at)
       VALUES (@approvalId, @kind, @by, @at, @reason, @ttlSeconds, @expiresAt)`,
    );
  }

  /** Appends one decision; the caller's transaction makes it one with the state change. */
  private recordDecision(approvalId: string, d: ApprovalDecision): void {
    this.insertDecision.run({ approvalId, kind: d.kind, by: d.by, at: d.at, reason: d.reason, ttlSeconds: d.ttlSeconds, expiresAt: d.expiresAt });
  }

  private rowFor(input: NewApproval): ApprovalRow {
    const scope = canonicalScope(input.scope);
    return {
      id: input.id ?? newApprovalId(),
      state: input.state,
      agent_id: input.agentId,
      agent_name: input.agent,
      scope_kind: scope.kind,
      scope: JSON.stringify(scope),
      max_sessions: maxUsesOf(scope),
      requested_by: input.requestedBy,
      decided_by: input.decidedBy,
      reason: input.reason,
      ttl_seconds: input.ttlSeconds,
      created_at: input.createdAt,
      decided_at: input.decidedAt,
      expires_at: input.expiresAt,
      revoked_at: null,
      sessions_started: 0,
      request: input.request === null ? null : JSON.stringify(input.request),
      nobody_waiting_since: null,
    };
  }

  private insert(input: NewApproval): Approval {
    const row = this.rowFor(input);
    this.insertRow.run(row);
    if (input.decision) this.recordDecision(row.id, input.decision);
    return toApproval(this.byId.get(row.id)!);
  }

  /** Inside the caller's transaction: a failure rolls the change back with it. */
  private audited(approval: Approval, audit: ((a: Approval) => AuditEventInput) | undefined): Approval {
    if (audit) appendAuditEvent(this.db, audit(approval), this.clock);
    return approval;
  }

  async create(input: NewApproval, audit?: ApprovalAudit): Promise<Approval> {
    // Rows accepted for a group commit go first (the chain's order), and a change never takes
    // effect when they cannot be committed.
    commitPendingAudit(this.db);
    return this.db.transaction(() => this.audited(this.insert(input), audit)).immediate();
  }

  async createOrJoinPending(
    input: NewApproval & { state: 'pending' },
    asOf: string,
    audit?: (approval: Approval, created: boolean) => AuditEventInput,
  ): Promise<{ approval: Approval; created: boolean }> {
    const tx = this.db.transaction((): { approval: Approval; created: boolean } => {
      const existing = this.pendingFor.get(input.agentId, scopeJson(input.scope), asOf);
      if (!existing) return { approval: this.audited(this.insert(input), audit && ((a) => audit(a, true))), created: true };
      // The pending approval lasts as long as the longest hold waiting on it.
      if (input.expiresAt !== null) this.extendPending.run(input.expiresAt, existing.id, input.expiresAt);
      // Someone waits on it again.
      this.rewaited.run(existing.id);
      return { approval: this.audited(toApproval(this.byId.get(existing.id)!), audit && ((a) => audit(a, false))), created: false };
    });
    commitPendingAudit(this.db);
    return tx.immediate();
  }

  async get(id: string): Promise<Approval | undefined> {
    const row = this.byId.get(id);
    return row && toApproval(row);
  }

  async list(filter: ApprovalStoreFilter = {}): Promise<Approval[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.agent !== undefined) {
      where.push('(agent_name = ? OR agent_id = ?)');
      params.push(filter.agent, filter.agent);
    }
    if (filter.state !== undefined) {
      if (filter.asOf === undefined) {
        where.push('state = ?');
        params.push(filter.state);
      } else if (filter.state === 'expired') {
        where.push(`(state = 'expired' OR (state IN ('pending', 'approved') AND NOT ${UNEXPIRED}))`);
        params.push(filter.asOf);
      } else if (filter.state === 'abandoned') {
        // Pending ones nobody waits on may be abandoned by now: the service decides with its grace.
        where.push(`(state = 'abandoned' OR (state = 'pending' AND nobody_waiting_since IS NOT NULL AND ${UNEXPIRED}))`);
        params.push(filter.asOf);
      } else if (filter.state === 'pending' || filter.state === 'approved') {
        where.push(`state = ? AND ${UNEXPIRED}`);
        params.push(filter.state, filter.asOf);
      } else {
        where.push('state = ?');
        params.push(filter.state);
      }
    }
    const sql =
      `SELECT ${COLUMNS} FROM approvals` +
      (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
      ' ORDER BY created_at DESC, rowid DESC';
    return (this.db.prepare(sql).all(...params) as ApprovalReadRow[]).map(toApproval);
  }

  async findPending(agentId: string, scope: ApprovalScope, asOf: string): Promise<Approval | undefined> {
    const row = this.pendingFor.get(agentId, scopeJson(scope), asOf);
    return row && toApproval(row);
  }

  async listApproved(agentId: string, asOf: string): Promise<Approval[]> {
    return this.approvedFor.all(agentId, asOf).map(toApproval);
  }

  async countPending(agentId: string, asOf: string): Promise<number> {
    return this.pendingCount.get(agentId, asOf)!.n;
  }

  async transition(id: string, t: ApprovalTransition): Promise<Approval | undefined> {
    const set = t.set ?? {};
    const keys = (Object.keys(set) as (keyof ApprovalChanges)[]).filter((k) => set[k] !== undefined);
    for (const k of keys) {
      if (!(k in CHANGE_COLUMNS)) throw new BastionError(ErrorCode.INTERNAL, `approval field ${String(k)} cannot be changed`);
    }
    const shape = `${keys.join(',')}|${t.ifUnexpiredAt !== undefined}|${t.ifExpiredAt !== undefined}|${t.ifUnwaitedSince !== undefined}|${t.ifWaitedSince !== undefined}`;
    let stmt = this.transitions.get(shape);
    if (!stmt) {
      const assignments = ['state = @to', ...keys.map((k) => `${CHANGE_COLUMNS[k]} = @${k}`), ...(keys.includes('scope') ? ['max_sessions = @maxUses'] : [])];
      const guards = ['id = @id', 'state = @from'];
      if (t.ifUnexpiredAt !== undefined) guards.push('(expires_at IS NULL OR expires_at > @ifUnexpiredAt)');
      if (t.ifExpiredAt !== undefined) guards.push('(expires_at IS NOT NULL AND expires_at <= @ifExpiredAt)');
      if (t.ifUnwaitedSince !== undefined) guards.push('(nobody_waiting_since IS NOT NULL AND nobody_waiting_since <= @ifUnwaitedSince)');
      if (t.ifWaitedSince !== undefined) guards.push('(nobody_waiting_since IS NULL OR nobody_waiting_since > @ifWaitedSince)');
      stmt = this.db.prepare(`UPDATE approvals SET ${assignments.join(', ')} WHERE ${guards.join(' AND ')} RETURNING id`);
      this.transitions.set(shape, stmt);
    }
    const params: Record<string, unknown> = { id, from: t.from, to: t.to };
    for (const k of keys) params[k] = set[k];
    if (set.scope !== undefined) {
      // Widened by the approver as it is approved (a trigger refuses it at any other time).
      const scope = canonicalScope(set.scope);
      params['scope'] = JSON.stringify(scope);
      params['maxUses'] = maxUsesOf(scope);
    }
    if (t.ifUnexpiredAt !== undefined) params['ifUnexpiredAt'] = t.ifUnexpiredAt;
    if (t.ifExpiredAt !== undefined) params['ifExpiredAt'] = t.ifExpiredAt;
    if (t.ifUnwaitedSince !== undefined) params['ifUnwaitedSince'] = t.ifUnwaitedSince;
    if (t.ifWaitedSince !== undefined) params['ifWaitedSince'] = t.ifWaitedSince;
    const apply = this.db.transaction((): Approval | undefined => {
      const changed = stmt.get(params) as { id: string } | undefined;
      if (!changed) return undefined;
      if (t.decision) this.recordDecision(id, t.decision);
      return this.audited(toApproval(this.byId.get(id)!), t.audit);
    });
    if (t.audit) commitPendingAudit(this.db);
    return apply.immediate();
  }

  async listDue(asOf: string, unwaitedSince?: string): Promise<Approval[]> {
    // No cutoff: no abandonment is due ('' sorts before every instant).
    return this.due.all(asOf, unwaitedSince ?? '').map(toApproval);
  }

  async nextExpiry(): Promise<string | undefined> {
    return this.next.get()?.t ?? undefined;
  }

  async setNobodyWaiting(id: string, since: string | null): Promise<Approval | undefined> {
    const row = since === null ? this.rewaited.get(id) : this.unwaited.get(since, id);
    return row && toApproval(row);
  }

  async nextUnwaited(): Promise<string | undefined> {
    return this.nextUnwaitedAt.get()?.t ?? undefined;
  }

  async incrementSessions(id: string, asOf: string): Promise<Approval | undefined> {
    const row = this.increment.get(id, asOf);
    return row && toApproval(row);
  }
}
