// Identities over real HTTP: agents carry their owner, who may not approve their requests; users
// are disabled (their token is refused at once) and have their tokens rotated; every change is an
// audit row naming who made it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteApprovalService } from '../approvals/service.js';
import type { Approval } from '../model/approval.js';
import { openStore, type Agent, type SqliteStore, type User } from '../store/index.js';
import type { ControlEndpoint } from './control-endpoint.js';
import { startTestControl } from './test-support.js';

let dir: string;
let store: SqliteStore;
let approvals: SqliteApprovalService;
let control: ControlEndpoint;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kb-admin-api-'));
  store = openStore(join(dir, 'data'));
  approvals = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents });
  control = await startTestControl({ store, approvals });
  for (const [name, role] of [['ann', 'approver'], ['bob', 'approver'], ['rita', 'reviewer'], ['adam', 'admin']] as const) {
    tokens[name] = (await store.users.createUser(name, role)).token;
  }
});

afterAll(async () => {
  await control?.close();
  approvals?.close();
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function api<T = unknown>(method: string, path: string, token: string | undefined, body?: unknown): Promise<{ status: number; json: T }> {
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${control.url}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, json: (await res.json()) as T };
}

describe('agents and their owners', () => {
  it('an agent belongs to its creator unless an admin names another user; the owner cannot approve its requests', async () => {
    const mine = await api<{ agent: Agent }>('POST', '/v1/agents', tokens.adam, { name: 'adams-bot' });
    expect(mine.json.agent.owner).toBe('adam');
    const anns = await api<{ agent: Agent }>('POST', '/v1/agents', tokens.adam, { name: 'anns-bot', owner: 'ann' });
    expect(anns.status).toBe(201);
    expect(anns.json.agent.owner).toBe('ann');
    expect((await api<{ items: Agent[] }>('GET', '/v1/agents', tokens.rita)).json.items.map((a) => [a.name, a.owner])).toEqual([
      ['adams-bot', 'adam'],
      ['anns-bot', 'ann'],
    ]);
    const row = (await store.audit.query({ event: 'agent.created' })).at(-1)!;
    expect(row).toMatchObject({ actor: 'user:adam', agentName: 'anns-bot', details: JSON.stringify({ owner: 'ann' }) });

    const held = await approvals.requestOrJoin({
      agent: { id: anns.json.agent.id, name: 'anns-bot' },
      scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] },
      request: { method: 'POST', path: '/api/v1/namespaces/demo/pods/web-0/exec', command: ['ls'] },
      holdSeconds: 60,
    });
    const refused = await api<{ error: { code: string; message: string } }>('POST', `/v1/approvals/${held.approval.id}/approve`, tokens.ann, { reason: 'mine' });
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe('FORBIDDEN');
    expect(refused.json.error.message).toContain('rule owner-may-not-approve');
    const ok = await api<Approval>('POST', `/v1/approvals/${held.approval.id}/approve`, tokens.bob, { reason: 'checked' });
    expect(ok.status).toBe(200);
    expect(ok.json.decisions.map((d) => `${d.kind} ${d.by} ${d.reason}`)).toEqual(['approved user:bob checked']);
  });
});

describe('users', () => {
  it('a disabled user is refused (401) at once, on every route; disabling is audited once', async () => {
    const { token } = await store.users.createUser('dora', 'approver');
    expect((await api('GET', '/v1/whoami', token)).status).toBe(200);
    const disabled = await api<User>('POST', '/v1/users/dora/disable', tokens.adam);
    expect(disabled.status).toBe(200);
    expect(disabled.json.disabledAt).not.toBeNull();
    for (const path of ['/v1/whoami', '/v1/approvals', '/v1/agents']) {
      const r = await api<{ error: { code: string } }>('GET', path, token);
      expect(r.status, path).toBe(401);
      expect(r.json.error.code).toBe('UNAUTHENTICATED');
    }
    expect((await api('POST', '/v1/users/dora/disable', tokens.adam)).status).toBe(200);
    expect((await store.audit.query({ event: 'user.disabled' })).map((r) => [r.actor, r.details])).toEqual([['user:adam', JSON.stringify({ role: 'approver', user: 'dora' })]]);
    expect((await api('POST', '/v1/users/dora/disable', tokens.ann)).status).toBe(403);
  });

  it('rotating a token: the new one works, the old one is 401 at once; users rotate their own, admins anyone', async () => {
    const { token: old } = await store.users.createUser('erin', 'reviewer');
    const own = await api<{ user: User; token: string }>('POST', '/v1/users/erin/rotate-token', old);
    expect(own.status).toBe(200);
    expect(own.json.user.name).toBe('erin');
    expect((await api('GET', '/v1/whoami', old)).status).toBe(401);
    expect((await api<User>('GET', '/v1/whoami', own.json.token)).json.name).toBe('erin');
    expect((await api('POST', '/v1/users/ann/rotate-token', own.json.token)).status).toBe(403);
    const byAdmin = await api<{ token: string }>('POST', '/v1/users/erin/rotate-token', tokens.adam);
    expect((await api('GET', '/v1/whoami', own.json.token)).status).toBe(401);
    expect((await api('GET', '/v1/whoami', byAdmin.json.token)).status).toBe(200);
    expect((await store.audit.query({ event: 'user.token-rotated' })).map((r) => r.actor)).toEqual(['user:erin', 'user:adam']);
    const rows = await store.audit.query({ event: 'user.token-rotated' });
    expect(rows.every((r) => !r.details!.includes(byAdmin.json.token))).toBe(true);
  });

  it('lists users for admins only', async () => {
    const list = await api<{ items: User[] }>('GET', '/v1/users', tokens.adam);
    expect(list.json.items.map((u) => u.name)).toEqual(expect.arrayContaining(['ann', 'bob', 'rita', 'adam']));
    expect((await api('GET', '/v1/users', tokens.ann)).status).toBe(403);
  });
});
