// Which client headers may travel upstream. Credentials and identity claims never do: the
// bastion authenticates the agent itself and speaks to the cluster with its own credentials.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Hop-by-hop headers (RFC 9110 §7.6.1) are per connection, never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'host']);

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
 * The client's headers minus identity, credential and hop-by-hop headers (and any header the
 * Connection header names), ready to receive the upstream credentials.
 */
export function forwardableHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t !== ''),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    const n = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(n) || named.has(n) || isIdentityHeader(n)) continue;
    out[n] = value;
  }
  return out;
}

export interface UpstreamIdentity {
  /** Impersonate the agent upstream, so the cluster's audit log names it. */
  user: string;
  extra: Record<string, string>;
}

/** Impersonation headers the bastion itself sets (Impersonate-Extra keys are percent-encoded). */
export function impersonationHeaders(identity: UpstreamIdentity): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { 'impersonate-user': identity.user };
  for (const [key, value] of Object.entries(identity.extra)) out[`impersonate-extra-${encodeURIComponent(key.toLowerCase())}`] = value;
  return out;
}
