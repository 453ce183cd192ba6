// Session rows over a real store and a real recorder: a start is one transaction (row, recording
// paths, session.start row), the end rows are group-committed, and a crash inside the group's
// window leaves a record that crash recovery makes correct.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../observability/log.js';
import { successStatus } from '../protocol/status.js';
import { recorderFactory } from '../recording/factory.js';
import { recordingPaths } from '../recording/recorder.js';
import type { SessionInfo } from '../model/session.js';
import { auditHead, openStore, type SqliteStore } from '../store/index.js';
import { crossCheckSessions } from '../evidence/audit-trust.js';
import { closeInterruptedSessions } from './recovery.js';
import { sessionRows } from './rows.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const log = silentLogger();

let dir: string;
let store: SqliteStore;
let agent: { id: string; name: string };

function open(): SqliteStore {
  // A window no test waits out: what is committed is what a flush (or nothing, a crash) commits.
  return openStore(join(dir, 'data'), { auditBatch: { maxDelayMs: 60_000, maxRows: 10_000 } });
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kb-rows-'));
  store = open();
  const created = await store.agents.createAgent('crashy');
  agent = { id: created.agent.id, name: created.agent.name };
});
afterEach(async () => {
  if (store.db.open) await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const startInput = (client: string) => ({
  approvalId: null,
  agent,
  operation: 'exec' as const,
  transport: 'websocket' as const,
  protocol: 'v5.channel.k8s.io',
  namespace: 'default',
  pod: 'web',
  container: 'app',
  command: ['sh'],
  tty: false,
  client,
});

function info(id: string): SessionInfo {
  const i = startInput('127.0.0.1:1');
  return { id, approvalId: null, agent, operation: 'exec', namespace: i.namespace, pod: i.pod, container: i.container, command: i.command, tty: false, transport: 'websocket', protocol: i.protocol, upstreamProtocol: '' };
}

async function events(s: SqliteStore, sessionId: string): Promise<string[]> {
  return (await s.audit.query({ sessionId, limit: 100 })).map((r) => r.event);
}

describe('session rows', () => {
  it('a start writes the row, its recording paths and its session.start row together, or none of them', async () => {
    const rows = sessionRows({ sessions: store.sessions, audit: store.audit }, { recordingsDir: join(dir, 'rec') });
    const { id } = await rows.start(startInput('127.0.0.1:1'));
    const s = (await store.sessions.get(id))!;
    const paths = recordingPaths(join(dir, 'rec'), null, id);
    expect([s.castPath, s.rawPath]).toEqual([paths.castPath, paths.rawPath]);
    expect(await events(store, id)).toEqual(['session.start']);

    // An audit row that cannot be written: no session row either.
    const before = (await store.sessions.list()).length;
    await expect(store.sessions.start(startInput('127.0.0.1:2'), () => ({ event: 'session.start', statusCode: -1 }))).rejects.toThrow(/statusCode/);
    expect((await store.sessions.list()).length).toBe(before);
    expect((await store.audit.verify()).ok).toBe(true);
  });

  it("a forwarded connection's end and its session.connection row are one transaction, or neither", async () => {
    const rows = sessionRows({ sessions: store.sessions, audit: store.audit });
    const { id } = await rows.start({ ...startInput('127.0.0.1:1'), operation: 'portforward', container: '', command: [], transport: 'spdy', protocol: 'portforward.k8s.io' });
    const about = { port: 8080, approvalId: null, agent };
    const end = { endedAt: '2026-12-07T10:00:00.000Z', outcome: 'closed', detail: null, bytesIn: 3, bytesOut: 4, sha256In: null, sha256Out: null, rawSha256: null, protocol: null } as const;
    for (const seq of [1, 2]) await rows.connectionStarted({ sessionId: id, seq, port: 8080, startedAt: '2026-12-07T09:59:59.000Z', rawPath: null });
    await rows.connectionEnded(id, 1, end, about);
    expect(await events(store, id)).toEqual(['session.start', 'session.connection']);

    // The chain refuses the next row (a disk full, a broken database): the end is not written either.
    store.db.exec(`CREATE TEMP TRIGGER refuse_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'no audit row today'); END`);
    await expect(rows.connectionEnded(id, 2, end, about)).rejects.toThrow(/no audit row today/);
    store.db.exec('DROP TRIGGER refuse_audit');
    expect((await store.sessions.listConnections(id)).map((c) => [c.seq, c.outcome])).toEqual([[1, 'closed'], [2, null]]);
    expect(await events(store, id)).toEqual(['session.start', 'session.connection']);
    // Told again once the chain takes rows: both now.
    await rows.connectionEnded(id, 2, end, about);
    expect((await store.sessions.listConnections(id)).map((c) => [c.seq, c.outcome])).toEqual([[1, 'closed'], [2, 'closed']]);
    expect(await events(store, id)).toEqual(['session.start', 'session.connection', 'session.connection']);
    expect((await store.audit.verify()).ok).toBe(true);
  });

  it('ends are group-committed: nothing is written until the group commits, then every end with its audit row and hashes', async () => {
    const ended: string[] = [];
    const rows = sessionRows({ sessions: store.sessions, audit: store.audit }, { recordingsDir: join(dir, 'rec'), ended: (s) => ended.push(s.id) });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await rows.start(startInput(`127.0.0.1:${i}`))).id);
    const settled: string[] = [];
    for (const id of ids) {
      void store.sessions.setRecording(id, { castSha256: 'a'.repeat(64), rawSha256: 'b'.repeat(64) }, { grouped: true });
      void rows.end(id, { reason: 'completed', exitCode: 0, status: successStatus(), bytesIn: 1, bytesOut: 2 }).then(() => settled.push(id));
    }
    await new Promise((r) => setImmediate(r));
    expect(settled).toEqual([]);
    // Read under the store (its reads commit the group first).
    expect(store.db.prepare('SELECT count(*) AS n FROM sessions WHERE ended_at IS NULL').get()).toEqual({ n: 3 });
    expect(store.auditBatch.queued).toBe(6);

    store.auditBatch.flush();
    await new Promise((r) => setImmediate(r));
    expect(settled).toEqual(ids);
    expect(ended).toEqual(ids);
    for (const id of ids) {
      const s = (await store.sessions.get(id))!;
      expect(s).toMatchObject({ state: 'ended', endReason: 'completed', exitCode: 0, bytesIn: 1, bytesOut: 2, castSha256: 'a'.repeat(64), rawSha256: 'b'.repeat(64) });
      expect(await events(store, id)).toEqual(['session.start', 'session.end']);
    }
    expect((await store.audit.verify()).ok).toBe(true);
  });

  it('a kill inside the window: after restart the session is ended as interrupted, its hashes are those of its files, and the chain verifies', async () => {
    const recDir = join(dir, 'rec');
    const rows = sessionRows({ sessions: store.sessions, audit: store.audit }, { recordingsDir: recDir });
    const { id } = await rows.start(startInput('127.0.0.1:1'));
    const recorder = recorderFactory({ dir: recDir, settings: () => ({ format: 'v2', stdin: true }), sessions: store.sessions, log })(info(id));
    recorder.stdout!(Buffer.from('hello from the pod\n'));
    const end = { reason: 'completed' as const, exitCode: 0, status: successStatus(), bytesIn: 0, bytesOut: 19 };
    await recorder.end!(end); // the recording is complete on disk; its hashes are queued
    void rows.end(id, end); // queued: never committed
    expect(store.auditBatch.queued).toBe(2);
    const head = auditHead(store.db); // the committed head (the store's own reads would commit the group)

    // kill -9: the process goes away with the group uncommitted (nothing flushes it).
    store.db.close();

    store = open();
    expect((await store.sessions.get(id))!.state).toBe('open');
    expect(await store.audit.head()).toEqual(head);
    expect(await closeInterruptedSessions(store, log, recDir)).toBe(1);

    const s = (await store.sessions.get(id))!;
    expect(s).toMatchObject({ state: 'ended', endReason: 'interrupted' });
    expect(s.castSha256).toBe(sha(readFileSync(s.castPath!)));
    expect(s.rawSha256).toBe(sha(readFileSync(s.rawPath!)));
    expect(readFileSync(s.castPath!, 'utf8')).toContain('hello from the pod');
    expect(await events(store, id)).toEqual(['session.start', 'session.end']);
    const endRow = (await store.audit.query({ sessionId: id, event: 'session.end' }))[0]!;
    expect(JSON.parse(endRow.details!)).toMatchObject({ endReason: 'interrupted', castSha256: s.castSha256, rawSha256: s.rawSha256 });
    expect(await store.audit.verify()).toMatchObject({ ok: true });
  });
  // Recovery itself can be cut short (a second kill, a disk failing at startup). Each session it
  // ends must end with its session.end row, all or nothing: a session ended in the table with no
  // session.end row is a disagreement `audit verify` reports for ever (recovery looks only at open ones).
  it('a kill during crash recovery: the next start still ends the session with its session.end row, and the tables agree with the chain', async () => {
    const recDir = join(dir, 'rec');
    const rows = sessionRows({ sessions: store.sessions, audit: store.audit }, { recordingsDir: recDir });
    const { id } = await rows.start(startInput('127.0.0.1:1'));
    const recorder = recorderFactory({ dir: recDir, settings: () => ({ format: 'v2', stdin: true }), sessions: store.sessions, log })(info(id));
    recorder.stdout!(Buffer.from('hello from the pod\n'));
    await recorder.end!({ reason: 'completed', exitCode: 0, status: successStatus(), bytesIn: 0, bytesOut: 19 });
    store.db.close(); // kill -9 with the hashes (and the end) still queued

    // The first restart dies as recovery writes its first session.end row.
    store = open();
    // (the store refuses the session.end row, as a process that dies before writing it would)
    store.db.exec(`CREATE TEMP TRIGGER dies BEFORE INSERT ON audit_events WHEN NEW.event = 'session.end' BEGIN SELECT RAISE(ABORT, 'killed'); END`);
    await expect(closeInterruptedSessions(store, log, recDir)).rejects.toThrow('killed');
    store.db.close();

    store = open();
    await closeInterruptedSessions(store, log, recDir);
    const s = (await store.sessions.get(id))!;
    expect(s).toMatchObject({ state: 'ended', endReason: 'interrupted' });
    expect(await events(store, id)).toEqual(['session.start', 'session.end']);
    expect(crossCheckSessions(await store.sessions.list(), await store.audit.query({ sessionId: id }))).toEqual([]);
    expect((await store.audit.verify()).ok).toBe(true);
  });
});
