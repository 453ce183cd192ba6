// One SPDY/3.1 session over a byte stream (the socket after the HTTP 101). It owns the stream
// table and the session rules: stream ids, limits, PING, GOAWAY, and how the session ends.
// Framing, header compression, ordered output and the streams themselves live in their modules.
//
// Flow control is deliberately absent: spdystream (kubectl's side) neither sends nor honours
// WINDOW_UPDATE, so waiting for one would stall large outputs. Backpressure is TCP's: a full
// stream stops socket reading (read-gate.ts); socket backpressure holds stream writers.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { BastionError, ErrorCode } from '../../errors/index.js';
import { FrameWriter } from './frame-writer.js';
import {
  encodeData,
  encodeDataHeader,
  encodeGoAway,
  encodePing,
  encodeRstStream,
  encodeSynReply,
  encodeSynStream,
  Flag,
  GoAwayStatus,
  MAX_STREAM_ID,
  RstStatus,
  type GoAwayStatusCode,
} from './frames.js';
import type { HeaderInput } from './header-block.js';
import { HeaderDeflater } from './header-codec.js';
import { InboundFrames, type DecodedFrame } from './inbound.js';
import { resolveLimits, type SpdyLimits } from './limits.js';
import { ReadGate } from './read-gate.js';
import { SpdyStream, type StreamHost } from './stream.js';

export type SpdyRole = 'server' | 'client';

export interface SpdyConnectionOptions {
  /** Servers answer odd (client-opened) stream ids and open even ones; clients the reverse. */
  role: SpdyRole;
  limits?: Partial<SpdyLimits>;
  /** Bytes already read from the socket, e.g. the `head` of an HTTP upgrade. */
  head?: Buffer;
}

export interface GoAwayInfo {
  lastGoodStreamId: number;
  status: number;
}

/** Headers a SYN_STREAM may not carry (spdystream rejects them too): they are hop-by-hop in HTTP. */
const FORBIDDEN_SYN_HEADERS = ['connection', 'host', 'keep-alive', 'proxy-connection', 'transfer-encoding'];

type State = 'open' | 'closing' | 'closed';

export interface SpdyConnection {
  /**
   * A stream opened by the peer. Reply to it (`stream.reply()`) or reset it. Listen before
   * yielding to the event loop: with no listener, peer streams are refused (RST REFUSED_STREAM).
   */
  on(event: 'stream', listener: (stream: SpdyStream) => void): this;
  on(event: 'goaway', listener: (info: GoAwayInfo) => void): this;
  /**
   * Why the connection failed (protocol error from the peer, socket error). Emitted only when
   * listened to, so bad peer input can never crash the process; `error` keeps it either way.
   */
  on(event: 'error', listener: (err: BastionError) => void): this;
  on(event: 'close', listener: (err: BastionError | undefined) => void): this;
  once(event: 'stream', listener: (stream: SpdyStream) => void): this;
  once(event: 'goaway', listener: (info: GoAwayInfo) => void): this;
  once(event: 'error', listener: (err: BastionError) => void): this;
  once(event: 'close', listener: (err: BastionError | undefined) => void): this;
}

export class SpdyConnection extends EventEmitter {
  readonly role: SpdyRole;
  readonly limits: Readonly<SpdyLimits>;
  /** Resolves (never rejects) once the socket is gone. */
  readonly closed: Promise<void>;

  private readonly streams = new Map<number, SpdyStream>();
  private readonly gate: ReadGate;
  private readonly inbound: InboundFrames;
  private readonly writer: FrameWriter;
  private readonly deflater = new HeaderDeflater();
  private readonly host: StreamHost;
  private readonly pings = new Map<number, { sentAt: bigint; resolve: (ms: number) => void; reject: (err: Error) => void }>();
  private state: State = 'open';
  private lastPeerStreamId = 0;
  private nextLocalStreamId: number;
  private nextPingId: number;
  private goAwaySent = false;
  private goAwayReceived: GoAwayInfo | undefined;
  private failure: BastionError | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private resolveClosed!: () => void;

  constructor(
    private readonly socket: Duplex,
    options: SpdyConnectionOptions,
  ) {
    super();
    this.role = options.role;
    this.limits = Object.freeze(resolveLimits(options.limits));
    this.nextLocalStreamId = this.role === 'client' ? 1 : 2;
    this.nextPingId = this.role === 'client' ? 1 : 2;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.gate = new ReadGate(socket);
    this.writer = new FrameWriter(
      socket,
      (err) => this.fail(err, GoAwayStatus.INTERNAL_ERROR),
      // A peer that sends (PINGs, streams) without reading our answers is read no further.
      (backlogged) => (backlogged && this.state === 'open' ? this.gate.hold(this.writer) : this.gate.release(this.writer)),
    );
    this.inbound = new InboundFrames(
      this.limits,
      {
        frame: (frame) => this.onFrame(frame),
        end: () => this.onPeerEnd(),
        // A bug in our own handlers (or the consumer's) is not the peer's protocol error.
        error: (err) => this.fail(err, err.code === ErrorCode.INTERNAL ? GoAwayStatus.INTERNAL_ERROR : GoAwayStatus.PROTOCOL_ERROR),
      },
      this.gate,
    );
    this.host = this.createStreamHost();

    socket.on('error', (err) => this.onSocketError(err));
    socket.on('close', () => this.teardown());
    if (socket.destroyed) {
      queueMicrotask(() => this.teardown());
      return;
    }
    // Bytes arriving now could produce 'stream' events before the caller has had a chance to
    // listen, so input starts on the next tick: first the upgrade's head, then the socket.
    process.nextTick(() => {
      if (this.state !== 'open') return;
      if (options.head && options.head.length > 0) this.inbound.push(options.head);
      socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
      socket.on('end', () => this.onSocketEnd());
    });
  }

  /** The error that ended the connection, if any. */
  get error(): BastionError | undefined {
    return this.failure;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** The peer's GOAWAY, once received. */
  get goAway(): GoAwayInfo | undefined {
    return this.goAwayReceived;
  }

  /** Streams with either side still open. */
  get openStreamCount(): number {
    return this.streams.size;
  }

  /** Opens a stream (client role: kubectl-style odd ids). The peer answers with SYN_REPLY. */
  openStream(headers: HeaderInput): SpdyStream {
    if (this.goAwayReceived) throw new BastionError(ErrorCode.SPDY_GOAWAY, 'peer sent GOAWAY; no new streams');
    if (this.state !== 'open') throw new BastionError(ErrorCode.CONNECTION_CLOSED, 'SPDY connection is closed');
    if (this.streams.size >= this.limits.maxConcurrentStreams) {
      throw new BastionError(ErrorCode.SPDY_TOO_MANY_STREAMS, `at most ${this.limits.maxConcurrentStreams} concurrent streams`);
    }
    if (this.nextLocalStreamId > MAX_STREAM_ID) throw new BastionError(ErrorCode.SPDY_INVALID_STREAM, 'stream ids exhausted');
    // Compress now, before anything else is queued: the deflater's context follows wire order.
    const block = this.deflater.encode(headers);
    const id = this.nextLocalStreamId;
    this.nextLocalStreamId += 2;
    const stream = new SpdyStream(this.host, {
      id,
      local: true,
      headers: {},
      highWaterMark: this.limits.streamHighWaterMark,
    });
    this.streams.set(id, stream);
    void this.writer.write(
      block.then((headerBlock) => encodeSynStream({ streamId: id, associatedStreamId: 0, priority: 0, slot: 0, flags: 0, headerBlock })),
    );
    return stream;
  }

  /** Round trip of a PING in milliseconds. */
  ping(): Promise<number> {
    if (this.state !== 'open') return Promise.reject(new BastionError(ErrorCode.CONNECTION_CLOSED, 'SPDY connection is closed'));
    const id = this.nextPingId;
    this.nextPingId = (this.nextPingId + 2) % 0x100000000;
    return new Promise<number>((resolve, reject) => {
      this.pings.set(id, { sentAt: process.hrtime.bigint(), resolve, reject });
      void this.writer.write(encodePing(id));
    });
  }

  /**
   * Ends the session the way the kubelet does: RST_STREAM CANCEL on every stream we have not
   * finished, GOAWAY(OK), then end the socket once everything queued is written. Resolves when
   * the socket's writable side has ended; `closed` resolves when the peer has closed too.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.state !== 'open') return this.closed;
    this.state = 'closing';
    this.inbound.stop();
    this.gate.clear();
    for (const stream of [...this.streams.values()]) {
      if (!stream.localEnded) stream.cancel(RstStatus.CANCEL);
    }
    this.sendGoAway(GoAwayStatus.OK);
    this.abandonStreams();
    this.closing = this.writer.end().then(() => this.armCloseTimer());
    return this.closing;
  }

  /**
   * Ends the session for a violation found above the framing layer (a bad resize message, an
   * unexpected stream): GOAWAY(status), end the socket, destroy it once the peer closes or the
   * close timeout passes. `err` becomes the connection's error.
   */
  abort(err: BastionError, status: GoAwayStatusCode = GoAwayStatus.PROTOCOL_ERROR): void {
    this.fail(err, status);
  }

  /** Cuts the connection at once; nothing more is written. */
  destroy(error?: Error): void {
    if (this.state === 'closed') return;
    if (error) this.failure ??= asBastionError(error, ErrorCode.CONNECTION_CLOSED, 'SPDY connection destroyed');
    this.socket.destroy();
    this.teardown();
  }

  // ---- inbound ------------------------------------------------------------------------------

  private onSocketData(chunk: Buffer): void {
    // Once closing, input is drained and dropped: reading on avoids a TCP reset that could
    // discard our last frames before the peer reads them.
    if (this.state === 'open') this.inbound.push(chunk);
  }

  private onSocketEnd(): void {
    if (this.state === 'open') {
      this.inbound.end();
      return;
    }
    // We were already closing and the peer has now closed too: done once our side is flushed.
    if (this.socket.writableFinished) this.socket.destroy();
    else this.socket.once('finish', () => this.socket.destroy());
    this.armCloseTimer();
  }

  private onFrame(frame: DecodedFrame): void {
    if (this.state !== 'open') return;
    switch (frame.kind) {
      case 'SYN_STREAM':
        return this.onSynStream(frame);
      case 'SYN_REPLY':
        return this.onSynReply(frame);
      case 'RST_STREAM':
        this.streams.get(frame.streamId)?.receiveReset(frame.status);
        return; // a reset of a stream already gone is a normal race
      case 'DATA':
        return this.onData(frame.streamId, frame.flags, frame.data);
      case 'HEADERS':
        return this.onHeaders(frame);
      case 'PING':
        return this.onPing(frame.id);
      case 'GOAWAY':
        return this.onGoAway({ lastGoodStreamId: frame.lastGoodStreamId, status: frame.status });
      case 'SETTINGS':
      case 'WINDOW_UPDATE':
        return; // spdystream sends neither and honours neither; nothing depends on them
    }
  }

  private onSynStream(frame: Extract<DecodedFrame, { kind: 'SYN_STREAM' }>): void {
    const id = frame.streamId;
    if (this.goAwaySent) return; // SPDY/3: after GOAWAY, new streams are ignored
    if (!this.isPeerId(id)) return this.fail(protocolError(`peer opened stream ${id} with our parity`, { streamId: id }));
    if (id <= this.lastPeerStreamId) {
      return this.fail(protocolError(`stream id ${id} does not increase (last ${this.lastPeerStreamId})`, { streamId: id }));
    }
    if (frame.associatedStreamId !== 0) return this.fail(protocolError('associated streams (server push) are not supported'));
    const forbidden = FORBIDDEN_SYN_HEADERS.find((name) => name in frame.headers);
    if (forbidden) return this.fail(protocolError(`SYN_STREAM carries forbidden header ${forbidden}`, { streamId: id }));
    // From here the stream is answered (SYN_REPLY or RST_STREAM): it counts for GOAWAY's last-good id.
    this.lastPeerStreamId = id;
    if (this.streams.size >= this.limits.maxConcurrentStreams) {
      return this.fail(
        new BastionError(ErrorCode.SPDY_TOO_MANY_STREAMS, `peer exceeded ${this.limits.maxConcurrentStreams} concurrent streams`, {
          streamId: id,
        }),
        GoAwayStatus.PROTOCOL_ERROR,
        [encodeRstStream(id, RstStatus.REFUSED_STREAM)],
      );
    }
    if (this.listenerCount('stream') === 0) {
      void this.writer.write(encodeRstStream(id, RstStatus.REFUSED_STREAM));
      return;
    }
    const stream = new SpdyStream(this.host, {
      id,
      local: false,
      headers: frame.headers,
      highWaterMark: this.limits.streamHighWaterMark,
      unidirectional: (frame.flags & Flag.UNIDIRECTIONAL) !== 0,
    });
    this.streams.set(id, stream);
    this.emit('stream', stream);
    if ((frame.flags & Flag.FIN) !== 0) stream.receiveData(Buffer.alloc(0), true);
  }

  private onSynReply(frame: Extract<DecodedFrame, { kind: 'SYN_REPLY' }>): void {
    const stream = this.streams.get(frame.streamId);
    if (stream?.awaitingReply) return stream.receiveReply(frame.headers, (frame.flags & Flag.FIN) !== 0);
    if (!stream && this.wasOpened(frame.streamId)) return; // we reset it; the reply crossed our RST
    this.fail(
      new BastionError(ErrorCode.SPDY_INVALID_STREAM, `unexpected SYN_REPLY for stream ${frame.streamId}`, { streamId: frame.streamId }),
    );
  }

  private onData(id: number, flags: number, data: Buffer): void {
    const stream = this.streams.get(id);
    if (!stream) {
      if (this.wasOpened(id)) return; // closed or reset here; the peer's data crossed our RST
      return this.fail(new BastionError(ErrorCode.SPDY_INVALID_STREAM, `DATA for unknown stream ${id}`, { streamId: id }));
    }
    if (!stream.acceptsData) {
      if (stream.reset !== undefined) return;
      return this.fail(protocolError(`DATA on stream ${id} after the peer closed it or before SYN_REPLY`, { streamId: id }));
    }
    stream.receiveData(data, (flags & Flag.FIN) !== 0);
  }

  private onHeaders(frame: Extract<DecodedFrame, { kind: 'HEADERS' }>): void {
    const stream = this.streams.get(frame.streamId);
    if (!stream) {
      if (this.wasOpened(frame.streamId)) return;
      return this.fail(
        new BastionError(ErrorCode.SPDY_INVALID_STREAM, `HEADERS for unknown stream ${frame.streamId}`, { streamId: frame.streamId }),
      );
    }
    if (!stream.acceptsData) {
      if (stream.reset !== undefined) return;
      return this.fail(protocolError(`HEADERS on closed stream ${frame.streamId}`, { streamId: frame.streamId }));
    }
    stream.receiveHeaders(frame.headers, (frame.flags & Flag.FIN) !== 0);
  }

  private onPing(id: number): void {
    if (this.isPeerId(id)) {
      // The peer's ping: echo it unchanged (client-go pings every 5 s).
      void this.writer.write(encodePing(id));
      return;
    }
    const pending = this.pings.get(id);
    if (!pending) return; // unsolicited or late answer: ignored, as SPDY/3 says
    this.pings.delete(id);
    pending.resolve(Number(process.hrtime.bigint() - pending.sentAt) / 1e6);
  }

  private onGoAway(info: GoAwayInfo): void {
    this.goAwayReceived ??= info;
    // Our streams above the last good id were never seen by the peer.
    for (const stream of [...this.streams.values()]) {
      if (stream.local && stream.id > info.lastGoodStreamId) stream.receiveReset(RstStatus.REFUSED_STREAM);
    }
    this.emit('goaway', info);
    this.closeIfIdleAfterGoAway();
  }

  /** The peer ended its side cleanly: nothing more will arrive, finish what is queued and close. */
  private onPeerEnd(): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.gate.clear();
    this.abandonStreams();
    this.closing = this.writer.end().then(() => this.armCloseTimer());
  }

  private onSocketError(err: Error): void {
    // 'close' follows a socket error; teardown runs there. A socket error after a protocol error
    // (EPIPE while sending GOAWAY) is a consequence, not news.
    if (this.failure) return;
    this.failure = new BastionError(ErrorCode.CONNECTION_CLOSED, 'SPDY socket failed', undefined, { cause: err });
    this.emitError(this.failure);
  }

  // ---- session errors and teardown ------------------------------------------------------------

  /** Ends the session for a peer violation: GOAWAY(status), end the socket, destroy soon. */
  private fail(err: BastionError, status: GoAwayStatusCode = GoAwayStatus.PROTOCOL_ERROR, before: Buffer[] = []): void {
    if (this.state === 'closed' || this.failure) return;
    this.failure = err;
    this.state = 'closing';
    this.inbound.stop();
    this.gate.clear();
    const last = this.goAwaySent ? before : [...before, encodeGoAway(this.lastPeerStreamId, status)];
    this.goAwaySent = true;
    if (this.writer.isClosed) {
      this.writer.abort(last);
    } else {
      // After what is already queued (replies the GOAWAY's last-good id vouches for); a peer
      // that does not read is cut off by the close timer, armed now rather than after the flush.
      for (const frame of last) void this.writer.write(frame);
      void this.writer.end();
    }
    this.abandonStreams();
    this.armCloseTimer();
    this.emitError(err);
  }

  private teardown(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.inbound.stop();
    this.writer.close();
    this.deflater.close();
    this.abandonStreams();
    for (const pending of this.pings.values()) pending.reject(new BastionError(ErrorCode.CONNECTION_CLOSED, 'SPDY connection closed'));
    this.pings.clear();
    if (!this.socket.destroyed) this.socket.destroy();
    this.resolveClosed();
    this.emit('close', this.failure);
  }

  private sendGoAway(status: GoAwayStatusCode): void {
    if (this.goAwaySent) return;
    this.goAwaySent = true;
    void this.writer.write(encodeGoAway(this.lastPeerStreamId, status));
  }

  private abandonStreams(): void {
    for (const stream of [...this.streams.values()]) stream.abandon();
    this.streams.clear();
  }

  private armCloseTimer(): void {
    if (this.closeTimer || this.state === 'closed') return;
    this.closeTimer = setTimeout(() => this.socket.destroy(), this.limits.closeTimeoutMs);
    this.closeTimer.unref();
  }

  private closeIfIdleAfterGoAway(): void {
    if (this.goAwayReceived && this.state === 'open' && this.streams.size === 0) void this.close();
  }

  private emitError(err: BastionError): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  // ---- stream ids ---------------------------------------------------------------------------

  private isPeerId(id: number): boolean {
    return id % 2 === (this.role === 'server' ? 1 : 0);
  }

  /** A stream id that was opened at some point (so a late frame for it is a race, not an attack). */
  private wasOpened(id: number): boolean {
    return this.isPeerId(id) ? id <= this.lastPeerStreamId : id < this.nextLocalStreamId;
  }

  private createStreamHost(): StreamHost {
    return {
      sendData: async (stream, data, fin) => {
        const size = this.limits.outboundDataFrameSize;
        if (data.length === 0) {
          if (fin) await this.writer.write(encodeData(stream.id, data, true));
          return;
        }
        // One frame at a time, each after the socket took the previous one: a large write never
        // turns into a large queue of copied frames.
        for (let offset = 0; offset < data.length && !this.writer.isClosed; offset += size) {
          const end = Math.min(offset + size, data.length);
          const payload = data.subarray(offset, end);
          await this.writer.write([encodeDataHeader(stream.id, payload.length, fin && end === data.length), payload]);
        }
      },
      sendReply: (stream, headers, fin) => {
        const block = this.deflater.encode(headers);
        void this.writer.write(block.then((b) => encodeSynReply(stream.id, b, fin ? Flag.FIN : 0)));
      },
      sendReset: (stream, status) => {
        void this.writer.write(encodeRstStream(stream.id, status));
      },
      holdReading: (stream) => {
        if (this.state === 'open') this.gate.hold(stream);
      },
      releaseReading: (stream) => this.gate.release(stream),
      streamClosed: (stream) => {
        if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
        this.closeIfIdleAfterGoAway();
      },
    };
  }
}

function protocolError(message: string, details?: Record<string, unknown>): BastionError {
  return new BastionError(ErrorCode.SPDY_PROTOCOL_ERROR, message, details);
}

function asBastionError(err: Error, code: ErrorCode, message: string): BastionError {
  return err instanceof BastionError ? err : new BastionError(code, message, undefined, { cause: err });
}

