// When a recording's in-memory batch is written, shared by the exec recorder (recorder.ts: sidecar
// and cast) and each port-forward connection's recorder (forward-recorder.ts: its sidecar). The
// owner batches records on the relay's path and calls schedule(); this writes the batch off the
// event loop at `batchBytes` or `batchWindowMs` after its first byte (one write at a time), fsyncs
// at most once per `fsyncIntervalMs` (and once more when the interval is over if the recording went
// idle), makes ready() hold the relay above `maxUnwrittenBytes`, fails a write in flight too long (a
// hung disk), and reports the first failure to
// onFailure listeners (the relay then cuts). What is written, and how, is the owner's (BatchSource).
import { BastionError, isBastionError } from '../errors/index.js';
import { diskProgressed, lastDiskProgressAt } from './disk-progress.js';

export class RecordingError extends BastionError {
  override readonly name = 'RecordingError';
  constructor(message: string) {
    super('RECORDING_FAILED', message);
  }
}

/** One batch taken for writing. */
export interface BatchJob {
  /** Relayed bytes it carries (counted as unwritten until it settles). */
  bytes: number;
  /** Writes it; rejects (preferably with a RecordingError naming the file) on failure. */
  write(): Promise<void>;
}

/** What the owner batches, and how it is written and synced. */
export interface BatchSource {
  /** Bytes batched and not yet taken: what counts toward `batchBytes` and the backpressure bound. */
  batchedBytes(): number;
  /** Whether anything waits to be taken (bytes, or work such as cast events). */
  hasBatched(): boolean;
  /** Takes the batch; undefined: nothing to write. A throw fails the recording. */
  take(): BatchJob | undefined;
  /** fsyncs what was written (rejects on failure). */
  sync(): Promise<void>;
  /**
   * The recording has been quiet for quietMs (nothing batched, nothing in flight): its files may
   * give up their descriptors until the next write (AppendFile.park).
   */
  quiet?(): void;
}

/** How long a recording writes nothing before its files are parked (longer than the fsync interval, so they are usually clean). */
export const QUIET_MS = 2000;

export interface BatchTiming {
  /** fsync at most this often while the recording runs (0: only at the end). Default 1000. */
  fsyncIntervalMs?: number;
  /** Write the batch this long after its first unwritten byte at the latest. Default 100. */
  batchWindowMs?: number;
  /** Write the batch as soon as it holds this many bytes. Default 1 MiB. */
  batchBytes?: number;
  /** Relayed but not yet written bytes above which ready() holds the relay. Default 4 MiB. */
  maxUnwrittenBytes?: number;
  /** How long the end waits for a write still in flight (a hung disk) before failing. Default 1000. */
  endTimeoutMs?: number;
  /** How long a recording writes nothing before its files are parked. Default QUIET_MS. */
  quietMs?: number;
  /** Monotonic clock in microseconds (tests). */
  clockUs?: () => number;
}

const defaultClockUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** How many endTimeoutMs intervals drain() waits at most while the disk is making progress. */
export const DRAIN_PATIENCE = 10;

export class BatchWriter {
  private failureText: string | undefined;
  private ended = false;
  private readonly listeners: Array<(err: Error) => void> = [];
  private waiters: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private quietTimer: NodeJS.Timeout | undefined;
  /** When the last write or sync completed (clockUs). */
  private lastDoneUs: number;
  /** The write (or idle sync) in progress; never rejects (a failure is recorded). */
  private writing: Promise<void> | undefined;
  private inFlightBytes = 0;
  private flushWanted = false;
  private readonly clockUs: () => number;
  private lastSyncUs: number;
  private readonly fsyncIntervalUs: number;
  private readonly batchWindowMs: number;
  private readonly batchBytes: number;
  private readonly maxUnwrittenBytes: number;
  private readonly endTimeoutMs: number;
  private readonly quietMs: number;

  constructor(
    private readonly source: BatchSource,
    timing: BatchTiming = {},
  ) {
    this.clockUs = timing.clockUs ?? defaultClockUs;
    this.lastSyncUs = this.clockUs();
    this.lastDoneUs = this.lastSyncUs;
    this.fsyncIntervalUs = (timing.fsyncIntervalMs ?? 1000) * 1000;
    this.batchWindowMs = timing.batchWindowMs ?? 100;
    this.batchBytes = timing.batchBytes ?? 1024 * 1024;
    this.maxUnwrittenBytes = timing.maxUnwrittenBytes ?? 4 * 1024 * 1024;
    this.endTimeoutMs = timing.endTimeoutMs ?? 1000;
    this.quietMs = timing.quietMs ?? QUIET_MS;
  }

  /** The first failure's message, if the recording failed. */
  get failure(): string | undefined {
    return this.failureText;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Relayed bytes the disk does not have yet. */
  unwritten(): number {
    return this.source.batchedBytes() + this.inFlightBytes;
  }

  /** After something was batched: write now when the batch is large, else within the window. */
  schedule(): void {
    if (this.source.batchedBytes() >= this.batchBytes) this.startFlush();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.startFlush();
      }, this.batchWindowMs);
      this.timer.unref();
    }
  }

  /** Undefined while the unwritten bytes are within their bound; else settles once they are (or the recording failed or ended). */
  ready(): Promise<void> | undefined {
    if (this.failureText !== undefined || this.ended || this.unwritten() < this.maxUnwrittenBytes) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** `listener` is called once if a write fails (at once if one already has). */
  onFailure(listener: (err: Error) => void): void {
    if (this.failureText !== undefined) listener(new RecordingError(this.failureText));
    else this.listeners.push(listener);
  }

  /** Writes what is batched now; resolves once no write is running. */
  async flush(): Promise<void> {
    this.startFlush();
    while (this.writing) await this.writing;
  }

  /** Records the first failure (a sink call that threw: its caller hears it) and returns its message. */
  fail(err: unknown): string {
    this.failureText ??= isBastionError(err) && err.code === 'RECORDING_FAILED' ? err.message : `recording failed: ${(err as Error).message}`;
    return this.failureText;
  }

  /** A failure outside a sink call: the relay hears it through the listeners. */
  failAsync(err: unknown): void {
    const error = new RecordingError(this.fail(err));
    for (const l of this.listeners.splice(0)) {
      try {
        l(error);
      } catch {
        // a listener's own failure changes nothing here
      }
    }
    this.release();
  }

  /** Nothing more is scheduled: the owner writes its last batch itself after drain(). */
  stop(): void {
    this.ended = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
  }

  /** After a write or sync completed with nothing batched: parks the files once quietMs pass with no other. */
  private armQuiet(): void {
    this.lastDoneUs = this.clockUs();
    if (this.quietTimer !== undefined || !this.source.quiet) return;
    const check = (ms: number): void => {
      this.quietTimer = setTimeout(() => {
        this.quietTimer = undefined;
        if (this.ended || this.failureText !== undefined) return;
        // Busy again (a write since, one in flight, or bytes batched): the next completion re-arms.
        if (this.writing || this.source.hasBatched()) return;
        const left = this.quietMs - (this.clockUs() - this.lastDoneUs) / 1000;
        if (left > 0) return check(left);
        try {
          this.source.quiet?.();
        } catch (err) {
          this.failAsync(err);
        }
      }, Math.max(1, ms));
      this.quietTimer.unref();
    };
    check(this.quietMs);
  }

  /**
   * After stop(): waits for a write still in flight, but not forever (a hung disk fails the
   * recording). A write queued behind other recordings' I/O is waited for while any completes
   * (disk-progress.ts), for at most DRAIN_PATIENCE endTimeoutMs intervals in all. True when one is
   * left hanging: its descriptors must stay open beneath it.
   */
  async drain(): Promise<boolean> {
    clearTimeout(this.syncTimer);
    const started = Date.now();
    for (;;) {
      const writing = this.writing;
      if (!writing) return false;
      let timer: NodeJS.Timeout | undefined;
      const settled = await Promise.race([writing.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), this.endTimeoutMs)))]);
      clearTimeout(timer);
      if (settled) continue;
      // A loop that was busy for longer than endTimeoutMs (ending a thousand sessions at once) runs
      // this expired timer before the I/O completions that arrived meanwhile: let it take them
      // (the poll phase comes before setImmediate's) before judging the disk.
      await new Promise((resolve) => setImmediate(resolve));
      if (this.writing !== writing) continue;
      const now = Date.now();
      if (now - lastDiskProgressAt() >= this.endTimeoutMs || now - started >= this.endTimeoutMs * DRAIN_PATIENCE) break;
    }
    this.failAsync(new RecordingError(`the recording disk did not finish a write within ${this.endTimeoutMs} ms`));
    return true;
  }

  /** Lets a held relay go on once the unwritten bytes are within bounds again (or nothing more will be written). */
  release(): void {
    if (this.failureText === undefined && !this.ended && this.unwritten() >= this.maxUnwrittenBytes) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Starts writing the batch (one write at a time: a flush asked for during one follows it). */
  private startFlush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.failureText !== undefined || this.ended) return;
    if (this.writing) {
      this.flushWanted = true;
      return;
    }
    let job: BatchJob | undefined;
    try {
      job = this.source.take();
    } catch (err) {
      return this.failAsync(err);
    }
    if (!job) return;
    this.inFlightBytes = job.bytes;
    const watchdog = this.watchdog();
    this.writing = job
      .write()
      .then(() => {
        diskProgressed();
        return this.groupSync();
      })
      .then(
        () => {
          clearTimeout(watchdog);
          diskProgressed();
          this.writing = undefined;
          this.inFlightBytes = 0;
          this.release();
          if (this.flushWanted || this.source.batchedBytes() >= this.batchBytes) {
            this.flushWanted = false;
            this.startFlush();
          } else if (this.source.hasBatched()) this.schedule();
          else this.armQuiet();
        },
        (err: unknown) => {
          clearTimeout(watchdog);
          this.writing = undefined;
          this.inFlightBytes = 0;
          this.failAsync(err);
        },
      );
  }

  /**
   * While the recording runs, a write (or fsync) that has not completed within DRAIN_PATIENCE
   * endTimeoutMs intervals is a hung disk: the recording fails and the relay cuts the session.
   * Without it a hung disk failed a recording only at its end; a session relaying less than
   * maxUnwrittenBytes (typing) ran on for as long as it lasted with nothing reaching the disk.
   * Other sessions' progress does not extend it, and a slow disk has that long for one batch.
   */
  private watchdog(): NodeJS.Timeout {
    const ms = this.endTimeoutMs * DRAIN_PATIENCE;
    const timer = setTimeout(() => {
      if (this.ended || this.failureText !== undefined) return;
      this.failAsync(new RecordingError(`the recording disk did not finish a write within ${ms} ms`));
    }, ms);
    timer.unref();
    return timer;
  }

  /** fsync after a write when the interval is over; else once it is, if no later write does it. */
  private async groupSync(): Promise<void> {
    if (this.fsyncIntervalUs <= 0) return;
    const since = this.clockUs() - this.lastSyncUs;
    if (since < this.fsyncIntervalUs) return this.armIdleSync((this.fsyncIntervalUs - since) / 1000);
    this.lastSyncUs = this.clockUs();
    await this.source.sync();
  }

  /** Syncs after `ms` unless a write synced meanwhile; runs as a write does (one at a time). */
  private armIdleSync(ms: number): void {
    if (this.syncTimer !== undefined) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      if (this.failureText !== undefined || this.ended) return;
      if (this.writing) return this.armIdleSync(this.fsyncIntervalUs / 1000);
      const since = this.clockUs() - this.lastSyncUs;
      if (since < this.fsyncIntervalUs) return this.armIdleSync((this.fsyncIntervalUs - since) / 1000);
      this.lastSyncUs = this.clockUs();
      const watchdog = this.watchdog();
      this.writing = this.source.sync().then(
        () => {
          clearTimeout(watchdog);
          diskProgressed();
          this.writing = undefined;
          if (this.flushWanted) {
            this.flushWanted = false;
            this.startFlush();
          } else if (!this.source.hasBatched()) this.armQuiet();
        },
        (err: unknown) => {
          clearTimeout(watchdog);
          this.writing = undefined;
          this.failAsync(err);
        },
      );
    }, Math.max(1, ms));
    this.syncTimer.unref();
  }
}
