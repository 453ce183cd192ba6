import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBastionError } from '../errors/index.js';
import { exitCodeStatus, successStatus } from '../protocol/status.js';
import { openStore, SESSION_ID_PATTERN, type SessionStartInput, type SqliteStore } from './index.js';
import { tempDataDir } from './test-support.js';

describe('session store', () => {
  let tmp: ReturnType<typeof tempDataDir>;
  let store: SqliteStore;
  let t: number;
  let agent: { id: string; name: string };
  let approvalId: string;

  function startInput(over: Partial<SessionStartInput> = {}): SessionStartInput {
    return {
      approvalId,
      agent,
      operation: 'exec',
      transport: 'websocket',
      protocol: 'v5.channel.k8s.io',
      upstreamProtocol: 'v5.channel.k8s.io',
      namespace: 'demo',
      pod: 'web-0',
      container: 'app',
      command: ['sh', '-c', 'echo hi'],
      tty: true,
      client: '127.0.0.1:50123',
      ...over,
    };
  }

  beforeEach(async () => {
    tmp = tempDataDir();
    t = Date.parse('2025-03-01T10:00:00.000Z');
    store = openStore(tmp.dir, { clock: () => new Date(t) });
    const { agent: a } = await store.agents.createAgent('bot-a');
    agent = { id: a.id, name: a.name };
    const approval = await store.approvals.create({
      state: 'approved',
      agentId: a.id,
      agent: a.name,
      scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] },
      requestedBy: 'user:ann',
      decidedBy: 'user:ann',
      reason: 'debug',
      ttlSeconds: 600,
      createdAt: new Date(t).toISOString(),
      decidedAt: new Date(t).toISOString(),
      expiresAt: new Date(t + 600_000).toISOString(),
      request: null,
    });
    approvalId = approval.id;
  });
  afterEach(async () => {
    await store.close();
    tmp.cleanup();
  });

  it('starts an open session and reads it back', async () => {
    const s = await store.sessions.start(startInput());
    expect(s.id).toMatch(SESSION_ID_PATTERN);
    expect(s).toEqual({
      id: s.id,
      approvalId,
      agent: 'bot-a',
      agentId: agent.id,
      state: 'open',
      operation: 'exec',
      transport: 'websocket',
      protocol: 'v5.channel.k8s.io',
      upstreamProtocol: 'v5.channel.k8s.io',
      namespace: 'demo',
      pod: 'web-0',
      container: 'app',
      command: ['sh', '-c', 'echo hi'],
      tty: true,
      client: '127.0.0.1:50123',
      startedAt: '2025-03-01T10:00:00.000Z',
      endedAt: null,
      endReason: null,
      exitCode: null,
      status: null,
      bytesIn: null,
      bytesOut: null,
      castPath: null,
      castSha256: null,
      rawPath: null,
      rawSha256: null,
      channelSha256: null,
      files: null,
    });
    expect(await store.sessions.get(s.id)).toEqual(s);
    expect(await store.sessions.get('ses_unknown')).toBeUndefined();
    // No approval (a policy rule allowed it), attach with an empty argv, SPDY.
    const s2 = await store.sessions.start(startInput({ approvalId: null, operation: 'attach', command: [], tty: false, transport: 'spdy', protocol: 'v4.channel.k8s.io' }));
    expect(s2).toMatchObject({ approvalId: null, operation: 'attach', command: [], tty: false, transport: 'spdy' });
  });

  it('ends once: the first end wins, later ends change nothing', async () => {
    const s = await store.sessions.start(startInput());
    t += 5_000;
    const status = exitCodeStatus(3);
    const ended = await store.sessions.end(s.id, { endReason: 'completed', exitCode: 3, status, bytesIn: 12, bytesOut: 3456 });
    expect(ended).toMatchObject({ state: 'ended', endedAt: '2025-03-01T10:00:05.000Z', endReason: 'completed', exitCode: 3, status, bytesIn: 12, bytesOut: 3456 });
    t += 5_000;
    const again = await store.sessions.end(s.id, { endReason: 'revoked', exitCode: null, status: successStatus(), bytesIn: 99, bytesOut: 99 });
    expect(again).toEqual(ended);
    expect(await store.sessions.get(s.id)).toEqual(ended);
    // The database refuses to rewrite an outcome too.
    expect(() => store.db.prepare(`UPDATE sessions SET end_reason = 'error' WHERE id = ?`).run(s.id)).toThrow(/never changes/);
  });

  it("accepts the session layer's SessionEnd shape (reason) as well as endReason", async () => {
    const s = await store.sessions.start(startInput());
    const ended = await store.sessions.end(s.id, { reason: 'revoked', exitCode: null, status: successStatus(), bytesIn: 0, bytesOut: 1 });
    expect(ended.endReason).toBe('revoked');
  });

  it('refuses bad input naming the field, and unknown ids', async () => {
    const expectField = async (p: Promise<unknown>, field: string): Promise<void> => {
      await expect(p).rejects.toSatisfy((e) => isBastionError(e, 'INVALID_FIELD') && (e as { field?: string }).field === field);
    };
    await expectField(store.sessions.start(startInput({ transport: 'http' as never })), 'transport');
    await expectField(store.sessions.start(startInput({ approvalId: 'apr_missing' })), 'approvalId');
    await expectField(store.sessions.start(startInput({ agent: { id: 'nope', name: 'x' } })), 'agent');
    await expectField(store.sessions.start(startInput({ agent: { id: agent.id, name: 'other-name' } })), 'agent');
    await expectField(store.sessions.start(startInput({ command: [1] as never })), 'command');
    await expectField(store.sessions.start(startInput({ pod: '' })), 'pod');
    await expectField(store.sessions.start(startInput({ operation: 'logs' as never })), 'operation');
    const other = (await store.agents.createAgent('bot-b')).agent;
    await expectField(store.sessions.start(startInput({ agent: { id: other.id, name: other.name } })), 'approvalId');
    const s = await store.sessions.start(startInput());
    await expectField(store.sessions.end(s.id, { endReason: 'bored' as never, exitCode: 0, status: null, bytesIn: 0, bytesOut: 0 }), 'endReason');
    await expectField(store.sessions.end(s.id, { endReason: 'completed', exitCode: 0, status: null, bytesIn: -1, bytesOut: 0 }), 'bytesIn');
    await expectField(store.sessions.end(s.id, { endReason: 'completed', exitCode: 1.5, status: null, bytesIn: 0, bytesOut: 0 }), 'exitCode');
    expect((await store.sessions.get(s.id))!.state).toBe('open');
    await expect(store.sessions.end('ses_unknown', { endReason: 'completed', exitCode: 0, status: null, bytesIn: 0, bytesOut: 0 })).rejects.toSatisfy((e) =>
      isBastionError(e, 'NOT_FOUND'),
    );
    await expect(store.sessions.setRecording('ses_unknown', {})).rejects.toSatisfy((e) => isBastionError(e, 'NOT_FOUND'));
  });

  it('lists by approval, agent and state, newest first', async () => {
    const s1 = await store.sessions.start(startInput());
    t += 1000;
    const s2 = await store.sessions.start(startInput({ approvalId: null }));
    t += 1000;
    const s3 = await store.sessions.start(startInput());
    await store.sessions.end(s3.id, { endReason: 'client-closed', exitCode: null, status: null, bytesIn: 1, bytesOut: 2 });
    const ids = (l: { id: string }[]): string[] => l.map((s) => s.id);
    expect(ids(await store.sessions.list())).toEqual([s3.id, s2.id, s1.id]);
    expect(ids(await store.sessions.list({ approvalId }))).toEqual([s3.id, s1.id]);
    expect(ids(await store.sessions.list({ state: 'open' }))).toEqual([s2.id, s1.id]);
    expect(ids(await store.sessions.list({ state: 'ended' }))).toEqual([s3.id]);
    expect(ids(await store.sessions.list({ agent: 'bot-a', state: 'open', approvalId }))).toEqual([s1.id]);
    expect(ids(await store.sessions.list({ agent: agent.id }))).toHaveLength(3);
    expect(await store.sessions.list({ agent: 'nobody' })).toEqual([]);
  });

  it('markOpenAsInterrupted ends every open session (crash recovery) and leaves ended ones alone', async () => {
    const open1 = await store.sessions.start(startInput());
    const open2 = await store.sessions.start(startInput({ approvalId: null }));
    const done = await store.sessions.start(startInput());
    const ended = await store.sessions.end(done.id, { endReason: 'completed', exitCode: 0, status: successStatus(), bytesIn: 1, bytesOut: 1 });
    // As after a restart: a new connection over the same data dir.
    await store.close();
    t += 60_000;
    store = openStore(tmp.dir, { clock: () => new Date(t) });
    const interrupted = await store.sessions.markOpenAsInterrupted();
    expect(interrupted.map((s) => s.id).sort()).toEqual([open1.id, open2.id].sort());
    for (const s of interrupted) {
      expect(s).toMatchObject({ state: 'ended', endReason: 'interrupted', endedAt: '2025-03-01T10:01:00.000Z', exitCode: null, status: null, bytesIn: null, bytesOut: null });
    }
    expect(await store.sessions.get(done.id)).toEqual(ended);
    expect(await store.sessions.markOpenAsInterrupted()).toEqual([]);
    // A late end from the old process changes nothing.
    expect((await store.sessions.end(open1.id, { endReason: 'completed', exitCode: 0, status: null, bytesIn: 5, bytesOut: 5 })).endReason).toBe('interrupted');
  });

  it('records recording files and hashes', async () => {
    const s = await store.sessions.start(startInput());
    const h = (c: string): string => c.repeat(64);
    const r = await store.sessions.setRecording(s.id, {
      castPath: `recordings/${approvalId}/${s.id}.cast`,
      castSha256: h('a'),
      rawPath: `recordings/${approvalId}/${s.id}.raw`,
      rawSha256: h('b'),
      channelSha256: { stdout: h('c'), stdin: h('d') },
    });
    expect(r).toMatchObject({ castSha256: h('a'), rawSha256: h('b'), channelSha256: { stdin: h('d'), stdout: h('c') } });
    // Partial updates keep the rest; works after the end too.
    await store.sessions.end(s.id, { endReason: 'completed', exitCode: 0, status: null, bytesIn: 0, bytesOut: 0 });
    const r2 = await store.sessions.setRecording(s.id, { castSha256: h('e') });
    expect(r2).toMatchObject({ castSha256: h('e'), rawSha256: h('b'), state: 'ended' });
    await expect(store.sessions.setRecording(s.id, { rawSha256: 'XYZ' })).rejects.toSatisfy(
      (e) => isBastionError(e, 'INVALID_FIELD') && (e as { field?: string }).field === 'rawSha256',
    );
  });
  it('stores the files a session carried (kubectl cp), validated', async () => {
    const session = await store.sessions.start(startInput({ command: ['tar', 'cf', '-', '/etc/hosts'], tty: false }));
    const files = [{ name: 'etc/hosts', size: 12, sha256: 'a'.repeat(64) }];
    expect((await store.sessions.setRecording(session.id, { files })).files).toEqual(files);
    await expect(store.sessions.setRecording(session.id, { files: [{ name: 'x', size: -1, sha256: 'a'.repeat(64) }] })).rejects.toMatchObject({ code: 'INVALID_FIELD', field: 'files[0]' });
  });

  describe('port-forward sessions and their forwarded connections', () => {
    const h = (c: string): string => c.repeat(64);
    const forward = (over: Partial<SessionStartInput> = {}): Promise<Awaited<ReturnType<typeof store.sessions.start>>> =>
      store.sessions.start(startInput({ operation: 'portforward', container: '', command: [], tty: false, transport: 'spdy', protocol: 'portforward.k8s.io', ...over }));

    it("a port-forward session names no container and no command; only a port-forward's may", async () => {
      const s = await forward();
      expect(s).toMatchObject({ operation: 'portforward', container: '', command: [] });
      const expectField = async (p: Promise<unknown>, field: string): Promise<void> => {
        await expect(p).rejects.toMatchObject({ code: 'INVALID_FIELD', field });
      };
      await expectField(store.sessions.start(startInput({ container: '' })), 'container');
      await expectField(store.sessions.start(startInput({ operation: 'attach', container: '', command: [] })), 'container');
      await expectField(store.sessions.start(startInput({ operation: null, container: '' })), 'container');
      await expectField(forward({ container: 'app' }), 'container');
      await expectField(forward({ command: ['sh'] }), 'command');
      // Below the code too: only a port-forward row is written without a container.
      const row = { ...(store.db.prepare('SELECT * FROM sessions WHERE id = ?').get(s.id) as Record<string, unknown>), id: 'ses_aaaaaaaaaaaaaaaaaaaa', operation: 'exec' };
      const cols = Object.keys(row);
      expect(() => store.db.prepare(`INSERT INTO sessions (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`).run(row)).toThrow(/only a port-forward session names no container/);
    });

    it('starts, ends once and lists connections in seq order; a refused one is started and ended at once', async () => {
      const s = await forward();
      await store.sessions.connectionStarted({ sessionId: s.id, seq: 1, port: 8080, startedAt: '2025-03-01T10:00:01.000Z', rawPath: `${approvalId}/${s.id}.1.raw` });
      await store.sessions.connectionStarted({ sessionId: s.id, seq: 2, port: 7000, startedAt: '2025-03-01T10:00:02.000Z', rawPath: null });
      await store.sessions.connectionEnded(s.id, 2, {
        endedAt: '2025-03-01T10:00:02.000Z',
        outcome: 'refused',
        detail: 'port 7000 is not among the approved ports (8080)',
        bytesIn: 0,
        bytesOut: 0,
        sha256In: null,
        sha256Out: null,
        rawSha256: null,
        protocol: null,
      });
      expect(await store.sessions.listConnections(s.id)).toEqual([
        {
          sessionId: s.id,
          seq: 1,
          port: 8080,
          startedAt: '2025-03-01T10:00:01.000Z',
          endedAt: null,
          outcome: null,
          detail: null,
          bytesIn: 0,
          bytesOut: 0,
          sha256In: null,
          sha256Out: null,
          rawPath: `${approvalId}/${s.id}.1.raw`,
          rawSha256: null,
          protocol: null,
        },
        {
          sessionId: s.id,
          seq: 2,
          port: 7000,
          startedAt: '2025-03-01T10:00:02.000Z',
          endedAt: '2025-03-01T10:00:02.000Z',
          outcome: 'refused',
          detail: 'port 7000 is not among the approved ports (8080)',
          bytesIn: 0,
          bytesOut: 0,
          sha256In: null,
          sha256Out: null,
          rawPath: null,
          rawSha256: null,
          protocol: null,
        },
      ]);
      const end = { endedAt: '2025-03-01T10:00:09.000Z', outcome: 'closed', detail: null, bytesIn: 78, bytesOut: 1234, sha256In: h('a'), sha256Out: h('b'), rawSha256: h('c'), protocol: 'http/1.x' } as const;
      await store.sessions.connectionEnded(s.id, 1, end);
      // The first end wins; a later one changes nothing, and the database refuses a rewrite.
      await store.sessions.connectionEnded(s.id, 1, { ...end, outcome: 'cut', bytesIn: 1 });
      const [first] = await store.sessions.listConnections(s.id);
      expect(first).toMatchObject({ seq: 1, endedAt: end.endedAt, outcome: 'closed', bytesIn: 78, bytesOut: 1234, sha256In: h('a'), sha256Out: h('b'), rawSha256: h('c'), protocol: 'http/1.x' });
      expect(() => store.db.prepare(`UPDATE forwarded_connections SET bytes_in = 0 WHERE session_id = ? AND seq = 1`).run(s.id)).toThrow(/never changes/);
      expect(() => store.db.prepare(`DELETE FROM forwarded_connections WHERE session_id = ?`).run(s.id)).toThrow(/never removed/);
      // Another session has none.
      expect(await store.sessions.listConnections((await forward()).id)).toEqual([]);
    });

    it('refuses bad input naming the field, connections of other sessions, a seq twice, and unknown connections', async () => {
      const s = await forward();
      const start = { sessionId: s.id, seq: 1, port: 8080, startedAt: '2025-03-01T10:00:01.000Z', rawPath: null };
      const expectField = async (p: Promise<unknown>, field: string): Promise<void> => {
        await expect(p).rejects.toMatchObject({ code: 'INVALID_FIELD', field });
      };
      await expectField(store.sessions.connectionStarted({ ...start, port: 0 }), 'port');
      await expectField(store.sessions.connectionStarted({ ...start, port: 65536 }), 'port');
      await expectField(store.sessions.connectionStarted({ ...start, seq: 0 }), 'seq');
      await expectField(store.sessions.connectionStarted({ ...start, startedAt: 'soon' }), 'startedAt');
      await expectField(store.sessions.connectionStarted({ ...start, sessionId: 'ses_unknown' }), 'sessionId');
      const exec = await store.sessions.start(startInput());
      await expectField(store.sessions.connectionStarted({ ...start, sessionId: exec.id }), 'sessionId');
      await store.sessions.connectionStarted(start);
      await expectField(store.sessions.connectionStarted({ ...start, port: 9090 }), 'seq');
      const end = { endedAt: '2025-03-01T10:00:09.000Z', outcome: 'closed', detail: null, bytesIn: 0, bytesOut: 0, sha256In: null, sha256Out: null, rawSha256: null, protocol: null } as const;
      await expectField(store.sessions.connectionEnded(s.id, 1, { ...end, outcome: 'dropped' as never }), 'outcome');
      await expectField(store.sessions.connectionEnded(s.id, 1, { ...end, protocol: 'smtp' as never }), 'protocol');
      await expectField(store.sessions.connectionEnded(s.id, 1, { ...end, bytesOut: -1 }), 'bytesOut');
      await expectField(store.sessions.connectionEnded(s.id, 1, { ...end, sha256In: 'XYZ' }), 'sha256In');
      await expectField(store.sessions.connectionEnded(s.id, 1, { ...end, endedAt: '' }), 'endedAt');
      expect((await store.sessions.listConnections(s.id))[0]!.endedAt).toBeNull();
      await expect(store.sessions.connectionEnded(s.id, 2, end)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(store.sessions.connectionEnded('ses_unknown', 1, end)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });
  });
});
