// Opening the SQLite database: pragmas, ordered migrations recorded in `schema_version`, close.
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BastionError, ErrorCode } from '../errors/index.js';

export type Db = Database.Database;

export const DB_FILE_NAME = 'kube-bastion.db';

export function databasePath(dataDir: string): string {
  return join(dataDir, DB_FILE_NAME);
}

export interface Migration {
  /** 1, 2, 3, ... in order, never renumbered, never edited once released. */
  version: number;
  name: string;
  sql: string;
  /**
   * Run with foreign keys off (a table other tables reference is rebuilt); foreign_key_check must
   * come back empty before the migration commits.
   */
  foreignKeysOff?: boolean;
}

/**
 * The schema, one migration per change. Add new ones at the end; never edit a released one.
 * The audit table's hashed fields are defined in audit.ts (AUDIT_HASHED_FIELDS): a migration that
 * adds an audit column must also add a new chain format version there.
 */
/**
 * The approvals table's identity and scope triggers since migration 7: nothing about an approval's
 * identity or scope changes, except that a pending REST approval's scope may be widened as it is
 * approved. Migration 8 rebuilds the table and recreates them as they are: never edit this text
 * (a change is a new migration).
 */
const APPROVAL_SCOPE_TRIGGERS = `
      CREATE TRIGGER approvals_immutable BEFORE UPDATE OF id, agent_id, agent_name, scope_kind, requested_by, created_at ON approvals
        WHEN OLD.id IS NOT NEW.id OR OLD.agent_id IS NOT NEW.agent_id OR OLD.agent_name IS NOT NEW.agent_name
          OR OLD.scope_kind IS NOT NEW.scope_kind OR OLD.requested_by IS NOT NEW.requested_by OR OLD.created_at IS NOT NEW.created_at
        BEGIN SELECT RAISE(ABORT, 'an approval''s identity, agent and scope never change'); END;
      CREATE TRIGGER approvals_scope_widened_on_approval BEFORE UPDATE OF scope, max_sessions ON approvals
        WHEN (OLD.scope IS NOT NEW.scope OR OLD.max_sessions IS NOT NEW.max_sessions) AND NOT (
          OLD.state = 'pending' AND NEW.state = 'approved' AND OLD.scope_kind = 'rest'
          AND json_extract(NEW.scope, '$.kind') IS 'rest'
          AND json_extract(OLD.scope, '$.verb') IS json_extract(NEW.scope, '$.verb')
          AND json_extract(OLD.scope, '$.resource') IS json_extract(NEW.scope, '$.resource')
          AND json_extract(OLD.scope, '$.namespace') IS json_extract(NEW.scope, '$.namespace')
          AND json_extract(OLD.scope, '$.name') IS json_extract(NEW.scope, '$.name')
          AND (json_extract(NEW.scope, '$.request') IS NULL OR json_extract(NEW.scope, '$.request') IS json_extract(OLD.scope, '$.request'))
          AND NEW.max_sessions IS json_extract(NEW.scope, '$.maxUses')
        )
        BEGIN SELECT RAISE(ABORT, 'an approval''s identity, agent and scope never change'); END;
`;

/**
 * Migration 9's replacement of `approvals_scope_widened_on_approval`: as migration 7's, and a
 * pending stream approval's scope may change as it is approved in `$.ports` only (a port-forward's
 * approver names the pod ports it may reach): namespace, pod, container, verbs, commands and
 * maxSessions stay, and the ports approved are a non-empty list. A later rebuild of the table
 * recreates `approvals_immutable` (APPROVAL_SCOPE_TRIGGERS) with this one; never edit this text.
 */
const APPROVAL_SCOPE_CHANGE_TRIGGER_V9 = `
      CREATE TRIGGER approvals_scope_widened_on_approval BEFORE UPDATE OF scope, max_sessions ON approvals
        WHEN (OLD.scope IS NOT NEW.scope OR OLD.max_sessions IS NOT NEW.max_sessions) AND NOT (
          (
            OLD.state = 'pending' AND NEW.state = 'approved' AND OLD.scope_kind = 'rest'
            AND json_extract(NEW.scope, '$.kind') IS 'rest'
            AND json_extract(OLD.scope, '$.verb') IS json_extract(NEW.scope, '$.verb')
            AND json_extract(OLD.scope, '$.resource') IS json_extract(NEW.scope, '$.resource')
            AND json_extract(OLD.scope, '$.namespace') IS json_extract(NEW.scope, '$.namespace')
            AND json_extract(OLD.scope, '$.name') IS json_extract(NEW.scope, '$.name')
            AND (json_extract(NEW.scope, '$.request') IS NULL OR json_extract(NEW.scope, '$.request') IS json_extract(OLD.scope, '$.request'))
            AND NEW.max_sessions IS json_extract(NEW.scope, '$.maxUses')
          ) OR (
            OLD.state = 'pending' AND NEW.state = 'approved' AND OLD.scope_kind = 'stream'
            AND json_valid(NEW.scope)
            AND json_remove(OLD.scope, '$.ports') IS json_remove(NEW.scope, '$.ports')
            AND NEW.max_sessions IS OLD.max_sessions
            AND EXISTS (SELECT 1 FROM json_each(NEW.scope, '$.verbs') WHERE value = 'portforward')
            AND json_type(NEW.scope, '$.ports') IS 'array' AND json_array_length(NEW.scope, '$.ports') > 0
          )
        )
        BEGIN SELECT RAISE(ABORT, 'an approval''s identity, agent and scope never change'); END;
`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'identities, policy versions, audit chain',
    sql: `
      CREATE TABLE agents (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        token_hash  TEXT NOT NULL UNIQUE,
        created_at  TEXT NOT NULL,
        revoked_at  TEXT
      ) STRICT;

      CREATE TABLE users (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        role        TEXT NOT NULL CHECK (role IN ('approver', 'reviewer', 'admin')),
        token_hash  TEXT NOT NULL UNIQUE,
        created_at  TEXT NOT NULL,
        disabled_at TEXT
      ) STRICT;

      CREATE TABLE policy_versions (
        hash            TEXT PRIMARY KEY,
        source          BLOB NOT NULL,
        origin          TEXT NOT NULL,
        first_loaded_at TEXT NOT NULL,
        last_loaded_at  TEXT NOT NULL,
        load_count      INTEGER NOT NULL DEFAULT 1
      ) STRICT;

      CREATE TABLE audit_events (
        id                      INTEGER PRIMARY KEY AUTOINCREMENT,
        chain_version           INTEGER NOT NULL,
        time                    TEXT NOT NULL,
        event                   TEXT NOT NULL,
        agent_id                TEXT REFERENCES agents(id),
        agent_name              TEXT,
        actor                   TEXT,
        source                  TEXT,
        method                  TEXT,
        path                    TEXT,
        verb                    TEXT,
        api_group               TEXT,
        resource                TEXT,
        subresource             TEXT,
        namespace               TEXT,
        name                    TEXT,
        stream                  TEXT,
        decision                TEXT CHECK (decision IN ('allow', 'approval', 'deny', 'error')),
        rule                    TEXT,
        policy_hash             TEXT,
        approval_id             TEXT,
        session_id              TEXT,
        status_code             INTEGER,
        bytes_in                INTEGER,
        bytes_out               INTEGER,
        duration_ms             INTEGER,
        untrusted_client_hints  TEXT,
        details                 TEXT,
        prev_hash               TEXT NOT NULL,
        hash                    TEXT NOT NULL
      ) STRICT;
      -- A hash can be the predecessor of at most one row: the chain cannot fork even if an
      -- appender bypassed the serialising transaction.
      CREATE UNIQUE INDEX audit_events_prev_hash ON audit_events (prev_hash);
      CREATE INDEX audit_events_time ON audit_events (time);
      CREATE INDEX audit_events_agent ON audit_events (agent_id, id);
      CREATE INDEX audit_events_approval ON audit_events (approval_id) WHERE approval_id IS NOT NULL;
      CREATE INDEX audit_events_session ON audit_events (session_id) WHERE session_id IS NOT NULL;

      -- Append-only. This stops mistakes in code, not an attacker with the file: the hash chain
      -- (and an external anchor of its head) is what detects tampering.
      CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
      CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
    `,
  },
  {
    version: 2,
    name: 'approvals and stream sessions',
    sql: `
      CREATE TABLE approvals (
        id                TEXT PRIMARY KEY,
        state             TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'revoked', 'expired')),
        agent_id          TEXT NOT NULL REFERENCES agents(id),
        agent_name        TEXT NOT NULL,
        scope_kind        TEXT NOT NULL CHECK (scope_kind IN ('stream', 'rest')),
        -- Canonical JSON (fixed key order, verbs sorted): equal scopes are equal text.
        scope             TEXT NOT NULL,
        -- Copied from the scope so the session count can be capped in one UPDATE.
        max_sessions      INTEGER CHECK (max_sessions IS NULL OR max_sessions > 0),
        requested_by      TEXT NOT NULL,
        decided_by        TEXT,
        reason            TEXT,
        ttl_seconds       INTEGER NOT NULL CHECK (ttl_seconds > 0),
        created_at        TEXT NOT NULL,
        decided_at        TEXT,
        expires_at        TEXT,
        revoked_at        TEXT,
        sessions_started  INTEGER NOT NULL DEFAULT 0
                          CHECK (sessions_started >= 0 AND (max_sessions IS NULL OR sessions_started <= max_sessions)),
        request           TEXT
      ) STRICT;
      CREATE INDEX approvals_agent_state ON approvals (agent_id, state, expires_at);
      CREATE INDEX approvals_state_expires ON approvals (state, expires_at);
      CREATE INDEX approvals_created ON approvals (created_at);

      -- The life cycle, enforced below the code too: pending -> approved | denied | expired,
      -- approved -> revoked | expired; nothing else, and never a change of agent or scope.
      CREATE TRIGGER approvals_transitions BEFORE UPDATE ON approvals
        WHEN NOT (
          OLD.state = NEW.state
          OR (OLD.state = 'pending' AND NEW.state IN ('approved', 'denied', 'expired'))
          OR (OLD.state = 'approved' AND NEW.state IN ('revoked', 'expired'))
        )
        BEGIN SELECT RAISE(ABORT, 'invalid approval state transition'); END;
      CREATE TRIGGER approvals_immutable BEFORE UPDATE OF id, agent_id, agent_name, scope_kind, scope, max_sessions, requested_by, created_at ON approvals
        WHEN OLD.id IS NOT NEW.id OR OLD.agent_id IS NOT NEW.agent_id OR OLD.agent_name IS NOT NEW.agent_name
          OR OLD.scope_kind IS NOT NEW.scope_kind OR OLD.scope IS NOT NEW.scope OR OLD.max_sessions IS NOT NEW.max_sessions
          OR OLD.requested_by IS NOT NEW.requested_by OR OLD.created_at IS NOT NEW.created_at
        BEGIN SELECT RAISE(ABORT, 'an approval''s identity, agent and scope never change'); END;

      CREATE TABLE sessions (
        id                 TEXT PRIMARY KEY,
        approval_id        TEXT REFERENCES approvals(id),
        agent_id           TEXT NOT NULL REFERENCES agents(id),
        agent_name         TEXT NOT NULL,
        operation          TEXT CHECK (operation IN ('exec', 'attach', 'portforward')),
        transport          TEXT NOT NULL CHECK (transport IN ('spdy', 'websocket')),
        protocol           TEXT NOT NULL,
        upstream_protocol  TEXT,
        namespace          TEXT NOT NULL,
        pod                TEXT NOT NULL,
        container          TEXT NOT NULL,
        command            TEXT NOT NULL,
        tty                INTEGER NOT NULL CHECK (tty IN (0, 1)),
        started_at         TEXT NOT NULL,
        ended_at           TEXT,
        end_reason         TEXT CHECK (end_reason IN ('completed', 'expired', 'revoked', 'client-closed', 'upstream-closed',
                                                      'error', 'shutdown', 'recording-failed', 'interrupted')),
        exit_code          INTEGER,
        status             TEXT,
        bytes_in           INTEGER CHECK (bytes_in IS NULL OR bytes_in >= 0),
        bytes_out          INTEGER CHECK (bytes_out IS NULL OR bytes_out >= 0),
        cast_path          TEXT,
        cast_sha256        TEXT,
        raw_path           TEXT,
        raw_sha256         TEXT,
        channel_sha256     TEXT,
        CHECK ((ended_at IS NULL) = (end_reason IS NULL))
      ) STRICT;
      CREATE INDEX sessions_approval ON sessions (approval_id) WHERE approval_id IS NOT NULL;
      CREATE INDEX sessions_agent ON sessions (agent_id, started_at);
      CREATE INDEX sessions_started ON sessions (started_at);
      CREATE INDEX sessions_open ON sessions (started_at) WHERE ended_at IS NULL;
      -- The first end wins: an ended session's outcome never changes.
      CREATE TRIGGER sessions_end_once BEFORE UPDATE ON sessions
        WHEN OLD.ended_at IS NOT NULL AND (
          NEW.ended_at IS NOT OLD.ended_at OR NEW.end_reason IS NOT OLD.end_reason OR NEW.exit_code IS NOT OLD.exit_code
          OR NEW.status IS NOT OLD.status OR NEW.bytes_in IS NOT OLD.bytes_in OR NEW.bytes_out IS NOT OLD.bytes_out
        )
        BEGIN SELECT RAISE(ABORT, 'an ended session''s outcome never changes'); END;
    `,
  },
  {
    version: 3,
    name: 'files carried by a session (kubectl cp)',
    sql: `ALTER TABLE sessions ADD COLUMN files TEXT;`,
  },  {
    version: 4,
    name: 'session end reasons: agent-revoked, upstream-refused, setup-timeout',
    // SQLite cannot change a CHECK constraint: the table is rebuilt with the same rows.
    sql: `
      CREATE TABLE sessions_v4 (
        id                 TEXT PRIMARY KEY,
        approval_id        TEXT REFERENCES approvals(id),
        agent_id           TEXT NOT NULL REFERENCES agents(id),
        agent_name         TEXT NOT NULL,
        operation          TEXT CHECK (operation IN ('exec', 'attach', 'portforward')),
        transport          TEXT NOT NULL CHECK (transport IN ('spdy', 'websocket')),
        protocol           TEXT NOT NULL,
        upstream_protocol  TEXT,
        namespace          TEXT NOT NULL,
        pod                TEXT NOT NULL,
        container          TEXT NOT NULL,
        command            TEXT NOT NULL,
        tty                INTEGER NOT NULL CHECK (tty IN (0, 1)),
        started_at         TEXT NOT NULL,
        ended_at           TEXT,
        end_reason         TEXT CHECK (end_reason IN ('completed', 'expired', 'revoked', 'agent-revoked', 'client-closed',
                                                      'upstream-closed', 'upstream-refused', 'setup-timeout', 'error',
                                                      'shutdown', 'recording-failed', 'interrupted')),
        exit_code          INTEGER,
        status             TEXT,
        bytes_in           INTEGER CHECK (bytes_in IS NULL OR bytes_in >= 0),
        bytes_out          INTEGER CHECK (bytes_out IS NULL OR bytes_out >= 0),
        cast_path          TEXT,
        cast_sha256        TEXT,
        raw_path           TEXT,
        raw_sha256         TEXT,
        channel_sha256     TEXT,
        files              TEXT,
        CHECK ((ended_at IS NULL) = (end_reason IS NULL))
      ) STRICT;
      INSERT INTO sessions_v4 SELECT id, approval_id, agent_id, agent_name, operation, transport, protocol, upstream_protocol,
        namespace, pod, container, command, tty, started_at, ended_at, end_reason, exit_code, status, bytes_in, bytes_out,
        cast_path, cast_sha256, raw_path, raw_sha256, channel_sha256, files FROM sessions;
      DROP TABLE sessions;
      ALTER TABLE sessions_v4 RENAME TO sessions;
      CREATE INDEX sessions_approval ON sessions (approval_id) WHERE approval_id IS NOT NULL;
      CREATE INDEX sessions_agent ON sessions (agent_id, started_at);
      CREATE INDEX sessions_started ON sessions (started_at);
      CREATE INDEX sessions_open ON sessions (started_at) WHERE ended_at IS NULL;
      CREATE TRIGGER sessions_end_once BEFORE UPDATE ON sessions
        WHEN OLD.ended_at IS NOT NULL AND (
          NEW.ended_at IS NOT OLD.ended_at OR NEW.end_reason IS NOT OLD.end_reason OR NEW.exit_code IS NOT OLD.exit_code
          OR NEW.status IS NOT OLD.status OR NEW.bytes_in IS NOT OLD.bytes_in OR NEW.bytes_out IS NOT OLD.bytes_out
        )
        BEGIN SELECT RAISE(ABORT, 'an ended session''s outcome never changes'); END;
    `,
  },
  {
    version: 5,
    name: 'approval decisions: an append-only history (grant, approve, deny, revoke)',
    // Each decision is its own row, written in the transaction of the state change it makes, so a
    // revocation no longer overwrites the approver's reason. Approvals decided before this version
    // get their history from their audit rows (the chain recorded every decision with its actor).
    sql: `
      CREATE TABLE approval_decisions (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        approval_id   TEXT NOT NULL REFERENCES approvals(id),
        kind          TEXT NOT NULL CHECK (kind IN ('granted', 'approved', 'auto-approved', 'denied', 'revoked')),
        actor         TEXT NOT NULL,
        at            TEXT NOT NULL,
        reason        TEXT,
        ttl_seconds   INTEGER CHECK (ttl_seconds IS NULL OR ttl_seconds > 0),
        expires_at    TEXT
      ) STRICT;
      CREATE INDEX approval_decisions_approval ON approval_decisions (approval_id, id);
      CREATE TRIGGER approval_decisions_no_update BEFORE UPDATE ON approval_decisions
        BEGIN SELECT RAISE(ABORT, 'approval_decisions is append-only'); END;
      CREATE TRIGGER approval_decisions_no_delete BEFORE DELETE ON approval_decisions
        BEGIN SELECT RAISE(ABORT, 'approval_decisions is append-only'); END;
      INSERT INTO approval_decisions (approval_id, kind, actor, at, reason, ttl_seconds, expires_at)
        SELECT e.approval_id, substr(e.event, 10), COALESCE(e.actor, 'system'), e.time,
               json_extract(e.details, '$.reason'), json_extract(e.details, '$.ttlSeconds'), json_extract(e.details, '$.expiresAt')
        FROM audit_events e JOIN approvals a ON a.id = e.approval_id
        WHERE e.event IN ('approval.granted', 'approval.approved', 'approval.auto-approved', 'approval.denied', 'approval.revoked')
        ORDER BY e.id;
      -- A revocation used to overwrite the approver's reason: put it back from the history.
      UPDATE approvals SET reason = (
          SELECT d.reason FROM approval_decisions d
          WHERE d.approval_id = approvals.id AND d.kind IN ('granted', 'approved', 'auto-approved') ORDER BY d.id LIMIT 1)
        WHERE state = 'revoked' AND EXISTS (
          SELECT 1 FROM approval_decisions d WHERE d.approval_id = approvals.id AND d.kind IN ('granted', 'approved', 'auto-approved'));
    `,
  },
  {
    version: 6,
    name: 'agent owners',
    // The user an agent belongs to (who may then not approve its requests). Agents created before
    // this version: the user who created them through the API, else the first admin user (the
    // owner serve gives the demo agent and the CLI's agent add gives by default).
    sql: `
      ALTER TABLE agents ADD COLUMN owner TEXT REFERENCES users(name);
      UPDATE agents SET owner = COALESCE(
        (SELECT u.name FROM audit_events e JOIN users u ON e.actor = 'user:' || u.name
          WHERE e.event = 'agent.created' AND e.agent_id = agents.id ORDER BY e.id LIMIT 1),
        (SELECT name FROM users WHERE role = 'admin' ORDER BY rowid LIMIT 1));
    `,
  },
  {
    version: 7,
    name: 'REST approvals bound to the request: the approver may widen the scope as it approves',
    // The scope (and max_sessions, its cap on uses) still never changes, except once: as a pending
    // REST approval is approved, its approver may widen it (more uses, or any body of the same
    // shape). Verb, resource, namespace and name stay; a binding to a request may only be kept
    // as it was or dropped. What was asked (the request column) is not touched.
    sql: `
      DROP TRIGGER approvals_immutable;
      ${APPROVAL_SCOPE_TRIGGERS}
    `,
  },
  {
    version: 8,
    name: 'abandoned approvals (nobody waiting), client address of sessions',
    // The approvals table is rebuilt for its state CHECK; sessions reference it, so foreign keys
    // are off while it is swapped (checked before commit).
    foreignKeysOff: true,
    sql: `
      CREATE TABLE approvals_v8 (
        id                    TEXT PRIMARY KEY,
        state                 TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'revoked', 'expired', 'abandoned')),
        agent_id              TEXT NOT NULL REFERENCES agents(id),
        agent_name            TEXT NOT NULL,
        scope_kind            TEXT NOT NULL CHECK (scope_kind IN ('stream', 'rest')),
        scope                 TEXT NOT NULL,
        max_sessions          INTEGER CHECK (max_sessions IS NULL OR max_sessions > 0),
        requested_by          TEXT NOT NULL,
        decided_by            TEXT,
        reason                TEXT,
        ttl_seconds           INTEGER NOT NULL CHECK (ttl_seconds > 0),
        created_at            TEXT NOT NULL,
        decided_at            TEXT,
        expires_at            TEXT,
        revoked_at            TEXT,
        sessions_started      INTEGER NOT NULL DEFAULT 0
                              CHECK (sessions_started >= 0 AND (max_sessions IS NULL OR sessions_started <= max_sessions)),
        request               TEXT,
        -- pending: since when no client waits on it (NULL: one does, or it is not a held request).
        nobody_waiting_since  TEXT
      ) STRICT;
      INSERT INTO approvals_v8 SELECT id, state, agent_id, agent_name, scope_kind, scope, max_sessions, requested_by, decided_by,
        reason, ttl_seconds, created_at, decided_at, expires_at, revoked_at, sessions_started, request, NULL FROM approvals;
      DROP TABLE approvals;
      ALTER TABLE approvals_v8 RENAME TO approvals;
      CREATE INDEX approvals_agent_state ON approvals (agent_id, state, expires_at);
      CREATE INDEX approvals_state_expires ON approvals (state, expires_at);
      CREATE INDEX approvals_created ON approvals (created_at);
      CREATE INDEX approvals_unwaited ON approvals (nobody_waiting_since) WHERE state = 'pending' AND nobody_waiting_since IS NOT NULL;
      CREATE TRIGGER approvals_transitions BEFORE UPDATE ON approvals
        WHEN NOT (
          OLD.state = NEW.state
          OR (OLD.state = 'pending' AND NEW.state IN ('approved', 'denied', 'expired', 'abandoned'))
          OR (OLD.state = 'approved' AND NEW.state IN ('revoked', 'expired'))
        )
        BEGIN SELECT RAISE(ABORT, 'invalid approval state transition'); END;
      -- The triggers as migration 7 left them (the table is rebuilt, its triggers with it).
      ${APPROVAL_SCOPE_TRIGGERS}

      -- The client's address and port (ip:port) the session came from.
      ALTER TABLE sessions ADD COLUMN client TEXT;
    `,
  },
  {
    version: 9,
    name: 'port-forward: approvers name the ports, forwarded connections of a session',
    // A held port-forward names no ports (kubectl sends them inside the stream): its approver names
    // them as it is approved, the one change a stream scope may take. Each forwarded connection of
    // a port-forward session is a row, started before a byte is relayed and ended once. A
    // port-forward session names no container (it reaches the pod); every other one does.
    sql: `
      DROP TRIGGER approvals_scope_widened_on_approval;
      ${APPROVAL_SCOPE_CHANGE_TRIGGER_V9}

      CREATE TRIGGER sessions_container_named BEFORE INSERT ON sessions
        WHEN NEW.container = '' AND NEW.operation IS NOT 'portforward'
        BEGIN SELECT RAISE(ABORT, 'only a port-forward session names no container'); END;

      CREATE TABLE forwarded_connections (
        session_id   TEXT NOT NULL REFERENCES sessions(id),
        seq          INTEGER NOT NULL CHECK (seq > 0),
        port         INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
        started_at   TEXT NOT NULL,
        ended_at     TEXT,
        outcome      TEXT CHECK (outcome IN ('closed', 'refused', 'failed', 'cut')),
        detail       TEXT,
        bytes_in     INTEGER NOT NULL DEFAULT 0 CHECK (bytes_in >= 0),
        bytes_out    INTEGER NOT NULL DEFAULT 0 CHECK (bytes_out >= 0),
        sha256_in    TEXT,
        sha256_out   TEXT,
        raw_path     TEXT,
        raw_sha256   TEXT,
        protocol     TEXT CHECK (protocol IS NULL OR protocol IN ('http/1.x', 'redis', 'postgresql', 'tls', 'unrecognised')),
        CHECK ((ended_at IS NULL) = (outcome IS NULL)),
        PRIMARY KEY (session_id, seq)
      ) STRICT;
      -- The first end wins: an ended connection never changes, and no connection is removed.
      CREATE TRIGGER forwarded_connections_end_once BEFORE UPDATE ON forwarded_connections
        WHEN OLD.ended_at IS NOT NULL
        BEGIN SELECT RAISE(ABORT, 'an ended forwarded connection never changes'); END;
      CREATE TRIGGER forwarded_connections_no_delete BEFORE DELETE ON forwarded_connections
        BEGIN SELECT RAISE(ABORT, 'forwarded connections are never removed'); END;
    `,
  },
];

export interface OpenDatabaseOptions {
  /**
   * `FULL` (default): a committed audit row survives power loss. `NORMAL` is faster and still
   * survives a process crash in WAL mode.
   */
  synchronous?: 'FULL' | 'NORMAL';
  /** How long a writer waits for another connection's write lock (default 5000 ms). */
  busyTimeoutMs?: number;
  /** Migrations to apply (tests only). */
  migrations?: readonly Migration[];
}

/**
 * Opens (creating if needed) `<dataDir>/kube-bastion.db` in WAL mode with foreign keys on and a busy
 * timeout, and brings the schema up to date. A new data dir is created 0700, a new file 0600.
 */
export function openDatabase(dataDir: string, opts: OpenDatabaseOptions = {}): Db {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = databasePath(dataDir);
  const created = !existsSync(file);
  let db: Db;
  try {
    db = new Database(file, { timeout: opts.busyTimeoutMs ?? 5000 });
  } catch (err) {
    throw new BastionError(ErrorCode.CONFIG_INVALID, `cannot open database ${file}: ${errorMessage(err)}`, { file }, {
      cause: err,
    });
  }
  try {
    // Before the WAL and shared-memory files exist: SQLite gives them the database file's mode.
    if (created) chmodSync(file, 0o600);
    configure(db, opts);
    migrate(db, opts.migrations ?? MIGRATIONS);
  } catch (err) {
    db.close();
    if (err instanceof BastionError) throw err;
    throw new BastionError(ErrorCode.CONFIG_INVALID, `cannot prepare database ${file}: ${errorMessage(err)}`, { file }, {
      cause: err,
    });
  }
  return db;
}

/**
 * A second connection to an existing database, inside a read transaction whose snapshot is fixed
 * before this returns: every read on it sees the database as of that instant, whatever other
 * connections (this process's own, or another process's) commit meanwhile. It never writes: no
 * migration, no pragma that writes. End it with closeReadSnapshot.
 */
export function openReadSnapshot(file: string, busyTimeoutMs = 5000): Db {
  const db = new Database(file, { fileMustExist: true, timeout: busyTimeoutMs });
  try {
    db.exec('BEGIN');
    // In WAL mode a read transaction takes its snapshot at its first read.
    db.prepare('SELECT COUNT(*) FROM sqlite_master').get();
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

export function closeReadSnapshot(db: Db): void {
  if (!db.open) return;
  try {
    if (db.inTransaction) db.exec('ROLLBACK');
  } finally {
    db.close();
  }
}

function configure(db: Db, opts: OpenDatabaseOptions): void {
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (String(mode).toLowerCase() !== 'wal') {
    throw new BastionError(ErrorCode.CONFIG_INVALID, `database refused WAL mode (journal_mode=${String(mode)})`);
  }
  db.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
  db.pragma('foreign_keys = ON');
}

/** Applies pending migrations in order, each in its own immediate transaction. Returns the version. */
export function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS): number {
  checkMigrationList(migrations);
  db.exec(`CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  const known = migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
  const current = (): number =>
    (db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_version').get() as { v: number }).v;

  for (const m of migrations) {
    // Re-read inside the write lock: another process may be migrating the same file.
    const apply = db.transaction(() => {
      const v = current();
      if (v > known) return;
      if (v >= m.version) return;
      db.exec(m.sql);
      if (m.foreignKeysOff) {
        const broken = db.prepare('PRAGMA foreign_key_check').all();
        if (broken.length > 0) throw new Error(`migration ${m.version} broke ${broken.length} foreign key reference(s)`);
      }
      db.prepare('INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        new Date().toISOString(),
      );
    });
    // PRAGMA foreign_keys cannot change inside a transaction: around it, and always back on.
    const fkWasOn = Boolean(db.pragma('foreign_keys', { simple: true }));
    if (m.foreignKeysOff && fkWasOn) db.pragma('foreign_keys = OFF');
    try {
      apply.immediate();
    } finally {
      if (m.foreignKeysOff && fkWasOn) db.pragma('foreign_keys = ON');
    }
  }
  const v = current();
  if (v > known) {
    throw new BastionError(
      ErrorCode.CONFIG_INVALID,
      `database schema version ${v} is newer than this kube-bastion knows (${known}); upgrade kube-bastion`,
      { schemaVersion: v, known },
    );
  }
  return v;
}

export function schemaVersion(db: Db): number {
  return (db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_version').get() as { v: number }).v;
}

export function closeDatabase(db: Db): void {
  if (!db.open) return;
  // Fold the WAL back into the main file so a copied data dir is self-contained. Best effort:
  // another connection may still be reading. It waits for no one: a TRUNCATE checkpoint that waits
  // for a reader (an audit verify's snapshot) holds every other process's writers back meanwhile,
  // and the bastion's writes block its event loop.
  try {
    db.pragma('busy_timeout = 0');
    db.pragma('wal_checkpoint(TRUNCATE)');
  } catch {
    /* another connection holds the WAL; it will checkpoint later */
  }
  db.close();
}

function checkMigrationList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration list out of order at index ${i} (version ${m.version})`);
  });
}

/** True for a UNIQUE constraint failure on `table.column`. */
export function isUniqueViolation(err: unknown, column: string): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' && err.message.includes(column);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
