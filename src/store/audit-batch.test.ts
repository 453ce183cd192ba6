import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { StreamScope } from '../model/approval.js';
import { auditHead, openStore, type AuditRecord, type SqliteStore } from './index.js';
import { tempDataDir } from './test-support.js';

const scope: StreamScope = { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], commands: [['ls']], maxSessions: 1 };

/** The rows committed to the file, as another connection (another process) sees them. */
function committed(dir: string): Array<{ id: number; source: string | null; event: string }> {
  const other = openStore(dir);
  try {
    return other.db.prepare('SELECT id, source, event FROM audit_events ORDER BY id').all() as Array<{ id: number; source: string | null; event: string }>;
  } finally {
    other.db.close();
  }
}

const read = (i: number) => ({ event: 'request', source: `read-${i}`, method: 'GET', path: '/api/v1/pods', decision: 'allow' as const });

/** While it is installed every insert into the audit table fails, as a full or failing disk would. */
function breakInserts(store: SqliteStore): () => void {
  store.db.exec(`CREATE TEMP TRIGGER audit_fails BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk I/O error (simulated)'); END;`);
  return () => store.db.exec('DROP TRIGGER temp.audit_fails');
}

describe('audit batcher (group commits with a bounded window)', () => {
  let tmp: ReturnType<typeof tempDataDir>;
  let store: SqliteStore;
  const failures: number[] = [];
  const recoveries: number[] = [];

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    tmp = tempDataDir();
    failures.length = 0;
    recoveries.length = 0;
    store = openStore(tmp.dir, {
      auditBatch: { maxDelayMs: 50, maxRows: 4, retryMs: 1000, onFailure: (_err, queued) => failures.push(queued), onRecovered: (n) => recoveries.push(n) },
    });
  });
  afterEach(async () => {
    vi.useRealTimers();
    await store.close().catch(() => {});
    tmp.cleanup();
  });

  it('a read through the store (the API, an export, verify, a checkpoint) commits what is queued first: it sees every accepted row', async () => {
    void store.auditBatch.append(read(1));
    void store.auditBatch.append(read(2));
    expect(store.auditBatch.queued).toBe(2);
    expect((await store.audit.query({ order: 'asc' })).map((r) => r.source)).toEqual(['read-1', 'read-2']);
    expect(store.auditBatch.queued).toBe(0);
    expect(committed(tmp.dir).map((r) => r.source)).toEqual(['read-1', 'read-2']);
  });

  it('commits a group no later than the window after its first row, in one transaction, in order', async () => {
    const settled: AuditRecord[] = [];
    void store.auditBatch.append(read(1)).then((r) => settled.push(r));
    await vi.advanceTimersByTimeAsync(20);
    void store.auditBatch.append(read(2)).then((r) => settled.push(r));
    await vi.advanceTimersByTimeAsync(29);
    // 49 ms after the first row: nothing committed, nothing visible to another process.
    expect(committed(tmp.dir)).toEqual([]);
    expect(auditHead(store.db).rows).toBe(0);
    expect(store.auditBatch.queued).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(committed(tmp.dir).map((r) => r.source)).toEqual(['read-1', 'read-2']);
    expect(settled.map((r) => [r.id, r.source])).toEqual([
      [1, 'read-1'],
      [2, 'read-2'],
    ]);
    expect(store.auditBatch.queued).toBe(0);
    expect(await store.audit.verify()).toMatchObject({ ok: true, rows: 2 });
  });

  it('commits at once when maxRows wait, without waiting for the window', async () => {
    for (let i = 1; i <= 4; i++) void store.auditBatch.append(read(i));
    await vi.advanceTimersByTimeAsync(0);
    expect(committed(tmp.dir)).toHaveLength(4);
  });

  it('a durable append (a decision) commits the rows accepted before it first: the chain keeps their order', async () => {
    void store.auditBatch.append(read(1));
    void store.auditBatch.append(read(2));
    const decision = await store.audit.append({ event: 'approval.approved', actor: 'user:ann' });
    expect(decision.id).toBe(3);
    // Committed before the durable append returned, not by the window.
    expect(committed(tmp.dir).map((r) => r.event)).toEqual(['request', 'request', 'approval.approved']);
    void store.auditBatch.append(read(3));
    await vi.advanceTimersByTimeAsync(50);
    expect(committed(tmp.dir).map((r) => r.source ?? r.event)).toEqual(['read-1', 'read-2', 'approval.approved', 'read-3']);
    expect(await store.audit.verify()).toMatchObject({ ok: true, rows: 4 });
  });

  it("an approval change (its audit row in the change's own transaction) commits the accepted rows before it", async () => {
    const agent = (await store.agents.createAgent('bot-a')).agent;
    void store.auditBatch.append(read(1));
    const iso = new Date().toISOString();
    await store.approvals.create(
      { state: 'pending', agentId: agent.id, agent: agent.name, scope, requestedBy: 'agent:bot-a', decidedBy: null, reason: null, ttlSeconds: 60, createdAt: iso, decidedAt: null, expiresAt: null, request: null },
      (a) => ({ event: 'approval.requested', approvalId: a.id, actor: 'agent:bot-a' }),
    );
    expect(committed(tmp.dir).map((r) => r.source ?? r.event)).toEqual(['read-1', 'approval.requested']);
    expect(await store.audit.verify()).toMatchObject({ ok: true, rows: 2 });
  });

  it('a failed commit drops nothing: the batcher turns unhealthy, durable appends and decisions fail closed, a retry commits every row in order', async () => {
    const repair = breakInserts(store);
    const settled: string[] = [];
    for (let i = 1; i <= 3; i++) void store.auditBatch.append(read(i)).then((r) => settled.push(r.source!));
    await vi.advanceTimersByTimeAsync(50);
    expect(store.auditBatch.healthy).toBe(false);
    expect(failures).toEqual([3]);
    expect(store.auditBatch.queued).toBe(3);
    // Nothing takes effect that the log cannot record, and the queued rows stay ahead of it.
    await expect(store.audit.append({ event: 'approval.approved' })).rejects.toThrow(/disk I\/O error/);
    const agent = (await store.agents.createAgent('bot-b')).agent;
    const iso = new Date().toISOString();
    await expect(
      store.approvals.create(
        { state: 'pending', agentId: agent.id, agent: agent.name, scope, requestedBy: 'agent:bot-b', decidedBy: null, reason: null, ttlSeconds: 60, createdAt: iso, decidedAt: null, expiresAt: null, request: null },
        (a) => ({ event: 'approval.requested', approvalId: a.id }),
      ),
    ).rejects.toThrow(/disk I\/O error/);
    expect(await store.approvals.list({})).toEqual([]);
    // Rows still accepted meanwhile (requests in flight) queue behind the others.
    void store.auditBatch.append(read(4)).then((r) => settled.push(r.source!));
    await vi.advanceTimersByTimeAsync(1000);
    expect(failures).toEqual([3, 4]);
    expect(committed(tmp.dir)).toEqual([]);
    repair();
    await vi.advanceTimersByTimeAsync(1000);
    expect(store.auditBatch.healthy).toBe(true);
    expect(recoveries).toEqual([4]);
    expect(settled).toEqual(['read-1', 'read-2', 'read-3', 'read-4']);
    expect(committed(tmp.dir).map((r) => r.source)).toEqual(['read-1', 'read-2', 'read-3', 'read-4']);
    expect(await store.audit.verify()).toMatchObject({ ok: true, rows: 4 });
  });

  it('close commits what is queued (shutdown), then refuses more', async () => {
    void store.auditBatch.append(read(1));
    void store.auditBatch.append(read(2));
    await store.close();
    expect(committed(tmp.dir).map((r) => r.source)).toEqual(['read-1', 'read-2']);
    await expect(store.auditBatch.append(read(3))).rejects.toThrow(/closed/);
  });

  it('close that cannot commit rejects the queued rows and says so (nothing vanishes silently)', async () => {
    const repair = breakInserts(store);
    const row = store.auditBatch.append(read(1));
    expect(() => store.auditBatch.close()).toThrow(/disk I\/O error/);
    await expect(row).rejects.toThrow(/disk I\/O error/);
    repair();
  });

  it('a bad field is refused at once and queues nothing', async () => {
    await expect(store.auditBatch.append({ event: 'request', statusCode: -1 })).rejects.toThrow(/statusCode/);
    expect(store.auditBatch.queued).toBe(0);
  });
});
