// The lease over the real approval service and a temporary store: it ends at the instant of a
// revocation, an expiry or the agent's revocation, whether that comes before it is confirmed or
// after, and says who ended it and why.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Actor, Approval } from '../model/approval.js';
import { openStore, type SqliteStore } from '../store/index.js';
import { tempDataDir } from '../store/test-support.js';
import { deadlines } from './deadline-clock.js';
import { ApprovalLease, type LeaseEnd } from './lease.js';
import { SqliteApprovalService } from './service.js';

const ann: Actor = { kind: 'user', name: 'ann', role: 'approver' };
const root: Actor = { kind: 'user', name: 'root', role: 'admin' };
const scope = { kind: 'stream' as const, namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec' as const] };

describe('ApprovalLease', () => {
  let tmp: ReturnType<typeof tempDataDir>;
  let store: SqliteStore;
  let svc: SqliteApprovalService;
  let bot: { id: string; name: string };
  const leases: ApprovalLease[] = [];

  beforeEach(async () => {
    tmp = tempDataDir();
    store = openStore(tmp.dir);
    const a = (await store.agents.createAgent('bot-a')).agent;
    bot = { id: a.id, name: a.name };
    svc = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents });
  });
  afterEach(async () => {
    for (const l of leases.splice(0)) l.release();
    svc.close();
    await store.close();
    tmp.cleanup();
  });

  const lease = (approval: Approval | null): ApprovalLease => {
    const l = new ApprovalLease({ approvals: svc, agentActive: async (id) => (await store.agents.getAgentById(id))?.revokedAt === null }, bot, approval);
    leases.push(l);
    return l;
  };
  const ended = (l: ApprovalLease): Promise<LeaseEnd> => new Promise((resolve) => l.onEnd(resolve));
  const grant = (ttlSeconds = 600) => svc.grant({ agent: 'bot-a', scope, ttlSeconds, reason: 'INC-7' }, ann);

  it('holds while the approval stands; confirm() finds nothing wrong', async () => {
    const l = lease(await grant());
    expect(await l.confirm()).toBeUndefined();
    expect(l.ended).toBeUndefined();
    expect(l.deadline).toBe(Date.parse(l.approval!.expiresAt!));
  });

  it('ends the instant the approval is revoked, naming the revoker and the reason', async () => {
    const approval = await grant();
    const l = lease(approval);
    const end = ended(l);
    const revoked = await svc.revoke(approval.id, root, 'wrong pod');
    expect(await end).toEqual({ reason: 'revoked', approval: revoked, by: 'user:root', why: 'wrong pod', at: revoked.revokedAt });
    expect(await l.confirm()).toMatchObject({ reason: 'revoked' });
  });

  it('a revocation between the gate and the lease is caught by confirm()', async () => {
    const approval = await grant();
    await svc.revoke(approval.id, root, 'too late');
    const l = lease(approval);
    expect(l.ended).toBeUndefined();
    // The re-read names the revoker from the approval's own decision history.
    expect(await l.confirm()).toMatchObject({ reason: 'revoked', by: 'user:root', why: 'too late' });
  });

  it('ends at the approval expiry by its own timer', async () => {
    const approval = await grant(1);
    const l = lease(approval);
    const end = await ended(l);
    expect(end).toMatchObject({ reason: 'expired', by: 'system', at: approval.expiresAt });
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(approval.expiresAt!));
  });

  it("ends when the agent is revoked, with or without an approval, and the agent's approvals are revoked", async () => {
    const approval = await grant();
    const withApproval = lease(approval);
    const allowed = lease(null);
    const ends = Promise.all([ended(withApproval), ended(allowed)]);
    await store.agents.revokeAgent('bot-a');
    const changed = await svc.agentRevoked(bot, root, 'compromised');
    const [a, b] = await ends;
    // The approval's own revocation arrives first (it is revoked as part of the agent's).
    expect(a).toMatchObject({ reason: 'revoked', by: 'user:root' });
    expect(b).toMatchObject({ reason: 'agent-revoked', by: 'user:root', why: 'compromised', approval: null });
    expect(changed.map((x) => [x.id, x.state])).toEqual([[approval.id, 'revoked']]);
    const after = (await svc.get(approval.id))!;
    expect(after.reason).toBe('INC-7');
    expect(after.decisions.map((d) => [d.kind, d.by, d.reason])).toEqual([
      ['granted', 'user:ann', 'INC-7'],
      ['revoked', 'user:root', 'agent "bot-a" was revoked: compromised'],
    ]);
    expect(await lease(null).confirm()).toMatchObject({ reason: 'agent-revoked' });
  });

  it('release() stops watching: a later revocation reaches no listener', async () => {
    const approval = await grant();
    const l = lease(approval);
    let calls = 0;
    l.onEnd(() => calls++);
    l.release();
    await svc.revoke(approval.id, root, 'after release');
    expect(calls).toBe(0);
  });

  it("a lease's deadline leaves the process's clock when it is revoked, released, or expires, and one taken past its deadline holds none", async () => {
    const held = deadlines.size;
    const revoked = await grant();
    const a = lease(revoked);
    const b = lease(await grant());
    expect(deadlines.size).toBe(held + 2);
    await svc.revoke(revoked.id, root, 'done');
    expect(a.ended?.reason).toBe('revoked');
    expect(deadlines.size).toBe(held + 1);
    b.release();
    expect(deadlines.size).toBe(held);
    const short = await grant(1);
    const c = lease(short);
    await ended(c);
    expect(deadlines.size).toBe(held);
    expect(lease(short).ended?.reason).toBe('expired');
    expect(deadlines.size).toBe(held);
  });

  it('thousands of leases cost one map entry each: no emitter listener, no MaxListeners warning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      const approval = await grant();
      const many = Array.from({ length: 2000 }, () => lease(approval));
      expect(svc.listenerCount('changed')).toBe(0);
      const all = Promise.all(many.map(ended));
      await svc.revoke(approval.id, root, 'all at once');
      expect((await all).every((e) => e.reason === 'revoked')).toBe(true);
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
