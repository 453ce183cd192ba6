// One open upstream WebSocket exec/attach session, client side: demultiplexes upstream's channel
// messages into stdout/stderr Readables (pausing the socket when they are full), sends stdin,
// resize and the v5 CLOSE, and turns however the connection ends into one Status.
import { Readable, Writable } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import { Channel } from '../../protocol/constants.js';
import { encodeResize, type TerminalSize } from '../../protocol/resize.js';
import type { Status } from '../../protocol/status.js';
import { BastionError, ErrorCode, statusFor } from '../../errors/index.js';
import { CloseCode } from '../../transport/websocket/receiver.js';
import { ChannelSender, DEFAULT_MAX_MESSAGE_BYTES } from '../../transport/websocket/sender.js';
import { channelOf, decodeBase64Strict, type WebSocketSubprotocol } from '../../transport/websocket/subprotocols.js';
import { MAX_ERROR_CHANNEL_BYTES, OUTPUT_HIGH_WATER_MARK, type UpstreamSession } from './types.js';

export interface SessionConfig {
  subprotocol: WebSocketSubprotocol;
  /** The request asked for stdin (otherwise `stdin` is null). */
  stdin: boolean;
  /** 0 disables keep-alive pings. */
  keepAliveMs: number;
  closeTimeoutMs: number;
  signal?: AbortSignal | undefined;
}

/**
 * A Readable that can be stopped hard: after hardStop() it emits no further 'data', even for
 * chunks already in its buffer (Readable.destroy() alone still lets a running flow loop deliver
 * them).
 */
export class OutputStream extends Readable {
  private stopped = false;

  constructor(private readonly onRead: () => void) {
    super({ highWaterMark: OUTPUT_HIGH_WATER_MARK });
  }

  override _read(): void {
    this.onRead();
  }

  /** No room left: upstream must wait (a destroyed stream never blocks; its data is dropped). */
  get full(): boolean {
    return !this.destroyed && this.readableLength >= this.readableHighWaterMark;
  }

  hardStop(): void {
    this.stopped = true;
    this.destroy();
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (this.stopped && event === 'data') return false;
    return super.emit(event, ...args);
  }
}

export class WebSocketUpstreamSession implements UpstreamSession {
  readonly protocol: string;
  readonly canHalfCloseStdin: boolean;
  statusFromUpstream = false;
  statusArrivedAt: number | undefined;
  readonly stdin: Writable | null;
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly status: Promise<Status>;
  readonly closed: Promise<void>;

  private readonly subprotocol: WebSocketSubprotocol;
  private readonly sender: ChannelSender;
  private readonly closeTimeoutMs: number;
  private readonly errorChunks: Buffer[] = [];
  private errorLength = 0;
  private errorOverflow = false;
  /** The first abnormal end we noticed ourselves (protocol violation, dead peer, ws error). */
  private failure: Status | undefined;
  private destroyedByUs = false;
  private closing = false;
  private gone = false;
  private closeTimer: NodeJS.Timeout | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private lastHeard = Date.now();
  private resumeScheduled = false;
  private resolveStatus!: (status: Status) => void;
  private resolveClosed!: () => void;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = (): void => this.destroy();

  constructor(
    private readonly ws: WebSocket,
    config: SessionConfig,
  ) {
    this.subprotocol = config.subprotocol;
    this.protocol = config.subprotocol.name;
    this.canHalfCloseStdin = config.subprotocol.protocol.supportsStreamClose;
    this.closeTimeoutMs = config.closeTimeoutMs;
    this.status = new Promise((resolve) => (this.resolveStatus = resolve));
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.sender = new ChannelSender(ws, config.subprotocol.encoding);

    // Readable calls _read() before it hands out the data that made it full, so the check runs
    // on the next tick, once the consumer's read has actually emptied the buffer.
    const resume = (): void => this.scheduleResume();
    this.stdout = new OutputStream(resume);
    this.stderr = new OutputStream(resume);
    // A consumer that destroys an output it does not want must not leave the socket paused.
    this.stdout.once('close', resume);
    this.stderr.once('close', resume);
    this.stdin = config.stdin ? this.createStdin() : null;
    // Unobserved errors must never crash the bastion; consumers' own listeners still see them.
    for (const stream of [this.stdin, this.stdout, this.stderr]) stream?.on('error', ignore);

    ws.on('message', (data, isBinary) => this.guard(() => this.onMessage(data, isBinary)));
    ws.on('close', (code, reason) => this.guard(() => this.onClose(code, reason)));
    ws.on('error', (err) => this.guard(() => this.onError(err)));
    ws.on('pong', () => this.heard());
    ws.on('ping', () => this.heard());

    if (config.keepAliveMs > 0) {
      this.keepAliveTimer = setInterval(() => this.guard(() => this.keepAlive(config.keepAliveMs)), config.keepAliveMs);
      this.keepAliveTimer.unref();
    }
    this.signal = config.signal;
    if (this.signal?.aborted) queueMicrotask(this.onAbort);
    else this.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  resize(size: TerminalSize): void {
    if (this.gone || this.closing || this.destroyedByUs || !this.subprotocol.protocol.supportsResize) return;
    if (!isUint16(size?.width) || !isUint16(size?.height)) return;
    this.sender.sendMessage(Channel.resize, encodeResize(size), ignore);
  }

  destroy(): void {
    if (this.destroyedByUs) return;
    this.destroyedByUs = true;
    this.stdout.hardStop();
    this.stderr.hardStop();
    this.stdin?.destroy();
    this.sender.close(connectionClosed('upstream session destroyed'));
    this.stopTimers();
    this.ws.terminate();
  }

  // -- input ----------------------------------------------------------------------------------

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.destroyedByUs || this.gone || this.failure) return;
    this.heard();
    const message = toBuffer(data);
    // An empty message carries no channel byte; nothing to do.
    if (message.length === 0) return;
    const { encoding, name } = this.subprotocol;
    if (isBinary !== (encoding === 'binary')) {
      const kind = isBinary ? 'binary' : 'text';
      return this.fail(CloseCode.unsupportedData, `upstream sent a ${kind} message on ${name || 'channel.k8s.io'}`);
    }
    const channel = channelOf(encoding, message);
    // Upstream writes only stdout, stderr and error; anything else (stdin, resize, a stray 255)
    // is discarded unread, as client-go's demultiplexer does.
    if (channel !== Channel.stdout && channel !== Channel.stderr && channel !== Channel.error) return;
    let payload = message.subarray(1);
    if (encoding === 'base64') {
      const decoded = decodeBase64Strict(payload);
      if (decoded === undefined) return this.fail(CloseCode.invalidPayload, `upstream sent invalid base64 on channel ${channel}`);
      payload = decoded;
    }
    // The initial `[0x01]` "connected" frame, or an empty write: nothing to deliver.
    if (payload.length === 0) return;
    if (channel === Channel.error) return this.collectError(payload);
    this.deliver(channel === Channel.stdout ? this.stdout : this.stderr, payload);
  }

  private deliver(stream: OutputStream, payload: Buffer): void {
    if (stream.destroyed || stream.readableEnded) return;
    // push() copies nothing; the ws message buffer is ours.
    if (!stream.push(payload) && !this.ws.isPaused) this.ws.pause();
  }

  private scheduleResume(): void {
    if (this.resumeScheduled) return;
    this.resumeScheduled = true;
    process.nextTick(() => {
      this.resumeScheduled = false;
      this.guard(() => this.maybeResume());
    });
  }

  private maybeResume(): void {
    if (this.gone || !this.ws.isPaused || this.stdout.full || this.stderr.full) return;
    // Time spent paused is ours, not upstream's silence.
    this.heard();
    this.ws.resume();
  }

  private collectError(payload: Buffer): void {
    this.statusArrivedAt ??= Date.now();
    if (this.errorLength + payload.length > MAX_ERROR_CHANNEL_BYTES) this.errorOverflow = true;
    else {
      this.errorChunks.push(payload);
      this.errorLength += payload.length;
    }
    // Everything upstream wrote before its Status has arrived by now; a server that then fails to
    // close is cut after a grace period instead of holding the session open.
    this.armCloseTimer();
  }

  private heard(): void {
    this.lastHeard = Date.now();
  }

  // -- ending ---------------------------------------------------------------------------------

  /** A protocol violation by upstream: stop reading, close with `code`, remember why. */
  private fail(code: number, message: string): void {
    this.failure ??= failureStatus(message);
    if (this.closing || this.gone) return;
    this.closing = true;
    // RFC 6455 caps the reason at 123 bytes; the full text is in the Status.
    this.ws.close(code, 'kube-bastion: protocol violation by upstream');
    // A paused socket would never read upstream's answering close frame.
    if (this.ws.isPaused) this.ws.resume();
    this.armCloseTimer();
  }

  private onError(err: Error): void {
    // ws closes the connection itself after an error; 'close' follows.
    const wsCode = (err as { code?: unknown }).code;
    this.failure ??= failureStatus(`upstream WebSocket error: ${err.message}${typeof wsCode === 'string' ? ` (${wsCode})` : ''}`);
    this.armCloseTimer();
  }

  private keepAlive(intervalMs: number): void {
    if (this.gone || this.closing || this.destroyedByUs) return;
    if (this.ws.isPaused) {
      this.heard();
      return;
    }
    if (Date.now() - this.lastHeard >= 2 * intervalMs) {
      this.failure ??= failureStatus(`upstream stopped responding: nothing received for ${Math.round((Date.now() - this.lastHeard) / 1000)} s (keep-alive pings unanswered)`);
      this.ws.terminate();
      return;
    }
    this.ws.ping();
  }

  private armCloseTimer(): void {
    if (this.closeTimer || this.gone) return;
    this.closeTimer = setTimeout(() => this.ws.terminate(), this.closeTimeoutMs);
    this.closeTimer.unref();
  }

  private stopTimers(): void {
    clearTimeout(this.closeTimer);
    clearInterval(this.keepAliveTimer);
  }

  private onClose(code: number, reason: Buffer): void {
    if (this.gone) return;
    this.gone = true;
    this.stopTimers();
    this.signal?.removeEventListener('abort', this.onAbort);
    // stdin first (destroyed without an error), so the failing sends below reach no consumer.
    this.stdin?.destroy();
    this.sender.close(connectionClosed('upstream WebSocket closed'));
    // Whatever is buffered is still delivered, then EOF; the reason is in `status`.
    if (!this.stdout.destroyed) this.stdout.push(null);
    if (!this.stderr.destroyed) this.stderr.push(null);
    this.resolveStatus(this.finalStatus(code, reason.toString('utf8')));
    this.resolveClosed();
  }

  private finalStatus(code: number, reason: string): Status {
    const { protocol } = this.subprotocol;
    if (this.errorOverflow) return this.failure ?? failureStatus(`upstream wrote more than ${MAX_ERROR_CHANNEL_BYTES} bytes on the error channel`);
    if (this.errorLength > 0) {
      const bytes = Buffer.concat(this.errorChunks);
      try {
        const status = protocol.decodeError(bytes);
        this.statusFromUpstream = true;
        return status;
      } catch {
        return failureStatus(`upstream wrote an invalid Status on the error channel: ${bytes.toString('utf8').slice(0, 200)}`);
      }
    }
    if (this.failure) return this.failure;
    if (this.destroyedByUs) return failureStatus('upstream session destroyed by kube-bastion');
    const how = `close code ${code}${reason ? ` "${reason}"` : ''}`;
    // v1-v3 say "success" with an empty error channel and a clean close.
    if (protocol.version < 4 && code === CloseCode.normal) {
      this.statusFromUpstream = true;
      return protocol.decodeError(Buffer.alloc(0));
    }
    if (code === CloseCode.normal) return failureStatus(`upstream closed the session without a Status (${how})`);
    return failureStatus(`upstream connection lost without a Status (${how})`);
  }

  // -- output ---------------------------------------------------------------------------------

  private createStdin(): Writable {
    const halfClose = this.canHalfCloseStdin;
    return new Writable({
      highWaterMark: DEFAULT_MAX_MESSAGE_BYTES,
      write: (chunk: Buffer, _encoding, cb) => this.sender.write(Channel.stdin, chunk, cb),
      writev: (chunks, cb) => this.sender.writeQueued(Channel.stdin, chunks.map((c) => c.chunk as Buffer), cb),
      final: (cb) => {
        // v4 and older cannot half-close: upstream stdin stays open until the session closes.
        if (!halfClose || this.gone || this.destroyedByUs) return cb();
        this.sender.sendMessage(Channel.close, Buffer.from([Channel.stdin]), cb);
      },
    });
  }

  /** Event handlers never throw: a bug here ends the session with a Failure Status instead. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.failure ??= failureStatus(`kube-bastion upstream session failed: ${(err as Error)?.message ?? String(err)}`);
      try {
        this.ws.terminate();
      } catch {
        // nothing more to do
      }
    }
  }
}

/** The Failure Status for an end we detected ourselves (what kubectl prints as the error). */
export function failureStatus(message: string): Status {
  return statusFor('INTERNAL', message);
}

function isUint16(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffff;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function connectionClosed(message: string): BastionError {
  return new BastionError(ErrorCode.CONNECTION_CLOSED, message);
}

function ignore(): void {}
