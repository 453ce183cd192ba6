// Scopes: their canonical form (so "the same scope" is a string comparison) and whether a scope
// covers an operation. Pure functions over the types in approval.ts.
import type { ApprovalScope, Operation, RestRequestBinding, RestScope, StreamScope } from './approval.js';
import { STREAM_OPERATIONS, type RestApprovalWidth } from './vocabulary.js';

/**
 * A scope with its keys in declaration order (kind, namespace, pod, container, verbs, commands,
 * ports (sorted), maxSessions / kind, verb, resource, namespace, name, request (method, path, query, bodySha256,
 * contentType, contentEncoding), maxUses), verbs de-duplicated in canonical order,
 * absent optional fields left out, and arrays copied. Two scopes are deep-equal exactly when their
 * canonical JSON is equal. Call it on validated scopes only (unknown verbs are dropped).
 */
export function canonicalScope(scope: ApprovalScope): ApprovalScope {
  if (scope.kind === 'rest') {
    const rest: RestScope = {
      kind: 'rest',
      verb: scope.verb,
      resource: scope.resource,
      namespace: scope.namespace,
      name: scope.name,
    };
    if (scope.request !== undefined) {
      const r = scope.request;
      rest.request = { method: r.method, path: r.path, query: r.query, bodySha256: r.bodySha256, contentType: r.contentType, contentEncoding: r.contentEncoding };
      // A binding stored before it named the media type lacks both: kept as stored (the store's
      // trigger compares the binding as a whole), and it covers no request (see sameRequest).
      if (r.contentType === undefined) delete (rest.request as Partial<RestRequestBinding>).contentType;
      if (r.contentEncoding === undefined) delete (rest.request as Partial<RestRequestBinding>).contentEncoding;
    }
    if (scope.maxUses !== undefined) rest.maxUses = scope.maxUses;
    return rest;
  }
  const stream: StreamScope = {
    kind: 'stream',
    namespace: scope.namespace,
    pod: scope.pod,
    // A portforward-only scope names no container (the key is left out, not undefined).
    ...(scope.container !== undefined ? { container: scope.container } : {}),
    verbs: STREAM_OPERATIONS.filter((v) => scope.verbs.includes(v)),
  };
  if (scope.commands !== undefined) stream.commands = scope.commands.map((argv) => [...argv]);
  if (scope.ports !== undefined) stream.ports = [...scope.ports].sort((a, b) => a - b);
  if (scope.maxSessions !== undefined) stream.maxSessions = scope.maxSessions;
  return stream;
}

/** The canonical JSON text of a scope: equal text = equal scope. */
export function scopeJson(scope: ApprovalScope): string {
  return JSON.stringify(canonicalScope(scope));
}

function sameArgv(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Whether `scope` covers `op` (ignoring state, expiry and the session count):
 * - stream: same namespace and pod; the verb is one of the scope's verbs; for exec and attach the
 *   same container; for exec with a command allow-list, the argv is exactly one of its entries (the
 *   allow-list is exec argv, so it does not restrict attach or portforward). A portforward names no
 *   container and its ports are not checked here: each forwarded connection is (portAllowed).
 * - rest: same verb, resource, namespace and name; for a scope bound to a request, also the same
 *   method, canonical path, canonical query, body hash, media type and content encoding (an
 *   operation that does not say what it is, is not covered).
 */
export function scopeCovers(scope: ApprovalScope, op: Operation): boolean {
  if (scope.kind === 'rest') {
    return (
      op.kind === 'rest' &&
      op.verb === scope.verb &&
      op.resource === scope.resource &&
      op.namespace === scope.namespace &&
      op.name === scope.name &&
      (scope.request === undefined || (op.request !== undefined && sameRequest(scope.request, op.request)))
    );
  }
  if (op.kind !== 'stream') return false;
  if (op.namespace !== scope.namespace || op.pod !== scope.pod) return false;
  if (!scope.verbs.includes(op.verb)) return false;
  // A port-forward reaches the pod, not a container; its ports are checked per connection (portAllowed).
  if (op.verb === 'portforward') return true;
  if (op.container !== scope.container) return false;
  if (op.verb === 'exec' && scope.commands !== undefined) {
    return scope.commands.some((argv) => sameArgv(argv, op.command));
  }
  return true;
}

/** Every field equal; a field missing on either side (an old binding) never equals, so it covers nothing. */
function sameRequest(a: RestRequestBinding, b: RestRequestBinding): boolean {
  return (
    a.method === b.method &&
    a.path === b.path &&
    a.query === b.query &&
    a.bodySha256 === b.bodySha256 &&
    a.contentType !== undefined &&
    a.contentType === b.contentType &&
    a.contentEncoding !== undefined &&
    a.contentEncoding === b.contentEncoding
  );
}

/**
 * Whether the scope still allows another use given how many there were: sessions against a stream
 * scope's maxSessions, forwarded requests against a REST scope's maxUses.
 */
export function hasUsesLeft(scope: ApprovalScope, used: number): boolean {
  const max = scope.kind === 'stream' ? scope.maxSessions : scope.maxUses;
  return max === undefined || used < max;
}

/**
 * The scope an approver approves for a held REST request: `request` (the default) keeps the binding
 * to the exact request and admits `uses` requests (default: what was asked, once); `shape` drops the
 * binding, so any body of the same verb on the same resource, namespace and name is covered, `uses`
 * times (default: until expiry). What was asked (the approval's `request`) never changes.
 */
export function widenRestScope(scope: RestScope, opts: { uses?: number | undefined; scope?: RestApprovalWidth | undefined }): RestScope {
  const out = canonicalScope(scope) as RestScope;
  if (opts.scope === 'shape') {
    delete out.request;
    delete out.maxUses;
  }
  if (opts.uses !== undefined) out.maxUses = opts.uses;
  return out;
}

/** A scope's `PLURAL[.GROUP][/SUBRESOURCE]` resource in the request's terms (core group ''). */
export function splitScopedResource(scoped: string): { apiGroup: string; resource: string; subresource: string } {
  const [base = '', subresource = ''] = scoped.split('/');
  const dot = base.indexOf('.');
  return { apiGroup: dot < 0 ? '' : base.slice(dot + 1), resource: dot < 0 ? base : base.slice(0, dot), subresource };
}

/**
 * Whether a forwarded connection to `port` is inside the scope: a portforward scope names its
 * ports, and one that names none (a request still waiting for its approver to choose) reaches none.
 */
export function portAllowed(scope: ApprovalScope, port: number): boolean {
  return scope.kind === 'stream' && scope.verbs.includes('portforward') && scope.ports !== undefined && scope.ports.includes(port);
}
