// The closed word lists of the bastion, each declared once with the type derived from it. Policy,
// store, API schemas, CLI and web UI (through /ui/vocabulary.js) all take them from here.
import { TRANSPORTS, type TransportKind } from '../protocol/streams.js';

/** Streaming operations: one operation whether it arrives as a WebSocket GET or an SPDY POST. */
export const STREAM_OPERATIONS = ['exec', 'attach', 'portforward'] as const;
export type StreamOperation = (typeof STREAM_OPERATIONS)[number];

/**
 * Boolean query parameters of the API server's options types (ListOptions, PodExecOptions,
 * PodAttachOptions, PodLogOptions, PatchOptions, DeleteOptions). The request parser accepts only the
 * spellings in protocol/query.ts for them; `watch` changes the verb and has its own refusal reason.
 */
export const BOOLEAN_QUERY_PARAMS = [
  'watch',
  'allowWatchBookmarks',
  'sendInitialEvents',
  'stdin',
  'stdout',
  'stderr',
  'tty',
  'follow',
  'previous',
  'timestamps',
  'insecureSkipTLSVerifyBackend',
  'force',
  'orphanDependents',
  'ignoreStoreReadErrorWithClusterBreakingPotential',
] as const;

/** Query parameters whose values legitimately repeat (PodExecOptions.command, PodPortForwardOptions.ports, dryRun). */
export const REPEATABLE_QUERY_PARAMS = ['command', 'ports', 'dryRun'] as const;

/** Verbs of resource requests (exec, attach and portforward are `create`). */
export const RESOURCE_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'] as const;
export type ResourceVerb = (typeof RESOURCE_VERBS)[number];

/** The verbs that change nothing: an allowed one's audit row may be group-committed (docs/storage.md). */
export const READ_VERBS = ['get', 'list', 'watch'] as const satisfies readonly ResourceVerb[];

/** What a policy rule decides for a request. */
export const POLICY_ACTIONS = ['allow', 'approval', 'deny'] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];

/** An audit row's decision: the policy's, or `error` when the request failed before or after it. */
export const AUDIT_DECISIONS = [...POLICY_ACTIONS, 'error'] as const;
export type AuditDecision = (typeof AUDIT_DECISIONS)[number];

/**
 * pending -> approved | denied | expired | abandoned; approved -> revoked | expired. `abandoned`:
 * every client waiting on the pending request went away and none came back within the grace.
 */
export const APPROVAL_STATES = ['pending', 'approved', 'denied', 'revoked', 'expired', 'abandoned'] as const;
export type ApprovalState = (typeof APPROVAL_STATES)[number];

/**
 * The decisions an approval records, each an append-only entry of its history: a direct grant, an
 * approval of a held request (by a person, or by a policy rule: `auto-approved`), a denial, a
 * revocation. Expiry is not a decision (nobody made it); the state says it.
 */
export const DECISION_KINDS = ['granted', 'approved', 'auto-approved', 'denied', 'revoked'] as const;
export type DecisionKind = (typeof DECISION_KINDS)[number];

/**
 * How far an approver widens a held REST request's approval: `request` covers exactly the request
 * that was held (method, path, query, body hash, media type, content encoding); `shape` covers the verb on that resource,
 * namespace and name, with any body.
 */
export const REST_APPROVAL_WIDTHS = ['request', 'shape'] as const;
export type RestApprovalWidth = (typeof REST_APPROVAL_WIDTHS)[number];

/** How much a finding of a request body's risk summary matters to an approver. */
export const RISK_LEVELS = ['high', 'notice', 'info'] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];

/** Roles of control-endpoint users. */
export const USER_ROLES = ['approver', 'reviewer', 'admin'] as const;
export type UserRole = (typeof USER_ROLES)[number];

/** The roles that decide approvals (grant, approve, deny, revoke); every role reads. */
export const DECIDER_ROLES = ['approver', 'admin'] as const satisfies readonly UserRole[];

/** asciicast versions the bastion writes and converts between. */
export const CAST_FORMATS = ['v2', 'v3'] as const;
export type CastFormat = (typeof CAST_FORMATS)[number];

/**
 * Why a live session ended. `upstream-refused`: upstream answered the exec with a refusal (RBAC, a
 * container that stopped); `upstream-closed`: the upstream connection was lost without a Status;
 * `setup-timeout`: the agent did not open its streams in time; `agent-revoked`: the agent identity
 * was revoked.
 */
export const END_REASONS = [
  'completed',
  'expired',
  'revoked',
  'agent-revoked',
  'client-closed',
  'upstream-closed',
  'upstream-refused',
  'setup-timeout',
  'error',
  'shutdown',
  'recording-failed',
] as const;
export type EndReason = (typeof END_REASONS)[number];

/** A stored session's end reason: `interrupted` when the bastion stopped (crash) while it was open, set at the next start. */
export const SESSION_END_REASONS = [...END_REASONS, 'interrupted'] as const;
export type SessionEndReason = (typeof SESSION_END_REASONS)[number];

/** Open or ended. */
export const SESSION_STATES = ['open', 'ended'] as const;
export type SessionState = (typeof SESSION_STATES)[number];

// The transports are protocol/'s words (protocol/ imports nothing from model/).
export { TRANSPORTS, type TransportKind as Transport };

/**
 * How one forwarded connection of a port-forward session ended: `closed` (both sides finished),
 * `refused` (its port is outside the approval's ports, or invalid: never dialed upstream),
 * `failed` (upstream reported an error on the connection's error stream, e.g. nothing listens
 * there), `cut` (the bastion ended it: expiry, revocation, shutdown, a recording failure).
 */
export const FORWARD_OUTCOMES = ['closed', 'refused', 'failed', 'cut'] as const;
export type ForwardOutcome = (typeof FORWARD_OUTCOMES)[number];

/**
 * What the first bytes of a forwarded connection show it to be, when they show it plainly:
 * `http/1.x` (a request line), `redis` (RESP or an inline command), `postgresql` (a startup,
 * SSL or GSS request), `tls` (a ClientHello: encrypted, not readable), or `unrecognised` (said
 * plainly rather than guessed). Null while nothing has been sent.
 */
export const FORWARD_PROTOCOLS = ['http/1.x', 'redis', 'postgresql', 'tls', 'unrecognised'] as const;
export type ForwardProtocol = (typeof FORWARD_PROTOCOLS)[number];
