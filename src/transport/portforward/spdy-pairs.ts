// Port-forward over one SPDY/3.1 connection, as the kubelet's streaming server reads it
// (cri-streaming portforward/httpstream.go): per forwarded connection the client opens an error
// stream and a data stream, paired by the requestID header. Used for the POST upgrade and,
// unchanged, inside the WebSocket tunnel.
import type { TransportKind } from '../../protocol/streams.js';
import { Header, StreamType } from '../../protocol/constants.js';
import type { SpdyConnection } from '../spdy/connection.js';
import { RstStatus } from '../spdy/frames.js';
import type { SpdyStream } from '../spdy/stream.js';
import { portProblem, type ForwardStream, type PortForwardForm, type PortForwardServer } from './types.js';

/** The kubelet's default stream creation timeout: both streams of a pair must arrive within it. */
export const STREAM_CREATION_TIMEOUT_MS = 30_000;

interface Pair {
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

function header(stream: SpdyStream, name: string): string | undefined {
  return stream.headers[name]?.[0];
}

export class SpdyPortForwardServer implements PortForwardServer {
  readonly ports = undefined;
  readonly closed: Promise<void>;
  private readonly pairs = new Map<string, Pair>();
  private readonly ready: ForwardStream[] = [];
  private listener: ((stream: ForwardStream) => void) | undefined;

  constructor(
    private readonly conn: SpdyConnection,
    readonly transport: TransportKind,
    readonly form: PortForwardForm,
    readonly protocolName: string,
    private readonly streamCreationTimeoutMs = STREAM_CREATION_TIMEOUT_MS,
  ) {
    conn.on('stream', (stream) => this.onStream(stream));
    conn.on('error', () => undefined);
    this.closed = conn.closed.then(() => {
      for (const pair of this.pairs.values()) clearTimeout(pair.timer);
      this.pairs.clear();
    });
  }

  get failure(): Error | undefined {
    return this.conn.error;
  }

  onConnection(listener: (stream: ForwardStream) => void): void {
    this.listener = listener;
    for (const stream of this.ready.splice(0)) listener(stream);
  }

  close(): Promise<void> {
    return this.conn.close();
  }

  destroy(): void {
    this.conn.destroy();
  }

  private onStream(stream: SpdyStream): void {
    stream.reply();
    stream.on('error', () => undefined);
    const type = header(stream, Header.streamType);
    // Without requestID (old clients) the error stream's own id names the pair, the data stream's id minus 2.
    const id = header(stream, Header.portForwardRequestId) ?? String(type === StreamType.data ? stream.id - 2 : stream.id);
    if (type !== StreamType.data && type !== StreamType.error) {
      stream.cancel(RstStatus.PROTOCOL_ERROR);
      return;
    }
    const pair = this.pairFor(id);
    if (pair[type]) {
      stream.cancel(RstStatus.PROTOCOL_ERROR);
      return;
    }
    pair[type] = stream;
    if (type === StreamType.error) stream.resume(); // the client sends nothing on it but a FIN
    if (!pair.data || !pair.error) return;
    clearTimeout(pair.timer);
    this.pairs.delete(id);
    this.paired(id, pair.data, pair.error);
  }

  private pairFor(id: string): Pair {
    let pair = this.pairs.get(id);
    if (!pair) {
      const timer = setTimeout(() => {
        this.pairs.delete(id);
        pair?.error?.end('timed out waiting for streams');
        pair?.data?.cancel(RstStatus.CANCEL);
      }, this.streamCreationTimeoutMs);
      timer.unref();
      pair = { timer };
      this.pairs.set(id, pair);
    }
    return pair;
  }

  private paired(requestId: string, data: SpdyStream, error: SpdyStream): void {
    const portText = header(data, Header.portForwardPort) ?? '';
    const problem = portProblem(portText);
    if (problem !== undefined) {
      error.end(problem);
      data.end();
      return;
    }
    // kubectl resets the data stream when it is done with it: the connection is over.
    data.once('reset', (_status: number, byPeer: boolean) => {
      if (byPeer) data.destroy();
    });
    let answered = false;
    const stream: ForwardStream = {
      port: Number(portText),
      requestId,
      data,
      fail: (message) => {
        if (answered) return;
        answered = true;
        error.end(message);
        if (!data.destroyed) data.end();
      },
      done: () => {
        if (answered) return;
        answered = true;
        error.end();
      },
    };
    if (this.listener) this.listener(stream);
    else this.ready.push(stream);
  }
}
