// Port-forward over one SPDY/3.1 connection, as the kubelet's streaming server serves it
// (cri-streaming portforward/httpstream.go): the client opens an error stream and a data stream
// per forwarded connection, paired by the requestID header; each pair is one TCP connection to
// the pod. Used for the POST upgrade and, unchanged, inside the WebSocket tunnel.
import type { SpdyConnection, SpdyStream } from '../../transport/spdy/index.js';
import { RstStatus } from '../../transport/spdy/frames.js';
import { forwardToPod, type PodTarget } from './target.js';

/** The kubelet's default stream creation timeout: both streams of a pair must arrive within it. */
const STREAM_CREATION_TIMEOUT_MS = 30_000;

interface Pair {
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

function header(stream: SpdyStream, name: string): string | undefined {
  return stream.headers[name]?.[0];
}

/**
 * Serves every stream pair on `conn` until it closes. Resolves when the connection is gone and
 * every forwarded connection has ended.
 */
export async function servePortForwardStreams(conn: SpdyConnection, target: PodTarget): Promise<void> {
  const pairs = new Map<string, Pair>();
  const running = new Set<Promise<void>>();
  const untrack = target.track(() => conn.destroy());

  const pairFor = (id: string): Pair => {
    let pair = pairs.get(id);
    if (!pair) {
      const timer = setTimeout(() => {
        pairs.delete(id);
        pair?.error?.end('timed out waiting for streams');
        pair?.data?.cancel(RstStatus.CANCEL);
      }, STREAM_CREATION_TIMEOUT_MS);
      timer.unref();
      pair = { timer };
      pairs.set(id, pair);
    }
    return pair;
  };

  conn.on('stream', (stream) => {
    stream.reply();
    stream.on('error', () => {});
    const type = header(stream, 'streamtype');
    // Without requestID (old clients) the error stream's own id names the pair, the data stream's id minus 2.
    const id = header(stream, 'requestid') ?? String(type === 'data' ? stream.id - 2 : stream.id);
    if (type !== 'data' && type !== 'error') {
      stream.cancel(RstStatus.PROTOCOL_ERROR);
      return;
    }
    const pair = pairFor(id);
    if (pair[type]) {
      stream.cancel(RstStatus.PROTOCOL_ERROR);
      return;
    }
    pair[type] = stream;
    if (type === 'error') stream.resume(); // the client sends nothing on it but a FIN
    if (!pair.data || !pair.error) return;
    clearTimeout(pair.timer);
    pairs.delete(id);
    const job = forwardPair(target, pair.data, pair.error);
    running.add(job);
    void job.finally(() => running.delete(job));
  });

  await conn.closed;
  untrack();
  for (const pair of pairs.values()) clearTimeout(pair.timer);
  await Promise.all(running);
}

async function forwardPair(target: PodTarget, data: SpdyStream, error: SpdyStream): Promise<void> {
  const portText = header(data, 'port') ?? '';
  const port = Number(portText);
  let failure: string | undefined;
  if (!/^\d+$/.test(portText) || port > 0xffff) failure = `unable to parse "${portText}" as a port: invalid syntax`;
  else if (port === 0) failure = `port "${portText}" must be > 0`;
  else {
    // kubectl resets the data stream when it is done with it; that ends the TCP connection too.
    data.once('reset', (_status: number, byPeer: boolean) => {
      if (byPeer) data.destroy();
    });
    failure = await forwardToPod(target, port, data);
  }
  // kubectl waits for the error stream's end after each connection; a message there ends its session.
  if (failure !== undefined) error.end(failure);
  else error.end();
  if (failure !== undefined) data.end();
}
