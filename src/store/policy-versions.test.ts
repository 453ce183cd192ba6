import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBastionError } from '../errors/index.js';
import { openStore, type SqliteStore } from './index.js';
import { tempDataDir } from './test-support.js';

const sha = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('policy versions', () => {
  let tmp: ReturnType<typeof tempDataDir>;
  let store: SqliteStore;
  let t: number;
  beforeEach(() => {
    tmp = tempDataDir();
    t = Date.parse('2025-03-01T12:00:00.000Z');
    store = openStore(tmp.dir, { clock: () => new Date((t += 60_000)) });
  });
  afterEach(async () => {
    await store.close();
    tmp.cleanup();
  });

  it('is idempotent by hash and keeps the first and last load times', async () => {
    const source = 'rules:\n  - name: allow-get\n';
    const hash = sha(source);
    const first = await store.policyVersions.recordPolicyVersion({ hash, source, origin: '/etc/kb/policy.yaml' });
    expect(first).toEqual({
      hash,
      source,
      origin: '/etc/kb/policy.yaml',
      firstLoadedAt: '2025-03-01T12:01:00.000Z',
      lastLoadedAt: '2025-03-01T12:01:00.000Z',
      loadCount: 1,
    });
    const again = await store.policyVersions.recordPolicyVersion({ hash, source, origin: '/elsewhere.yaml' });
    expect(again).toEqual({ ...first, lastLoadedAt: '2025-03-01T12:02:00.000Z', loadCount: 2 });
    expect(await store.policyVersions.listPolicyVersions()).toHaveLength(1);
    expect(await store.policyVersions.getPolicyVersion(hash)).toEqual(again);
  });

  it('lists the most recently loaded first', async () => {
    const a = 'a: 1\n';
    const b = 'b: 2\n';
    await store.policyVersions.recordPolicyVersion({ hash: sha(a), source: a, origin: 'f' });
    await store.policyVersions.recordPolicyVersion({ hash: sha(b), source: b, origin: 'f' });
    expect((await store.policyVersions.listPolicyVersions()).map((v) => v.source)).toEqual([b, a]);
    await store.policyVersions.recordPolicyVersion({ hash: sha(a), source: a, origin: 'f' });
    expect((await store.policyVersions.listPolicyVersions()).map((v) => v.source)).toEqual([a, b]);
  });

  it('keeps the exact bytes that were hashed', async () => {
    const bytes = Buffer.from('\ufeffrules: []\r\n', 'utf8');
    const v = await store.policyVersions.recordPolicyVersion({ hash: sha(bytes), source: bytes, origin: 'bom.yaml' });
    const row = store.db.prepare('SELECT source FROM policy_versions WHERE hash = ?').get(v.hash) as { source: Buffer };
    expect(sha(row.source)).toBe(v.hash);
  });

  it('refuses a hash that does not match the source, and malformed hashes', async () => {
    await expect(
      store.policyVersions.recordPolicyVersion({ hash: sha('x'), source: 'y', origin: 'f' }),
    ).rejects.toSatisfy((e) => isBastionError(e, 'INVALID_FIELD'));
    await expect(
      store.policyVersions.recordPolicyVersion({ hash: sha('x').toUpperCase(), source: 'x', origin: 'f' }),
    ).rejects.toSatisfy((e) => isBastionError(e, 'INVALID_FIELD'));
    expect(await store.policyVersions.listPolicyVersions()).toEqual([]);
  });
});
