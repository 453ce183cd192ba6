// The older WebSocket port-forward protocol (kubelet portforward/websocket.go), which
// @kubernetes/client-node and browsers speak: subprotocol v4.channel.k8s.io (binary),
// v4.base64.channel.k8s.io (text) or none (binary); the ports come in the query; for port i,
// channel 2i carries data both ways and 2i+1 errors from the server; the first message on every
// channel is the port as uint16 little-endian. One TCP connection per port per WebSocket.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Duplex as DuplexStream } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { channelOf, decodeBase64Strict, encodeMessage, type Encoding } from '../../transport/websocket/subprotocols.js';
import { forwardToPod, type PodTarget } from './target.js';

export const CHANNEL_SUBPROTOCOLS: ReadonlyMap<string, Encoding> = new Map([
  ['v4.channel.k8s.io', 'binary'],
  ['v4.base64.channel.k8s.io', 'base64'],
]);

/** Above this many unsent bytes the pod's socket is paused until the WebSocket drains. */
const MAX_BUFFERED = 1024 * 1024;

/**
 * The ports to forward, from `ports` (the API's PodPortForwardOptions) or `port` (the kubelet's
 * name): repeated and/or comma-separated. Returns the kubelet's refusal text on a bad value.
 */
export function parsePorts(params: URLSearchParams): number[] | string {
  const values = [...params.getAll('ports'), ...params.getAll('port')];
  if (values.length === 0) return 'query parameter "port" is required';
  const ports: number[] = [];
  for (const text of values.flatMap((v) => v.split(','))) {
    if (!/^\d+$/.test(text) || Number(text) > 0xffff) return `unable to parse "${text}" as a port: strconv.ParseUint: parsing "${text}": invalid syntax`;
    if (Number(text) === 0) return `port "${text}" must be > 0`;
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

/** Runs every port's connection on the WebSocket; closes it (1000) when all have ended. */
export async function serveChannels(ws: WebSocket, encoding: Encoding, ports: number[], target: PodTarget): Promise<void> {
  const send = (channel: number, payload: Buffer, cb?: (err?: Error) => void): void => {
    if (ws.readyState !== ws.OPEN) return cb?.(new Error('WebSocket closed'));
    ws.send(encodeMessage(encoding, channel, payload), { binary: encoding === 'binary' }, cb);
  };
  const streams = ports.map((port, i) => new ChannelDataStream(i * 2, send, ws));
  ws.on('message', (raw: RawData, isBinary: boolean) => {
    const message = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw as Buffer);
    if (message.length === 0 || isBinary !== (encoding === 'binary')) return;
    const channel = channelOf(encoding, message);
    // Only data channels are read; anything else is dropped, as the kubelet's wsstream does.
    if (channel % 2 !== 0) return;
    const stream = streams[channel / 2];
    if (!stream) return;
    const payload = encoding === 'base64' ? decodeBase64Strict(message.subarray(1)) : message.subarray(1);
    if (payload === undefined) {
      ws.close(1007, 'invalid base64 payload');
      return;
    }
    stream.receive(payload);
  });
  ws.on('close', () => streams.forEach((s) => s.remoteGone()));
  ws.on('error', () => undefined);

  const untrack = target.track(() => ws.terminate());
  await Promise.all(
    ports.map(async (port, i) => {
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16LE(port);
      send(i * 2, prefix);
      send(i * 2 + 1, prefix);
      const failure = await forwardToPod(target, port, streams[i]!);
      if (failure !== undefined) send(i * 2 + 1, Buffer.from(failure));
    }),
  );
  untrack();
  if (ws.readyState === ws.OPEN) ws.close(1000);
}

/** One data channel as a Duplex: client messages are its input, writes become messages. */
class ChannelDataStream extends DuplexStream {
  constructor(
    private readonly channel: number,
    private readonly send: (channel: number, payload: Buffer, cb?: (err?: Error) => void) => void,
    private readonly ws: WebSocket,
  ) {
    super({ allowHalfOpen: true });
  }

  receive(payload: Buffer): void {
    if (payload.length > 0 && !this.push(payload)) this.ws.pause();
  }

  remoteGone(): void {
    this.push(null);
    this.destroy();
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // Wait for the socket only when much is queued: one callback per message would be slow.
    if (this.ws.bufferedAmount > MAX_BUFFERED) this.send(this.channel, chunk, (err) => callback(err ?? null));
    else {
      this.send(this.channel, chunk);
      callback();
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    // The protocol has no half-close: once the pod has ended its side the connection is over (as
    // containerd ends it when either copy finishes), so input ends too and the socket closes.
    this.push(null);
    callback();
  }
}
