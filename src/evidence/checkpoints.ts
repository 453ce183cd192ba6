// Signed checkpoints of the audit chain's head, kept outside the database.
//
// The hash chain alone cannot tell a truncated tail, a wiped table or a chain recomputed after an
// edit from an intact one (src/store/audit.ts): whoever can write the database can do all three.
// So the bastion signs its head (row count, last id, head hash, time, key fingerprint) with its
// Ed25519 key at every approval decision, at every session end, at start and stop, and at least
// every minute while the head moves, and appends it as one JSON line to
//
//   <dataDir>/audit-checkpoints.jsonl     {"checkpoint":{...},"signature":"<base64>"}
//
// A decision or a session end requests one, written within DEFAULT_CHECKPOINT_COALESCE_MS; the
// requests of a burst (200 sessions cut at one deadline) share it, since it signs the head that
// already holds all their rows.
//
// (optionally also POSTing each line to a webhook, best effort). `audit verify` checks the chain
// against these: a row a checkpoint covered that is gone (truncation, wipe) or has another hash
// (rewrite) is named. The signature covers JSON.stringify of the checkpoint with its keys in the
// order CHECKPOINT_KEYS lists, which is also the order they are written in.
//
// What it does not stop: someone who holds the private key (it is in the data dir) can sign new
// checkpoints, and someone who can write the file can drop its last lines. A copy elsewhere (the
// webhook's sink) is what survives both.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditAnchor, AuditHead, AuditLog } from '../store/types.js';
import { fingerprintOf, loadOrCreateSigningKey, publicKeyFromPem, verifySignature, type SigningKey } from './signing-key.js';

export const CHECKPOINTS_FILE = 'audit-checkpoints.jsonl';
export const CHECKPOINT_FORMAT = 'kube-bastion-audit-checkpoint';
/** At least this often while the head moves (ms). */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 60_000;
/**
 * A requested checkpoint (a decision, a session end) is written within this many ms, and every
 * request in that window shares it: 200 sessions ending together cost one signature and one fsync,
 * not 200, on the event loop that is closing their connections.
 */
export const DEFAULT_CHECKPOINT_COALESCE_MS = 50;

/** Why a checkpoint was written. */
export type CheckpointReason = 'start' | 'stop' | 'interval' | 'approval' | 'session-end' | 'cli';

export interface Checkpoint {
  format: typeof CHECKPOINT_FORMAT;
  version: 1;
  /** 1, 2, ... in the file it was written to (as its writer saw the file). */
  seq: number;
  /** When it was signed (ISO 8601). */
  time: string;
  reason: CheckpointReason;
  /** Rows in the chain. */
  rows: number;
  /** Id of the last row (ids run 1..lastId without gaps in an intact chain). */
  lastId: number;
  /** Hash of row lastId. */
  headHash: string;
  /** The signing key's fingerprint (`SHA256:...`). */
  keyFingerprint: string;
}

/** One line of the file. */
export interface SignedCheckpoint {
  checkpoint: Checkpoint;
  /** base64 Ed25519 signature over checkpointBytes(checkpoint). */
  signature: string;
}

const CHECKPOINT_KEYS = ['format', 'version', 'seq', 'time', 'reason', 'rows', 'lastId', 'headHash', 'keyFingerprint'] as const;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export function checkpointsPath(dataDir: string): string {
  return join(dataDir, CHECKPOINTS_FILE);
}

/** The exact bytes a checkpoint's signature covers. */
export function checkpointBytes(c: Checkpoint): Buffer {
  const ordered: Record<string, unknown> = {};
  for (const k of CHECKPOINT_KEYS) ordered[k] = c[k];
  return Buffer.from(JSON.stringify(ordered), 'utf8');
}

export function signCheckpoint(head: AuditHead, key: SigningKey, seq: number, time: Date, reason: CheckpointReason): SignedCheckpoint {
  const checkpoint: Checkpoint = {
    format: CHECKPOINT_FORMAT,
    version: 1,
    seq,
    time: time.toISOString(),
    reason,
    rows: head.rows,
    lastId: head.lastId,
    headHash: head.headHash,
    keyFingerprint: key.fingerprint,
  };
  return { checkpoint, signature: key.sign(checkpointBytes(checkpoint)).toString('base64') };
}

/** The line written for a checkpoint (with its newline). */
export function checkpointLine(s: SignedCheckpoint): string {
  return `{"checkpoint":${checkpointBytes(s.checkpoint).toString('utf8')},"signature":${JSON.stringify(s.signature)}}\n`;
}

/** How a message names a checkpoint: `checkpoint 12 (2025-06-01T09:00:00.000Z)`. */
export function checkpointLabel(c: Pick<Checkpoint, 'seq' | 'time'>): string {
  return `checkpoint ${c.seq} (${c.time})`;
}

export function anchorOf(c: Checkpoint): AuditAnchor {
  return { lastId: c.lastId, headHash: c.headHash, label: checkpointLabel(c) };
}

export interface ReadCheckpoints {
  /** The checkpoints whose signature verified, in file order. */
  checkpoints: Checkpoint[];
  /** One sentence per line that is not a checkpoint signed by the key. */
  problems: string[];
}

/** Why a parsed line is not a checkpoint, or undefined. */
function shapeError(c: Record<string, unknown>): string | undefined {
  const extra = Object.keys(c).filter((k) => !(CHECKPOINT_KEYS as readonly string[]).includes(k));
  if (extra.length > 0) return `unknown field ${extra[0]}`;
  if (c['format'] !== CHECKPOINT_FORMAT || c['version'] !== 1) return 'not a version 1 checkpoint';
  for (const k of ['seq', 'rows', 'lastId'] as const) if (!Number.isSafeInteger(c[k]) || (c[k] as number) < 0) return `${k} is not a whole number`;
  if (typeof c['time'] !== 'string' || Number.isNaN(Date.parse(c['time']))) return 'time is not a time';
  if (typeof c['headHash'] !== 'string' || !SHA256_HEX.test(c['headHash'])) return 'headHash is not a sha256 hex digest';
  if (typeof c['reason'] !== 'string' || typeof c['keyFingerprint'] !== 'string') return 'reason or keyFingerprint missing';
  return undefined;
}

/**
 * Parses checkpoint lines (a checkpoints file, or the copy in an evidence bundle) and checks each
 * signature with `publicKeyPem`. A line that is not a checkpoint signed by that key is a problem:
 * the file was edited, or another key signed it.
 */
export function readCheckpointLines(text: string, publicKeyPem: string, where = CHECKPOINTS_FILE): ReadCheckpoints {
  const key = publicKeyFromPem(publicKeyPem);
  const fingerprint = fingerprintOf(key);
  const checkpoints: Checkpoint[] = [];
  const problems: string[] = [];
  // The part after the last newline is empty, or a write a crash cut short: not a checkpoint.
  const lines = text.split('\n').slice(0, -1);
  lines.forEach((line, i) => {
    const at = `${where} line ${i + 1}`;
    let parsed: { checkpoint?: unknown; signature?: unknown };
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      problems.push(`${at}: not JSON`);
      return;
    }
    const c = parsed?.checkpoint as Record<string, unknown> | undefined;
    if (typeof c !== 'object' || c === null || typeof parsed.signature !== 'string') {
      problems.push(`${at}: not a signed checkpoint`);
      return;
    }
    const why = shapeError(c);
    if (why) {
      problems.push(`${at}: ${why}`);
      return;
    }
    const checkpoint = c as unknown as Checkpoint;
    if (checkpoint.keyFingerprint !== fingerprint) {
      problems.push(`${at}: signed by key ${checkpoint.keyFingerprint}, not by key ${fingerprint} it is checked with`);
      return;
    }
    if (!verifySignature(key, checkpointBytes(checkpoint), Buffer.from(parsed.signature, 'base64'))) {
      problems.push(`${at}: the signature does not match (the checkpoint was edited)`);
      return;
    }
    checkpoints.push(checkpoint);
  });
  return { checkpoints, problems };
}

/** The checkpoints file read and checked; no file: none. */
export function readCheckpointsFile(file: string, publicKeyPem: string): ReadCheckpoints & { exists: boolean } {
  if (!existsSync(file)) return { exists: false, checkpoints: [], problems: [] };
  return { exists: true, ...readCheckpointLines(readFileSync(file, 'utf8'), publicKeyPem) };
}

/**
 * The last complete line's checkpoint, unverified (to continue the numbering and skip a repeat), and
 * whether the file ends mid-line (a write a crash cut short: the next line must not be glued to it).
 */
function lastWritten(file: string): { last: Checkpoint | undefined; torn: boolean } {
  if (!existsSync(file)) return { last: undefined, torn: false };
  const size = statSync(file).size;
  const fd = openSync(file, 'r');
  try {
    const length = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(length);
    const n = readSync(fd, buf, 0, length, size - length);
    const text = buf.subarray(0, n).toString('utf8');
    const torn = text.length > 0 && !text.endsWith('\n');
    const lines = text.split('\n').slice(0, -1);
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        const c = (JSON.parse(lines[i]!) as SignedCheckpoint).checkpoint;
        if (c && Number.isSafeInteger(c.seq)) return { last: c, torn };
      } catch {
        /* a partial first line of the window: look further back */
      }
    }
    return { last: undefined, torn };
  } finally {
    closeSync(fd);
  }
}

/** Appends one line and fsyncs it: a checkpoint is only worth something once it is on disk. */
function appendDurably(file: string, line: string): void {
  const fd = openSync(file, 'a', 0o600);
  try {
    writeSync(fd, line);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The little a checkpoint writer says about itself (a pino logger fits). */
export interface CheckpointLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface CheckpointWriterOptions {
  audit: Pick<AuditLog, 'head'>;
  key: SigningKey;
  /** Usually checkpointsPath(dataDir). */
  file: string;
  /** Each line is also POSTed here (application/json), best effort: a failure is logged. */
  webhookUrl?: string;
  log?: CheckpointLog;
  /** Default 60 s. */
  intervalMs?: number;
  /** How long request() may wait so that a burst shares one checkpoint (default 50 ms; 0: the next turn of the loop). */
  coalesceMs?: number;
  clock?: () => Date;
}

/**
 * Writes checkpoints: `checkpoint(reason)` signs the head when it moved since the last line, one
 * at a time; `start()` writes one and arms the interval; `close()` writes the last one.
 */
export class CheckpointWriter {
  private last: Checkpoint | undefined;
  /** The file ends mid-line: the next write starts a new one (the fragment stays, and is reported). */
  private torn: boolean;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  /** A request() waiting for its window: later requests join it, checkpoint() takes it over. */
  private due: { reason: CheckpointReason; timer: NodeJS.Timeout } | undefined;
  private readonly clock: () => Date;

  constructor(private readonly opts: CheckpointWriterOptions) {
    this.clock = opts.clock ?? (() => new Date());
    ({ last: this.last, torn: this.torn } = lastWritten(opts.file));
  }

  /** Writes a checkpoint now (if the head moved) and then at least every interval. */
  async start(): Promise<Checkpoint | undefined> {
    const written = await this.checkpoint('start');
    this.timer = setInterval(() => this.request('interval'), this.opts.intervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS);
    this.timer.unref();
    return written;
  }

  /** Signs and appends the head, unless it is the one the last line holds. Serialised. */
  checkpoint(reason: CheckpointReason): Promise<Checkpoint | undefined> {
    // A request still waiting for its window is covered by this one: its rows are already in the head.
    if (this.due) clearTimeout(this.due.timer);
    this.due = undefined;
    const run = this.queue.then(() => this.write(reason));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * checkpoint() within the coalescing window, without waiting; a failure is logged. Requests made
   * while one is due join it (the head it signs includes their rows), so a burst of session ends
   * is one checkpoint, reason the first request's.
   */
  request(reason: CheckpointReason): void {
    if (this.due) return;
    const timer = setTimeout(() => {
      if (this.due?.timer !== timer) return;
      this.due = undefined;
      this.checkpoint(reason).catch((err: unknown) => this.opts.log?.error({ err, reason }, 'writing an audit checkpoint failed'));
    }, this.opts.coalesceMs ?? DEFAULT_CHECKPOINT_COALESCE_MS);
    this.due = { reason, timer };
  }

  /** Stops the interval and writes the final checkpoint. */
  async close(): Promise<Checkpoint | undefined> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return this.checkpoint('stop');
  }

  private async write(reason: CheckpointReason): Promise<Checkpoint | undefined> {
    const head = await this.opts.audit.head();
    if (this.last && this.last.lastId === head.lastId && this.last.headHash === head.headHash && this.last.rows === head.rows) return undefined;
    const signed = signCheckpoint(head, this.opts.key, (this.last?.seq ?? 0) + 1, this.clock(), reason);
    const line = checkpointLine(signed);
    appendDurably(this.opts.file, this.torn ? `\n${line}` : line);
    this.torn = false;
    this.last = signed.checkpoint;
    if (this.opts.webhookUrl) this.post(this.opts.webhookUrl, line, signed.checkpoint);
    return signed.checkpoint;
  }

  private post(url: string, line: string, c: Checkpoint): void {
    fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: line, signal: AbortSignal.timeout(5000) })
      .then((res) => {
        if (!res.ok) this.opts.log?.warn({ url, status: res.status, seq: c.seq }, 'audit checkpoint webhook answered with an error');
      })
      .catch((err: unknown) => this.opts.log?.warn({ url, err: (err as Error).message, seq: c.seq }, 'audit checkpoint webhook failed'));
  }
}

/**
 * The audit log, with a checkpoint requested after every `session.end` row: a session's end is
 * signed within the coalescing window, whichever part wrote it.
 */
export function checkpointingAudit(audit: AuditLog, writer: Pick<CheckpointWriter, 'request'>): AuditLog {
  return {
    append: async (input) => {
      const row = await audit.append(input);
      if (row.event === 'session.end') writer.request('session-end');
      return row;
    },
    query: (q) => audit.query(q),
    head: () => audit.head(),
    verify: (opts) => audit.verify(opts),
  };
}

/**
 * One checkpoint of a data dir's head, for commands that write audit rows without a running
 * bastion (agent add, user add, export --data-dir): their rows are signed before they return.
 */
export async function checkpointDataDir(dataDir: string, audit: Pick<AuditLog, 'head'>): Promise<Checkpoint | undefined> {
  return new CheckpointWriter({ audit, key: loadOrCreateSigningKey(dataDir), file: checkpointsPath(dataDir) }).checkpoint('cli');
}
