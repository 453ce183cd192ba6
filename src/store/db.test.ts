import { spawn } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBastionError } from '../errors/index.js';
import { FORWARD_OUTCOMES, FORWARD_PROTOCOLS } from '../model/vocabulary.js';
import { MIGRATIONS, closeDatabase, closeReadSnapshot, databasePath, openDatabase, openReadSnapshot, schemaVersion, type Migration } from './db.js';
import { openStore } from './index.js';
import { tempDataDir } from './test-support.js';

describe('database', () => {
  let tmp: ReturnType<typeof tempDataDir>;
  beforeEach(() => {
    tmp = tempDataDir();
  });
  afterEach(() => tmp.cleanup());

  it('opens <dataDir>/kube-bastion.db in WAL mode with foreign keys and a busy timeout', () => {
    const db = openDatabase(tmp.dir);
    try {
      expect(db.name).toBe(databasePath(tmp.dir));
      expect(databasePath(tmp.dir).endsWith('/kube-bastion.db')).toBe(true);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
      expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
      expect(schemaVersion(db)).toBe(MIGRATIONS.length);
      expect(statSync(databasePath(tmp.dir)).mode & 0o777).toBe(0o600);
    } finally {
      closeDatabase(db);
    }
  });

  it('migrations run once, in order, and reopening is a no-op', () => {
    closeDatabase(openDatabase(tmp.dir));
    const db = openDatabase(tmp.dir);
    try {
      const rows = db.prepare('SELECT version, name FROM schema_version ORDER BY version').all() as { version: number }[];
      expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    } finally {
      closeDatabase(db);
    }
  });

  it('applies a later migration to an existing database', () => {
    closeDatabase(openDatabase(tmp.dir));
    const extra: Migration[] = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'test', sql: 'CREATE TABLE t (x INTEGER) STRICT' }];
    const db = openDatabase(tmp.dir, { migrations: extra });
    try {
      expect(schemaVersion(db)).toBe(MIGRATIONS.length + 1);
      db.prepare('INSERT INTO t (x) VALUES (1)').run();
    } finally {
      closeDatabase(db);
    }
  });

  it('migration 5 rebuilds approvals (abandoned state, nobody_waiting_since) under sessions that reference them, keeping every row and foreign keys on', () => {
    const v5 = MIGRATIONS.findIndex((m) => m.name.startsWith('abandoned approvals'));
    expect(v5).toBeGreaterThan(0);
    const before = openDatabase(tmp.dir, { migrations: MIGRATIONS.slice(0, v5) });
    const t = '2025-01-01T00:00:00.000Z';
    before.prepare("INSERT INTO agents (id, name, token_hash, created_at) VALUES ('ag1', 'bot', 'h', ?)").run(t);
    before
      .prepare(
        `INSERT INTO approvals (id, state, agent_id, agent_name, scope_kind, scope, requested_by, ttl_seconds, created_at, expires_at, request)
         VALUES ('apr_1', 'pending', 'ag1', 'bot', 'rest', '{}', 'agent:bot', 60, ?, ?, '{"method":"GET","path":"/x"}')`,
      )
      .run(t, t);
    before
      .prepare(
        `INSERT INTO sessions (id, approval_id, agent_id, agent_name, transport, protocol, namespace, pod, container, command, tty, started_at)
         VALUES ('ses_1', 'apr_1', 'ag1', 'bot', 'spdy', 'v4.channel.k8s.io', 'demo', 'web-0', 'app', '[]', 0, ?)`,
      )
      .run(t);
    closeDatabase(before);
    const db = openDatabase(tmp.dir);
    try {
      expect(schemaVersion(db)).toBe(MIGRATIONS.length);
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(db.prepare('PRAGMA foreign_key_check').all()).toEqual([]);
      expect(db.prepare("SELECT id, state, request, nobody_waiting_since FROM approvals").all()).toEqual([
        { id: 'apr_1', state: 'pending', request: '{"method":"GET","path":"/x"}', nobody_waiting_since: null },
      ]);
      expect(db.prepare('SELECT approval_id, client FROM sessions').all()).toEqual([{ approval_id: 'apr_1', client: null }]);
      db.prepare("UPDATE approvals SET state = 'abandoned' WHERE id = 'apr_1'").run();
      expect(() => db.prepare("UPDATE approvals SET state = 'approved' WHERE id = 'apr_1'").run()).toThrow(/invalid approval state transition/);
      expect(() => db.prepare("UPDATE approvals SET scope = '[]' WHERE id = 'apr_1'").run()).toThrow(/never change/);
      // The session still references its approval: deleting the approval is refused.
      expect(() => db.prepare("DELETE FROM approvals WHERE id = 'apr_1'").run()).toThrow(/FOREIGN KEY/);
    } finally {
      closeDatabase(db);
    }
  });

  it("forwarded connections' CHECK lists are the vocabulary's outcomes and protocols", () => {
    const db = openDatabase(tmp.dir);
    try {
      const sql = (db.prepare("SELECT sql FROM sqlite_master WHERE name = 'forwarded_connections'").get() as { sql: string }).sql;
      const list = (column: string): string[] => [...new RegExp(`${column}\\s+TEXT CHECK \\([^)]*IN \\(([^)]*)\\)`).exec(sql)![1]!.matchAll(/'([^']+)'/g)].map((m) => m[1]!);
      expect(list('outcome')).toEqual([...FORWARD_OUTCOMES]);
      expect(list('protocol')).toEqual([...FORWARD_PROTOCOLS]);
    } finally {
      closeDatabase(db);
    }
  });

  it('refuses a database from a newer kube-bastion', () => {
    const extra: Migration[] = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'future', sql: 'SELECT 1' }];
    closeDatabase(openDatabase(tmp.dir, { migrations: extra }));
    let err: unknown;
    try {
      openDatabase(tmp.dir);
    } catch (e) {
      err = e;
    }
    expect(isBastionError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/newer than this kube-bastion knows/);
  });

  it('a file that is not a database is a clear CONFIG_INVALID', () => {
    writeFileSync(databasePath(tmp.dir), 'not a database, not at all. '.repeat(100));
    expect(() => openDatabase(tmp.dir)).toThrow(/cannot (open|prepare) database/);
  });

  it('enforces foreign keys: an audit row cannot name an unknown agent', async () => {
    const store = openStore(tmp.dir);
    try {
      await expect(store.audit.append({ event: 'request', agent: { id: 'nope', name: 'ghost' } })).rejects.toThrow(/FOREIGN KEY/);
    } finally {
      await store.close();
    }
  });

  it('the audit table refuses UPDATE and DELETE from code', async () => {
    const store = openStore(tmp.dir);
    try {
      await store.audit.append({ event: 'request' });
      expect(() => store.db.prepare("UPDATE audit_events SET event = 'x'").run()).toThrow(/append-only/);
      expect(() => store.db.prepare('DELETE FROM audit_events').run()).toThrow(/append-only/);
    } finally {
      await store.close();
    }
  });

  it('close folds the WAL into the main file', async () => {
    const store = openStore(tmp.dir);
    await store.agents.createAgent('x');
    await store.close();
    await store.close(); // idempotent
    const ro = new Database(databasePath(tmp.dir), { readonly: true });
    try {
      expect(ro.prepare('SELECT name FROM agents').pluck().all()).toEqual(['x']);
    } finally {
      ro.close();
    }
  });

  it('close does not hold other processes\' writers back while a read snapshot is open (an audit verify): the WAL fold is best effort and waits for no one', async () => {
    const db = openDatabase(tmp.dir, { busyTimeoutMs: 2000 });
    db.exec('CREATE TABLE probe (x INTEGER)');
    const snapshot = openReadSnapshot(databasePath(tmp.dir));
    // Frames after the snapshot: folding them would have to wait for its reader.
    db.prepare('INSERT INTO probe (x) VALUES (0)').run();
    // Another process (the live bastion) writes all along, waiting at most 300 ms for the lock.
    const script = `
      const Database = require(${JSON.stringify(createRequire(import.meta.url).resolve('better-sqlite3'))});
      const db = new Database(${JSON.stringify(databasePath(tmp.dir))}, { timeout: 300 });
      const insert = db.prepare('INSERT INTO probe (x) VALUES (1)');
      let written = 0, failed = 0, stop = false;
      process.on('message', () => { stop = true; process.send({ written, failed }, () => process.exit(0)); });
      const step = () => {
        if (stop) return;
        try { insert.run(); written++; } catch (err) { failed++; }
        if (written === 1 && failed === 0) process.send('writing');
        setImmediate(step);
      };
      step();`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      await new Promise<void>((resolve) => child.once('message', () => resolve()));
      closeDatabase(db);
      const counts = new Promise<{ written: number; failed: number }>((resolve) => child.once('message', (m) => resolve(m as { written: number; failed: number })));
      child.send('stop');
      const { written, failed } = await counts;
      expect(written).toBeGreaterThan(0);
      expect(failed).toBe(0);
      // The snapshot still reads what it began with.
      expect(snapshot.prepare('SELECT COUNT(*) FROM probe').pluck().get()).toBe(0);
    } finally {
      child.kill();
      closeReadSnapshot(snapshot);
    }
  });

  it('version 5 gives approvals decided before it their history from the audit log, and puts back the reason a revocation overwrote', () => {
    const db = openDatabase(tmp.dir, { migrations: MIGRATIONS.slice(0, 4) });
    const t = '2025-03-01T10:00:00.000Z';
    db.prepare("INSERT INTO agents (id, name, token_hash, created_at) VALUES ('a1', 'bot', 'h', ?)").run(t);
    db.prepare(
      `INSERT INTO approvals (id, state, agent_id, agent_name, scope_kind, scope, requested_by, decided_by, reason, ttl_seconds, created_at, decided_at, expires_at, revoked_at)
       VALUES ('apr_old', 'revoked', 'a1', 'bot', 'rest', '{}', 'user:ann', 'user:ann', 'B: incident over', 600, ?, ?, '2025-03-01T10:10:00.000Z', '2025-03-01T10:01:00.000Z')`,
    ).run(t, t);
    const audit = db.prepare(
      "INSERT INTO audit_events (chain_version, time, event, actor, approval_id, details, prev_hash, hash) VALUES (1, ?, ?, ?, 'apr_old', ?, ?, ?)",
    );
    audit.run(t, 'approval.granted', 'user:ann', JSON.stringify({ reason: 'A: INC-1', ttlSeconds: 600, expiresAt: '2025-03-01T10:10:00.000Z' }), '0', '1');
    audit.run('2025-03-01T10:01:00.000Z', 'approval.revoked', 'user:bob', JSON.stringify({ reason: 'B: incident over' }), '1', '2');
    closeDatabase(db);
    const migrated = openStore(tmp.dir);
    try {
      const rows = migrated.db.prepare('SELECT kind, actor, at, reason, ttl_seconds AS ttl, expires_at AS exp FROM approval_decisions ORDER BY id').all();
      expect(rows).toEqual([
        { kind: 'granted', actor: 'user:ann', at: t, reason: 'A: INC-1', ttl: 600, exp: '2025-03-01T10:10:00.000Z' },
        { kind: 'revoked', actor: 'user:bob', at: '2025-03-01T10:01:00.000Z', reason: 'B: incident over', ttl: null, exp: null },
      ]);
      expect(migrated.db.prepare("SELECT reason FROM approvals WHERE id = 'apr_old'").pluck().get()).toBe('A: INC-1');
    } finally {
      closeDatabase(migrated.db);
    }
  });

  it('version 6 gives agents created before it an owner: their API creator, else the first admin', async () => {
    const db = openDatabase(tmp.dir, { migrations: MIGRATIONS.slice(0, 5) });
    const t = '2025-03-01T10:00:00.000Z';
    const user = db.prepare("INSERT INTO users (id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)");
    user.run('u1', 'root', 'admin', 'h1', t);
    user.run('u2', 'ann', 'approver', 'h2', t);
    const agent = db.prepare("INSERT INTO agents (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)");
    agent.run('a1', 'by-api', 'h3', t);
    agent.run('a2', 'by-cli', 'h4', t);
    db.prepare("INSERT INTO audit_events (chain_version, time, event, actor, agent_id, prev_hash, hash) VALUES (1, ?, 'agent.created', 'user:ann', 'a1', '0', '1')").run(t);
    db.prepare("INSERT INTO audit_events (chain_version, time, event, actor, agent_id, prev_hash, hash) VALUES (1, ?, 'agent.created', 'cli', 'a2', '1', '2')").run(t);
    closeDatabase(db);
    const store = openStore(tmp.dir);
    try {
      expect((await store.agents.listAgents()).map((a) => [a.name, a.owner])).toEqual([
        ['by-api', 'ann'],
        ['by-cli', 'root'],
      ]);
    } finally {
      await store.close();
    }
  });
});
