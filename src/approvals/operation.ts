// What an approval must cover for one request: the scope a held request asks for, and the
// operation matched against approved scopes. Exec and attach scopes name the resolved container
// (a port-forward's names the pod and, when the request said, its ports); REST
// operations carry the exact request (method, canonical path and query, body hash, media type and
// content encoding).
import type { ApprovalScope, Operation, RestRequestBinding, RestScope } from '../model/approval.js';
import type { ResourceRequest, StreamOperation } from '../model/request.js';
import { canonicalScope } from '../model/scope.js';
import { contentEncodingOf, mediaTypeOf } from '../model/media-type.js';

/** `pods`, `deployments.apps`, `pods/ephemeralcontainers`, `widgets.example.com/status` */
export function scopedResource(req: ResourceRequest): string {
  const base = req.apiGroup ? `${req.resource}.${req.apiGroup}` : req.resource;
  return req.subresource ? `${base}/${req.subresource}` : base;
}

/**
 * The query in one spelling: parameters sorted by name; a repeated parameter keeps the order of
 * its values (their order can mean something). kubectl sends the same query for the same command.
 */
export function canonicalQuery(query: URLSearchParams): string {
  const pairs = [...query].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return new URLSearchParams(pairs).toString();
}

/** What a request sends beyond its method and target: the body's hash (null: none) and the headers that say how to read it, as sent. */
export interface RequestBody {
  sha256: string | null;
  contentType: string | null;
  contentEncoding: string | null;
}

/** The exact request: what a held REST request's approval is bound to. */
export function requestBinding(req: ResourceRequest, body: RequestBody): RestRequestBinding {
  return {
    method: req.method.toUpperCase(),
    path: req.path,
    query: canonicalQuery(req.query),
    bodySha256: body.sha256,
    contentType: mediaTypeOf(body.contentType),
    contentEncoding: contentEncodingOf(body.contentEncoding),
  };
}

/**
 * A REST operation. With `body` it carries the exact request, so approvals bound to a request can
 * cover it; without, only shape scopes can.
 */
export function restOperation(req: ResourceRequest, body?: RequestBody): Operation & { kind: 'rest' } {
  const op: Operation & { kind: 'rest' } = { kind: 'rest', verb: req.verb, resource: scopedResource(req), namespace: req.namespace, name: req.name };
  if (body !== undefined) op.request = requestBinding(req, body);
  return op;
}

export function streamOperation(req: ResourceRequest & { stream: StreamOperation }, container: string, command: string[]): Operation & { kind: 'stream' } {
  return { kind: 'stream', verb: req.stream, namespace: req.namespace, pod: req.name, container, command };
}

/**
 * A port-forward: the pod, no container, and the ports only when the request named them (the
 * channel protocol's `?ports=`; SPDY and the WebSocket tunnel name them per connection).
 */
export function portForwardOperation(req: ResourceRequest, ports?: readonly number[]): Operation & { kind: 'stream' } {
  const op: Operation & { kind: 'stream' } = { kind: 'stream', verb: 'portforward', namespace: req.namespace, pod: req.name, container: '', command: [] };
  if (ports !== undefined && ports.length > 0) op.ports = [...ports];
  return op;
}

/** Any request of the operation's shape: verb, resource, namespace, name (a policy auto-approval). */
export function shapeScope(op: Operation & { kind: 'rest' }): RestScope {
  return { kind: 'rest', verb: op.verb, resource: op.resource, namespace: op.namespace, name: op.name };
}

/**
 * The narrowest scope that covers `op`, in canonical form: what a held request asks an approver
 * for. A REST request asks for itself, once.
 */
export function scopeFor(op: Operation): ApprovalScope {
  if (op.kind === 'rest') return canonicalScope(op.request ? { ...shapeScope(op), request: op.request, maxUses: 1 } : shapeScope(op));
  if (op.verb === 'portforward') {
    // The pod, and the ports the request named (each once); none named: the approver names them.
    const ports = op.ports !== undefined && op.ports.length > 0 ? [...new Set(op.ports)] : undefined;
    return canonicalScope({ kind: 'stream', namespace: op.namespace, pod: op.pod, verbs: ['portforward'], ...(ports ? { ports } : {}) });
  }
  return canonicalScope({
    kind: 'stream',
    namespace: op.namespace,
    pod: op.pod,
    container: op.container,
    verbs: [op.verb],
    ...(op.verb === 'exec' ? { commands: [op.command] } : {}),
  });
}
