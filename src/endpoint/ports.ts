// What the Kubernetes endpoint needs from the rest of the bastion, as narrow interfaces, so
// routing and gating stay apart from storage, policy loading and upstream dialing.
import type { KubeRequest, PolicyDecision, Principal } from '../model/request.js';
import type { FailureAggregate } from './failure-audit.js';

export interface AgentAuthenticator {
  /** The agent a bearer token belongs to, or undefined for unknown or revoked tokens. */
  authenticateAgent(token: string): Promise<Principal | undefined>;
}

export interface PolicyDecider {
  decide(req: KubeRequest, ctx: { principal: Principal; impersonation: boolean }): PolicyDecision;
}

export type AuditDecision = 'allow' | 'approval' | 'deny' | 'error';

/** Why a request is a cheap failure: no valid token, or a request the parser refused. */
export type FailureClass = 'unauthenticated' | 'malformed';

/** One row of the audit log for one request on the Kubernetes endpoint. */
export interface RequestAuditRecord {
  time: string;
  agent: { id: string; name: string } | null;
  source: string;
  method: string;
  path: string;
  request: KubeRequest | null;
  decision: AuditDecision;
  rule: string;
  policyHash: string | null;
  approvalId: string | null;
  /** The stream session this request became, if any. */
  sessionId: string | null;
  /** How it ended beyond the status code: a session's end reason, or why it was refused. */
  outcome: string | null;
  /** What the outcome alone does not say. */
  outcomeDetail: string | null;
  status: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  /** Client-controlled headers, kept as hints only (never trusted for identity). */
  hints: { kubectlCommand?: string; kubectlSession?: string; userAgent?: string };
  /** Set for unauthenticated and malformed requests: rate-limited, their fields cut shorter. */
  failure?: FailureClass;
}

export interface RequestAuditor {
  /** Commits the row (and every row accepted before it) durably. */
  record(row: RequestAuditRecord): Promise<void>;
  /**
   * An allowed read's row, once its response is complete: accepted in order and group-committed
   * within the store's durability window (docs/storage.md); settles when committed.
   */
  recordBatched(row: RequestAuditRecord): Promise<void>;
  /** False while the audit log cannot commit: the endpoint then forwards nothing (fail closed). */
  accepting(): boolean;
  /** One row for the failures of one address over one interval (see failure-audit.ts). */
  recordAggregate(aggregate: FailureAggregate): Promise<void>;
}
