// The lease's own re-reads: confirm() never rejects (a store that cannot be read ends the lease with
// `error`), and the periodic re-read ends a lease whose approval changed without an event reaching it.
import { describe, expect, it, vi } from 'vitest';
import { ApprovalLease, type LeaseDeps, type LeaseEnd } from './lease.js';
import type { Approval } from '../model/approval.js';

const agent = { id: 'agent-1', name: 'robot' };

function approval(over: Partial<Approval> = {}): Approval {
  return {
    id: 'apr_test',
    state: 'approved',
    agentId: agent.id,
    agent: agent.name,
    expiresAt: new Date(Date.now() + 60_000).toISOString(),
    revokedAt: null,
    revokedBy: null,
    reason: null,
    decisions: [],
    ...over,
  } as Approval;
}

function deps(over: { get?: () => Promise<Approval | undefined>; agentActive?: () => Promise<boolean>; recheckMs?: number } = {}): LeaseDeps & { reads: number } {
  const d = {
    reads: 0,
    approvals: {
      watch: () => () => {},
      watchAgent: () => () => {},
      get: async () => {
        d.reads += 1;
        return (over.get ?? (async () => approval()))();
      },
    },
    agentActive: over.agentActive ?? (async () => true),
    ...(over.recheckMs !== undefined ? { recheckMs: over.recheckMs } : {}),
  };
  return d;
}

function ended(lease: ApprovalLease): Promise<LeaseEnd> {
  return new Promise((resolve) => lease.onEnd(resolve));
}

describe('ApprovalLease re-reads', () => {
  it('confirm() resolves with an error end when the store cannot be read', async () => {
    const lease = new ApprovalLease(
      deps({ agentActive: async () => { throw new Error('The database connection is not open'); }, recheckMs: 0 }),
      agent,
      approval(),
    );
    const end = ended(lease);
    await expect(lease.confirm()).resolves.toMatchObject({ reason: 'error', by: 'system' });
    expect((await end).why).toContain('The database connection is not open');
  });

  it('the periodic re-read ends the lease when the store fails later', async () => {
    let broken = false;
    const lease = new ApprovalLease(
      deps({ get: async () => { if (broken) throw new Error('disk I/O error'); return approval(); }, recheckMs: 10 }),
      agent,
      approval(),
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(lease.ended).toBeUndefined();
    broken = true;
    expect(await ended(lease)).toMatchObject({ reason: 'error', why: expect.stringContaining('disk I/O error') });
  });

  it('the periodic re-read ends the lease on a revocation no event reported', async () => {
    let current = approval();
    const lease = new ApprovalLease(deps({ get: async () => current, recheckMs: 10 }), agent, approval());
    const at = new Date().toISOString();
    current = approval({
      state: 'revoked',
      revokedAt: at,
      revokedBy: 'user:bob',
      reason: 'approved for INC-1',
      decisions: [{ kind: 'revoked', by: 'user:bob', at, reason: 'missed', ttlSeconds: null, expiresAt: null }],
    });
    // The revocation's author and reason, not the approver's reason left on the approval.
    expect(await ended(lease)).toMatchObject({ reason: 'revoked', by: 'user:bob', why: 'missed' });
  });

  it('stops re-reading once released', async () => {
    const d = deps({ recheckMs: 10 });
    const lease = new ApprovalLease(d, agent, approval());
    await new Promise((r) => setTimeout(r, 40));
    lease.release();
    const reads = d.reads;
    expect(reads).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 40));
    expect(d.reads).toBe(reads);
  });

  it('leases on the same approval and agent share each round of re-reads', async () => {
    vi.useFakeTimers();
    try {
      let agentReads = 0;
      const d = deps({ agentActive: async () => (agentReads++, true), recheckMs: 1000 });
      // Different deps objects over the same sources, as the endpoint builds one per request.
      const leases = Array.from({ length: 50 }, () => new ApprovalLease({ ...d, approvals: d.approvals }, agent, approval()));
      await vi.advanceTimersByTimeAsync(1000);
      expect({ approvalReads: d.reads, agentReads }).toEqual({ approvalReads: 1, agentReads: 1 });
      await vi.advanceTimersByTimeAsync(1000);
      expect({ approvalReads: d.reads, agentReads }).toEqual({ approvalReads: 2, agentReads: 2 });
      for (const l of leases) l.release();
      await vi.advanceTimersByTimeAsync(3000);
      expect({ approvalReads: d.reads, agentReads }).toEqual({ approvalReads: 2, agentReads: 2 });
    } finally {
      vi.useRealTimers();
    }
  });

  it('a revocation read in a shared round ends every lease on that approval', async () => {
    let current = approval();
    const d = deps({ get: async () => current, recheckMs: 10 });
    const leases = Array.from({ length: 5 }, () => new ApprovalLease(d, agent, approval()));
    const at = new Date().toISOString();
    current = approval({ state: 'revoked', revokedAt: at, revokedBy: 'user:bob', decisions: [{ kind: 'revoked', by: 'user:bob', at, reason: 'done', ttlSeconds: null, expiresAt: null }] });
    const ends = await Promise.all(leases.map(ended));
    expect(ends.map((e) => [e.reason, e.by, e.why])).toEqual(Array(5).fill(['revoked', 'user:bob', 'done']));
  });
});
