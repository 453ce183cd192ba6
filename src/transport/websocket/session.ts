// Turns one upgraded WebSocket into the transport-neutral ServerStreams: stdin/stdout/stderr
// streams, resize events, and the protocol's way of ending a session.
import { Readable, Writable, finished, type Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import { Channel } from '../../protocol/constants.js';
import type { TerminalSize } from '../../protocol/resize.js';
import type { Status } from '../../protocol/status.js';
import type { ServerStreams, StreamOptions } from '../../protocol/streams.js';
import { BastionError, ErrorCode } from '../../errors/index.js';
import { ChannelReceiver, CloseCode, type ReceiveFailure, type ReceiveResult } from './receiver.js';
import { ChannelSender, type SenderLimits } from './sender.js';
import type { WebSocketSubprotocol } from './subprotocols.js';

/** ServerStreams plus what only a WebSocket session can tell. */
export interface WebSocketServerStreams extends ServerStreams {
  /** Why the connection failed (bad client input), once it has; undefined for a clean session. */
  readonly failure: BastionError | undefined;
}

export interface SessionOptions {
  options: StreamOptions;
  /** How long a close (finish or protocol failure) waits for the client's close frame before cutting the socket. */
  closeTimeoutMs: number;
  limits?: Partial<SenderLimits>;
  /** The upgraded socket under `ws`: ended right after our close frame (see close()). */
  socket?: Duplex;
}

/** stdin buffer above which the consumer is told to slow down (push() returns false); a bit above kubectl's 32 KiB writes. */
const STDIN_HIGH_WATER_MARK = 64 * 1024;
/**
 * stdin buffer above which the socket itself is paused. Between the mark and this bound the socket
 * is still read, so ws keeps answering the client's pings (kubectl drops a session after 61 s
 * without a pong) and sees its close frame while the container does not read stdin. Past the bound
 * the client's writes block in TCP, as they would against the kubelet. The most buffered is this
 * plus what one socket read already handed to ws.
 */
export const STDIN_MAX_BUFFERED = 512 * 1024;
/** Sizes kept for the first onResize subscriber (kubectl attach sends two at once: W+1xH+1, WxH). */
const MAX_EARLY_SIZES = 8;

// ws reports receiver errors with stable `code` strings; map the ones with their own close code.
const WS_ERROR_CLOSE_CODES: Readonly<Record<string, number>> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.messageTooBig,
  WS_ERR_INVALID_UTF8: CloseCode.invalidPayload,
};

/**
 * Wires a freshly upgraded WebSocket. Sends the conventional `[0x01]` "connected" frame first, to
 * the lowest channel the client reads (stdout, else stderr, else error), as kubelet and the API
 * server do.
 */
export function createWebSocketStreams(
  ws: WebSocket,
  subprotocol: WebSocketSubprotocol,
  opts: SessionOptions,
): WebSocketServerStreams {
  return new WebSocketSession(ws, subprotocol, opts);
}

class WebSocketSession implements WebSocketServerStreams {
  readonly transport = 'websocket' as const;
  readonly protocol: WebSocketServerStreams['protocol'];
  readonly protocolName: string;
  readonly options: StreamOptions;
  readonly stdin: Readable | null;
  readonly stdout: Writable | null;
  readonly stderr: Writable | null;
  readonly closed: Promise<void>;

  private readonly sender: ChannelSender;
  private readonly receiver: ChannelReceiver;
  private readonly resizeListeners = new Set<(size: TerminalSize) => void>();
  /** Sizes that arrived while nobody was subscribed (kubectl sends the first one at once). */
  private earlySizes: TerminalSize[] = [];
  private readonly closeTimeoutMs: number;
  private readonly socket: Duplex | undefined;
  private failureError: BastionError | undefined;
  private finishing: Promise<void> | undefined;
  private closing = false;
  private connectionGone = false;
  private stdinEnded = false;
  private closeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ws: WebSocket,
    subprotocol: WebSocketSubprotocol,
    opts: SessionOptions,
  ) {
    this.protocol = subprotocol.protocol;
    this.protocolName = subprotocol.name;
    this.closeTimeoutMs = opts.closeTimeoutMs;
    this.socket = opts.socket;
    // With a TTY stderr is merged into stdout; the kubelet drops a stderr request the same way.
    this.options = { ...opts.options, stderr: opts.options.stderr && !opts.options.tty };
    this.sender = new ChannelSender(ws, subprotocol.encoding, opts.limits);
    this.receiver = new ChannelReceiver(subprotocol, { stdin: this.options.stdin, resize: this.options.tty });

    this.stdin = this.options.stdin
      ? new Readable({ highWaterMark: STDIN_HIGH_WATER_MARK, read: () => this.resumeInput() })
      : null;
    this.stdout = this.options.stdout ? this.sender.createWritable(Channel.stdout) : null;
    this.stderr = this.options.stderr ? this.sender.createWritable(Channel.stderr) : null;
    // Stream errors are also reported through `failure`, `closed` and the write callbacks; this
    // listener only keeps an unobserved 'error' (a consumer that never listened) from crashing
    // the whole bastion. Consumers' own listeners still see every error.
    for (const stream of [this.stdin, this.stdout, this.stderr]) stream?.on('error', ignore);
    // A consumer that drops stdin must not leave the socket paused (no pongs, no CLOSE, no close).
    this.stdin?.once('close', () => this.resumeInput());

    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
    ws.on('close', () => this.onClose());
    ws.on('error', (err) => this.onWsError(err));
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));

    const first = this.options.stdout ? Channel.stdout : this.options.stderr ? Channel.stderr : Channel.error;
    this.sender.sendMessage(first, Buffer.alloc(0), ignore);
  }

  get failure(): BastionError | undefined {
    return this.failureError;
  }

  onResize(listener: (size: TerminalSize) => void): () => void {
    const wrapped = (size: TerminalSize): void => listener(size);
    this.resizeListeners.add(wrapped);
    // The client's first size comes right after the upgrade, possibly before the consumer has
    // subscribed; hand what was kept to the first subscriber, on a microtask so that onResize
    // itself never calls back synchronously.
    if (this.earlySizes.length > 0) {
      const early = this.earlySizes;
      this.earlySizes = [];
      queueMicrotask(() => {
        if (!this.resizeListeners.has(wrapped)) return;
        for (const size of early) this.emitResize(wrapped, size);
      });
    }
    return () => {
      this.resizeListeners.delete(wrapped);
    };
  }

  finish(status: Status): Promise<void> {
    this.finishing ??= this.doFinish(status);
    return this.finishing;
  }

  destroy(_reason?: Error): void {
    // The reason is the consumer's own; echoing it back as a stream 'error' would only confuse it.
    this.connectionGone = true;
    this.sender.close(connectionClosed('session destroyed'));
    this.stdin?.destroy();
    this.stdout?.destroy();
    this.stderr?.destroy();
    this.ws.terminate();
  }

  // -- ending ---------------------------------------------------------------------------------

  private async doFinish(status: Status): Promise<void> {
    // Output first: everything written before finish() must precede the Status, and the client
    // treats the Status (client-node) or the close (kubectl) as the end of its stdout.
    await Promise.all([flush(this.stdout), flush(this.stderr)]);
    if (!this.connectionGone && !this.closing) {
      // v1-v3 say "success" with an empty error channel, so there may be nothing to send.
      const bytes = this.protocol.encodeError(status);
      // The close frame follows the Status in the same turn: ws writes frames to the socket in
      // order, so waiting for the Status's write to complete first would only add a turn of a
      // loop that, in a cut of many sessions, is busy ending all of them. Corked, the Status and
      // the close frame leave as one TLS write.
      const socket = this.socket;
      socket?.cork();
      try {
        if (bytes.length > 0) this.sender.sendMessage(Channel.error, bytes, ignore);
        // Only a 1000 close becomes EOF for kubectl; any other code is reported as an error.
        this.close(CloseCode.normal, '');
      } finally {
        socket?.uncork();
      }
    }
    await this.closed;
  }

  private close(code: number, reason: string): void {
    if (this.closing || this.connectionGone) return;
    this.closing = true;
    this.ws.close(code, reason);
    // Our side is done once the close frame is out: end the socket on the loop's next turn (FIN
    // after the frame) rather than when the client's answering close frame has been read, a round
    // trip through both event loops. The client still sees the close frame first and may answer
    // it (the socket is only half-closed). On the next turn, not now: a cut of 200 sessions sends
    // every Status and close frame first, then the 200 TLS shutdowns.
    const socket = this.socket;
    if (socket) setImmediate(() => socket.end());
    // A socket paused for stdin backpressure would never read the client's close frame.
    this.resumeInput();
    // ws would wait 30 s for the client's close frame; a client that never answers is cut sooner.
    this.closeTimer = setTimeout(() => this.ws.terminate(), this.closeTimeoutMs);
    this.closeTimer.unref();
  }

  private onClose(): void {
    clearTimeout(this.closeTimer);
    this.connectionGone = true;
    this.sender.close(connectionClosed('WebSocket connection closed'));
    const stdin = this.stdin;
    if (stdin === null || this.stdinEnded || stdin.destroyed) return;
    this.stdinEnded = true;
    if (this.failureError) {
      stdin.destroy(this.failureError);
    } else if (!this.protocol.supportsStreamClose || this.finishing) {
      // Without v5 CLOSE the socket going away is the only EOF a client can send (v4, v1); and
      // after our own finish() the session is over either way.
      stdin.push(null);
    } else {
      // v5 clients half-close stdin with CLOSE; losing the socket before that is an abort, not EOF.
      stdin.destroy();
    }
  }

  // -- input ----------------------------------------------------------------------------------

  private onMessage(data: RawData, isBinary: boolean): void {
    // After a close starts, whatever the client still sends can no longer be answered.
    if (this.closing || this.connectionGone) return;
    let result: ReceiveResult;
    try {
      result = this.receiver.receive(toBuffer(data), isBinary);
    } catch (err) {
      return this.fail(internalFailure('message handling failed', err));
    }
    if (!result.ok) return this.fail(result.failure);
    for (const event of result.events) {
      if (this.failureError) return;
      switch (event.kind) {
        case 'stdin':
          this.pushStdin(event.data);
          break;
        case 'stdin-end':
          if (this.stdin && !this.stdinEnded && !this.stdin.destroyed) {
            this.stdinEnded = true;
            this.stdin.push(null);
          }
          break;
        case 'resize':
          if (this.resizeListeners.size === 0) {
            this.earlySizes.push(event.size);
            if (this.earlySizes.length > MAX_EARLY_SIZES) this.earlySizes.shift();
          }
          for (const listener of this.resizeListeners) this.emitResize(listener, event.size);
          break;
      }
    }
  }

  /** A throwing listener is a consumer bug: end the session visibly (1011) rather than crash. */
  private emitResize(listener: (size: TerminalSize) => void, size: TerminalSize): void {
    try {
      listener(size);
    } catch (err) {
      this.fail(internalFailure('resize listener failed', err));
    }
  }

  private pushStdin(data: Buffer): void {
    const stdin = this.stdin;
    if (stdin === null || this.stdinEnded || stdin.destroyed) return;
    // Over the mark the consumer is asked to wait; only over the bound is the socket paused (see
    // STDIN_MAX_BUFFERED). The Readable's read() resumes it.
    if (!stdin.push(data) && stdin.readableLength >= STDIN_MAX_BUFFERED) this.ws.pause();
  }

  private resumeInput(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  private fail(failure: ReceiveFailure): void {
    if (this.failureError) return;
    this.failureError = failure.error;
    this.close(failure.closeCode, failure.closeReason);
    this.sender.close(connectionClosed('WebSocket connection failed', failure.error));
    if (this.stdin && !this.stdinEnded && !this.stdin.destroyed) {
      this.stdinEnded = true;
      this.stdin.destroy(failure.error);
    }
  }

  /** ws found a framing-level fault (too big, bad UTF-8, bad frame) and is already closing. */
  private onWsError(err: Error): void {
    if (this.failureError) return;
    const wsCode = (err as { code?: unknown }).code;
    const closeCode = (typeof wsCode === 'string' ? WS_ERROR_CLOSE_CODES[wsCode] : undefined) ?? CloseCode.protocolError;
    const error = new BastionError(
      ErrorCode.WS_BAD_MESSAGE,
      'invalid WebSocket frame',
      { closeCode, ...(typeof wsCode === 'string' ? { wsCode } : {}) },
      { cause: err },
    );
    this.closing = true; // ws sends the close frame itself
    this.fail({ closeCode, closeReason: '', error });
    this.closeTimer = setTimeout(() => this.ws.terminate(), this.closeTimeoutMs);
    this.closeTimer.unref();
  }
}

function flush(stream: Writable | null): Promise<void> {
  if (stream === null || stream.writableFinished || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    // Errors (connection gone) end the wait too; the caller checks the connection afterwards.
    finished(stream, { readable: false }, () => resolve());
    if (!stream.writableEnded) stream.end();
  });
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function connectionClosed(message: string, cause?: unknown): BastionError {
  return new BastionError(ErrorCode.CONNECTION_CLOSED, message, undefined, cause === undefined ? undefined : { cause });
}

function internalFailure(reason: string, cause: unknown): ReceiveFailure {
  return {
    closeCode: CloseCode.internalError,
    closeReason: reason,
    error: new BastionError(ErrorCode.INTERNAL, reason, { closeCode: CloseCode.internalError }, { cause }),
  };
}

function ignore(): void {}
