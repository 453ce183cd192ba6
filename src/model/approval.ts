// Approvals: a scoped, timed permission decided outside the agent. The types every part shares
// (store, service, holds, session cutoff, control API).
import type { Approval, ApprovalScope, HeldRequestInfo, RestRequestBinding } from './approval-schema.js';
import type { ResourceVerb, StreamOperation } from './request.js';
import type { ApprovalState, RestApprovalWidth, UserRole } from './vocabulary.js';

// The record and the scopes are declared once, as zod schemas (approval-schema.ts).
export type { Approval, ApprovalDecision, ApprovalScope, RestRequestBinding, RestScope, StreamScope } from './approval-schema.js';
export { APPROVAL_STATES, type ApprovalState } from './vocabulary.js';

/** Who did something to an approval. Rendered as `user:<name>`, `agent:<name>`, `policy:<rule>@<sha256>`, `system`. */
export type Actor =
  | { kind: 'user'; name: string; role: UserRole }
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

export interface ApproveOptions {
  ttlSeconds?: number;
  reason?: string;
  /** REST: requests admitted (default 1 for `request`, unlimited for `shape`). */
  uses?: number;
  /** REST: `request` (default) or `shape`. */
  scope?: RestApprovalWidth;
  /** portforward: the pod ports connections may reach (required when the request named none). */
  ports?: number[];
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
  request: HeldRequestInfo;
  /** How long the hold lasts; the pending approval expires then. */
  holdSeconds: number;
}

/** The operation an agent is attempting now, matched against approved scopes. */
export type Operation =
  | {
      kind: 'stream';
      verb: StreamOperation;
      namespace: string;
      pod: string;
      /** The resolved container; '' for portforward (it reaches the pod). */
      container: string;
      /** exec argv; [] for attach and portforward. */
      command: string[];
      /** portforward: the ports the request named (only the channel protocol's `?ports=` does); absent otherwise. */
      ports?: number[];
    }
  | {
      kind: 'rest';
      verb: ResourceVerb;
      resource: string;
      namespace: string;
      name: string;
      /** The exact request (what a request-bound scope must match); absent, only shape scopes cover it. */
      request?: RestRequestBinding;
    };

export interface ApprovalFilter {
  state?: ApprovalState;
  agent?: string;
}

export interface ApprovalEvents {
  /** Any state change (approved, denied, revoked, expired, abandoned), session count or waiter change, and what it was. */
  changed: [approval: Approval, change: ApprovalChange];
}

/** What changed an approval, as its audit row says: the event and who did it (`user:ann`, `system`). */
export interface ApprovalChange {
  event: string;
  actor: string;
}

/** An agent identity was revoked: everything it holds ends. */
export interface AgentRevocation {
  agent: { id: string; name: string };
  /** `user:<name>` of the admin who revoked it. */
  by: string;
  reason: string | null;
  at: string;
}

/**
 * The approval life cycle. Transitions: pending -> approved | denied | expired | abandoned;
 * approved -> revoked | expired. Every change is an audit event. Errors are BastionErrors:
 * NOT_FOUND (unknown id), INVALID_STATE (a transition the state does not allow, field `state`),
 * INVALID_FIELD / UNKNOWN_FIELD (invalid input, naming the field),
 * FORBIDDEN (an agent deciding, or a user approving what they requested).
 */
export interface ApprovalService {
  grant(input: GrantInput, actor: Actor): Promise<Approval>;
  /** Creates a pending approval, or joins the one already pending for the same agent and scope. */
  requestOrJoin(held: HeldRequest): Promise<{ approval: Approval; created: boolean }>;
  /**
   * `uses` and `scope` widen a held REST request's approval (see widenRestScope); giving them for a
   * stream approval is an INVALID_FIELD. `ports` names a port-forward's pod ports (replacing any the
   * request named); a port-forward left without ports, or `ports` on any other approval, is an
   * INVALID_FIELD `ports`.
   */
  approve(id: string, actor: Actor, opts?: ApproveOptions): Promise<Approval>;
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
  /**
   * Counts one forwarded REST request against maxUses, atomically: false if none are left (or the
   * approval is no longer usable), so two requests racing for a single use cannot both have it.
   */
  useForRequest(id: string): Promise<boolean>;
  /** Number of pending approvals requested by this agent (for the per-agent hold limit). */
  pendingCount(agentId: string): Promise<number>;
  /**
   * Every client waiting on pending approval `id` has gone (the holds say so): it shows
   * `nobodyWaitingSince` and, unless `someoneWaiting` (or a joining request) clears it within the
   * grace, ends `abandoned`. Undefined when it is no longer pending.
   */
  nobodyWaiting(id: string): Promise<Approval | undefined>;
  /** A client waits on pending approval `id` again. Undefined when it is no longer pending. */
  someoneWaiting(id: string): Promise<Approval | undefined>;
  /**
   * Calls `listener` on every change of approval `id` until the returned function is called. One
   * map entry per watcher (not one emitter listener each), so thousands of sessions and holds cost
   * nothing per change of an unrelated approval.
   */
  watch(id: string, listener: (approval: Approval, change: ApprovalChange) => void): () => void;
  /** Calls `listener` when agent `agentId` is revoked (see `revokeAgent`). */
  watchAgent(agentId: string, listener: (revocation: AgentRevocation) => void): () => void;
  /**
   * The agent was revoked (the caller has marked it so in the agent store): revokes its approved
   * approvals and denies its pending ones, recording `actor` and `reason`, then tells the agent's
   * watchers, so every session and request under it ends at once.
   */
  agentRevoked(agent: { id: string; name: string }, actor: Actor, reason?: string): Promise<Approval[]>;
  on<E extends keyof ApprovalEvents>(event: E, listener: (...args: ApprovalEvents[E]) => void): this;
  off<E extends keyof ApprovalEvents>(event: E, listener: (...args: ApprovalEvents[E]) => void): this;
  /** Stops timers. */
  close(): void;
}
