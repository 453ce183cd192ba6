// One request on the Kubernetes endpoint as one audit event: the canonical request's fields in
// their own columns (so reviewers query by namespace, resource or verb), client headers as
// untrusted hints only. Every client-controlled field is bounded: a longer value keeps its first
// characters in its column and its full length and SHA-256 in `details.truncated.<field>`, so a
// row stays small and still names exactly what was sent.
import { createHash } from 'node:crypto';
import type { AuditEventInput } from '../store/types.js';
import type { FailureAggregate } from './failure-audit.js';
import type { RequestAuditRecord } from './ports.js';

/** Characters kept of each field of an unauthenticated or malformed request. */
export const FAILURE_FIELD_CHARS = 256;
/** Characters kept of each field of an agent's request (a real request's path is far shorter). */
export const AGENT_FIELD_CHARS = 4096;
/** Client hints are never longer than this (the store cuts them there too). */
const HINT_CHARS = 1024;

/** What `details.truncated.<field>` says about a value longer than its column keeps. */
export interface TruncatedField {
  truncated: true;
  /** The whole value's length in characters (UTF-16 code units, as JavaScript counts). */
  length: number;
  /** SHA-256 (hex) of the whole value's UTF-8 encoding. */
  sha256: string;
}

/** Cuts values to `max` characters, noting each cut one under its field name. */
class Bounder {
  readonly truncated: Record<string, TruncatedField> = {};

  constructor(private readonly max: number) {}

  cut(field: string, value: string, max = this.max): string {
    if (value.length <= max) return value;
    this.truncated[field] = { truncated: true, length: value.length, sha256: createHash('sha256').update(value, 'utf8').digest('hex') };
    return value.slice(0, max);
  }

  opt(field: string, value: string | null | undefined, max = this.max): string | null {
    return value === null || value === undefined ? null : this.cut(field, value, max);
  }

  /** `details` with `truncated` added when anything was cut. */
  details(rest: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
    if (Object.keys(this.truncated).length === 0) return rest;
    return { ...rest, truncated: this.truncated };
  }
}

function boundedHints(b: Bounder, hints: RequestAuditRecord['hints'], max: number): RequestAuditRecord['hints'] {
  const out: RequestAuditRecord['hints'] = {};
  const limit = Math.min(max, HINT_CHARS);
  if (hints.kubectlCommand !== undefined) out.kubectlCommand = b.cut('kubectlCommand', hints.kubectlCommand, limit);
  if (hints.kubectlSession !== undefined) out.kubectlSession = b.cut('kubectlSession', hints.kubectlSession, limit);
  if (hints.userAgent !== undefined) out.userAgent = b.cut('userAgent', hints.userAgent, limit);
  return out;
}

export function requestAuditEvent(row: RequestAuditRecord): AuditEventInput {
  const r = row.request?.kind === 'resource' ? row.request : undefined;
  const b = new Bounder(row.failure ? FAILURE_FIELD_CHARS : AGENT_FIELD_CHARS);
  const outcome = row.outcome ? { outcome: b.cut('outcome', row.outcome), ...(row.outcomeDetail ? { detail: b.cut('outcomeDetail', row.outcomeDetail) } : {}) } : undefined;
  const event: AuditEventInput = {
    event: 'request',
    time: new Date(row.time),
    agent: row.agent,
    source: b.cut('source', row.source),
    method: b.cut('method', row.method),
    path: b.cut('path', row.path),
    verb: b.opt('verb', row.request?.verb),
    apiGroup: r ? b.cut('apiGroup', r.apiGroup) : null,
    resource: r ? b.cut('resource', r.resource) : null,
    subresource: r ? b.cut('subresource', r.subresource) : null,
    namespace: r ? b.cut('namespace', r.namespace) : null,
    name: r ? b.cut('name', r.name) : null,
    stream: r ? (r.stream ?? null) : null,
    decision: row.decision,
    rule: row.rule,
    policyHash: row.policyHash,
    approvalId: row.approvalId,
    statusCode: row.status,
    bytesIn: row.bytesIn,
    bytesOut: row.bytesOut,
    durationMs: row.durationMs,
    untrustedClientHints: boundedHints(b, row.hints, row.failure ? FAILURE_FIELD_CHARS : AGENT_FIELD_CHARS),
    ...(row.sessionId ? { sessionId: row.sessionId } : {}),
  };
  const details = b.details(outcome);
  return details ? { ...event, details } : event;
}

/**
 * The failures of one address over one interval as one audit event (`requests.aggregated`): the
 * first failure's row (already bounded) as the sample in the usual columns, the address group as
 * the source, and in `details` how many there were, when, with which statuses and rules.
 */
export function aggregateAuditEvent(a: FailureAggregate): AuditEventInput {
  const s = a.sample;
  const truncated = s.details?.truncated;
  return {
    event: 'requests.aggregated',
    time: new Date(a.last),
    agent: a.agent,
    source: a.address,
    method: s.method ?? null,
    path: s.path ?? null,
    decision: s.decision ?? null,
    rule: s.rule ?? null,
    policyHash: s.policyHash ?? null,
    statusCode: s.statusCode ?? null,
    untrustedClientHints: s.untrustedClientHints ?? null,
    details: {
      failure: a.failure,
      count: a.count,
      first: a.first,
      last: a.last,
      intervalSeconds: a.intervalSeconds,
      statuses: a.statuses,
      rules: a.rules,
      sampleSource: s.source ?? null,
      sampleTime: s.time ? s.time.toISOString() : null,
      ...(truncated ? { truncated } : {}),
    },
  };
}
