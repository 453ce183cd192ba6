// Approvals: a scoped, timed permission decided outside the agent. The types every part shares
// (store, service, gateway holds, relay cutoff, control API).
import type { ResourceVerb, StreamOperation } from './request.js';
import type { ApprovalState } from './vocabulary.js';

export { APPROVAL_STATES, type ApprovalState } from './vocabulary.js';

/** exec/attach/portforward into one container of one pod. */
export interface StreamScope {
  kind: 'stream';
  namespace: string;
  pod: string;
  /** The resolved container name (never empty: resolution happens before any scope check). */
  container: string;
  verbs: StreamOperation[];
  /** Optional allow-list of exact exec argv; absent = any command. */
  commands?: string[][];
  /** Optional cap on sessions started under this approval; absent = unlimited until expiry. */
  maxSessions?: number;
}

/** One REST call shape: verb on resource (optionally group-qualified, `deployments.apps`, or with subresource `pods/ephemeralcontainers`) in a namespace, by name. */
export interface RestScope {
  kind: 'rest';
  verb: ResourceVerb;
  resource: string;
  /** '' for cluster-scoped resources */
  namespace: string;
  /** '' for collection verbs (list, watch, deletecollection, create) */
  name: string;
}

export type ApprovalScope = StreamScope | RestScope;

/** Who did something to an approval. Rendered as `user:<name>`, `agent:<name>`, `policy:<rule>@<sha256>`, `system`. */
export type Actor =
  | { kind: 'user'; name: string; role: 'approver' | 'reviewer' | 'admin' }
  | { kind: 'agent'; name: string }
  | { kind: 'policy'; rule: string; policyHash: string }
  | { kind: 'system'; reason: string };

export function actorId(actor: Actor): string {
  switch (actor.kind) {
    case 'user':
      return `user:${actor.name}`;
    case 'agent':
      return `agent:${actor.name}`;
    case 'policy':
      return `policy:${actor.rule}@${actor.policyHash}`;
    case 'system':
      return 'system';
  }
}

export interface Approval {
  /** `apr_` + random */
  id: string;
  state: ApprovalState;
  /** The agent's name (as given to `agent add`). */
  agent: string;
  agentId: string;
  scope: ApprovalScope;
  /** `agent:<name>` for a held request, `user:<name>` for a direct grant. */
  requestedBy: string;
  /** `user:<name>` or `policy:<rule>@<sha256>`; null while pending. */
  decidedBy: string | null;
  /** The grant's reason, or the denial/revocation reason. */
  reason: string | null;
  /** Validity once approved, in seconds. */
  ttlSeconds: number;
  /** ISO 8601 UTC with milliseconds. */
  createdAt: string;
  decidedAt: string | null;
  /** approved: decision + ttl. pending: when the hold gives up. null for denied. */
  expiresAt: string | null;
  revokedAt: string | null;
  /** Sessions started under this approval (stream scopes). */
  sessionsStarted: number;
  /** For held requests: what the agent asked (method and path), for the approver's eyes. */
  request: { method: string; path: string; command?: string[] } | null;
}

export interface GrantInput {
  agent: string;
  scope: ApprovalScope;
  ttlSeconds: number;
  reason: string;
}

/** What a held request asks for; the service creates a pending approval or joins one. */
export interface HeldRequest {
  agent: { id: string; name: string };
  scope: ApprovalScope;
  request: { method: string; path: string; command?: string[] };
  /** How long the hold lasts; the pending approval expires then. */
  holdSeconds: number;
}

/** The operation an agent is attempting now, matched against approved scopes. */
export type Operation =
  | { kind: 'stream'; verb: StreamOperation; namespace: string; pod: string; container: string; command: string[] }
  | { kind: 'rest'; verb: ResourceVerb; resource: string; namespace: string; name: string };

export interface ApprovalFilter {
  state?: ApprovalState;
  agent?: string;
}

export interface ApprovalEvents {
  /** Any state change (approved, denied, revoked, expired) or session count change. */
  changed: [approval: Approval];
}

/**
 * The approval life cycle. Transitions: pending -> approved | denied | expired;
 * approved -> revoked | expired. Every change is an audit event. Errors are BastionErrors:
 * NOT_FOUND (unknown id), BAD_REQUEST (invalid transition or input, naming the field),
 * FORBIDDEN (an agent deciding, or a user approving what they requested).
 */
export interface ApprovalService {
  grant(input: GrantInput, actor: Actor): Promise<Approval>;
  /** Creates a pending approval, or joins the one already pending for the same agent and scope. */
  requestOrJoin(held: HeldRequest): Promise<{ approval: Approval; created: boolean }>;
  approve(id: string, actor: Actor, opts?: { ttlSeconds?: number; reason?: string }): Promise<Approval>;
  deny(id: string, actor: Actor, reason: string): Promise<Approval>;
  revoke(id: string, actor: Actor, reason?: string): Promise<Approval>;
  /** A policy rule approving on its own, recorded as `policy:<rule>@<sha256>`. */
  autoApprove(held: Omit<HeldRequest, 'holdSeconds'>, rule: string, policyHash: string, ttlSeconds: number): Promise<Approval>;
  get(id: string): Promise<Approval | undefined>;
  list(filter?: ApprovalFilter): Promise<Approval[]>;
  /** An approved, unexpired approval whose scope covers `op` for this agent (and has sessions left). */
  findUsable(agentId: string, op: Operation): Promise<Approval | undefined>;
  /** Counts a session against maxSessions; false if none are left (or the approval is no longer usable). */
  startSession(id: string): Promise<boolean>;
  /** Number of pending approvals requested by this agent (for the per-agent hold limit). */
  pendingCount(agentId: string): Promise<number>;
  on<E extends keyof ApprovalEvents>(event: E, listener: (...args: ApprovalEvents[E]) => void): this;
  off<E extends keyof ApprovalEvents>(event: E, listener: (...args: ApprovalEvents[E]) => void): this;
  /** Stops timers. */
  close(): void;
}
