// One open upstream exec/attach session over SPDY/3.1, client side, as kubectl runs it: stdout and
// stderr streams into Readables (holding the socket when they are full), stdin with a real
// half-close (FIN), resize messages, and the error stream's Status as the session's end.
import { Writable } from 'node:stream';
import { encodeResize, type TerminalSize } from '../../protocol/resize.js';
import type { Status } from '../../protocol/status.js';
import type { ChannelProtocol } from '../../protocol/versions/index.js';
import type { SessionStreamType, SpdyConnection, SpdyStream } from '../../transport/spdy/index.js';
import { failureStatus, OutputStream } from './session.js';
import { MAX_ERROR_CHANNEL_BYTES, type UpstreamSession } from './types.js';

export interface SpdySessionConfig {
  /** The negotiated version (what the error stream carries, whether resize exists). */
  channel: ChannelProtocol;
  /** What `protocol` reports, e.g. 'v4.channel.k8s.io over SPDY/3.1'. */
  label: string;
  /** 0 disables keep-alive pings. */
  keepAliveMs: number;
  closeTimeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** The label of a SPDY session's protocol: the channel version and the transport it rides on. */
export function spdyProtocolLabel(name: string): string {
  return `${name} over SPDY/3.1`;
}

export class SpdyUpstreamSession implements UpstreamSession {
  readonly protocol: string;
  /** A FIN on the stdin stream is the half-close, on every version. */
  readonly canHalfCloseStdin = true;
  statusFromUpstream = false;
  statusArrivedAt: number | undefined;
  readonly stdin: Writable | null;
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly status: Promise<Status>;
  readonly closed: Promise<void>;

  private readonly channel: ChannelProtocol;
  private readonly errorStream: SpdyStream;
  private readonly resizeStream: SpdyStream | undefined;
  private readonly errorChunks: Buffer[] = [];
  private errorLength = 0;
  private errorOverflow = false;
  /**
   * The error stream ended without a reset. Like client-go (which reads it to EOF), a connection
   * that ends cleanly counts too: for v1-v3 that is the "success" of an empty error stream.
   */
  private errorFinished = false;
  /** Upstream streams (error, stdout, stderr) whose end we still wait for before the session is complete. */
  private pending = new Set<SpdyStream>();
  private failure: Status | undefined;
  private destroyedByUs = false;
  private settled = false;
  private gone = false;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private lastHeard = Date.now();
  private resolveStatus!: (status: Status) => void;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = (): void => this.destroy();

  constructor(
    private readonly conn: SpdyConnection,
    streams: ReadonlyMap<SessionStreamType, SpdyStream>,
    config: SpdySessionConfig,
  ) {
    this.channel = config.channel;
    this.protocol = config.label;
    this.status = new Promise((resolve) => (this.resolveStatus = resolve));
    this.closed = conn.closed;
    this.errorStream = streams.get('error')!;
    this.resizeStream = streams.get('resize');
    const upstreamStdin = streams.get('stdin');
    this.stdout = this.output(streams.get('stdout'));
    this.stderr = this.output(streams.get('stderr'));
    this.stdin = upstreamStdin ? this.createStdin(upstreamStdin) : null;
    for (const stream of [this.stdin, this.stdout, this.stderr]) stream?.on('error', ignore);
    // Upstream never writes on stdin or resize; whatever it might send is discarded so it cannot hold the socket.
    for (const stream of [upstreamStdin, this.resizeStream]) stream?.resume();
    for (const stream of streams.values()) stream.on('error', ignore);
    this.readErrorStream();

    conn.on('error', (err) => {
      this.failure ??= failureStatus(`upstream SPDY connection failed: ${err.message}`);
    });
    conn.on('close', () => this.guard(() => this.onClose()));
    if (config.keepAliveMs > 0) {
      this.keepAliveTimer = setInterval(() => this.guard(() => this.keepAlive(config.keepAliveMs)), config.keepAliveMs);
      this.keepAliveTimer.unref();
    }
    this.signal = config.signal;
    if (this.signal?.aborted) queueMicrotask(this.onAbort);
    else this.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  resize(size: TerminalSize): void {
    const stream = this.resizeStream;
    if (!stream || this.gone || this.destroyedByUs || stream.writableEnded || stream.destroyed) return;
    if (!isUint16(size?.width) || !isUint16(size?.height)) return;
    stream.write(encodeResize(size));
  }

  destroy(): void {
    if (this.destroyedByUs) return;
    this.destroyedByUs = true;
    this.stdout.hardStop();
    this.stderr.hardStop();
    this.stdin?.destroy();
    this.stopTimers();
    this.conn.destroy();
  }

  // -- input ----------------------------------------------------------------------------------

  /** Pipes one upstream output stream into a Readable the consumer drains; absent: an empty one. */
  private output(stream: SpdyStream | undefined): OutputStream {
    const out = new OutputStream(() => stream?.isPaused() && stream.resume());
    if (!stream) {
      out.push(null);
      return out;
    }
    this.pending.add(stream);
    // A consumer that destroys an output it does not want must not leave the socket held.
    out.once('close', () => stream.resume());
    stream.on('data', (chunk: Buffer) => {
      this.heard();
      if (out.destroyed || out.readableEnded) return;
      if (!out.push(chunk)) stream.pause();
    });
    stream.once('end', () => {
      if (!out.destroyed && !out.readableEnded) out.push(null);
      this.ended(stream);
    });
    return out;
  }

  private readErrorStream(): void {
    const stream = this.errorStream;
    this.pending.add(stream);
    stream.on('data', (chunk: Buffer) => {
      this.heard();
      this.statusArrivedAt ??= Date.now();
      if (this.errorLength + chunk.length > MAX_ERROR_CHANNEL_BYTES) this.errorOverflow = true;
      else {
        this.errorChunks.push(chunk);
        this.errorLength += chunk.length;
      }
    });
    stream.once('end', () => {
      this.errorFinished = stream.reset === undefined;
      this.ended(stream);
    });
  }

  /** Once the error stream and the outputs have ended, the session is over: close as kubectl does. */
  private ended(stream: SpdyStream): void {
    this.pending.delete(stream);
    if (this.pending.size > 0 || this.settled) return;
    this.settle();
    // RST_STREAM on what is still open (stdin when never half-closed), GOAWAY, end the socket.
    void this.conn.close();
  }

  private heard(): void {
    this.lastHeard = Date.now();
  }

  private keepAlive(intervalMs: number): void {
    if (this.gone || this.destroyedByUs) return;
    // While an output is full the socket is not read, so answers cannot arrive: our wait, not upstream's silence.
    if (this.stdout.full || this.stderr.full) return this.heard();
    if (Date.now() - this.lastHeard >= 2 * intervalMs) {
      this.failure ??= failureStatus(`upstream stopped responding: nothing received for ${Math.round((Date.now() - this.lastHeard) / 1000)} s (keep-alive pings unanswered)`);
      this.conn.destroy();
      return;
    }
    this.conn.ping().then(() => this.heard(), ignore);
  }

  // -- ending ---------------------------------------------------------------------------------

  private onClose(): void {
    if (this.gone) return;
    this.gone = true;
    this.stopTimers();
    this.signal?.removeEventListener('abort', this.onAbort);
    this.stdin?.destroy();
    // Whatever is buffered is still delivered, then EOF; the reason is in `status`.
    for (const out of [this.stdout, this.stderr]) if (!out.destroyed && !out.readableEnded) out.push(null);
    this.settle();
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.resolveStatus(this.finalStatus());
  }

  private finalStatus(): Status {
    if (this.errorOverflow) return failureStatus(`upstream wrote more than ${MAX_ERROR_CHANNEL_BYTES} bytes on the error stream`);
    if (this.errorLength > 0) {
      const bytes = Buffer.concat(this.errorChunks);
      try {
        const status = this.channel.decodeError(bytes);
        this.statusFromUpstream = true;
        return status;
      } catch {
        return failureStatus(`upstream wrote an invalid Status on the error stream: ${bytes.toString('utf8').slice(0, 200)}`);
      }
    }
    // v1-v3 say "success" with an empty error stream that ended normally.
    if (this.channel.version < 4 && this.errorFinished && !this.failure && !this.destroyedByUs && !this.conn.error) {
      this.statusFromUpstream = true;
      return this.channel.decodeError(Buffer.alloc(0));
    }
    if (this.failure) return this.failure;
    if (this.destroyedByUs) return failureStatus('upstream session destroyed by kube-bastion');
    if (this.errorFinished) return failureStatus('upstream ended the session without a Status');
    return failureStatus('upstream connection lost without a Status');
  }

  private stopTimers(): void {
    clearInterval(this.keepAliveTimer);
  }

  // -- output ---------------------------------------------------------------------------------

  private createStdin(stream: SpdyStream): Writable {
    return new Writable({
      highWaterMark: stream.writableHighWaterMark,
      // A reset or gone stream drops the bytes (as the kubelet treats a cancelled stream); the
      // session's status says why.
      write: (chunk: Buffer, _encoding, cb) => {
        if (this.gone || this.destroyedByUs) return cb();
        stream.write(chunk, () => cb());
      },
      // The half-close: an empty DATA frame with FIN, which upstream turns into EOF on the process's stdin.
      final: (cb) => {
        if (!this.gone && !this.destroyedByUs) stream.end();
        cb();
      },
    });
  }

  /** Event handlers never throw: a bug here ends the session with a Failure Status instead. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.failure ??= failureStatus(`kube-bastion upstream session failed: ${(err as Error)?.message ?? String(err)}`);
      this.conn.destroy();
    }
  }
}

function isUint16(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffff;
}

function ignore(): void {}
