// The recorder: one more SessionSink of the session. It writes, as the session runs,
//   recordings/<approval-id | _none>/<session-id>.cast   asciicast v2 (default) or v3
//   recordings/<approval-id | _none>/<session-id>.raw    the exact bytes of every channel
// On the relay's path a chunk costs only its sidecar record, copied into an in-memory batch. The
// batch is written in large writes off the event loop (at 1 MiB, or 100 ms after its first byte),
// the cast derived from the same batch at that moment in the shared cast worker thread
// (cast-derivation.ts), which also hashes each channel's bytes (their digests come back with the
// last batch), with one fsync of both files at most once a second. A
// failed write (or a failed worker) cuts the session through onFailure (fail closed: the relay has
// relayed at most the unwritten window); a batch the disk or the worker cannot keep up with makes
// ready() hold the relay (backpressure). See docs/recording.md.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_TERMINAL } from '../protocol/constants.js';
import { encodeResize, type TerminalSize } from '../protocol/resize.js';
import { encodeStatus } from '../protocol/status.js';
import type { SessionEnd, SessionSink } from '../model/session.js';
import type { StreamOperation } from '../model/vocabulary.js';
import type { SessionRecordingInput } from '../store/types.js';
import { AppendFile, nodeFileIo, type FileIo } from './append-file.js';
import { BatchWriter, RecordingError, type BatchJob } from './batch-writer.js';
import { exitMarkerLabel } from './convert.js';
import { HEADER_EXTRA_KEY, resizeData, shellJoin, wellFormed, type CastFormat, type CastHeader, type EventCode } from './events.js';
import type { TextChannel } from './cast-batch.js';
import { sharedCastWorker, type CastDerivation, type CastWorkerPool } from './cast-derivation.js';
import { newCastBatch } from './cast-ops.js';
import { RawChannel, RawRecordBatch, RawSidecarWriter, sidecarChannelDigests, type HashedChannel, type RawChannelId, type RawSidecarMeta } from './raw-sidecar.js';
import { detectTarTransfer, TarLister, type TarFileEntry, type TarListStatus, type TarTransfer } from './tar-listing.js';

export interface RecorderHeaderInfo {
  /** Agent name. */
  agent: string;
  namespace: string;
  pod: string;
  container: string;
  /** exec argv ([] for attach). */
  command: string[];
  tty: boolean;
  transport: string;
  /** The agent-side subprotocol, e.g. `v5.channel.k8s.io`. */
  protocol: string;
  upstreamProtocol?: string;
  /** The recorded operations (port-forward sessions are never relayed, so never recorded). */
  operation?: Exclude<StreamOperation, 'portforward'>;
  /** Initial terminal size when already known; otherwise see RecorderOptions. */
  width?: number;
  height?: number;
}

export interface RecorderOptions {
  /** The recordings root (config.recordingsDir). */
  dir: string;
  /** null: the session was allowed without an approval; its files go under `_none/`. */
  approvalId: string | null;
  sessionId: string;
  /** Default 'v2'. */
  format?: CastFormat;
  /** False: stdin is recorded nowhere (no `i` events, no stdin bytes in the sidecar, no stdin hash). */
  recordStdin: boolean;
  header: RecorderHeaderInfo;
  /** Called once when the recording is closed (also after a failure, with `error`). Must not throw. */
  onFinished?(result: RecordingResult): void;
  /** fsync both files at most this often while the session runs (0: only at the end). Default 1000. */
  fsyncIntervalMs?: number;
  /** Write the batch this long after its first unwritten byte at the latest. Default 100. */
  batchWindowMs?: number;
  /** Write the batch as soon as it holds this many bytes. Default 1 MiB. */
  batchBytes?: number;
  /** Relayed but not yet written bytes above which ready() holds the relay. Default 4 MiB. */
  maxUnwrittenBytes?: number;
  /** How long end() waits for a write still in flight (a hung disk) before failing. Default 1000. */
  endTimeoutMs?: number;
  /** How long the recording writes nothing before its files give up their descriptors. Default 2000 (batch-writer.ts QUIET_MS). */
  quietMs?: number;
  /** kubectl cp: files listed (row and markers) at most; later ones are only counted. Default 10,000. */
  maxListedFiles?: number;
  /** Monotonic clock in microseconds (tests). */
  clockUs?: () => number;
  /** Wall clock for the header timestamp (tests). */
  now?: () => Date;
  /** File-system calls (tests inject failures and slow disks). */
  io?: FileIo;
  /** Where the cast is derived (tests inject a worker that fails). Default: the process's shared worker. */
  castWorker?: CastWorkerPool;
}

export interface RecordingTarSummary extends TarTransfer {
  /** How the archive listing went (compressed archives: 'not-tar', nothing listed). */
  status: TarListStatus;
  /** Regular files seen in the archive. */
  fileCount: number;
  /** Files beyond maxListedFiles (not in `files`). */
  omitted: number;
}

export interface RecordingResult {
  format: CastFormat;
  /** join(dir, approval | _none, session + '.cast') */
  castPath: string;
  castSha256: string;
  rawPath: string;
  rawSha256: string;
  /** SHA-256 (hex) of each channel's bytes: stdout, stderr, resize, and stdin when recorded (computed in the cast worker; {} when it failed). */
  channelSha256: Record<string, string>;
  /** Present when the exec carried a tar archive (kubectl cp): the regular files in it. */
  files?: TarFileEntry[];
  tar?: RecordingTarSummary;
  /** Event lines in the cast (the header not counted). */
  eventCount: number;
  /** Set when the recording failed; the files hold what was written before. */
  error?: string;
}

export interface RecorderSink extends SessionSink {
  stdin(chunk: Buffer): void;
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
  resize(size: TerminalSize): void;
  /** Same as writeMarker (the relay calls it for warnings and the cutoff). */
  marker(label: string): void;
  /** Adds an `m` event now (batched like every event); throws if the recording has failed. */
  writeMarker(label: string): void;
  /** Undefined while the batch is within its bound; else settles once it is (or the recording failed). */
  ready(): Promise<void> | undefined;
  /** `listener` is called once if a batched write fails (at once if it already has). */
  onFailure(listener: (err: Error) => void): void;
  /** Writes what is batched now; resolves once no write is running (a failure is reported as for any write). */
  flush(): Promise<void>;
  /** Writes what is batched, closes the files; settles with `finished`. */
  /** Completes the files; rejects (after `finished` settles) when the recording failed or cannot be completed. */
  end(end: SessionEnd): Promise<void>;
  readonly castPath: string;
  readonly rawPath: string;
  /** Resolves with the result once end() has closed the files. Never rejects. */
  readonly finished: Promise<RecordingResult>;
}

export { RecordingError };

/** Ids become path components: allow only what the store generates (and nothing like `..`). */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
export const NO_APPROVAL_DIR = '_none';

export function recordingPaths(dir: string, approvalId: string | null, sessionId: string): { dir: string; castPath: string; rawPath: string } {
  if (!SAFE_ID.test(sessionId)) throw new RecordingError(`unsafe session id for a file name: ${JSON.stringify(sessionId)}`);
  if (approvalId !== null && !SAFE_ID.test(approvalId)) throw new RecordingError(`unsafe approval id for a file name: ${JSON.stringify(approvalId)}`);
  const sub = join(dir, approvalId ?? NO_APPROVAL_DIR);
  return { dir: sub, castPath: join(sub, `${sessionId}.cast`), rawPath: join(sub, `${sessionId}.raw`) };
}

/** The session-row fields for SessionStore.setRecording. */
export function toSessionRecording(r: RecordingResult): SessionRecordingInput {
  return { castPath: r.castPath, castSha256: r.castSha256, rawPath: r.rawPath, rawSha256: r.rawSha256, channelSha256: r.channelSha256 };
}

export function startMarkerLabel(sessionId: string, approvalId: string | null): string {
  return approvalId ? `session ${sessionId} started under approval ${approvalId}` : `session ${sessionId} started without an approval (allowed by policy)`;
}

const defaultClockUs = (): number => Number(process.hrtime.bigint() / 1000n);

/**
 * What the cast and the channel hashes are derived from, in the order the sink saw it (the bytes
 * are views into the batch). `hashed`: the bytes are in the sidecar, so in their channel's hash.
 */
type Entry =
  | { kind: 'data'; channel: TextChannel; t: number; data: Buffer; list: boolean; hashed: boolean }
  | { kind: 'resize'; t: number; size: TerminalSize; data: Buffer }
  | { kind: 'marker'; t: number; label: string }
  /** Hashed only: a tar stream nobody lists (compressed). */
  | { kind: 'hash'; channel: TextChannel; data: Buffer };

/**
 * Creates the directory and both files and returns the sink. Throws RecordingError when they
 * cannot be created (the caller then refuses the session with recording-failed).
 */
export function createRecorder(opts: RecorderOptions): RecorderSink {
  return new Recorder(opts);
}

class Recorder implements RecorderSink {
  readonly castPath: string;
  readonly rawPath: string;
  readonly finished: Promise<RecordingResult>;
  private resolveFinished!: (r: RecordingResult) => void;

  private readonly format: CastFormat;
  private readonly cast: AppendFile;
  private readonly rawFile: AppendFile;
  private readonly raw: RawSidecarWriter;
  private readonly castDerivation: CastDerivation;
  private headerWritten = false;
  /** Events of a header written at creation (not by the worker). */
  private headerEvents = 0;
  private readonly clockUs: () => number;
  private readonly startUs: number;
  private readonly startedAt: Date;
  private readonly io: FileIo;
  private readonly castName: string;
  private readonly rawName: string;
  private readonly headerBase: CastHeader;
  private lastUs = 0;
  /** When the batch is written and synced, backpressure, failure (shared with the port-forward recorder). */
  private readonly writer: BatchWriter;

  // The batch: raw records (written as they are) and the entries the cast is derived from.
  private readonly batch = new RawRecordBatch();
  private entries: Entry[] = [];
  /** Bytes held for the tar lister only (kubectl cp into the pod with stdin not recorded). */
  private listOnlyBytes = 0;
  /** A write of the sidecar failed: it no longer holds every byte relayed. */
  private rawWriteFailed = false;

  private readonly transfer: TarTransfer | null;
  private readonly lister: TarLister | undefined;
  private readonly files: TarFileEntry[] = [];
  private tarStatusNoted = false;

  constructor(private readonly opts: RecorderOptions) {
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    this.format = opts.format ?? 'v2';
    this.io = opts.io ?? nodeFileIo;
    this.clockUs = opts.clockUs ?? defaultClockUs;
    this.startUs = this.clockUs();
    this.writer = new BatchWriter(
      {
        batchedBytes: () => this.batch.bytes + this.listOnlyBytes,
        hasBatched: () => this.entries.length > 0 || this.batch.bytes > 0,
        take: () => this.takeJob(),
        sync: () => this.syncFiles(),
        // Thousands of idle sessions hold their two sockets, not two more descriptors each.
        quiet: () => {
          this.cast.park();
          this.rawFile.park();
        },
        wake: () => {
          this.unpark(this.rawFile, this.rawName);
          this.unpark(this.cast, this.castName);
        },
      },
      { ...(opts.fsyncIntervalMs !== undefined ? { fsyncIntervalMs: opts.fsyncIntervalMs } : {}), ...(opts.batchWindowMs !== undefined ? { batchWindowMs: opts.batchWindowMs } : {}), ...(opts.batchBytes !== undefined ? { batchBytes: opts.batchBytes } : {}), ...(opts.maxUnwrittenBytes !== undefined ? { maxUnwrittenBytes: opts.maxUnwrittenBytes } : {}), ...(opts.endTimeoutMs !== undefined ? { endTimeoutMs: opts.endTimeoutMs } : {}), ...(opts.quietMs !== undefined ? { quietMs: opts.quietMs } : {}), clockUs: this.clockUs },
    );
    this.startedAt = (opts.now ?? (() => new Date()))();
    const paths = recordingPaths(opts.dir, opts.approvalId, opts.sessionId);
    this.castPath = paths.castPath;
    this.rawPath = paths.rawPath;
    const rel = opts.approvalId ?? NO_APPROVAL_DIR;
    this.castName = `${rel}/${opts.sessionId}.cast`;
    this.rawName = `${rel}/${opts.sessionId}.raw`;
    this.transfer = detectTarTransfer(opts.header.command, opts.header.tty);
    this.lister = this.transfer && !this.transfer.compressed ? new TarLister({ maxFiles: opts.maxListedFiles ?? 10_000 }) : undefined;

    const h = opts.header;
    const extra = {
      version: 1,
      approval: opts.approvalId,
      session: opts.sessionId,
      agent: h.agent,
      ...(h.operation ? { operation: h.operation } : {}),
      namespace: h.namespace,
      pod: h.pod,
      container: h.container,
      command: h.command,
      tty: h.tty,
      transport: h.transport,
      protocol: h.protocol,
      ...(h.upstreamProtocol ? { upstream_protocol: h.upstreamProtocol } : {}),
      stdin_recorded: opts.recordStdin,
      raw: `${opts.sessionId}.raw`,
      started_at: this.startedAt.toISOString(),
    };
    this.headerBase = {
      cols: h.width ?? DEFAULT_TERMINAL.width,
      rows: h.height ?? DEFAULT_TERMINAL.height,
      timestamp: Math.floor(this.startedAt.getTime() / 1000),
      ...(h.command.length > 0 ? { command: shellJoin(h.command) } : {}),
      title: `${h.agent}: ${h.operation ?? 'exec'} ${h.namespace}/${h.pod}/${h.container}`,
      extra: { [HEADER_EXTRA_KEY]: extra },
    };

    try {
      mkdirSync(paths.dir, { recursive: true, mode: 0o750 });
    } catch (err) {
      throw new RecordingError(`cannot create the recording directory ${rel}/: ${(err as Error).message}`);
    }
    try {
      this.cast = new AppendFile(this.castPath, this.io);
    } catch (err) {
      throw new RecordingError(`cannot create ${this.castName}: ${(err as Error).message}`);
    }
    let rawFile: AppendFile | undefined;
    try {
      rawFile = new AppendFile(this.rawPath, this.io);
      const meta: RawSidecarMeta = {
        kind: 'kube-bastion-raw',
        session: opts.sessionId,
        approval: opts.approvalId,
        startedAt: this.startedAt.toISOString(),
        cast: `${opts.sessionId}.cast`,
        castFormat: this.format,
        stdinRecorded: opts.recordStdin,
        castHeader: this.headerBase,
      };
      this.raw = new RawSidecarWriter(rawFile, meta);
      this.rawFile = rawFile;
    } catch (err) {
      this.cast.abandon();
      rawFile?.abandon();
      throw new RecordingError(`cannot create ${this.rawName}: ${(err as Error).message}`);
    }
    // Without a TTY there is no resize to wait for; with one, the header waits for the first resize
    // (kubectl sends it before any output) or the first other event, whichever comes first. A header
    // known now is written now (synchronously, once), so the cast is never empty without reason.
    if (!h.tty || (h.width !== undefined && h.height !== undefined)) {
      this.guard(() => {
        // Its events are all at time 0, where a CastBatch of our own encodes exactly what the worker would.
        const local = newCastBatch(this.format, `${opts.sessionId}.raw`);
        this.writeHeader(local);
        for (const part of local.take()) this.write(this.cast, this.castName, part);
        this.headerEvents = local.eventCount;
      });
    }
    this.castDerivation = (opts.castWorker ?? sharedCastWorker()).session(this.format, `${opts.sessionId}.raw`);
  }

  // ---- SessionSink -------------------------------------------------------------------------

  stdin(chunk: Buffer): void {
    this.guard(() => {
      if (chunk.length === 0) return;
      const t = this.now();
      if (this.transfer?.channel === 'stdin') {
        if (this.opts.recordStdin) {
          const data = this.rawAppend(RawChannel.stdin, t, chunk);
          this.entries.push(this.lister ? { kind: 'data', channel: 'stdin', t, data, list: true, hashed: true } : { kind: 'hash', channel: 'stdin', data });
        } else if (this.lister) {
          // Listed, never stored: the lister needs the bytes, the sidecar must not have them.
          this.entries.push({ kind: 'data', channel: 'stdin', t, data: Buffer.from(chunk), list: true, hashed: false });
          this.listOnlyBytes += chunk.length;
        }
      } else {
        if (!this.opts.recordStdin) return;
        this.entries.push({ kind: 'data', channel: 'stdin', t, data: this.rawAppend(RawChannel.stdin, t, chunk), list: false, hashed: true });
      }
      this.writer.schedule();
    });
  }

  stdout(chunk: Buffer): void {
    this.output('stdout', RawChannel.stdout, chunk);
  }

  stderr(chunk: Buffer): void {
    this.output('stderr', RawChannel.stderr, chunk);
  }

  resize(size: TerminalSize): void {
    this.guard(() => {
      const t = this.now();
      const data = this.rawAppend(RawChannel.resize, t, encodeResize(size));
      this.entries.push({ kind: 'resize', t, size, data });
      this.writer.schedule();
    });
  }

  marker(label: string): void {
    this.writeMarker(label);
  }

  writeMarker(label: string): void {
    this.guard(() => {
      const t = this.now();
      const text = wellFormed(label);
      this.rawAppend(RawChannel.marker, t, Buffer.from(text, 'utf8'));
      this.entries.push({ kind: 'marker', t, label: text });
      this.writer.schedule();
    });
  }

  ready(): Promise<void> | undefined {
    return this.writer.ready();
  }

  onFailure(listener: (err: Error) => void): void {
    this.writer.onFailure(listener);
  }

  flush(): Promise<void> {
    return this.writer.flush();
  }

  end(end: SessionEnd): Promise<void> {
    if (this.writer.isEnded) return this.finished.then(rejectOnError);
    this.writer.stop();
    if (this.writer.failure === undefined) {
      try {
        const t = this.now();
        this.derive();
        // Bytes of a character still incomplete at the end are marked as binary (they are in the sidecar).
        if (!this.headerWritten) this.writeHeader();
        this.castDerivation.endText(t);
        this.finishListing(t);
        if (end.exitCode !== null) {
          if (this.format === 'v3') this.event(t, 'x', String(end.exitCode));
          else this.mark(t, exitMarkerLabel(end.exitCode));
        } else {
          this.mark(t, `session ended: ${end.reason}`);
        }
        this.rawAppend(RawChannel.status, t, encodeStatus(end.status));
      } catch (err) {
        this.writer.failAsync(err);
      }
    }
    return this.close().then(() => this.finished.then(rejectOnError));
  }

  // ---- batching (when: batch-writer.ts; what: here) ---------------------------------------

  /** The batch as one write: the sidecar's bytes, then the cast the worker derives from the same entries. */
  private takeJob(): BatchJob | undefined {
    const { raw, cast } = this.takeBatch(false);
    if (raw.length === 0 && cast === undefined) return undefined;
    return { bytes: raw.reduce((n, b) => n + b.length, 0), write: () => this.writeOut(raw, cast) };
  }

  /**
   * Hands the batch's entries to the cast worker (their text and hashed bytes copied there, before
   * the sidecar's bytes are written) and the sidecar's bytes over; undefined cast: nothing to
   * derive. `final`: the last batch, always sent; `digests` resolves with the channel digests.
   */
  private takeBatch(final: boolean): { raw: Buffer[]; cast: Promise<Buffer> | undefined; digests?: Promise<Record<string, string>> } {
    this.derive();
    this.listOnlyBytes = 0;
    const raw = this.batch.take();
    if (final) {
      const done = this.castDerivation.finish(this.omittedChannels());
      const cast = done.then((d) => d.cast);
      const digests = done.then((d) => d.digests);
      // Awaited later; a rejection meanwhile is not "unhandled".
      cast.catch(() => undefined);
      digests.catch(() => undefined);
      return { raw, cast, digests };
    }
    const cast = this.castDerivation.queued ? this.castDerivation.take() : undefined;
    // Awaited after the sidecar's write; a rejection meanwhile is not "unhandled".
    cast?.catch(() => undefined);
    return { cast, raw };
  }

  private omittedChannels(): HashedChannel[] {
    return this.opts.recordStdin ? [] : ['stdin'];
  }

  /**
   * The channel digests after a failure: what is still batched is sent to the worker (hashed, its
   * cast discarded) so that they cover every byte relayed, as without a failure. When the worker
   * itself failed, the hashes it held are lost: they are computed again from the sidecar (the
   * file, then what is still batched), which holds every byte relayed unless one of its writes
   * failed or is still in flight; then they are empty (the recording's error says why).
   */
  private async digestsAfterFailure(stuck: boolean): Promise<Record<string, string>> {
    let taken: ReturnType<Recorder['takeBatch']>;
    try {
      taken = this.takeBatch(true);
    } catch {
      return {};
    }
    try {
      return (await taken.digests) ?? {};
    } catch {
      if (stuck || this.rawWriteFailed) return {};
      const digests = sidecarChannelDigests(this.rawPath, taken.raw);
      if (!digests) return {};
      for (const name of this.omittedChannels()) delete digests[name];
      return digests;
    } finally {
      this.batch.release(taken.raw); // never written; the worker copied what it needed
    }
  }

  private async writeOut(raw: Buffer[], castBytes: Promise<Buffer> | undefined): Promise<void> {
    try {
      await this.rawFile.append(raw, this.io);
    } catch (err) {
      this.rawWriteFailed = true;
      throw new RecordingError(`cannot write ${this.rawName}: ${(err as Error).message}`);
    } finally {
      // Written (and hashed) or failed: either way no write of them is in flight any more, and the
      // cast worker got its copy when the batch was taken.
      this.batch.release(raw);
    }
    let cast: Buffer;
    try {
      cast = (await castBytes) ?? Buffer.alloc(0);
    } catch (err) {
      throw new RecordingError(`cannot derive ${this.castName}: ${(err as Error).message}`);
    }
    try {
      if (cast.length > 0) await this.cast.append([cast], this.io);
    } catch (err) {
      throw new RecordingError(`cannot write ${this.castName}: ${(err as Error).message}`);
    }
    this.castDerivation.recycle(cast);
  }

  private async syncFiles(): Promise<void> {
    try {
      await Promise.all([this.cast.syncAsync(this.io), this.rawFile.syncAsync(this.io)]);
    } catch (err) {
      throw new RecordingError(`cannot sync ${this.castName}: ${(err as Error).message}`);
    }
  }

  private async close(): Promise<void> {
    // A write still in flight is waited for, but not forever: a hung disk fails the recording.
    const stuck = await this.writer.drain();
    let digests: Promise<Record<string, string>> | undefined;
    if (this.writer.failure === undefined) {
      try {
        const { raw, cast, digests: d } = this.takeBatch(true);
        digests = d;
        await this.writeOut(raw, cast);
        await this.castClose();
        await this.rawClose();
      } catch (err) {
        this.writer.failAsync(err);
      }
    }
    const channelSha256 = (digests ? await digests.catch(() => undefined) : undefined) ?? (await this.digestsAfterFailure(stuck));
    this.castDerivation.close();
    // The hashes of what the files hold, whether or not the end was written.
    const castSha256 = this.cast.sha256();
    const rawSha256 = this.rawFile.sha256();
    this.writer.release();
    // Under a write that never returned, the descriptors stay open rather than closed beneath it,
    // and nothing more is written to them when it does return.
    if (!stuck) {
      this.cast.abandon();
      this.rawFile.abandon();
    } else {
      this.cast.freeze();
      this.rawFile.freeze();
    }
    const failure = this.writer.failure;
    const result: RecordingResult = {
      format: this.format,
      castPath: this.castPath,
      castSha256,
      rawPath: this.rawPath,
      rawSha256,
      channelSha256,
      ...(this.transfer ? { files: [...this.files], tar: this.tarSummary() } : {}),
      eventCount: this.headerEvents + this.castDerivation.eventCount,
      ...(failure !== undefined ? { error: failure } : {}),
    };
    try {
      this.opts.onFinished?.(result);
    } catch {
      // documented: must not throw; the recording itself is complete
    }
    this.resolveFinished(result);
  }

  private async castClose(): Promise<string> {
    try {
      return await this.cast.closeAsync(this.io);
    } catch (err) {
      throw new RecordingError(`cannot close ${this.castName}: ${(err as Error).message}`);
    }
  }

  private async rawClose(): Promise<string> {
    try {
      return await this.rawFile.closeAsync(this.io);
    } catch (err) {
      throw new RecordingError(`cannot close ${this.rawName}: ${(err as Error).message}`);
    }
  }

  // ---- internals ---------------------------------------------------------------------------

  private now(): number {
    const t = Math.max(this.lastUs, this.clockUs() - this.startUs);
    this.lastUs = t;
    return t;
  }

  private output(channel: 'stdout' | 'stderr', id: RawChannelId, chunk: Buffer): void {
    this.guard(() => {
      if (chunk.length === 0) return;
      const t = this.now();
      const data = this.rawAppend(id, t, chunk);
      const list = this.transfer?.channel === channel;
      this.entries.push(!list || this.lister ? { kind: 'data', channel, t, data, list, hashed: true } : { kind: 'hash', channel, data });
      this.writer.schedule();
    });
  }

  /** Runs a sink step; after the first failure every call throws (the relay then cuts). */
  private guard(step: () => void): void {
    const failure = this.writer.failure;
    if (failure !== undefined) throw new RecordingError(failure);
    if (this.writer.isEnded) throw new RecordingError(`recording ${this.castName} has already ended`);
    try {
      this.writer.wake();
      step();
    } catch (err) {
      // The files are closed in close(), once no write is running.
      throw new RecordingError(this.writer.fail(err));
    }
  }

  private unpark(file: AppendFile, name: string): void {
    try {
      file.unpark();
    } catch (err) {
      throw new RecordingError(`cannot write ${name}: ${(err as Error).message}`);
    }
  }

  private write(file: AppendFile, name: string, data: Uint8Array): void {
    try {
      file.write(data);
    } catch (err) {
      throw new RecordingError(`cannot write ${name}: ${(err as Error).message}`);
    }
  }

  /**
   * The chunk's record into the batch: the only per-byte work on the relay's path (its channel's
   * SHA-256 is computed in the cast worker, from the entry that carries the returned view).
   */
  private rawAppend(channel: RawChannelId, t: number, data: Uint8Array): Buffer {
    return this.batch.append(channel, t, data);
  }

  /**
   * The cast events and channel-hash bytes of every batched entry, in order, queued for the
   * worker (the kubectl cp listing runs here: its markers go into the sidecar too).
   */
  private derive(): void {
    const entries = this.entries;
    this.entries = [];
    for (const e of entries) {
      if (e.kind === 'hash') {
        this.castDerivation.hash(e.channel, e.data);
        continue;
      }
      if (e.kind === 'resize') {
        this.castDerivation.hash('resize', e.data);
        if (!this.headerWritten) this.writeHeader(this.castDerivation, e.size);
        else this.event(e.t, 'r', resizeData(e.size.width, e.size.height));
        continue;
      }
      if (!this.headerWritten) this.writeHeader();
      if (e.kind === 'marker') this.event(e.t, 'm', e.label);
      else if (!e.list) this.castDerivation.text(e.channel, e.t, e.data);
      else {
        if (e.hashed) this.castDerivation.hash(e.channel, e.data);
        this.list(e.data, e.t);
      }
    }
  }

  private writeHeader(to: Pick<CastDerivation, 'header' | 'event'> = this.castDerivation, size?: TerminalSize): void {
    if (this.headerWritten) return;
    this.headerWritten = true;
    to.header(size ? { ...this.headerBase, cols: size.width, rows: size.height } : this.headerBase);
    to.event(0, 'm', startMarkerLabel(this.opts.sessionId, this.opts.approvalId));
    if (this.transfer) to.event(0, 'm', this.transferLabel());
  }

  private event(t: number, code: EventCode, data: string): void {
    if (!this.headerWritten) this.writeHeader();
    this.castDerivation.event(t, code, data);
  }

  /**
   * A marker the recorder derives itself (kubectl cp files, the end). Its sidecar record is
   * batched now, so its time there is the latest time seen (sidecar times never go backwards);
   * the cast event keeps `t`.
   */
  private mark(t: number, label: string): void {
    const text = wellFormed(label);
    this.rawAppend(RawChannel.marker, this.lastUs, Buffer.from(text, 'utf8'));
    this.event(t, 'm', text);
  }

  private transferLabel(): string {
    const tr = this.transfer!;
    const what = tr.via === 'kubectl-cp' ? (tr.direction === 'in' ? 'kubectl cp into the pod' : 'kubectl cp out of the pod') : `tar ${tr.direction === 'in' ? 'extract from' : 'create to'} ${tr.channel}`;
    const kept = tr.channel === 'stdin' && !this.opts.recordStdin ? 'stdin is not recorded' : `its bytes are kept in ${this.opts.sessionId}.raw`;
    const listed = tr.compressed ? 'compressed: files not listed' : 'files listed as markers';
    return `${what}: tar archive on ${tr.channel}, not shown as text; ${kept}; ${listed}`;
  }

  private list(chunk: Buffer, t: number): void {
    if (!this.lister) return;
    for (const f of this.lister.push(chunk)) {
      this.files.push(f);
      this.mark(t, `file ${this.transfer!.direction === 'in' ? 'into' : 'out of'} the pod: ${f.name} (${f.size} bytes, sha256 ${f.sha256})`);
    }
    const outcome = this.lister.outcome;
    if (!this.tarStatusNoted && (outcome === 'not-tar' || outcome === 'corrupt')) {
      this.tarStatusNoted = true;
      const ch = this.transfer!.channel;
      this.mark(t, outcome === 'not-tar' ? `${ch} is not a tar archive: nothing listed (the bytes are in the sidecar)` : `tar archive on ${ch} is corrupt after ${this.files.length} files: listing stopped (the bytes are in the sidecar)`);
    }
  }

  private finishListing(t: number): void {
    if (!this.transfer) return;
    const s = this.tarSummary();
    if (s.omitted > 0) this.mark(t, `${s.omitted} more files in the archive were not listed`);
    if (!this.tarStatusNoted && s.status !== 'complete' && !this.transfer.compressed) this.mark(t, `tar archive on ${this.transfer.channel}: ${s.status}`);
  }

  private tarSummary(): RecordingTarSummary {
    const s = this.lister?.end() ?? { status: 'not-tar' as const, files: 0, omitted: 0, bytes: 0 };
    return { ...this.transfer!, status: s.status, fileCount: s.files, omitted: s.omitted };
  }
}

/** end()'s answer: the recording's own failure, as a rejection. */
function rejectOnError(result: RecordingResult): void {
  if (result.error !== undefined) throw new RecordingError(result.error);
}
