// /v1/approvals over real HTTP: a ControlEndpoint on 127.0.0.1:0 over a real store and the real
// approval service, with the approval routes registered on its router.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteApprovalService } from '../approvals/service.js';
import type { Approval, ApprovalScope } from '../model/approval.js';
import { openStore, type SqliteStore } from '../store/index.js';
import type { ControlEndpoint } from './control-endpoint.js';
import { startTestControl } from './test-support.js';

let dir: string;
let store: SqliteStore;
let approvals: SqliteApprovalService;
let control: ControlEndpoint;
let agent: { id: string; name: string };
let agentToken: string;
const tokens: Record<'alice' | 'bob' | 'rita' | 'adam', string> = { alice: '', bob: '', rita: '', adam: '' };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kb-approvals-api-'));
  store = openStore(join(dir, 'data'));
  approvals = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents });
  control = await startTestControl({ store, approvals });
  tokens.alice = (await store.users.createUser('alice', 'approver')).token;
  tokens.bob = (await store.users.createUser('bob', 'approver')).token;
  tokens.rita = (await store.users.createUser('rita', 'reviewer')).token;
  tokens.adam = (await store.users.createUser('adam', 'admin')).token;
  const created = await store.agents.createAgent('claude');
  agent = { id: created.agent.id, name: created.agent.name };
  agentToken = created.token;
  await store.agents.createAgent('other');
});

afterAll(async () => {
  await control?.close();
  approvals?.close();
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Answer<T = unknown> {
  status: number;
  json: T;
}
type ErrorBody = { error: { code: string; message: string; field?: string } };

async function api<T = unknown>(method: string, path: string, opts: { token?: string | null; body?: unknown; raw?: string } = {}): Promise<Answer<T>> {
  const token = opts.token === undefined ? tokens.alice : opts.token;
  const headers: Record<string, string> = {};
  if (token !== null) headers['Authorization'] = `Bearer ${token}`;
  const payload = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  if (payload !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${control.url}${path}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
  return { status: res.status, json: (await res.json()) as T };
}

const streamGrant = {
  agent: 'claude',
  namespace: 'demo',
  pod: 'web-0',
  container: 'app',
  verbs: ['exec'],
  ttlSeconds: 600,
  reason: 'INC-1: look at the data volume',
};
const restGrant = { agent: 'claude', verb: 'delete', resource: 'namespaces', name: 'demo', ttlSeconds: 3600, reason: 'tear down' };

let podCounter = 0;
/** A pending approval as a held agent request creates it (a fresh scope each time). */
async function pending(): Promise<Approval> {
  const scope: ApprovalScope = { kind: 'stream', namespace: 'demo', pod: `held-${++podCounter}`, container: 'app', verbs: ['exec'] };
  const { approval } = await approvals.requestOrJoin({
    agent,
    scope,
    request: { method: 'POST', path: `/api/v1/namespaces/demo/pods/${scope.pod}/exec`, command: ['ls'] },
    holdSeconds: 300,
  });
  expect(approval.state).toBe('pending');
  return approval;
}

function expectIso(v: unknown): void {
  expect(v).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
}

describe('POST /v1/approvals (grant)', () => {
  it('grants a stream scope with a command allow-list and a session cap: 201 with the approval', async () => {
    const body = { ...streamGrant, verbs: ['attach', 'exec'], commands: [['ls', '-l'], ['cat', '/etc/os-release']], maxSessions: 2 };
    const { status, json } = await api<Approval>('POST', '/v1/approvals', { body });
    expect(status).toBe(201);
    expect(json).toMatchObject({
      state: 'approved',
      agent: 'claude',
      agentId: agent.id,
      scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec', 'attach'], commands: body.commands, maxSessions: 2 },
      requestedBy: 'user:alice',
      decidedBy: 'user:alice',
      reason: 'INC-1: look at the data volume',
      ttlSeconds: 600,
      revokedAt: null,
      sessionsStarted: 0,
      request: null,
    });
    expect(json.id).toMatch(/^apr_/);
    for (const t of [json.createdAt, json.decidedAt, json.expiresAt]) expectIso(t);
    expect(Date.parse(json.expiresAt!) - Date.parse(json.decidedAt!)).toBe(600_000);
  });

  it('grants a REST scope (namespace and name default to "")', async () => {
    const { status, json } = await api<Approval>('POST', '/v1/approvals', { body: restGrant });
    expect(status).toBe(201);
    expect(json.scope).toEqual({ kind: 'rest', verb: 'delete', resource: 'namespaces', namespace: '', name: 'demo' });
    const list = await api<Approval>('POST', '/v1/approvals', { body: { agent: 'claude', verb: 'list', resource: 'pods', namespace: 'demo', ttlSeconds: 60, reason: 'r' } });
    expect(list.json.scope).toEqual({ kind: 'rest', verb: 'list', resource: 'pods', namespace: 'demo', name: '' });
  });

  it('lets an admin grant, and records the grant as an audit event', async () => {
    const { status, json } = await api<Approval>('POST', '/v1/approvals', { token: tokens.adam, body: { ...streamGrant, pod: 'web-1' } });
    expect(status).toBe(201);
    expect(json.requestedBy).toBe('user:adam');
    const rows = await store.audit.query({ approvalId: json.id });
    expect(rows.map((r) => [r.event, r.actor])).toEqual([['approval.granted', 'user:adam']]);
  });

  const bad: Array<[string, Record<string, unknown>, string, string?]> = [
    ['missing reason', { ...streamGrant, reason: undefined }, 'reason'],
    ['empty reason', { ...streamGrant, reason: '  ' }, 'reason'],
    ['ttlSeconds as a string', { ...streamGrant, ttlSeconds: '10' }, 'ttlSeconds'],
    ['ttlSeconds fractional', { ...streamGrant, ttlSeconds: 1.5 }, 'ttlSeconds'],
    ['ttlSeconds missing', { ...streamGrant, ttlSeconds: undefined }, 'ttlSeconds'],
    ['ttlSeconds over the service limit', { ...streamGrant, ttlSeconds: 10_000_000 }, 'ttlSeconds'],
    ['an unknown field', { ...streamGrant, colour: 'blue' }, 'colour', 'UNKNOWN_FIELD'],
    ['verbs not an array', { ...streamGrant, verbs: 'exec' }, 'verbs'],
    ['verbs with a non-string', { ...streamGrant, verbs: ['exec', 3] }, 'verbs[1]'],
    ['an unknown stream verb', { ...streamGrant, verbs: ['exec', 'shell'] }, 'verbs[1]'],
    ['stream and REST fields mixed', { ...streamGrant, verb: 'get' }, 'verb'],
    ['REST and stream fields mixed', { ...restGrant, maxSessions: 2 }, 'verb'],
    ['no scope at all', { agent: 'claude', ttlSeconds: 60, reason: 'r' }, 'verbs'],
    ['missing pod', { ...streamGrant, pod: undefined }, 'pod'],
    ['missing container', { ...streamGrant, container: undefined }, 'container'],
    ['missing namespace for a stream scope', { ...streamGrant, namespace: undefined }, 'namespace'],
    ['an invalid namespace', { ...streamGrant, namespace: 'Demo' }, 'namespace'],
    ['commands not a list of argv lists', { ...streamGrant, commands: ['ls'] }, 'commands[0]'],
    ['an argv with a number', { ...streamGrant, commands: [['ls', 1]] }, 'commands[0][1]'],
    ['empty commands', { ...streamGrant, commands: [] }, 'commands'],
    ['maxSessions 0', { ...streamGrant, maxSessions: 0 }, 'maxSessions'],
    ['maxSessions a string', { ...streamGrant, maxSessions: '2' }, 'maxSessions'],
    ['agent missing', { ...streamGrant, agent: undefined }, 'agent'],
    ['an unknown agent', { ...streamGrant, agent: 'nobody' }, 'agent'],
    ['an unknown REST verb', { ...restGrant, verb: 'destroy' }, 'verb'],
    ['a REST resource that is not a string', { ...restGrant, resource: 7 }, 'resource'],
    ['a REST name that is not a string', { ...restGrant, name: 7 }, 'name'],
  ];
  it.each(bad)('400 naming the field for %s', async (_, body, field, code = 'INVALID_FIELD') => {
    const before = (await store.audit.head()).lastId;
    const { status, json } = await api<ErrorBody>('POST', '/v1/approvals', { body: JSON.parse(JSON.stringify(body)) });
    expect(status).toBe(400);
    expect(json.error.field).toBe(field);
    expect(json.error.code).toBe(code);
    expect(json.error.message).not.toBe('');
    expect((await store.audit.head()).lastId).toBe(before);
  });

  it("speaks of the flat body's fields in the service's messages", async () => {
    const { json } = await api<ErrorBody>('POST', '/v1/approvals', { body: { ...streamGrant, namespace: 'scope.Demo' } });
    expect(json.error.field).toBe('namespace');
    expect(json.error.message).toMatch(/^namespace "scope\.Demo" is invalid/);
  });

  it('400 for a body that is not JSON or not an object', async () => {
    expect((await api<ErrorBody>('POST', '/v1/approvals', { raw: '{"agent":' })).json.error.code).toBe('INVALID_JSON');
    expect((await api<ErrorBody>('POST', '/v1/approvals', { raw: '[1]' })).json.error.code).toBe('INVALID_BODY');
  });

  it('401 without a token or with an unknown one, and for an agent token (agents never decide)', async () => {
    for (const token of [null, 'kbu_nope', agentToken]) {
      const { status, json } = await api<ErrorBody>('POST', '/v1/approvals', { token, body: streamGrant });
      expect(status).toBe(401);
      expect(json.error.code).toBe('UNAUTHENTICATED');
    }
  });

  it('403 for a reviewer', async () => {
    const { status, json } = await api<ErrorBody>('POST', '/v1/approvals', { token: tokens.rita, body: streamGrant });
    expect(status).toBe(403);
    expect(json.error.code).toBe('FORBIDDEN');
  });
});

describe('GET /v1/approvals and /v1/approvals/:id', () => {
  it('lists {items} newest first, and filters by state and agent', async () => {
    const held = await pending();
    const granted = (await api<Approval>('POST', '/v1/approvals', { body: { ...streamGrant, agent: 'other', pod: 'other-0' } })).json;

    const all = await api<{ items: Approval[] }>('GET', '/v1/approvals', { token: tokens.rita });
    expect(all.status).toBe(200);
    expect(Object.keys(all.json)).toEqual(['items']);
    const ids = all.json.items.map((a) => a.id);
    expect(ids).toContain(held.id);
    expect(ids.indexOf(granted.id)).toBeLessThan(ids.indexOf(held.id));

    const pendingOnly = await api<{ items: Approval[] }>('GET', '/v1/approvals?state=pending');
    expect(pendingOnly.json.items.length).toBeGreaterThan(0);
    expect(pendingOnly.json.items.every((a) => a.state === 'pending')).toBe(true);
    expect(pendingOnly.json.items.map((a) => a.id)).toContain(held.id);

    const other = await api<{ items: Approval[] }>('GET', '/v1/approvals?agent=other&state=approved');
    expect(other.json.items.map((a) => a.id)).toEqual([granted.id]);

    const none = await api<{ items: Approval[] }>('GET', '/v1/approvals?agent=nobody');
    expect(none.json).toEqual({ items: [] });
  });

  it('400 for an unknown state, an empty agent or an unknown query parameter', async () => {
    for (const [query, field] of [
      ['state=bogus', 'state'],
      ['state=', 'state'],
      ['agent=', 'agent'],
      ['status=pending', 'status'],
    ] as const) {
      const { status, json } = await api<ErrorBody>('GET', `/v1/approvals?${query}`);
      expect(status, query).toBe(400);
      expect(json.error).toMatchObject({ code: 'INVALID_QUERY', field });
    }
  });

  it('gets one approval, 404 for an unknown id', async () => {
    const held = await pending();
    const got = await api<Approval>('GET', `/v1/approvals/${held.id}`, { token: tokens.rita });
    expect(got.status).toBe(200);
    expect(got.json).toEqual(held);
    const missing = await api<ErrorBody>('GET', '/v1/approvals/apr_doesnotexist');
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('NOT_FOUND');
  });

  it('401 without a token', async () => {
    expect((await api('GET', '/v1/approvals', { token: null })).status).toBe(401);
    expect((await api('GET', '/v1/approvals/apr_x', { token: null })).status).toBe(401);
  });
});

describe('decisions', () => {
  it('approves a pending request with a ttl and a reason', async () => {
    const held = await pending();
    const { status, json } = await api<Approval>('POST', `/v1/approvals/${held.id}/approve`, { token: tokens.bob, body: { ttlSeconds: 120, reason: 'ok for INC-2' } });
    expect(status).toBe(200);
    expect(json).toMatchObject({ id: held.id, state: 'approved', requestedBy: 'agent:claude', decidedBy: 'user:bob', reason: 'ok for INC-2', ttlSeconds: 120 });
    expect(Date.parse(json.expiresAt!) - Date.parse(json.decidedAt!)).toBe(120_000);
    const rows = await store.audit.query({ approvalId: held.id });
    expect(rows.map((r) => [r.event, r.actor])).toEqual([
      ['approval.requested', 'agent:claude'],
      ['approval.approved', 'user:bob'],
    ]);
  });

  it('approves with no body at all, and with an empty one', async () => {
    const a = await pending();
    const res = await fetch(`${control.url}/v1/approvals/${a.id}/approve`, { method: 'POST', headers: { Authorization: `Bearer ${tokens.adam}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Approval).decidedBy).toBe('user:adam');
    const b = await pending();
    expect((await api<Approval>('POST', `/v1/approvals/${b.id}/approve`, { body: {} })).json.state).toBe('approved');
  });

  it('400 naming the field for bad approve bodies', async () => {
    const held = await pending();
    for (const [body, field, code] of [
      [{ ttlSeconds: '10' }, 'ttlSeconds', 'INVALID_FIELD'],
      [{ ttlSeconds: 0 }, 'ttlSeconds', 'INVALID_FIELD'],
      [{ ttlSeconds: 10_000_000 }, 'ttlSeconds', 'INVALID_FIELD'],
      [{ reason: 5 }, 'reason', 'INVALID_FIELD'],
      [{ until: 'later' }, 'until', 'UNKNOWN_FIELD'],
    ] as const) {
      const { status, json } = await api<ErrorBody>('POST', `/v1/approvals/${held.id}/approve`, { body });
      expect(status, JSON.stringify(body)).toBe(400);
      expect(json.error).toMatchObject({ code, field });
    }
    expect((await approvals.get(held.id))?.state).toBe('pending');
  });

  it('approves a held port-forward with the ports its approver names; 400 naming ports without them or on an exec', async () => {
    const scope: ApprovalScope = { kind: 'stream', namespace: 'demo', pod: `forward-${++podCounter}`, verbs: ['portforward'] };
    const { approval: held } = await approvals.requestOrJoin({ agent, scope, request: { method: 'POST', path: `/api/v1/namespaces/demo/pods/${scope.pod}/portforward` }, holdSeconds: 300 });
    for (const [body, field, message] of [
      [{}, 'ports', 'ports is required: name the pod ports this port-forward may reach (--ports)'],
      [{ ports: [] }, 'ports', 'ports must be a non-empty list of distinct TCP ports (1-65535)'],
      [{ ports: [8080, 8080] }, 'ports', 'ports names a port twice'],
      [{ ports: ['8080'] }, 'ports[0]', 'ports[0] must be a non-empty list of distinct TCP ports (1-65535)'],
    ] as const) {
      const { status, json } = await api<ErrorBody>('POST', `/v1/approvals/${held.id}/approve`, { body });
      expect(status, JSON.stringify(body)).toBe(400);
      expect(json.error, JSON.stringify(body)).toEqual({ code: 'INVALID_FIELD', field, message });
    }
    const exec = await pending();
    expect((await api<ErrorBody>('POST', `/v1/approvals/${exec.id}/approve`, { body: { ports: [80] } })).json.error).toMatchObject({ code: 'INVALID_FIELD', field: 'ports' });
    const { status, json } = await api<Approval>('POST', `/v1/approvals/${held.id}/approve`, { body: { ports: [9090, 8080], reason: 'metrics and the app' } });
    expect(status).toBe(200);
    expect(json).toMatchObject({ state: 'approved', scope: { ...scope, ports: [8080, 9090] } });
  });

  it('grants a port-forward only with ports', async () => {
    const body = { agent: 'claude', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ttlSeconds: 600, reason: 'INC-3' };
    const refused = await api<ErrorBody>('POST', '/v1/approvals', { body });
    expect(refused.status).toBe(400);
    expect(refused.json.error).toEqual({ code: 'INVALID_FIELD', field: 'ports', message: 'ports is required: a port-forward grant names the pod ports it may reach' });
    const withContainer = await api<ErrorBody>('POST', '/v1/approvals', { body: { ...body, container: 'app', ports: [80] } });
    expect(withContainer.json.error).toMatchObject({ code: 'INVALID_FIELD', field: 'container' });
    const granted = await api<Approval>('POST', '/v1/approvals', { body: { ...body, ports: [8080] } });
    expect(granted.status).toBe(201);
    expect(granted.json.scope).toEqual({ kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports: [8080] });
  });

  it('denies with a reason; 400 naming reason without one', async () => {
    const held = await pending();
    for (const body of [undefined, {}, { reason: '' }, { reason: 3 }]) {
      const { status, json } = await api<ErrorBody>('POST', `/v1/approvals/${held.id}/deny`, { ...(body !== undefined ? { body } : {}) });
      expect(status).toBe(400);
      expect(json.error).toMatchObject({ code: 'INVALID_FIELD', field: 'reason' });
    }
    expect((await api<ErrorBody>('POST', `/v1/approvals/${held.id}/deny`, { body: { reason: 'x', ttlSeconds: 5 } })).json.error.field).toBe('ttlSeconds');
    const { status, json } = await api<Approval>('POST', `/v1/approvals/${held.id}/deny`, { body: { reason: 'not during the freeze' } });
    expect(status).toBe(200);
    expect(json).toMatchObject({ state: 'denied', decidedBy: 'user:alice', reason: 'not during the freeze', expiresAt: null });
    expectIso(json.decidedAt);
  });

  it('revokes an approved approval (reason optional); a second revoke is 400 INVALID_STATE', async () => {
    const granted = (await api<Approval>('POST', '/v1/approvals', { body: { ...streamGrant, pod: 'rev-0' } })).json;
    const { status, json } = await api<Approval>('POST', `/v1/approvals/${granted.id}/revoke`, { token: tokens.bob, body: { reason: 'incident over' } });
    expect(status).toBe(200);
    expect(json).toMatchObject({ state: 'revoked', reason: granted.reason, revokedBy: 'user:bob' });
    expect(json.decisions.map((d) => [d.kind, d.by, d.reason])).toEqual([
      ['granted', granted.decidedBy, granted.reason],
      ['revoked', 'user:bob', 'incident over'],
    ]);
    expectIso(json.revokedAt);
    const again = await api<ErrorBody>('POST', `/v1/approvals/${granted.id}/revoke`);
    expect(again.status).toBe(400);
    expect(again.json.error).toMatchObject({ code: 'INVALID_STATE', field: 'state' });

    const other = (await api<Approval>('POST', '/v1/approvals', { body: { ...streamGrant, pod: 'rev-1' } })).json;
    const res = await fetch(`${control.url}/v1/approvals/${other.id}/revoke`, { method: 'POST', headers: { Authorization: `Bearer ${tokens.alice}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Approval).state).toBe('revoked');
  });

  it('refuses decisions that do not fit the state (approve an approved one, deny a denied one)', async () => {
    const granted = (await api<Approval>('POST', '/v1/approvals', { body: { ...streamGrant, pod: 'state-0' } })).json;
    const approve = await api<ErrorBody>('POST', `/v1/approvals/${granted.id}/approve`, { token: tokens.bob });
    expect(approve.status).toBe(400);
    expect(approve.json.error.code).toBe('INVALID_STATE');
    const held = await pending();
    expect((await api('POST', `/v1/approvals/${held.id}/revoke`)).status).toBe(400);
  });

  it('404 for unknown ids on every decision', async () => {
    for (const [verb, body] of [
      ['approve', {}],
      ['deny', { reason: 'no' }],
      ['revoke', {}],
    ] as const) {
      const { status, json } = await api<ErrorBody>('POST', `/v1/approvals/apr_unknown/${verb}`, { body });
      expect(status, verb).toBe(404);
      expect(json.error.code).toBe('NOT_FOUND');
    }
  });

  it('403 for a reviewer on every decision; 401 without a token', async () => {
    const held = await pending();
    for (const [verb, body] of [
      ['approve', {}],
      ['deny', { reason: 'no' }],
      ['revoke', {}],
    ] as const) {
      expect((await api('POST', `/v1/approvals/${held.id}/${verb}`, { token: tokens.rita, body })).status, verb).toBe(403);
      expect((await api('POST', `/v1/approvals/${held.id}/${verb}`, { token: null, body })).status, verb).toBe(401);
    }
    expect((await approvals.get(held.id))?.state).toBe('pending');
  });

  it('403 when a user approves a request they made; another approver may', async () => {
    const mine = await store.approvals.create({
      state: 'pending',
      agentId: agent.id,
      agent: agent.name,
      scope: { kind: 'rest', verb: 'get', resource: 'secrets', namespace: 'demo', name: 'self' },
      requestedBy: 'user:alice',
      decidedBy: null,
      reason: null,
      ttlSeconds: 300,
      createdAt: new Date().toISOString(),
      decidedAt: null,
      expiresAt: new Date(Date.now() + 300_000).toISOString(),
      request: { method: 'GET', path: '/api/v1/namespaces/demo/secrets/self' },
    });
    const self = await api<ErrorBody>('POST', `/v1/approvals/${mine.id}/approve`, { token: tokens.alice });
    expect(self.status).toBe(403);
    expect(self.json.error.code).toBe('FORBIDDEN');
    expect(self.json.error.message).toContain('user:alice');
    const other = await api<Approval>('POST', `/v1/approvals/${mine.id}/approve`, { token: tokens.bob });
    expect(other.status).toBe(200);
    expect(other.json.decidedBy).toBe('user:bob');
  });
});
