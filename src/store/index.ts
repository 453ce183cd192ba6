// The Store: the storage parts composed over one database. Callers use the interfaces in
// types.ts; each part lives in its own file and knows nothing about the others, except that an
// approval change appends its audit row in its own transaction (approvals.ts uses audit.ts).
import { SqliteAgentStore } from './agents.js';
import { SqliteApprovalStore } from './approvals.js';
import { commitPendingAudit, SqliteAuditLog } from './audit.js';
import { AuditBatcher, type AuditBatchOptions } from './audit-batch.js';
import { closeDatabase, closeReadSnapshot, databasePath, openDatabase, openReadSnapshot, type Db, type OpenDatabaseOptions } from './db.js';
import { SqlitePolicyVersionStore } from './policy-versions.js';
import { SqliteSessionStore } from './sessions.js';
import { SqliteUserStore } from './users.js';
import type { AgentStore, ApprovalStore, AuditLog, Clock, PolicyVersionStore, ReadSnapshot, SessionStore, UserStore } from './types.js';

export interface Store {
  readonly agents: AgentStore;
  readonly users: UserStore;
  readonly policyVersions: PolicyVersionStore;
  readonly audit: AuditLog;
  /** Approval records (the life cycle is src/approvals' ApprovalService, built over this). */
  readonly approvals: ApprovalStore;
  readonly sessions: SessionStore;
  /** Where the data lives (for logs and `--data-dir` messages). */
  readonly location: string;
  /** Closes the database. Idempotent. */
  close(): Promise<void>;
}

export interface OpenStoreOptions extends OpenDatabaseOptions {
  /** Time source for created/loaded/audit timestamps (tests). */
  clock?: Clock;
  /** The group commit of rows with a bounded durability window (audit-batch.ts). */
  auditBatch?: AuditBatchOptions;
}

/** The SQLite store: `<dataDir>/kube-bastion.db`, created and migrated as needed. */
export interface SqliteStore extends Store {
  /** The underlying connection, for the CLI's `audit verify` and for tests. */
  readonly db: Db;
  /**
   * Group commits for rows whose crash loss is bounded (an allowed read's row): committed within
   * the batch window, and always before any row appended after them. Flushed by close().
   */
  readonly auditBatch: AuditBatcher;
  /**
   * Reads that must agree with each other (a table against the audit rows written in the same
   * transactions) on their own connection in one read transaction: this connection's queued audit
   * rows are committed first, so the snapshot holds every row accepted so far, and nothing written
   * while `read` runs (by this process between its awaits, or by another process) shows in it.
   */
  readonly readSnapshot: ReadSnapshot;
}

export function openStore(dataDir: string, opts: OpenStoreOptions = {}): SqliteStore {
  const db = openDatabase(dataDir, opts);
  const clock = opts.clock ?? (() => new Date());
  const auditBatch = new AuditBatcher(db, clock, opts.auditBatch);
  return {
    db,
    location: databasePath(dataDir),
    agents: new SqliteAgentStore(db, clock),
    users: new SqliteUserStore(db, clock),
    policyVersions: new SqlitePolicyVersionStore(db, clock),
    audit: new SqliteAuditLog(db, clock),
    approvals: new SqliteApprovalStore(db, clock),
    sessions: new SqliteSessionStore(db, clock, auditBatch),
    auditBatch,
    readSnapshot: async (read) => {
      commitPendingAudit(db);
      const snap = openReadSnapshot(databasePath(dataDir), opts.busyTimeoutMs);
      try {
        return await read({ audit: new SqliteAuditLog(snap, clock), approvals: new SqliteApprovalStore(snap, clock), sessions: new SqliteSessionStore(snap, clock) });
      } finally {
        closeReadSnapshot(snap);
      }
    },
    close: async () => {
      if (!db.open) return;
      try {
        auditBatch.close();
      } finally {
        closeDatabase(db);
      }
    },
  };
}

export * from './types.js';
export { agentPrincipal, SqliteAgentStore } from './agents.js';
export { isUserRole, SqliteUserStore } from './users.js';
export { SqlitePolicyVersionStore } from './policy-versions.js';
export { APPROVAL_ID_PATTERN, APPROVAL_ID_PREFIX, newApprovalId, randomId, SqliteApprovalStore } from './approvals.js';
export { newSessionId, SESSION_ID_PATTERN, SESSION_ID_PREFIX, SqliteSessionStore } from './sessions.js';
export {
  AUDIT_CHAIN_VERSION,
  AUDIT_HASHED_FIELDS,
  GENESIS_HASH,
  MAX_CLIENT_HINT_LENGTH,
  appendAuditEvent,
  auditHead,
  auditRecordHash,
  canonicalAuditJson,
  commitPendingAudit,
  decisionAuditFields,
  queryAudit,
  requestAuditFields,
  SqliteAuditLog,
  verifyAuditChain,
} from './audit.js';
export { AUDIT_BATCH_DEFAULTS, AuditBatcher, type AuditBatchOptions } from './audit-batch.js';
export { DB_FILE_NAME, MIGRATIONS, closeDatabase, databasePath, migrate, openDatabase, schemaVersion } from './db.js';
export type { Db, Migration, OpenDatabaseOptions } from './db.js';
export { AGENT_TOKEN_PREFIX, USER_TOKEN_PREFIX, hashToken, validateName } from './tokens.js';
