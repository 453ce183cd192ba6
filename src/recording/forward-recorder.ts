// The recording of one forwarded connection of a port-forward session: a raw sidecar of its own
// (`<session-id>.c<seq>.raw` beside the session's cast), channel 0 the bytes from the agent to the
// pod, 1 the bytes back, 3 the text the agent received on the connection's error stream. Batched
// like the exec recorder (batch-writer.ts): each chunk costs its record copied into an in-memory
// batch and its direction's SHA-256, before it is relayed; the batch is written off the event loop
// (1 MiB, or 100 ms after its first byte) with group fsync. A full batch makes ready() hold the
// relay; a failed write is reported through onFailure (the session then cuts the connection); every
// append after a failure throws. Hashes of each direction and what the traffic plainly is come
// with end(), once the sidecar is complete.
import { join, relative } from 'node:path';
import type { ForwardProtocol } from '../model/vocabulary.js';
import { AppendFile, nodeFileIo, type FileIo } from './append-file.js';
import { BatchWriter, RecordingError, type BatchJob, type BatchTiming } from './batch-writer.js';
import { ChannelHashes, encodeRawFileHeader, RawChannel, RawRecordBatch, scanRawSidecarFile, type RawChannelId } from './raw-sidecar.js';
import { recordingPaths } from './recorder.js';
import { RECOGNITION_WINDOW, recogniseForward } from './forward-protocol.js';
import { closeSync, mkdirSync, openSync, readSync, truncateSync } from 'node:fs';
import { createHash } from 'node:crypto';

export interface ForwardRecordingOptions extends BatchTiming {
  dir: string;
  approvalId: string | null;
  sessionId: string;
  seq: number;
  port: number;
  /** When the connection started (time 0 of its records). */
  startedAt: Date;
  /** File-system calls (tests inject failing and hung disks). */
  io?: FileIo;
}

export interface ForwardRecordingResult {
  bytesIn: number;
  bytesOut: number;
  sha256In: string;
  sha256Out: string;
  rawSha256: string;
  protocol: ForwardProtocol | null;
}

/** The sidecar's path for connection `seq` of a session. */
export function forwardRecordingPath(dir: string, approvalId: string | null, sessionId: string, seq: number): string {
  const paths = recordingPaths(dir, approvalId, sessionId);
  return join(paths.dir, `${sessionId}.c${seq}.raw`);
}

export class ForwardRecording {
  readonly path: string;
  /** The path relative to the recordings directory, as the store keeps it. */
  readonly relativePath: string;
  private readonly file: AppendFile;
  private readonly io: FileIo;
  private readonly channels = new ChannelHashes();
  private readonly batch = new RawRecordBatch();
  private readonly writer: BatchWriter;
  private readonly clockUs: () => number;
  private readonly t0: number;
  private lastUs = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private first: Buffer[] = [];
  private firstLength = 0;
  private recognised: ForwardProtocol | undefined;
  private ending: Promise<ForwardRecordingResult> | undefined;
  /** end() gave up on a write that never returned: its descriptor stays open beneath it. */
  private hung = false;

  /** Creates the sidecar (its header written at once); throws a RecordingError when it cannot (the connection is then refused). */
  constructor(opts: ForwardRecordingOptions) {
    this.path = forwardRecordingPath(opts.dir, opts.approvalId, opts.sessionId, opts.seq);
    this.relativePath = relative(opts.dir, this.path);
    this.io = opts.io ?? nodeFileIo;
    this.clockUs = opts.clockUs ?? ((): number => Number(process.hrtime.bigint() / 1000n));
    this.t0 = this.clockUs();
    try {
      mkdirSync(recordingPaths(opts.dir, opts.approvalId, opts.sessionId).dir, { recursive: true, mode: 0o750 });
      this.file = new AppendFile(this.path, this.io);
    } catch (err) {
      throw new RecordingError(`cannot create ${this.path}: ${(err as Error).message}`);
    }
    try {
      this.file.write(
        encodeRawFileHeader({
          kind: 'kube-bastion-raw',
          session: opts.sessionId,
          approval: opts.approvalId,
          startedAt: opts.startedAt.toISOString(),
          cast: `${opts.sessionId}.cast`,
          castFormat: 'v2',
          stdinRecorded: true,
          operation: 'portforward',
          connection: opts.seq,
          port: opts.port,
          channels: { 0: 'agent to pod', 1: 'pod to agent', 3: 'error stream text sent to the agent' },
        }),
      );
    } catch (err) {
      this.file.abandon();
      throw new RecordingError(`cannot create ${this.path}: ${(err as Error).message}`);
    }
    this.writer = new BatchWriter(
      {
        batchedBytes: () => this.batch.bytes,
        hasBatched: () => this.batch.bytes > 0,
        take: () => this.takeJob(),
        sync: () => this.sync(),
        quiet: () => this.file.park(),
        wake: () => this.unpark(),
      },
      { ...opts, clockUs: this.clockUs },
    );
  }

  /** Bytes from the agent, accepted into the batch before they go upstream; throws once the recording has failed. */
  toPod(chunk: Buffer): void {
    this.append(RawChannel.stdin, chunk);
    this.bytesIn += chunk.length;
    if (this.recognised === undefined && this.firstLength < RECOGNITION_WINDOW) {
      this.first.push(Buffer.from(chunk.subarray(0, RECOGNITION_WINDOW - this.firstLength)));
      this.firstLength = Math.min(RECOGNITION_WINDOW, this.firstLength + chunk.length);
      this.recognised = recogniseForward(Buffer.concat(this.first), false);
      if (this.recognised !== undefined) this.first = [];
    }
  }

  /** Bytes from the pod, accepted into the batch before they reach the agent. */
  fromPod(chunk: Buffer): void {
    this.append(RawChannel.stdout, chunk);
    this.bytesOut += chunk.length;
  }

  /** The text the agent receives on the connection's error stream. */
  errorText(text: string): void {
    this.append(RawChannel.status, Buffer.from(text, 'utf8'));
  }

  /** Undefined while the unwritten bytes are within their bound; else settles once they are (hold the source meanwhile). */
  ready(): Promise<void> | undefined {
    return this.writer.ready();
  }

  /** `listener` is called once if a batched write fails (at once if one already has). */
  onFailure(listener: (err: Error) => void): void {
    this.writer.onFailure(listener);
  }

  /** Writes what is batched now; resolves once no write is running. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /**
   * Writes the last batch, syncs and closes; resolves with the hashes once the sidecar is complete.
   * Rejects with a RecordingError when it failed or cannot be completed (a hung write: after
   * endTimeoutMs). Idempotent.
   */
  end(): Promise<ForwardRecordingResult> {
    this.ending ??= this.complete();
    return this.ending;
  }

  /**
   * Closes without syncing (the connection never ran, or its recording failed); not under a write
   * end() gave up on: a descriptor closed beneath a write still queued can be another file's by
   * the time the write runs, and the bytes would land in that recording.
   */
  abandon(): void {
    this.writer.stop();
    if (!this.hung) this.file.abandon();
  }

  private async complete(): Promise<ForwardRecordingResult> {
    this.writer.stop();
    const stuck = await this.writer.drain();
    this.hung = stuck;
    if (this.writer.failure === undefined) {
      try {
        const parts = this.batch.take();
        try {
          await this.file.append(parts, this.io);
        } finally {
          this.batch.release(parts);
        }
        await this.file.closeAsync(this.io);
      } catch (err) {
        this.writer.failAsync(new RecordingError(`cannot complete ${this.path}: ${(err as Error).message}`));
      }
    }
    this.writer.release();
    // Under a write that never returned, the descriptor stays open rather than closed beneath it.
    if (!stuck) this.file.abandon();
    const failure = this.writer.failure;
    if (failure !== undefined) throw new RecordingError(failure);
    const digests = this.channels.digests();
    const protocol = this.recognised ?? (this.firstLength > 0 ? recogniseForward(Buffer.concat(this.first), true) ?? 'unrecognised' : this.bytesOut > 0 ? 'unrecognised' : null);
    return { bytesIn: this.bytesIn, bytesOut: this.bytesOut, sha256In: digests['stdin']!, sha256Out: digests['stdout']!, rawSha256: this.file.sha256(), protocol };
  }

  private append(channel: RawChannelId, chunk: Buffer): void {
    const failure = this.writer.failure;
    if (failure !== undefined) throw new RecordingError(failure);
    if (this.writer.isEnded) throw new RecordingError(`the recording ${this.path} has already ended`);
    if (chunk.length === 0) return;
    this.writer.wake();
    // Sidecar times never go backwards.
    this.lastUs = Math.max(this.lastUs, this.clockUs() - this.t0);
    try {
      this.batch.append(channel, this.lastUs, chunk);
    } catch (err) {
      throw new RecordingError(this.writer.fail(err));
    }
    this.channels.update(channel, chunk);
    this.writer.schedule();
  }

  private unpark(): void {
    try {
      this.file.unpark();
    } catch (err) {
      throw new RecordingError(`cannot write ${this.path}: ${(err as Error).message}`);
    }
  }

  private takeJob(): BatchJob | undefined {
    if (this.batch.bytes === 0) return undefined;
    const parts = this.batch.take();
    return { bytes: parts.reduce((n, b) => n + b.length, 0), write: () => this.writeParts(parts) };
  }

  private async writeParts(parts: Buffer[]): Promise<void> {
    try {
      await this.file.append(parts, this.io);
    } catch (err) {
      throw new RecordingError(`cannot write ${this.path}: ${(err as Error).message}`);
    } finally {
      this.batch.release(parts);
    }
  }

  private async sync(): Promise<void> {
    try {
      await this.file.syncAsync(this.io);
    } catch (err) {
      throw new RecordingError(`cannot sync ${this.path}: ${(err as Error).message}`);
    }
  }
}

/**
 * After a crash: makes a connection's sidecar whole (a partial last record cut off) and reads back
 * what it holds, for the connection's row. Throws when the file is not a sidecar.
 */
export function recoverForwardRecording(path: string): Omit<ForwardRecordingResult, 'protocol'> {
  let bytesIn = 0;
  let bytesOut = 0;
  const scan = scanRawSidecarFile(path, (r) => {
    if (r.channel === RawChannel.stdin) bytesIn += r.data.length;
    else if (r.channel === RawChannel.stdout) bytesOut += r.data.length;
  });
  if (scan.truncated) truncateSync(path, scan.validLength);
  const file = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1024 * 1024);
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) file.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return { bytesIn, bytesOut, sha256In: scan.channelSha256['stdin']!, sha256Out: scan.channelSha256['stdout']!, rawSha256: file.digest('hex') };
}
