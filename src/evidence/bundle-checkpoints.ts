// The signed audit checkpoints an evidence bundle carries (checkpoints.jsonl), checked against the
// bundle's own audit rows (audit.jsonl): each row's hash is recomputed from its fields, and a
// checkpoint that covered a row the bundle holds must have signed that row's hash. An export from a
// database rewritten after the checkpoints were signed fails here even though its manifest is
// signed by the bastion's real key.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { auditRecordHash } from '../store/audit.js';
import type { AuditRecord } from '../store/types.js';
import { checkpointLabel, readCheckpointLines, type Checkpoint } from './checkpoints.js';

export const CHECKPOINTS_IN_BUNDLE = 'checkpoints.jsonl';
export const AUDIT_IN_BUNDLE = 'audit.jsonl';

export interface BundleProblem {
  kind: 'MISMATCH' | 'BAD SIGNATURE' | 'INVALID';
  path: string;
  message: string;
}

/**
 * The checkpoint lines of `checkpointsText` to put in a bundle: those covering a row it holds, and
 * the last one (the head as of the export). Lines are copied as written (their signatures with them).
 */
export function bundleCheckpointLines(checkpointsText: string, rowIds: ReadonlySet<number>): string {
  const lines = checkpointsText.split('\n').slice(0, -1);
  const picked = lines.filter((line, i) => {
    if (i === lines.length - 1) return true;
    try {
      return rowIds.has((JSON.parse(line) as { checkpoint: Checkpoint }).checkpoint.lastId);
    } catch {
      return false;
    }
  });
  return picked.map((l) => `${l}\n`).join('');
}

export async function checkBundleCheckpoints(dir: string, publicKeyPem: string, hasAudit: boolean): Promise<{ checkpoints: number; problems: BundleProblem[] }> {
  const problems: BundleProblem[] = [];
  const read = readCheckpointLines(await readFile(join(dir, CHECKPOINTS_IN_BUNDLE), 'utf8'), publicKeyPem, CHECKPOINTS_IN_BUNDLE);
  for (const p of read.problems) problems.push({ kind: 'BAD SIGNATURE', path: CHECKPOINTS_IN_BUNDLE, message: p });
  if (!hasAudit) return { checkpoints: read.checkpoints.length, problems };
  const hashes = new Map<number, string>();
  const lines = (await readFile(join(dir, AUDIT_IN_BUNDLE), 'utf8')).split('\n').filter((l) => l !== '');
  for (const [i, line] of lines.entries()) {
    let row: AuditRecord;
    try {
      row = JSON.parse(line) as AuditRecord;
      const actual = auditRecordHash(row.prevHash, row);
      if (actual !== row.hash) {
        problems.push({ kind: 'MISMATCH', path: AUDIT_IN_BUNDLE, message: `row ${row.id}: its hash does not match its fields (the row was edited)` });
        continue;
      }
    } catch (err) {
      problems.push({ kind: 'INVALID', path: AUDIT_IN_BUNDLE, message: `line ${i + 1}: not an audit row (${(err as Error).message})` });
      continue;
    }
    hashes.set(row.id, row.hash);
  }
  for (const c of read.checkpoints) {
    const hash = hashes.get(c.lastId);
    if (hash !== undefined && hash !== c.headHash) {
      problems.push({
        kind: 'MISMATCH',
        path: AUDIT_IN_BUNDLE,
        message: `rewrite: row ${c.lastId} has hash ${hash}, but ${checkpointLabel(c)} signed ${c.headHash}`,
      });
    }
  }
  return { checkpoints: read.checkpoints.length, problems };
}
