// The canonical shape of one Kubernetes API request, and what the policy decides about it.
// Everything downstream (policy, approvals, audit) works on this, never on the raw URL.

import type { PolicyAction, ResourceVerb, StreamOperation } from './vocabulary.js';

export type { PolicyAction, ResourceVerb, StreamOperation } from './vocabulary.js';

export interface ResourceRequest {
  kind: 'resource';
  /** HTTP method as received (GET, POST, ...) */
  method: string;
  /** The canonical path, without query. */
  path: string;
  verb: ResourceVerb;
  /** '' for the core group */
  apiGroup: string;
  apiVersion: string;
  /** plural resource name, e.g. `pods` */
  resource: string;
  /** '' when none, e.g. `exec`, `log`, `status`, `proxy`, `ephemeralcontainers` */
  subresource: string;
  /** '' for cluster-scoped resources and for lists across all namespaces */
  namespace: string;
  /** '' for collections */
  name: string;
  /** For `.../proxy/REST`: the path after `proxy`, '' otherwise. */
  proxyPath: string;
  /** Set for exec, attach and portforward. */
  stream?: StreamOperation;
  query: URLSearchParams;
}

export interface NonResourceRequest {
  kind: 'nonResource';
  method: string;
  path: string;
  /** get for GET/HEAD, otherwise the lower-cased method (as the API server's RequestInfo does). */
  verb: string;
  query: URLSearchParams;
}

export type KubeRequest = ResourceRequest | NonResourceRequest;

/** Why a path was refused before anything was forwarded. */
export interface ParseFailure {
  ok: false;
  /** Stable reason code, e.g. `encoded-slash`, `dot-segment`, `double-slash`, `unknown-shape`. */
  reason: string;
  message: string;
  /** The query parameter at fault, when one is (`stdin`, `watch`, `ports`...). */
  parameter?: string;
}

export type ParseResult = { ok: true; request: KubeRequest } | ParseFailure;

export interface PolicyDecision {
  action: PolicyAction;
  /** Name of the rule that decided (or `default`). */
  rule: string;
  /** sha256 (hex) of the policy file's bytes that decided. */
  policyHash: string;
  /** Human-readable reason, shown to the client on refusal. */
  reason: string;
  /** For `approval`: the rule approves by itself for this long (recorded as `policy:<rule>@<hash>`). */
  autoApprove?: { ttlSeconds: number; maxSessions?: number };
}

/** Who is asking: the agent identity the bastion authenticated (never client-claimed). */
export interface Principal {
  kind: 'agent';
  id: string;
  name: string;
}
