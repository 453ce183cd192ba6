// Scopes: their canonical form (so "the same scope" is a string comparison) and whether a scope
// covers an operation. Pure functions over the types in approval.ts.
import type { ApprovalScope, Operation, RestScope, StreamScope } from './approval.js';
import { STREAM_OPERATIONS } from './vocabulary.js';

/**
 * A scope with its keys in declaration order (kind, namespace, pod, container, verbs, commands,
 * maxSessions / kind, verb, resource, namespace, name), verbs de-duplicated in canonical order,
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
    return rest;
  }
  const stream: StreamScope = {
    kind: 'stream',
    namespace: scope.namespace,
    pod: scope.pod,
    container: scope.container,
    verbs: STREAM_OPERATIONS.filter((v) => scope.verbs.includes(v)),
  };
  if (scope.commands !== undefined) stream.commands = scope.commands.map((argv) => [...argv]);
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
 * - stream: same namespace, pod and container; the verb is one of the scope's verbs; for exec with
 *   a command allow-list, the argv is exactly one of its entries (the allow-list is exec argv, so it
 *   does not restrict attach or portforward).
 * - rest: same verb, resource, namespace and name.
 */
export function scopeCovers(scope: ApprovalScope, op: Operation): boolean {
  if (scope.kind === 'rest') {
    return (
      op.kind === 'rest' &&
      op.verb === scope.verb &&
      op.resource === scope.resource &&
      op.namespace === scope.namespace &&
      op.name === scope.name
    );
  }
  if (op.kind !== 'stream') return false;
  if (op.namespace !== scope.namespace || op.pod !== scope.pod || op.container !== scope.container) return false;
  if (!scope.verbs.includes(op.verb)) return false;
  if (op.verb === 'exec' && scope.commands !== undefined) {
    return scope.commands.some((argv) => sameArgv(argv, op.command));
  }
  return true;
}

/** Whether the scope still allows another session given how many were started. */
export function hasSessionsLeft(scope: ApprovalScope, sessionsStarted: number): boolean {
  return scope.kind !== 'stream' || scope.maxSessions === undefined || sessionsStarted < scope.maxSessions;
}
