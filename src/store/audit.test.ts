import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KubeRequest, PolicyDecision } from '../model/request.js';
import {
  AUDIT_HASHED_FIELDS,
  GENESIS_HASH,
  MAX_CLIENT_HINT_LENGTH,
  auditRecordHash,
  decisionAuditFields,
  openStore,
  requestAuditFields,
  verifyAuditChain,
  type Agent,
  type AuditEventInput,
  type AuditVerifyResult,
  type SqliteStore,
} from './index.js';
import { concurrentAppenders, tempDataDir } from './test-support.js';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/** What an attacker with the file can do: a raw connection, the append-only guards dropped. */
function tamper(store: SqliteStore, fn: (raw: Database.Database) => void): void {
  const raw = new Database(store.location);
  try {
    raw.exec(`DROP TRIGGER IF EXISTS audit_events_no_update;
              DROP TRIGGER IF EXISTS audit_events_no_delete;
              DROP INDEX IF EXISTS audit_events_prev_hash;`);
    raw.transaction(() => fn(raw))();
  } finally {
    raw.close();
  }
}

function failure(r: AuditVerifyResult) {
  if (r.ok) throw new Error(`expected verify to fail, got ok (${r.rows} rows)`);
  return r;
}

const execRequest: KubeRequest = {
  kind: 'resource',
  method: 'POST',
  path: '/api/v1/namespaces/demo/pods/web-0/exec',
  verb: 'create',
  apiGroup: '',
  apiVersion: 'v1',
  resource: 'pods',
  subresource: 'exec',
  namespace: 'demo',
  name: 'web-0',
  proxyPath: '',
  stream: 'exec',
  query: new URLSearchParams('command=sh&stdin=true'),
};

const decision: PolicyDecision = { action: 'approval', rule: 'exec-needs-approval', policyHash: 'a'.repeat(64), reason: 'r' };

describe('audit log', () => {
  let tmp: ReturnType<typeof tempDataDir>;
  let store: SqliteStore;
  let agent: Agent;
  let t: number;
  beforeEach(async () => {
    tmp = tempDataDir();
    t = Date.parse('2025-06-01T00:00:00.000Z');
    // NORMAL keeps the 1,000-row tests fast; durability is not what they test.
    store = openStore(tmp.dir, { clock: () => new Date((t += 1000)), synchronous: 'NORMAL' });
    agent = (await store.agents.createAgent('agent-a')).agent;
  });
  afterEach(async () => {
    await store.close();
    tmp.cleanup();
  });

  function event(i: number): AuditEventInput {
    return {
      event: 'request',
      agent: i % 3 === 0 ? null : agent,
      source: `127.0.0.1:${40000 + (i % 1000)}`,
      ...requestAuditFields(execRequest),
      ...decisionAuditFields(decision),
      approvalId: i % 2 ? `apr-${i}` : null,
      statusCode: 200 + (i % 5),
      bytesIn: i * 3,
      bytesOut: i * 7,
      durationMs: i / 3,
      untrustedClientHints: { kubectlCommand: 'kubectl exec', kubectlSession: `s-${i}`, userAgent: 'kubectl/v1.33.0' },
    };
  }

  async function appendMany(n: number): Promise<void> {
    for (let i = 1; i <= n; i++) await store.audit.append(event(i));
  }

  it('stores every field, chains the first row from 64 zeros, and verifies', async () => {
    const r = await store.audit.append({
      ...event(1),
      untrustedClientHints: { userAgent: 'kubectl/v1.33.0', kubectlCommand: 'kubectl exec', kubectlSession: 'abc' },
    });
    expect(r).toMatchObject({
      id: 1,
      chainVersion: 1,
      time: '2025-06-01T00:00:02.000Z', // :01 was the agent's creation
      event: 'request',
      agentId: agent.id,
      agentName: 'agent-a',
      actor: null,
      source: '127.0.0.1:40001',
      method: 'POST',
      path: '/api/v1/namespaces/demo/pods/web-0/exec',
      verb: 'create',
      apiGroup: '',
      resource: 'pods',
      subresource: 'exec',
      namespace: 'demo',
      name: 'web-0',
      stream: 'exec',
      decision: 'approval',
      rule: 'exec-needs-approval',
      policyHash: 'a'.repeat(64),
      approvalId: 'apr-1',
      sessionId: null,
      statusCode: 201,
      bytesIn: 3,
      bytesOut: 7,
      durationMs: 0,
      untrustedClientHints: '{"kubectlCommand":"kubectl exec","kubectlSession":"abc","userAgent":"kubectl/v1.33.0"}',
      details: null,
      prevHash: GENESIS_HASH,
    });
    expect(r.hash).toBe(auditRecordHash(GENESIS_HASH, r));
    const col = store.db.prepare('SELECT untrusted_client_hints FROM audit_events WHERE id = 1').pluck().get();
    expect(col).toBe(r.untrustedClientHints);
    expect(await store.audit.query()).toEqual([r]);
    expect(await store.audit.verify()).toEqual({ ok: true, rows: 1, head: { rows: 1, lastId: 1, headHash: r.hash } });
  });

  it('pins the canonical form: sha256(prev_hash || JSON of the fields in fixed order)', async () => {
    const r = await store.audit.append({ event: 'agent.created', actor: 'cli', details: { name: 'agent-a', id: agent.id } });
    const json =
      `{"v":1,"id":1,"time":"2025-06-01T00:00:02.000Z","event":"agent.created","agentId":null,"agentName":null,` +
      `"actor":"cli","source":null,"method":null,"path":null,"verb":null,"apiGroup":null,"resource":null,` +
      `"subresource":null,"namespace":null,"name":null,"stream":null,"decision":null,"rule":null,"policyHash":null,` +
      `"approvalId":null,"sessionId":null,"statusCode":null,"bytesIn":null,"bytesOut":null,"durationMs":null,` +
      `"untrustedClientHints":null,"details":${JSON.stringify(JSON.stringify({ id: agent.id, name: 'agent-a' }))}}`;
    expect(AUDIT_HASHED_FIELDS[0]).toBe('v');
    expect(r.hash).toBe(sha256(GENESIS_HASH + json));
    // details are canonical JSON: keys sorted whatever order the caller used
    expect(r.details).toBe(`{"id":"${agent.id}","name":"agent-a"}`);
  });

  it('non-request events share the chain', async () => {
    await store.audit.append({ event: 'agent.created', actor: 'cli', details: { agent: 'agent-a' } });
    await store.audit.append(event(1));
    await store.audit.append({ event: 'session.start', agent, sessionId: 's1', approvalId: 'apr-1' });
    await store.audit.append({ event: 'session.end', agent, sessionId: 's1', details: { exitCode: 0 } });
    await store.audit.append({ event: 'approval.granted', actor: `policy:ro@${'b'.repeat(64)}`, approvalId: 'apr-1' });
    expect(await store.audit.verify()).toMatchObject({ ok: true, rows: 5 });
    expect((await store.audit.query({ sessionId: 's1' })).map((r) => r.event)).toEqual(['session.start', 'session.end']);
  });

  it('keeps awkward strings exactly as they verify (unicode, NUL, lone surrogates)', async () => {
    const nasty = 'snow ☃ / emoji 😀 / nul \u0000 / lone \ud800 / rtl \u202e / quote " \\ \n';
    const r = await store.audit.append({ event: 'request', path: nasty, details: { s: nasty, n: [1, 2.5, null], b: true } });
    expect(r.path).toBe(nasty.replace('\ud800', '\ufffd'));
    const [back] = await store.audit.query();
    expect(back).toEqual(r);
    expect(await store.audit.verify()).toMatchObject({ ok: true, rows: 1 });
  });

  it('caps untrusted client hints and rejects malformed numbers', async () => {
    const r = await store.audit.append({ event: 'request', untrustedClientHints: { userAgent: 'x'.repeat(5000) } });
    expect(JSON.parse(r.untrustedClientHints!).userAgent).toHaveLength(MAX_CLIENT_HINT_LENGTH);
    expect((await store.audit.append({ event: 'request', untrustedClientHints: {} })).untrustedClientHints).toBeNull();
    await expect(store.audit.append({ event: 'request', bytesIn: -1 })).rejects.toThrow(/bytesIn/);
    await expect(store.audit.append({ event: 'request', statusCode: 1.5 })).rejects.toThrow(/statusCode/);
    await expect(store.audit.append({ event: 'request', decision: 'maybe' as 'allow' })).rejects.toThrow(/decision/);
    await expect(store.audit.append({ event: '' })).rejects.toThrow(/event/);
    expect(await store.audit.verify()).toMatchObject({ ok: true, rows: 2 });
  });

  it('appends and verifies 1,000 rows; head names the last row', async () => {
    await appendMany(1000);
    const v = await store.audit.verify();
    const head = await store.audit.head();
    expect(v).toEqual({ ok: true, rows: 1000, head });
    expect(head.rows).toBe(1000);
    expect(head.lastId).toBe(1000);
    const [last] = await store.audit.query({ order: 'desc', limit: 1 });
    expect(head.headHash).toBe(last!.hash);
    expect(verifyAuditChain(store.db, { anchor: head })).toMatchObject({ ok: true });
  });

  describe('tampering with 1,000 rows', () => {
    beforeEach(async () => {
      await appendMany(1000);
    });

    it('an edited field fails verification at that row', async () => {
      tamper(store, (raw) => raw.prepare('UPDATE audit_events SET status_code = 403 WHERE id = 500').run());
      const f = failure(await store.audit.verify());
      expect(f).toMatchObject({ rowId: 500, reason: 'hash-mismatch', rowsVerified: 499 });
      expect(f.message).toContain('row 500');
    });

    it.each([
      ['time', "'2020-01-01T00:00:00.000Z'"],
      ['agent_name', "'someone-else'"],
      ['decision', "'allow'"],
      ['untrusted_client_hints', "'{}'"],
      ['details', `'{"x":1}'`],
      ['chain_version', '1'],
    ])('editing %s is detected', async (column, value) => {
      tamper(store, (raw) => raw.prepare(`UPDATE audit_events SET ${column} = ${value} WHERE id = 7`).run());
      const r = await store.audit.verify();
      if (column === 'chain_version') expect(r.ok).toBe(true); // unchanged value: nothing to detect
      else expect(failure(r)).toMatchObject({ rowId: 7, reason: 'hash-mismatch' });
    });

    it('a deleted row leaves a gap named at the next row', async () => {
      tamper(store, (raw) => raw.prepare('DELETE FROM audit_events WHERE id = 300').run());
      const f = failure(await store.audit.verify());
      expect(f).toMatchObject({ rowId: 301, reason: 'gap', rowsVerified: 299 });
      expect(f.message).toMatch(/row 300 is missing/);
    });

    it('deleting the first row is detected', async () => {
      tamper(store, (raw) => raw.prepare('DELETE FROM audit_events WHERE id = 1').run());
      expect(failure(await store.audit.verify())).toMatchObject({ rowId: 2, reason: 'gap', rowsVerified: 0 });
    });

    it('deleting a row and renumbering the rest is detected', async () => {
      tamper(store, (raw) => {
        raw.prepare('DELETE FROM audit_events WHERE id = 300').run();
        raw.prepare('UPDATE audit_events SET id = -id WHERE id > 300').run();
        raw.prepare('UPDATE audit_events SET id = -id - 1 WHERE id < 0').run();
      });
      expect(failure(await store.audit.verify())).toMatchObject({ rowId: 300, reason: 'prev-mismatch' });
    });

    it.each([
      [100, 200],
      [41, 42],
    ])('swapping the contents of rows %i and %i is detected at the first', async (a, b) => {
      tamper(store, (raw) => {
        const cols = (raw.prepare('SELECT * FROM audit_events LIMIT 1').columns() as { name: string }[])
          .map((c) => c.name)
          .filter((c) => c !== 'id');
        const get = raw.prepare(`SELECT ${cols.join(', ')} FROM audit_events WHERE id = ?`);
        const set = raw.prepare(`UPDATE audit_events SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE id = @id`);
        const ra = get.get(a) as Record<string, unknown>;
        const rb = get.get(b) as Record<string, unknown>;
        set.run({ ...rb, id: a });
        set.run({ ...ra, id: b });
      });
      const f = failure(await store.audit.verify());
      expect(f.rowId).toBe(a);
      expect(['prev-mismatch', 'hash-mismatch']).toContain(f.reason);
    });

    it("editing the last row's hash is detected", async () => {
      tamper(store, (raw) => raw.prepare(`UPDATE audit_events SET hash = ? WHERE id = 1000`).run('f'.repeat(64)));
      expect(failure(await store.audit.verify())).toMatchObject({ rowId: 1000, reason: 'hash-mismatch', rowsVerified: 999 });
    });

    it("an edited row whose own hash was recomputed breaks the next row's link", async () => {
      const [row10] = await store.audit.query({ afterId: 9, limit: 1 });
      const edited = { ...row10!, decision: 'allow' as const };
      tamper(store, (raw) =>
        raw
          .prepare('UPDATE audit_events SET decision = ?, hash = ? WHERE id = 10')
          .run(edited.decision, auditRecordHash(edited.prevHash, edited)),
      );
      expect(failure(await store.audit.verify())).toMatchObject({ rowId: 11, reason: 'prev-mismatch' });
    });

    it('a malformed hash is reported as such', async () => {
      tamper(store, (raw) => raw.prepare("UPDATE audit_events SET prev_hash = 'nope' WHERE id = 3").run());
      expect(failure(await store.audit.verify())).toMatchObject({ rowId: 3, reason: 'malformed' });
    });

    it('a truncated tail is NOT detectable from the chain alone, but is against an anchored head', async () => {
      const anchor = await store.audit.head();
      tamper(store, (raw) => raw.prepare('DELETE FROM audit_events WHERE id > 900').run());
      // The remaining 900 rows are a valid chain: this is the documented limit.
      expect(await store.audit.verify()).toMatchObject({ ok: true, rows: 900 });
      // An externally kept head catches it.
      expect(failure(await store.audit.verify({ anchor }))).toMatchObject({ rowId: 1000, reason: 'truncated', rowsVerified: 900 });
      // And the next append cannot hide it: ids come from the AUTOINCREMENT sequence, so it leaves a gap.
      const next = await store.audit.append(event(1001));
      expect(next.id).toBe(1001);
      expect(failure(await store.audit.verify())).toMatchObject({ rowId: 1001, reason: 'gap' });
    });

    it('a fully recomputed chain passes alone but fails against an anchored head', async () => {
      const anchor = await store.audit.head();
      const rows = await store.audit.query({ limit: 10_000 });
      tamper(store, (raw) => {
        const upd = raw.prepare('UPDATE audit_events SET decision = ?, prev_hash = ?, hash = ? WHERE id = ?');
        let prev = GENESIS_HASH;
        for (const r of rows) {
          const edited = { ...r, decision: r.id === 5 ? ('allow' as const) : r.decision, prevHash: prev };
          const hash = auditRecordHash(prev, edited);
          upd.run(edited.decision, prev, hash, r.id);
          prev = hash;
        }
      });
      expect(await store.audit.verify()).toMatchObject({ ok: true, rows: 1000 });
      expect(failure(await store.audit.verify({ anchor }))).toMatchObject({ rowId: 1000, reason: 'anchor-mismatch' });
    });

    it('several anchors: a rewrite is named at the earliest anchored row it changed, a truncation by the latest', async () => {
      const rows = await store.audit.query({ limit: 10_000 });
      const at = (id: number, label: string) => ({ lastId: id, headHash: rows[id - 1]!.hash, label });
      const anchors = [at(100, 'checkpoint 1'), at(500, 'checkpoint 2'), at(1000, 'checkpoint 3')];
      expect(await store.audit.verify({ anchors })).toMatchObject({ ok: true, rows: 1000 });
      tamper(store, (raw) => {
        const upd = raw.prepare('UPDATE audit_events SET decision = ?, prev_hash = ?, hash = ? WHERE id = ?');
        let prev = rows[298]!.hash;
        for (const r of rows.slice(299)) {
          const edited = { ...r, decision: r.id === 300 ? ('allow' as const) : r.decision, prevHash: prev };
          const hash = auditRecordHash(prev, edited);
          upd.run(edited.decision, prev, hash, r.id);
          prev = hash;
        }
      });
      const rewritten = failure(await store.audit.verify({ anchors }));
      expect(rewritten).toMatchObject({ rowId: 500, reason: 'anchor-mismatch', anchor: { label: 'checkpoint 2' } });
      expect(rewritten.message).toMatch(/^rewrite: the head hash at row 500 is [0-9a-f]{64}, but checkpoint 2 recorded /);
    });

    it('a truncated tail and a wiped log are named against the latest anchor', async () => {
      const rows = await store.audit.query({ limit: 10_000 });
      const anchors = [{ lastId: 500, headHash: rows[499]!.hash, label: 'checkpoint 1' }, { lastId: 1000, headHash: rows[999]!.hash, label: 'checkpoint 2' }];
      tamper(store, (raw) => raw.prepare('DELETE FROM audit_events WHERE id > 998').run());
      const truncated = failure(await store.audit.verify({ anchors }));
      expect(truncated).toMatchObject({ rowId: 1000, reason: 'truncated', anchor: { label: 'checkpoint 2' } });
      expect(truncated.message).toBe('truncation: rows 999..1000 are missing after row 998, though checkpoint 2 covered them');
      tamper(store, (raw) => raw.prepare('DELETE FROM audit_events').run());
      const wiped = failure(await store.audit.verify({ anchors }));
      expect(wiped).toMatchObject({ rowId: 1000, reason: 'wiped', rowsVerified: 0 });
      expect(wiped.message).toMatch(/^wipe: the audit log has no rows, but checkpoint 2 covered 1000 rows/);
    });
  });

  it('concurrent appends from two processes on the same file keep one valid chain', async () => {
    await store.close();
    await concurrentAppenders(tmp.dir, 2, 300);
    store = openStore(tmp.dir);
    expect(await store.audit.verify()).toMatchObject({ ok: true, rows: 600 });
    const rows = await store.audit.query({ limit: 10_000 });
    const by = (w: string) => rows.filter((r) => JSON.parse(r.details!).worker === w).map((r) => JSON.parse(r.details!).i);
    expect(by('w0')).toEqual([...Array(300).keys()]);
    expect(by('w1')).toEqual([...Array(300).keys()]);
    // They really interleaved (not one process after the other), or the test proves little.
    const switches = rows.filter((r, i) => i > 0 && JSON.parse(r.details!).worker !== JSON.parse(rows[i - 1]!.details!).worker).length;
    expect(switches).toBeGreaterThan(1);
  });

  it('concurrent appends from two connections in one process keep one valid chain', async () => {
    const other = openStore(tmp.dir);
    try {
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => (i % 2 ? store : other).audit.append({ event: 'request', details: { i } })),
      );
      expect(await other.audit.verify()).toMatchObject({ ok: true, rows: 200 });
    } finally {
      await other.close();
    }
  });

  it('a fork is impossible even bypassing the serialising transaction', async () => {
    await store.audit.append(event(1));
    const [first] = await store.audit.query();
    // Forge a second row pointing at the same predecessor as row 1 (the genesis hash).
    expect(() =>
      store.db
        .prepare('INSERT INTO audit_events (chain_version, time, event, prev_hash, hash) VALUES (1, ?, ?, ?, ?)')
        .run(first!.time, 'request', GENESIS_HASH, 'c'.repeat(64)),
    ).toThrow(/UNIQUE/);
  });

  it('queries by time, agent (name or id), event, paging and order', async () => {
    const other = (await store.agents.createAgent('agent-b')).agent;
    for (let i = 1; i <= 10; i++) await store.audit.append({ ...event(i), agent: i % 2 ? agent : other });
    const all = await store.audit.query();
    expect(all).toHaveLength(10);
    expect((await store.audit.query({ agent: 'agent-b' })).map((r) => r.agentName)).toEqual(Array(5).fill('agent-b'));
    expect(await store.audit.query({ agent: other.id })).toEqual(await store.audit.query({ agent: 'agent-b' }));
    const since = all[6]!.time;
    expect((await store.audit.query({ since })).map((r) => r.id)).toEqual([7, 8, 9, 10]);
    expect((await store.audit.query({ since: new Date(since), until: all[7]!.time })).map((r) => r.id)).toEqual([7, 8]);
    expect((await store.audit.query({ limit: 3, order: 'desc' })).map((r) => r.id)).toEqual([10, 9, 8]);
    expect((await store.audit.query({ afterId: 8 })).map((r) => r.id)).toEqual([9, 10]);
    expect(await store.audit.query({ event: 'session.start' })).toEqual([]);
    await expect(store.audit.query({ since: 'yesterday-ish' })).rejects.toThrow(/not a valid time/);
  });

  it('an empty log verifies, with the genesis head', async () => {
    expect(await store.audit.verify()).toEqual({ ok: true, rows: 0, head: { rows: 0, lastId: 0, headHash: GENESIS_HASH } });
  });
});
