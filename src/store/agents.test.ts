import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBastionError } from '../errors/index.js';
import { AGENT_TOKEN_PREFIX, openStore, type SqliteStore } from './index.js';
import { AGENT_AUTH_REUSE_MS } from './agents.js';
import { tempDataDir } from './test-support.js';

describe('agents', () => {
  let tmp: ReturnType<typeof tempDataDir>;
  let store: SqliteStore;
  beforeEach(() => {
    tmp = tempDataDir();
    store = openStore(tmp.dir);
  });
  afterEach(async () => {
    await store.close();
    tmp.cleanup();
  });

  it('creates an agent with a prefixed 32-byte token that authenticates', async () => {
    const { agent, token } = await store.agents.createAgent('ci-bot-1');
    expect(agent.name).toBe('ci-bot-1');
    expect(agent.revokedAt).toBeNull();
    expect(agent.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(token.startsWith(AGENT_TOKEN_PREFIX)).toBe(true);
    expect(Buffer.from(token.slice(AGENT_TOKEN_PREFIX.length), 'base64url')).toHaveLength(32);
    expect(await store.agents.authenticateAgent(token)).toEqual(agent);
    expect(await store.agents.getAgentByName('ci-bot-1')).toEqual(agent);
    expect(await store.agents.getAgentById(agent.id)).toEqual(agent);
  });

  it('shows the token only once and stores only its sha256', async () => {
    const { agent, token } = await store.agents.createAgent('agent-a');
    // Nothing the store returns afterwards carries the token.
    const listed = await store.agents.listAgents();
    expect(JSON.stringify(listed)).not.toContain(token.slice(AGENT_TOKEN_PREFIX.length));
    expect(JSON.stringify(await store.agents.getAgentByName('agent-a'))).not.toContain(token.slice(8));
    const row = store.db.prepare('SELECT * FROM agents WHERE id = ?').get(agent.id) as Record<string, unknown>;
    expect(row['token_hash']).toBe(createHash('sha256').update(token).digest('hex'));
    expect(JSON.stringify(row)).not.toContain(token.slice(AGENT_TOKEN_PREFIX.length));

    // The raw database file (after folding the WAL back in) holds no trace of the token text.
    await store.close();
    const file = store.location;
    const bytes = Buffer.concat([readFileSync(file), existsSync(`${file}-wal`) ? readFileSync(`${file}-wal`) : Buffer.alloc(0)]);
    const body = token.slice(AGENT_TOKEN_PREFIX.length);
    expect(bytes.includes(Buffer.from(token))).toBe(false);
    expect(bytes.includes(Buffer.from(body.slice(0, 16)))).toBe(false);
    expect(bytes.includes(Buffer.from(body.slice(-16)))).toBe(false);
    expect(bytes.includes(Buffer.from(createHash('sha256').update(token).digest('hex')))).toBe(true);
    store = openStore(tmp.dir);
    expect((await store.agents.authenticateAgent(token))?.id).toBe(agent.id);
  });

  it('refuses unknown, malformed and wrong-kind tokens', async () => {
    const { token } = await store.agents.createAgent('agent-b');
    const u = await store.users.createUser('alice', 'admin');
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    for (const bad of ['', 'kba_', token + 'x', flipped, token.replace('kba_', 'kbu_'), u.token, ` ${token}`]) {
      expect(await store.agents.authenticateAgent(bad)).toBeUndefined();
    }
  });

  it('revoked agents fail authentication; revoke is idempotent and keeps the first time', async () => {
    let t = Date.parse('2025-01-01T00:00:00.000Z');
    await store.close();
    store = openStore(tmp.dir, { clock: () => new Date((t += 1000)) });
    const { agent, token } = await store.agents.createAgent('agent-c');
    const revoked = await store.agents.revokeAgent('agent-c');
    expect(revoked.id).toBe(agent.id);
    expect(revoked.revokedAt).toBe('2025-01-01T00:00:02.000Z');
    expect(await store.agents.authenticateAgent(token)).toBeUndefined();
    expect((await store.agents.revokeAgent('agent-c')).revokedAt).toBe('2025-01-01T00:00:02.000Z');
    // The name stays taken: audit rows must keep naming one identity.
    await expect(store.agents.createAgent('agent-c')).rejects.toSatisfy(
      (e) => isBastionError(e, 'ALREADY_EXISTS') && /revoked/.test((e as Error).message),
    );
  });

  it('a token authenticated a moment ago is refused as soon as its agent is revoked', async () => {
    const { agent, token } = await store.agents.createAgent('agent-r');
    expect((await store.agents.authenticateAgent(token))?.id).toBe(agent.id);
    await store.agents.revokeAgent('agent-r');
    expect(await store.agents.authenticateAgent(token)).toBeUndefined();
  });

  it('a revocation through another connection takes effect within AGENT_AUTH_REUSE_MS', async () => {
    let now = Date.parse('2025-01-01T00:00:00.000Z');
    await store.close();
    store = openStore(tmp.dir, { clock: () => new Date(now) });
    const { agent, token } = await store.agents.createAgent('agent-o');
    expect((await store.agents.authenticateAgent(token))?.id).toBe(agent.id);
    const other = openStore(tmp.dir);
    try {
      await other.agents.revokeAgent('agent-o');
    } finally {
      await other.close();
    }
    // The read a moment ago is reused until the bound, and no longer.
    now += AGENT_AUTH_REUSE_MS - 1;
    expect((await store.agents.authenticateAgent(token))?.id).toBe(agent.id);
    now += 1;
    expect(await store.agents.authenticateAgent(token)).toBeUndefined();
  });

  it('revoking an unknown agent is NOT_FOUND', async () => {
    await expect(store.agents.revokeAgent('nobody')).rejects.toSatisfy((e) => isBastionError(e, 'NOT_FOUND'));
  });

  it('duplicate names are ALREADY_EXISTS', async () => {
    await store.agents.createAgent('dup');
    await expect(store.agents.createAgent('dup')).rejects.toSatisfy((e) => isBastionError(e, 'ALREADY_EXISTS'));
    expect(await store.agents.listAgents()).toHaveLength(1);
  });

  it.each(['', 'Upper', 'under_score', '-lead', 'trail-', 'dot.ted', 'sp ace', 'a'.repeat(64), 'é', 'a/b', '0b0c8a1e-7f43-4c2e-9a59-5b1d2c3e4f50'])(
    'rejects the invalid name %j with a clear INVALID_FIELD',
    async (name) => {
      await expect(store.agents.createAgent(name)).rejects.toSatisfy(
        (e) => isBastionError(e, 'INVALID_FIELD') && /agent name/.test((e as Error).message),
      );
    },
  );

  it('accepts DNS-label names', async () => {
    for (const name of ['a', '0', 'a-b', 'x'.repeat(63), 'agent-007']) await store.agents.createAgent(name);
    expect((await store.agents.listAgents()).map((a) => a.name).sort()).toEqual(
      ['0', 'a', 'a-b', 'agent-007', 'x'.repeat(63)].sort(),
    );
  });

  it('tokens are unique per agent', async () => {
    const a = await store.agents.createAgent('one');
    const b = await store.agents.createAgent('two');
    expect(a.token).not.toBe(b.token);
    expect((await store.agents.authenticateAgent(b.token))?.name).toBe('two');
  });

  it('records the owner, who must be an enabled user', async () => {
    await store.users.createUser('ann', 'approver');
    const { agent } = await store.agents.createAgent('owned', 'ann');
    expect(agent.owner).toBe('ann');
    expect((await store.agents.getAgentByName('owned'))?.owner).toBe('ann');
    await expect(store.agents.createAgent('orphan', 'nobody')).rejects.toSatisfy((e) => isBastionError(e, 'INVALID_FIELD') && (e as { field?: string }).field === 'owner');
    await store.users.createUser('root', 'admin');
    await store.users.disableUser('ann');
    await expect(store.agents.createAgent('orphan', 'ann')).rejects.toSatisfy((e) => /disabled user/.test((e as Error).message));
    expect(await store.agents.getAgentByName('orphan')).toBeUndefined();
  });
});

