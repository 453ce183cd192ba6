// Encodes server writes into channel messages, in bounded sizes and at the pace the socket drains.
import { Writable } from 'node:stream';
import { BastionError, ErrorCode } from '../../errors/index.js';
import { encodeMessage, type Encoding } from './subprotocols.js';
import { joinSmall } from '../coalesce.js';

/** The part of a ws WebSocket the sender needs (kept narrow so tests can fake it). */
export interface MessageSink {
  /** Bytes accepted by send() but not yet handed to the kernel. */
  readonly bufferedAmount: number;
  send(data: Buffer | string, options: { binary: boolean }, cb: (err?: Error) => void): void;
}

/** kubectl reads with 32 KiB (+1 KiB) buffers; larger messages buy nothing and cost latency. */
export const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024;
/** Above this much unsent data a writer waits for the socket before sending its next piece. */
export const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024;

export interface SenderLimits {
  maxMessageBytes: number;
  maxBufferedBytes: number;
}

type Callback = (err?: Error) => void;

export class ChannelSender {
  private readonly binary: boolean;
  private readonly limits: SenderLimits;
  private readonly pending = new Set<Callback>();
  private failure: BastionError | undefined;

  constructor(
    private readonly sink: MessageSink,
    private readonly encoding: Encoding,
    limits: Partial<SenderLimits> = {},
  ) {
    this.binary = encoding === 'binary';
    this.limits = {
      maxMessageBytes: limits.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      maxBufferedBytes: limits.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
    };
  }

  /**
   * Sends `payload` as exactly one message. Used for the initial empty frame and for the Status:
   * client-node JSON-parses each channel-3 message on its own, so the Status must not be split.
   */
  sendMessage(channel: number, payload: Buffer, cb: Callback): void {
    const done = this.track(channel, cb);
    if (this.failure) return done(this.failure);
    this.sink.send(encodeMessage(this.encoding, channel, payload), { binary: this.binary }, done);
  }

  /**
   * Sends `payload` split into messages of at most maxMessageBytes. `cb` fires once the last
   * message is handed to ws while the socket holds less than maxBufferedBytes unsent, else once it
   * has been written to the socket: a Writable built on this has real backpressure at that bound,
   * without waiting a turn of the loop per chunk (a TLS socket completes every write a turn later;
   * a session ending behind a queue of such waits kept its client waiting for its Status).
   * Between pieces the writer waits for the socket whenever bufferedAmount is above the bound, so
   * one large write never queues more than about maxBufferedBytes + one message.
   */
  write(channel: number, payload: Buffer, cb: Callback): void {
    const done = this.track(channel, cb);
    if (payload.length === 0) return process.nextTick(done);
    let offset = 0;
    const next = (err?: Error): void => {
      if (err) return done(err);
      while (!this.failure) {
        const end = Math.min(offset + this.limits.maxMessageBytes, payload.length);
        const message = encodeMessage(this.encoding, channel, payload.subarray(offset, end));
        offset = end;
        if (offset >= payload.length) {
          if (this.sink.bufferedAmount + message.length >= this.limits.maxBufferedBytes) return this.sink.send(message, { binary: this.binary }, done);
          // A failure after this still fails the session (close() fails every later write).
          this.sink.send(message, { binary: this.binary }, (e) => e && done(e));
          return process.nextTick(done);
        }
        if (this.sink.bufferedAmount + message.length >= this.limits.maxBufferedBytes) {
          this.sink.send(message, { binary: this.binary }, next);
          return;
        }
        // Completion of a middle piece is implied by the last piece's (one socket, in order);
        // only its failure matters.
        this.sink.send(message, { binary: this.binary }, (e) => e && done(e));
      }
      done(this.failure);
    };
    next();
  }

  /**
   * write() for the chunks a Writable queued while its previous write was in flight: small ones
   * are joined into one payload, so a peer (or a loop) that fell behind costs one message and one
   * socket write per batch instead of one per chunk. Large chunks go on as they are (no copy).
   */
  writeQueued(channel: number, chunks: readonly Buffer[], cb: Callback): void {
    const joined = joinSmall(chunks, this.limits.maxMessageBytes);
    let i = 0;
    const next = (err?: Error | null): void => {
      if (err) return cb(err);
      if (i >= joined.length) return cb();
      this.write(channel, joined[i++]!, next);
    };
    next();
  }

  /** A Writable for one output channel; its write callback fires when the data reached the socket. */
  createWritable(channel: number): Writable {
    return new Writable({
      highWaterMark: this.limits.maxMessageBytes,
      write: (chunk: Buffer, _encoding, cb) => this.write(channel, chunk, cb),
      writev: (chunks, cb) => this.writeQueued(channel, chunks.map((c) => c.chunk as Buffer), cb),
    });
  }

  /** The connection is gone: every pending and later send fails with `error`. */
  close(error: BastionError): void {
    this.failure ??= error;
    for (const done of [...this.pending]) done(this.failure);
  }

  /** Wraps `cb` so it runs once, is failed by close(), and reports errors as BastionErrors. */
  private track(channel: number, cb: Callback): Callback {
    let called = false;
    const done: Callback = (err) => {
      if (called) return;
      called = true;
      this.pending.delete(done);
      if (err === undefined || err === null) return cb();
      cb(
        err instanceof BastionError
          ? err
          : new BastionError(ErrorCode.CONNECTION_CLOSED, 'WebSocket send failed', { channel }, { cause: err }),
      );
    };
    this.pending.add(done);
    return done;
  }
}

