// The recorder: one more SessionSink of the session. It writes, as the session runs,
//   recordings/<approval-id | _none>/<session-id>.cast   asciicast v2 (default) or v3
//   recordings/<approval-id | _none>/<session-id>.raw    the exact bytes of every channel
// one event per line, each written with a synchronous write() straight to the kernel, so a crash
// of the bastion loses nothing already relayed and a failed write throws into the relay, which
// cuts the session before the bytes move (fail closed). See docs/recording.md.
import { BastionError } from '../errors/index.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_TERMINAL } from '../protocol/constants.js';
import { encodeResize, type TerminalSize } from '../protocol/resize.js';
import { encodeStatus } from '../protocol/status.js';
import type { SessionEnd, SessionSink } from '../model/session.js';
import type { StreamOperation } from '../model/vocabulary.js';
import type { SessionRecordingInput } from '../store/types.js';
import { AppendFile, nodeSyncIo, type SyncIo } from './append-file.js';
import { AsciicastV2Encoder } from './asciicast-v2.js';
import { AsciicastV3Encoder } from './asciicast-v3.js';
import { exitMarkerLabel } from './convert.js';
import { HEADER_EXTRA_KEY, resizeData, shellJoin, wellFormed, type CastFormat, type CastHeader, type EventCode } from './events.js';
import { RawChannel, RawSidecarWriter, type RawChannelId, type RawSidecarMeta } from './raw-sidecar.js';
import { detectTarTransfer, TarLister, type TarFileEntry, type TarListStatus, type TarTransfer } from './tar-listing.js';
import { ChannelDecoders } from './utf8-decoder.js';

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
  /** kubectl cp: files listed (row and markers) at most; later ones are only counted. Default 10,000. */
  maxListedFiles?: number;
  /** Monotonic clock in microseconds (tests). */
  clockUs?: () => number;
  /** Wall clock for the header timestamp (tests). */
  now?: () => Date;
  /** File-system calls (tests inject failures). */
  io?: SyncIo;
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
  /** SHA-256 (hex) of each channel's bytes: stdout, stderr, resize, and stdin when recorded. */
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
  /** Adds an `m` event now; throws if it cannot be written. */
  writeMarker(label: string): void;
  end(end: SessionEnd): void;
  readonly castPath: string;
  readonly rawPath: string;
  /** Resolves with the result once end() has closed the files. Never rejects. */
  readonly finished: Promise<RecordingResult>;
}

export class RecordingError extends BastionError {
  override readonly name = 'RecordingError';
  constructor(message: string) {
    super('RECORDING_FAILED', message);
  }
}

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

type DecodedChannel = 'stdin' | 'stdout' | 'stderr';

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
  private readonly encoder: AsciicastV2Encoder | AsciicastV3Encoder;
  private readonly decoders = new ChannelDecoders<DecodedChannel>();
  private readonly clockUs: () => number;
  private readonly startUs: number;
  private readonly startedAt: Date;
  private readonly io: SyncIo;
  private readonly castName: string;
  private readonly rawName: string;
  private readonly headerBase: CastHeader;
  private headerWritten = false;
  private lastUs = 0;
  private lastSyncUs: number;
  private readonly fsyncIntervalUs: number;
  private eventCount = 0;
  private failure: string | undefined;
  private ended = false;
  private result: RecordingResult | undefined;

  private readonly transfer: TarTransfer | null;
  private readonly lister: TarLister | undefined;
  private readonly files: TarFileEntry[] = [];
  private tarStatusNoted = false;

  constructor(private readonly opts: RecorderOptions) {
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    this.format = opts.format ?? 'v2';
    this.io = opts.io ?? nodeSyncIo;
    this.clockUs = opts.clockUs ?? defaultClockUs;
    this.startUs = this.clockUs();
    this.lastSyncUs = 0;
    this.fsyncIntervalUs = (opts.fsyncIntervalMs ?? 1000) * 1000;
    this.startedAt = (opts.now ?? (() => new Date()))();
    const paths = recordingPaths(opts.dir, opts.approvalId, opts.sessionId);
    this.castPath = paths.castPath;
    this.rawPath = paths.rawPath;
    const rel = opts.approvalId ?? NO_APPROVAL_DIR;
    this.castName = `${rel}/${opts.sessionId}.cast`;
    this.rawName = `${rel}/${opts.sessionId}.raw`;
    this.encoder = this.format === 'v2' ? new AsciicastV2Encoder() : new AsciicastV3Encoder();
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
    // (kubectl sends it before any output) or the first other event, whichever comes first.
    if (!h.tty || (h.width !== undefined && h.height !== undefined)) this.guard(() => this.writeHeader());
  }

  // ---- SessionSink -------------------------------------------------------------------------

  stdin(chunk: Buffer): void {
    this.guard(() => {
      if (chunk.length === 0) return;
      const t = this.now();
      if (this.transfer?.channel === 'stdin') {
        if (this.opts.recordStdin) this.rawAppend(RawChannel.stdin, t, chunk);
        this.list(chunk, t);
        return;
      }
      if (!this.opts.recordStdin) return;
      this.rawAppend(RawChannel.stdin, t, chunk);
      this.text('stdin', chunk, t);
    });
  }

  stdout(chunk: Buffer): void {
    this.guard(() => {
      if (chunk.length === 0) return;
      const t = this.now();
      this.rawAppend(RawChannel.stdout, t, chunk);
      if (this.transfer?.channel === 'stdout') this.list(chunk, t);
      else this.text('stdout', chunk, t);
    });
  }

  stderr(chunk: Buffer): void {
    this.guard(() => {
      if (chunk.length === 0) return;
      const t = this.now();
      this.rawAppend(RawChannel.stderr, t, chunk);
      this.text('stderr', chunk, t);
    });
  }

  resize(size: TerminalSize): void {
    this.guard(() => {
      const t = this.now();
      this.rawAppend(RawChannel.resize, t, encodeResize(size));
      if (!this.headerWritten) this.writeHeader(size);
      else this.event(t, 'r', resizeData(size.width, size.height));
    });
  }

  marker(label: string): void {
    this.writeMarker(label);
  }

  writeMarker(label: string): void {
    this.guard(() => this.mark(this.now(), label));
  }

  end(end: SessionEnd): void {
    if (this.ended) return;
    this.ended = true;
    if (this.failure === undefined) {
      try {
        const t = this.now();
        // A character still incomplete at the end is written as U+FFFD (its bytes are in the sidecar).
        for (const { channel, text } of this.decoders.flushAll()) this.event(t, channel === 'stdin' ? 'i' : 'o', text);
        this.finishListing(t);
        if (end.exitCode !== null) {
          if (this.format === 'v3') this.event(t, 'x', String(end.exitCode));
          else this.mark(t, exitMarkerLabel(end.exitCode));
        } else {
          this.mark(t, `session ended: ${end.reason}`);
        }
        this.rawAppend(RawChannel.status, t, encodeStatus(end.status));
      } catch (err) {
        this.fail(err);
      }
    }
    let castSha256 = this.cast.sha256();
    let rawSha256 = this.rawFile.sha256();
    if (this.failure === undefined) {
      try {
        castSha256 = this.cast.close();
        rawSha256 = this.rawFile.close();
      } catch (err) {
        this.fail(err);
      }
    }
    this.cast.abandon();
    this.rawFile.abandon();
    this.result = {
      format: this.format,
      castPath: this.castPath,
      castSha256,
      rawPath: this.rawPath,
      rawSha256,
      channelSha256: this.raw.channels.digests(this.opts.recordStdin ? [] : ['stdin']),
      ...(this.transfer ? { files: [...this.files], tar: this.tarSummary() } : {}),
      eventCount: this.eventCount,
      ...(this.failure !== undefined ? { error: this.failure } : {}),
    };
    try {
      this.opts.onFinished?.(this.result);
    } catch {
      // documented: must not throw; the recording itself is complete
    }
    this.resolveFinished(this.result);
  }

  // ---- internals ---------------------------------------------------------------------------

  private now(): number {
    const t = Math.max(this.lastUs, this.clockUs() - this.startUs);
    this.lastUs = t;
    return t;
  }

  /** Runs a write step; the first failure disables the recorder and every call after it throws. */
  private guard(step: () => void): void {
    if (this.failure !== undefined) throw new RecordingError(this.failure);
    if (this.ended) throw new RecordingError(`recording ${this.castName} has already ended`);
    try {
      step();
    } catch (err) {
      this.fail(err);
      throw new RecordingError(this.failure ?? (err as Error).message);
    }
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err instanceof RecordingError ? err.message : `recording failed: ${(err as Error).message}`;
    this.cast.abandon();
    this.rawFile.abandon();
  }

  private write(file: AppendFile, name: string, data: Uint8Array): void {
    try {
      file.write(data);
    } catch (err) {
      throw new RecordingError(`cannot write ${name}: ${(err as Error).message}`);
    }
  }

  private rawAppend(channel: RawChannelId, t: number, data: Uint8Array): void {
    try {
      this.raw.append(channel, t, data);
    } catch (err) {
      throw new RecordingError(`cannot write ${this.rawName}: ${(err as Error).message}`);
    }
  }

  private writeHeader(size?: TerminalSize): void {
    if (this.headerWritten) return;
    const header = size ? { ...this.headerBase, cols: size.width, rows: size.height } : this.headerBase;
    this.write(this.cast, this.castName, Buffer.from(this.encoder.header(header), 'utf8'));
    this.headerWritten = true;
    this.event(0, 'm', startMarkerLabel(this.opts.sessionId, this.opts.approvalId));
    if (this.transfer) this.event(0, 'm', this.transferLabel());
  }

  private event(t: number, code: EventCode, data: string): void {
    if (!this.headerWritten) this.writeHeader();
    this.write(this.cast, this.castName, Buffer.from(this.encoder.event({ timeUs: t, code, data }), 'utf8'));
    this.eventCount += 1;
    if (this.fsyncIntervalUs > 0 && t - this.lastSyncUs >= this.fsyncIntervalUs) {
      this.lastSyncUs = t;
      try {
        this.cast.sync();
        this.rawFile.sync();
      } catch (err) {
        throw new RecordingError(`cannot sync ${this.castName}: ${(err as Error).message}`);
      }
    }
  }

  private mark(t: number, label: string): void {
    const text = wellFormed(label);
    this.rawAppend(RawChannel.marker, t, Buffer.from(text, 'utf8'));
    this.event(t, 'm', text);
  }

  private text(channel: DecodedChannel, chunk: Buffer, t: number): void {
    const text = this.decoders.push(channel, chunk);
    if (text) this.event(t, channel === 'stdin' ? 'i' : 'o', text);
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
