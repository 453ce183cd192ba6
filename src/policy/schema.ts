// The policy document: its TypeScript shape and the closed vocabularies the validator checks against.
// The YAML form is documented in docs/policy.md; validate.ts turns text into this shape.
import type { PolicyAction, StreamOperation } from '../model/request.js';
import { RESOURCE_VERBS, type CastFormat } from '../model/vocabulary.js';

export const POLICY_API_VERSION = 'kube-bastion/v1';
export const POLICY_KIND = 'Policy';

/** Verbs of non-resource requests: the lower-cased HTTP method, `get` for GET and HEAD. */
export const NON_RESOURCE_VERBS: readonly string[] = ['get', 'post', 'put', 'patch', 'delete', 'options'];

/** Every verb a rule may name, plus `*`. */
export const ALL_VERBS: readonly string[] = [...new Set([...RESOURCE_VERBS, ...NON_RESOURCE_VERBS])];

/** Longest automatic approval a rule may grant. */
export const MAX_AUTO_APPROVE_TTL_SECONDS = 7 * 24 * 3600;

/**
 * What a rule matches. Every field is optional; the fields present are AND-ed, and each list matches
 * when any of its entries does. A rule with `nonResourcePaths` matches only non-resource requests; a
 * rule with any of `resources`, `apiGroups`, `namespaces`, `names`, `streams` or `commands` matches only
 * resource requests, and one with `commands` only exec requests; a rule with neither kind of field (only `verbs`, `agents`, `impersonation`) matches both.
 */
export interface PolicyMatch {
  /** Request verbs, or `*`. */
  readonly verbs?: readonly string[];
  /** API groups: `''` is the core group, `*` any group. */
  readonly apiGroups?: readonly string[];
  // Resource patterns: RES, RES/SUB, RES/* (any subresource), */SUB, * (everything), each optionally
  // group-qualified: deployments.apps, *.rbac.authorization.k8s.io. See patterns.ts.
  readonly resources?: readonly string[];
  /** Namespace names, `prefix*` globs, `*` (any namespace) or `''` (no namespace: cluster-scoped or all-namespace lists). */
  readonly namespaces?: readonly string[];
  /** Object names, `prefix*` globs, `*` (any named object) or `''` (collections). */
  readonly names?: readonly string[];
  /** Agent names or ids, `prefix*` globs, or `*`. */
  readonly agents?: readonly string[];
  /** Exact paths, or prefixes ending in `*` (`/apis/*`); `*` alone matches every path. */
  readonly nonResourcePaths?: readonly string[];
  /** exec, attach, portforward (whether they arrived as WebSocket GET or SPDY POST). */
  readonly streams?: readonly StreamOperation[];
  /**
   * Argv patterns of an exec (its repeated `command` query parameters): each element is an exact
   * argument or a glob where `*` matches any run of characters within that argument; a final `**`
   * matches the remaining arguments (none included). See patterns.ts.
   */
  readonly commands?: readonly (readonly string[])[];
  /** true: only requests that carried impersonation headers; false: only requests that did not. */
  readonly impersonation?: boolean;
}

/** A rule may approve on its own; the approval is recorded as `policy:<rule>@<policy sha256>`. */
export interface AutoApprove {
  /** Lifetime of the approval, from the moment it is granted. */
  readonly ttlSeconds: number;
  /** Optional cap on the number of sessions the approval admits. */
  readonly maxSessions?: number;
}

export interface PolicyRule {
  /** Unique within the policy; lower-case letters, digits, `-` and `.`. Recorded with every decision. */
  readonly name: string;
  readonly description?: string;
  readonly match: PolicyMatch;
  readonly action: PolicyAction;
  /** Shown to the client when the rule refuses or holds a request. */
  readonly reason?: string;
  /** Only with `action: approval`. */
  readonly autoApprove?: AutoApprove;
}

/** How sessions are recorded. */
export interface RecordingSettings {
  /** asciicast version of the .cast file (the export API converts on request). */
  readonly format: CastFormat;
  /** Record what the agent types (`i` events and the stdin channel of the raw sidecar). */
  readonly stdin: boolean;
}

export const DEFAULT_RECORDING: RecordingSettings = Object.freeze({ format: 'v2', stdin: true });

export interface PolicyDocument {
  readonly apiVersion: typeof POLICY_API_VERSION;
  readonly kind: typeof POLICY_KIND;
  readonly description?: string;
  /** Absent: DEFAULT_RECORDING. */
  readonly recording?: RecordingSettings;
  /** Action for requests no rule matches. */
  readonly default: PolicyAction;
  /** First match wins. */
  readonly rules: readonly PolicyRule[];
}

/** One validated, immutable policy version. */
export interface LoadedPolicy {
  readonly document: PolicyDocument;
  /** sha256 (hex) of the exact bytes the policy was read from. */
  readonly hash: string;
  /** The source text (UTF-8 decoded, BOM kept), so the store can keep every version verbatim: its UTF-8 encoding is the hashed bytes. */
  readonly text: string;
  /** The file path it came from, or `built-in`. */
  readonly origin: string;
}
