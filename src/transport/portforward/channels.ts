// The older WebSocket port-forward protocol (kubelet portforward/websocket.go), which
// @kubernetes/client-node and browsers speak: subprotocol v4.channel.k8s.io (binary),
// v4.base64.channel.k8s.io (text) or none (binary); the ports come in the query; for port i,
// channel 2i carries data both ways and 2i+1 errors from the server; the first message on every
// channel is the port as uint16 little-endian. One connection per port per WebSocket, all opened
// with the WebSocket; the session is over when every one has ended.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Duplex as DuplexStream } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { channelOf, decodeBase64Strict, encodeMessage, type Encoding } from '../websocket/subprotocols.js';
import { portProblem, type ForwardStream, type PortForwardServer } from './types.js';

export const CHANNEL_SUBPROTOCOLS: ReadonlyMap<string, Encoding> = new Map([
  ['v4.channel.k8s.io', 'binary'],
  ['v4.base64.channel.k8s.io', 'base64'],
]);

/** Above this many unsent bytes a data channel's writer waits for the WebSocket to drain. */
const MAX_BUFFERED = 1024 * 1024;
/** How long a closing WebSocket waits for the client's close frame. */
const CLOSE_TIMEOUT_MS = 5_000;

/**
 * The ports to forward, from `ports` (the API's PodPortForwardOptions) or `port` (the kubelet's
 * name): repeated and/or comma-separated. Returns the kubelet's refusal text on a bad value.
 */
export function parsePorts(params: URLSearchParams): number[] | string {
  const values = [...params.getAll('ports'), ...params.getAll('port')];
  if (values.length === 0) return 'query parameter "port" is required';
  const ports: number[] = [];
  for (const text of values.flatMap((v) => v.split(','))) {
    const problem = portProblem(text);
    if (problem !== undefined) return problem;
    ports.push(Number(text));
  }
  return ports;
}

/**
 * The subprotocol the kubelet picks: the client's first offer it supports; none offered means
 * binary framing with nothing echoed. Undefined when nothing offered is supported.
 */
export function chooseChannelProtocol(offered: readonly string[]): { name: string; encoding: Encoding } | undefined {
  if (offered.length === 0) return { name: '', encoding: 'binary' };
  for (const name of offered) {
    const encoding = CHANNEL_SUBPROTOCOLS.get(name);
    if (encoding) return { name, encoding };
  }
  return undefined;
}

/** Completes the handshake; undefined when ws refused it (the socket is gone). */
export function acceptChannels(req: IncomingMessage, socket: Duplex, head: Buffer, protocolName: string): Promise<WebSocket | undefined> {
  const server = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: 4 * 1024 * 1024,
    handleProtocols: () => protocolName || false,
  });
  return new Promise((resolve) => {
    server.on('wsClientError', () => {
      socket.destroy();
      resolve(undefined);
    });
    server.handleUpgrade(req, socket, head, (ws) => resolve(ws));
  });
}

export class ChannelPortForwardServer implements PortForwardServer {
  readonly transport = 'websocket' as const;
  readonly form = 'channels' as const;
  readonly closed: Promise<void>;
  failure: Error | undefined;
  private readonly streams: ChannelDataStream[];
  private readonly forwards: ForwardStream[];
  private delivered = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly encoding: Encoding,
    readonly ports: readonly number[],
    readonly protocolName: string,
  ) {
    this.streams = ports.map((_port, i) => new ChannelDataStream(i * 2, (channel, payload, cb) => this.send(channel, payload, cb), ws));
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
    ws.on('message', (raw: RawData, isBinary: boolean) => this.onMessage(raw, isBinary));
    ws.on('close', () => this.streams.forEach((s) => s.remoteGone()));
    ws.on('error', (err) => (this.failure ??= err));
    // The port prefix on every channel comes first, as the kubelet sends it.
    ports.forEach((port, i) => {
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16LE(port);
      this.send(i * 2, prefix);
      this.send(i * 2 + 1, prefix);
    });
    this.forwards = ports.map((port, i) => {
      let answered = false;
      const stream = this.streams[i]!;
      return {
        port,
        requestId: String(i),
        data: stream,
        fail: (message: string) => {
          if (answered) return;
          answered = true;
          this.send(i * 2 + 1, Buffer.from(message, 'utf8'));
          stream.finished();
          this.maybeDone();
        },
        done: () => {
          if (answered) return;
          answered = true;
          stream.finished();
          this.maybeDone();
        },
      };
    });
  }

  onConnection(listener: (stream: ForwardStream) => void): void {
    if (this.delivered) return;
    this.delivered = true;
    for (const forward of this.forwards) listener(forward);
  }

  close(): Promise<void> {
    if (this.ws.readyState === this.ws.OPEN) {
      this.ws.close(1000);
      setTimeout(() => this.ws.terminate(), CLOSE_TIMEOUT_MS).unref();
    }
    return this.closed;
  }

  destroy(): void {
    this.ws.terminate();
  }

  private send(channel: number, payload: Buffer, cb?: (err?: Error) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) return cb?.(new Error('WebSocket closed'));
    this.ws.send(encodeMessage(this.encoding, channel, payload), { binary: this.encoding === 'binary' }, cb);
  }

  private onMessage(raw: RawData, isBinary: boolean): void {
    const message = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw as Buffer);
    if (message.length === 0 || isBinary !== (this.encoding === 'binary')) return;
    const channel = channelOf(this.encoding, message);
    // Only data channels are read; anything else is dropped, as the kubelet's wsstream does.
    if (channel % 2 !== 0) return;
    const stream = this.streams[channel / 2];
    if (!stream) return;
    const payload = this.encoding === 'base64' ? decodeBase64Strict(message.subarray(1)) : message.subarray(1);
    if (payload === undefined) {
      this.failure ??= new Error('invalid base64 payload');
      this.ws.close(1007, 'invalid base64 payload');
      return;
    }
    stream.receive(payload);
  }

  /** Every port's connection has ended: the session is over (the kubelet closes with 1000). */
  private maybeDone(): void {
    if (this.streams.every((s) => s.isFinished)) void this.close();
  }
}

/** One data channel as a Duplex: client messages are its input, writes become messages. */
class ChannelDataStream extends DuplexStream {
  isFinished = false;

  constructor(
    private readonly channel: number,
    private readonly sendMessage: (channel: number, payload: Buffer, cb?: (err?: Error) => void) => void,
    private readonly ws: WebSocket,
  ) {
    super({ allowHalfOpen: true });
  }

  receive(payload: Buffer): void {
    // A channel whose connection has ended (refused, failed, done) drops what still arrives, as the
    // kubelet does; pushing into it would pause the WebSocket for every other port.
    if (this.isFinished || this.readableEnded || this.destroyed) return;
    if (payload.length > 0 && !this.push(payload)) this.ws.pause();
  }

  remoteGone(): void {
    this.push(null);
    this.destroy();
  }

  /** The connection has ended on the server's side. */
  finished(): void {
    this.isFinished = true;
    if (!this.writableEnded && !this.destroyed) this.end();
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // Wait for the socket only when much is queued: one callback per message would be slow.
    if (this.ws.bufferedAmount > MAX_BUFFERED) this.sendMessage(this.channel, chunk, (err) => callback(err ?? null));
    else {
      this.sendMessage(this.channel, chunk);
      callback();
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    // The protocol has no half-close: once the pod has ended its side the connection is over (as
    // containerd ends it when either copy finishes), so input ends too.
    this.push(null);
    callback();
  }
}
