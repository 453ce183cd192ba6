// One request on the Kubernetes endpoint as one audit event: the canonical request's fields in
// their own columns (so reviewers query by namespace, resource or verb), client headers as
// untrusted hints only.
import type { AuditEventInput } from '../store/types.js';
import type { RequestAuditRecord } from './ports.js';

export function requestAuditEvent(row: RequestAuditRecord): AuditEventInput {
  const r = row.request?.kind === 'resource' ? row.request : undefined;
  return {
    event: 'request',
    time: new Date(row.time),
    agent: row.agent,
    source: row.source,
    method: row.method,
    path: row.path,
    verb: row.request?.verb ?? null,
    apiGroup: r ? r.apiGroup : null,
    resource: r ? r.resource : null,
    subresource: r ? r.subresource : null,
    namespace: r ? r.namespace : null,
    name: r ? r.name : null,
    stream: r ? (r.stream ?? null) : null,
    decision: row.decision,
    rule: row.rule,
    policyHash: row.policyHash,
    approvalId: row.approvalId,
    statusCode: row.status,
    bytesIn: row.bytesIn,
    bytesOut: row.bytesOut,
    durationMs: row.durationMs,
    untrustedClientHints: row.hints,
    ...(row.sessionId ? { sessionId: row.sessionId } : {}),
    ...(row.outcome ? { details: { outcome: row.outcome, ...(row.outcomeDetail ? { detail: row.outcomeDetail } : {}) } } : {}),
  };
}
