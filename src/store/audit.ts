// The append-only, hash-chained audit log.
//
// Row n stores its fields, prev_hash = hash of row n-1 (64 zeros for row 1) and
//
//   hash = sha256( utf8( prev_hash_hex + canonicalJson(fields) ) )
//
// where canonicalJson is JSON.stringify of an object whose keys are AUDIT_HASHED_FIELDS in that
// exact order, each value exactly as stored (null when absent; `untrustedClientHints` and `details`
// are the stored JSON text, i.e. strings). The row id is one of the hashed fields, so a row also
// commits to its position. Appends run in an IMMEDIATE transaction that reads the last row under the
// write lock, so appenders on any number of connections or processes cannot fork the chain (and a
// UNIQUE index on prev_hash refuses a fork outright).
//
// What the chain proves, and what it does not: an edited, removed, inserted or reordered row breaks
// it at the first bad row. A truncated tail does not (the remaining rows are a valid chain), and
// someone who can write the file can recompute every hash after an edit. Both are caught by
// comparing with a head (row count, last id, head hash) recorded outside the database: `head()`
// gives it, `verify({ anchors })` checks it (the bastion's signed checkpoints are such anchors:
// src/evidence/checkpoints.ts). See docs/storage.md.
import { createHash } from 'node:crypto';
import type { KubeRequest, PolicyDecision } from '../model/request.js';
import { BastionError, ErrorCode, invalidField } from '../errors/index.js';
import type Database from 'better-sqlite3';
import type { Db } from './db.js';
import {
  AUDIT_DECISIONS,
  type AuditDecision,
  type AuditEventInput,
  type AuditHead,
  type AuditLog,
  type AuditQuery,
  type AuditRecord,
  type AuditVerifyOptions,
  type AuditVerifyResult,
  type Clock,
  type UntrustedClientHints,
} from './types.js';

export const GENESIS_HASH = '0'.repeat(64);

/** The canonical-form version new rows are written with. */
export const AUDIT_CHAIN_VERSION = 1;

/** The hashed fields of chain version 1, in hash order. Never reorder or edit: add a version. */
export const AUDIT_HASHED_FIELDS = [
  'v',
  'id',
  'time',
  'event',
  'agentId',
  'agentName',
  'actor',
  'source',
  'method',
  'path',
  'verb',
  'apiGroup',
  'resource',
  'subresource',
  'namespace',
  'name',
  'stream',
  'decision',
  'rule',
  'policyHash',
  'approvalId',
  'sessionId',
  'statusCode',
  'bytesIn',
  'bytesOut',
  'durationMs',
  'untrustedClientHints',
  'details',
] as const;

/** Each untrusted client hint is cut to this many characters (the client controls them). */
export const MAX_CLIENT_HINT_LENGTH = 1024;

const SHA256_HEX = /^[0-9a-f]{64}$/;

type HashedRecord = Omit<AuditRecord, 'prevHash' | 'hash'>;

/** The canonical JSON of a row's hashed fields (what, after prev_hash, goes into its hash). */
export function canonicalAuditJson(record: HashedRecord): string {
  if (record.chainVersion !== 1) {
    throw new BastionError(ErrorCode.INTERNAL, `unknown audit chain version ${record.chainVersion}`);
  }
  const ordered: Record<string, unknown> = {};
  for (const key of AUDIT_HASHED_FIELDS) {
    ordered[key] = key === 'v' ? record.chainVersion : record[key];
  }
  return JSON.stringify(ordered);
}

/** sha256(prev_hash + canonical JSON), hex. */
export function auditRecordHash(prevHash: string, record: HashedRecord): string {
  return createHash('sha256').update(prevHash, 'utf8').update(canonicalAuditJson(record), 'utf8').digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Helpers that turn pipeline objects into audit fields

/** The parsed-request fields of an audit event. */
export function requestAuditFields(
  req: KubeRequest,
): Pick<
  AuditEventInput,
  'method' | 'path' | 'verb' | 'apiGroup' | 'resource' | 'subresource' | 'namespace' | 'name' | 'stream'
> {
  if (req.kind === 'nonResource') {
    return {
      method: req.method,
      path: req.path,
      verb: req.verb,
      apiGroup: null,
      resource: null,
      subresource: null,
      namespace: null,
      name: null,
      stream: null,
    };
  }
  return {
    method: req.method,
    path: req.path,
    verb: req.verb,
    apiGroup: req.apiGroup,
    resource: req.resource,
    subresource: req.subresource,
    namespace: req.namespace,
    name: req.name,
    stream: req.stream ?? null,
  };
}

/** The decision fields of an audit event. */
export function decisionAuditFields(d: PolicyDecision): Pick<AuditEventInput, 'decision' | 'rule' | 'policyHash'> {
  return { decision: d.action, rule: d.rule, policyHash: d.policyHash };
}

// ---------------------------------------------------------------------------------------------
// Rows

interface AuditRow {
  id: number;
  chain_version: number;
  time: string;
  event: string;
  agent_id: string | null;
  agent_name: string | null;
  actor: string | null;
  source: string | null;
  method: string | null;
  path: string | null;
  verb: string | null;
  api_group: string | null;
  resource: string | null;
  subresource: string | null;
  namespace: string | null;
  name: string | null;
  stream: string | null;
  decision: AuditDecision | null;
  rule: string | null;
  policy_hash: string | null;
  approval_id: string | null;
  session_id: string | null;
  status_code: number | null;
  bytes_in: number | null;
  bytes_out: number | null;
  duration_ms: number | null;
  untrusted_client_hints: string | null;
  details: string | null;
  prev_hash: string;
  hash: string;
}

/** Record field -> column, in table order. */
const COLUMN_OF: Record<keyof AuditRecord, keyof AuditRow> = {
  id: 'id',
  chainVersion: 'chain_version',
  time: 'time',
  event: 'event',
  agentId: 'agent_id',
  agentName: 'agent_name',
  actor: 'actor',
  source: 'source',
  method: 'method',
  path: 'path',
  verb: 'verb',
  apiGroup: 'api_group',
  resource: 'resource',
  subresource: 'subresource',
  namespace: 'namespace',
  name: 'name',
  stream: 'stream',
  decision: 'decision',
  rule: 'rule',
  policyHash: 'policy_hash',
  approvalId: 'approval_id',
  sessionId: 'session_id',
  statusCode: 'status_code',
  bytesIn: 'bytes_in',
  bytesOut: 'bytes_out',
  durationMs: 'duration_ms',
  untrustedClientHints: 'untrusted_client_hints',
  details: 'details',
  prevHash: 'prev_hash',
  hash: 'hash',
};
const RECORD_KEYS = Object.keys(COLUMN_OF) as (keyof AuditRecord)[];
const COLUMNS = RECORD_KEYS.map((k) => COLUMN_OF[k]);

function toRecord(row: AuditRow): AuditRecord {
  const out: Record<string, unknown> = {};
  for (const k of RECORD_KEYS) out[k] = row[COLUMN_OF[k]];
  return out as unknown as AuditRecord;
}

// ---------------------------------------------------------------------------------------------
// Input normalisation: what is stored must hash the same when read back.

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** SQLite stores UTF-8: a lone surrogate would come back as U+FFFD, so store U+FFFD. */
function wellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, '\uFFFD');
}

function str(field: string, v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw badField(field, 'must be a string');
  return wellFormed(v);
}

function int(field: string, v: unknown, round = false): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badField(field, 'must be a finite number');
  const n = round ? Math.round(v) : v;
  if (!Number.isSafeInteger(n) || n < 0) throw badField(field, 'must be a non-negative integer');
  return n;
}

function badField(field: string, what: string): BastionError {
  return new BastionError(ErrorCode.INTERNAL, `audit event field ${field} ${what}`, { field });
}

/** JSON with object keys sorted at every level, strings well-formed; undefined members dropped. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonicalValue(value, 'details', 0));
}

function canonicalValue(v: unknown, field: string, depth: number): unknown {
  if (depth > 32) throw badField(field, 'is nested too deeply');
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'string') return wellFormed(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw badField(field, 'contains a non-finite number');
    return v;
  }
  if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : canonicalValue(x, field, depth + 1)));
  if (typeof v === 'object') {
    const withJson = v as { toJSON?: () => unknown };
    if (typeof withJson.toJSON === 'function') return canonicalValue(withJson.toJSON(), field, depth + 1);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[key];
      if (x !== undefined) out[wellFormed(key)] = canonicalValue(x, field, depth + 1);
    }
    return out;
  }
  throw badField(field, `contains a value of type ${typeof v}`);
}

function hintsJson(h: UntrustedClientHints | null | undefined): string | null {
  if (!h) return null;
  const out: Record<string, string> = {};
  for (const key of ['kubectlCommand', 'kubectlSession', 'userAgent'] as const) {
    const v = h[key];
    if (typeof v === 'string' && v.length > 0) out[key] = wellFormed(v.slice(0, MAX_CLIENT_HINT_LENGTH));
  }
  return Object.keys(out).length === 0 ? null : JSON.stringify(out);
}

export type AuditFields = Omit<AuditRecord, 'id' | 'chainVersion' | 'time' | 'prevHash' | 'hash'>;

function normalise(input: AuditEventInput): AuditFields {
  if (typeof input.event !== 'string' || input.event.length === 0) throw badField('event', 'is required');
  if (input.decision != null && !(AUDIT_DECISIONS as readonly string[]).includes(input.decision)) {
    throw badField('decision', `must be one of ${AUDIT_DECISIONS.join(', ')}`);
  }
  const agent = input.agent ?? null;
  if (agent !== null && (typeof agent.id !== 'string' || typeof agent.name !== 'string')) {
    throw badField('agent', 'must have a string id and name');
  }
  return {
    event: wellFormed(input.event),
    agentId: agent ? agent.id : null,
    agentName: agent ? wellFormed(agent.name) : null,
    actor: str('actor', input.actor),
    source: str('source', input.source),
    method: str('method', input.method),
    path: str('path', input.path),
    verb: str('verb', input.verb),
    apiGroup: str('apiGroup', input.apiGroup),
    resource: str('resource', input.resource),
    subresource: str('subresource', input.subresource),
    namespace: str('namespace', input.namespace),
    name: str('name', input.name),
    stream: str('stream', input.stream),
    decision: input.decision ?? null,
    rule: str('rule', input.rule),
    policyHash: str('policyHash', input.policyHash),
    approvalId: str('approvalId', input.approvalId),
    sessionId: str('sessionId', input.sessionId),
    statusCode: int('statusCode', input.statusCode),
    bytesIn: int('bytesIn', input.bytesIn),
    bytesOut: int('bytesOut', input.bytesOut),
    durationMs: int('durationMs', input.durationMs, true),
    untrustedClientHints: hintsJson(input.untrustedClientHints),
    details: input.details == null ? null : canonicalJson(input.details),
  };
}

function toIso(field: string, v: Date | string): string {
  const d = typeof v === 'string' ? new Date(v) : v;
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) {
    throw invalidField(field, `${field} is not a valid time: ${String(v)}`);
  }
  return d.toISOString();
}

// ---------------------------------------------------------------------------------------------
// Statements (prepared once per connection)

interface Statements {
  last: Database.Statement<[], { id: number; hash: string }>;
  seq: Database.Statement<[], { seq: number }>;
  insert: Database.Statement<unknown[]>;
  count: Database.Statement<[], { n: number }>;
  all: Database.Statement<[], AuditRow>;
}

const statements = new WeakMap<Db, Statements>();

function stmts(db: Db): Statements {
  let s = statements.get(db);
  if (!s) {
    s = {
      last: db.prepare('SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1'),
      seq: db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'`),
      insert: db.prepare(
        `INSERT INTO audit_events (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`,
      ),
      count: db.prepare('SELECT COUNT(*) AS n FROM audit_events'),
      all: db.prepare(`SELECT ${COLUMNS.join(', ')} FROM audit_events ORDER BY id`),
    };
    statements.set(db, s);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Operations on a connection

/** Where the next row goes: the id it takes and the hash it chains to. */
interface ChainTip {
  nextId: number;
  prevHash: string;
}

/**
 * The tip of the chain. Read inside an IMMEDIATE transaction: under the write lock, so concurrent
 * appenders (other connections, other processes) are serialised by SQLite and cannot fork it.
 */
function chainTip(s: Statements): ChainTip {
  const last = s.last.get();
  // Ids come from the AUTOINCREMENT sequence, never reused: after a truncated tail the next row
  // leaves a visible gap.
  const seq = s.seq.get()?.seq ?? 0;
  return { nextId: Math.max(seq, last?.id ?? 0) + 1, prevHash: last?.hash ?? GENESIS_HASH };
}

/** Writes one row at `tip` and moves the tip past it (rows of one transaction chain in memory). */
function insertChained(s: Statements, tip: ChainTip, fields: AuditFields, time: string): AuditRecord {
  const hashed: HashedRecord = { id: tip.nextId, chainVersion: AUDIT_CHAIN_VERSION, time, ...fields };
  const record: AuditRecord = { ...hashed, prevHash: tip.prevHash, hash: auditRecordHash(tip.prevHash, hashed) };
  s.insert.run(...RECORD_KEYS.map((k) => record[k]));
  tip.nextId = record.id + 1;
  tip.prevHash = record.hash;
  return record;
}

// ---------------------------------------------------------------------------------------------
// Rows accepted but not yet committed (audit-batch.ts): they are chained and written, in the order
// they were accepted, by the next commit on their connection, whether the batch's own or a durable
// append's. Nothing else may write a row before them, so the chain's order is the acceptance order.

/**
 * A row accepted for a later commit: its fields already normalised, its time already taken. It may
 * carry a table write that belongs with it (a session's end row), run in the same transaction just
 * before the row; a write-only item (`fields` null) has no audit row. A write must not fail for
 * anything but the store itself (its inputs are checked when it is accepted): it is retried with
 * its group until it commits.
 */
export interface PendingAuditRow {
  fields: AuditFields | null;
  time: string;
  write?: () => void;
  committed(record: AuditRecord | undefined): void;
}

const pendingByDb = new WeakMap<Db, PendingAuditRow[]>();

/** The queue of rows accepted on this connection and not yet committed (one per connection). */
export function pendingAuditRows(db: Db): PendingAuditRow[] {
  let q = pendingByDb.get(db);
  if (!q) pendingByDb.set(db, (q = []));
  return q;
}

/** Normalises an event as append does, throwing on a bad field, and stamps its time now. */
export function prepareAuditRow(input: AuditEventInput, clock: Clock, committed: (r: AuditRecord) => void): PendingAuditRow {
  const fields = normalise(input);
  const time = input.time === undefined ? clock().toISOString() : toIso('time', input.time);
  return { fields, time, committed };
}

/**
 * Commits the pending rows and then `extra` (if any: its table write, then its row) in one
 * IMMEDIATE transaction. On failure nothing is committed and the pending rows stay queued, in
 * order, for the next attempt.
 */
function commitWithPending(db: Db, extra?: { fields: AuditFields | null; time: string; write?: () => void }): AuditRecord | undefined {
  const s = stmts(db);
  const queue = pendingByDb.get(db);
  const batch = queue && queue.length > 0 ? queue.slice() : [];
  if (batch.length > 0 && db.inTransaction) {
    // Inside a caller's transaction these rows would be rolled back with it while counted as
    // committed: the caller must commit them first (commitPendingAudit).
    throw new BastionError(ErrorCode.INTERNAL, `${batch.length} accepted audit rows must be committed before an append inside a transaction`);
  }
  const tx = db.transaction((): { rows: (AuditRecord | undefined)[]; extra: AuditRecord | undefined } => {
    const tip = chainTip(s);
    return {
      rows: batch.map((p) => writeThenInsert(s, tip, p)),
      extra: extra ? writeThenInsert(s, tip, extra) : undefined,
    };
  });
  const done = tx.immediate();
  // Committed (better-sqlite3 is synchronous: nothing was accepted meanwhile).
  queue?.splice(0, batch.length);
  batch.forEach((p, i) => p.committed(done.rows[i]));
  return done.extra;
}

function writeThenInsert(s: Statements, tip: ChainTip, item: { fields: AuditFields | null; time: string; write?: () => void }): AuditRecord | undefined {
  item.write?.();
  return item.fields === null ? undefined : insertChained(s, tip, item.fields, item.time);
}

/**
 * A table write and (if given) its audit row, committed durably in one IMMEDIATE transaction with
 * every row accepted before them, in that order: one fsync for all. `write` runs first, so a
 * failing write (a constraint) commits nothing, pending rows included (they stay queued).
 */
export function commitWriteWithAudit(db: Db, write: () => void, input: AuditEventInput | undefined, clock: Clock = () => new Date()): AuditRecord | undefined {
  if (!input) return commitWithPending(db, { fields: null, time: '', write });
  const fields = normalise(input);
  const time = input.time === undefined ? clock().toISOString() : toIso('time', input.time);
  return commitWithPending(db, { fields, time, write });
}

/** Commits the rows accepted on this connection (no-op when there are none). Throws when it cannot. */
export function commitPendingAudit(db: Db): number {
  const n = pendingByDb.get(db)?.length ?? 0;
  if (n > 0) commitWithPending(db);
  return n;
}

/**
 * Appends one event durably: committed (with every row accepted before it) when this returns. The
 * last row is read and the new one written in one IMMEDIATE transaction, so concurrent appenders
 * are serialised by SQLite's write lock.
 */
export function appendAuditEvent(db: Db, input: AuditEventInput, clock: Clock = () => new Date()): AuditRecord {
  const fields = normalise(input);
  const time = input.time === undefined ? clock().toISOString() : toIso('time', input.time);
  return commitWithPending(db, { fields, time })!;
}

export function auditHead(db: Db): AuditHead {
  const s = stmts(db);
  return db.transaction((): AuditHead => {
    const last = s.last.get();
    return { rows: s.count.get()!.n, lastId: last?.id ?? 0, headHash: last?.hash ?? GENESIS_HASH };
  })();
}

/** Walks the whole chain in one read snapshot and names the first bad row. */
export function verifyAuditChain(db: Db, opts: AuditVerifyOptions = {}): AuditVerifyResult {
  const s = stmts(db);
  return db.transaction((): AuditVerifyResult => {
    let expectedId = 1;
    let prevHash = GENESIS_HASH;
    let rows = 0;
    const anchors = [...(opts.anchors ?? []), ...(opts.anchor ? [opts.anchor] : [])].filter((a) => a.lastId > 0);
    const anchorIds = new Set(anchors.map((a) => a.lastId));
    const hashAt = new Map<number, string>();
    const fail = (rowId: number, reason: Extract<AuditVerifyResult, { ok: false }>['reason'], message: string) =>
      ({ ok: false, rowId, reason, message, rowsVerified: rows }) as const;

    for (const row of s.all.iterate()) {
      const rec = toRecord(row);
      if (typeof rec.hash !== 'string' || !SHA256_HEX.test(rec.hash) || typeof rec.prevHash !== 'string' || !SHA256_HEX.test(rec.prevHash)) {
        return fail(rec.id, 'malformed', `audit row ${rec.id}: hash or prev_hash is not a sha256 hex digest`);
      }
      if (rec.id !== expectedId) {
        const missing = rec.id - 1 === expectedId ? `row ${expectedId} is` : `rows ${expectedId}..${rec.id - 1} are`;
        return fail(rec.id, 'gap', `audit row ${rec.id}: ${missing} missing (deleted)`);
      }
      if (rec.prevHash !== prevHash) {
        const what = rec.id === 1 ? 'the genesis hash' : `row ${rec.id - 1}'s hash`;
        return fail(
          rec.id,
          'prev-mismatch',
          `audit row ${rec.id}: prev_hash does not match ${what} (rows were removed, reordered or rewritten)`,
        );
      }
      if (rec.chainVersion !== AUDIT_CHAIN_VERSION) {
        return fail(rec.id, 'malformed', `audit row ${rec.id}: unknown chain version ${String(rec.chainVersion)}`);
      }
      let actual: string;
      try {
        actual = auditRecordHash(rec.prevHash, rec);
      } catch (err) {
        return fail(rec.id, 'malformed', `audit row ${rec.id}: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (actual !== rec.hash) {
        return fail(rec.id, 'hash-mismatch', `audit row ${rec.id}: stored hash does not match its fields (the row was edited)`);
      }
      if (anchorIds.has(rec.id)) hashAt.set(rec.id, rec.hash);
      prevHash = rec.hash;
      expectedId = rec.id + 1;
      rows++;
    }

    const head: AuditHead = { rows, lastId: expectedId - 1, headHash: prevHash };
    // A rewrite is named at the earliest anchored row it changed; a truncation by the latest anchor.
    const byRow = [...anchors].sort((a, b) => a.lastId - b.lastId);
    for (const anchor of byRow) {
      const found = hashAt.get(anchor.lastId);
      if (found !== undefined && found !== anchor.headHash) {
        return {
          ...fail(
            anchor.lastId,
            'anchor-mismatch',
            `rewrite: the head hash at row ${anchor.lastId} is ${found}, but ${anchor.label ?? 'the anchor'} recorded ${anchor.headHash} (the chain was rewritten at or before row ${anchor.lastId})`,
          ),
          anchor,
        };
      }
    }
    const latest = byRow[byRow.length - 1];
    if (latest && !hashAt.has(latest.lastId)) {
      const name = latest.label ?? 'the anchor';
      if (rows === 0) {
        return { ...fail(latest.lastId, 'wiped', `wipe: the audit log has no rows, but ${name} covered ${latest.lastId} rows (head ${latest.headHash})`), anchor: latest };
      }
      const missing = latest.lastId === head.lastId + 1 ? `row ${latest.lastId} is` : `rows ${head.lastId + 1}..${latest.lastId} are`;
      return { ...fail(latest.lastId, 'truncated', `truncation: ${missing} missing after row ${head.lastId}, though ${name} covered them`), anchor: latest };
    }
    return { ok: true, rows, head };
  })();
}

export function queryAudit(db: Db, q: AuditQuery = {}): AuditRecord[] {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.since !== undefined) {
    where.push('time >= ?');
    params.push(toIso('since', q.since));
  }
  if (q.until !== undefined) {
    where.push('time <= ?');
    params.push(toIso('until', q.until));
  }
  if (q.agent !== undefined) {
    where.push('(agent_id = ? OR agent_name = ?)');
    params.push(q.agent, q.agent);
  }
  if (q.event !== undefined) {
    where.push('event = ?');
    params.push(q.event);
  }
  if (q.events !== undefined) {
    // No events: no rows (an empty IN list is not SQL).
    where.push(q.events.length === 0 ? '0' : `event IN (${q.events.map(() => '?').join(', ')})`);
    params.push(...q.events);
  }
  for (const [field, column] of [
    ['namespace', 'namespace'],
    ['apiGroup', 'api_group'],
    ['resource', 'resource'],
    ['name', 'name'],
  ] as const) {
    const v = q[field];
    if (v !== undefined) {
      where.push(`${column} = ?`);
      params.push(v);
    }
  }
  if (q.subresources !== undefined) {
    where.push(q.subresources.length === 0 ? '0' : `COALESCE(subresource, '') IN (${q.subresources.map(() => '?').join(', ')})`);
    params.push(...q.subresources);
  }
  if (q.approvalId !== undefined) {
    where.push('approval_id = ?');
    params.push(q.approvalId);
  }
  if (q.sessionId !== undefined) {
    where.push('session_id = ?');
    params.push(q.sessionId);
  }
  if (q.afterId !== undefined) {
    where.push('id > ?');
    params.push(q.afterId);
  }
  const limit = Number.isFinite(q.limit) ? Math.min(10_000, Math.max(1, Math.floor(q.limit!))) : 100;
  const order = q.order === 'desc' ? 'DESC' : 'ASC';
  const sql =
    `SELECT ${COLUMNS.join(', ')} FROM audit_events` +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY id ${order} LIMIT ${limit}`;
  return (db.prepare(sql).all(...params) as AuditRow[]).map(toRecord);
}

/** The AuditLog interface over one SQLite connection. */
export class SqliteAuditLog implements AuditLog {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock = () => new Date(),
  ) {
    stmts(db);
  }

  async append(input: AuditEventInput): Promise<AuditRecord> {
    return appendAuditEvent(this.db, input, this.clock);
  }

  // Reads commit the queued rows first: a reader (the API, an export, verify, a checkpoint's head)
  // sees every row accepted so far; the group window matters only to a crash.
  async query(q?: AuditQuery): Promise<AuditRecord[]> {
    commitPendingAudit(this.db);
    return queryAudit(this.db, q);
  }

  async head(): Promise<AuditHead> {
    commitPendingAudit(this.db);
    return auditHead(this.db);
  }

  async verify(opts?: AuditVerifyOptions): Promise<AuditVerifyResult> {
    commitPendingAudit(this.db);
    return verifyAuditChain(this.db, opts);
  }
}
