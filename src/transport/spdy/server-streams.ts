// The transport-neutral ServerStreams over an accepted SPDY remote-command session.
import type { Readable, Writable } from 'node:stream';
import { BastionError, ErrorCode } from '../../errors/index.js';
import { ResizeDecoder, type TerminalSize } from '../../protocol/resize.js';
import type { Status } from '../../protocol/status.js';
import type { ServerStreams, StreamOptions } from '../../protocol/streams.js';
import type { ChannelProtocol } from '../../protocol/versions/index.js';
import { GoAwayStatus } from './frames.js';
import type { SpdyConnection } from './connection.js';
import type { SessionStreamType } from './stream-setup.js';
import type { SpdyStream } from './stream.js';

export class SpdyServerStreams implements ServerStreams {
  readonly transport = 'spdy' as const;
  readonly stdin: Readable | null;
  readonly stdout: Writable | null;
  readonly stderr: Writable | null;
  readonly closed: Promise<void>;

  private readonly errorStream: SpdyStream;
  private readonly resizeListeners = new Set<(size: TerminalSize) => void>();
  /** The latest size that arrived while nobody listened (the first one comes right after setup). */
  private unheardSize: TerminalSize | undefined;
  private finishing: Promise<void> | undefined;

  constructor(
    private readonly conn: SpdyConnection,
    readonly protocol: ChannelProtocol,
    readonly protocolName: string,
    readonly options: StreamOptions,
    streams: ReadonlyMap<SessionStreamType, SpdyStream>,
  ) {
    this.errorStream = streams.get('error')!;
    const stdout = streams.get('stdout');
    const stderr = streams.get('stderr');
    this.stdin = streams.get('stdin') ?? null;
    this.stdout = stdout ?? null;
    this.stderr = stderr ?? null;
    this.closed = conn.closed;
    // Nobody reads what a client might send on the output streams; discard it so it can never
    // fill a buffer and stall the socket.
    for (const stream of [this.errorStream, stdout, stderr]) stream?.resume();
    const resize = streams.get('resize');
    if (resize) this.readResizes(resize);
  }

  /** Why the session ended abnormally (protocol error, bad resize, socket failure), if it did. */
  get error(): BastionError | undefined {
    return this.conn.error;
  }

  onResize(listener: (size: TerminalSize) => void): () => void {
    this.resizeListeners.add(listener);
    const pending = this.unheardSize;
    if (pending) {
      // Delivered at once, so it cannot be overtaken by a later size arriving from the socket.
      this.unheardSize = undefined;
      this.deliver(listener, pending);
    }
    return () => {
      this.resizeListeners.delete(listener);
    };
  }

  finish(status: Status): Promise<void> {
    this.finishing ??= this.finishSession(status);
    return this.finishing;
  }

  destroy(reason?: Error): void {
    this.conn.destroy(reason);
  }

  private async finishSession(status: Status): Promise<void> {
    if (!this.conn.isOpen) return;
    // kubectl waits for EOF on stdout and stderr, then reads the error stream to EOF.
    // In a fixed order, so the wire is deterministic.
    await endWritable(this.stdout);
    await endWritable(this.stderr);
    const payload = this.protocol.encodeError(status);
    if (payload.length > 0 && this.conn.isOpen) this.errorStream.write(payload);
    await endWritable(this.errorStream);
    // Then as the kubelet: reset what is still open, GOAWAY, close.
    await this.conn.close();
  }

  private readResizes(resize: SpdyStream): void {
    const decoder = new ResizeDecoder();
    resize.on('data', (chunk: Buffer) => {
      let sizes: TerminalSize[];
      try {
        sizes = decoder.push(chunk);
      } catch (err) {
        this.conn.abort(new BastionError(ErrorCode.BAD_RESIZE, 'bad terminal resize message', undefined, { cause: err }));
        return;
      }
      for (const size of sizes) {
        if (this.resizeListeners.size === 0) this.unheardSize = size;
        for (const listener of [...this.resizeListeners]) this.deliver(listener, size);
      }
    });
  }

  private deliver(listener: (size: TerminalSize) => void, size: TerminalSize): void {
    try {
      listener(size);
    } catch (err) {
      // A consumer bug must not unwind into the socket's data handler.
      this.conn.abort(new BastionError(ErrorCode.INTERNAL, 'resize listener failed', undefined, { cause: err }), GoAwayStatus.INTERNAL_ERROR);
    }
  }
}

/** Ends a writable and resolves when it has flushed (or is gone). */
function endWritable(stream: Writable | null): Promise<void> {
  if (!stream || stream.writableFinished || stream.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      stream.off('finish', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('finish', done);
    stream.on('close', done);
    if (!stream.writableEnded) stream.end();
  });
}
