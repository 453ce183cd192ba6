// Signed checkpoints and audit verify over a real store: a truncation, a wipe and a rewrite are
// named against the checkpoints; a table row that disagrees with its audit rows is named.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auditRecordHash, GENESIS_HASH, openStore, type SessionFilter, type SessionStore, type StoreTables } from '../store/index.js';
import { sessionRows } from '../session/rows.js';
import { auditVerifier, verifyAuditTrust } from './audit-trust.js';
import { CheckpointWriter, checkpointingAudit, checkpointsPath, readCheckpointLines } from './checkpoints.js';
import { generateSigningKey, loadOrCreateSigningKey } from './signing-key.js';
import { fixture, type Fixture } from './test-support.js';

let f: Fixture;
let writer: CheckpointWriter;

/** Someone with the database file: the triggers only stop honest mistakes. */
function tamper(sql: (db: Database.Database) => void): void {
  const db = new Database(f.store.location);
  db.exec('DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete; DROP INDEX IF EXISTS audit_events_prev_hash;');
  db.transaction(() => sql(db))();
  db.close();
}

const verify = () =>
  auditVerifier({ snapshot: f.store.readSnapshot, checkpointsFile: checkpointsPath(f.dataDir), publicKeyPem: () => loadOrCreateSigningKey(f.dataDir).publicKeyPem })();

beforeEach(async () => {
  f = await fixture('kb-trust-');
  writer = new CheckpointWriter({ audit: f.store.audit, key: loadOrCreateSigningKey(f.dataDir), file: checkpointsPath(f.dataDir) });
  await writer.checkpoint('approval');
});
afterEach(async () => {
  await f.close();
});

describe('checkpoints', () => {
  it('signs the head only when it moved, numbering the lines; each line verifies with the key and no other', async () => {
    expect(await writer.checkpoint('interval')).toBeUndefined();
    await f.store.audit.append({ event: 'policy.loaded', actor: 'system' });
    const second = await writer.checkpoint('session-end');
    const head = await f.store.audit.head();
    expect(second).toMatchObject({ seq: 2, reason: 'session-end', rows: head.rows, lastId: head.lastId, headHash: head.headHash, keyFingerprint: loadOrCreateSigningKey(f.dataDir).fingerprint });
    const text = readFileSync(checkpointsPath(f.dataDir), 'utf8');
    expect(readCheckpointLines(text, loadOrCreateSigningKey(f.dataDir).publicKeyPem)).toMatchObject({ problems: [], checkpoints: [{ seq: 1 }, { seq: 2 }] });
    // A new writer on the same file continues the numbering.
    await f.store.audit.append({ event: 'policy.loaded', actor: 'system' });
    const again = new CheckpointWriter({ audit: f.store.audit, key: loadOrCreateSigningKey(f.dataDir), file: checkpointsPath(f.dataDir) });
    expect(await again.checkpoint('start')).toMatchObject({ seq: 3 });
    // An edited line, or another key, is named.
    writeFileSync(checkpointsPath(f.dataDir), text.replace('"seq":2', '"seq":9'));
    expect(readCheckpointLines(readFileSync(checkpointsPath(f.dataDir), 'utf8'), loadOrCreateSigningKey(f.dataDir).publicKeyPem).problems).toEqual([
      'audit-checkpoints.jsonl line 2: the signature does not match (the checkpoint was edited)',
    ]);
    const other = generateSigningKey();
    expect(readCheckpointLines(text, other.publicKeyPem).problems[0]).toContain(`not by key ${other.fingerprint} it is checked with`);
  });

  it('a write cut short by a crash is not glued to the next line', async () => {
    appendFileSync(checkpointsPath(f.dataDir), '{"checkpoint":{"format"');
    await f.store.audit.append({ event: 'policy.loaded', actor: 'system' });
    const w = new CheckpointWriter({ audit: f.store.audit, key: loadOrCreateSigningKey(f.dataDir), file: checkpointsPath(f.dataDir) });
    expect(await w.checkpoint('start')).toMatchObject({ seq: 2 });
    const r = readCheckpointLines(readFileSync(checkpointsPath(f.dataDir), 'utf8'), loadOrCreateSigningKey(f.dataDir).publicKeyPem);
    expect(r.checkpoints.map((c) => c.seq)).toEqual([1, 2]);
    expect(r.problems).toEqual(['audit-checkpoints.jsonl line 2: not JSON']);
  });
});

describe('a burst of session ends shares one checkpoint', () => {
  const lines = () => readCheckpointLines(readFileSync(checkpointsPath(f.dataDir), 'utf8'), loadOrCreateSigningKey(f.dataDir).publicKeyPem);
  const ended = (i: number) => ({ event: 'session.end', actor: 'system', sessionId: `ses_${i}`, details: { endReason: 'expired' } });

  it('200 session.end rows in one window: one signed line, covering the last of them', async () => {
    const w = new CheckpointWriter({ audit: f.store.audit, key: loadOrCreateSigningKey(f.dataDir), file: checkpointsPath(f.dataDir), coalesceMs: 20 });
    const audit = checkpointingAudit(f.store.audit, w);
    for (let i = 0; i < 200; i++) await audit.append(ended(i));
    const head = await f.store.audit.head();
    await new Promise((r) => setTimeout(r, 80));
    const r = lines();
    expect(r.problems).toEqual([]);
    expect(r.checkpoints).toHaveLength(2);
    expect(r.checkpoints[1]).toMatchObject({ seq: 2, reason: 'session-end', rows: head.rows, lastId: head.lastId, headHash: head.headHash });
    // A later end is signed in its own window: every session end is covered within it.
    await audit.append(ended(200));
    await new Promise((r) => setTimeout(r, 80));
    expect(lines().checkpoints.map((c) => [c.seq, c.lastId])).toEqual([[1, r.checkpoints[0]!.lastId], [2, head.lastId], [3, head.lastId + 1]]);
  });

  it('a checkpoint written while a request waits covers it: the request writes nothing more', async () => {
    const w = new CheckpointWriter({ audit: f.store.audit, key: loadOrCreateSigningKey(f.dataDir), file: checkpointsPath(f.dataDir), coalesceMs: 20 });
    const audit = checkpointingAudit(f.store.audit, w);
    await audit.append(ended(1));
    const stop = await w.close();
    expect(stop).toMatchObject({ seq: 2, reason: 'stop', lastId: (await f.store.audit.head()).lastId });
    await new Promise((r) => setTimeout(r, 80));
    expect(lines().checkpoints.map((c) => c.reason)).toEqual(['approval', 'stop']);
  });
});

describe('audit verify against the checkpoints and the tables', () => {
  it('an untouched log verifies, every table row agreeing', async () => {
    const r = await verify();
    expect(r.findings).toEqual([]);
    expect(r).toMatchObject({ ok: true, checkpoints: { count: 1, problems: [] }, tables: { approvals: 2, sessions: 3, disagreements: [] } });
  });

  it('reads the tables and the audit rows in one snapshot: a session started between those reads is in neither', async () => {
    // Started on the live connection right after verify has read the sessions table, before it
    // reads the audit rows: the moment a live bastion's next session lands between the two.
    const startBetween = (tables: StoreTables): StoreTables => ({
      ...tables,
      sessions: Object.assign(Object.create(tables.sessions) as SessionStore, {
        list: async (filter?: SessionFilter) => {
          const listed = await tables.sessions.list(filter);
          // As the bastion starts one: the row and its session.start audit row in one transaction.
          await sessionRows(f.store).start({ approvalId: f.approval.id, agent: f.agent, operation: 'exec', transport: 'websocket', protocol: 'v5.channel.k8s.io', namespace: 'demo', pod: 'web-0', container: 'app', command: ['ls', '-l'], tty: false, client: '127.0.0.1' });
          return listed;
        },
      }),
    });
    const checkpoints = { text: readFileSync(checkpointsPath(f.dataDir), 'utf8'), publicKeyPem: loadOrCreateSigningKey(f.dataDir).publicKeyPem };
    const snapshot = await f.store.readSnapshot((tables) => verifyAuditTrust({ ...startBetween(tables), checkpoints }));
    expect(snapshot.findings).toEqual([]);
    expect(snapshot.tables.sessions).toBe(3);
    // Without one snapshot, the same interleaving is a false finding (what verify said before).
    const live = await verifyAuditTrust({ ...startBetween({ audit: f.store.audit, approvals: f.store.approvals, sessions: f.store.sessions }), checkpoints });
    expect(live.findings).toEqual([expect.stringMatching(/^session ses_\w+ has audit rows \(first: row \d+\) but is missing from the sessions table$/)]);
    // And the next verify sees both sessions started meanwhile, agreeing.
    expect(await verify()).toMatchObject({ ok: true, tables: { sessions: 5, disagreements: [] } });
  });

  it('names a truncated tail, a wipe and a rewrite', async () => {
    const head = await f.store.audit.head();
    tamper((db) => db.prepare('DELETE FROM audit_events WHERE id = ?').run(head.lastId));
    const truncated = await verify();
    expect(truncated.ok).toBe(false);
    expect(truncated.chain).toMatchObject({ ok: false, reason: 'truncated', rowId: head.lastId });
    expect(truncated.findings[0]).toMatch(new RegExp(`^truncation: row ${head.lastId} is missing after row ${head.lastId - 1}, though checkpoint 1 \\(.+\\) covered them$`));

    tamper((db) => db.prepare('DELETE FROM audit_events').run());
    const wiped = await verify();
    expect(wiped.chain).toMatchObject({ ok: false, reason: 'wiped' });
    expect(wiped.findings[0]).toMatch(new RegExp(`^wipe: the audit log has no rows, but checkpoint 1 \\(.+\\) covered ${head.lastId} rows`));
  });

  it('names a middle row edited with every later hash recomputed', async () => {
    const rows = await f.store.audit.query({ limit: 10_000 });
    const middle = rows[Math.floor(rows.length / 2)]!;
    tamper((db) => {
      const upd = db.prepare('UPDATE audit_events SET actor = ?, prev_hash = ?, hash = ? WHERE id = ?');
      let prev = GENESIS_HASH;
      for (const r of rows) {
        const edited = { ...r, actor: r.id === middle.id ? 'user:mallory' : r.actor, prevHash: prev };
        const hash = auditRecordHash(prev, edited);
        upd.run(edited.actor, prev, hash, r.id);
        prev = hash;
      }
    });
    expect(await f.store.audit.verify()).toMatchObject({ ok: true });
    const r = await verify();
    expect(r.chain).toMatchObject({ ok: false, reason: 'anchor-mismatch', rowId: rows.at(-1)!.id });
    expect(r.findings[0]).toMatch(new RegExp(`^rewrite: the head hash at row ${rows.at(-1)!.id} is [0-9a-f]{64}, but checkpoint 1 \\(.+\\) recorded ${rows.at(-1)!.hash}`));
  });

  it('a log without any checkpoint cannot be vouched for', async () => {
    writeFileSync(checkpointsPath(f.dataDir), '');
    const r = await verify();
    expect(r.ok).toBe(false);
    expect(r.findings).toEqual(['no signed checkpoint in audit-checkpoints.jsonl: a truncated, wiped or rewritten log cannot be told from an intact one (serve writes one at start)']);
  });

  it('names an approval whose expires_at or scope, or a session whose end, differs from its audit rows', async () => {
    const id = f.approval.id;
    tamper((db) => {
      db.prepare("UPDATE approvals SET expires_at = '2099-01-01T00:00:00.000Z' WHERE id = ?").run(id);
      db.exec('DROP TRIGGER approvals_scope_widened_on_approval');
      db.prepare("UPDATE approvals SET scope = json_set(scope, '$.pod', 'web-9') WHERE id = ?").run(f.other.id);
      db.exec('DROP TRIGGER sessions_end_once');
      db.prepare('UPDATE sessions SET exit_code = 0 WHERE id = ?').run(f.sessions[0]!.id);
    });
    const r = await verify();
    expect(r.ok).toBe(false);
    expect(r.tables.disagreements.map((d) => [d.table, d.id, d.field, d.stored, d.audited])).toEqual([
      ['approvals', f.other.id, 'scope', expect.stringContaining('"pod":"web-9"'), expect.stringContaining('"pod":"db-0"')],
      ['approvals', id, 'expiresAt', '"2099-01-01T00:00:00.000Z"', JSON.stringify(f.approval.expiresAt)],
      ['sessions', f.sessions[0]!.id, 'exitCode', '0', '3'],
    ]);
    expect(r.findings).toContain(`approval ${id}: expiresAt in the approvals table is "2099-01-01T00:00:00.000Z", but its audit rows (last: row 1) say ${JSON.stringify(f.approval.expiresAt)}`);
  });
});
