import { statSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBastionError } from '../errors/index.js';
import { MIGRATIONS, closeDatabase, databasePath, openDatabase, schemaVersion, type Migration } from './db.js';
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
});
