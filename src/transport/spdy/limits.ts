// Hard limits of one SPDY connection. Everything a peer can make us buffer is bounded by one of
// these; exceeding one ends the connection with a typed error instead of growing memory.

export interface SpdyLimits {
  /** Largest DATA payload accepted from the peer. kubectl writes at most 32 KiB per frame. */
  maxDataFramePayload: number;
  /** Largest compressed header block (SYN_STREAM/SYN_REPLY/HEADERS) accepted from the peer. */
  maxControlFramePayload: number;
  /** Largest header block once decompressed. */
  maxHeaderBlockSize: number;
  /** Most name/value pairs in one header block. */
  maxHeaderPairs: number;
  /** Most streams open at once (either side not yet closed). kubectl opens at most five. */
  maxConcurrentStreams: number;
  /** Payload size of the DATA frames we write; larger writes are split. */
  outboundDataFrameSize: number;
  /** Bytes a stream's readable side holds before we stop reading the socket. */
  streamHighWaterMark: number;
  /** After we end our side, how long to wait for the peer to close before destroying the socket. */
  closeTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<SpdyLimits> = Object.freeze({
  maxDataFramePayload: 1024 * 1024 + 1024,
  maxControlFramePayload: 64 * 1024 + 4096,
  maxHeaderBlockSize: 64 * 1024,
  maxHeaderPairs: 128,
  maxConcurrentStreams: 32,
  outboundDataFrameSize: 32 * 1024,
  streamHighWaterMark: 64 * 1024,
  closeTimeoutMs: 5_000,
});

export function resolveLimits(overrides: Partial<SpdyLimits> = {}): SpdyLimits {
  const limits = { ...DEFAULT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0) throw new RangeError(`SPDY limit ${name} must be a positive integer, got ${value}`);
  }
  if (limits.outboundDataFrameSize > 0xffffff) throw new RangeError('outboundDataFrameSize exceeds the 24-bit frame length');
  return limits;
}
