// One SPDY stream as a Node Duplex: the readable side carries the peer's DATA, the writable side
// sends ours. Both sides half-close independently (FIN); RST_STREAM closes both at once.
import { Duplex } from 'node:stream';
import { RstStatus } from './frames.js';
import { joinSmall } from '../coalesce.js';
import { DEFAULT_LIMITS } from './limits.js';
import { emptyHeaders, type HeaderInput, type HeaderMap } from './header-block.js';

/** What a stream needs from its connection; kept narrow so the stream cannot reach the rest. */
export interface StreamHost {
  /**
   * Sends DATA (split as needed). The first frame is queued before this returns, so frame order
   * follows call order; resolves when the socket has taken the last one.
   */
  sendData(stream: SpdyStream, data: Buffer, fin: boolean): Promise<void>;
  sendReply(stream: SpdyStream, headers: HeaderInput, fin: boolean): void;
  sendReset(stream: SpdyStream, status: number): void;
  /** The readable side is over its high-water mark: stop reading the socket. */
  holdReading(stream: SpdyStream): void;
  /** The consumer wants more: the stream no longer holds the socket. */
  releaseReading(stream: SpdyStream): void;
  /** Both sides are closed: forget the stream. */
  streamClosed(stream: SpdyStream): void;
}

export interface SpdyStreamInit {
  id: number;
  /** True for streams we opened (client role), false for the peer's. */
  local: boolean;
  /** Headers the peer sent with SYN_STREAM (peer streams); empty until SYN_REPLY for ours. */
  headers: HeaderMap;
  highWaterMark: number;
  /** The peer opened the stream UNIDIRECTIONAL: we may not send on it. */
  unidirectional?: boolean;
}

export interface SpdyStream {
  on(event: 'reset', listener: (status: number, byPeer: boolean) => void): this;
  on(event: 'reply', listener: (headers: HeaderMap) => void): this;
  on(event: 'headers', listener: (headers: HeaderMap) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'reset', listener: (status: number, byPeer: boolean) => void): this;
  once(event: 'reply', listener: (headers: HeaderMap) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class SpdyStream extends Duplex {
  readonly id: number;
  readonly local: boolean;
  private receivedHeaders: Record<string, string[]>;
  /** Peer-initiated: we sent SYN_REPLY. Local: the peer's SYN_REPLY arrived. */
  private replied: boolean;
  private remoteClosed = false;
  private localClosed = false;
  private resetStatus: number | undefined;
  private forgotten = false;

  constructor(
    private readonly host: StreamHost,
    init: SpdyStreamInit,
  ) {
    // Half-open both ways: the peer ending its side (stdin EOF) must not end ours (stdout).
    super({ allowHalfOpen: true, readableHighWaterMark: init.highWaterMark, writableHighWaterMark: init.highWaterMark });
    this.id = init.id;
    this.local = init.local;
    this.receivedHeaders = emptyHeaders();
    this.mergeHeaders(init.headers);
    this.replied = false;
    if (init.unidirectional) {
      // Nothing may be sent, not even SYN_REPLY (SPDY/3 §2.3.2).
      this.replied = true;
      this.localClosed = true;
    }
  }

  /** Headers from the peer: SYN_STREAM (or SYN_REPLY for our streams) plus any HEADERS frames. */
  get headers(): HeaderMap {
    return this.receivedHeaders;
  }

  /** The RST_STREAM status that ended the stream, by either side. */
  get reset(): number | undefined {
    return this.resetStatus;
  }

  /** True once the peer can no longer send (FIN or RST). */
  get remoteEnded(): boolean {
    return this.remoteClosed;
  }

  /** True once we can no longer send (FIN sent, RST, or a unidirectional peer stream). */
  get localEnded(): boolean {
    return this.localClosed;
  }

  /** Answers a peer's SYN_STREAM. Writing without replying first replies with no headers. */
  reply(headers: HeaderInput = {}, options: { fin?: boolean } = {}): void {
    if (this.local || this.replied || this.localClosed) return;
    this.replied = true;
    const fin = options.fin === true;
    this.host.sendReply(this, headers, fin);
    if (fin) {
      this.localClosed = true;
      this.maybeClosed();
    }
  }

  /** Abandons the stream: RST_STREAM to the peer, both sides closed, pending writes dropped. */
  cancel(status: number = RstStatus.CANCEL): void {
    if (this.resetStatus !== undefined || (this.localClosed && this.remoteClosed)) return;
    this.host.sendReset(this, status);
    this.applyReset(status, false);
  }

  // ---- called by the connection -------------------------------------------------------------

  /** @internal DATA from the peer; the connection has checked the stream may receive. */
  receiveData(data: Buffer, fin: boolean): void {
    // push() may run the consumer synchronously, and the consumer may end the session
    // (e.g. bad resize data): a forgotten stream must not hold the socket any more.
    if (data.length > 0 && !this.push(data) && !this.forgotten) this.host.holdReading(this);
    if (fin) this.onRemoteFin();
  }

  /** @internal */
  receiveReply(headers: HeaderMap, fin: boolean): void {
    this.replied = true;
    this.mergeHeaders(headers);
    this.emit('reply', headers);
    if (fin) this.onRemoteFin();
  }

  /** @internal */
  receiveHeaders(headers: HeaderMap, fin: boolean): void {
    this.mergeHeaders(headers);
    this.emit('headers', headers);
    if (fin) this.onRemoteFin();
  }

  /** @internal RST_STREAM from the peer. */
  receiveReset(status: number): void {
    this.applyReset(status, true);
  }

  /** @internal Whether the peer may still send DATA/HEADERS on this stream. */
  get acceptsData(): boolean {
    return !this.remoteClosed && (!this.local || this.replied);
  }

  /** @internal Whether a SYN_REPLY from the peer is expected. */
  get awaitingReply(): boolean {
    return this.local && !this.replied && this.resetStatus === undefined;
  }

  /**
   * @internal The connection is gone. Data already received stays readable and then ends;
   * anything written from now on is dropped (the consumer learns of the end from the connection).
   */
  abandon(): void {
    this.localClosed = true;
    if (!this.remoteClosed) {
      this.remoteClosed = true;
      this.push(null);
    }
    this.forget();
    if (this.readableLength === 0) this.destroy();
    else this.once('end', () => this.destroy());
  }

  // ---- Duplex -------------------------------------------------------------------------------

  override _read(): void {
    this.host.releaseReading(this);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.localClosed) {
      // Reset by the peer or connection gone: dropping is how the kubelet treats a cancelled stream.
      callback();
      return;
    }
    this.reply();
    this.host.sendData(this, chunk, false).then(() => callback());
  }

  /** Chunks queued while a write was in flight: small ones go out joined, as one DATA frame. */
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    if (this.localClosed) {
      callback();
      return;
    }
    this.reply();
    const joined = joinSmall(
      chunks.map((c) => c.chunk),
      // Up to one DATA frame's worth (a connection may split larger ones).
      DEFAULT_LIMITS.outboundDataFrameSize,
    );
    // One after the other: sendData frames a payload as the socket takes it, so two at once would interleave.
    void (async () => {
      for (const data of joined) {
        if (this.localClosed) break;
        await this.host.sendData(this, data, false);
      }
    })().then(() => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.localClosed) {
      callback();
      return;
    }
    this.reply();
    this.localClosed = true;
    // The FIN is queued synchronously, so the stream is closed on our side from here on.
    const sent = this.host.sendData(this, Buffer.alloc(0), true);
    this.maybeClosed();
    sent.then(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Destroyed by the user with both sides open: tell the peer, as spdystream's Reset does.
    if (!this.forgotten && this.resetStatus === undefined && !(this.localClosed && this.remoteClosed)) {
      this.host.sendReset(this, RstStatus.CANCEL);
      this.resetStatus = RstStatus.CANCEL;
      this.localClosed = true;
      this.remoteClosed = true;
    }
    this.forget();
    callback(error);
  }

  // ---- internals ----------------------------------------------------------------------------

  private mergeHeaders(headers: HeaderMap): void {
    for (const [name, values] of Object.entries(headers)) this.receivedHeaders[name] = [...values];
  }

  private onRemoteFin(): void {
    if (this.remoteClosed) return;
    this.remoteClosed = true;
    this.push(null);
    // Nothing more can arrive, so a full buffer no longer needs to hold the socket (and _read
    // is never called again once the readable side has ended).
    this.host.releaseReading(this);
    this.maybeClosed();
  }

  private applyReset(status: number, byPeer: boolean): void {
    if (this.resetStatus !== undefined) return;
    this.resetStatus = status;
    this.localClosed = true;
    if (!this.remoteClosed) {
      this.remoteClosed = true;
      // A reset ends reading like a FIN does (kubectl treats both as EOF); data already
      // received stays readable.
      this.push(null);
      this.host.releaseReading(this);
    }
    this.emit('reset', status, byPeer);
    this.maybeClosed();
  }

  private maybeClosed(): void {
    if (this.localClosed && this.remoteClosed) this.forget();
  }

  private forget(): void {
    if (this.forgotten) return;
    this.forgotten = true;
    this.host.releaseReading(this);
    this.host.streamClosed(this);
  }
}
