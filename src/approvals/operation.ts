// What an approval must cover for one request: the scope a held request asks for, and the
// operation matched against approved scopes. Stream scopes name the resolved container.
import type { ApprovalScope, Operation } from '../model/approval.js';
import type { ResourceRequest, StreamOperation } from '../model/request.js';

/** `pods`, `deployments.apps`, `pods/ephemeralcontainers`, `widgets.example.com/status` */
export function scopedResource(req: ResourceRequest): string {
  const base = req.apiGroup ? `${req.resource}.${req.apiGroup}` : req.resource;
  return req.subresource ? `${base}/${req.subresource}` : base;
}

export function restOperation(req: ResourceRequest): Operation & { kind: 'rest' } {
  return { kind: 'rest', verb: req.verb, resource: scopedResource(req), namespace: req.namespace, name: req.name };
}

export function streamOperation(req: ResourceRequest & { stream: StreamOperation }, container: string, command: string[]): Operation & { kind: 'stream' } {
  return { kind: 'stream', verb: req.stream, namespace: req.namespace, pod: req.name, container, command };
}

/** The narrowest scope that covers `op`: what a held request asks an approver for. */
export function scopeFor(op: Operation): ApprovalScope {
  if (op.kind === 'rest') return { kind: 'rest', verb: op.verb, resource: op.resource, namespace: op.namespace, name: op.name };
  return {
    kind: 'stream',
    namespace: op.namespace,
    pod: op.pod,
    container: op.container,
    verbs: [op.verb],
    ...(op.verb === 'exec' ? { commands: [op.command] } : {}),
  };
}
