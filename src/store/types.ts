// The storage interfaces. Everything outside src/store talks to these, never to SQLite.
//
// Every method returns a Promise even though the SQLite implementation is synchronous: a shared
// database for a multi-replica deployment (docs/storage.md, "Moving to several replicas") is asynchronous, and it must be possible
// to add one without touching a single call site.

import type { Approval, ApprovalDecision, ApprovalScope, ApprovalState } from '../model/approval.js';
import type { ForwardedConnection, ForwardedConnectionEnd, ForwardedConnectionStart } from '../model/forward.js';
import type { StreamOperation } from '../model/request.js';
import {
  AUDIT_DECISIONS,
  SESSION_END_REASONS,
  TRANSPORTS as SESSION_TRANSPORTS,
  USER_ROLES,
  type AuditDecision,
  type SessionEndReason,
  type SessionState,
  type Transport as SessionTransport,
  type UserRole,
} from '../model/vocabulary.js';
import type { Status } from '../protocol/status.js';

// The store's words are model/vocabulary.ts's, re-exported for the store's callers.
export { AUDIT_DECISIONS, SESSION_END_REASONS, SESSION_TRANSPORTS, USER_ROLES, type AuditDecision, type SessionEndReason, type SessionState, type SessionTransport, type UserRole };

/** The time source (tests inject a fixed one). */
export type Clock = () => Date;

// ---------------------------------------------------------------------------------------------
// Agents

export interface Agent {
  /** Stable opaque id (UUID). Audit rows reference it. */
  id: string;
  /** DNS-label name, unique for ever (a revoked agent's name is not reused). */
  name: string;
  /**
   * The user the agent belongs to (who created it, or whom an admin named): that user does not
   * approve its requests. null only for an agent created without one (a store with no users).
   */
  owner: string | null;
  /** ISO 8601 with milliseconds, UTC. */
  createdAt: string;
  /** ISO 8601, or null while the agent is active. */
  revokedAt: string | null;
}

export interface AgentStore {
  /**
   * Creates an agent owned by `owner` (an enabled user's name; INVALID_FIELD `owner` otherwise) and
   * its bearer token (no owner when absent: tests and stores without users). The token is returned here and never again.
   */
  createAgent(name: string, owner?: string | null): Promise<{ agent: Agent; token: string }>;
  /**
   * The active agent the token belongs to; undefined for unknown, malformed or revoked tokens. A
   * revocation through this store takes effect at once; one through another connection to the
   * database within AGENT_AUTH_REUSE_MS (a read is reused that long).
   */
  authenticateAgent(token: string): Promise<Agent | undefined>;
  listAgents(): Promise<Agent[]>;
  getAgentByName(name: string): Promise<Agent | undefined>;
  getAgentById(id: string): Promise<Agent | undefined>;
  /** Revokes by name. Idempotent (keeps the first revocation time); unknown name: NOT_FOUND. */
  revokeAgent(name: string): Promise<Agent>;
}

// ---------------------------------------------------------------------------------------------
// Control-endpoint users

export interface User {
  id: string;
  name: string;
  role: UserRole;
  createdAt: string;
  disabledAt: string | null;
}

export interface UserStore {
  /** Creates a user and its bearer token. The token is returned here and never again. */
  createUser(name: string, role: UserRole): Promise<{ user: User; token: string }>;
  /** The enabled user the token belongs to; undefined for unknown, malformed or disabled tokens. */
  authenticateUser(token: string): Promise<User | undefined>;
  listUsers(): Promise<User[]>;
  getUserByName(name: string): Promise<User | undefined>;
  /**
   * Disables by name: the user's token stops working at once. Idempotent; unknown name: NOT_FOUND;
   * the last enabled admin: INVALID_STATE (nobody could manage the bastion through the API).
   */
  disableUser(name: string): Promise<User>;
  /**
   * Replaces the user's token: the new one is returned here and never again, the old one stops
   * working at once. Unknown name: NOT_FOUND; a disabled user: INVALID_STATE.
   */
  rotateToken(name: string): Promise<{ user: User; token: string }>;
}

// ---------------------------------------------------------------------------------------------
// Policy versions

export interface PolicyVersionInput {
  /** sha256 (hex) of the policy file's exact bytes: must match `source`. */
  hash: string;
  /** The policy file's bytes (a string is taken as UTF-8). */
  source: string | Uint8Array;
  /** Where it was loaded from: a file path, or e.g. `builtin:default`. */
  origin: string;
}

export interface PolicyVersion {
  hash: string;
  /** The policy text (UTF-8 decoded). */
  source: string;
  /** Origin of the first load. */
  origin: string;
  firstLoadedAt: string;
  lastLoadedAt: string;
  loadCount: number;
}

export interface PolicyVersionStore {
  /** Records a load. Idempotent by hash: a repeat load only moves lastLoadedAt and loadCount. */
  recordPolicyVersion(input: PolicyVersionInput): Promise<PolicyVersion>;
  getPolicyVersion(hash: string): Promise<PolicyVersion | undefined>;
  /** Most recently loaded first. */
  listPolicyVersions(): Promise<PolicyVersion[]>;
}

// ---------------------------------------------------------------------------------------------
// Audit log

/** `request` for every Kubernetes-endpoint request; other kinds share the same chain. */
export type AuditEventKind =
  | 'request'
  | 'session.start'
  | 'session.end'
  | 'agent.created'
  | 'agent.revoked'
  | 'user.created'
  | 'user.disabled'
  | 'user.token-rotated'
  | 'policy.loaded'
  | `approval.${string}`
  | (string & {});

/**
 * What the client said about itself. Never authenticated, never used for a decision: kept only
 * to help a reviewer correlate (and stored in a column named `untrusted_client_hints`).
 */
export interface UntrustedClientHints {
  /** `Kubectl-Command` header */
  kubectlCommand?: string;
  /** `Kubectl-Session` header */
  kubectlSession?: string;
  /** `User-Agent` header */
  userAgent?: string;
}

/**
 * One audit event as the caller supplies it. Absent fields are stored as null. For the parsed
 * request fields, null means "not applicable / not parsed"; '' keeps its KubeRequest meaning
 * (core API group, cluster scope, no subresource).
 */
export interface AuditEventInput {
  event: AuditEventKind;
  /** Defaults to the store's clock. Stored as ISO 8601 with milliseconds, UTC. */
  time?: Date;
  /** The authenticated agent; null/absent for unauthenticated requests and non-agent events. */
  agent?: { id: string; name: string } | null;
  /** Who acted when it was not the agent: `user:<name>`, `cli`, `policy:<rule>@<sha256>`, ... */
  actor?: string | null;
  /** Remote `address:port`. */
  source?: string | null;
  method?: string | null;
  path?: string | null;
  verb?: string | null;
  apiGroup?: string | null;
  resource?: string | null;
  subresource?: string | null;
  namespace?: string | null;
  name?: string | null;
  stream?: StreamOperation | null;
  decision?: AuditDecision | null;
  rule?: string | null;
  policyHash?: string | null;
  approvalId?: string | null;
  sessionId?: string | null;
  statusCode?: number | null;
  bytesIn?: number | null;
  bytesOut?: number | null;
  /** Rounded to whole milliseconds. */
  durationMs?: number | null;
  untrustedClientHints?: UntrustedClientHints | null;
  /** Free, event-specific data (stored as canonical JSON). */
  details?: Record<string, unknown> | null;
}

/** One stored row. Field values are exactly what the hash covers. */
export interface AuditRecord {
  id: number;
  /** Canonical-form version the hash was computed with (see audit.ts). */
  chainVersion: number;
  time: string;
  event: string;
  agentId: string | null;
  agentName: string | null;
  actor: string | null;
  source: string | null;
  method: string | null;
  path: string | null;
  verb: string | null;
  apiGroup: string | null;
  resource: string | null;
  subresource: string | null;
  namespace: string | null;
  name: string | null;
  stream: string | null;
  decision: AuditDecision | null;
  rule: string | null;
  policyHash: string | null;
  approvalId: string | null;
  sessionId: string | null;
  statusCode: number | null;
  bytesIn: number | null;
  bytesOut: number | null;
  durationMs: number | null;
  /** Canonical JSON text, or null. */
  untrustedClientHints: string | null;
  /** Canonical JSON text, or null. */
  details: string | null;
  prevHash: string;
  hash: string;
}

export interface AuditQuery {
  /** Only rows at or after this instant. */
  since?: Date | string;
  /** Only rows at or before this instant. */
  until?: Date | string;
  /** Agent name or id. */
  agent?: string;
  event?: string;
  /** Any of these events. */
  events?: readonly string[];
  /** Only rows about this object: the request columns, '' for none (cluster scope, core group). */
  namespace?: string;
  apiGroup?: string;
  resource?: string;
  /** Any of these subresources ('' for none). */
  subresources?: readonly string[];
  name?: string;
  approvalId?: string;
  sessionId?: string;
  /** Only rows with id greater than this (paging). */
  afterId?: number;
  /** Default 100, at most 10,000. */
  limit?: number;
  /** Default 'asc' (oldest first). */
  order?: 'asc' | 'desc';
}

/** The chain's head: publish it elsewhere (an external anchor) to detect a truncated tail. */
export interface AuditHead {
  /** Number of rows. */
  rows: number;
  /** Id of the last row (0 when empty). */
  lastId: number;
  /** Hash of the last row (64 zeros when empty). */
  headHash: string;
}

export type AuditVerifyFailureReason =
  /** The row's stored hash is not the hash of its fields: the row was edited. */
  | 'hash-mismatch'
  /** The row's prev_hash is not the previous row's hash: rows were removed, reordered or forged. */
  | 'prev-mismatch'
  /** Row ids are not consecutive from 1: rows were deleted. */
  | 'gap'
  /** A row carries a value the chain format cannot contain (e.g. malformed hash). */
  | 'malformed'
  /** The anchor's row is missing: the tail was truncated. */
  | 'truncated'
  /** Every row is gone, though an anchor covered some. */
  | 'wiped'
  /** The anchor's row exists but has a different hash: the chain was rewritten. */
  | 'anchor-mismatch';

export type AuditVerifyResult =
  | { ok: true; rows: number; head: AuditHead }
  | {
      ok: false;
      /** The first bad row (for `truncated`: the anchor's row id, which is missing). */
      rowId: number;
      reason: AuditVerifyFailureReason;
      message: string;
      /** Rows checked and found good before the first bad one. */
      rowsVerified: number;
      /** For `truncated`, `wiped` and `anchor-mismatch`: the anchor that found it. */
      anchor?: AuditAnchor;
    };

/** A head recorded earlier, outside the database (a signed checkpoint): the chain must still contain it. */
export interface AuditAnchor extends Pick<AuditHead, 'lastId' | 'headHash'> {
  /** How messages name it, e.g. `checkpoint 12 (2025-06-01T09:00:00.000Z)`; default `the anchor`. */
  label?: string;
}

export interface AuditVerifyOptions {
  /** A head recorded earlier (e.g. by an external anchor): the chain must still contain it. */
  anchor?: AuditAnchor;
  /** Several heads recorded earlier: each must still be in the chain; the earliest that is not is named. */
  anchors?: readonly AuditAnchor[];
}

export interface AuditLog {
  /** Appends one event to the chain; serialised against every other appender. */
  append(input: AuditEventInput): Promise<AuditRecord>;
  query(q?: AuditQuery): Promise<AuditRecord[]>;
  head(): Promise<AuditHead>;
  verify(opts?: AuditVerifyOptions): Promise<AuditVerifyResult>;
}

// ---------------------------------------------------------------------------------------------
// Approvals (the records behind src/approvals; the life cycle rules live in the service)

/** A new approval as the service builds it: an Approval before its id (assigned when absent), revocation, history, sessions and waiters. */
export type NewApproval = Omit<Approval, 'id' | 'state' | 'revokedAt' | 'revokedBy' | 'decisions' | 'sessionsStarted' | 'nobodyWaitingSince'> & {
  /** `apr_` + 20 base32 characters; generated when absent. */
  id?: string;
  state: Extract<ApprovalState, 'pending' | 'approved'>;
  /** The decision that created it approved (a grant, an auto-approval), recorded in the same transaction. */
  decision?: ApprovalDecision;
};

/**
 * The audit row of an approval change, built from the approval as the change stored it; the store
 * appends it in the change's own transaction, so neither is ever written without the other.
 */
export type ApprovalAudit = (approval: Approval) => AuditEventInput;

/** The columns a transition may set (absent = unchanged). */
export interface ApprovalChanges {
  /** Only pending -> approved, only a REST scope widened by its approver (uses, shape). */
  scope?: ApprovalScope;
  decidedBy?: string | null;
  decidedAt?: string | null;
  expiresAt?: string | null;
  revokedAt?: string | null;
  reason?: string | null;
  ttlSeconds?: number;
}

/**
 * A compare-and-set state change: applied only while the stored state is `from` (and the expiry
 * guards hold), so two deciders racing cannot both win.
 */
export interface ApprovalTransition {
  from: ApprovalState;
  to: ApprovalState;
  /** Only if expiresAt is null or later than this instant (ISO 8601). */
  ifUnexpiredAt?: string;
  /** Only if expiresAt is at or before this instant (ISO 8601). */
  ifExpiredAt?: string;
  /** Only if nobody has waited on it since this instant or earlier (nobodyWaitingSince set and at or before it). */
  ifUnwaitedSince?: string;
  /** Only if someone waits on it, or nobody has only since after this instant (nobodyWaitingSince null or later). */
  ifWaitedSince?: string;
  set?: ApprovalChanges;
  /** Appended to the approval's decision history in the same transaction, only if the change applies. */
  decision?: ApprovalDecision;
  /** Its audit row, appended to the chain in the same transaction, only if the change applies. */
  audit?: ApprovalAudit;
}

export interface ApprovalStoreFilter {
  /**
   * With `asOf`, matches the effective state (pending/approved past expiresAt count as expired);
   * `abandoned` also returns pending approvals nobody waits on (the service applies the grace).
   */
  state?: ApprovalState;
  /** Agent name or id. */
  agent?: string;
  /** ISO 8601 instant for the effective-state filter; without it the stored state is matched. */
  asOf?: string;
}

/**
 * Approval records. Every `Approval` returned carries the STORED state: an approval whose
 * expiresAt has passed but that no one has marked expired yet still says pending/approved here
 * (the service computes the effective state). All instants are ISO 8601 UTC with milliseconds.
 */
export interface ApprovalStore {
  /** Inserts it, with its audit row (when given) in the same transaction. */
  create(input: NewApproval, audit?: ApprovalAudit): Promise<Approval>;
  /**
   * Atomically: the pending approval for this agent with an identical scope that has not expired at
   * `asOf` (its expiresAt is moved to `input.expiresAt` if that is later, and its nobodyWaitingSince
   * cleared: someone waits on it again), or else `input` inserted; with the audit row `audit` builds
   * (told which it was) in the same transaction.
   */
  createOrJoinPending(
    input: NewApproval & { state: 'pending' },
    asOf: string,
    audit?: (approval: Approval, created: boolean) => AuditEventInput,
  ): Promise<{ approval: Approval; created: boolean }>;
  get(id: string): Promise<Approval | undefined>;
  /** Newest first. */
  list(filter?: ApprovalStoreFilter): Promise<Approval[]>;
  /** The oldest pending approval for this agent and scope that has not expired at `asOf`. */
  findPending(agentId: string, scope: ApprovalScope, asOf: string): Promise<Approval | undefined>;
  /** Approved, not revoked, not expired at `asOf`; latest expiry first. */
  listApproved(agentId: string, asOf: string): Promise<Approval[]>;
  /** Pending approvals of this agent not expired at `asOf`. */
  countPending(agentId: string, asOf: string): Promise<number>;
  /** Applies the transition; undefined when the id is unknown or a guard failed. */
  transition(id: string, t: ApprovalTransition): Promise<Approval | undefined>;
  /**
   * Stored pending/approved approvals whose expiresAt is at or before `asOf`, and pending ones
   * nobody has waited on since `unwaitedSince` or earlier; oldest deadline first.
   */
  listDue(asOf: string, unwaitedSince?: string): Promise<Approval[]>;
  /** The earliest expiresAt among stored pending/approved approvals. */
  nextExpiry(): Promise<string | undefined>;
  /**
   * A pending approval's waiters: `since` = nobody waits since then (an earlier instant already
   * stored is kept), null = someone waits again. Undefined when it is not pending (or unknown).
   */
  setNobodyWaiting(id: string, since: string | null): Promise<Approval | undefined>;
  /** The earliest nobodyWaitingSince among stored pending approvals. */
  nextUnwaited(): Promise<string | undefined>;
  /**
   * Atomically counts one session: only while approved, not revoked, not expired at `asOf` and
   * under the scope's maxSessions. The updated approval, or undefined when it is not usable.
   */
  incrementSessions(id: string, asOf: string): Promise<Approval | undefined>;
}

// ---------------------------------------------------------------------------------------------
// Stream sessions

export interface Session {
  /** `ses_` + 20 base32 characters */
  id: string;
  /** null when a policy rule allowed the session without an approval. */
  approvalId: string | null;
  /** The agent's name. */
  agent: string;
  agentId: string;
  state: SessionState;
  /** null when not given at start. */
  operation: StreamOperation | null;
  transport: SessionTransport;
  /** The agent-side subprotocol, e.g. `v5.channel.k8s.io`. */
  protocol: string;
  /** The subprotocol spoken with the upstream API server; null when not known. */
  upstreamProtocol: string | null;
  namespace: string;
  pod: string;
  /** '' for portforward (it reaches the pod). */
  container: string;
  /** exec argv ([] for attach and portforward). */
  command: string[];
  tty: boolean;
  /** The client's address and port (`ip:port`); null when not known (rows of earlier versions). */
  client: string | null;
  startedAt: string;
  endedAt: string | null;
  endReason: SessionEndReason | null;
  exitCode: number | null;
  /** The final metav1.Status sent to the agent. */
  status: Status | null;
  /** Bytes from the agent to upstream; null while open and for interrupted sessions. */
  bytesIn: number | null;
  /** Bytes from upstream to the agent; null while open and for interrupted sessions. */
  bytesOut: number | null;
  castPath: string | null;
  castSha256: string | null;
  rawPath: string | null;
  rawSha256: string | null;
  /** sha256 (hex) of each channel's exact bytes, by channel name (stdin, stdout, stderr, ...). */
  channelSha256: Record<string, string> | null;
  /** Regular files carried by the session's tar stream (kubectl cp), when there was one. */
  files: SessionFile[] | null;
}

export interface SessionStartInput {
  /** Generated when absent. */
  id?: string;
  approvalId: string | null;
  agent: { id: string; name: string };
  operation?: StreamOperation | null;
  transport: SessionTransport;
  protocol: string;
  upstreamProtocol?: string | null;
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  tty: boolean;
  /** The client's address and port (`ip:port`). */
  client?: string | null;
  /** Where the recording's files will be (so a crash leaves them findable), in the start's own transaction. */
  castPath?: string | null;
  rawPath?: string | null;
}

/**
 * How a session write is committed. By default before the call returns (one fsync each); `grouped`
 * joins the store's group commit (store.auditBatch: within its window, 50 ms, always before any
 * later durable write), for the writes at a session's end and after its upstream dial, whose loss
 * in a crash crash recovery makes good (docs/storage.md, "Durability of session rows").
 */
export interface SessionWriteOptions {
  grouped?: boolean;
}

interface SessionEndFields {
  exitCode: number | null;
  status: Status | null;
  bytesIn: number;
  bytesOut: number;
}

/**
 * How a session ended. `reason` is accepted as an alias of `endReason`, so the session layer's
 * `SessionEnd` passes as is.
 */
export type SessionEndInput = SessionEndFields & ({ endReason: SessionEndReason } | { reason: SessionEndReason });

/** One file a session carried in a tar stream (kubectl cp). */
export interface SessionFile {
  name: string;
  size: number;
  sha256: string;
}

export interface SessionRecordingInput {
  files?: SessionFile[] | null;
  castPath?: string | null;
  castSha256?: string | null;
  rawPath?: string | null;
  rawSha256?: string | null;
  channelSha256?: Record<string, string> | null;
}

export interface SessionFilter {
  approvalId?: string;
  /** Agent name or id. */
  agent?: string;
  state?: SessionState;
}

export interface SessionStore {
  /** Opens a session row. A port-forward's names no container ('') and no command ([]); every other names its container. */
  start(input: SessionStartInput, audit?: (session: Session) => AuditEventInput): Promise<Session>;
  /**
   * Ends an open session, with its audit row (`opts.audit`, built from the row as it was) in the
   * same transaction. Idempotent: the first end wins and later calls return it unchanged (their
   * audit row is still written). Unknown id: NOT_FOUND (at once, also when grouped).
   */
  end(id: string, input: SessionEndInput, opts?: SessionWriteOptions & { audit?: (session: Session) => AuditEventInput }): Promise<Session>;
  /** The upstream subprotocol, once dialed (the row is written before upstream is). Unknown id: NOT_FOUND. */
  setUpstreamProtocol(id: string, protocol: string, opts?: SessionWriteOptions): Promise<Session>;
  /** Records the recording's files and hashes (given fields only). Unknown id: NOT_FOUND. */
  setRecording(id: string, input: SessionRecordingInput, opts?: SessionWriteOptions): Promise<Session>;
  get(id: string): Promise<Session | undefined>;
  /** Newest first. */
  list(filter?: SessionFilter): Promise<Session[]>;
  /** Crash recovery at startup: ends every open session as `interrupted`; returns them. */
  markOpenAsInterrupted(): Promise<Session[]>;
  /**
   * Crash recovery, one session: ends it as `interrupted` with its audit row in one transaction
   * (all or nothing). Undefined when it is unknown or already ended.
   */
  interrupt(id: string, audit?: (session: Session) => AuditEventInput): Promise<Session | undefined>;
  /**
   * A forwarded connection of port-forward session `start.sessionId` began (written before any
   * byte is relayed). INVALID_FIELD when the session is unknown or not a port-forward (`sessionId`),
   * or its `seq` was started already (`seq`).
   */
  connectionStarted(start: ForwardedConnectionStart): Promise<void>;
  /**
   * Ends a started connection. Idempotent like `end`: the first end wins, later calls change
   * nothing. Unknown session or seq: NOT_FOUND. A refused connection is started and ended at once.
   * `audit`, when given, is appended in the same transaction (not when the connection is unknown).
   */
  connectionEnded(sessionId: string, seq: number, end: ForwardedConnectionEnd, audit?: AuditEventInput): Promise<void>;
  /** The session's forwarded connections in `seq` order ([] for any other session). */
  listConnections(sessionId: string): Promise<ForwardedConnection[]>;
}

/** The parts a cross-check reads together (audit verify: the chain against the tables it records). */
export interface StoreTables {
  audit: AuditLog;
  approvals: ApprovalStore;
  sessions: SessionStore;
}

/** Runs `read` over one consistent snapshot of the tables, and ends the snapshot when it settles. */
export type ReadSnapshot = <T>(read: (tables: StoreTables) => Promise<T>) => Promise<T>;
