// Stream sessions (exec, attach, port-forward through the bastion): one row each, written at start
// and completed once at the end. The first end wins (a trigger refuses a second), and at startup
// sessions a crash left open are ended as `interrupted`. A port-forward session also has one row
// per forwarded connection, started and ended the same way.
import type { ForwardedConnection, ForwardedConnectionEnd, ForwardedConnectionStart } from '../model/forward.js';
import type { StreamOperation } from '../model/request.js';
import { FORWARD_OUTCOMES, FORWARD_PROTOCOLS, STREAM_OPERATIONS, type ForwardOutcome, type ForwardProtocol } from '../model/vocabulary.js';
import { BastionError, ErrorCode, invalidField } from '../errors/index.js';
import type { Status } from '../protocol/status.js';
import { randomId } from './approvals.js';
import type { Db } from './db.js';
import { commitPendingAudit, commitWriteWithAudit } from './audit.js';
import type { AuditBatcher } from './audit-batch.js';
import {
  SESSION_END_REASONS,
  SESSION_TRANSPORTS,
  type Clock,
  type Session,
  type SessionEndInput,
  type SessionEndReason,
  type SessionFile,
  type SessionFilter,
  type SessionRecordingInput,
  type SessionStartInput,
  type SessionStore,
  type SessionTransport,
  type SessionWriteOptions,
  type AuditEventInput,
} from './types.js';

export const SESSION_ID_PREFIX = 'ses_';
export const SESSION_ID_PATTERN = /^ses_[a-z2-7]{20}$/;

export function newSessionId(): string {
  return randomId(SESSION_ID_PREFIX);
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

interface SessionRow {
  id: string;
  approval_id: string | null;
  agent_id: string;
  agent_name: string;
  operation: StreamOperation | null;
  transport: SessionTransport;
  protocol: string;
  upstream_protocol: string | null;
  namespace: string;
  pod: string;
  container: string;
  command: string;
  tty: number;
  started_at: string;
  ended_at: string | null;
  end_reason: SessionEndReason | null;
  exit_code: number | null;
  status: string | null;
  bytes_in: number | null;
  bytes_out: number | null;
  cast_path: string | null;
  cast_sha256: string | null;
  raw_path: string | null;
  raw_sha256: string | null;
  channel_sha256: string | null;
  files: string | null;
  client: string | null;
}

const COLUMNS =
  'id, approval_id, agent_id, agent_name, operation, transport, protocol, upstream_protocol, namespace, pod, container, ' +
  'command, tty, started_at, ended_at, end_reason, exit_code, status, bytes_in, bytes_out, cast_path, cast_sha256, ' +
  'raw_path, raw_sha256, channel_sha256, files, client';

function toSession(row: SessionRow): Session {
  return {
    id: row.id,
    approvalId: row.approval_id,
    agent: row.agent_name,
    agentId: row.agent_id,
    state: row.ended_at === null ? 'open' : 'ended',
    operation: row.operation,
    transport: row.transport,
    protocol: row.protocol,
    upstreamProtocol: row.upstream_protocol,
    namespace: row.namespace,
    pod: row.pod,
    container: row.container,
    command: JSON.parse(row.command) as string[],
    tty: row.tty === 1,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    endReason: row.end_reason,
    exitCode: row.exit_code,
    status: row.status === null ? null : (JSON.parse(row.status) as Status),
    bytesIn: row.bytes_in,
    bytesOut: row.bytes_out,
    castPath: row.cast_path,
    castSha256: row.cast_sha256,
    rawPath: row.raw_path,
    rawSha256: row.raw_sha256,
    channelSha256: row.channel_sha256 === null ? null : (JSON.parse(row.channel_sha256) as Record<string, string>),
    files: row.files === null ? null : (JSON.parse(row.files) as SessionFile[]),
    client: row.client,
  };
}

function bad(field: string, message: string): BastionError {
  return invalidField(field, `session ${field} ${message}`);
}

function requireString(field: string, v: unknown, allowEmpty = false): string {
  if (typeof v !== 'string' || (!allowEmpty && v.length === 0)) throw bad(field, allowEmpty ? 'must be a string' : 'must be a non-empty string');
  return v;
}

function optionalString(field: string, v: unknown): string | null {
  if (v === undefined || v === null) return null;
  return requireString(field, v);
}

function byteCount(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(field, 'must be a non-negative integer');
  return v;
}

function sha256(field: string, v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || !SHA256_HEX.test(v)) throw bad(field, 'must be a lower-case hex sha256');
  return v;
}

/** A port-forward reaches the pod: it names no container and no command; every other session names its container. */
function containerOf(operation: StreamOperation | null, container: unknown, command: readonly string[]): string {
  if (operation !== 'portforward') return requireString('container', container);
  if (container !== '') throw bad('container', "must be '' for a port-forward (it reaches the pod, not a container)");
  if (command.length > 0) throw bad('command', 'must be [] for a port-forward');
  return container;
}

interface ConnectionRow {
  session_id: string;
  seq: number;
  port: number;
  started_at: string;
  ended_at: string | null;
  outcome: ForwardOutcome | null;
  detail: string | null;
  bytes_in: number;
  bytes_out: number;
  sha256_in: string | null;
  sha256_out: string | null;
  raw_path: string | null;
  raw_sha256: string | null;
  protocol: ForwardProtocol | null;
}

const CONNECTION_COLUMNS = 'session_id, seq, port, started_at, ended_at, outcome, detail, bytes_in, bytes_out, sha256_in, sha256_out, raw_path, raw_sha256, protocol';

function toConnection(row: ConnectionRow): ForwardedConnection {
  return {
    sessionId: row.session_id,
    seq: row.seq,
    port: row.port,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    outcome: row.outcome,
    detail: row.detail,
    bytesIn: row.bytes_in,
    bytesOut: row.bytes_out,
    sha256In: row.sha256_in,
    sha256Out: row.sha256_out,
    rawPath: row.raw_path,
    rawSha256: row.raw_sha256,
    protocol: row.protocol,
  };
}

function connectionField(field: string, message: string): BastionError {
  return invalidField(field, `forwarded connection ${field} ${message}`);
}

function positiveInt(field: string, v: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) throw connectionField(field, `must be an integer from 1 to ${max}`);
  return v;
}

function isoTime(field: string, v: unknown): string {
  if (typeof v !== 'string' || !Number.isFinite(Date.parse(v))) throw connectionField(field, 'must be an ISO 8601 time');
  return v;
}

function oneOf<T extends string>(field: string, v: unknown, words: readonly T[], nullable: boolean): T | null {
  if (nullable && (v === null || v === undefined)) return null;
  if (typeof v !== 'string' || !(words as readonly string[]).includes(v)) throw connectionField(field, `must be one of ${words.join(', ')}${nullable ? ' or null' : ''}`);
  return v as T;
}

export class SqliteSessionStore implements SessionStore {
  private readonly byId;
  private readonly insertRow;
  private readonly endRow;
  private readonly open;
  private readonly interruptOpen;
  private readonly interruptOne;
  private readonly approvalExists;
  private readonly agentExists;
  private readonly insertConnection;
  private readonly endConnection;
  private readonly connection;
  private readonly connections;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock = () => new Date(),
    /** The group commit for `grouped` writes; without it they are committed at once. */
    private readonly batch?: AuditBatcher,
  ) {
    this.byId = db.prepare<[string], SessionRow>(`SELECT ${COLUMNS} FROM sessions WHERE id = ?`);
    this.insertRow = db.prepare(
      `INSERT INTO sessions (id, approval_id, agent_id, agent_name, operation, transport, protocol, upstream_protocol,
         namespace, pod, container, command, tty, started_at, client, cast_path, raw_path)
       VALUES (@id, @approval_id, @agent_id, @agent_name, @operation, @transport, @protocol, @upstream_protocol,
         @namespace, @pod, @container, @command, @tty, @started_at, @client, @cast_path, @raw_path)`,
    );
    this.endRow = db.prepare(
      `UPDATE sessions SET ended_at = @ended_at, end_reason = @end_reason, exit_code = @exit_code, status = @status,
         bytes_in = @bytes_in, bytes_out = @bytes_out
       WHERE id = @id AND ended_at IS NULL`,
    );
    this.open = db.prepare<[], { id: string }>('SELECT id FROM sessions WHERE ended_at IS NULL ORDER BY started_at, rowid');
    this.interruptOpen = db.prepare<[string]>(
      `UPDATE sessions SET ended_at = ?, end_reason = 'interrupted' WHERE ended_at IS NULL`,
    );
    this.interruptOne = db.prepare<[string, string]>(`UPDATE sessions SET ended_at = ?, end_reason = 'interrupted' WHERE id = ? AND ended_at IS NULL`);
    this.approvalExists = db.prepare<[string], { agent_id: string }>('SELECT agent_id FROM approvals WHERE id = ?');
    this.agentExists = db.prepare<[string], { name: string }>('SELECT name FROM agents WHERE id = ?');
    this.insertConnection = db.prepare(
      `INSERT INTO forwarded_connections (session_id, seq, port, started_at, raw_path) VALUES (@session_id, @seq, @port, @started_at, @raw_path)`,
    );
    this.endConnection = db.prepare(
      `UPDATE forwarded_connections SET ended_at = @ended_at, outcome = @outcome, detail = @detail, bytes_in = @bytes_in, bytes_out = @bytes_out,
         sha256_in = @sha256_in, sha256_out = @sha256_out, raw_sha256 = @raw_sha256, protocol = @protocol
       WHERE session_id = @session_id AND seq = @seq AND ended_at IS NULL`,
    );
    this.connection = db.prepare<[string, number], ConnectionRow>(`SELECT ${CONNECTION_COLUMNS} FROM forwarded_connections WHERE session_id = ? AND seq = ?`);
    this.connections = db.prepare<[string], ConnectionRow>(`SELECT ${CONNECTION_COLUMNS} FROM forwarded_connections WHERE session_id = ? ORDER BY seq`);
  }

  /**
   * The row, its recording paths and (given `audit`) its `session.start` audit row in one
   * transaction: one fsync, all or nothing. Rows the batch holds are committed first (the chain's
   * order), so a start never takes effect when they cannot be.
   */
  async start(input: SessionStartInput, audit?: (session: Session) => AuditEventInput): Promise<Session> {
    const agent = input.agent as { id?: unknown; name?: unknown } | undefined;
    if (!agent || typeof agent.id !== 'string' || typeof agent.name !== 'string') {
      throw bad('agent', 'must have a string id and name');
    }
    const agentRow = this.agentExists.get(agent.id);
    if (!agentRow) throw bad('agent', `${JSON.stringify(agent.id)} is not a known agent`);
    if (agentRow.name !== agent.name) throw bad('agent', `name ${JSON.stringify(agent.name)} does not match the agent's id`);
    let approvalId: string | null = null;
    if (input.approvalId !== null && input.approvalId !== undefined) {
      approvalId = requireString('approvalId', input.approvalId);
      const approval = this.approvalExists.get(approvalId);
      if (!approval) throw bad('approvalId', `${JSON.stringify(approvalId)} is not a known approval`);
      if (approval.agent_id !== agent.id) throw bad('approvalId', `${approvalId} belongs to another agent`);
    }
    const operation = input.operation ?? null;
    if (operation !== null && !(STREAM_OPERATIONS as readonly string[]).includes(operation)) throw bad('operation', `must be one of ${STREAM_OPERATIONS.join(', ')}`);
    if (!(SESSION_TRANSPORTS as readonly string[]).includes(input.transport)) {
      throw bad('transport', `must be one of ${SESSION_TRANSPORTS.join(', ')}`);
    }
    if (!Array.isArray(input.command) || !input.command.every((a) => typeof a === 'string')) {
      throw bad('command', 'must be an array of strings');
    }
    if (typeof input.tty !== 'boolean') throw bad('tty', 'must be a boolean');
    if (input.id !== undefined && !SESSION_ID_PATTERN.test(input.id)) throw bad('id', `must look like ${SESSION_ID_PREFIX}<20 base32 characters>`);
    const row = {
      id: input.id ?? newSessionId(),
      approval_id: approvalId,
      agent_id: agent.id,
      agent_name: agent.name,
      operation,
      transport: input.transport,
      protocol: requireString('protocol', input.protocol, true),
      upstream_protocol: optionalString('upstreamProtocol', input.upstreamProtocol),
      namespace: requireString('namespace', input.namespace),
      pod: requireString('pod', input.pod),
      container: containerOf(operation, input.container, input.command),
      command: JSON.stringify(input.command),
      tty: input.tty ? 1 : 0,
      started_at: this.clock().toISOString(),
      client: optionalString('client', input.client),
      cast_path: optionalString('castPath', input.castPath),
      raw_path: optionalString('rawPath', input.rawPath),
    };
    // The audit row is built from the row as it will be stored (checked before anything is written).
    const stored = toSession({ ...row, ended_at: null, end_reason: null, exit_code: null, status: null, bytes_in: null, bytes_out: null, cast_sha256: null, raw_sha256: null, channel_sha256: null, files: null });
    commitWriteWithAudit(this.db, () => this.insertRow.run(row), audit?.(stored), this.clock);
    return toSession(this.byId.get(row.id)!);
  }

  async end(id: string, input: SessionEndInput, opts: SessionWriteOptions & { audit?: (session: Session) => AuditEventInput } = {}): Promise<Session> {
    const endReason = 'endReason' in input ? input.endReason : input.reason;
    if (!(SESSION_END_REASONS as readonly string[]).includes(endReason)) {
      throw bad('endReason', `must be one of ${SESSION_END_REASONS.join(', ')}`);
    }
    if (input.exitCode !== null && (typeof input.exitCode !== 'number' || !Number.isSafeInteger(input.exitCode))) {
      throw bad('exitCode', 'must be an integer or null');
    }
    if (input.status !== null && (typeof input.status !== 'object' || Array.isArray(input.status))) {
      throw bad('status', 'must be a Status object or null');
    }
    const params = {
      id,
      ended_at: this.clock().toISOString(),
      end_reason: endReason,
      exit_code: input.exitCode,
      status: input.status === null ? null : JSON.stringify(input.status),
      bytes_in: byteCount('bytesIn', input.bytesIn),
      bytes_out: byteCount('bytesOut', input.bytesOut),
    };
    const row = this.byId.get(id);
    if (!row) throw new BastionError(ErrorCode.NOT_FOUND, `session ${JSON.stringify(id)} not found`, { id });
    // Already ended (now or by the time it is written): the first end wins, the UPDATE changes
    // nothing. It cannot fail but for the store, so it may wait in the group.
    const write = (): void => void this.endRow.run(params);
    const audit = opts.audit?.(toSession(row));
    if (opts.grouped && this.batch) await this.batch.write(write, audit);
    else commitWriteWithAudit(this.db, write, audit, this.clock);
    return toSession(this.byId.get(id)!);
  }

  async setRecording(id: string, input: SessionRecordingInput, opts: SessionWriteOptions = {}): Promise<Session> {
    const sets: string[] = [];
    const params: Record<string, unknown> = { id };
    const put = (column: string, value: string | null): void => {
      sets.push(`${column} = @${column}`);
      params[column] = value;
    };
    if (input.castPath !== undefined) put('cast_path', optionalString('castPath', input.castPath));
    if (input.castSha256 !== undefined) put('cast_sha256', sha256('castSha256', input.castSha256));
    if (input.rawPath !== undefined) put('raw_path', optionalString('rawPath', input.rawPath));
    if (input.rawSha256 !== undefined) put('raw_sha256', sha256('rawSha256', input.rawSha256));
    if (input.channelSha256 !== undefined) {
      let json: string | null = null;
      if (input.channelSha256 !== null) {
        const m = input.channelSha256;
        if (typeof m !== 'object' || Array.isArray(m)) throw bad('channelSha256', 'must be an object of channel name to sha256');
        const sorted: Record<string, string> = {};
        for (const key of Object.keys(m).sort()) sorted[key] = sha256(`channelSha256.${key}`, m[key]) ?? '';
        json = JSON.stringify(sorted);
      }
      put('channel_sha256', json);
    }
    if (input.files !== undefined) {
      if (input.files !== null && !Array.isArray(input.files)) throw bad('files', 'must be a list of {name, size, sha256}');
      const files = input.files?.map((f, i) => {
        if (typeof f?.name !== 'string' || !Number.isSafeInteger(f.size) || f.size < 0) throw bad(`files[${i}]`, 'needs a name and a size');
        return { name: f.name, size: f.size, sha256: sha256(`files[${i}].sha256`, f.sha256) };
      });
      put('files', files === undefined ? null : JSON.stringify(files));
    }
    const update = sets.length > 0 ? this.db.prepare(`UPDATE sessions SET ${sets.join(', ')} WHERE id = @id`) : undefined;
    return this.write(id, () => update?.run(params), opts);
  }

  async setUpstreamProtocol(id: string, protocol: string, opts: SessionWriteOptions = {}): Promise<Session> {
    const value = optionalString('upstreamProtocol', protocol);
    const update = this.db.prepare(`UPDATE sessions SET upstream_protocol = @value WHERE id = @id`);
    return this.write(id, () => update.run({ id, value }), opts);
  }

  /** An update of an existing row (NOT_FOUND at once), committed now or with the group. */
  private async write(id: string, update: () => void, opts: SessionWriteOptions): Promise<Session> {
    if (opts.grouped && this.batch) {
      if (!this.byId.get(id)) throw new BastionError(ErrorCode.NOT_FOUND, `session ${JSON.stringify(id)} not found`, { id });
      await this.batch.write(update);
      return toSession(this.byId.get(id)!);
    }
    const tx = this.db.transaction((): Session => {
      if (!this.byId.get(id)) throw new BastionError(ErrorCode.NOT_FOUND, `session ${JSON.stringify(id)} not found`, { id });
      update();
      return toSession(this.byId.get(id)!);
    });
    return tx.immediate();
  }

  // Reads commit what is queued first (group-committed ends, hashes, protocols): a reader sees
  // every write the bastion accepted; the group window matters only to a crash.
  async get(id: string): Promise<Session | undefined> {
    commitPendingAudit(this.db);
    const row = this.byId.get(id);
    return row && toSession(row);
  }

  async list(filter: SessionFilter = {}): Promise<Session[]> {
    commitPendingAudit(this.db);
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.approvalId !== undefined) {
      where.push('approval_id = ?');
      params.push(filter.approvalId);
    }
    if (filter.agent !== undefined) {
      where.push('(agent_name = ? OR agent_id = ?)');
      params.push(filter.agent, filter.agent);
    }
    if (filter.state === 'open') where.push('ended_at IS NULL');
    else if (filter.state === 'ended') where.push('ended_at IS NOT NULL');
    else if (filter.state !== undefined) throw bad('state', 'must be open or ended');
    const sql =
      `SELECT ${COLUMNS} FROM sessions` +
      (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
      ' ORDER BY started_at DESC, rowid DESC';
    return (this.db.prepare(sql).all(...params) as SessionRow[]).map(toSession);
  }

  async connectionStarted(start: ForwardedConnectionStart): Promise<void> {
    const sessionId = requireString('sessionId', (start as { sessionId?: unknown } | undefined)?.sessionId);
    const row = {
      session_id: sessionId,
      seq: positiveInt('seq', start.seq),
      port: positiveInt('port', start.port, 65535),
      started_at: isoTime('startedAt', start.startedAt),
      raw_path: start.rawPath === null || start.rawPath === undefined ? null : requireString('rawPath', start.rawPath),
    };
    const tx = this.db.transaction((): void => {
      const session = this.byId.get(sessionId);
      if (!session) throw connectionField('sessionId', `${JSON.stringify(sessionId)} is not a known session`);
      if (session.operation !== 'portforward') throw connectionField('sessionId', `${sessionId} is not a port-forward session (${session.operation ?? 'no operation'})`);
      if (this.connection.get(sessionId, row.seq)) throw connectionField('seq', `${row.seq} of session ${sessionId} was started already`);
      this.insertConnection.run(row);
    });
    tx.immediate();
  }

  async connectionEnded(sessionId: string, seq: number, end: ForwardedConnectionEnd, audit?: AuditEventInput): Promise<void> {
    if (typeof end !== 'object' || end === null) throw connectionField('end', 'must be an object');
    const params = {
      session_id: sessionId,
      seq,
      ended_at: isoTime('endedAt', end.endedAt),
      outcome: oneOf<ForwardOutcome>('outcome', end.outcome, FORWARD_OUTCOMES, false),
      detail: end.detail === null || end.detail === undefined ? null : requireString('detail', end.detail, true),
      bytes_in: byteCount('bytesIn', end.bytesIn),
      bytes_out: byteCount('bytesOut', end.bytesOut),
      sha256_in: sha256('sha256In', end.sha256In),
      sha256_out: sha256('sha256Out', end.sha256Out),
      raw_sha256: sha256('rawSha256', end.rawSha256),
      protocol: oneOf<ForwardProtocol>('protocol', end.protocol, FORWARD_PROTOCOLS, true),
    };
    const write = (): void => {
      const row = this.connection.get(sessionId, seq);
      if (!row) throw new BastionError(ErrorCode.NOT_FOUND, `forwarded connection ${seq} of session ${JSON.stringify(sessionId)} not found`, { sessionId, seq });
      // Already ended: the first end wins, this one changes nothing.
      if (row.ended_at === null) this.endConnection.run(params);
    };
    // The end and its audit row in one transaction: a crash between them would leave either alone.
    commitWriteWithAudit(this.db, write, audit, this.clock);
  }

  async listConnections(sessionId: string): Promise<ForwardedConnection[]> {
    commitPendingAudit(this.db);
    return this.connections.all(sessionId).map(toConnection);
  }

  /**
   * Crash recovery, one session: ends it as `interrupted` and appends its audit row (`audit`, from
   * the row before the end) in one transaction, so a recovery cut short leaves it open (and the
   * next start ends it) rather than ended with no `session.end` row. Undefined when it is not open.
   */
  async interrupt(id: string, audit?: (session: Session) => AuditEventInput): Promise<Session | undefined> {
    const row = this.byId.get(id);
    if (!row || row.ended_at !== null) return undefined;
    const endedAt = this.clock().toISOString();
    commitWriteWithAudit(this.db, () => void this.interruptOne.run(endedAt, id), audit?.(toSession(row)), this.clock);
    return toSession(this.byId.get(id)!);
  }

  async markOpenAsInterrupted(): Promise<Session[]> {
    const tx = this.db.transaction((): Session[] => {
      const ids = this.open.all().map((r) => r.id);
      if (ids.length === 0) return [];
      this.interruptOpen.run(this.clock().toISOString());
      return ids.map((id) => toSession(this.byId.get(id)!));
    });
    return tx.immediate();
  }
}
