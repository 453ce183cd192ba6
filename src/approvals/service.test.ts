import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isBastionError, type BastionError } from '../errors/index.js';
import { openStore, type SqliteStore } from '../store/index.js';
import { tempDataDir } from '../store/test-support.js';
import { SqliteApprovalService } from './service.js';
import { deadlines } from './deadline-clock.js';
import type { Actor, Approval, ApprovalScope, HeldRequest, Operation, StreamScope } from '../model/approval.js';
import type { UserRole } from '../model/vocabulary.js';

const T0 = Date.parse('2025-03-01T10:00:00.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();

const ann: Actor = { kind: 'user', name: 'ann', role: 'approver' };
const bob: Actor = { kind: 'user', name: 'bob', role: 'approver' };
const root: Actor = { kind: 'user', name: 'root', role: 'admin' };
const rita: Actor = { kind: 'user', name: 'rita', role: 'reviewer' };
const botActor: Actor = { kind: 'agent', name: 'bot-a' };
const sys: Actor = { kind: 'system', reason: 'agent revoked' };
const pol: Actor = { kind: 'policy', rule: 'r1', policyHash: 'a'.repeat(64) };

const execScope: StreamScope = { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] };
const execOp = (over: Partial<Extract<Operation, { kind: 'stream' }>> = {}): Operation => ({
  kind: 'stream',
  verb: 'exec',
  namespace: 'demo',
  pod: 'web-0',
  container: 'app',
  command: ['sh'],
  ...over,
});

async function rejects(p: Promise<unknown>, code: string, field?: string): Promise<Error> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(isBastionError(err, code as never), `expected ${code}, got ${String(err)}`).toBe(true);
  if (field !== undefined) expect((err as BastionError).field).toBe(field);
  return err as Error;
}

describe('approval service', () => {
  let tmp: ReturnType<typeof tempDataDir>;
  let store: SqliteStore;
  let t: number;
  let svc: SqliteApprovalService;
  let botA: { id: string; name: string };
  let botB: { id: string; name: string };
  let changed: Approval[];

  const clock = (): Date => new Date(t);
  const held = (over: Partial<HeldRequest> = {}): HeldRequest => ({
    agent: botA,
    scope: { ...execScope, commands: [['ls']] },
    request: { method: 'GET', path: '/api/v1/namespaces/demo/pods/web-0/exec', command: ['ls'] },
    holdSeconds: 120,
    ...over,
  });
  const grant = (scope: ApprovalScope = execScope, over: { agent?: string; ttlSeconds?: number } = {}): Promise<Approval> =>
    svc.grant({ agent: over.agent ?? 'bot-a', scope, ttlSeconds: over.ttlSeconds ?? 600, reason: 'debugging INC-42' }, ann);

  beforeEach(async () => {
    tmp = tempDataDir();
    t = T0;
    store = openStore(tmp.dir, { clock });
    const a = (await store.agents.createAgent('bot-a')).agent;
    const b = (await store.agents.createAgent('bot-b')).agent;
    botA = { id: a.id, name: a.name };
    botB = { id: b.id, name: b.name };
    svc = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents, clock });
    changed = [];
    svc.on('changed', (x) => changed.push(x));
  });
  afterEach(async () => {
    svc.close();
    await store.close();
    tmp.cleanup();
  });

  describe('transitions', () => {
    it('grant: approved at once, requested and decided by the user, expiring after the ttl', async () => {
      const a = await grant(execScope, { ttlSeconds: 300 });
      expect(a).toMatchObject({
        state: 'approved',
        agent: 'bot-a',
        agentId: botA.id,
        scope: execScope,
        requestedBy: 'user:ann',
        decidedBy: 'user:ann',
        reason: 'debugging INC-42',
        ttlSeconds: 300,
        createdAt: iso(T0),
        decidedAt: iso(T0),
        expiresAt: iso(T0 + 300_000),
        revokedAt: null,
        sessionsStarted: 0,
        request: null,
      });
      expect(await svc.get(a.id)).toEqual(a);
      expect(changed.map((c) => [c.id, c.state])).toEqual([[a.id, 'approved']]);
      // An agent can be named by id too.
      expect((await grant(execScope, { agent: botB.id })).agent).toBe('bot-b');
    });

    it('requestOrJoin -> approve: pending with the hold deadline, then approved for the ttl from the decision', async () => {
      const { approval: p, created } = await svc.requestOrJoin(held());
      expect(created).toBe(true);
      expect(p).toMatchObject({
        state: 'pending',
        requestedBy: 'agent:bot-a',
        decidedBy: null,
        ttlSeconds: 900,
        expiresAt: iso(T0 + 120_000),
        request: { method: 'GET', path: '/api/v1/namespaces/demo/pods/web-0/exec', command: ['ls'] },
      });
      t += 10_000;
      let seenInListener: Approval | undefined;
      svc.on('changed', (x) => {
        // Synchronously after the commit: the stored state is already the new one.
        if (x.state === 'approved') seenInListener = x;
      });
      const a = await svc.approve(p.id, ann, { reason: 'ok for ls' });
      expect(seenInListener).toEqual(a);
      expect(a).toMatchObject({
        state: 'approved',
        decidedBy: 'user:ann',
        decidedAt: iso(T0 + 10_000),
        expiresAt: iso(T0 + 10_000 + 900_000),
        reason: 'ok for ls',
      });
      expect((await store.approvals.get(p.id))!.state).toBe('approved');
    });

    it('approve may override the ttl; the override is validated', async () => {
      const { approval: p } = await svc.requestOrJoin(held());
      await rejects(svc.approve(p.id, ann, { ttlSeconds: 0 }), 'INVALID_FIELD', 'ttlSeconds');
      await rejects(svc.approve(p.id, ann, { ttlSeconds: 86_401 }), 'INVALID_FIELD', 'ttlSeconds');
      await rejects(svc.approve(p.id, ann, { ttlSeconds: 1.5 }), 'INVALID_FIELD', 'ttlSeconds');
      const a = await svc.approve(p.id, root, { ttlSeconds: 60 });
      expect(a).toMatchObject({ state: 'approved', ttlSeconds: 60, expiresAt: iso(T0 + 60_000), decidedBy: 'user:root', reason: null });
    });

    it('deny: pending -> denied with the reason and no deadline; the reason is required', async () => {
      const { approval: p } = await svc.requestOrJoin(held());
      await rejects(svc.deny(p.id, ann, ''), 'INVALID_FIELD', 'reason');
      await rejects(svc.deny(p.id, ann, '   '), 'INVALID_FIELD', 'reason');
      await rejects(svc.deny(p.id, ann, undefined as never), 'INVALID_FIELD', 'reason');
      const d = await svc.deny(p.id, ann, 'not during the freeze');
      expect(d).toMatchObject({ state: 'denied', decidedBy: 'user:ann', decidedAt: iso(T0), reason: 'not during the freeze', expiresAt: null });
      expect(changed.at(-1)).toEqual(d);
    });

    it('revoke: approved -> revoked, by an approver, an admin or the system', async () => {
      const a1 = await grant();
      t += 1000;
      const r1 = await svc.revoke(a1.id, bob, 'done');
      // The approver's reason stays; the revocation is its own decision with its author and reason.
      expect(r1).toMatchObject({ state: 'revoked', revokedAt: iso(T0 + 1000), revokedBy: 'user:bob', reason: 'debugging INC-42', decidedBy: 'user:ann', expiresAt: a1.expiresAt });
      expect(r1.decisions).toEqual([
        { kind: 'granted', by: 'user:ann', at: iso(T0), reason: 'debugging INC-42', ttlSeconds: 600, expiresAt: a1.expiresAt },
        { kind: 'revoked', by: 'user:bob', at: iso(T0 + 1000), reason: 'done', ttlSeconds: null, expiresAt: null },
      ]);
      const r2 = await svc.revoke((await grant()).id, root);
      expect(r2).toMatchObject({ state: 'revoked', reason: 'debugging INC-42', revokedBy: 'user:root' });
      expect(r2.decisions.at(-1)).toMatchObject({ kind: 'revoked', by: 'user:root', reason: null });
      const r3 = await svc.revoke((await grant()).id, sys);
      expect(r3).toMatchObject({ state: 'revoked', reason: 'debugging INC-42', revokedBy: 'system' });
      expect(r3.decisions.at(-1)).toMatchObject({ kind: 'revoked', by: 'system', reason: 'agent revoked' });
      expect(changed.filter((c) => c.state === 'revoked').map((c) => c.id)).toEqual([r1.id, r2.id, r3.id]);
    });

    it('revokedAt is stamped in the same run of the event loop that tells the watchers: nothing can be relayed in between', async () => {
      // Each clock read notes whether the loop has turned since (an I/O callback, a relayed chunk, could run there).
      const reads: Array<{ turned: boolean }> = [];
      const stamping = (): Date => {
        const read = { turned: false };
        setImmediate(() => (read.turned = true));
        reads.push(read);
        return clock();
      };
      const timed = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents, clock: stamping });
      const a = await grant();
      t += 1000;
      const seen: Array<{ state: string; revokedAt: string | null; loopTurnedSinceStamp: boolean }> = [];
      timed.watch(a.id, (x) => seen.push({ state: x.state, revokedAt: x.revokedAt, loopTurnedSinceStamp: reads.at(-1)!.turned }));
      const r = await timed.revoke(a.id, bob, 'stop now');
      timed.close();
      expect(seen).toEqual([{ state: 'revoked', revokedAt: iso(T0 + 1000), loopTurnedSinceStamp: false }]);
      expect(r.revokedAt).toBe(iso(T0 + 1000));
    });

    it('refuses every transition outside the life cycle, naming the current state', async () => {
      const pending = (await svc.requestOrJoin(held())).approval;
      const approved = await grant();
      const denied = await svc.deny((await svc.requestOrJoin(held({ scope: execScope }))).approval.id, ann, 'no');
      const revoked = await svc.revoke((await grant()).id, ann);
      const cases: [Promise<unknown>, RegExp][] = [
        [svc.revoke(pending.id, ann), /is pending/],
        [svc.approve(approved.id, ann), /is approved/],
        [svc.deny(approved.id, ann, 'x'), /is approved/],
        [svc.approve(denied.id, ann), /is denied/],
        [svc.deny(denied.id, ann, 'x'), /is denied/],
        [svc.revoke(denied.id, ann), /is denied/],
        [svc.approve(revoked.id, ann), /is revoked/],
        [svc.deny(revoked.id, ann, 'x'), /is revoked/],
        [svc.revoke(revoked.id, ann), /is revoked/],
      ];
      for (const [p, message] of cases) {
        const err = await rejects(p, 'INVALID_STATE', 'state');
        expect(err.message).toMatch(message);
      }
      // Nothing changed.
      expect((await svc.get(pending.id))!.state).toBe('pending');
      expect((await svc.get(approved.id))!.state).toBe('approved');
    });

    it('an expired approval cannot be approved, denied or revoked', async () => {
      const p = (await svc.requestOrJoin(held())).approval;
      const a = await grant(execScope, { ttlSeconds: 60 });
      t += 120_000;
      expect((await rejects(svc.approve(p.id, ann), 'INVALID_STATE', 'state')).message).toMatch(/is expired/);
      expect((await rejects(svc.deny(p.id, ann, 'late'), 'INVALID_STATE', 'state')).message).toMatch(/is expired/);
      expect((await rejects(svc.revoke(a.id, ann), 'INVALID_STATE', 'state')).message).toMatch(/is expired/);
    });

    it('unknown ids are NOT_FOUND', async () => {
      await rejects(svc.approve('apr_aaaaaaaaaaaaaaaaaaaa', ann), 'NOT_FOUND');
      await rejects(svc.deny('apr_aaaaaaaaaaaaaaaaaaaa', ann, 'no'), 'NOT_FOUND');
      await rejects(svc.revoke('apr_aaaaaaaaaaaaaaaaaaaa', ann), 'NOT_FOUND');
      await rejects(svc.startSession('apr_aaaaaaaaaaaaaaaaaaaa'), 'NOT_FOUND');
      expect(await svc.get('apr_aaaaaaaaaaaaaaaaaaaa')).toBeUndefined();
    });

    it('two deciders racing: exactly one wins', async () => {
      const p = (await svc.requestOrJoin(held())).approval;
      const results = await Promise.allSettled([svc.approve(p.id, ann), svc.deny(p.id, bob, 'no'), svc.approve(p.id, root)]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const audit = await store.audit.query({ approvalId: p.id });
      expect(audit.map((r) => r.event).filter((e) => e !== 'approval.requested')).toHaveLength(1);
    });
  });

  describe('who may decide', () => {
    it('an agent never decides anything', async () => {
      const p = (await svc.requestOrJoin(held())).approval;
      const a = await grant();
      await rejects(svc.approve(p.id, botActor), 'FORBIDDEN');
      await rejects(svc.deny(p.id, botActor, 'x'), 'FORBIDDEN');
      await rejects(svc.revoke(a.id, botActor), 'FORBIDDEN');
      await rejects(svc.grant({ agent: 'bot-a', scope: execScope, ttlSeconds: 60, reason: 'me' }, botActor), 'FORBIDDEN');
      // Even for an id that does not exist (no probing through error codes).
      await rejects(svc.approve('apr_aaaaaaaaaaaaaaaaaaaa', botActor), 'FORBIDDEN');
      expect((await svc.get(p.id))!.state).toBe('pending');
    });

    it('a reviewer cannot decide', async () => {
      const p = (await svc.requestOrJoin(held())).approval;
      const a = await grant();
      await rejects(svc.approve(p.id, rita), 'FORBIDDEN');
      await rejects(svc.deny(p.id, rita, 'x'), 'FORBIDDEN');
      await rejects(svc.revoke(a.id, rita), 'FORBIDDEN');
      await rejects(svc.grant({ agent: 'bot-a', scope: execScope, ttlSeconds: 60, reason: 'x' }, rita), 'FORBIDDEN');
    });

    it('nobody approves a request they made', async () => {
      // A request made by a user (e.g. on behalf of an agent).
      const p = await store.approvals.create({
        state: 'pending',
        agentId: botA.id,
        agent: botA.name,
        scope: execScope,
        requestedBy: 'user:ann',
        decidedBy: null,
        reason: null,
        ttlSeconds: 600,
        createdAt: iso(T0),
        decidedAt: null,
        expiresAt: iso(T0 + 120_000),
        request: null,
      });
      const err = await rejects(svc.approve(p.id, ann), 'FORBIDDEN');
      expect(err.message).toMatch(/requested approval .* cannot approve it/);
      expect((await svc.approve(p.id, bob)).state).toBe('approved');
    });

    it('policy and system actors: policy may approve or deny, system may deny or revoke, neither grants', async () => {
      const p1 = (await svc.requestOrJoin(held())).approval;
      expect((await svc.approve(p1.id, pol)).decidedBy).toBe(`policy:r1@${'a'.repeat(64)}`);
      const p2 = (await svc.requestOrJoin(held({ scope: execScope }))).approval;
      await rejects(svc.approve(p2.id, sys), 'FORBIDDEN');
      expect((await svc.deny(p2.id, sys, 'shutting down')).decidedBy).toBe('system');
      await rejects(svc.revoke(p1.id, pol), 'FORBIDDEN');
      await rejects(svc.grant({ agent: 'bot-a', scope: execScope, ttlSeconds: 60, reason: 'x' }, sys), 'FORBIDDEN');
      await rejects(svc.grant({ agent: 'bot-a', scope: execScope, ttlSeconds: 60, reason: 'x' }, pol), 'FORBIDDEN');
    });
  });

  describe("an agent's owner", () => {
    async function ownedBy(owner: string, ownerMayApprove?: UserRole[]): Promise<{ agent: { id: string; name: string }; svc: SqliteApprovalService }> {
      if (!(await store.users.getUserByName(owner))) await store.users.createUser(owner, 'approver');
      const { agent } = await store.agents.createAgent(`bot-of-${owner}`, owner);
      const owned = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents, clock, ...(ownerMayApprove ? { ownerMayApprove } : {}) });
      return { agent: { id: agent.id, name: agent.name }, svc: owned };
    }

    it('neither approves its requests nor grants to it, naming the rule; another approver may, and the owner may deny or revoke', async () => {
      const { agent, svc: s } = await ownedBy('ann');
      try {
        const p = (await s.requestOrJoin(held({ agent }))).approval;
        const err = await rejects(s.approve(p.id, ann, { reason: 'mine' }), 'FORBIDDEN');
        expect(err.message).toBe(
          `user:ann owns agent "bot-of-ann" and cannot approve its requests (rule owner-may-not-approve: another approver must; serve --owner-may-approve ROLE lets owners with that role decide)`,
        );
        await rejects(s.grant({ agent: agent.name, scope: execScope, ttlSeconds: 60, reason: 'mine' }, ann), 'FORBIDDEN');
        expect((await s.get(p.id))!.decisions).toEqual([]);
        const approved = await s.approve(p.id, bob, { reason: 'looked at it' });
        expect(approved.decisions.map((d) => [d.kind, d.by, d.reason])).toEqual([['approved', 'user:bob', 'looked at it']]);
        // Stopping one's own agent is always allowed.
        expect((await s.revoke(approved.id, ann, 'enough')).revokedBy).toBe('user:ann');
        const p2 = (await s.requestOrJoin(held({ agent, scope: execScope }))).approval;
        expect((await s.deny(p2.id, ann, 'no')).state).toBe('denied');
      } finally {
        s.close();
      }
    });

    it('may decide when its role is listed in ownerMayApprove (serve --owner-may-approve)', async () => {
      const { agent, svc: s } = await ownedBy('root', ['admin']);
      try {
        const p = (await s.requestOrJoin(held({ agent }))).approval;
        expect((await s.approve(p.id, root)).decidedBy).toBe('user:root');
        // The list is of roles: an approver who owns an agent is still refused.
        const { agent: annBot, svc: other } = await ownedBy('ann', ['admin']);
        other.close();
        await rejects(s.grant({ agent: annBot.name, scope: execScope, ttlSeconds: 60, reason: 'x' }, ann), 'FORBIDDEN');
      } finally {
        s.close();
      }
    });
  });

  describe('validation names the field', () => {
    const bad: [string, unknown][] = [
      ['scope', undefined],
      ['scope', 'exec'],
      ['scope.kind', { ...execScope, kind: 'pods' }],
      ['scope.namespace', { ...execScope, namespace: 'Demo' }],
      ['scope.namespace', { ...execScope, namespace: '' }],
      ['scope.pod', { ...execScope, pod: 'web_0' }],
      ['scope.pod', { ...execScope, pod: undefined }],
      ['scope.pod', { ...execScope, pod: '../x' }],
      ['scope.container', { ...execScope, container: 'a.b' }],
      ['scope.container', { ...execScope, container: '' }],
      ['scope.verbs', { ...execScope, verbs: [] }],
      ['scope.verbs', { ...execScope, verbs: 'exec' }],
      ['scope.verbs[1]', { ...execScope, verbs: ['exec', 'logs'] }],
      ['scope.commands', { ...execScope, commands: [] }],
      ['scope.commands', { ...execScope, commands: 'ls' }],
      ['scope.commands[0]', { ...execScope, commands: [[]] }],
      ['scope.commands[1]', { ...execScope, commands: [['ls'], 'ls'] }],
      ['scope.commands[0][1]', { ...execScope, commands: [['ls', 3]] }],
      ['scope.commands[0][0]', { ...execScope, commands: [['']] }],
      ['scope.commands', { ...execScope, verbs: ['attach'], commands: [['ls']] }],
      ['scope.maxSessions', { ...execScope, maxSessions: 0 }],
      ['scope.maxSessions', { ...execScope, maxSessions: 1.5 }],
      ['scope.maxSessions', { ...execScope, maxSessions: '2' }],
      ['scope.extra', { ...execScope, extra: true }],
      ['scope.verb', { kind: 'rest', verb: 'exec', resource: 'pods', namespace: 'demo', name: 'x' }],
      ['scope.resource', { kind: 'rest', verb: 'get', resource: 'Pods', namespace: 'demo', name: 'x' }],
      ['scope.resource', { kind: 'rest', verb: 'get', resource: 'pods/', namespace: 'demo', name: 'x' }],
      ['scope.resource', { kind: 'rest', verb: 'get', resource: 'pods/a/b', namespace: 'demo', name: 'x' }],
      ['scope.resource', { kind: 'rest', verb: 'get', resource: 'deployments.', namespace: 'demo', name: 'x' }],
      ['scope.resource', { kind: 'rest', verb: 'get', resource: '', namespace: 'demo', name: 'x' }],
      ['scope.namespace', { kind: 'rest', verb: 'get', resource: 'pods', namespace: 'a/b', name: 'x' }],
      ['scope.name', { kind: 'rest', verb: 'get', resource: 'pods', namespace: 'demo', name: 'x/y' }],
      ['scope.name', { kind: 'rest', verb: 'get', resource: 'pods', namespace: 'demo', name: '..' }],
      ['scope.maxSessions', { kind: 'rest', verb: 'get', resource: 'pods', namespace: 'demo', name: 'x', maxSessions: 1 }],
    ];
    for (const [field, scope] of bad) {
      it(`${field}: ${JSON.stringify(scope) ?? 'undefined'}`, async () => {
        // A field the scope's kind does not have is UNKNOWN_FIELD; every other refusal INVALID_FIELD.
        const code = field === 'scope.extra' || (field === 'scope.maxSessions' && (scope as { kind?: string }).kind === 'rest') ? 'UNKNOWN_FIELD' : 'INVALID_FIELD';
        await rejects(svc.grant({ agent: 'bot-a', scope: scope as ApprovalScope, ttlSeconds: 60, reason: 'x' }, ann), code, field);
        await rejects(svc.requestOrJoin(held({ scope: scope as ApprovalScope })), code, field);
      });
    }

    it('accepts the documented resource forms and cluster-scoped / collection REST scopes', async () => {
      for (const resource of ['pods', 'deployments.apps', 'pods/ephemeralcontainers', 'widgets.example.com/status', 'pods/exec']) {
        const a = await grant({ kind: 'rest', verb: 'patch', resource, namespace: 'demo', name: 'web-0' });
        expect(a.scope).toEqual({ kind: 'rest', verb: 'patch', resource, namespace: 'demo', name: 'web-0' });
      }
      expect((await grant({ kind: 'rest', verb: 'list', resource: 'nodes', namespace: '', name: '' })).scope).toMatchObject({ namespace: '', name: '' });
      expect((await grant({ kind: 'rest', verb: 'get', resource: 'clusterroles.rbac.authorization.k8s.io', namespace: '', name: 'system:controller:x' })).state).toBe(
        'approved',
      );
    });

    it('agent, ttlSeconds, reason, holdSeconds, request', async () => {
      const g = (over: Record<string, unknown>): Promise<Approval> =>
        svc.grant({ agent: 'bot-a', scope: execScope, ttlSeconds: 60, reason: 'x', ...over } as never, ann);
      await rejects(g({ agent: 'nobody' }), 'INVALID_FIELD', 'agent');
      await rejects(g({ agent: '' }), 'INVALID_FIELD', 'agent');
      await store.agents.revokeAgent('bot-b');
      expect((await rejects(g({ agent: 'bot-b' }), 'INVALID_FIELD', 'agent')).message).toMatch(/revoked/);
      await rejects(svc.requestOrJoin(held({ agent: botB })), 'INVALID_FIELD', 'agent');
      await rejects(svc.requestOrJoin(held({ agent: { id: botA.id, name: 'bot-b' } })), 'INVALID_FIELD', 'agent.name');
      for (const ttlSeconds of [0, -1, 86_401, 1.5, '60', null]) await rejects(g({ ttlSeconds }), 'INVALID_FIELD', 'ttlSeconds');
      expect((await g({ ttlSeconds: 86_400 })).ttlSeconds).toBe(86_400);
      for (const reason of ['', '  ', undefined, 42, 'x'.repeat(2001)]) await rejects(g({ reason }), 'INVALID_FIELD', 'reason');
      expect((await g({ reason: '  trimmed  ' })).reason).toBe('trimmed');
      await rejects(svc.requestOrJoin(held({ holdSeconds: 0 })), 'INVALID_FIELD', 'holdSeconds');
      await rejects(svc.requestOrJoin(held({ request: { method: '', path: '/x' } })), 'INVALID_FIELD', 'request.method');
      await rejects(svc.requestOrJoin(held({ request: null as never })), 'INVALID_FIELD', 'request');
      // Only the two valid grants above were stored.
      expect(await svc.list()).toHaveLength(2);
    });
  });

  describe('requestOrJoin', () => {
    it('the same agent and scope joins one pending approval; anything else creates another', async () => {
      const first = await svc.requestOrJoin(held());
      t += 500;
      // kubectl's SPDY retry after the WebSocket attempt: same operation, other method.
      const second = await svc.requestOrJoin(held({ request: { method: 'POST', path: '/api/v1/namespaces/demo/pods/web-0/exec', command: ['ls'] } }));
      expect(first.created).toBe(true);
      expect(second.created).toBe(false);
      expect(second.approval.id).toBe(first.approval.id);
      // The hold is as long as the last waiter's.
      expect(second.approval.expiresAt).toBe(iso(T0 + 500 + 120_000));
      // Key order and verb order do not make a scope different.
      const reordered = { commands: [['ls']], verbs: ['exec'], container: 'app', pod: 'web-0', namespace: 'demo', kind: 'stream' } as ApprovalScope;
      expect((await svc.requestOrJoin(held({ scope: reordered }))).created).toBe(false);
      expect(await svc.list({ state: 'pending' })).toHaveLength(1);
      expect(await svc.pendingCount(botA.id)).toBe(1);

      expect((await svc.requestOrJoin(held({ agent: botB }))).created).toBe(true);
      expect((await svc.requestOrJoin(held({ scope: { ...execScope, commands: [['ls', '-l']] } }))).created).toBe(true);
      expect((await svc.requestOrJoin(held({ scope: { ...execScope, container: 'sidecar', commands: [['ls']] } }))).created).toBe(true);
      expect(await svc.pendingCount(botA.id)).toBe(3);
      expect(await svc.pendingCount(botB.id)).toBe(1);

      // Once decided, the next identical request creates a new pending approval.
      await svc.deny(first.approval.id, ann, 'no');
      const third = await svc.requestOrJoin(held());
      expect(third.created).toBe(true);
      expect(third.approval.id).not.toBe(first.approval.id);

      const events = (await store.audit.query({ approvalId: first.approval.id })).map((r) => r.event);
      expect(events).toEqual(['approval.requested', 'approval.joined', 'approval.joined', 'approval.denied']);
    });

    it('concurrent identical requests create one pending approval', async () => {
      const results = await Promise.all(Array.from({ length: 8 }, () => svc.requestOrJoin(held())));
      expect(new Set(results.map((r) => r.approval.id)).size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
    });

    it('returns scopes in the declaration key order (what a caller JSON-compares)', async () => {
      const { approval } = await svc.requestOrJoin(held());
      expect(Object.keys(approval.scope)).toEqual(['kind', 'namespace', 'pod', 'container', 'verbs', 'commands']);
      const [listed] = await svc.list({ state: 'pending', agent: 'bot-a' });
      expect(JSON.stringify(listed!.scope)).toBe(JSON.stringify({ kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], commands: [['ls']] }));
    });
  });

  describe('autoApprove', () => {
    it('creates an approved approval decided by the policy rule and hash', async () => {
      const hash = 'b'.repeat(64);
      const a = await svc.autoApprove({ agent: botA, scope: { ...execScope, maxSessions: 1 }, request: { method: 'POST', path: '/p' } }, 'read-only-exec', hash, 300);
      expect(a).toMatchObject({
        state: 'approved',
        requestedBy: 'agent:bot-a',
        decidedBy: `policy:read-only-exec@${hash}`,
        ttlSeconds: 300,
        expiresAt: iso(T0 + 300_000),
        request: { method: 'POST', path: '/p' },
      });
      const [row] = await store.audit.query({ approvalId: a.id });
      expect(row).toMatchObject({ event: 'approval.auto-approved', actor: `policy:read-only-exec@${hash}`, rule: 'read-only-exec', policyHash: hash, agentName: 'bot-a' });
      // Policy rules may grant up to the policy schema's limit (7 days); not 0, not more.
      expect((await svc.autoApprove({ agent: botA, scope: execScope, request: { method: 'POST', path: '/p' } }, 'r', hash, 7 * 86_400)).ttlSeconds).toBe(604_800);
      await rejects(svc.autoApprove({ agent: botA, scope: execScope, request: { method: 'POST', path: '/p' } }, 'r', hash, 0), 'INVALID_FIELD', 'ttlSeconds');
      await rejects(svc.autoApprove({ agent: botA, scope: execScope, request: { method: 'POST', path: '/p' } }, '', hash, 60), 'INVALID_FIELD', 'rule');
      await rejects(svc.autoApprove({ agent: botA, scope: execScope, request: { method: 'POST', path: '/p' } }, 'r', '', 60), 'INVALID_FIELD', 'policyHash');
    });
  });

  describe('findUsable', () => {
    it('covers only the exact pod, container, agent and verb of a stream scope', async () => {
      const a = await grant({ ...execScope, verbs: ['exec'] });
      expect((await svc.findUsable(botA.id, execOp()))?.id).toBe(a.id);
      expect(await svc.findUsable(botA.id, execOp({ container: 'sidecar' }))).toBeUndefined();
      expect(await svc.findUsable(botA.id, execOp({ pod: 'web-1' }))).toBeUndefined();
      expect(await svc.findUsable(botA.id, execOp({ namespace: 'prod' }))).toBeUndefined();
      expect(await svc.findUsable(botB.id, execOp())).toBeUndefined();
      expect(await svc.findUsable(botA.id, execOp({ verb: 'attach', command: [] }))).toBeUndefined();
      expect(await svc.findUsable(botA.id, execOp({ verb: 'portforward', command: [] }))).toBeUndefined();
      expect(await svc.findUsable(botA.id, { kind: 'rest', verb: 'get', resource: 'pods', namespace: 'demo', name: 'web-0' })).toBeUndefined();

      const att = await grant({ ...execScope, verbs: ['attach'] });
      expect((await svc.findUsable(botA.id, execOp({ verb: 'attach', command: [] })))?.id).toBe(att.id);
      expect((await svc.findUsable(botA.id, execOp()))?.id).toBe(a.id);
    });

    it('enforces the exec command allow-list exactly (argv, order, no prefixes)', async () => {
      const a = await grant({ ...execScope, verbs: ['exec', 'attach'], commands: [['ls', '-l'], ['cat', '/etc/hostname']] });
      expect((await svc.findUsable(botA.id, execOp({ command: ['ls', '-l'] })))?.id).toBe(a.id);
      expect((await svc.findUsable(botA.id, execOp({ command: ['cat', '/etc/hostname'] })))?.id).toBe(a.id);
      for (const command of [['ls'], ['ls', '-l', '/'], ['-l', 'ls'], ['ls -l'], ['sh', '-c', 'ls -l'], []]) {
        expect(await svc.findUsable(botA.id, execOp({ command }))).toBeUndefined();
      }
      // The allow-list is for exec; attach is allowed by its verb.
      expect((await svc.findUsable(botA.id, execOp({ verb: 'attach', command: [] })))?.id).toBe(a.id);
    });

    it('stops covering once maxSessions are used, expired or revoked', async () => {
      const a = await grant({ ...execScope, maxSessions: 2 });
      const b = await grant({ ...execScope }, { ttlSeconds: 60 });
      // Prefers the one expiring last.
      expect((await svc.findUsable(botA.id, execOp()))?.id).toBe(a.id);
      expect(await svc.startSession(a.id)).toBe(true);
      expect(await svc.startSession(a.id)).toBe(true);
      expect(await svc.startSession(a.id)).toBe(false);
      expect((await svc.get(a.id))!.sessionsStarted).toBe(2);
      expect((await svc.findUsable(botA.id, execOp()))?.id).toBe(b.id);
      t += 60_000;
      expect(await svc.findUsable(botA.id, execOp())).toBeUndefined();
      expect(await svc.startSession(b.id)).toBe(false);

      const c = await grant();
      expect((await svc.findUsable(botA.id, execOp()))?.id).toBe(c.id);
      await svc.revoke(c.id, ann);
      expect(await svc.findUsable(botA.id, execOp())).toBeUndefined();
      expect(await svc.startSession(c.id)).toBe(false);
      // A pending or denied approval is never usable.
      const p = (await svc.requestOrJoin(held({ scope: execScope }))).approval;
      expect(await svc.findUsable(botA.id, execOp())).toBeUndefined();
      expect(await svc.startSession(p.id)).toBe(false);
    });

    it('REST scopes cover the same verb, resource, namespace and name only', async () => {
      const scope: ApprovalScope = { kind: 'rest', verb: 'get', resource: 'secrets', namespace: 'demo', name: 'db-credentials' };
      const a = await grant(scope);
      const op = { kind: 'rest' as const, verb: 'get' as const, resource: 'secrets', namespace: 'demo', name: 'db-credentials' };
      expect((await svc.findUsable(botA.id, op))?.id).toBe(a.id);
      expect(await svc.findUsable(botA.id, { ...op, verb: 'list' })).toBeUndefined();
      expect(await svc.findUsable(botA.id, { ...op, verb: 'delete' })).toBeUndefined();
      expect(await svc.findUsable(botA.id, { ...op, resource: 'configmaps' })).toBeUndefined();
      expect(await svc.findUsable(botA.id, { ...op, namespace: 'prod' })).toBeUndefined();
      expect(await svc.findUsable(botA.id, { ...op, name: 'other' })).toBeUndefined();
      expect(await svc.findUsable(botA.id, { ...op, name: '' })).toBeUndefined();
      expect(await svc.findUsable(botB.id, op)).toBeUndefined();
    });

    it('startSession is atomic under concurrency and emits changed', async () => {
      const a = await grant({ ...execScope, maxSessions: 3 });
      changed.length = 0;
      const results = await Promise.all(Array.from({ length: 8 }, () => svc.startSession(a.id)));
      expect(results.filter(Boolean)).toHaveLength(3);
      expect((await svc.get(a.id))!.sessionsStarted).toBe(3);
      expect(changed.map((c) => c.sessionsStarted)).toEqual([1, 2, 3]);
    });
  });

  describe('expiry', () => {
    it('is computed on read: an approved approval past expiresAt is expired in get, list and findUsable', async () => {
      const a = await grant(execScope, { ttlSeconds: 60 });
      const p = (await svc.requestOrJoin(held())).approval;
      t += 59_999;
      expect((await svc.get(a.id))!.state).toBe('approved');
      t += 1;
      expect((await svc.get(a.id))!.state).toBe('expired');
      expect((await svc.list({ state: 'approved' })).map((x) => x.id)).toEqual([]);
      expect((await svc.list({ state: 'expired' })).map((x) => x.id)).toEqual([a.id]);
      expect((await svc.list({ state: 'pending' })).map((x) => x.id)).toEqual([p.id]);
      expect(await svc.findUsable(botA.id, execOp())).toBeUndefined();
      t += 60_000;
      expect((await svc.get(p.id))!.state).toBe('expired');
      expect(await svc.pendingCount(botA.id)).toBe(0);
      await rejects(svc.list({ state: 'bogus' as never }), 'INVALID_FIELD', 'state');
    });

    it('expireDue persists, audits and emits for pending (hold deadline) and approved approvals', async () => {
      const a = await grant(execScope, { ttlSeconds: 60 });
      const p = (await svc.requestOrJoin(held({ holdSeconds: 30 }))).approval;
      const keep = await grant(execScope, { ttlSeconds: 600 });
      changed.length = 0;
      t += 30_000;
      expect((await svc.expireDue()).map((x) => x.id)).toEqual([p.id]);
      t += 30_000;
      expect((await svc.expireDue()).map((x) => x.id)).toEqual([a.id]);
      expect(changed.map((c) => [c.id, c.state])).toEqual([
        [p.id, 'expired'],
        [a.id, 'expired'],
      ]);
      expect((await store.approvals.get(a.id))!.state).toBe('expired');
      expect((await store.approvals.get(p.id))!.state).toBe('expired');
      expect((await store.approvals.get(keep.id))!.state).toBe('approved');
      const rows = await store.audit.query({ event: 'approval.expired' });
      expect(rows.map((r) => [r.approvalId, r.actor])).toEqual([
        [p.id, 'system'],
        [a.id, 'system'],
      ]);
      expect(await svc.expireDue()).toEqual([]);
    });
  });

  describe('expiry and the sessions under it', () => {
    it('expireDue cuts every session due (the deadline clock) before it writes the expiry', async () => {
      const order: string[] = [];
      const approvals = new Proxy(store.approvals, {
        get(target, prop, receiver) {
          const v = Reflect.get(target, prop, receiver) as unknown;
          if (prop !== 'transition' || typeof v !== 'function') return typeof v === 'function' ? v.bind(target) : v;
          return (...args: unknown[]) => {
            order.push('written');
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
      const own = new SqliteApprovalService({ approvals, agents: store.agents, clock });
      try {
        await own.grant({ agent: 'bot-a', scope: execScope, ttlSeconds: 60, reason: 'debugging INC-42' }, ann);
        t += 60_000;
        // A session whose deadline has passed while no chunk and no timer has run yet.
        const off = deadlines.add(Date.now() - 1, () => order.push('cut'));
        const expired = await own.expireDue();
        off();
        expect(expired).toHaveLength(1);
        expect(order).toEqual(['cut', 'written']);
      } finally {
        own.close();
      }
    });
  });

  describe('abandonment (nobody waiting)', () => {
    it('nobodyWaiting marks a pending approval, which is abandoned on read after the grace (30 s by default), and refuses approve with why', async () => {
      const p = (await svc.requestOrJoin(held())).approval;
      expect(p.nobodyWaitingSince).toBeNull();
      changed.length = 0;
      t += 1_000;
      const marked = await svc.nobodyWaiting(p.id);
      expect(marked).toMatchObject({ state: 'pending', nobodyWaitingSince: iso(T0 + 1_000) });
      // A second call keeps the first instant.
      t += 5_000;
      expect((await svc.nobodyWaiting(p.id))!.nobodyWaitingSince).toBe(iso(T0 + 1_000));
      expect(changed.map((c) => [c.id, c.state, c.nobodyWaitingSince])).toEqual([
        [p.id, 'pending', iso(T0 + 1_000)],
        [p.id, 'pending', iso(T0 + 1_000)],
      ]);
      t = T0 + 1_000 + 29_999;
      expect((await svc.get(p.id))!.state).toBe('pending');
      t += 1;
      expect((await svc.get(p.id))!.state).toBe('abandoned');
      expect((await svc.list({ state: 'pending' })).map((x) => x.id)).toEqual([]);
      const err = await rejects(svc.approve(p.id, ann), 'INVALID_STATE', 'state');
      expect(err.message).toBe(
        `approval ${p.id} is abandoned; nobody is waiting for it (every client that asked went away at ${iso(T0 + 1_000)} and none came back within 30 s), so it can no longer be approved; the agent has to ask again`,
      );
      await rejects(svc.deny(p.id, ann, 'no'), 'INVALID_STATE', 'state');
      // The sweep writes it, with its audit row, and emits.
      changed.length = 0;
      expect((await svc.expireDue()).map((x) => [x.id, x.state])).toEqual([[p.id, 'abandoned']]);
      expect(changed.map((c) => [c.id, c.state])).toEqual([[p.id, 'abandoned']]);
      expect(await store.approvals.get(p.id)).toMatchObject({ state: 'abandoned', nobodyWaitingSince: iso(T0 + 1_000) });
      const [row] = await store.audit.query({ event: 'approval.abandoned' });
      expect(row).toMatchObject({ approvalId: p.id, actor: 'system' });
      expect(JSON.parse(row!.details!)).toMatchObject({ state: 'abandoned', nobodyWaitingSince: iso(T0 + 1_000), abandonGraceSeconds: 30 });
      // The same request again is a new pending approval.
      const again = await svc.requestOrJoin(held());
      expect(again.created).toBe(true);
      expect(again.approval.id).not.toBe(p.id);
      expect(await store.audit.verify()).toMatchObject({ ok: true });
    });

    it('a client coming back within the grace (joining, or someoneWaiting) clears it; a decided approval is not marked', async () => {
      const p = (await svc.requestOrJoin(held())).approval;
      await svc.nobodyWaiting(p.id);
      t += 20_000;
      const joined = await svc.requestOrJoin(held());
      expect(joined).toMatchObject({ created: false, approval: { id: p.id, nobodyWaitingSince: null } });
      await svc.nobodyWaiting(p.id);
      t += 20_000;
      expect((await svc.someoneWaiting(p.id))!.nobodyWaitingSince).toBeNull();
      t += 60_000;
      expect((await svc.get(p.id))!.state).toBe('pending');
      expect(await svc.expireDue()).toEqual([]);
      const approved = await svc.approve(p.id, ann);
      expect(approved.state).toBe('approved');
      expect(await svc.nobodyWaiting(p.id)).toBeUndefined();
      expect((await store.approvals.get(p.id))!.nobodyWaitingSince).toBeNull();
    });

    it('an approve racing the abandonment loses the compare-and-set once the grace has run out', async () => {
      const p = (await svc.requestOrJoin(held())).approval;
      await svc.nobodyWaiting(p.id);
      // The grace runs out between the approver's read (its state checks, bypassed here) and the write.
      t += 30_000;
      const spy = vi.spyOn(svc as unknown as { expectState: () => void }, 'expectState').mockImplementation(() => undefined);
      const err = await rejects(svc.approve(p.id, ann), 'INVALID_STATE', 'state');
      spy.mockRestore();
      expect(err.message).toContain('is abandoned; nobody is waiting for it');
      expect((await store.approvals.get(p.id))!.state).toBe('pending');
    });

    it('the grace is configurable and expiry before the grace ends wins', async () => {
      const quick = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents, clock, abandonGraceSeconds: 5 });
      try {
        const p = (await quick.requestOrJoin(held({ holdSeconds: 3 }))).approval;
        await quick.nobodyWaiting(p.id);
        t += 3_000;
        expect((await quick.get(p.id))!.state).toBe('expired');
        const q = (await quick.requestOrJoin(held({ holdSeconds: 60 }))).approval;
        await quick.nobodyWaiting(q.id);
        t += 5_000;
        expect((await quick.get(q.id))!.state).toBe('abandoned');
        expect((await quick.expireDue()).map((x) => [x.id, x.state])).toEqual([
          [p.id, 'expired'],
          [q.id, 'abandoned'],
        ]);
      } finally {
        quick.close();
      }
    });
  });

  describe('events and audit', () => {
    it("agentRevoked tells the agent's watchers even when ending one of its approvals fails (its audit row cannot be written)", async () => {
      const a = await grant();
      svc.close();
      // The audit row is written in the change's transaction: a failing append fails the change.
      store.db.exec(`CREATE TEMP TRIGGER no_revoked_rows BEFORE INSERT ON audit_events WHEN NEW.event = 'approval.revoked'
        BEGIN SELECT RAISE(ABORT, 'audit disk full'); END`);
      svc = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents, clock, onError: () => {} });
      const seen: string[] = [];
      svc.watch(a.id, (x) => seen.push(`approval:${x.state}`));
      svc.watchAgent(botA.id, (r) => seen.push(`agent:${r.agent.name}`));
      await expect(svc.agentRevoked(botA, ann, 'compromised')).rejects.toThrow('audit disk full');
      store.db.exec('DROP TRIGGER temp.no_revoked_rows');
      // Nothing was stored without its row; the agent's own watchers (sessions and requests held
      // without an approval) are told at once all the same, not at their next re-read.
      expect((await store.approvals.get(a.id))?.state).toBe('approved');
      expect(await store.audit.query({ event: 'approval.revoked' })).toEqual([]);
      expect(seen).toEqual(['agent:bot-a']);
    });

    it('an approval change and its audit row are one transaction: a failed row leaves the approval as it was', async () => {
      const p = (await svc.requestOrJoin(held())).approval;
      store.db.exec(`CREATE TEMP TRIGGER no_rows BEFORE INSERT ON audit_events WHEN NEW.event = 'approval.approved'
        BEGIN SELECT RAISE(ABORT, 'audit disk full'); END`);
      await expect(svc.approve(p.id, ann)).rejects.toThrow('audit disk full');
      store.db.exec('DROP TRIGGER temp.no_rows');
      const stored = await store.approvals.get(p.id);
      expect(stored).toMatchObject({ state: 'pending', decidedBy: null, decisions: [] });
      const approved = await svc.approve(p.id, ann);
      const [row] = await store.audit.query({ event: 'approval.approved' });
      // The row carries the columns the bastion decides from, as stored.
      expect(JSON.parse(row!.details!)).toMatchObject({ state: 'approved', expiresAt: approved.expiresAt, decidedBy: 'user:ann', scope: approved.scope });
    });

    it('a listener that throws neither fails the decision nor starves other listeners', async () => {
      const errors: unknown[] = [];
      svc.close();
      svc = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents, clock, onError: (e) => errors.push(e) });
      const seen: string[] = [];
      svc.on('changed', () => {
        throw new Error('listener bug');
      });
      svc.on('changed', (a) => seen.push(a.state));
      const a = await grant();
      expect(a.state).toBe('approved');
      expect(seen).toEqual(['approved']);
      expect(errors).toHaveLength(1);
      const off = (x: Approval): void => void seen.push(`off:${x.state}`);
      svc.on('changed', off);
      svc.off('changed', off);
      await svc.revoke(a.id, ann);
      expect(seen).toEqual(['approved', 'revoked']);
    });

    it('writes one audit row per change, with actor, approval, agent and details, and the chain verifies', async () => {
      const g = await grant();
      const p = (await svc.requestOrJoin(held())).approval;
      await svc.requestOrJoin(held());
      await svc.approve(p.id, ann, { reason: 'fine' });
      const d = (await svc.requestOrJoin(held({ scope: execScope }))).approval;
      await svc.deny(d.id, bob, 'no shells');
      await svc.revoke(g.id, root, 'finished');
      const auto = await svc.autoApprove({ agent: botA, scope: execScope, request: { method: 'POST', path: '/p' } }, 'r', 'c'.repeat(64), 60);
      t += 61_000;
      await svc.expireDue();

      const rows = await store.audit.query({ limit: 1000 });
      expect(rows.map((r) => [r.event, r.approvalId, r.actor])).toEqual([
        ['approval.granted', g.id, 'user:ann'],
        ['approval.requested', p.id, 'agent:bot-a'],
        ['approval.joined', p.id, 'agent:bot-a'],
        ['approval.approved', p.id, 'user:ann'],
        ['approval.requested', d.id, 'agent:bot-a'],
        ['approval.denied', d.id, 'user:bob'],
        ['approval.revoked', g.id, 'user:root'],
        ['approval.auto-approved', auto.id, `policy:r@${'c'.repeat(64)}`],
        ['approval.expired', auto.id, 'system'],
      ]);
      for (const r of rows) {
        expect(r.agentId).toBe(botA.id);
        expect(r.agentName).toBe('bot-a');
        expect(r.namespace).toBe('demo');
        expect(r.name).toBe('web-0');
        const details = JSON.parse(r.details!) as Record<string, unknown>;
        expect(details['scope']).toMatchObject({ kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app' });
      }
      expect(JSON.parse(rows[0]!.details!)).toMatchObject({ reason: 'debugging INC-42', ttlSeconds: 600, state: 'approved' });
      expect(JSON.parse(rows[5]!.details!)).toMatchObject({ reason: 'no shells', state: 'denied' });
      expect(JSON.parse(rows[6]!.details!)).toMatchObject({ reason: 'finished', state: 'revoked' });
      expect(rows[1]).toMatchObject({ method: 'GET', path: '/api/v1/namespaces/demo/pods/web-0/exec', resource: 'pods', subresource: 'exec', stream: 'exec' });
      // REST scopes fill the columns as request rows do: resource without its group.
      const rest = await grant({ kind: 'rest', verb: 'patch', resource: 'deployments.apps/scale', namespace: 'demo', name: 'web' });
      const [restRow] = await store.audit.query({ approvalId: rest.id });
      expect(restRow).toMatchObject({ verb: 'patch', apiGroup: 'apps', resource: 'deployments', subresource: 'scale', namespace: 'demo', name: 'web' });
      expect(await store.audit.verify()).toMatchObject({ ok: true, rows: 10 });
    });
  });
});

describe('approval service expiry timer', () => {
  let tmp: ReturnType<typeof tempDataDir>;
  let store: SqliteStore;
  let svc: SqliteApprovalService | undefined;
  let botA: { id: string; name: string };

  beforeEach(async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    tmp = tempDataDir();
    store = openStore(tmp.dir);
    const a = (await store.agents.createAgent('bot-a')).agent;
    botA = { id: a.id, name: a.name };
  });
  afterEach(async () => {
    svc?.close();
    vi.useRealTimers();
    await store.close();
    tmp.cleanup();
  });

  const make = (): SqliteApprovalService => new SqliteApprovalService({ approvals: store.approvals, agents: store.agents });
  const ann: Actor = { kind: 'user', name: 'ann', role: 'approver' };

  it('persists expiry at the deadline, emits changed at once and writes the audit row', async () => {
    svc = make();
    const events: [string, string, number][] = [];
    svc.on('changed', (a) => events.push([a.id, a.state, Date.now()]));
    const a = await svc.grant({ agent: 'bot-a', scope: execScope, ttlSeconds: 5, reason: 'x' }, ann);
    const p = (
      await svc.requestOrJoin({ agent: botA, scope: { ...execScope, verbs: ['attach'] }, request: { method: 'POST', path: '/a' }, holdSeconds: 3 })
    ).approval;
    events.length = 0;
    await vi.advanceTimersByTimeAsync(2_999);
    expect(events).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(events).toEqual([[p.id, 'expired', T0 + 3_000]]);
    expect((await store.approvals.get(p.id))!.state).toBe('expired');
    await vi.advanceTimersByTimeAsync(2_000);
    expect(events).toEqual([
      [p.id, 'expired', T0 + 3_000],
      [a.id, 'expired', T0 + 5_000],
    ]);
    expect((await store.approvals.get(a.id))!.state).toBe('expired');
    expect((await store.audit.query({ event: 'approval.expired' })).map((r) => r.approvalId)).toEqual([p.id, a.id]);
    expect(await store.audit.verify()).toMatchObject({ ok: true });
  });

  it('an earlier deadline added later re-arms the timer; a decided approval is not expired', async () => {
    svc = make();
    const events: string[] = [];
    svc.on('changed', (a) => events.push(`${a.id}:${a.state}`));
    const long = await svc.grant({ agent: 'bot-a', scope: execScope, ttlSeconds: 3600, reason: 'x' }, ann);
    const short = await svc.grant({ agent: 'bot-a', scope: execScope, ttlSeconds: 10, reason: 'x' }, ann);
    const revoked = await svc.grant({ agent: 'bot-a', scope: execScope, ttlSeconds: 5, reason: 'x' }, ann);
    await svc.revoke(revoked.id, ann);
    events.length = 0;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(events).toEqual([`${short.id}:expired`]);
    expect((await store.approvals.get(revoked.id))!.state).toBe('revoked');
    await vi.advanceTimersByTimeAsync(3_590_000);
    expect(events).toEqual([`${short.id}:expired`, `${long.id}:expired`]);
  });

  it('at startup, approvals left by an earlier run are expired when due (already due: at once)', async () => {
    const first = make();
    const due = await first.grant({ agent: 'bot-a', scope: execScope, ttlSeconds: 10, reason: 'x' }, ann);
    const later = await first.grant({ agent: 'bot-a', scope: execScope, ttlSeconds: 100, reason: 'x' }, ann);
    first.close();
    vi.setSystemTime(T0 + 50_000);
    svc = make();
    const events: string[] = [];
    svc.on('changed', (a) => events.push(`${a.id}:${a.state}`));
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toEqual([`${due.id}:expired`]);
    await vi.advanceTimersByTimeAsync(50_000);
    expect(events).toEqual([`${due.id}:expired`, `${later.id}:expired`]);
  });

  it('abandons a pending approval nobody waits on when the grace ends, by its own timer, also after a restart', async () => {
    svc = make();
    const events: [string, string, number][] = [];
    svc.on('changed', (a) => events.push([a.id, a.state, Date.now()]));
    const p = (await svc.requestOrJoin({ agent: botA, scope: execScope, request: { method: 'POST', path: '/a' }, holdSeconds: 120 })).approval;
    await vi.advanceTimersByTimeAsync(1_000);
    await svc.nobodyWaiting(p.id);
    svc.close();
    // A new run picks the mark up from the store.
    svc = make();
    svc.on('changed', (a) => events.push([a.id, a.state, Date.now()]));
    events.length = 0;
    await vi.advanceTimersByTimeAsync(29_999);
    expect(events).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(events).toEqual([[p.id, 'abandoned', T0 + 31_000]]);
    expect((await store.audit.query({ event: 'approval.abandoned' })).map((r) => r.approvalId)).toEqual([p.id]);
  });

  it('close stops the timer', async () => {
    svc = make();
    const events: string[] = [];
    svc.on('changed', (a) => events.push(a.state));
    await svc.grant({ agent: 'bot-a', scope: execScope, ttlSeconds: 5, reason: 'x' }, ann);
    svc.close();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(events).toEqual(['approved']);
    expect((await store.approvals.list({ state: 'approved' })).length).toBe(1);
  });
});
