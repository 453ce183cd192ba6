// Audit rows keep every client-controlled field bounded, with the whole value's length and hash.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { aggregateAuditEvent, AGENT_FIELD_CHARS, FAILURE_FIELD_CHARS, requestAuditEvent } from './audit-row.js';
import type { RequestAuditRecord } from './ports.js';

const sha = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

function row(over: Partial<RequestAuditRecord>): RequestAuditRecord {
  return {
    time: '2026-01-02T03:04:05.000Z',
    agent: null,
    source: '127.0.0.1:5000',
    method: 'GET',
    path: '/api',
    request: null,
    decision: 'deny',
    rule: 'authentication',
    policyHash: null,
    approvalId: null,
    sessionId: null,
    outcome: null,
    outcomeDetail: null,
    status: 401,
    bytesIn: 0,
    bytesOut: 0,
    durationMs: 1,
    hints: {},
    ...over,
  };
}

describe('requestAuditEvent bounds', () => {
  it('cuts a failure row to its first 256 characters per field, keeping length and SHA-256', () => {
    const path = `/api/v1/${'x'.repeat(12_000)}`;
    const agent = `evil/${'y'.repeat(2000)}`;
    const event = requestAuditEvent(row({ path, hints: { userAgent: agent, kubectlCommand: 'kubectl get' }, failure: 'unauthenticated' }));
    expect(event.path).toBe(path.slice(0, FAILURE_FIELD_CHARS));
    expect(event.untrustedClientHints).toEqual({ userAgent: agent.slice(0, FAILURE_FIELD_CHARS), kubectlCommand: 'kubectl get' });
    expect(event.details).toEqual({
      truncated: {
        path: { truncated: true, length: path.length, sha256: sha(path) },
        userAgent: { truncated: true, length: agent.length, sha256: sha(agent) },
      },
    });
  });

  it('keeps an agent row whole up to 4096 characters per field, and no details when nothing was cut', () => {
    const ok = `/api/v1/namespaces/demo/pods?labelSelector=${'a'.repeat(3000)}`;
    expect(requestAuditEvent(row({ path: ok, agent: { id: 'a1', name: 'bot' }, status: 200 })).path).toBe(ok);
    expect(requestAuditEvent(row({ path: ok })).details).toBeUndefined();
    const absurd = `/api/v1/${'z'.repeat(10_000)}`;
    const event = requestAuditEvent(row({ path: absurd, agent: { id: 'a1', name: 'bot' }, outcome: 'completed' }));
    expect(event.path).toBe(absurd.slice(0, AGENT_FIELD_CHARS));
    expect(event.details).toEqual({ outcome: 'completed', truncated: { path: { truncated: true, length: absurd.length, sha256: sha(absurd) } } });
  });
});

describe('aggregateAuditEvent', () => {
  it('is one requests.aggregated row: the address, the count and times in details, the sample bounded', () => {
    const path = `/${'q'.repeat(1000)}`;
    const event = aggregateAuditEvent({
      address: '10.0.0.1',
      failure: 'unauthenticated',
      agent: null,
      count: 9_990,
      first: '2026-01-02T03:04:05.000Z',
      last: '2026-01-02T03:04:09.000Z',
      statuses: { 401: 9_990 },
      rules: { authentication: 9_990 },
      sample: requestAuditEvent(row({ path, failure: 'unauthenticated' })),
      intervalSeconds: 60,
    });
    expect(event).toMatchObject({ event: 'requests.aggregated', source: '10.0.0.1', method: 'GET', path: path.slice(0, FAILURE_FIELD_CHARS), decision: 'deny', rule: 'authentication', statusCode: 401 });
    expect(event.time).toEqual(new Date('2026-01-02T03:04:09.000Z'));
    expect(event.details).toEqual({
      failure: 'unauthenticated',
      count: 9_990,
      first: '2026-01-02T03:04:05.000Z',
      last: '2026-01-02T03:04:09.000Z',
      intervalSeconds: 60,
      statuses: { 401: 9_990 },
      rules: { authentication: 9_990 },
      sampleSource: '127.0.0.1:5000',
      sampleTime: '2026-01-02T03:04:05.000Z',
      truncated: { path: { truncated: true, length: path.length, sha256: sha(path) } },
    });
  });
});
