// Group commits of audit rows whose loss in a crash is bounded and documented (an allowed read's
// row, written once its response is complete): they are accepted in order, chained and committed
// together, at most `maxDelayMs` after the first of a group or as soon as `maxRows` wait, in one
// transaction (one fsync) instead of one each. See docs/storage.md, "Durability of audit rows".
// A session's end rows (its table writes with their audit row) ride the same group (`write`), see
// "Durability of session rows".
//
// Order: an accepted row is committed before any row appended after it on the same connection
// (audit.ts chains the pending rows first in every durable append's own transaction), so the
// chain's order is the order rows were accepted, and a decision's row always follows the reads
// accepted before it.
//
// Failure: a commit that fails keeps every row queued (none is dropped) and marks the batcher
// unhealthy; it retries every `retryMs` and is healthy again once a commit succeeds. While it is
// unhealthy the endpoint forwards nothing (fail closed), so the queue grows only by the requests
// already in flight.
import { BastionError, ErrorCode } from '../errors/index.js';
import { commitPendingAudit, pendingAuditRows, prepareAuditRow, type PendingAuditRow } from './audit.js';
import type { Db } from './db.js';
import type { AuditEventInput, AuditRecord, Clock } from './types.js';

export interface AuditBatchOptions {
  /** The durability window: an accepted row is committed at most this long after the first row of its group (50). */
  maxDelayMs?: number;
  /** A group this large is committed at once, without waiting for the window (256). */
  maxRows?: number;
  /** After a failed commit, the next attempt comes this much later (1000). */
  retryMs?: number;
  /** Told of each failed commit (with the rows still queued) and of the recovery. */
  onFailure?(err: unknown, queued: number): void;
  onRecovered?(committed: number): void;
}

export const AUDIT_BATCH_DEFAULTS = { maxDelayMs: 50, maxRows: 256, retryMs: 1000 } as const;

export class AuditBatcher {
  private readonly queue: PendingAuditRow[];
  private readonly maxDelayMs: number;
  private readonly maxRows: number;
  private readonly retryMs: number;
  private timer: NodeJS.Timeout | undefined;
  private failed: unknown;
  private closed = false;
  /** Promises of accepted rows, settled when their group commits (or rejected if it never can). */
  private readonly waiters = new Map<PendingAuditRow, { reject(err: unknown): void }>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock = () => new Date(),
    private readonly opts: AuditBatchOptions = {},
  ) {
    this.queue = pendingAuditRows(db);
    this.maxDelayMs = opts.maxDelayMs ?? AUDIT_BATCH_DEFAULTS.maxDelayMs;
    this.maxRows = opts.maxRows ?? AUDIT_BATCH_DEFAULTS.maxRows;
    this.retryMs = opts.retryMs ?? AUDIT_BATCH_DEFAULTS.retryMs;
  }

  /** False from a failed commit until a commit succeeds: nothing new should be served meanwhile. */
  get healthy(): boolean {
    return this.failed === undefined && !this.closed;
  }

  /** Rows accepted and not yet committed. */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * Accepts a row for the next group commit; resolves with its record once committed. A bad field
   * rejects at once (nothing queued); after close it is refused.
   */
  append(input: AuditEventInput): Promise<AuditRecord> {
    if (this.closed) return Promise.reject(new BastionError(ErrorCode.INTERNAL, 'the audit batcher is closed'));
    return new Promise<AuditRecord>((resolve, reject) => {
      const row = prepareAuditRow(input, this.clock, (record) => {
        this.waiters.delete(row);
        resolve(record!);
      });
      this.accept(row, reject);
    });
  }

  /**
   * Accepts a table write (and, if given, the audit row that goes with it) for the next group
   * commit: both in one transaction, in acceptance order with every other row. Resolves once
   * committed. The write's inputs must be checked before (see PendingAuditRow).
   */
  write(write: () => void, input?: AuditEventInput): Promise<AuditRecord | undefined> {
    if (this.closed) return Promise.reject(new BastionError(ErrorCode.INTERNAL, 'the audit batcher is closed'));
    return new Promise<AuditRecord | undefined>((resolve, reject) => {
      const done = (record: AuditRecord | undefined): void => {
        this.waiters.delete(row);
        resolve(record);
      };
      const row: PendingAuditRow = input ? { ...prepareAuditRow(input, this.clock, done), write } : { fields: null, time: '', write, committed: done };
      this.accept(row, reject);
    });
  }

  private accept(row: PendingAuditRow, reject: (err: unknown) => void): void {
    this.waiters.set(row, { reject });
    this.queue.push(row);
    this.schedule();
  }

  /** Commits what is queued now; throws (keeping the rows queued) when the store cannot. */
  flush(): void {
    this.clearTimer();
    try {
      const n = commitPendingAudit(this.db);
      if (this.failed !== undefined) {
        this.failed = undefined;
        this.opts.onRecovered?.(n);
      }
    } catch (err) {
      this.failed = err;
      this.opts.onFailure?.(err, this.queue.length);
      this.arm(this.retryMs);
      throw err;
    }
  }

  /**
   * Commits what is queued and accepts no more. Rows that cannot be committed are rejected (their
   * callers log them) and the error is thrown: a shutdown that loses rows says so.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    try {
      commitPendingAudit(this.db);
    } catch (err) {
      for (const row of this.queue.splice(0)) this.waiters.get(row)?.reject(err);
      this.waiters.clear();
      throw err;
    }
  }

  private schedule(): void {
    if (this.failed !== undefined) return; // the retry timer is armed
    if (this.queue.length >= this.maxRows) this.arm(0);
    else if (this.timer === undefined) this.arm(this.maxDelayMs);
  }

  private arm(ms: number): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        this.flush();
      } catch {
        /* reported through onFailure; retried */
      }
    }, ms);
    // A shutdown flushes explicitly (close); the timer alone must not keep a process alive.
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
