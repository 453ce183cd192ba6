// Held requests over the real approval service and a temporary store: a request that needs an
// approval waits while an approver decides, joins an identical pending one, is bounded per agent,
// and a refusal is repeated to a retry of the same client run.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Actor, Approval, Operation } from '../model/approval.js';
import { silentLogger } from '../observability/log.js';
import { openStore, type SqliteStore } from '../store/index.js';
import { tempDataDir } from '../store/test-support.js';
import { holdRefused } from '../endpoint/refusals.js';
import type { ResourceRequest } from '../model/request.js';
import type { Status } from '../protocol/status.js';
import { HoldManager, refusedApprovalId, type HoldOptions, type HoldOutcome } from './holds.js';
import { scopeFor } from './operation.js';
import { SqliteApprovalService } from './service.js';

const ann: Actor = { kind: 'user', name: 'ann', role: 'approver' };

const execOp = (over: Partial<Extract<Operation, { kind: 'stream' }>> = {}): Operation => ({
  kind: 'stream',
  verb: 'exec',
  namespace: 'demo',
  pod: 'web-0',
  container: 'app',
  command: ['ls', '-l'],
  ...over,
});
const request = { method: 'POST', path: '/api/v1/namespaces/demo/pods/web-0/exec', command: ['ls', '-l'] };
const SUBJECT = 'web-0';

/** A hold's outcome as the endpoint answers it: a refusal worded by endpoint/refusals.ts. */
type Answer = { ok: true; approval: Approval; held: boolean } | { ok: false; reason: string; approvalId: string | null; status: Status };

function answer(outcome: HoldOutcome, pod: string): Answer {
  if (outcome.ok) return outcome;
  const req = { kind: 'resource', resource: 'pods', subresource: 'exec', name: pod, namespace: 'demo', apiGroup: '', verb: 'create' } as ResourceRequest;
  return { ok: false, reason: outcome.refusal.reason, approvalId: refusedApprovalId(outcome.refusal), status: holdRefused(req, outcome.refusal) };
}

/** HoldManager.obtain, answered for pod `pod` in demo. */
type Obtain = (agent: { id: string; name: string }, op: Operation, req: typeof request, pod: string, signal: AbortSignal, clientRun?: string) => Promise<Answer>;

describe('HoldManager', () => {
  let tmp: ReturnType<typeof tempDataDir>;
  let store: SqliteStore;
  let svc: SqliteApprovalService;
  let bot: { id: string; name: string };
  let pendingSeen: Approval[];
  let pendingWaiters: (() => void)[];
  let watching: number;

  beforeEach(async () => {
    tmp = tempDataDir();
    store = openStore(tmp.dir);
    const a = (await store.agents.createAgent('bot-a')).agent;
    bot = { id: a.id, name: a.name };
    svc = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents });
    // Counts the holds watching an approval (the service's own watch, unchanged).
    watching = 0;
    const watch = svc.watch.bind(svc);
    svc.watch = (id, listener) => {
      watching++;
      const unwatch = watch(id, listener);
      return () => {
        watching--;
        unwatch();
      };
    };
    pendingSeen = [];
    pendingWaiters = [];
  });
  afterEach(async () => {
    svc.close();
    await store.close();
    tmp.cleanup();
  });

  const holds = (over: Partial<HoldOptions> = {}): { obtain: Obtain } => {
    const manager = new HoldManager(svc, {
      holdSeconds: 120,
      maxPendingPerAgent: 5,
      log: silentLogger(),
      onPending: (a) => {
        pendingSeen.push(a);
        for (const w of pendingWaiters.splice(0)) w();
      },
      ...over,
    });
    return { obtain: async (agent, op, req, pod, sig, clientRun) => answer(await manager.obtain(agent, op, req, sig, clientRun), pod) };
  };

  /** Resolves once `n` pending approvals have been announced (event-driven, no polling). */
  const pendingAnnounced = (n: number): Promise<Approval> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (pendingSeen.length >= n) resolve(pendingSeen[n - 1]!);
        else pendingWaiters.push(check);
      };
      check();
    });

  /**
   * Resolves once `n` holds are waiting on the service (each watches its approval): a hold that
   * joins an existing pending approval announces nothing, so this is how a test knows it waits.
   */
  const holdsWaiting = async (n: number): Promise<void> => {
    for (let i = 0; i < 2000; i++) {
      if (watching >= n) return;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`never saw ${n} holds waiting`);
  };

  const signal = (): AbortSignal => new AbortController().signal;

  it('a usable approval is returned at once: no hold, no pending approval', async () => {
    const granted = await svc.grant({ agent: 'bot-a', scope: scopeFor(execOp()), ttlSeconds: 600, reason: 'INC-1' }, ann);
    const outcome = await holds().obtain(bot, execOp(), request, SUBJECT, signal());
    expect(outcome).toEqual({ ok: true, approval: granted, held: false });
    expect(await svc.list({ state: 'pending' })).toEqual([]);
    expect(pendingSeen).toEqual([]);
  });

  it('holds, then an approval lets the request through with the approved approval', async () => {
    const obtained = holds().obtain(bot, execOp(), request, SUBJECT, signal(), 'run-1');
    const pending = await pendingAnnounced(1);
    expect(pending).toMatchObject({ state: 'pending', agent: 'bot-a', scope: scopeFor(execOp()), request, requestedBy: 'agent:bot-a' });
    await svc.approve(pending.id, ann, { reason: 'go ahead' });
    const outcome = await obtained;
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.held).toBe(true);
    expect(outcome.approval).toMatchObject({ id: pending.id, state: 'approved', decidedBy: 'user:ann', reason: 'go ahead' });
  });

  it('holds, then a denial answers 403 naming the approval, the denier and the reason', async () => {
    const obtained = holds().obtain(bot, execOp(), request, SUBJECT, signal(), 'run-1');
    const pending = await pendingAnnounced(1);
    await svc.deny(pending.id, ann, 'not during the freeze');
    const outcome = await obtained;
    expect(outcome).toEqual({
      ok: false,
      reason: 'denied',
      approvalId: pending.id,
      status: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `pods "web-0" is forbidden: kube-bastion approval ${pending.id} was denied by user:ann: not during the freeze`,
        reason: 'Forbidden',
        details: { causes: [{ reason: 'KubeBastionApprovalDenied', message: pending.id }] },
        code: 403,
      },
    });
  });

  it('a hold nobody decides ends at its deadline with an expired 403', async () => {
    const obtained = holds({ holdSeconds: 1 }).obtain(bot, execOp(), request, SUBJECT, signal(), 'run-1');
    const pending = await pendingAnnounced(1);
    const outcome = await obtained;
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.reason).toBe('expired');
    expect(outcome.approvalId).toBe(pending.id);
    expect(outcome.status).toMatchObject({ code: 403, reason: 'Forbidden' });
    expect(outcome.status.message).toBe(
      `pods "web-0" is forbidden: kube-bastion approval ${pending.id} was not decided in time (the request was held until ${pending.expiresAt})`,
    );
    expect(outcome.status.details?.causes).toEqual([{ reason: 'KubeBastionApprovalExpired', message: pending.id }]);
    expect((await svc.get(pending.id))!.state).toBe('expired');
  });

  it('a store that cannot be read while the request is held refuses it as not decided, with no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      // No event will come (the watch is silent) and every read fails: only the backstop answers.
      svc.watch = () => () => {};
      const obtained = holds({ holdSeconds: 1 }).obtain(bot, execOp(), request, SUBJECT, signal(), 'run-1');
      const pending = await pendingAnnounced(1);
      svc.get = async () => {
        throw new Error('The database connection is not open');
      };
      const outcome = await obtained;
      expect(outcome).toMatchObject({ ok: false, reason: 'expired', approvalId: pending.id, status: { code: 403 } });
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it("the client going away ends the hold as 'gone' (499); the pending approval stays for the approver", async () => {
    const controller = new AbortController();
    const obtained = holds().obtain(bot, execOp(), request, SUBJECT, controller.signal, 'run-1');
    const pending = await pendingAnnounced(1);
    controller.abort();
    const outcome = await obtained;
    expect(outcome).toEqual({ ok: false, reason: 'gone', approvalId: pending.id, status: expect.objectContaining({ code: 499, reason: 'ClientClosed' }) });
    expect((await svc.get(pending.id))!.state).toBe('pending');
  });

  /** Polls the stored approval until `ok` holds (the holds tell the service in the background). */
  const storedUntil = async (id: string, ok: (a: Approval) => boolean): Promise<Approval> => {
    for (let i = 0; i < 400; i++) {
      const a = await svc.get(id);
      if (a && ok(a)) return a;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`approval ${id} never matched`);
  };

  it('nobody waiting: marked only when every joined client has gone; a client coming back clears it', async () => {
    const manager = holds();
    const first = new AbortController();
    const second = new AbortController();
    // kubectl's WebSocket attempt and its SPDY retry join one pending approval.
    const a = manager.obtain(bot, execOp(), request, SUBJECT, first.signal, 'run-1');
    const pending = await pendingAnnounced(1);
    const b = manager.obtain(bot, execOp(), { ...request, method: 'GET' }, SUBJECT, second.signal, 'run-1');
    await holdsWaiting(2);
    first.abort();
    expect((await a).ok).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect((await svc.get(pending.id))!.nobodyWaitingSince).toBeNull();
    second.abort();
    expect((await b).ok).toBe(false);
    const marked = await storedUntil(pending.id, (x) => x.nobodyWaitingSince !== null);
    expect(marked.state).toBe('pending');
    // The same request again (a new client run) joins it and clears the mark; approving lets it through.
    const again = manager.obtain(bot, execOp(), request, SUBJECT, signal(), 'run-2');
    await holdsWaiting(1);
    expect((await svc.get(pending.id))!.nobodyWaitingSince).toBeNull();
    await svc.approve(pending.id, ann);
    expect(await again).toMatchObject({ ok: true, held: true, approval: { id: pending.id, nobodyWaitingSince: null } });
  });

  it('a client that joins while the last other waiter leaves is not left marked as nobody waiting', async () => {
    const manager = holds();
    const first = new AbortController();
    const a = manager.obtain(bot, execOp(), request, SUBJECT, first.signal, 'run-1');
    const pending = await pendingAnnounced(1);
    // The second client's join is stored (clearing any mark) but answers late; meanwhile the first leaves.
    const join = svc.requestOrJoin.bind(svc);
    let release!: () => void;
    const late = new Promise<void>((r) => (release = r));
    svc.requestOrJoin = async (held) => {
      const out = await join(held);
      await late;
      return out;
    };
    const b = manager.obtain(bot, execOp(), request, SUBJECT, signal(), 'run-2');
    await new Promise((r) => setTimeout(r, 20));
    first.abort();
    expect((await a).ok).toBe(false);
    await storedUntil(pending.id, (x) => x.nobodyWaitingSince !== null);
    release();
    await storedUntil(pending.id, (x) => x.nobodyWaitingSince === null);
    await svc.approve(pending.id, ann);
    expect(await b).toMatchObject({ ok: true, held: true, approval: { id: pending.id } });
  });

  it('a pending approval nobody waits on ends abandoned after the grace; approving it then is refused saying nobody waits', async () => {
    svc.close();
    svc = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents, abandonGraceSeconds: 1 });
    const controller = new AbortController();
    const obtained = holds().obtain(bot, execOp(), request, SUBJECT, controller.signal, 'run-1');
    const pending = await pendingAnnounced(1);
    controller.abort();
    await obtained;
    await storedUntil(pending.id, (x) => x.nobodyWaitingSince !== null);
    const abandoned = await new Promise<Approval>((resolve) => {
      const off = svc.watch(pending.id, (x) => {
        if (x.state === 'abandoned') {
          off();
          resolve(x);
        }
      });
    });
    expect((await store.approvals.get(pending.id))!.state).toBe('abandoned');
    expect(abandoned.nobodyWaitingSince).not.toBeNull();
    await expect(svc.approve(pending.id, ann)).rejects.toThrow(/is abandoned; nobody is waiting for it/);
    expect((await store.audit.query({ event: 'approval.abandoned' })).map((r) => r.approvalId)).toEqual([pending.id]);
  });

  it('a client already gone when the hold starts is answered at once', async () => {
    const controller = new AbortController();
    controller.abort();
    const outcome = await holds().obtain(bot, execOp(), request, SUBJECT, controller.signal);
    expect(outcome.ok === false && outcome.reason).toBe('gone');
  });

  it('two holds of the same operation join one pending approval, and one decision answers both', async () => {
    const manager = holds();
    // kubectl's WebSocket attempt and its SPDY retry carry the same Kubectl-Session.
    const first = manager.obtain(bot, execOp(), request, SUBJECT, signal(), 'run-1');
    const pending = await pendingAnnounced(1);
    const second = manager.obtain(bot, execOp(), { ...request, method: 'GET' }, SUBJECT, signal(), 'run-1');
    await holdsWaiting(2);
    expect((await svc.list({ state: 'pending' })).map((a) => a.id)).toEqual([pending.id]);
    expect(pendingSeen).toHaveLength(1);
    await svc.approve(pending.id, ann);
    const [a, b] = await Promise.all([first, second]);
    expect(a.ok && a.approval.id).toBe(pending.id);
    expect(b.ok && b.approval.id).toBe(pending.id);
    expect(a.ok && b.ok && [a.held, b.held]).toEqual([true, true]);
  });

  it('a different command is a different operation: its own pending approval', async () => {
    const manager = holds();
    const controller = new AbortController();
    void manager.obtain(bot, execOp(), request, SUBJECT, controller.signal);
    void manager.obtain(bot, execOp({ command: ['rm', '-rf', '/'] }), request, SUBJECT, controller.signal);
    const [p1, p2] = [await pendingAnnounced(1), await pendingAnnounced(2)];
    expect(p1.id).not.toBe(p2.id);
    expect([p1.scope, p2.scope]).toEqual(expect.arrayContaining([scopeFor(execOp()), scopeFor(execOp({ command: ['rm', '-rf', '/'] }))]));
    controller.abort();
  });

  it('the per-agent pending limit answers 429 without creating another, but an identical request still joins', async () => {
    const manager = holds({ maxPendingPerAgent: 1 });
    const controller = new AbortController();
    const first = manager.obtain(bot, execOp(), request, SUBJECT, controller.signal);
    const pending = await pendingAnnounced(1);

    const other = await manager.obtain(bot, execOp({ pod: 'web-1' }), request, 'web-1', controller.signal);
    expect(other).toEqual({
      ok: false,
      reason: 'limit',
      approvalId: null,
      status: expect.objectContaining({
        code: 429,
        reason: 'TooManyRequests',
        message: 'pods "web-1" is forbidden: agent "bot-a" already has 1 pending approvals (limit 1)',
      }),
    });
    expect((await svc.list({ state: 'pending' })).map((a) => a.id)).toEqual([pending.id]);

    // The same operation is not a new pending approval: it joins, whatever the limit.
    const joined = manager.obtain(bot, execOp(), request, SUBJECT, signal());
    await holdsWaiting(2);
    await svc.approve(pending.id, ann);
    expect((await joined).ok).toBe(true);
    expect((await first).ok).toBe(true);
    expect(pendingSeen).toHaveLength(1);
  });

  it('the limit counts only this agent', async () => {
    const other = (await store.agents.createAgent('bot-b')).agent;
    const manager = holds({ maxPendingPerAgent: 1 });
    const controller = new AbortController();
    void manager.obtain(bot, execOp(), request, SUBJECT, controller.signal);
    await pendingAnnounced(1);
    void manager.obtain({ id: other.id, name: other.name }, execOp(), request, SUBJECT, controller.signal);
    const second = await pendingAnnounced(2);
    expect(second.agent).toBe('bot-b');
    controller.abort();
  });

  describe('refusal memory', () => {
    async function deniedOnce(manager: { obtain: Obtain }, clientRun: string | undefined): Promise<{ outcome: Answer; pending: Approval }> {
      const obtained = manager.obtain(bot, execOp(), request, SUBJECT, signal(), clientRun);
      const pending = await pendingAnnounced(pendingSeen.length + 1);
      await svc.deny(pending.id, ann, 'no');
      return { outcome: await obtained, pending };
    }

    it('a retry in the same client run gets the same refusal at once, without a new pending approval', async () => {
      const manager = holds();
      const { outcome: first, pending } = await deniedOnce(manager, 'run-1');
      expect(first.ok).toBe(false);
      const retry = await manager.obtain(bot, execOp(), { ...request, method: 'GET' }, SUBJECT, signal(), 'run-1');
      expect(retry).toEqual(first);
      expect(retry.ok === false && retry.approvalId).toBe(pending.id);
      expect(pendingSeen).toHaveLength(1);
      expect(await svc.list({ state: 'pending' })).toEqual([]);
    });

    it('a different client run is asked again: a new pending approval', async () => {
      const manager = holds();
      const { pending } = await deniedOnce(manager, 'run-1');
      const controller = new AbortController();
      const again = manager.obtain(bot, execOp(), request, SUBJECT, controller.signal, 'run-2');
      const next = await pendingAnnounced(2);
      expect(next.id).not.toBe(pending.id);
      expect(next.state).toBe('pending');
      controller.abort();
      expect(await again).toMatchObject({ ok: false, reason: 'gone', approvalId: next.id });
    });

    it('without a client run, retries of the same operation share the memory', async () => {
      const manager = holds();
      const { outcome } = await deniedOnce(manager, undefined);
      expect(await manager.obtain(bot, execOp(), request, SUBJECT, signal())).toEqual(outcome);
      expect(pendingSeen).toHaveLength(1);
    });

    it('a different operation in the same run is not refused by the memory', async () => {
      const manager = holds();
      await deniedOnce(manager, 'run-1');
      const controller = new AbortController();
      void manager.obtain(bot, execOp({ command: ['id'] }), request, SUBJECT, controller.signal, 'run-1');
      expect((await pendingAnnounced(2)).scope).toEqual(scopeFor(execOp({ command: ['id'] })));
      controller.abort();
    });

    it('the memory lasts refusalMemorySeconds; 0 forgets at once', async () => {
      const manager = holds({ refusalMemorySeconds: 0 });
      await deniedOnce(manager, 'run-1');
      const controller = new AbortController();
      void manager.obtain(bot, execOp(), request, SUBJECT, controller.signal, 'run-1');
      expect((await pendingAnnounced(2)).state).toBe('pending');
      controller.abort();
    });

    it('an expired hold is remembered too, and repeated as expired', async () => {
      const manager = holds({ holdSeconds: 1 });
      const first = await manager.obtain(bot, execOp(), request, SUBJECT, signal(), 'run-1');
      expect(first.ok === false && first.reason).toBe('expired');
      const retry = await manager.obtain(bot, execOp(), request, SUBJECT, signal(), 'run-1');
      expect(retry).toEqual(first);
      expect(pendingSeen).toHaveLength(1);
    });
  });
});
