// Every policy file the bastion has ever decided with, by the sha256 of its exact bytes, so an
// audit row's `policy_hash` always resolves to the text that decided.
import { createHash } from 'node:crypto';
import { invalidField } from '../errors/index.js';
import type { Db } from './db.js';
import type { Clock, PolicyVersion, PolicyVersionInput, PolicyVersionStore } from './types.js';

interface PolicyVersionRow {
  hash: string;
  source: Buffer;
  origin: string;
  first_loaded_at: string;
  last_loaded_at: string;
  load_count: number;
}

const COLUMNS = 'hash, source, origin, first_loaded_at, last_loaded_at, load_count';
const SHA256_HEX = /^[0-9a-f]{64}$/;

function toPolicyVersion(row: PolicyVersionRow): PolicyVersion {
  return {
    hash: row.hash,
    source: row.source.toString('utf8'),
    origin: row.origin,
    firstLoadedAt: row.first_loaded_at,
    lastLoadedAt: row.last_loaded_at,
    loadCount: row.load_count,
  };
}

export class SqlitePolicyVersionStore implements PolicyVersionStore {
  private readonly byHash;
  private readonly all;
  private readonly upsert;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock = () => new Date(),
  ) {
    this.byHash = db.prepare<[string], PolicyVersionRow>(`SELECT ${COLUMNS} FROM policy_versions WHERE hash = ?`);
    this.all = db.prepare<[], PolicyVersionRow>(
      `SELECT ${COLUMNS} FROM policy_versions ORDER BY last_loaded_at DESC, hash`,
    );
    this.upsert = db.prepare<[string, Buffer, string, string, string]>(
      `INSERT INTO policy_versions (hash, source, origin, first_loaded_at, last_loaded_at, load_count)
       VALUES (?, ?, ?, ?, ?, 1)
       ON CONFLICT (hash) DO UPDATE SET
         last_loaded_at = excluded.last_loaded_at,
         load_count = policy_versions.load_count + 1`,
    );
  }

  async recordPolicyVersion(input: PolicyVersionInput): Promise<PolicyVersion> {
    const { hash, origin } = input;
    if (typeof hash !== 'string' || !SHA256_HEX.test(hash)) {
      throw invalidField('hash', 'policy hash must be a lower-case hex sha256');
    }
    if (typeof origin !== 'string' || origin.length === 0) {
      throw invalidField('origin', 'policy origin is required');
    }
    const bytes = typeof input.source === 'string' ? Buffer.from(input.source, 'utf8') : Buffer.from(input.source);
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== hash) {
      throw invalidField('hash', `policy hash ${hash} does not match its source (sha256 ${actual})`, {expected: actual});
    }
    const now = this.clock().toISOString();
    const record = this.db.transaction((): PolicyVersion => {
      this.upsert.run(hash, bytes, origin, now, now);
      return toPolicyVersion(this.byHash.get(hash)!);
    });
    return record.immediate();
  }

  async getPolicyVersion(hash: string): Promise<PolicyVersion | undefined> {
    const row = this.byHash.get(hash);
    return row && toPolicyVersion(row);
  }

  async listPolicyVersions(): Promise<PolicyVersion[]> {
    return this.all.all().map(toPolicyVersion);
  }
}
