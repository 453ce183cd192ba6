import { existsSync, readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBastionError } from '../errors/index.js';
import { USER_TOKEN_PREFIX, openStore, type SqliteStore, type UserRole } from './index.js';
import { tempDataDir } from './test-support.js';

describe('users', () => {
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

  it('creates users with a role and a token that authenticates', async () => {
    for (const role of ['approver', 'reviewer', 'admin'] as const) {
      const { user, token } = await store.users.createUser(`u-${role}`, role);
      expect(user).toMatchObject({ name: `u-${role}`, role, disabledAt: null });
      expect(token.startsWith(USER_TOKEN_PREFIX)).toBe(true);
      expect(await store.users.authenticateUser(token)).toEqual(user);
    }
    expect((await store.users.listUsers()).map((u) => u.role)).toEqual(['approver', 'reviewer', 'admin']);
  });

  it('stores only the token hash', async () => {
    const { token } = await store.users.createUser('alice', 'approver');
    await store.close();
    const f = store.location;
    const bytes = Buffer.concat([readFileSync(f), existsSync(`${f}-wal`) ? readFileSync(`${f}-wal`) : Buffer.alloc(0)]);
    expect(bytes.includes(Buffer.from(token.slice(USER_TOKEN_PREFIX.length, USER_TOKEN_PREFIX.length + 16)))).toBe(false);
    store = openStore(tmp.dir);
    expect((await store.users.authenticateUser(token))?.name).toBe('alice');
  });

  it('an agent token is not a user token', async () => {
    const { token } = await store.agents.createAgent('bot');
    expect(await store.users.authenticateUser(token)).toBeUndefined();
    expect(await store.users.authenticateUser('')).toBeUndefined();
  });

  it('disabled users fail authentication', async () => {
    const { token } = await store.users.createUser('bob', 'reviewer');
    const disabled = await store.users.disableUser('bob');
    expect(disabled.disabledAt).not.toBeNull();
    expect(await store.users.authenticateUser(token)).toBeUndefined();
    expect((await store.users.disableUser('bob')).disabledAt).toBe(disabled.disabledAt);
    await expect(store.users.disableUser('nobody')).rejects.toSatisfy((e) => isBastionError(e, 'NOT_FOUND'));
  });

  it('rejects duplicates, bad names and bad roles', async () => {
    await store.users.createUser('carol', 'admin');
    await expect(store.users.createUser('carol', 'reviewer')).rejects.toSatisfy((e) => isBastionError(e, 'ALREADY_EXISTS'));
    await expect(store.users.createUser('Carol', 'admin')).rejects.toSatisfy(
      (e) => isBastionError(e, 'INVALID_FIELD') && /user name/.test((e as Error).message),
    );
    await expect(store.users.createUser('dave', 'root' as UserRole)).rejects.toSatisfy(
      (e) => isBastionError(e, 'INVALID_FIELD') && /approver, reviewer, admin/.test((e as Error).message),
    );
    expect(await store.users.getUserByName('dave')).toBeUndefined();
  });

  it('rotating a token returns a new one once; the old one fails at once; disabled users get none', async () => {
    const { token: old } = await store.users.createUser('erin', 'approver');
    const { user, token } = await store.users.rotateToken('erin');
    expect(user.name).toBe('erin');
    expect(token).not.toBe(old);
    expect(await store.users.authenticateUser(old)).toBeUndefined();
    expect((await store.users.authenticateUser(token))?.name).toBe('erin');
    await store.users.disableUser('erin');
    await expect(store.users.rotateToken('erin')).rejects.toSatisfy((e) => isBastionError(e, 'INVALID_STATE') && (e as { field?: string }).field === 'name');
    await expect(store.users.rotateToken('nobody')).rejects.toSatisfy((e) => isBastionError(e, 'NOT_FOUND'));
  });

  it('the last enabled admin cannot be disabled', async () => {
    await store.users.createUser('root', 'admin');
    await expect(store.users.disableUser('root')).rejects.toSatisfy((e) => isBastionError(e, 'INVALID_STATE') && /last enabled admin/.test((e as Error).message));
    await store.users.createUser('root2', 'admin');
    expect((await store.users.disableUser('root')).disabledAt).not.toBeNull();
    await expect(store.users.disableUser('root2')).rejects.toSatisfy((e) => isBastionError(e, 'INVALID_STATE'));
  });
});

