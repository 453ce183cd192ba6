// SPDY/3.1 frame model and pure encoders. Layouts as moby/spdystream reads and writes them
// (protocol.md §2.2); every integer is big-endian.
//
// Frames that carry a header block (SYN_STREAM, SYN_REPLY, HEADERS) hold it compressed here:
// compression state belongs to the connection (header-codec.ts), not to single frames.

export const SPDY_VERSION = 3;

/** Size of the common frame header, control and data alike. */
export const FRAME_HEADER_SIZE = 8;

/** The 24-bit length field's ceiling. */
export const MAX_FRAME_LENGTH = 0xffffff;

/** Stream ids and similar fields are 31 bits under a reserved bit. */
export const MAX_STREAM_ID = 0x7fffffff;

export const ControlType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;
export type ControlKind = keyof typeof ControlType;

export const Flag = {
  /** DATA, SYN_STREAM, SYN_REPLY, HEADERS: the sender half-closes the stream. */
  FIN: 0x01,
  /** SYN_STREAM: the recipient must not send on this stream. */
  UNIDIRECTIONAL: 0x02,
  /** SETTINGS: forget persisted settings. */
  CLEAR_SETTINGS: 0x01,
} as const;

export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  INVALID_CREDENTIALS: 10,
  FRAME_TOO_LARGE: 11,
} as const;
export type RstStatusCode = (typeof RstStatus)[keyof typeof RstStatus];

export const GoAwayStatus = {
  OK: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
} as const;
export type GoAwayStatusCode = (typeof GoAwayStatus)[keyof typeof GoAwayStatus];

export interface DataFrame {
  kind: 'DATA';
  streamId: number;
  flags: number;
  data: Buffer;
}

export interface SynStreamFrame {
  kind: 'SYN_STREAM';
  streamId: number;
  associatedStreamId: number;
  /** 0 (highest) .. 7 */
  priority: number;
  slot: number;
  flags: number;
  headerBlock: Buffer;
}

export interface SynReplyFrame {
  kind: 'SYN_REPLY';
  streamId: number;
  flags: number;
  headerBlock: Buffer;
}

export interface RstStreamFrame {
  kind: 'RST_STREAM';
  streamId: number;
  status: number;
}

export interface SettingsEntry {
  flags: number;
  id: number;
  value: number;
}

export interface SettingsFrame {
  kind: 'SETTINGS';
  flags: number;
  entries: SettingsEntry[];
}

export interface PingFrame {
  kind: 'PING';
  id: number;
}

export interface GoAwayFrame {
  kind: 'GOAWAY';
  lastGoodStreamId: number;
  status: number;
}

export interface HeadersFrame {
  kind: 'HEADERS';
  streamId: number;
  flags: number;
  headerBlock: Buffer;
}

export interface WindowUpdateFrame {
  kind: 'WINDOW_UPDATE';
  streamId: number;
  delta: number;
}

export type Frame =
  | DataFrame
  | SynStreamFrame
  | SynReplyFrame
  | RstStreamFrame
  | SettingsFrame
  | PingFrame
  | GoAwayFrame
  | HeadersFrame
  | WindowUpdateFrame;

export type HeaderBearingFrame = SynStreamFrame | SynReplyFrame | HeadersFrame;

export function hasHeaderBlock(frame: Frame): frame is HeaderBearingFrame {
  return frame.kind === 'SYN_STREAM' || frame.kind === 'SYN_REPLY' || frame.kind === 'HEADERS';
}

// ---- encoders -------------------------------------------------------------------------------

function controlFrame(kind: ControlKind, flags: number, payloadLength: number): Buffer {
  checkLength(payloadLength);
  const buf = Buffer.alloc(FRAME_HEADER_SIZE + payloadLength);
  buf.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  buf.writeUInt16BE(ControlType[kind], 2);
  buf.writeUInt32BE(flagsAndLength(flags, payloadLength), 4);
  return buf;
}

/** flags(8) | 24-bit value, as an unsigned 32-bit word (JS bit operators are signed). */
function flagsAndLength(flags: number, value: number): number {
  return (((flags & 0xff) << 24) | value) >>> 0;
}

function checkLength(length: number): void {
  if (length > MAX_FRAME_LENGTH) throw new RangeError(`SPDY frame payload of ${length} bytes exceeds 24 bits`);
}

function checkId(id: number, name = 'stream id'): number {
  if (!Number.isInteger(id) || id < 0 || id > MAX_STREAM_ID) throw new RangeError(`invalid ${name}: ${id}`);
  return id;
}

export function encodeData(streamId: number, data: Buffer, fin = false): Buffer {
  const header = encodeDataHeader(streamId, data.length, fin);
  return data.length === 0 ? header : Buffer.concat([header, data], FRAME_HEADER_SIZE + data.length);
}

/**
 * The 8 bytes before a DATA frame's payload. The relay writes them and the payload as two buffers
 * (one writev), so payloads are not copied into a frame.
 */
export function encodeDataHeader(streamId: number, length: number, fin = false): Buffer {
  checkLength(length);
  const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  header.writeUInt32BE(checkId(streamId), 0);
  header.writeUInt32BE(flagsAndLength(fin ? Flag.FIN : 0, length), 4);
  return header;
}

export function encodeSynStream(frame: Omit<SynStreamFrame, 'kind'>): Buffer {
  const buf = controlFrame('SYN_STREAM', frame.flags, 10 + frame.headerBlock.length);
  buf.writeUInt32BE(checkId(frame.streamId), 8);
  buf.writeUInt32BE(checkId(frame.associatedStreamId, 'associated stream id'), 12);
  buf.writeUInt8((frame.priority & 0x07) << 5, 16);
  buf.writeUInt8(frame.slot & 0xff, 17);
  frame.headerBlock.copy(buf, 18);
  return buf;
}

export function encodeSynReply(streamId: number, headerBlock: Buffer, flags = 0): Buffer {
  const buf = controlFrame('SYN_REPLY', flags, 4 + headerBlock.length);
  buf.writeUInt32BE(checkId(streamId), 8);
  headerBlock.copy(buf, 12);
  return buf;
}

export function encodeRstStream(streamId: number, status: number): Buffer {
  const buf = controlFrame('RST_STREAM', 0, 8);
  buf.writeUInt32BE(checkId(streamId), 8);
  buf.writeUInt32BE(status >>> 0, 12);
  return buf;
}

export function encodeSettings(entries: readonly SettingsEntry[], flags = 0): Buffer {
  const buf = controlFrame('SETTINGS', flags, 4 + 8 * entries.length);
  buf.writeUInt32BE(entries.length, 8);
  entries.forEach((entry, i) => {
    buf.writeUInt32BE(flagsAndLength(entry.flags, entry.id & 0xffffff), 12 + 8 * i);
    buf.writeUInt32BE(entry.value >>> 0, 16 + 8 * i);
  });
  return buf;
}

export function encodePing(id: number): Buffer {
  const buf = controlFrame('PING', 0, 4);
  buf.writeUInt32BE(id >>> 0, 8);
  return buf;
}

export function encodeGoAway(lastGoodStreamId: number, status: number): Buffer {
  const buf = controlFrame('GOAWAY', 0, 8);
  buf.writeUInt32BE(checkId(lastGoodStreamId, 'last-good stream id'), 8);
  buf.writeUInt32BE(status >>> 0, 12);
  return buf;
}

export function encodeHeaders(streamId: number, headerBlock: Buffer, flags = 0): Buffer {
  const buf = controlFrame('HEADERS', flags, 4 + headerBlock.length);
  buf.writeUInt32BE(checkId(streamId), 8);
  headerBlock.copy(buf, 12);
  return buf;
}

export function encodeWindowUpdate(streamId: number, delta: number): Buffer {
  const buf = controlFrame('WINDOW_UPDATE', 0, 8);
  buf.writeUInt32BE(checkId(streamId), 8);
  buf.writeUInt32BE(checkId(delta, 'window delta'), 12);
  return buf;
}

/** Encodes any frame; header blocks must already be compressed. */
export function encodeFrame(frame: Frame): Buffer {
  switch (frame.kind) {
    case 'DATA':
      return encodeData(frame.streamId, frame.data, (frame.flags & Flag.FIN) !== 0);
    case 'SYN_STREAM':
      return encodeSynStream(frame);
    case 'SYN_REPLY':
      return encodeSynReply(frame.streamId, frame.headerBlock, frame.flags);
    case 'RST_STREAM':
      return encodeRstStream(frame.streamId, frame.status);
    case 'SETTINGS':
      return encodeSettings(frame.entries, frame.flags);
    case 'PING':
      return encodePing(frame.id);
    case 'GOAWAY':
      return encodeGoAway(frame.lastGoodStreamId, frame.status);
    case 'HEADERS':
      return encodeHeaders(frame.streamId, frame.headerBlock, frame.flags);
    case 'WINDOW_UPDATE':
      return encodeWindowUpdate(frame.streamId, frame.delta);
  }
}
