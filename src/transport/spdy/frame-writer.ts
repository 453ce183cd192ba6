// Ordered frame output. Frames leave in the order they were queued, even when one of them is
// still being compressed (a SYN_REPLY waiting on the deflater), and the promise of each write
// resolves only once the socket has taken it without exceeding its buffer: that is how socket
// backpressure reaches the stream writers.
import type { Duplex } from 'node:stream';
import { BastionError, ErrorCode } from '../../errors/index.js';

/** One frame: whole, in parts written together (a DATA header and its payload), or still being built. */
export type QueuedFrame = Buffer | readonly Buffer[] | Promise<Buffer>;

interface Item {
  frame: QueuedFrame;
  done: () => void;
}

/**
 * Queued frames beyond which the writer reports a backlog. Frames queued in answer to input
 * (PING echoes, replies, resets) would otherwise grow without bound when the peer sends but
 * does not read; the connection stops reading while backlogged.
 */
const BACKLOG_FRAMES = 64;

export class FrameWriter {
  private readonly queue: Item[] = [];
  /** Waiting for a frame being built or for the socket to drain. */
  private waiting = false;
  private closed = false;
  private endRequested: (() => void)[] | undefined;
  private backlogged = false;

  constructor(
    private readonly socket: Duplex,
    /** Building a queued frame failed (header compression). The writer is closed by then. */
    private readonly onError: (err: BastionError) => void,
    /** The queue went over (true) or back to empty (false) of its backlog mark. */
    private readonly onBacklog: (backlogged: boolean) => void = () => undefined,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** Queues a frame. Never rejects: a frame that cannot be written any more is dropped. */
  write(frame: QueuedFrame): Promise<void> {
    if (this.closed || this.endRequested) {
      // A promised frame must still be observed, or its rejection would go unhandled.
      if (isPromise(frame)) frame.catch(() => undefined);
      return Promise.resolve();
    }
    return new Promise<void>((done) => {
      this.queue.push({ frame, done });
      this.pump();
      if (!this.backlogged && this.queue.length > BACKLOG_FRAMES) this.setBacklogged(true);
    });
  }

  /** Writes everything queued, then ends the socket's writable side. */
  end(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      (this.endRequested ??= []).push(resolve);
      this.pump();
    });
  }

  /**
   * Drops whatever is still queued, writes `last` (if the socket can take it) and ends the socket.
   * For when the queue itself is broken (a frame could not be built).
   */
  abort(last: readonly Buffer[] = []): void {
    this.close();
    if (this.socketWritable()) {
      for (const frame of last) this.socket.write(frame);
      this.socket.end();
    }
  }

  /** Forgets everything queued; the socket is left alone (it is gone or being destroyed). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.backlogged) this.setBacklogged(false);
    for (const item of this.queue.splice(0)) {
      if (isPromise(item.frame)) item.frame.catch(() => undefined);
      item.done();
    }
    for (const resolve of this.endRequested?.splice(0) ?? []) resolve();
  }

  private setBacklogged(backlogged: boolean): void {
    this.backlogged = backlogged;
    this.onBacklog(backlogged);
  }

  private socketWritable(): boolean {
    return !this.socket.destroyed && !this.socket.writableEnded;
  }

  private pump(): void {
    while (!this.closed && !this.waiting) {
      const item = this.queue[0];
      if (!item) {
        if (this.backlogged) this.setBacklogged(false);
        if (this.endRequested) this.finishEnd();
        return;
      }
      if (isPromise(item.frame)) {
        this.waiting = true;
        item.frame.then(
          (buf: Buffer) => {
            item.frame = buf;
            this.waiting = false;
            this.pump();
          },
          (err: unknown) => {
            this.waiting = false;
            this.close();
            this.onError(
              err instanceof BastionError ? err : new BastionError(ErrorCode.INTERNAL, 'cannot build SPDY frame', undefined, { cause: err }),
            );
          },
        );
        return;
      }
      this.queue.shift();
      if (!this.socketWritable()) {
        this.close();
        item.done();
        return;
      }
      if (this.writeFrame(item.frame)) {
        item.done();
        continue;
      }
      this.waitForDrain(item.done);
    }
  }

  /** Writes one frame; false when the socket is over its buffer. Parts go out corked, as one writev. */
  private writeFrame(frame: Buffer | readonly Buffer[]): boolean {
    if (Buffer.isBuffer(frame)) return this.socket.write(frame);
    this.socket.cork();
    let ok = true;
    for (const part of frame) ok = this.socket.write(part);
    this.socket.uncork();
    return ok;
  }

  private waitForDrain(done: () => void): void {
    this.waiting = true;
    const resume = (): void => {
      this.socket.off('drain', resume);
      this.socket.off('close', resume);
      this.waiting = false;
      done();
      this.pump();
    };
    this.socket.on('drain', resume);
    this.socket.on('close', resume);
  }

  private finishEnd(): void {
    const waiters = this.endRequested?.splice(0) ?? [];
    this.closed = true;
    if (!this.socketWritable()) {
      for (const resolve of waiters) resolve();
      return;
    }
    let resolved = false;
    const resolveAll = (): void => {
      if (resolved) return;
      resolved = true;
      this.socket.off('close', resolveAll);
      for (const resolve of waiters) resolve();
    };
    // The end callback may never run if the socket is destroyed first; 'close' covers that.
    this.socket.once('close', resolveAll);
    this.socket.end(resolveAll);
  }
}

function isPromise(frame: QueuedFrame): frame is Promise<Buffer> {
  return !Buffer.isBuffer(frame) && !Array.isArray(frame);
}
