// Which client headers may travel upstream: an allow-list of what the Kubernetes API reads on a
// REST request. Everything else stays at the bastion: credentials and identity claims (the bastion
// authenticates the agent itself and speaks to the cluster with its own credentials), forwarding
// and override headers a front proxy or the API server might believe (`X-Forwarded-*`,
// `X-Original-URL`, `X-HTTP-Method-Override`), `Expect`, and anything a client invents.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * The client headers a REST request keeps upstream, each with why (what kubectl / client-go send,
 * and what kube-apiserver reads). Not on the list, on purpose:
 * - `Authorization`, `Cookie`, `Impersonate-*`, `X-Remote-*`: identity; the bastion sets its own.
 * - `Audit-ID`: kube-apiserver takes a client's Audit-ID as the audit event's ID; an agent could
 *   make its events collide with others'. The join with the bastion's record is the
 *   `Impersonate-Extra-` keys instead.
 * - `Connection`, `Upgrade`, `Transfer-Encoding`, `TE`, `Keep-Alive`, `Host`, `Expect`: per
 *   connection; Node sets its own towards upstream.
 * - `Sec-WebSocket-*`, `X-Stream-Protocol-Version`: only upgrades carry them, and upgrades never
 *   take this path: the stream code (upstream/executor) sets its own when it dials.
 * - `If-Match`, `If-None-Match`, `Cache-Control`, `Accept-Language`: the API server ignores them
 *   (concurrency is `metadata.resourceVersion` in the body).
 */
export const FORWARDED_REQUEST_HEADERS: ReadonlyMap<string, string> = new Map([
  ['accept', 'content negotiation: JSON, protobuf, Table (`as=Table;g=meta.k8s.io;v=v1`), watch streams'],
  ['accept-encoding', 'gzip responses (client-go sends `gzip`); the response is relayed as it comes'],
  ['content-type', 'the body media type, and the patch type (json-patch, merge-patch, strategic-merge-patch, apply-patch)'],
  ['content-encoding', 'a compressed request body (the body hash an approval binds covers these bytes)'],
  ['content-length', 'a streamed body; a body read whole first gets the proxy’s own length'],
  ['user-agent', 'kubectl/client-go version, shown in the cluster’s audit log (the bastion records it as a hint too)'],
  ['kubectl-command', 'kubectl 1.22+: the command that sent the request (a hint)'],
  ['kubectl-session', 'kubectl 1.22+: one id per kubectl invocation (a hint)'],
]);

/** True for headers that claim an identity or carry a credential. */
export function isIdentityHeader(name: string): boolean {
  const n = name.toLowerCase();
  return n === 'authorization' || n === 'cookie' || n.startsWith('impersonate-') || n.startsWith('x-remote-');
}

/** True if the client tried to impersonate (the policy denies it; the headers never pass anyway). */
export function hasImpersonation(headers: IncomingHttpHeaders): boolean {
  return Object.keys(headers).some((n) => n.toLowerCase().startsWith('impersonate-'));
}

/**
 * The client's headers that are on the allow-list (and not named by its Connection header, which
 * makes them hop-by-hop), ready to receive the upstream credentials.
 */
export function forwardableHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  // Node gives header names in lower case; a request's own headers are looked up by the short
  // allow-list, not walked (this runs per request).
  const named = headers.connection === undefined ? undefined : new Set(headers.connection.split(',').map((t) => t.trim().toLowerCase()));
  const out: OutgoingHttpHeaders = {};
  for (const name of FORWARDED_REQUEST_HEADERS.keys()) {
    const value = headers[name];
    if (value === undefined || named?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

export interface UpstreamIdentity {
  /** Impersonate the agent upstream, so the cluster's audit log names it. */
  user: string;
  extra: Record<string, string>;
}

/**
 * The `Impersonate-Extra-` keys the bastion sets: the cluster's audit log then carries the agent,
 * the approval and the session of each request, joining it to the bastion's own record.
 */
export const IMPERSONATE_EXTRA = {
  agentId: 'kube-bastion.io/agent-id',
  approvalId: 'kube-bastion.io/approval-id',
  sessionId: 'kube-bastion.io/session-id',
} as const;

/** What a request runs under, beyond the agent: named upstream when impersonating. */
export interface RequestIds {
  approvalId?: string | null;
  sessionId?: string | null;
}

/** Impersonation headers the bastion itself sets (Impersonate-Extra keys are percent-encoded). */
export function impersonationHeaders(identity: UpstreamIdentity, ids: RequestIds = {}): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { 'impersonate-user': identity.user };
  const extra: Record<string, string> = {
    ...identity.extra,
    ...(ids.approvalId ? { [IMPERSONATE_EXTRA.approvalId]: ids.approvalId } : {}),
    ...(ids.sessionId ? { [IMPERSONATE_EXTRA.sessionId]: ids.sessionId } : {}),
  };
  for (const [key, value] of Object.entries(extra)) out[`impersonate-extra-${encodeURIComponent(key.toLowerCase())}`] = value;
  return out;
}
