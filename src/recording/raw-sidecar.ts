// The raw sidecar `<session-id>.raw`: the exact bytes of every channel with their timing, so what
// the cast can only show as text (binary output, a kubectl cp tar stream, invalid UTF-8) is kept
// byte for byte. Append-only; a crash can at worst leave a partial last record, which the reader
// detects and ignores.
//
// Layout (integers big-endian):
//
//   file header   magic "KBRAW\0" (6 bytes) | u16 format version = 1 | u32 N | N bytes of JSON
//                 (metadata: session, approval, start time, ... see RawSidecarMeta)
//   record*       u8 channel | u64 time (µs since the start) | u32 length | length bytes
//
// Channels: 0 stdin, 1 stdout, 2 stderr (the Kubernetes stream channel numbers), 3 status (the
// final metav1.Status the agent received, JSON), 4 resize (`{"Width":W,"Height":H}\n`, re-encoded
// from the decoded size), 255 marker (the UTF-8 label of a cast marker). Zero-length payloads are
// not written. A record longer than MAX_RECORD_BYTES is treated as corruption.
import { BastionError } from '../errors/index.js';
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import type { AppendFile } from './append-file.js';
import type { CastFormat } from '../model/vocabulary.js';

export const RAW_MAGIC = Buffer.from('KBRAW\0', 'latin1');
export const RAW_FORMAT_VERSION = 1;
const FILE_HEADER_FIXED = RAW_MAGIC.length + 2 + 4;
export const RECORD_HEADER_BYTES = 1 + 8 + 4;
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;
const MAX_META_BYTES = 1024 * 1024;

export const RawChannel = {
  stdin: 0,
  stdout: 1,
  stderr: 2,
  status: 3,
  resize: 4,
  marker: 255,
} as const;
export type RawChannelName = keyof typeof RawChannel;
export type RawChannelId = (typeof RawChannel)[RawChannelName];

/** The channels whose SHA-256 goes into the session row. */
export const HASHED_CHANNELS = ['stdin', 'stdout', 'stderr', 'resize'] as const;
export type HashedChannel = (typeof HASHED_CHANNELS)[number];

const NAME_BY_ID = new Map<number, RawChannelName>(Object.entries(RawChannel).map(([k, v]) => [v, k as RawChannelName]));

export function channelName(id: number): RawChannelName | undefined {
  return NAME_BY_ID.get(id);
}

export interface RawSidecarMeta {
  /** Always `kube-bastion-raw`. */
  kind: 'kube-bastion-raw';
  session: string;
  approval: string | null;
  /** ISO 8601 of time 0. */
  startedAt: string;
  /** The cast this sidecar belongs to (file name, same directory). */
  cast: string;
  castFormat: CastFormat;
  /** False: stdin is not recorded (no channel-0 records). */
  stdinRecorded: boolean;
  /** Anything else the writer wants to keep (the cast header's kube_bastion object). */
  [key: string]: unknown;
}

export function encodeRawFileHeader(meta: RawSidecarMeta): Buffer {
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const fixed = Buffer.alloc(FILE_HEADER_FIXED);
  RAW_MAGIC.copy(fixed, 0);
  fixed.writeUInt16BE(RAW_FORMAT_VERSION, RAW_MAGIC.length);
  fixed.writeUInt32BE(json.length, RAW_MAGIC.length + 2);
  return Buffer.concat([fixed, json]);
}

export function encodeRawRecord(channel: number, timeUs: number, data: Uint8Array): Buffer {
  if (data.length > MAX_RECORD_BYTES) throw new RangeError(`raw record too large (${data.length} bytes)`);
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + data.length);
  buf.writeUInt8(channel, 0);
  buf.writeBigUInt64BE(BigInt(Math.max(0, Math.round(timeUs))), 1);
  buf.writeUInt32BE(data.length, 9);
  buf.set(data, RECORD_HEADER_BYTES);
  return buf;
}

/** The smallest segment: what a batch of a mostly idle session is written from (see RawRecordBatch). */
export const MIN_SEGMENT_BYTES = 16 * 1024;

/**
 * Batch segments handed back once written, for any session's next batch. A segment lives from its
 * first record until its batch is on disk (100 ms or more), long enough for V8 to promote it to
 * the old generation, where only a full GC frees it; a new 1 MiB segment per batch made the
 * bastion run 5-9 full GCs a second while relaying (a third of its CPU, found with `perf`,
 * 2026-12-07). Only segments of the power-of-two sizes the batch asks for are kept, up to
 * `maxBytes` in all; a segment is taken back only if this pool made it and it is out (a view of
 * anything else, or a second release, is ignored).
 */
export class SegmentPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  /**
   * Each segment given out, with who has it: only its holder gives it back. A release that comes
   * again after the segment went to another holder (a bug) is ignored instead of handing that
   * holder's bytes to a third one.
   */
  private readonly out = new WeakMap<ArrayBuffer, object>();
  private freeBytes = 0;
  /** Segments made (not reused) so far. */
  created = 0;

  constructor(private readonly maxBytes = 16 * 1024 * 1024) {}

  /** A segment of `size` bytes (contents undefined) for `holder`: a free one of that size, else a new one. */
  acquire(size: number, holder: object): Buffer {
    const ab = this.free.get(size)?.pop();
    if (ab) this.freeBytes -= size;
    else this.created++;
    const buf = ab ? Buffer.from(ab) : Buffer.allocUnsafeSlow(size);
    if (isPooledSize(size)) this.out.set(buf.buffer as ArrayBuffer, holder);
    return buf;
  }

  /** Takes back the segments under `parts` (views of segments `holder` acquired), once nothing reads them. */
  release(parts: readonly Uint8Array[], holder: object): void {
    for (const p of parts) {
      const ab = p.buffer as ArrayBuffer;
      if (this.out.get(ab) !== holder) continue;
      this.out.delete(ab);
      if (this.freeBytes + ab.byteLength > this.maxBytes) continue;
      let list = this.free.get(ab.byteLength);
      if (!list) this.free.set(ab.byteLength, (list = []));
      list.push(ab);
      this.freeBytes += ab.byteLength;
    }
  }

  /** Bytes held free (tests). */
  get heldBytes(): number {
    return this.freeBytes;
  }
}

const isPooledSize = (n: number): boolean => n >= MIN_SEGMENT_BYTES && (n & (n - 1)) === 0;

/** The process's pool, shared by every recording's batch. */
export const sharedSegmentPool = new SegmentPool();

/**
 * Raw records batched in memory for one large write: each record is encoded straight into a big
 * segment (one copy of the payload, no per-record allocation but a view), and `take()` hands the
 * filled segments over to be written. The payload view each `append` returns stays valid until the
 * batch is given back with `release()` (the owner does, once it is written and nothing reads it).
 *
 * Segments come from a SegmentPool, sized to the traffic: from MIN_SEGMENT_BYTES, twice the last
 * batch, up to `segmentBytes`. Between batches a session holds none: a fixed 1 MiB segment per
 * session cost 1 MiB of V8 external memory per session (1 GiB at 1,000 sessions, which drives V8
 * into back-to-back full GCs).
 */
export class RawRecordBatch {
  private segments: Buffer[] = [];
  private cur: Buffer = EMPTY;
  private used = 0;
  /** Size of the next segment. */
  private next = MIN_SEGMENT_BYTES;
  /** Bytes batched (headers included) since the last take(). */
  bytes = 0;

  constructor(
    private readonly segmentBytes = 1024 * 1024,
    private readonly pool: SegmentPool = sharedSegmentPool,
  ) {}

  append(channel: number, timeUs: number, data: Uint8Array): Buffer {
    if (data.length > MAX_RECORD_BYTES) throw new RangeError(`raw record too large (${data.length} bytes)`);
    const need = RECORD_HEADER_BYTES + data.length;
    if (this.cur.length - this.used < need) {
      if (this.used > 0) this.segments.push(this.cur.subarray(0, this.used));
      // A record larger than the segment a batch grows to gets a buffer of its own (not pooled);
      // a smaller one a segment of the next size up.
      const cap = Math.max(this.segmentBytes, MIN_SEGMENT_BYTES);
      this.cur = this.pool.acquire(need <= this.next ? this.next : need <= cap ? 2 ** Math.ceil(Math.log2(need)) : need, this);
      // A batch that outgrows its segment asks for bigger ones.
      this.next = Math.min(this.next * 2, Math.max(this.segmentBytes, MIN_SEGMENT_BYTES));
      this.used = 0;
    }
    const b = this.cur;
    const at = this.used;
    const t = Math.max(0, Math.round(timeUs));
    b[at] = channel;
    // u64 as two u32 halves: no BigInt per record.
    b.writeUInt32BE(Math.floor(t / 0x1_0000_0000), at + 1);
    b.writeUInt32BE(t >>> 0, at + 5);
    b.writeUInt32BE(data.length, at + 9);
    b.set(data, at + RECORD_HEADER_BYTES);
    this.used += need;
    this.bytes += need;
    return b.subarray(at + RECORD_HEADER_BYTES, at + need);
  }

  /**
   * The batched bytes, in order, as a few large buffers; the batch starts empty again (its next
   * record takes a new segment). Give them back with release() once written.
   */
  take(): Buffer[] {
    const out = this.segments;
    if (this.used > 0) out.push(this.cur.subarray(0, this.used));
    else if (this.cur !== EMPTY) this.pool.release([this.cur], this);
    // Room for about two batches like this one.
    this.next = Math.min(Math.max(MIN_SEGMENT_BYTES, 2 ** Math.ceil(Math.log2(Math.max(1, 2 * this.bytes)))), Math.max(this.segmentBytes, MIN_SEGMENT_BYTES));
    this.cur = EMPTY;
    this.used = 0;
    this.segments = [];
    this.bytes = 0;
    return out;
  }

  /** Gives taken segments back for reuse: nothing may read them (or the views append returned) after this. */
  release(parts: readonly Uint8Array[]): void {
    this.pool.release(parts, this);
  }
}

const EMPTY = Buffer.alloc(0);

/** Accumulates one SHA-256 per hashed channel (an unused channel hashes the empty string). */
export class ChannelHashes {
  private readonly hashes = new Map<HashedChannel, Hash>();

  update(channel: number, data: Uint8Array): void {
    const name = channelName(channel);
    if (!name || !(HASHED_CHANNELS as readonly string[]).includes(name)) return;
    let h = this.hashes.get(name as HashedChannel);
    if (!h) {
      h = createHash('sha256');
      this.hashes.set(name as HashedChannel, h);
    }
    h.update(data);
  }

  /** Hex digests; `omit` leaves channels out (stdin when it is not recorded). */
  digests(omit: readonly HashedChannel[] = []): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of HASHED_CHANNELS) {
      if (omit.includes(name)) continue;
      out[name] = (this.hashes.get(name)?.copy() ?? createHash('sha256')).digest('hex');
    }
    return out;
  }
}

/** Writes the sidecar through an AppendFile (which throws on failure) and hashes each channel. */
export class RawSidecarWriter {
  readonly channels = new ChannelHashes();

  constructor(
    private readonly file: AppendFile,
    meta: RawSidecarMeta,
  ) {
    file.write(encodeRawFileHeader(meta));
  }

  append(channel: RawChannelId, timeUs: number, data: Uint8Array): void {
    if (data.length === 0) return;
    this.file.write(encodeRawRecord(channel, timeUs, data));
    this.channels.update(channel, data);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface RawRecord {
  channel: number;
  /** Name of a known channel; undefined for an unknown id (kept, not an error). */
  name: RawChannelName | undefined;
  timeUs: number;
  data: Buffer;
}

export class RawSidecarFormatError extends BastionError {
  override readonly name = 'RawSidecarFormatError';
  constructor(message: string) {
    super('INVALID_RECORDING', message);
  }
}

/**
 * Incremental reader: feed the file in chunks of any size. Memory is bounded by the largest
 * record. Throws RawSidecarFormatError when the file does not start with a sidecar header.
 */
export class RawSidecarParser {
  private buf: Buffer = Buffer.alloc(0);
  /** Chunks not yet joined to `buf`: joined only once enough bytes for the next step are there. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private needed = 0;
  private consumed = 0;
  meta: RawSidecarMeta | undefined;
  readonly channels = new ChannelHashes();
  /** Set when a record header carries an impossible length: nothing after it is read. */
  corruptAt: number | undefined;

  push(chunk: Uint8Array): RawRecord[] {
    if (this.corruptAt !== undefined || chunk.length === 0) return [];
    this.pending.push(Buffer.from(chunk));
    this.pendingBytes += chunk.length;
    const out: RawRecord[] = [];
    if (this.buf.length + this.pendingBytes < this.needed) return out;
    this.buf = Buffer.concat([this.buf, ...this.pending]);
    this.pending = [];
    this.pendingBytes = 0;
    this.needed = 0;
    if (!this.meta) {
      if (this.buf.length >= RAW_MAGIC.length && !this.buf.subarray(0, RAW_MAGIC.length).equals(RAW_MAGIC)) {
        throw new RawSidecarFormatError('not a kube-bastion raw sidecar (bad magic)');
      }
      if (this.buf.length < FILE_HEADER_FIXED) return out;
      const version = this.buf.readUInt16BE(RAW_MAGIC.length);
      if (version !== RAW_FORMAT_VERSION) throw new RawSidecarFormatError(`unsupported raw sidecar version ${version}`);
      const n = this.buf.readUInt32BE(RAW_MAGIC.length + 2);
      if (n > MAX_META_BYTES) throw new RawSidecarFormatError('raw sidecar metadata too large');
      if (this.buf.length < FILE_HEADER_FIXED + n) {
        this.needed = FILE_HEADER_FIXED + n;
        return out;
      }
      try {
        this.meta = JSON.parse(this.buf.subarray(FILE_HEADER_FIXED, FILE_HEADER_FIXED + n).toString('utf8')) as RawSidecarMeta;
      } catch {
        throw new RawSidecarFormatError('raw sidecar metadata is not JSON');
      }
      this.advance(FILE_HEADER_FIXED + n);
    }
    while (this.buf.length >= RECORD_HEADER_BYTES) {
      const channel = this.buf.readUInt8(0);
      const timeUs = Number(this.buf.readBigUInt64BE(1));
      const length = this.buf.readUInt32BE(9);
      if (length > MAX_RECORD_BYTES) {
        this.corruptAt = this.consumed;
        break;
      }
      if (this.buf.length < RECORD_HEADER_BYTES + length) {
        this.needed = RECORD_HEADER_BYTES + length;
        break;
      }
      const data = Buffer.from(this.buf.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + length));
      this.channels.update(channel, data);
      out.push({ channel, name: channelName(channel), timeUs, data });
      this.advance(RECORD_HEADER_BYTES + length);
    }
    // Keep the leftover small and detached from the big joined buffer.
    this.buf = Buffer.from(this.buf);
    return out;
  }

  private advance(n: number): void {
    this.buf = this.buf.subarray(n);
    this.consumed += n;
  }

  /** Bytes that form the header and complete records: truncating the file here repairs it. */
  get validLength(): number {
    return this.meta ? this.consumed : 0;
  }

  /** True when bytes after the last complete record were left over (a torn last write). */
  get truncated(): boolean {
    return this.corruptAt !== undefined || this.buf.length + this.pendingBytes > 0 || !this.meta;
  }
}

export interface RawSidecarContents {
  meta: RawSidecarMeta;
  records: RawRecord[];
  /** True when the file ends in a partial record (ignored). */
  truncated: boolean;
  /** Length of the readable prefix. */
  validLength: number;
  /** SHA-256 of each hashed channel over the complete records. */
  channelSha256: Record<string, string>;
}

/** Reads a whole sidecar held in memory. */
export function readRawSidecar(bytes: Uint8Array): RawSidecarContents {
  const p = new RawSidecarParser();
  const records = p.push(bytes);
  if (!p.meta) throw new RawSidecarFormatError('raw sidecar header is incomplete');
  return { meta: p.meta, records, truncated: p.truncated, validLength: p.validLength, channelSha256: p.channels.digests() };
}

/**
 * Reads a sidecar file in bounded chunks, handing each record to `onRecord` (nothing is kept),
 * and returns what readRawSidecar does minus the records.
 */
export function scanRawSidecarFile(path: string, onRecord?: (r: RawRecord) => void): Omit<RawSidecarContents, 'records'> {
  const p = new RawSidecarParser();
  pushFile(p, path, onRecord);
  if (!p.meta) throw new RawSidecarFormatError('raw sidecar header is incomplete');
  return { meta: p.meta, truncated: p.truncated, validLength: p.validLength, channelSha256: p.channels.digests() };
}

/**
 * The channel SHA-256s of a sidecar whose last records are still in memory: the file's records,
 * then `unwritten` (whole records, as RawRecordBatch.take() hands them over). Undefined when the
 * file does not end on a record boundary or anything does not parse: then they cannot be vouched for.
 */
export function sidecarChannelDigests(path: string, unwritten: readonly Uint8Array[]): Record<string, string> | undefined {
  const p = new RawSidecarParser();
  try {
    pushFile(p, path);
    if (p.truncated) return undefined;
    for (const part of unwritten) p.push(part);
  } catch {
    return undefined;
  }
  return p.truncated ? undefined : p.channels.digests();
}

/** Feeds a file to the parser in bounded chunks. */
function pushFile(p: RawSidecarParser, path: string, onRecord?: (r: RawRecord) => void): void {
  const fd = fs.openSync(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n <= 0) break;
      for (const r of p.push(chunk.subarray(0, n))) onRecord?.(r);
    }
  } finally {
    fs.closeSync(fd);
  }
}
