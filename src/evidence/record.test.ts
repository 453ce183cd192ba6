// The review record over a real store: what an agent can multiply (joined clones, requests against
// other objects) cannot push the decisions or the attempts out of it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteApprovalService } from '../approvals/service.js';
import { openStore, type SqliteStore } from '../store/index.js';
import { tempDataDir } from '../store/test-support.js';
import { buildReviewRecord } from './record.js';

let dir: { dir: string; cleanup: () => void };
let store: SqliteStore;
let service: SqliteApprovalService;

beforeEach(() => {
  dir = tempDataDir();
  store = openStore(dir.dir, { synchronous: 'NORMAL' });
  service = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents });
});
afterEach(async () => {
  service.close();
  await store.close();
  dir.cleanup();
});

const sources = () => ({ approvals: service, sessions: store.sessions, audit: store.audit, policyVersions: store.policyVersions });

/** An audit row of a `get secrets/db -n demo` request that needed an approval. */
function secretReadRow(agent: { id: string; name: string }, over: Record<string, unknown>) {
  return {
    event: 'request',
    agent,
    method: 'GET',
    verb: 'get',
    apiGroup: '',
    resource: 'secrets',
    subresource: '',
    namespace: 'demo',
    name: 'db',
    decision: 'approval' as const,
    ...over,
  };
}

describe('buildReviewRecord', () => {
  it('a flood of joined clones and of requests against other objects hides neither the decisions nor the attempts', async () => {
    const { agent } = await store.agents.createAgent('flooder');
    const ref = { id: agent.id, name: agent.name };
    const scope = { kind: 'rest' as const, verb: 'get' as const, resource: 'secrets', namespace: 'demo', name: 'db' };
    const request = { method: 'GET', path: '/api/v1/namespaces/demo/secrets/db' };
    const { approval } = await service.requestOrJoin({ agent: ref, scope, request, holdSeconds: 60 });
    // What the agent can multiply: joins of the pending approval, and requests elsewhere.
    const flood = 10_050;
    store.db.transaction(() => {
      for (let i = 0; i < flood; i++) {
        void store.audit.append({ event: 'approval.joined', agent: ref, approvalId: approval.id, actor: `agent:${agent.name}` });
        void store.audit.append({ event: 'request', agent: ref, method: 'GET', path: '/metrics', verb: 'get', decision: 'deny', statusCode: 403 });
      }
    })();
    await service.approve(approval.id, { kind: 'user', name: 'ann', role: 'approver' }, { reason: 'ann says once' });
    await store.audit.append({
      ...secretReadRow(ref, { source: '127.0.0.1:5000', path: request.path }),
      rule: 'secrets-need-approval',
      policyHash: 'f'.repeat(64),
      approvalId: approval.id,
      statusCode: 200,
      details: { outcome: 'completed' },
    });

    const r = await buildReviewRecord(sources(), approval.id);
    expect(r.decisions.map((d) => [d.event, d.actor, d.reason])).toEqual([
      ['approval.requested', 'agent:flooder', null],
      ['approval.approved', 'user:ann', 'ann says once'],
    ]);
    expect(r.answers.approvedBy).toContain('approved by user:ann');
    expect(r.conformance.attempts.map((a) => [a.source, a.relation, a.inScope, a.refused])).toEqual([['127.0.0.1:5000', 'this-approval', true, false]]);
    expect(r.conformance.verdict).toBe('inside-scope');
    expect(r.conformance.truncated).toBe(false);
    expect(r.policy.rule).toBe('secrets-need-approval');
  }, 60_000);

  it('a flood against the same object: its subresources push nothing out; the object itself makes the record say incomplete, not unused', async () => {
    const { agent } = await store.agents.createAgent('flooder2');
    const ref = { id: agent.id, name: agent.name };
    const row = (over: Record<string, unknown>) => secretReadRow(ref, { statusCode: 403, ...over });
    const granted = await service.grant(
      { agent: agent.name, scope: { kind: 'rest', verb: 'get', resource: 'secrets', namespace: 'demo', name: 'db' }, ttlSeconds: 600, reason: 'read it' },
      { kind: 'user', name: 'ann', role: 'approver' },
    );
    const flood = (n: number, over: Record<string, unknown>) =>
      store.db.transaction(() => {
        for (let i = 0; i < n; i++) void store.audit.append(row({ path: '/api/v1/namespaces/demo/secrets/db', ...over }));
      })();
    flood(10_000, { subresource: 'status', path: '/api/v1/namespaces/demo/secrets/db/status' });
    await store.audit.append(row({ path: '/api/v1/namespaces/demo/secrets/db', approvalId: granted.id, statusCode: 200, decision: 'approval', details: { outcome: 'completed' } }));
    const first = await buildReviewRecord(sources(), granted.id);
    expect([first.conformance.verdict, first.conformance.used, first.conformance.truncated]).toEqual(['inside-scope', 1, false]);

    flood(10_000, {});
    const second = await buildReviewRecord(sources(), granted.id);
    expect([second.conformance.verdict, second.conformance.truncated]).toEqual(['incomplete', true]);
    expect(second.answers.scopeKept).toContain('INCOMPLETE');
  }, 60_000);

  it("a decision the approval's history holds but the chain lacks is listed, marked as not on the chain", async () => {
    const { agent } = await store.agents.createAgent('crashy');
    const granted = await service.grant(
      { agent: agent.name, scope: { kind: 'rest', verb: 'delete', resource: 'pods', namespace: 'demo', name: 'web-0' }, ttlSeconds: 60, reason: 'cleanup' },
      { kind: 'user', name: 'ann', role: 'approver' },
    );
    // As if the process died between the state change and its audit row: a record without the row.
    const record = await buildReviewRecord({ ...sources(), audit: { ...store.audit, query: async () => [], append: store.audit.append.bind(store.audit), head: store.audit.head.bind(store.audit), verify: store.audit.verify.bind(store.audit) } }, granted.id);
    expect(record.decisions.map((d) => [d.event, d.actor, d.reason, d.auditId])).toEqual([['approval.granted', 'user:ann', 'cleanup', null]]);
  });

  it("a port-forward's connections: each listed with port, times, outcome, bytes, hashes and protocol; a refused one called out as outside the approved ports", async () => {
    const { agent } = await store.agents.createAgent('forwarder');
    const ref = { id: agent.id, name: agent.name };
    const request = { method: 'POST', path: '/api/v1/namespaces/demo/pods/web-0/portforward' };
    const { approval } = await service.requestOrJoin({ agent: ref, scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'] }, request, holdSeconds: 60 });
    await service.approve(approval.id, { kind: 'user', name: 'ann', role: 'approver' }, { reason: 'the admin page', ports: [8080] });
    const session = await store.sessions.start({
      approvalId: approval.id,
      agent: ref,
      operation: 'portforward',
      transport: 'websocket',
      protocol: 'SPDY/3.1+portforward.k8s.io',
      namespace: 'demo',
      pod: 'web-0',
      container: '',
      command: [],
      tty: false,
    });
    const h = (c: string): string => c.repeat(64);
    const t = (ms: number): string => new Date(Date.now() + ms).toISOString();
    await store.sessions.connectionStarted({ sessionId: session.id, seq: 1, port: 8080, startedAt: t(10), rawPath: `${approval.id}/${session.id}.1.raw` });
    await store.sessions.connectionEnded(session.id, 1, { endedAt: t(20), outcome: 'closed', detail: null, bytesIn: 78, bytesOut: 512, sha256In: h('a'), sha256Out: h('b'), rawSha256: h('c'), protocol: 'http/1.x' });
    await store.sessions.connectionStarted({ sessionId: session.id, seq: 2, port: 7000, startedAt: t(30), rawPath: null });
    const told = 'port 7000 is not among the ports approval ' + approval.id + ' allows (8080)';
    await store.sessions.connectionEnded(session.id, 2, { endedAt: t(30), outcome: 'refused', detail: told, bytesIn: 0, bytesOut: 0, sha256In: null, sha256Out: null, rawSha256: null, protocol: null });
    await store.sessions.end(session.id, { endReason: 'client-closed', exitCode: null, status: null, bytesIn: 78, bytesOut: 512 });

    const r = await buildReviewRecord({ ...sources(), clock: () => new Date(Date.now() + 1000) }, approval.id);
    const [s] = r.sessions;
    expect(s).toMatchObject({ id: session.id, operation: 'portforward', container: '', inScope: true, why: 'inside the scope and window' });
    expect(s!.connections).toEqual([
      {
        seq: 1,
        port: 8080,
        startedAt: expect.any(String),
        endedAt: expect.any(String),
        outcome: 'closed',
        detail: null,
        bytesIn: 78,
        bytesOut: 512,
        sha256In: h('a'),
        sha256Out: h('b'),
        rawPath: `${approval.id}/${session.id}.1.raw`,
        rawSha256: h('c'),
        protocol: 'http/1.x',
        inScope: true,
        why: 'inside the approved ports; closed',
      },
      {
        seq: 2,
        port: 7000,
        startedAt: expect.any(String),
        endedAt: expect.any(String),
        outcome: 'refused',
        detail: told,
        bytesIn: 0,
        bytesOut: 0,
        sha256In: null,
        sha256Out: null,
        rawPath: null,
        rawSha256: null,
        protocol: null,
        inScope: false,
        why: `outside the approved ports (8080): port 7000 was refused: ${told}`,
      },
    ]);
    // Kept out: the verdict stands, and the refused connection is counted as an attempt outside and refused.
    expect([r.conformance.verdict, r.conformance.outside, r.conformance.refused]).toEqual(['inside-scope', 1, 1]);
    expect(r.answers.scopeKept).toMatch(/^scope: portforward into demo\/web-0, ports 8080; all 1 use stayed inside the scope; 1 attempt outside the scope, 1 refused$/);
    expect(r.answers.happened).toBe(`1 session: ${session.id} portforward (2 connections to ports 8080, 7000, 1 refused (outside the approved ports)) ended client-closed`);

    // A connection the gate let through to another port is a use outside the scope.
    await store.sessions.connectionStarted({ sessionId: session.id, seq: 3, port: 22, startedAt: t(40), rawPath: null });
    await store.sessions.connectionEnded(session.id, 3, { endedAt: t(50), outcome: 'closed', detail: null, bytesIn: 1, bytesOut: 1, sha256In: h('d'), sha256Out: h('e'), rawSha256: null, protocol: 'unrecognised' });
    const leaked = await buildReviewRecord({ ...sources(), clock: () => new Date(Date.now() + 1000) }, approval.id);
    expect(leaked.sessions[0]).toMatchObject({ inScope: false, why: 'connection 3 (port 22) reached ports outside the scope' });
    expect(leaked.sessions[0]!.connections![2]).toMatchObject({ inScope: false, why: 'OUTSIDE the approved ports (8080): port 22 was let through; closed' });
    expect(leaked.conformance.verdict).toBe('outside-scope');
  });
});
