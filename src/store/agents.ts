// Agents: the identities the Kubernetes endpoint authenticates. Only token hashes are stored.
import { randomUUID } from 'node:crypto';
import type { Principal } from '../model/request.js';
import { BastionError, ErrorCode, invalidField } from '../errors/index.js';
import { isUniqueViolation, type Db } from './db.js';
import { AGENT_TOKEN_PREFIX, digestsEqual, generateToken, hashToken, looksLikeToken, validateName } from './tokens.js';
import type { Agent, AgentStore, Clock } from './types.js';

interface AgentRow {
  id: string;
  name: string;
  token_hash: string;
  created_at: string;
  revoked_at: string | null;
  owner: string | null;
}

const COLUMNS = 'id, name, token_hash, created_at, revoked_at, owner';

const MAX_CACHED_TOKENS = 1024;

/**
 * How long an authentication read from the database is reused for the same token. A revocation
 * through this store (the control API's) drops it at once; one written through another connection
 * to the database (another process) takes effect within this bound, as it does for what already
 * runs under the agent (the approval lease re-reads the agent every second, LEASE_RECHECK_MS).
 */
export const AGENT_AUTH_REUSE_MS = 1000;

function toAgent(row: AgentRow): Agent {
  return { id: row.id, name: row.name, owner: row.owner, createdAt: row.created_at, revokedAt: row.revoked_at };
}

/** The policy/audit identity of an authenticated agent. */
export function agentPrincipal(agent: Pick<Agent, 'id' | 'name'>): Principal {
  return { kind: 'agent', id: agent.id, name: agent.name };
}

export class SqliteAgentStore implements AgentStore {
  private readonly byName;
  private readonly byId;
  private readonly byTokenHash;
  private readonly all;
  private readonly insert;
  private readonly setRevoked;
  private readonly ownerRow;
  /**
   * Presented token -> its SHA-256 and the active agent it authenticated, and when that was read
   * (clock ms): a token is hashed once, and its row is read at most once per AGENT_AUTH_REUSE_MS,
   * not per request (the indexed read was 5% of the bastion's CPU per REST GET). Only tokens of an
   * active agent are kept (unknown ones would let a client fill the map); revokeAgent empties it.
   * Bounded: emptied when full.
   */
  private readonly authenticated = new Map<string, { digest: string; agent: Agent; readAt: number }>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock = () => new Date(),
  ) {
    this.byName = db.prepare<[string], AgentRow>(`SELECT ${COLUMNS} FROM agents WHERE name = ?`);
    this.byId = db.prepare<[string], AgentRow>(`SELECT ${COLUMNS} FROM agents WHERE id = ?`);
    this.byTokenHash = db.prepare<[string], AgentRow>(`SELECT ${COLUMNS} FROM agents WHERE token_hash = ?`);
    this.all = db.prepare<[], AgentRow>(`SELECT ${COLUMNS} FROM agents ORDER BY rowid`);
    this.insert = db.prepare<[string, string, string, string, string | null]>(
      'INSERT INTO agents (id, name, token_hash, created_at, owner) VALUES (?, ?, ?, ?, ?)',
    );
    this.ownerRow = db.prepare<[string], { name: string; disabled_at: string | null }>('SELECT name, disabled_at FROM users WHERE name = ?');
    this.setRevoked = db.prepare<[string, string]>('UPDATE agents SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');
  }

  async createAgent(name: string, owner: string | null = null): Promise<{ agent: Agent; token: string }> {
    validateName('agent', name);
    if (owner !== null) {
      const user = this.ownerRow.get(owner);
      if (!user) throw invalidField('owner', `owner ${JSON.stringify(owner)} is not a user (kube-bastion user list)`);
      if (user.disabled_at !== null) throw invalidField('owner', `owner ${JSON.stringify(owner)} is a disabled user`);
    }
    const token = generateToken(AGENT_TOKEN_PREFIX);
    const row: AgentRow = {
      id: randomUUID(),
      name,
      token_hash: hashToken(token),
      created_at: this.clock().toISOString(),
      revoked_at: null,
      owner,
    };
    try {
      this.insert.run(row.id, row.name, row.token_hash, row.created_at, row.owner);
    } catch (err) {
      if (isUniqueViolation(err, 'agents.name')) {
        const existing = this.byName.get(name);
        const state = existing?.revoked_at ? ` (revoked ${existing.revoked_at}; names are never reused)` : '';
        throw new BastionError(ErrorCode.ALREADY_EXISTS, `agent ${JSON.stringify(name)} already exists${state}`, {
          name,
        });
      }
      throw err;
    }
    return { agent: toAgent(row), token };
  }

  async authenticateAgent(token: string): Promise<Agent | undefined> {
    if (!looksLikeToken(token, AGENT_TOKEN_PREFIX)) return undefined;
    const now = this.clock().getTime();
    const cached = this.authenticated.get(token);
    if (cached !== undefined && now - cached.readAt < AGENT_AUTH_REUSE_MS && now >= cached.readAt) return cached.agent;
    const digest = cached?.digest ?? hashToken(token);
    const row = this.byTokenHash.get(digest);
    if (!row || !digestsEqual(row.token_hash, digest) || row.revoked_at !== null) {
      this.authenticated.delete(token);
      return undefined;
    }
    if (cached === undefined && this.authenticated.size >= MAX_CACHED_TOKENS) this.authenticated.clear();
    const agent = toAgent(row);
    this.authenticated.set(token, { digest, agent, readAt: now });
    return agent;
  }

  async listAgents(): Promise<Agent[]> {
    return this.all.all().map(toAgent);
  }

  async getAgentByName(name: string): Promise<Agent | undefined> {
    const row = this.byName.get(name);
    return row && toAgent(row);
  }

  async getAgentById(id: string): Promise<Agent | undefined> {
    const row = this.byId.get(id);
    return row && toAgent(row);
  }

  async revokeAgent(name: string): Promise<Agent> {
    const revoke = this.db.transaction((): Agent => {
      const row = this.byName.get(name);
      if (!row) throw new BastionError(ErrorCode.NOT_FOUND, `agent ${JSON.stringify(name)} not found`, { name });
      if (row.revoked_at === null) this.setRevoked.run(this.clock().toISOString(), row.id);
      return toAgent(this.byId.get(row.id)!);
    });
    const revoked = revoke.immediate();
    // Its token stops working now, not when a reused authentication would be read again.
    this.authenticated.clear();
    return revoked;
  }
}
