// One decision path for every request on the Kubernetes endpoint, REST or upgrade: authenticate
// the agent, canonicalise the request, ask the policy. kubectl's WebSocket attempt and its SPDY
// retry therefore always get the same answer.
import type { IncomingMessage } from 'node:http';
import { parseKubeRequest } from '../model/parse-request.js';
import type { KubeRequest, PolicyDecision, Principal } from '../model/request.js';
import { apiStatus, type Status } from '../protocol/status.js';
import { hasImpersonation } from '../upstream/headers.js';
import type { AgentAuthenticator, AuditDecision, PolicyDecider } from './ports.js';

export type Classification =
  | { outcome: 'forward'; principal: Principal; request: KubeRequest; decision: PolicyDecision }
  /** Needs an approval: the gateway looks for one, or holds the request while one is decided. */
  | { outcome: 'approval'; principal: Principal; request: KubeRequest; decision: PolicyDecision }
  | {
      outcome: 'refuse';
      status: Status;
      audit: { decision: AuditDecision; rule: string; policyHash: string | null };
      principal: Principal | null;
      request: KubeRequest | null;
    };

export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** How a refused request is named in a Status message, the way kube-apiserver words it. */
export function subject(req: KubeRequest): string {
  if (req.kind === 'nonResource') return `the path "${req.path}"`;
  const what = req.subresource ? `${req.resource}/${req.subresource}` : req.resource;
  return req.name ? `${req.resource} "${req.name}"` : what;
}

function action(req: KubeRequest): string {
  if (req.kind === 'nonResource') return `${req.verb} ${req.path}`;
  if (req.stream) return `${req.stream} into pod "${req.name}" in namespace "${req.namespace}"`;
  const resource = req.subresource ? `${req.resource}/${req.subresource}` : req.resource;
  const group = req.apiGroup ? `.${req.apiGroup}` : '';
  return `${req.stream ?? req.verb} ${resource}${group}${req.namespace ? ` in namespace "${req.namespace}"` : ''}`;
}

function refusalStatus(req: KubeRequest, principal: Principal, decision: PolicyDecision): Status {
  const policy = `policy sha256:${decision.policyHash.slice(0, 12)}`;
  const verdict = `kube-bastion rule "${decision.rule}" denies agent "${principal.name}" to ${action(req)}`;
  const why = decision.reason ? `: ${decision.reason}` : '';
  const message = `${subject(req)} is forbidden: ${verdict}${why} [${policy}]`;
  return apiStatus(403, 'Forbidden', message, {
    ...(req.kind === 'resource' && req.name ? { name: req.name } : {}),
    ...(req.kind === 'resource' ? { kind: req.resource, group: req.apiGroup } : {}),
    causes: [
      { reason: 'KubeBastionDenied', message: decision.rule },
      { reason: 'KubeBastionPolicy', message: decision.policyHash },
    ],
  });
}

export async function classify(req: IncomingMessage, auth: AgentAuthenticator, policy: PolicyDecider): Promise<Classification> {
  const token = bearerToken(req);
  const principal = token === undefined ? undefined : await auth.authenticateAgent(token);
  if (!principal) {
    return {
      outcome: 'refuse',
      status: apiStatus(401, 'Unauthorized', token === undefined ? 'Unauthorized: kube-bastion needs a bearer token (use the kubeconfig the bastion issued)' : 'Unauthorized: unknown or revoked agent token'),
      audit: { decision: 'deny', rule: 'authentication', policyHash: null },
      principal: null,
      request: null,
    };
  }
  const parsed = parseKubeRequest(req.method ?? 'GET', req.url ?? '/');
  if (!parsed.ok) {
    return {
      outcome: 'refuse',
      status: apiStatus(400, 'BadRequest', `kube-bastion refused a request it cannot classify (${parsed.reason}): ${parsed.message}`),
      audit: { decision: 'deny', rule: `unclassifiable:${parsed.reason}`, policyHash: null },
      principal,
      request: null,
    };
  }
  const request = parsed.request;
  const decision = policy.decide(request, { principal, impersonation: hasImpersonation(req.headers) });
  if (decision.action === 'allow') return { outcome: 'forward', principal, request, decision };
  if (decision.action === 'approval') return { outcome: 'approval', principal, request, decision };
  return {
    outcome: 'refuse',
    status: refusalStatus(request, principal, decision),
    audit: { decision: decision.action, rule: decision.rule, policyHash: decision.policyHash },
    principal,
    request,
  };
}
