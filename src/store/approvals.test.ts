import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StreamScope } from '../model/approval.js';
import { APPROVAL_ID_PATTERN, openStore, type NewApproval, type SqliteStore } from './index.js';
import { tempDataDir } from './test-support.js';

const T0 = Date.parse('2025-03-01T10:00:00.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();

const streamScope: StreamScope = {
  kind: 'stream',
  namespace: 'demo',
  pod: 'web-0',
  container: 'app',
  verbs: ['exec'],
  commands: [['ls', '-l']],
  maxSessions: 2,
};

describe('approval store', () => {
  let tmp: ReturnType<typeof tempDataDir>;
  let store: SqliteStore;
  let agent: { id: string; name: string };
  let other: { id: string; name: string };

  function input(over: Partial<NewApproval> = {}): NewApproval {
    return {
      state: 'pending',
      agentId: agent.id,
      agent: agent.name,
      scope: streamScope,
      requestedBy: `agent:${agent.name}`,
      decidedBy: null,
      reason: null,
      ttlSeconds: 600,
      createdAt: iso(T0),
      decidedAt: null,
      expiresAt: iso(T0 + 120_000),
      request: { method: 'POST', path: '/api/v1/namespaces/demo/pods/web-0/exec', command: ['ls', '-l'] },
      ...over,
    };
  }

  beforeEach(async () => {
    tmp = tempDataDir();
    store = openStore(tmp.dir);
    agent = (await store.agents.createAgent('bot-a')).agent;
    other = (await store.agents.createAgent('bot-b')).agent;
  });
  afterEach(async () => {
    await store.close();
    tmp.cleanup();
  });

  it('creates with an apr_ id and reads back every field, the scope in canonical key order', async () => {
    const created = await store.approvals.create(
      input({ scope: { maxSessions: 2, verbs: ['exec'], container: 'app', commands: [['ls', '-l']], pod: 'web-0', namespace: 'demo', kind: 'stream' } as StreamScope }),
    );
    expect(created.id).toMatch(APPROVAL_ID_PATTERN);
    const got = await store.approvals.get(created.id);
    expect(got).toEqual(created);
    expect(got).toMatchObject({
      state: 'pending',
      agent: 'bot-a',
      agentId: agent.id,
      requestedBy: 'agent:bot-a',
      decidedBy: null,
      ttlSeconds: 600,
      createdAt: iso(T0),
      expiresAt: iso(T0 + 120_000),
      revokedAt: null,
      sessionsStarted: 0,
      request: { method: 'POST', path: '/api/v1/namespaces/demo/pods/web-0/exec', command: ['ls', '-l'] },
    });
    expect(JSON.stringify(got!.scope)).toBe(JSON.stringify(streamScope));
    expect(await store.approvals.get('apr_nope')).toBeUndefined();
    // Ids are unique and random.
    const ids = new Set(await Promise.all(Array.from({ length: 50 }, async () => (await store.approvals.create(input())).id)));
    expect(ids.size).toBe(50);
  });

  it('createOrJoinPending joins the open pending approval for the same agent and scope, extending its hold', async () => {
    const now = iso(T0);
    const a = await store.approvals.createOrJoinPending({ ...input(), state: 'pending' }, now);
    expect(a.created).toBe(true);
    const b = await store.approvals.createOrJoinPending({ ...input({ expiresAt: iso(T0 + 300_000) }), state: 'pending' }, iso(T0 + 1000));
    expect(b.created).toBe(false);
    expect(b.approval.id).toBe(a.approval.id);
    expect(b.approval.expiresAt).toBe(iso(T0 + 300_000));
    // A shorter hold never shortens it.
    const c = await store.approvals.createOrJoinPending({ ...input({ expiresAt: iso(T0 + 5000) }), state: 'pending' }, iso(T0 + 2000));
    expect(c.approval.expiresAt).toBe(iso(T0 + 300_000));
    // Other agent, other scope: new approvals.
    const d = await store.approvals.createOrJoinPending({ ...input({ agentId: other.id, agent: other.name }), state: 'pending' }, now);
    expect(d.created).toBe(true);
    const e = await store.approvals.createOrJoinPending({ ...input({ scope: { ...streamScope, container: 'sidecar' } }), state: 'pending' }, now);
    expect(e.created).toBe(true);
    // Past its deadline it is not joined.
    const f = await store.approvals.createOrJoinPending({ ...input({ expiresAt: iso(T0 + 400_000) }), state: 'pending' }, iso(T0 + 300_000));
    expect(f.created).toBe(true);
    expect(await store.approvals.findPending(agent.id, streamScope, iso(T0 + 300_000))).toMatchObject({ id: f.approval.id });
    expect(await store.approvals.countPending(agent.id, iso(T0 + 3000))).toBe(3);
    expect(await store.approvals.countPending(agent.id, iso(T0 + 350_000))).toBe(1);
    expect(await store.approvals.countPending(other.id, iso(T0 + 3000))).toBe(1);
  });

  it('transition is a compare-and-set with expiry guards', async () => {
    const a = await store.approvals.create(input());
    const approve = { from: 'pending' as const, to: 'approved' as const, set: { decidedBy: 'user:ann', decidedAt: iso(T0 + 1), expiresAt: iso(T0 + 60_001) } };
    // The hold has passed: the guard refuses.
    expect(await store.approvals.transition(a.id, { ...approve, ifUnexpiredAt: iso(T0 + 120_000) })).toBeUndefined();
    const ok = await store.approvals.transition(a.id, { ...approve, ifUnexpiredAt: iso(T0 + 1) });
    expect(ok).toMatchObject({ state: 'approved', decidedBy: 'user:ann', expiresAt: iso(T0 + 60_001) });
    // Second decider loses.
    expect(await store.approvals.transition(a.id, { ...approve, ifUnexpiredAt: iso(T0 + 2) })).toBeUndefined();
    expect(await store.approvals.transition('apr_unknown', approve)).toBeUndefined();
    // Expire only once due.
    expect(await store.approvals.transition(a.id, { from: 'approved', to: 'expired', ifExpiredAt: iso(T0 + 60_000) })).toBeUndefined();
    expect(await store.approvals.transition(a.id, { from: 'approved', to: 'expired', ifExpiredAt: iso(T0 + 60_001) })).toMatchObject({ state: 'expired' });
  });

  it('the database refuses transitions outside the life cycle and changes of scope', async () => {
    const a = await store.approvals.create(input());
    await store.approvals.transition(a.id, { from: 'pending', to: 'denied', set: { reason: 'no' } });
    expect(() => store.db.prepare(`UPDATE approvals SET state = 'approved' WHERE id = ?`).run(a.id)).toThrow(/invalid approval state transition/);
    const b = await store.approvals.create(input({ state: 'approved' }));
    await store.approvals.transition(b.id, { from: 'approved', to: 'revoked', set: { revokedAt: iso(T0) } });
    expect(() => store.db.prepare(`UPDATE approvals SET state = 'approved' WHERE id = ?`).run(b.id)).toThrow(/invalid approval state transition/);
    expect(() => store.db.prepare(`UPDATE approvals SET scope = '{}' WHERE id = ?`).run(b.id)).toThrow(/never change/);
    expect(() => store.db.prepare(`UPDATE approvals SET agent_id = ? WHERE id = ?`).run(other.id, b.id)).toThrow(/never change/);
  });

  it("a pending stream scope changes as it is approved only in its ports (a port-forward's approver names them), never container, pod or verbs", async () => {
    const forward: StreamScope = { kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'] };
    const approve = { from: 'pending', to: 'approved', set: { decidedBy: 'user:ann', decidedAt: iso(T0), expiresAt: iso(T0 + 60_000) } } as const;
    const tries: [string, StreamScope][] = [
      ['pod', { ...forward, pod: 'db-0', ports: [5432] }],
      ['namespace', { ...forward, namespace: 'prod', ports: [5432] }],
      ['container', { ...forward, container: 'app', ports: [5432] }],
      ['verbs', { ...forward, verbs: ['exec', 'portforward'], ports: [5432] }],
      ['maxSessions', { ...forward, ports: [5432], maxSessions: 1 }],
      ['no ports', { ...forward, ports: [] }],
    ];
    for (const [what, scope] of tries) {
      const a = await store.approvals.create(input({ scope: forward }));
      await expect(store.approvals.transition(a.id, { ...approve, set: { ...approve.set, scope } }), what).rejects.toThrow(/never change/);
      expect((await store.approvals.get(a.id))!.state).toBe('pending');
    }
    // An exec scope takes no ports either (its verbs do not forward), nor anything else.
    const e = await store.approvals.create(input());
    await expect(store.approvals.transition(e.id, { ...approve, set: { ...approve.set, scope: { ...streamScope, ports: [80] } } })).rejects.toThrow(/never change/);
    await expect(store.approvals.transition(e.id, { ...approve, set: { ...approve.set, scope: { ...streamScope, container: 'sidecar' } } })).rejects.toThrow(/never change/);

    const a = await store.approvals.create(input({ scope: forward }));
    const approved = await store.approvals.transition(a.id, { ...approve, set: { ...approve.set, scope: { ...forward, ports: [8080, 5432] } } });
    expect(approved).toMatchObject({ state: 'approved', scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports: [5432, 8080] } });
    // Only as it is approved: afterwards the ports never change.
    expect(() => store.db.prepare(`UPDATE approvals SET scope = ? WHERE id = ?`).run(JSON.stringify({ ...forward, ports: [22] }), a.id)).toThrow(/never change/);
    // A pending one named ports (the channel protocol's ?ports=): its approver may change them.
    const b = await store.approvals.create(input({ scope: { ...forward, ports: [8080] } }));
    expect((await store.approvals.transition(b.id, { ...approve, set: { ...approve.set, scope: { ...forward, ports: [9090] } } }))?.scope).toMatchObject({ ports: [9090] });
  });

  it('incrementSessions counts atomically up to maxSessions, only while usable', async () => {
    const a = await store.approvals.create(input({ state: 'approved', expiresAt: iso(T0 + 60_000) }));
    expect((await store.approvals.incrementSessions(a.id, iso(T0)))?.sessionsStarted).toBe(1);
    expect((await store.approvals.incrementSessions(a.id, iso(T0)))?.sessionsStarted).toBe(2);
    expect(await store.approvals.incrementSessions(a.id, iso(T0))).toBeUndefined();
    expect(() => store.db.prepare('UPDATE approvals SET sessions_started = 3 WHERE id = ?').run(a.id)).toThrow(/CHECK/);

    const b = await store.approvals.create(input({ state: 'approved', scope: { ...streamScope, maxSessions: undefined }, expiresAt: iso(T0 + 60_000) }));
    for (let i = 1; i <= 5; i++) expect((await store.approvals.incrementSessions(b.id, iso(T0)))?.sessionsStarted).toBe(i);
    expect(await store.approvals.incrementSessions(b.id, iso(T0 + 60_000))).toBeUndefined(); // expired
    const p = await store.approvals.create(input());
    expect(await store.approvals.incrementSessions(p.id, iso(T0))).toBeUndefined(); // pending
  });

  it('lists by agent and by effective state; due and next expiry', async () => {
    const p1 = await store.approvals.create(input({ createdAt: iso(T0), expiresAt: iso(T0 + 10_000) }));
    const a1 = await store.approvals.create(input({ state: 'approved', createdAt: iso(T0 + 1), expiresAt: iso(T0 + 5_000) }));
    const a2 = await store.approvals.create(input({ state: 'approved', createdAt: iso(T0 + 2), expiresAt: iso(T0 + 50_000), agentId: other.id, agent: other.name }));
    const at = iso(T0 + 6_000);
    expect((await store.approvals.list()).map((a) => a.id)).toEqual([a2.id, a1.id, p1.id]);
    expect((await store.approvals.list({ agent: 'bot-b' })).map((a) => a.id)).toEqual([a2.id]);
    expect((await store.approvals.list({ agent: agent.id })).map((a) => a.id)).toEqual([a1.id, p1.id]);
    expect((await store.approvals.list({ state: 'approved' })).map((a) => a.id)).toEqual([a2.id, a1.id]);
    expect((await store.approvals.list({ state: 'approved', asOf: at })).map((a) => a.id)).toEqual([a2.id]);
    expect((await store.approvals.list({ state: 'expired', asOf: at })).map((a) => a.id)).toEqual([a1.id]);
    expect((await store.approvals.list({ state: 'pending', asOf: at })).map((a) => a.id)).toEqual([p1.id]);
    expect((await store.approvals.listDue(at)).map((a) => a.id)).toEqual([a1.id]);
    expect(await store.approvals.nextExpiry()).toBe(iso(T0 + 5_000));
    expect((await store.approvals.listApproved(agent.id, iso(T0))).map((a) => a.id)).toEqual([a1.id]);
    expect(await store.approvals.listApproved(agent.id, at)).toEqual([]);
  });

  it('keeps every decision in an append-only history, written with the state change or not at all', async () => {
    const grant = { kind: 'granted', by: 'user:ann', at: iso(T0), reason: 'INC-1', ttlSeconds: 600, expiresAt: iso(T0 + 600_000) } as const;
    const a = await store.approvals.create(input({ state: 'approved', decidedBy: 'user:ann', reason: 'INC-1', expiresAt: iso(T0 + 600_000), decision: grant }));
    expect(a.decisions).toEqual([grant]);
    expect(a.revokedBy).toBeNull();
    const revocation = { kind: 'revoked', by: 'user:bob', at: iso(T0 + 1000), reason: 'done', ttlSeconds: null, expiresAt: null } as const;
    const r = await store.approvals.transition(a.id, { from: 'approved', to: 'revoked', set: { revokedAt: iso(T0 + 1000) }, decision: revocation });
    expect(r).toMatchObject({ state: 'revoked', reason: 'INC-1', revokedBy: 'user:bob', decisions: [grant, revocation] });
    // A compare-and-set that does not apply records nothing.
    expect(await store.approvals.transition(a.id, { from: 'approved', to: 'revoked', decision: { ...revocation, by: 'user:eve' } })).toBeUndefined();
    expect((await store.approvals.get(a.id))!.decisions).toEqual([grant, revocation]);
    expect((await store.approvals.list()).find((x) => x.id === a.id)!.decisions).toEqual([grant, revocation]);
    // Below the code too: no decision is ever edited or removed.
    expect(() => store.db.prepare("UPDATE approval_decisions SET reason = 'rewritten'").run()).toThrow(/append-only/);
    expect(() => store.db.prepare('DELETE FROM approval_decisions').run()).toThrow(/append-only/);
    expect(() => store.db.prepare("INSERT INTO approval_decisions (approval_id, kind, actor, at) VALUES (?, 'vetoed', 'x', 'y')").run(a.id)).toThrow(/CHECK/);
  });
});
