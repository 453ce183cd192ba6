// The recording of one forwarded connection of a port-forward session: a raw sidecar of its own
// (`<session-id>.c<seq>.raw` beside the session's cast), channel 0 the bytes from the agent to the
// pod, 1 the bytes back, 3 the text the agent received on the connection's error stream. Every
// append is written before the bytes are relayed and throws on failure (the session then cuts the
// connection). Hashes of each direction and what the traffic plainly is come with the end.
import { join, relative } from 'node:path';
import type { ForwardProtocol } from '../model/vocabulary.js';
import { AppendFile } from './append-file.js';
import { RawChannel, RawSidecarWriter, scanRawSidecarFile } from './raw-sidecar.js';
import { recordingPaths, RecordingError } from './recorder.js';
import { RECOGNITION_WINDOW, recogniseForward } from './forward-protocol.js';
import { closeSync, mkdirSync, openSync, readSync, truncateSync } from 'node:fs';
import { createHash } from 'node:crypto';

export interface ForwardRecordingOptions {
  dir: string;
  approvalId: string | null;
  sessionId: string;
  seq: number;
  port: number;
  /** When the connection started (time 0 of its records). */
  startedAt: Date;
  /** fsync at most this often while data flows (ms); the end always syncs. */
  fsyncIntervalMs?: number;
}

export interface ForwardRecordingResult {
  bytesIn: number;
  bytesOut: number;
  sha256In: string;
  sha256Out: string;
  rawSha256: string;
  protocol: ForwardProtocol | null;
}

const DEFAULT_FSYNC_INTERVAL_MS = 1000;

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
  private readonly writer: RawSidecarWriter;
  private readonly t0: bigint;
  private bytesIn = 0;
  private bytesOut = 0;
  private first: Buffer[] = [];
  private firstLength = 0;
  private recognised: ForwardProtocol | undefined;
  private lastSync = Date.now();
  private readonly fsyncIntervalMs: number;
  private result: ForwardRecordingResult | undefined;

  /** Creates the sidecar; throws a RecordingError when it cannot (the connection is then refused). */
  constructor(opts: ForwardRecordingOptions) {
    this.path = forwardRecordingPath(opts.dir, opts.approvalId, opts.sessionId, opts.seq);
    this.relativePath = relative(opts.dir, this.path);
    this.fsyncIntervalMs = opts.fsyncIntervalMs ?? DEFAULT_FSYNC_INTERVAL_MS;
    this.t0 = process.hrtime.bigint();
    try {
      mkdirSync(recordingPaths(opts.dir, opts.approvalId, opts.sessionId).dir, { recursive: true, mode: 0o750 });
      this.file = new AppendFile(this.path);
      this.writer = new RawSidecarWriter(this.file, {
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
      });
    } catch (err) {
      throw new RecordingError(`cannot create ${this.path}: ${(err as Error).message}`);
    }
  }

  /** Bytes from the agent, recorded before they go upstream. */
  toPod(chunk: Buffer): void {
    this.append(RawChannel.stdin, chunk);
    this.bytesIn += chunk.length;
    if (this.recognised === undefined && this.firstLength < RECOGNITION_WINDOW) {
      this.first.push(chunk.subarray(0, RECOGNITION_WINDOW - this.firstLength));
      this.firstLength = Math.min(RECOGNITION_WINDOW, this.firstLength + chunk.length);
      this.recognised = recogniseForward(Buffer.concat(this.first), false);
      if (this.recognised !== undefined) this.first = [];
    }
  }

  /** Bytes from the pod, recorded before they reach the agent. */
  fromPod(chunk: Buffer): void {
    this.append(RawChannel.stdout, chunk);
    this.bytesOut += chunk.length;
  }

  /** The text the agent receives on the connection's error stream. */
  errorText(text: string): void {
    this.append(RawChannel.status, Buffer.from(text, 'utf8'));
  }

  /** Syncs and closes; idempotent. Throws a RecordingError when the file cannot be completed. */
  finish(): ForwardRecordingResult {
    if (this.result) return this.result;
    let rawSha256: string;
    try {
      rawSha256 = this.file.close();
    } catch (err) {
      throw new RecordingError(`cannot complete ${this.path}: ${(err as Error).message}`);
    }
    const digests = this.writer.channels.digests();
    const protocol = this.recognised ?? (this.firstLength > 0 ? recogniseForward(Buffer.concat(this.first), true) ?? 'unrecognised' : this.bytesOut > 0 ? 'unrecognised' : null);
    this.result = { bytesIn: this.bytesIn, bytesOut: this.bytesOut, sha256In: digests['stdin']!, sha256Out: digests['stdout']!, rawSha256, protocol };
    return this.result;
  }

  /** Closes without syncing after a failure. */
  abandon(): void {
    this.file.abandon();
  }

  private append(channel: (typeof RawChannel)[keyof typeof RawChannel], chunk: Buffer): void {
    const timeUs = Number((process.hrtime.bigint() - this.t0) / 1000n);
    try {
      this.writer.append(channel, timeUs, chunk);
      if (Date.now() - this.lastSync >= this.fsyncIntervalMs) {
        this.lastSync = Date.now();
        this.file.sync();
      }
    } catch (err) {
      throw new RecordingError(`cannot write ${this.path}: ${(err as Error).message}`);
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
