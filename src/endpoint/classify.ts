// One decision path for every request on the Kubernetes endpoint, REST or upgrade: authenticate
// the agent, canonicalise the request, ask the policy. kubectl's WebSocket attempt and its SPDY
// retry therefore always get the same answer.
import type { IncomingMessage } from 'node:http';
import { parseKubeRequest } from '../model/parse-request.js';
import type { KubeRequest, PolicyDecision, Principal } from '../model/request.js';
import type { Status } from '../protocol/status.js';
import * as refusals from './refusals.js';
import { hasImpersonation } from '../upstream/headers.js';
import type { AgentAuthenticator, AuditDecision, FailureClass, PolicyDecider } from './ports.js';

export type Classification =
  | { outcome: 'forward'; principal: Principal; request: KubeRequest; decision: PolicyDecision }
  /** Needs an approval: the endpoint looks for one, or holds the request while one is decided. */
  | { outcome: 'approval'; principal: Principal; request: KubeRequest; decision: PolicyDecision }
  | {
      outcome: 'refuse';
      status: Status;
      audit: { decision: AuditDecision; rule: string; policyHash: string | null };
      principal: Principal | null;
      request: KubeRequest | null;
      /** Refused before any policy: cheap for the client, so its audit row is rate-limited. */
      failure?: FailureClass;
    };

export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

export async function classify(req: IncomingMessage, auth: AgentAuthenticator, policy: PolicyDecider): Promise<Classification> {
  const token = bearerToken(req);
  const principal = token === undefined ? undefined : await auth.authenticateAgent(token);
  if (!principal) {
    return {
      outcome: 'refuse',
      status: refusals.unauthenticated(token !== undefined),
      audit: { decision: 'deny', rule: 'authentication', policyHash: null },
      principal: null,
      request: null,
      failure: 'unauthenticated',
    };
  }
  const parsed = parseKubeRequest(req.method ?? 'GET', req.url ?? '/');
  if (!parsed.ok) {
    return {
      outcome: 'refuse',
      status: refusals.unclassifiable(parsed),
      audit: { decision: 'deny', rule: `unclassifiable:${parsed.reason}`, policyHash: null },
      principal,
      request: null,
      failure: 'malformed',
    };
  }
  const request = parsed.request;
  const decision = policy.decide(request, { principal, impersonation: hasImpersonation(req.headers) });
  if (decision.action === 'allow') return { outcome: 'forward', principal, request, decision };
  if (decision.action === 'approval') return { outcome: 'approval', principal, request, decision };
  return {
    outcome: 'refuse',
    status: refusals.policyDenied(request, principal, decision),
    audit: { decision: decision.action, rule: decision.rule, policyHash: decision.policyHash },
    principal,
    request,
  };
}
