// What the Kubernetes endpoint needs from the rest of the bastion, as narrow interfaces, so
// routing and gating stay apart from storage, policy loading and upstream dialing.
import type { KubeRequest, PolicyDecision, Principal } from '../model/request.js';

export interface AgentAuthenticator {
  /** The agent a bearer token belongs to, or undefined for unknown or revoked tokens. */
  authenticateAgent(token: string): Promise<Principal | undefined>;
}

export interface PolicyDecider {
  decide(req: KubeRequest, ctx: { principal: Principal; impersonation: boolean }): PolicyDecision;
}

export type AuditDecision = 'allow' | 'approval' | 'deny' | 'error';

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
}

export interface RequestAuditor {
  record(row: RequestAuditRecord): Promise<void>;
}
