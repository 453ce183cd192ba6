// Control-endpoint users (approvers, reviewers, admins). Only token hashes are stored.
import { randomUUID } from 'node:crypto';
import { BastionError, ErrorCode, invalidField } from '../errors/index.js';
import { isUniqueViolation, type Db } from './db.js';
import { USER_TOKEN_PREFIX, digestsEqual, generateToken, hashToken, looksLikeToken, validateName } from './tokens.js';
import { USER_ROLES, type Clock, type User, type UserRole, type UserStore } from './types.js';

interface UserRow {
  id: string;
  name: string;
  role: UserRole;
  token_hash: string;
  created_at: string;
  disabled_at: string | null;
}

const COLUMNS = 'id, name, role, token_hash, created_at, disabled_at';

function toUser(row: UserRow): User {
  return { id: row.id, name: row.name, role: row.role, createdAt: row.created_at, disabledAt: row.disabled_at };
}

export function isUserRole(role: unknown): role is UserRole {
  return typeof role === 'string' && (USER_ROLES as readonly string[]).includes(role);
}

export class SqliteUserStore implements UserStore {
  private readonly byName;
  private readonly byId;
  private readonly byTokenHash;
  private readonly all;
  private readonly insert;
  private readonly setDisabled;
  private readonly setTokenHash;
  private readonly otherEnabledAdmins;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock = () => new Date(),
  ) {
    this.byName = db.prepare<[string], UserRow>(`SELECT ${COLUMNS} FROM users WHERE name = ?`);
    this.byId = db.prepare<[string], UserRow>(`SELECT ${COLUMNS} FROM users WHERE id = ?`);
    this.byTokenHash = db.prepare<[string], UserRow>(`SELECT ${COLUMNS} FROM users WHERE token_hash = ?`);
    this.all = db.prepare<[], UserRow>(`SELECT ${COLUMNS} FROM users ORDER BY rowid`);
    this.insert = db.prepare<[string, string, string, string, string]>(
      'INSERT INTO users (id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)',
    );
    this.setDisabled = db.prepare<[string, string]>(
      'UPDATE users SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL',
    );
    this.setTokenHash = db.prepare<[string, string]>('UPDATE users SET token_hash = ? WHERE id = ? AND disabled_at IS NULL');
    this.otherEnabledAdmins = db.prepare<[string], { n: number }>(
      "SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled_at IS NULL AND id <> ?",
    );
  }

  async createUser(name: string, role: UserRole): Promise<{ user: User; token: string }> {
    validateName('user', name);
    if (!isUserRole(role)) {
      throw invalidField('role', `user role ${JSON.stringify(role)} is invalid: use one of ${USER_ROLES.join(', ')}`);
    }
    const token = generateToken(USER_TOKEN_PREFIX);
    const row: UserRow = {
      id: randomUUID(),
      name,
      role,
      token_hash: hashToken(token),
      created_at: this.clock().toISOString(),
      disabled_at: null,
    };
    try {
      this.insert.run(row.id, row.name, row.role, row.token_hash, row.created_at);
    } catch (err) {
      if (isUniqueViolation(err, 'users.name')) {
        throw new BastionError(ErrorCode.ALREADY_EXISTS, `user ${JSON.stringify(name)} already exists`, { name });
      }
      throw err;
    }
    return { user: toUser(row), token };
  }

  async authenticateUser(token: string): Promise<User | undefined> {
    if (!looksLikeToken(token, USER_TOKEN_PREFIX)) return undefined;
    const digest = hashToken(token);
    const row = this.byTokenHash.get(digest);
    if (!row || !digestsEqual(row.token_hash, digest) || row.disabled_at !== null) return undefined;
    return toUser(row);
  }

  async listUsers(): Promise<User[]> {
    return this.all.all().map(toUser);
  }

  async getUserByName(name: string): Promise<User | undefined> {
    const row = this.byName.get(name);
    return row && toUser(row);
  }

  async disableUser(name: string): Promise<User> {
    const disable = this.db.transaction((): User => {
      const row = this.byName.get(name);
      if (!row) throw new BastionError(ErrorCode.NOT_FOUND, `user ${JSON.stringify(name)} not found`, { name });
      // Nobody could then create users, agents or unlock anything through the API.
      if (row.disabled_at === null && row.role === 'admin' && this.otherEnabledAdmins.get(row.id)!.n === 0) {
        throw new BastionError(ErrorCode.INVALID_STATE, `user ${JSON.stringify(name)} is the last enabled admin; create another admin first`, { name }, { field: 'name' });
      }
      if (row.disabled_at === null) this.setDisabled.run(this.clock().toISOString(), row.id);
      return toUser(this.byId.get(row.id)!);
    });
    return disable.immediate();
  }

  async rotateToken(name: string): Promise<{ user: User; token: string }> {
    const rotate = this.db.transaction((): { user: User; token: string } => {
      const row = this.byName.get(name);
      if (!row) throw new BastionError(ErrorCode.NOT_FOUND, `user ${JSON.stringify(name)} not found`, { name });
      if (row.disabled_at !== null) {
        throw new BastionError(ErrorCode.INVALID_STATE, `user ${JSON.stringify(name)} is disabled (since ${row.disabled_at}); a disabled user gets no token`, { name }, { field: 'name' });
      }
      const token = generateToken(USER_TOKEN_PREFIX);
      // The old hash is gone with this update: the old token fails its next authentication.
      this.setTokenHash.run(hashToken(token), row.id);
      return { user: toUser(row), token };
    });
    return rotate.immediate();
  }
}
