// The review record of one approval: the approval, its decisions, the rule and policy version that
// asked for it, every request of the agent against the same pod or object during its window (with
// why each was inside or outside the scope), and its sessions with their recordings. Read from the
// stores; nothing here decides anything, it re-checks.
//
// Decisions come from the approval's audit rows, which the hash chain keeps append-only: a later
// revocation cannot hide the approver's reason. The conformance verdict re-checks every session
// and request that ran under the approval against its scope and window with the same scope
// function the gate uses, so a gate bug shows up here as `outside-scope` instead of being trusted.
import { portAllowed, scopeCovers, splitScopedResource } from '../model/scope.js';
import type { ForwardedConnection } from '../model/forward.js';
import type { Approval, ApprovalScope, Operation } from '../model/approval.js';
import type { ReviewAttempt, ReviewConnection, ReviewDecision, ReviewRecord, ReviewSession, ReviewVerdict } from '../model/review-record-schema.js';
import type { AuditLog, AuditQuery, AuditRecord, PolicyVersionStore, Session, SessionStore } from '../store/types.js';
import { ruleSource } from '../policy/rule-source.js';
import { BastionError, ErrorCode } from '../errors/index.js';
import { STREAM_OPERATIONS } from '../model/vocabulary.js';
import type { ApprovalSource } from './bundle.js';

export interface ReviewSources {
  approvals: ApprovalSource;
  sessions: SessionStore;
  audit: AuditLog;
  policyVersions: Pick<PolicyVersionStore, 'getPolicyVersion'>;
  /** The agent's owner, when identities carry one. */
  agentOwner?: (agentId: string) => Promise<string | null>;
  clock?: () => Date;
}

/** At most this many audit rows are read for one record (a runaway agent cannot make it unbounded). */
const MAX_ROWS = 9_999;

/** The approval's own life-cycle rows: only deciders and the bastion write them. */
export const LIFE_CYCLE_EVENTS = [
  'approval.requested',
  'approval.granted',
  'approval.approved',
  'approval.auto-approved',
  'approval.denied',
  'approval.revoked',
  'approval.expired',
  'approval.abandoned',
] as const;

/** Outcomes of a request that ran (a session or a forwarded REST call) rather than being refused. */
function refusedRow(row: AuditRecord, outcome: string | null): boolean {
  if (row.statusCode !== null && row.statusCode >= 400) return true;
  // A stream that never got a session was refused (or its client left) before anything ran.
  return row.stream !== null && row.sessionId === null && outcome !== 'completed';
}

function detailsOf(row: AuditRecord): Record<string, unknown> {
  if (row.details === null) return {};
  try {
    const v = JSON.parse(row.details) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const int = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) ? v : null);

/** The exec argv and container named in a stream request's query. */
function streamQuery(path: string | null): { command: string[] | null; container: string | null } {
  if (path === null) return { command: null, container: null };
  const q = new URL(path, 'https://bastion.invalid').searchParams;
  const command = q.getAll('command');
  return { command: command.length > 0 ? command : null, container: q.get('container') };
}

/** The instant the approval's window closes: when it ended, or now. */
function windowEnd(a: Approval, now: Date): string {
  const candidates = [
    a.revokedAt,
    a.state === 'denied' ? a.decidedAt : null,
    a.state === 'expired' || a.state === 'approved' || a.state === 'pending' ? a.expiresAt : null,
    a.state === 'abandoned' ? a.nobodyWaitingSince : null,
  ];
  const ends = candidates.filter((t): t is string => t !== null).map((t) => Date.parse(t));
  const end = Math.min(now.getTime(), ...ends);
  return new Date(end).toISOString();
}

/**
 * The approval's target as an audit query: its pod's streams (reads of the pod, its logs and
 * status are many, cheap and need no approval, so no record lists them), or its object (the
 * collection, for a scope without a name).
 */
function targetQuery(scope: ApprovalScope): Pick<AuditQuery, 'namespace' | 'apiGroup' | 'resource' | 'subresources' | 'name'> {
  if (scope.kind === 'stream') return { namespace: scope.namespace, apiGroup: '', resource: 'pods', subresources: STREAM_OPERATIONS, name: scope.pod };
  const { apiGroup, resource, subresource } = splitScopedResource(scope.resource);
  return { namespace: scope.namespace, apiGroup, resource, subresources: [subresource], ...(scope.name !== '' ? { name: scope.name } : {}) };
}

/** Whether a row matches the target query: the store filters by it, this re-checks what it returned. */
function onTarget(row: AuditRecord, q: ReturnType<typeof targetQuery>): boolean {
  return (
    row.event === 'request' &&
    (row.namespace ?? '') === q.namespace &&
    (row.apiGroup ?? '') === q.apiGroup &&
    row.resource === q.resource &&
    q.subresources!.includes(row.subresource ?? '') &&
    (q.name === undefined || row.name === q.name)
  );
}

/** Why `scope` does not cover a stream request (or null when it does), from what the row says. */
function streamMismatch(scope: ApprovalScope & { kind: 'stream' }, stream: string, container: string | null, command: string[] | null): string | null {
  if (!(scope.verbs as readonly string[]).includes(stream)) return `${stream} is not among the approved verbs (${scope.verbs.join(', ')})`;
  // A port-forward names no container (it reaches the pod).
  if (stream !== 'portforward' && container !== null && container !== scope.container) return `container "${container}" is not the approved container "${scope.container ?? '(none)'}"`;
  if (stream === 'exec' && scope.commands !== undefined && command !== null) {
    const op: Operation = { kind: 'stream', verb: 'exec', namespace: scope.namespace, pod: scope.pod, container: scope.container ?? '', command };
    if (!scopeCovers(scope, op)) return `command ${JSON.stringify(command)} is not in the approved commands ${JSON.stringify(scope.commands)}`;
  }
  return null;
}

function restMismatch(scope: ApprovalScope & { kind: 'rest' }, row: AuditRecord): string | null {
  if (row.verb !== scope.verb) return `verb ${row.verb ?? '(none)'} is not the approved verb ${scope.verb}`;
  if (scope.name !== '' && row.name !== scope.name) return `object "${row.name ?? ''}" is not the approved object "${scope.name}"`;
  const bound = scope.request;
  if (bound && row.method !== null && row.method !== bound.method) return `method ${row.method} is not the approved request's ${bound.method}`;
  if (bound && row.path !== null && row.path.split('?')[0] !== bound.path) return `path ${row.path.split('?')[0]} is not the approved request's ${bound.path}`;
  return null;
}

function sessionOp(s: Session): Operation | undefined {
  if (s.operation === null) return undefined;
  return { kind: 'stream', verb: s.operation, namespace: s.namespace, pod: s.pod, container: s.container, command: s.command };
}

/** The approved ports, as a record says them. */
function portsText(scope: ApprovalScope): string {
  return scope.kind === 'stream' && scope.ports !== undefined ? scope.ports.join(', ') : 'none';
}

/**
 * A forwarded connection re-checked against the approval: its port among the approved ports (the
 * gate's portAllowed) and, when it was let through, its start within the window. A refused one is
 * called out as outside the approved ports with what its client was told.
 */
function reviewConnection(scope: ApprovalScope, c: ForwardedConnection, from: string | null, until: string): ReviewConnection {
  const { sessionId: _session, ...fields } = c;
  const allowed = portAllowed(scope, c.port);
  const timely = within(c.startedAt, from, until);
  const ended = c.outcome === null ? 'still open' : `${c.outcome}${c.detail ? ` (${c.detail})` : ''}`;
  let why: string;
  if (c.outcome === 'refused') {
    why = allowed
      ? `refused: ${c.detail ?? 'no detail'}`
      : `outside the approved ports (${portsText(scope)}): port ${c.port} was refused${c.detail ? `: ${c.detail}` : ''}`;
  } else if (!allowed) {
    why = `OUTSIDE the approved ports (${portsText(scope)}): port ${c.port} was let through; ${ended}`;
  } else if (!timely) {
    why = `started outside the approval's window; ${ended}`;
  } else {
    why = `inside the approved ports; ${ended}`;
  }
  return { ...fields, inScope: allowed && (timely || c.outcome === 'refused'), why };
}

/** Whether the row's request (from its arrival to its end) overlaps the window. */
function overlaps(row: AuditRecord, from: string | null, until: string): boolean {
  const start = Date.parse(row.time);
  return from !== null && start + (row.durationMs ?? 0) >= Date.parse(from) && start <= Date.parse(until);
}

function within(at: string, from: string | null, until: string): boolean {
  const t = Date.parse(at);
  return from !== null && t >= Date.parse(from) && t <= Date.parse(until);
}

export async function buildReviewRecord(src: ReviewSources, approvalId: string): Promise<ReviewRecord> {
  const now = (src.clock ?? (() => new Date()))();
  const approval = await src.approvals.get(approvalId);
  if (!approval) throw new BastionError(ErrorCode.NOT_FOUND, `approval ${JSON.stringify(approvalId)} not found`, { id: approvalId });
  // Only the rows deciders and the bastion write: an agent can add any number of `approval.joined`
  // and request rows to an approval (held clones), but never one of these.
  const own = await src.audit.query({ approvalId, events: LIFE_CYCLE_EVENTS, limit: MAX_ROWS });

  // 3. Decisions: the life-cycle rows, in chain order, and any decision the approval's own
  // append-only history has that the chain lacks (a crash between the two writes).
  const decisions: ReviewDecision[] = own.map((r) => {
    const d = detailsOf(r);
    return { event: r.event, actor: r.actor, at: r.time, reason: str(d['reason']), ttlSeconds: int(d['ttlSeconds']), expiresAt: str(d['expiresAt']), auditId: r.id };
  });
  for (const d of approval.decisions) {
    const event = `approval.${d.kind}`;
    if (!decisions.some((x) => x.event === event && x.actor === d.by && x.at === d.at)) {
      decisions.push({ event, actor: d.by, at: d.at, reason: d.reason, ttlSeconds: d.ttlSeconds, expiresAt: d.expiresAt, auditId: null });
    }
  }
  decisions.sort((a, b) => a.at.localeCompare(b.at));

  // 1 and 2. Who asked, and the rule that held (or auto-approved) it.
  const asked = (await src.audit.query({ approvalId, event: 'request', limit: 1 })).find((r) => r.rule !== null && r.decision === 'approval');
  const auto = own.find((r) => r.event === 'approval.auto-approved');
  const requestedRow = own.find((r) => r.event === 'approval.requested' || r.event === 'approval.granted' || r.event === 'approval.auto-approved');
  const held = approval.request as (Approval['request'] & { client?: unknown; rule?: unknown; policyHash?: unknown }) | null;
  const ruleName = str(held?.rule) ?? auto?.rule ?? asked?.rule ?? null;
  const policyHash = str(held?.policyHash) ?? auto?.policyHash ?? asked?.policyHash ?? null;
  const version = policyHash !== null ? await src.policyVersions.getPolicyVersion(policyHash) : undefined;
  const ruleText = version && ruleName !== null ? (ruleSource(version.source, ruleName) ?? null) : null;
  const client = str(held?.client) ?? requestedRow?.source ?? asked?.source ?? null;

  // 4. The window and every request against the same target in it.
  const from = approval.decidedAt !== null && approval.state !== 'denied' && approval.state !== 'pending' ? approval.decidedAt : null;
  const until = windowEnd(approval, now);
  const sessions = await src.sessions.list({ approvalId });
  // Filtered by target in the store, so requests against anything else cannot push these out. A
  // row's time is when its request arrived: the held request that created this approval (and
  // clones that joined it) arrived before it existed, so those are read by approval id as well.
  const onThis = targetQuery(approval.scope);
  const target = { agent: approval.agentId, event: 'request', ...onThis, limit: MAX_ROWS + 1 };
  const byId = new Map<number, AuditRecord>();
  const ofThis = await src.audit.query({ ...target, approvalId });
  const inWindow = await src.audit.query({ ...target, since: approval.createdAt, until });
  for (const r of [...ofThis, ...inWindow]) byId.set(r.id, r);
  const rows = [...byId.values()].filter((r) => onTarget(r, onThis)).sort((a, b) => a.id - b.id);
  // The store caps a query at 10,000 rows: one more than a record lists tells a cut.
  const truncated = ofThis.length > MAX_ROWS || inWindow.length > MAX_ROWS || rows.length > MAX_ROWS;
  if (truncated) rows.length = MAX_ROWS;
  const sessionCount = (before: string): number => sessions.filter((s) => Date.parse(s.startedAt) < Date.parse(before)).length;
  // REST uses are the forwarded requests under this approval (a request row is written when it ends).
  const restUses = (before: string): number =>
    rows.filter((r) => r.approvalId === approvalId && r.stream === null && (r.statusCode ?? 0) < 400 && Date.parse(r.time) < Date.parse(before)).length;

  const attempts: ReviewAttempt[] = rows.map((row) => {
    const d = detailsOf(row);
    const outcome = str(d['outcome']);
    const refused = refusedRow(row, outcome);
    const { command, container } = streamQuery(row.stream !== null ? row.path : null);
    const relation: ReviewAttempt['relation'] = row.approvalId === approvalId ? 'this-approval' : row.approvalId === null ? 'policy' : 'other-approval';
    let mismatch: string | null = null;
    if (approval.scope.kind === 'stream') {
      mismatch = row.stream === null ? 'not a stream request (the scope covers exec/attach/portforward only)' : streamMismatch(approval.scope, row.stream, container, command);
    } else {
      mismatch = restMismatch(approval.scope, row);
    }
    if (mismatch === null && from === null) mismatch = 'the approval was never approved';
    // A held request arrives before its decision and runs after it: it is in the window when it
    // ended after the decision and arrived before the end.
    else if (mismatch === null && !(relation === 'this-approval' ? overlaps(row, from, until) : within(row.time, from, until))) mismatch = 'outside the approval\'s window';
    else if (mismatch === null && approval.scope.kind === 'stream' && approval.scope.maxSessions !== undefined && relation !== 'this-approval' && sessionCount(row.time) >= approval.scope.maxSessions) {
      mismatch = `no sessions left (${approval.scope.maxSessions} of ${approval.scope.maxSessions} used)`;
    } else if (mismatch === null && approval.scope.kind === 'rest' && approval.scope.maxUses !== undefined && relation !== 'this-approval' && restUses(row.time) >= approval.scope.maxUses) {
      mismatch = `no uses left (${approval.scope.maxUses} of ${approval.scope.maxUses} used)`;
    }
    const inScope = mismatch === null;
    const happened =
      relation === 'this-approval'
        ? refused
          ? `refused under this approval (${outcome ?? `status ${row.statusCode ?? '?'}`}${str(d['detail']) ? `: ${str(d['detail'])}` : ''})`
          : `ran under this approval${row.sessionId ? ` as session ${row.sessionId}` : ''}`
        : relation === 'policy'
          ? `decided by policy rule ${row.rule ?? '?'} (${row.decision ?? '?'}) without an approval${refused ? `; refused (status ${row.statusCode ?? '?'})` : ''}`
          : `${refused ? 'refused' : 'ran'} under approval ${row.approvalId} (${outcome ?? `status ${row.statusCode ?? '?'}`})`;
    const why = inScope ? `inside the scope; ${happened}` : `outside the scope: ${mismatch}; ${happened}`;
    return {
      at: row.time,
      source: row.source,
      method: row.method,
      path: row.path,
      stream: row.stream,
      command,
      statusCode: row.statusCode,
      outcome,
      approvalId: row.approvalId,
      sessionId: row.sessionId,
      relation,
      inScope,
      refused,
      why,
      auditId: row.id,
    };
  });

  // 5. The sessions, each re-checked against the scope and the window (a port-forward's
  // connections against the approved ports).
  const clientOf = new Map(rows.filter((r) => r.sessionId !== null).map((r) => [r.sessionId!, r.source]));
  const connectionsOf = new Map<string, ReviewConnection[]>();
  for (const s of sessions) {
    if (s.operation === 'portforward') connectionsOf.set(s.id, (await src.sessions.listConnections(s.id)).map((c) => reviewConnection(approval.scope, c, from, until)));
  }
  const reviewSessions: ReviewSession[] = sessions
    .slice()
    .sort((a, b) => a.startedAt.localeCompare(b.startedAt))
    .map((s) => {
      const op = sessionOp(s);
      const covered = op !== undefined && scopeCovers(approval.scope, op);
      const timely = within(s.startedAt, from, until);
      const connections = connectionsOf.get(s.id) ?? null;
      // A connection let through to a port outside the scope is a use outside it; a refused one was kept out.
      const leaked = (connections ?? []).filter((c) => !c.inScope && c.outcome !== 'refused');
      const inScope = covered && timely && leaked.length === 0;
      const target = `${s.namespace}/${s.pod}${s.operation === 'portforward' ? '' : ` container ${s.container}`}`;
      const why = !covered
        ? `the scope does not cover ${s.operation ?? 'this session'} in ${target}`
        : !timely
          ? 'started outside the approval\'s window'
          : leaked.length > 0
            ? `connection${leaked.length === 1 ? '' : 's'} ${leaked.map((c) => `${c.seq} (port ${c.port})`).join(', ')} reached ports outside the scope`
            : 'inside the scope and window';
      return {
        id: s.id,
        operation: s.operation,
        container: s.container,
        command: s.command,
        tty: s.tty,
        transport: s.transport,
        client: s.client ?? clientOf.get(s.id) ?? null,
        startedAt: s.startedAt,
        endedAt: s.endedAt,
        endReason: s.endReason,
        exitCode: s.exitCode,
        bytesIn: s.bytesIn,
        bytesOut: s.bytesOut,
        castSha256: s.castSha256,
        rawSha256: s.rawSha256,
        files: s.files,
        recording: s.castPath !== null ? `/v1/sessions/${s.id}/recording` : null,
        inScope,
        why,
        connections,
      };
    });

  const restUsed = attempts.filter((a) => a.relation === 'this-approval' && !a.refused && a.stream === null);
  const used = reviewSessions.length + restUsed.length;
  const offending = reviewSessions.some((s) => !s.inScope) || restUsed.some((a) => !a.inScope);
  // REST uses are read from request rows: past the cap they cannot all be checked.
  const verdict: ReviewVerdict = offending ? 'outside-scope' : truncated && approval.scope.kind === 'rest' ? 'incomplete' : used === 0 ? 'unused' : 'inside-scope';
  // A read the policy lets through on its own (kubectl's GET of the pod before every exec) is
  // listed but is not an attempt outside the scope: it never needed one.
  // Forwarded connections are attempts too: one to a port outside the scope counts as outside, a refused one as refused.
  const allConnections = [...connectionsOf.values()].flat();
  const outside = attempts.filter((a) => !a.inScope && !(a.relation === 'policy' && !a.refused)).length + allConnections.filter((c) => !c.inScope).length;
  const refusedCount = attempts.filter((a) => a.refused).length + allConnections.filter((c) => c.outcome === 'refused').length;

  const record: Omit<ReviewRecord, 'answers'> = {
    approvalId,
    generatedAt: now.toISOString(),
    agent: { id: approval.agentId, name: approval.agent, owner: src.agentOwner ? await src.agentOwner(approval.agentId) : null },
    requested: {
      by: approval.requestedBy,
      at: approval.createdAt,
      client,
      method: approval.request?.method ?? null,
      path: approval.request?.path ?? null,
      command: approval.request?.command ?? null,
    },
    policy: { needed: ruleName !== null, rule: ruleName, policyHash, policyOrigin: version?.origin ?? null, ruleText },
    decisions,
    approval,
    scope: { approved: approval.scope, state: approval.state, window: { from, until } },
    conformance: { verdict, used, outside, refused: refusedCount, truncated, attempts },
    sessions: reviewSessions,
  };
  return { ...record, answers: answersOf(record) };
}

function describeScope(scope: ApprovalScope): string {
  if (scope.kind === 'rest') return `${scope.verb} ${scope.resource}${scope.name ? ` "${scope.name}"` : ''}${scope.namespace ? ` in namespace ${scope.namespace}` : ' (cluster-wide)'}`;
  const execs = scope.verbs.includes('exec');
  const commands = !execs ? '' : scope.commands ? `, commands ${scope.commands.map((c) => JSON.stringify(c)).join(' ')}` : ', any command';
  const ports = scope.verbs.includes('portforward') ? `, ports ${portsText(scope)}` : '';
  const sessions = scope.maxSessions !== undefined ? `, at most ${scope.maxSessions} session${scope.maxSessions === 1 ? '' : 's'}` : '';
  const container = scope.container !== undefined ? ` container ${scope.container}` : '';
  return `${scope.verbs.join('/')} into ${scope.namespace}/${scope.pod}${container}${commands}${ports}${sessions}`;
}

/** A port-forward session's connections in one phrase: how many, to which ports, how many refused. */
function connectionsText(connections: readonly ReviewConnection[]): string {
  const ports = [...new Set(connections.map((c) => c.port))].join(', ');
  const refused = connections.filter((c) => c.outcome === 'refused').length;
  return `${connections.length} connection${connections.length === 1 ? '' : 's'}${ports ? ` to port${connections.length === 1 ? '' : 's'} ${ports}` : ''}${refused > 0 ? `, ${refused} refused (outside the approved ports)` : ''}`;
}

const DECIDING = new Set(['approval.approved', 'approval.denied', 'approval.granted', 'approval.auto-approved']);

/** The five answers, each from the record's own fields. */
export function answersOf(r: Omit<ReviewRecord, 'answers'>): ReviewRecord['answers'] {
  const who = `agent ${r.agent.name} (${r.agent.id})${r.agent.owner ? `, owned by ${r.agent.owner}` : ''}; requested by ${r.requested.by} at ${r.requested.at}${r.requested.client ? ` from ${r.requested.client}` : ''}`;
  const approvalNeeded = r.policy.rule
    ? `yes: policy rule ${r.policy.rule} (policy sha256:${r.policy.policyHash?.slice(0, 12) ?? '?'}${r.policy.policyOrigin ? `, ${r.policy.policyOrigin}` : ''}) required it`
    : `granted directly by ${r.requested.by}; no request was held`;
  const deciding = r.decisions.filter((d) => DECIDING.has(d.event));
  const later = r.decisions.filter((d) => d.event === 'approval.revoked' || d.event === 'approval.expired' || d.event === 'approval.abandoned');
  const fmt = (d: ReviewDecision): string => `${d.event.slice('approval.'.length)} by ${d.actor ?? 'unknown'} at ${d.at}${d.reason ? ` (reason: ${d.reason})` : ''}`;
  const approvedBy = deciding.length === 0 ? `not decided (state ${r.scope.state})` : [...deciding, ...later].map(fmt).join('; ');
  const c = r.conformance;
  const scopeKept =
    `scope: ${describeScope(r.scope.approved)}; ` +
    (c.verdict === 'outside-scope'
      ? 'something that ran under it was OUTSIDE the scope or window (see sessions and attempts)'
      : c.verdict === 'unused'
        ? 'nothing ran under it'
        : c.verdict === 'incomplete'
          ? 'INCOMPLETE: more requests were made against its object than a record holds, so not every use could be checked'
        : `all ${c.used} use${c.used === 1 ? '' : 's'} stayed inside the scope`) +
    `; ${c.outside} attempt${c.outside === 1 ? '' : 's'} outside the scope, ${c.refused} refused` +
    (c.truncated ? ' (the first 9,999 requests against the target are listed)' : '');
  const files = r.sessions.flatMap((s) => s.files ?? []).map((f) => f.name);
  const happened =
    r.sessions.length === 0
      ? `no sessions${c.used > 0 ? `; ${c.used} request${c.used === 1 ? '' : 's'} forwarded` : ''}`
      : `${r.sessions.length} session${r.sessions.length === 1 ? '' : 's'}: ` +
        r.sessions
          .map((s) =>
            s.connections !== null
              ? `${s.id} ${s.operation ?? '?'} (${connectionsText(s.connections)}) ended ${s.endReason ?? 'still open'}`
              : `${s.id} ${s.operation ?? '?'} ${JSON.stringify(s.command)} ended ${s.endReason ?? 'still open'}${s.exitCode !== null ? ` exit ${s.exitCode}` : ''}`,
          )
          .join('; ') +
        (files.length > 0 ? `; files: ${files.join(', ')}` : '');
  return { who, approvalNeeded, approvedBy, scopeKept, happened };
}
