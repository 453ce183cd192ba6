// `audit verify` as a whole: the hash chain, checked against the signed checkpoints kept outside
// the database (checkpoints.ts), and the tables the bastion decides from checked against the chain.
//
// The approvals and sessions tables are what the live bastion reads (an approval's state, scope and
// expires_at let requests through), and they are outside the chain: an edited table row would not
// break it. So every approval's state, scope, expires_at, agent and decider are derived from its
// life-cycle audit rows (each row's details carry the approval as it was stored by that change, in
// the same transaction), every session's approval and end from its session.start and session.end
// rows, and each table row that disagrees, or has no rows at all, is reported.
import { readFile } from 'node:fs/promises';
import type { Approval } from '../model/approval.js';
import { scopeJson } from '../model/scope.js';
import type { ApprovalScope } from '../model/approval.js';
import type { ApprovalStore, AuditLog, AuditRecord, AuditVerifyResult, ReadSnapshot, Session, SessionStore } from '../store/types.js';
import { anchorOf, CHECKPOINTS_FILE, readCheckpointLines, type Checkpoint } from './checkpoints.js';
import { LIFE_CYCLE_EVENTS } from './record.js';

/** Rows that change an approval's stored columns: its life cycle, and a join (which may extend a pending deadline). */
const APPROVAL_ROW_EVENTS = [...LIFE_CYCLE_EVENTS, 'approval.joined'] as const;
const SESSION_ROW_EVENTS = ['session.start', 'session.end'] as const;
const PAGE = 10_000;

export interface TableDisagreement {
  table: 'approvals' | 'sessions';
  /** The approval or session id. */
  id: string;
  /** The column (as the API names it), or `row` when the row itself is missing on one side. */
  field: string;
  /** The table's value, as JSON text (null: no table row). */
  stored: string | null;
  /** What the audit rows say, as JSON text (null: no audit row). */
  audited: string | null;
  message: string;
}

export interface AuditTrustReport {
  /** The chain is intact, holds every checkpoint, and every table row agrees with it. */
  ok: boolean;
  /** The chain checked against every signed checkpoint. */
  chain: AuditVerifyResult;
  checkpoints: {
    /** Checkpoints whose signature verified. */
    count: number;
    latest: Checkpoint | null;
    /** Lines that are not checkpoints signed by the bastion's key, or that there is none. */
    problems: string[];
  };
  tables: { approvals: number; sessions: number; disagreements: TableDisagreement[] };
  /** One sentence per thing found; empty when ok. */
  findings: string[];
}

export interface AuditTrustSources {
  audit: AuditLog;
  approvals: Pick<ApprovalStore, 'list'>;
  sessions: Pick<SessionStore, 'list'>;
  /** The checkpoints file's text (undefined: there is none) and the bastion's public key. */
  checkpoints: { text: string | undefined; publicKeyPem: string; where?: string };
}

export async function verifyAuditTrust(src: AuditTrustSources): Promise<AuditTrustReport> {
  const read = src.checkpoints.text === undefined ? { checkpoints: [], problems: [] } : readCheckpointLines(src.checkpoints.text, src.checkpoints.publicKeyPem, src.checkpoints.where);
  const chain = await src.audit.verify({ anchors: read.checkpoints.map(anchorOf) });
  const problems = [...read.problems];
  const rows = chain.ok ? chain.rows : chain.rowsVerified;
  if (read.checkpoints.length === 0 && (rows > 0 || !chain.ok)) {
    problems.push(
      `no signed checkpoint${src.checkpoints.where ? ` in ${src.checkpoints.where}` : ''}: a truncated, wiped or rewritten log cannot be told from an intact one (serve writes one at start)`,
    );
  }
  const approvals = await src.approvals.list();
  const sessions = await src.sessions.list();
  const disagreements = [
    ...crossCheckApprovals(approvals, await allRows(src.audit, APPROVAL_ROW_EVENTS)),
    ...crossCheckSessions(sessions, await allRows(src.audit, SESSION_ROW_EVENTS)),
  ];
  const findings = [...(chain.ok ? [] : [chain.message]), ...problems, ...disagreements.map((d) => d.message)];
  return {
    ok: findings.length === 0,
    chain,
    checkpoints: { count: read.checkpoints.length, latest: read.checkpoints[read.checkpoints.length - 1] ?? null, problems },
    tables: { approvals: approvals.length, sessions: sessions.length, disagreements },
    findings,
  };
}

/** A checkpoints file's text; undefined when there is none. */
export async function readCheckpointsText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * verifyAuditTrust over one read snapshot of a store and a checkpoints file, read afresh on every
 * call (the API's GET /v1/audit/verify). One snapshot: on a live bastion, tables read a moment apart
 * from the audit rows would disagree with them by whatever was written in between.
 */
export function auditVerifier(src: { snapshot: ReadSnapshot; checkpointsFile: string; publicKeyPem: () => string }): () => Promise<AuditTrustReport> {
  return async () => {
    const checkpoints = { text: await readCheckpointsText(src.checkpointsFile), publicKeyPem: src.publicKeyPem(), where: CHECKPOINTS_FILE };
    return src.snapshot((tables) => verifyAuditTrust({ ...tables, checkpoints }));
  };
}

async function allRows(audit: AuditLog, events: readonly string[]): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (let afterId = 0; ; ) {
    const rows = await audit.query({ events, afterId, limit: PAGE, order: 'asc' });
    out.push(...rows);
    if (rows.length < PAGE) return out;
    afterId = rows[rows.length - 1]!.id;
  }
}

function groupBy(rows: AuditRecord[], key: (r: AuditRecord) => string | null): Map<string, AuditRecord[]> {
  const out = new Map<string, AuditRecord[]>();
  for (const r of rows) {
    const k = key(r);
    if (k === null) continue;
    const list = out.get(k) ?? [];
    list.push(r);
    out.set(k, list);
  }
  return out;
}

function details(r: AuditRecord): Record<string, unknown> {
  try {
    const d = JSON.parse(r.details ?? '{}') as unknown;
    return typeof d === 'object' && d !== null ? (d as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const text = (v: unknown): string => JSON.stringify(v ?? null);

/** What an approval's audit rows say its columns are: each row sets what its details carry. */
interface AuditedApproval {
  state?: unknown;
  scope?: string;
  expiresAt?: unknown;
  decidedBy?: unknown;
  agentId: string | null;
  lastRow: number;
}

function auditedApproval(rows: AuditRecord[]): AuditedApproval {
  const out: AuditedApproval = { agentId: null, lastRow: 0 };
  for (const r of rows) {
    const d = details(r);
    out.lastRow = r.id;
    out.agentId = r.agentId;
    if ('state' in d) out.state = d['state'];
    if ('decidedBy' in d) out.decidedBy = d['decidedBy'];
    if (typeof d['scope'] === 'object' && d['scope'] !== null) {
      try {
        out.scope = scopeJson(d['scope'] as ApprovalScope);
      } catch {
        out.scope = text(d['scope']);
      }
    }
    if ('expiresAt' in d) out.expiresAt = d['expiresAt'];
    // Rows written before every row carried expiresAt: a denial always cleared it.
    else if (r.event === 'approval.denied') out.expiresAt = null;
  }
  return out;
}

export function crossCheckApprovals(approvals: Approval[], rows: AuditRecord[]): TableDisagreement[] {
  const byApproval = groupBy(rows, (r) => r.approvalId);
  const out: TableDisagreement[] = [];
  for (const a of approvals) {
    const own = byApproval.get(a.id);
    byApproval.delete(a.id);
    if (!own) {
      out.push({ table: 'approvals', id: a.id, field: 'row', stored: text(a.state), audited: null, message: `approval ${a.id} (${a.state}) is in the approvals table but no audit row records it: it was written behind the bastion's back` });
      continue;
    }
    const audited = auditedApproval(own);
    const compare = (field: string, stored: unknown, chain: unknown, known: boolean): void => {
      if (!known) return;
      const s = typeof stored === 'string' && field === 'scope' ? stored : text(stored);
      const c = typeof chain === 'string' && field === 'scope' ? chain : text(chain);
      if (s === c) return;
      out.push({
        table: 'approvals',
        id: a.id,
        field,
        stored: s,
        audited: c,
        message: `approval ${a.id}: ${field} in the approvals table is ${s}, but its audit rows (last: row ${audited.lastRow}) say ${c}`,
      });
    };
    compare('state', a.state, audited.state, audited.state !== undefined);
    compare('expiresAt', a.expiresAt, audited.expiresAt, audited.expiresAt !== undefined);
    compare('scope', scopeJson(a.scope), audited.scope, audited.scope !== undefined);
    compare('agentId', a.agentId, audited.agentId, true);
    compare('decidedBy', a.decidedBy, audited.decidedBy, audited.decidedBy !== undefined);
  }
  for (const [id, own] of byApproval) {
    out.push({ table: 'approvals', id, field: 'row', stored: null, audited: text(auditedApproval(own).state), message: `approval ${id} has audit rows (first: row ${own[0]!.id}) but is missing from the approvals table` });
  }
  return out;
}

export function crossCheckSessions(sessions: Session[], rows: AuditRecord[]): TableDisagreement[] {
  const bySession = groupBy(rows, (r) => r.sessionId);
  const out: TableDisagreement[] = [];
  const differ = (s: Session, field: string, stored: unknown, audited: unknown, row: number): void => {
    if (text(stored) === text(audited)) return;
    out.push({ table: 'sessions', id: s.id, field, stored: text(stored), audited: text(audited), message: `session ${s.id}: ${field} in the sessions table is ${text(stored)}, but its audit row ${row} says ${text(audited)}` });
  };
  for (const s of sessions) {
    const own = bySession.get(s.id) ?? [];
    bySession.delete(s.id);
    const start = own.find((r) => r.event === 'session.start');
    const end = own.findLast((r) => r.event === 'session.end');
    if (!start) out.push({ table: 'sessions', id: s.id, field: 'row', stored: text(s.state), audited: null, message: `session ${s.id} is in the sessions table but no session.start audit row records it` });
    else differ(s, 'approvalId', s.approvalId, start.approvalId, start.id);
    if (!end) {
      if (s.endedAt !== null) out.push({ table: 'sessions', id: s.id, field: 'endReason', stored: text(s.endReason), audited: null, message: `session ${s.id} ended (${s.endReason}) in the sessions table but no session.end audit row records its end` });
      continue;
    }
    if (s.endedAt === null) {
      out.push({ table: 'sessions', id: s.id, field: 'endedAt', stored: 'null', audited: text(end.time), message: `session ${s.id} is open in the sessions table, but audit row ${end.id} recorded its end` });
      continue;
    }
    const d = details(end);
    for (const field of ['endReason', 'exitCode', 'bytesIn', 'bytesOut'] as const) if (field in d) differ(s, field, s[field], d[field], end.id);
  }
  for (const [id, own] of bySession) {
    out.push({ table: 'sessions', id, field: 'row', stored: null, audited: text(own[0]!.event), message: `session ${id} has audit rows (first: row ${own[0]!.id}) but is missing from the sessions table` });
  }
  return out;
}
