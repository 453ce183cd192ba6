// Every metav1.Status the bastion itself sends a Kubernetes client, worded the way kube-apiserver
// words its own ("<subject> is forbidden: ..."), with machine-readable causes naming the rule, the
// policy version or the approval. Other modules return typed outcomes; only this one turns them
// into Statuses, so a reviewer finds every message the agent can see in one place.
import { statusFor, type BastionError } from '../errors/index.js';
import type { Approval } from '../model/approval.js';
import type { KubeRequest, ParseFailure, PolicyDecision, Principal } from '../model/request.js';
import type { EndReason } from '../model/session.js';
import type { Status } from '../protocol/status.js';
import type { HoldRefusal } from '../approvals/holds.js';
import type { LeaseEnd } from '../approvals/lease.js';

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
  return `${req.verb} ${resource}${group}${req.namespace ? ` in namespace "${req.namespace}"` : ''}`;
}

export function unauthenticated(tokenGiven: boolean): Status {
  return statusFor(
    'UNAUTHENTICATED',
    tokenGiven ? 'Unauthorized: unknown or revoked agent token' : 'Unauthorized: kube-bastion needs a bearer token (use the kubeconfig the bastion issued)',
  );
}

export function unclassifiable(failure: ParseFailure): Status {
  const message = `kube-bastion refused a request it cannot classify (${failure.reason}): ${failure.message}`;
  // A bad query parameter is named the way the API server names an invalid field.
  if (failure.parameter === undefined) return statusFor('UNCLASSIFIABLE', message);
  return statusFor('UNCLASSIFIABLE', message, { causes: [{ reason: 'FieldValueInvalid', field: failure.parameter, message: failure.message }] });
}

export function policyDenied(req: KubeRequest, principal: Principal, decision: PolicyDecision): Status {
  const policy = `policy sha256:${decision.policyHash.slice(0, 12)}`;
  const verdict = `kube-bastion rule "${decision.rule}" denies agent "${principal.name}" to ${action(req)}`;
  const why = decision.reason ? `: ${decision.reason}` : '';
  return statusFor('POLICY_DENIED', `${subject(req)} is forbidden: ${verdict}${why} [${policy}]`, {
    ...(req.kind === 'resource' && req.name ? { name: req.name } : {}),
    ...(req.kind === 'resource' ? { kind: req.resource, group: req.apiGroup } : {}),
    causes: [
      { reason: 'KubeBastionDenied', message: decision.rule },
      { reason: 'KubeBastionPolicy', message: decision.policyHash },
    ],
  });
}

/** A held request that did not get an approval: denied, not decided in time, over the limit, or gone. */
export function holdRefused(req: KubeRequest, refusal: HoldRefusal): Status {
  const who = subject(req);
  switch (refusal.reason) {
    case 'denied': {
      const a = refusal.approval;
      return statusFor('APPROVAL_REQUIRED', `${who} is forbidden: kube-bastion approval ${a.id} was denied by ${a.decidedBy ?? 'an approver'}${a.reason ? `: ${a.reason}` : ''}`, {
        causes: [{ reason: 'KubeBastionApprovalDenied', message: a.id }],
      });
    }
    case 'expired': {
      const a = refusal.approval;
      return statusFor('APPROVAL_REQUIRED', `${who} is forbidden: kube-bastion approval ${a.id} was not decided in time (the request was held until ${a.expiresAt ?? 'its deadline'})`, {
        causes: [{ reason: 'KubeBastionApprovalExpired', message: a.id }],
      });
    }
    case 'limit':
      return statusFor('TOO_MANY_REQUESTS', `${who} is forbidden: agent "${refusal.agent}" already has ${refusal.pending} pending approvals (limit ${refusal.limit})`);
    case 'gone':
      return clientGone();
  }
}

/** For the audit row of a client that left before it was answered (nobody reads it). */
export function clientGone(): Status {
  return statusFor('CONNECTION_CLOSED', 'client went away');
}

export function noSessionsLeft(pod: string, approvalId: string): Status {
  return statusFor('APPROVAL_REQUIRED', `pods "${pod}" is forbidden: kube-bastion approval ${approvalId} has no sessions left`);
}

/** A body too large to read whole before an approval (kube-apiserver's wording, then why). */
export function bodyTooLarge(limit: number): Status {
  return statusFor(
    'BODY_TOO_LARGE',
    `Request entity too large: limit is ${limit} (kube-bastion reads the body of a request that needs an approval whole, to bind the approval to its exact bytes)`,
  );
}

/**
 * A held body with a duplicate object key: the API server merges both values while an approver
 * would be shown one, so it is refused before any approval is asked for (kube-apiserver's strict
 * field validation words it "duplicate field").
 */
export function duplicateJsonKey(req: KubeRequest, path: string): Status {
  return statusFor(
    'BAD_REQUEST',
    `${subject(req)} is forbidden: kube-bastion refuses a body with a duplicate field "${path}": the API server would merge both values, an approver would be shown one; send each field once`,
    { causes: [{ reason: 'FieldValueDuplicate', message: `duplicate field "${path}"`, field: path }] },
  );
}

/**
 * A REST request whose approval has no use left for it: a single-use approval another request
 * (a joined clone) used first, or one used, revoked or expired between the check and the count.
 * The request is not held again: running the command again asks for a new approval.
 */
export function approvalUsedUp(req: KubeRequest, approval: Approval): Status {
  const uses = approval.scope.kind === 'rest' && approval.scope.maxUses !== undefined ? ` (${approval.scope.maxUses} ${approval.scope.maxUses === 1 ? 'use' : 'uses'})` : '';
  return statusFor(
    'APPROVAL_REQUIRED',
    `${subject(req)} is forbidden: kube-bastion approval ${approval.id}${uses} admits no further request: it was used by another request, or ended; send the request again to ask for a new approval`,
    { causes: [{ reason: 'KubeBastionApprovalUsed', message: approval.id }] },
  );
}

/**
 * Why a live (or starting) session was ended by the bastion, naming the approval. `detail` adds
 * what the reason alone does not say: who revoked and why, what failed.
 */
export function sessionCut(approval: Approval | null, pod: string, reason: EndReason, detail?: string): Status {
  const id = approval?.id ?? 'none';
  const more = detail ? `: ${detail}` : '';
  const text: Record<EndReason, string> = {
    expired: `kube-bastion ended the session: approval ${id} expired at ${approval?.expiresAt ?? 'its deadline'}`,
    revoked: `kube-bastion ended the session: approval ${id} was revoked${detail ? ` ${detail}` : ''}`,
    'agent-revoked': `kube-bastion ended the session under approval ${id}: the agent was revoked${detail ? ` ${detail}` : ''}`,
    'recording-failed': `kube-bastion ended the session under approval ${id}: the recording could not be written${detail ? ` (${detail})` : ''}`,
    'setup-timeout': `kube-bastion ended the session under approval ${id}: ${detail ?? 'the client did not open its streams in time'}`,
    shutdown: `kube-bastion ended the session under approval ${id}: the bastion is shutting down`,
    'client-closed': 'client closed the session',
    'upstream-closed': `the upstream API server closed the session${more}`,
    'upstream-refused': `the upstream API server refused the session${more}`,
    error: `kube-bastion ended the session under approval ${id}${more}`,
    completed: 'completed',
  };
  return statusFor('FORBIDDEN', `pods "${pod}" is forbidden: ${text[reason]}`, {
    name: pod,
    kind: 'pods',
    causes: [{ reason: 'KubeBastionSessionCut', message: reason }, ...(approval ? [{ reason: 'KubeBastionApproval', message: approval.id }] : [])],
  });
}

/** A REST exchange (watch, `logs -f`, proxy) ended because what admitted it ended. */
export function restCut(req: KubeRequest, approval: Approval | null, end: LeaseEnd): Status {
  const who = ` by ${end.by}${end.why ? ` (${end.why})` : ''}`;
  const id = approval?.id ?? 'none';
  const what: Record<LeaseEnd['reason'], string> = {
    'agent-revoked': `the agent was revoked${who}`,
    expired: `approval ${id} expired at ${approval?.expiresAt ?? 'its deadline'}`,
    revoked: `approval ${id} was revoked${who}`,
    error: end.why ?? 'kube-bastion cannot read its database',
  };
  return statusFor('FORBIDDEN', `${subject(req)} is forbidden: kube-bastion ended the response: ${what[end.reason]}`, {
    causes: [{ reason: 'KubeBastionCut', message: end.reason }, ...(approval ? [{ reason: 'KubeBastionApproval', message: approval.id }] : [])],
  });
}

/** The last line of a JSON watch stream that a cut ends: an ERROR event carrying the Status (client-go prints it). */
export function watchErrorEvent(status: Status): Buffer {
  return Buffer.from(`${JSON.stringify({ type: 'ERROR', object: status })}\n`);
}

export function shuttingDown(): Status {
  return statusFor('SHUTTING_DOWN', 'kube-bastion is shutting down');
}

/** The audit log cannot commit rows: nothing is forwarded that it could not record. */
export function auditUnavailable(): Status {
  return statusFor('AUDIT_UNAVAILABLE', 'kube-bastion cannot write its audit log; requests are refused until it can');
}

/** Upstream could not be reached (network, TLS, credentials): the error says how. */
export function upstreamUnavailable(err: BastionError): Status {
  return statusFor('UPSTREAM_UNAVAILABLE', err.message);
}

/** Upstream answered without a Status body (an API server always sends one; a proxy in between may not). */
export function upstreamAnswered(httpStatus: number, what: string): Status {
  return statusFor('UPSTREAM_UNAVAILABLE', `upstream answered ${httpStatus} for ${what}`);
}

export function internalError(): Status {
  return statusFor('INTERNAL', 'kube-bastion internal error');
}

/** exec/attach/portforward without an upgrade: what kube-apiserver answers too. */
export function upgradeRequired(): Status {
  return statusFor('UPGRADE_REQUIRED', 'Upgrade request required');
}

export function notAStreamUpgrade(): Status {
  return statusFor('BAD_STREAM_REQUEST', 'kube-bastion upgrades only exec, attach and portforward requests');
}

/** The error-stream text for a forwarded connection to a port the approval does not name (kubectl prints it and ends). */
export function portNotApproved(approval: Approval, pod: string, port: number): string {
  const ports = approval.scope.kind === 'stream' && approval.scope.ports ? approval.scope.ports.join(', ') : 'none';
  return `kube-bastion refused the connection to port ${port} of pod ${pod}: approval ${approval.id} allows port-forward to port(s) ${ports} only`;
}

/** What the agent asked cannot be written down as an approval (an empty program, an argv too long to hold): refused, never held. */
export function notApprovable(req: KubeRequest, why: string): Status {
  return statusFor('BAD_REQUEST', `${subject(req)} is forbidden: kube-bastion cannot put this request up for approval: ${why}`);
}

export function noCommand(): Status {
  return statusFor('BAD_STREAM_REQUEST', 'you must specify at least one command for the container');
}

/** The container named (or defaulted) does not exist: kube-apiserver's wording. */
export function containerRefused(pod: string, refusal: { reason: 'unknown-container'; container: string } | { reason: 'no-containers' }): Status {
  return refusal.reason === 'unknown-container'
    ? statusFor('BAD_REQUEST', `container ${refusal.container} is not valid for pod ${pod}`)
    : statusFor('BAD_REQUEST', `pod ${pod} has no containers`);
}
