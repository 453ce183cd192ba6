// Incremental SPDY/3.1 frame decoder. Fed arbitrary chunks; returns every frame they complete.
// Each frame header is validated before its payload is buffered, so a peer can make us hold at
// most one frame of the configured maximum size, never an unbounded amount.
import { BastionError, ErrorCode } from '../../errors/index.js';
import {
  ControlType,
  Flag,
  FRAME_HEADER_SIZE,
  GoAwayStatus,
  RstStatus,
  SPDY_VERSION,
  type ControlKind,
  type Frame,
  type SettingsEntry,
} from './frames.js';
import type { SpdyLimits } from './limits.js';

export type FrameReaderLimits = Pick<SpdyLimits, 'maxDataFramePayload' | 'maxControlFramePayload'>;

const RESERVED_BIT = 0x80000000;

/** What the 8-byte header said about the frame whose payload is being collected. */
interface PendingHeader {
  /** undefined for a control type we do not know: its payload is skipped, as SPDY/3 asks. */
  kind: ControlKind | 'DATA' | undefined;
  flags: number;
  length: number;
  /** DATA only: the stream id from the header. */
  streamId: number;
}

interface ControlRule {
  allowedFlags: number;
  /** Exact payload length, or the minimum when `exact` is false. */
  length: number;
  exact: boolean;
}

const RULES: Record<ControlKind, ControlRule> = {
  SYN_STREAM: { allowedFlags: Flag.FIN | Flag.UNIDIRECTIONAL, length: 10, exact: false },
  SYN_REPLY: { allowedFlags: Flag.FIN, length: 4, exact: false },
  RST_STREAM: { allowedFlags: 0, length: 8, exact: true },
  SETTINGS: { allowedFlags: Flag.CLEAR_SETTINGS, length: 4, exact: false },
  PING: { allowedFlags: 0, length: 4, exact: true },
  GOAWAY: { allowedFlags: 0, length: 8, exact: true },
  HEADERS: { allowedFlags: Flag.FIN, length: 4, exact: false },
  WINDOW_UPDATE: { allowedFlags: 0, length: 8, exact: true },
};

const KIND_BY_TYPE = new Map<number, ControlKind>(
  (Object.entries(ControlType) as [ControlKind, number][]).map(([kind, type]) => [type, kind]),
);

const MAX_RST_STATUS = RstStatus.FRAME_TOO_LARGE;
const MAX_GOAWAY_STATUS = GoAwayStatus.INTERNAL_ERROR;
/** SETTINGS entry flags: FLAG_SETTINGS_PERSIST_VALUE (1), FLAG_SETTINGS_PERSISTED (2). */
const MAX_SETTINGS_ENTRY_FLAGS = 2;

function protocolError(message: string, details?: Record<string, unknown>): BastionError {
  return new BastionError(ErrorCode.SPDY_PROTOCOL_ERROR, message, details);
}

export class FrameReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private pending: PendingHeader | undefined;
  private failure: BastionError | undefined;

  constructor(private readonly limits: FrameReaderLimits) {}

  /** Bytes held while waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** True when a frame has begun but not finished: the peer closing now truncated it. */
  get midFrame(): boolean {
    return this.buffered > 0 || this.pending !== undefined;
  }

  /**
   * Consumes `chunk` and returns the frames it completes, in order. Throws a BastionError on the
   * first invalid frame; the reader stays failed afterwards (a framing error is not recoverable).
   */
  push(chunk: Buffer): Frame[] {
    if (this.failure) throw this.failure;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    try {
      for (;;) {
        if (!this.pending) {
          if (this.buffered < FRAME_HEADER_SIZE) break;
          this.pending = this.parseHeader(this.take(FRAME_HEADER_SIZE));
        }
        if (this.buffered < this.pending.length) break;
        const header = this.pending;
        this.pending = undefined;
        const frame = this.parsePayload(header, this.take(header.length));
        if (frame) frames.push(frame);
      }
    } catch (err) {
      this.failure = err instanceof BastionError ? err : protocolError('malformed SPDY frame', { cause: String(err) });
      this.chunks.length = 0;
      this.buffered = 0;
      throw this.failure;
    }
    return frames;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= n) {
      // Common case: no copy.
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.chunks[0]!;
      const used = Math.min(head.length, n - filled);
      head.copy(out, filled, 0, used);
      filled += used;
      if (used === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(used);
    }
    this.buffered -= n;
    return out;
  }

  private parseHeader(h: Buffer): PendingHeader {
    const word = h.readUInt32BE(0);
    const flags = h.readUInt8(4);
    const length = h.readUIntBE(5, 3);
    if ((word & RESERVED_BIT) === 0) {
      const streamId = word;
      if (streamId === 0) throw protocolError('DATA frame on stream 0');
      if ((flags & ~Flag.FIN) !== 0) throw protocolError('DATA frame with unknown flags', { flags });
      if (length > this.limits.maxDataFramePayload) {
        throw new BastionError(ErrorCode.SPDY_FRAME_TOO_LARGE, `DATA frame of ${length} bytes exceeds the limit`, {
          length,
          limit: this.limits.maxDataFramePayload,
        });
      }
      return { kind: 'DATA', flags, length, streamId };
    }
    const version = (word >>> 16) & 0x7fff;
    if (version !== SPDY_VERSION) {
      throw new BastionError(ErrorCode.SPDY_UNSUPPORTED_VERSION, `SPDY version ${version} is not supported`, { version });
    }
    if (length > this.limits.maxControlFramePayload) {
      throw new BastionError(ErrorCode.SPDY_FRAME_TOO_LARGE, `control frame of ${length} bytes exceeds the limit`, {
        length,
        limit: this.limits.maxControlFramePayload,
      });
    }
    const kind = KIND_BY_TYPE.get(word & 0xffff);
    if (!kind) return { kind: undefined, flags, length, streamId: 0 };
    const rule = RULES[kind];
    if ((flags & ~rule.allowedFlags) !== 0) throw protocolError(`${kind} frame with unknown flags`, { flags });
    if (rule.exact ? length !== rule.length : length < rule.length) {
      throw protocolError(`${kind} frame with invalid length ${length}`, { length });
    }
    return { kind, flags, length, streamId: 0 };
  }

  private parsePayload(h: PendingHeader, p: Buffer): Frame | undefined {
    switch (h.kind) {
      case undefined:
        return undefined;
      case 'DATA':
        return { kind: 'DATA', streamId: h.streamId, flags: h.flags, data: p };
      case 'SYN_STREAM': {
        const unused = p.readUInt8(8) & 0x1f;
        if (unused !== 0) throw protocolError('SYN_STREAM with non-zero unused priority bits');
        return {
          kind: 'SYN_STREAM',
          streamId: streamIdAt(p, 0, 'SYN_STREAM'),
          associatedStreamId: reserved31(p, 4, 'SYN_STREAM associated stream id'),
          priority: p.readUInt8(8) >>> 5,
          slot: p.readUInt8(9),
          flags: h.flags,
          headerBlock: p.subarray(10),
        };
      }
      case 'SYN_REPLY':
        return { kind: 'SYN_REPLY', streamId: streamIdAt(p, 0, 'SYN_REPLY'), flags: h.flags, headerBlock: p.subarray(4) };
      case 'HEADERS':
        return { kind: 'HEADERS', streamId: streamIdAt(p, 0, 'HEADERS'), flags: h.flags, headerBlock: p.subarray(4) };
      case 'RST_STREAM': {
        const status = p.readUInt32BE(4);
        if (status < 1 || status > MAX_RST_STATUS) throw protocolError(`RST_STREAM with unknown status ${status}`, { status });
        return { kind: 'RST_STREAM', streamId: streamIdAt(p, 0, 'RST_STREAM'), status };
      }
      case 'SETTINGS':
        return { kind: 'SETTINGS', flags: h.flags, entries: parseSettings(p) };
      case 'PING':
        return { kind: 'PING', id: p.readUInt32BE(0) };
      case 'GOAWAY': {
        const status = p.readUInt32BE(4);
        if (status > MAX_GOAWAY_STATUS) throw protocolError(`GOAWAY with unknown status ${status}`, { status });
        return { kind: 'GOAWAY', lastGoodStreamId: reserved31(p, 0, 'GOAWAY last-good stream id'), status };
      }
      case 'WINDOW_UPDATE': {
        // Stream 0 is the SPDY/3.1 connection window, so it is valid here.
        const streamId = reserved31(p, 0, 'WINDOW_UPDATE stream id');
        const delta = reserved31(p, 4, 'WINDOW_UPDATE delta');
        if (delta === 0) throw protocolError('WINDOW_UPDATE with a zero delta');
        return { kind: 'WINDOW_UPDATE', streamId, delta };
      }
    }
  }
}

/** A 31-bit field under a reserved bit that must be clear. */
function reserved31(p: Buffer, offset: number, what: string): number {
  const word = p.readUInt32BE(offset);
  if ((word & RESERVED_BIT) !== 0) throw protocolError(`${what} has the reserved bit set`);
  return word;
}

function streamIdAt(p: Buffer, offset: number, kind: string): number {
  const id = reserved31(p, offset, `${kind} stream id`);
  if (id === 0) throw protocolError(`${kind} on stream 0`);
  return id;
}

function parseSettings(p: Buffer): SettingsEntry[] {
  const count = p.readUInt32BE(0);
  if (p.length !== 4 + 8 * count) throw protocolError(`SETTINGS length does not match its ${count} entries`, { count });
  const entries: SettingsEntry[] = [];
  for (let i = 0; i < count; i++) {
    const word = p.readUInt32BE(4 + 8 * i);
    const flags = word >>> 24;
    if (flags > MAX_SETTINGS_ENTRY_FLAGS) throw protocolError('SETTINGS entry with unknown flags', { flags });
    entries.push({ flags, id: word & 0xffffff, value: p.readUInt32BE(8 + 8 * i) });
  }
  return entries;
}
