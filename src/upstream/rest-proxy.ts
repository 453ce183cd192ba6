// Forwards one REST request upstream and streams the answer back: no response is buffered whole,
// so watches, `logs -f` and large lists flow with backpressure in both directions. A request body
// streams too, unless the caller already read it (a request that needed an approval is bound to
// its exact bytes): then exactly those bytes are sent.
import https from 'node:https';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BastionError, ErrorCode, isBastionError } from '../errors/index.js';
import type { Status } from '../protocol/status.js';
import { writeStatusResponse } from '../transport/http-response.js';
import { forwardableHeaders, impersonationHeaders, type RequestIds, type UpstreamIdentity } from './headers.js';
import { droppedReusedConnection, upstreamRequestOptions, upstreamUnreachable, type UpstreamTarget } from './upstream.js';

export interface ProxyOutcome {
  /** HTTP status sent to the client (502 when upstream could not be reached). */
  status: number;
  bytesIn: number;
  bytesOut: number;
  /** Set when the exchange failed part-way (upstream error, client gone). */
  error?: BastionError;
  /** True when `cut` ended the exchange. */
  cut?: boolean;
}

/**
 * Ends the exchange when `onEnd` calls back (an approval revoked or expired, the agent revoked) or
 * `deadline` passes: from that instant no byte is relayed; the client gets `status` if nothing was
 * sent yet, else `finalChunk` (e.g. a watch ERROR event) when there is one, else the response is
 * terminated.
 */
export interface ProxyCut {
  /**
   * Calls `listener` once when the exchange must end (at once if it already must); returns an
   * unsubscribe. The approval lease's `onEnd`: a callback, not an AbortSignal, whose controller,
   * signal and EventTarget listener were a measured share of every REST request's cost.
   */
  onEnd(listener: () => void): () => void;
  /** The Status for an upstream that cannot be reached (the endpoint words it). */
  unreachable(error: BastionError): Status;
  /**
   * Epoch ms from which on (at or after it) nothing is relayed (the approval's expiry), checked before every chunk:
   * a chunk read in the same turn as the expiry timer came due (a stalled event loop reads
   * everything upstream sent meanwhile) must not pass either.
   */
  deadline?: number;
  status(): Status;
  finalChunk(contentType: string | undefined): Buffer | undefined;
}

const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'trailer', 'proxy-connection']);

/** Counts the bytes of a streamed request body into `count`. */
class ByteCounter extends Transform {
  constructor(private readonly count: { bytes: number }) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.count.bytes += chunk.length;
    done(null, chunk);
  }
}

/** Where an upstream server URL points: parsed once per server, not per request. */
interface ServerAddress {
  hostname: string;
  port: number | string;
  /** The server's own path prefix, without a trailing slash ('' for none). */
  prefix: string;
}

/** Keyed by the server URL; a bastion has one upstream (tests a few), so this stays tiny. */
const addresses = new Map<string, ServerAddress>();

function serverAddress(server: string): ServerAddress {
  let a = addresses.get(server);
  if (a === undefined) {
    const url = new URL(server);
    a = { hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || 443, prefix: url.pathname.replace(/\/+$/, '') };
    addresses.set(server, a);
  }
  return a;
}

/** Joins the upstream server's own path prefix (if any) with the request-target. */
export function upstreamPath(server: string, requestTarget: string): string {
  return `${serverAddress(server).prefix}${requestTarget}`;
}

export async function proxyRest(
  req: IncomingMessage,
  res: ServerResponse,
  upstream: UpstreamTarget,
  identity?: UpstreamIdentity,
  cut?: ProxyCut,
  /** The request body, already read whole: sent as it is instead of streaming `req`. */
  body?: Buffer,
  /** What the request runs under (its approval), named upstream when impersonating. */
  ids?: RequestIds,
): Promise<ProxyOutcome> {
  let base: https.RequestOptions;
  try {
    base = await upstreamRequestOptions(upstream);
  } catch (err) {
    // No credentials, nothing sent: answered (and audited) like an unreachable upstream.
    const error = isBastionError(err) ? err : upstreamUnreachable(err as Error);
    req.resume();
    if (!res.headersSent && !res.destroyed) writeStatusResponse(res, cut?.unreachable(error) ?? error.toStatus());
    return { status: 502, bytesIn: 0, bytesOut: 0, error };
  }
  const target = serverAddress(upstream.server);
  // Built in place (the credentials after the client's headers, so they win): no spread copies per request.
  const headers = forwardableHeaders(req.headers);
  Object.assign(headers, base.headers);
  if (identity) Object.assign(headers, impersonationHeaders(identity, ids));
  // The client may have sent it chunked: upstream gets the length of what was read.
  if (body !== undefined && (body.length > 0 || req.headers['content-length'] !== undefined)) headers['content-length'] = String(body.length);
  base.protocol = 'https:';
  base.hostname = target.hostname;
  base.port = target.port;
  base.method = req.method;
  base.path = target.prefix + (req.url ?? '/');
  base.headers = headers;
  // `base` is this request's own copy (UpstreamTarget.requestOptions).
  let upstreamReq = https.request(base);
  // A plain count: the stream that counts (ByteCounter) is built only for a body that streams.
  const inCounter = { bytes: 0 };
  // The response is copied by hand (relayBody), so its count is a plain number.
  const outCounter = { bytes: 0 };

  // The client going away ends the upstream exchange too (a watch must not linger upstream).
  let clientGone = false;
  const abort = (): void => {
    if (res.writableFinished) return;
    clientGone = true;
    upstreamReq.destroy();
  };
  res.on('close', abort);
  let upstreamRes: IncomingMessage | undefined;
  let ended = false;
  const onCut = (): void => {
    upstreamReq.destroy();
    upstreamRes?.destroy();
  };
  const offCut = cut?.onEnd(() => {
    ended = true;
    onCut();
  });
  const cutNow = (): boolean => cut !== undefined && (ended || (cut.deadline !== undefined && Date.now() >= cut.deadline));

  const noBody = body === undefined && hasNoBody(req);
  const send = (r: typeof upstreamReq): { response: Promise<IncomingMessage>; sending: Promise<void>; heard: () => boolean } => ({
    response: new Promise<IncomingMessage>((resolve, reject) => {
      r.once('response', resolve);
      r.once('error', reject);
    }),
    sending: body !== undefined ? sendBuffered(r, body, inCounter) : noBody ? sendEmpty(req, r) : pipeline(req, new ByteCounter(inCounter), r).catch(() => {}),
    heard: heardBack(r),
  });
  let { response, sending, heard } = send(upstreamReq);
  const done = (o: ProxyOutcome): ProxyOutcome => {
    res.off('close', abort);
    offCut?.();
    return o;
  };

  const refuseCut = (): ProxyOutcome => {
    onCut();
    const status = cut!.status();
    if (!res.headersSent && !res.destroyed) writeStatusResponse(res, status);
    return done({ status: status.code ?? 403, bytesIn: inCounter.bytes, bytesOut: 0, cut: true });
  };
  for (let attempt = 0; ; attempt++) {
    try {
      upstreamRes = await response;
      break;
    } catch (err) {
      if (cutNow()) return refuseCut();
      // The client left first (its leaving destroyed the upstream request): not upstream's failure.
      if (clientGone) return done({ status: 499, bytesIn: inCounter.bytes, bytesOut: 0, error: new BastionError(ErrorCode.CONNECTION_CLOSED, 'the client closed the request before upstream answered') });
      // A kept-alive connection the server closed (idle) just as this request went out on it: the
      // server never read the request, so a read without a body is sent once more on a new one.
      if (attempt === 0 && !heard() && retriableOnNewConnection(upstreamReq, req.method, req.url, noBody, err as NodeJS.ErrnoException)) {
        upstreamReq = https.request(base);
        ({ response, sending, heard } = send(upstreamReq));
        continue;
      }
      const error = upstreamUnreachable(err as Error);
      if (!res.headersSent && !res.destroyed) writeStatusResponse(res, cut?.unreachable(error) ?? error.toStatus());
      return done({ status: 502, bytesIn: inCounter.bytes, bytesOut: 0, error });
    }
  }
  // An answer that arrives once the exchange is cut (its deadline passed in a stalled turn) is not relayed.
  if (cutNow()) return refuseCut();
  const status = upstreamRes.statusCode ?? 502;
  const responseHeaders: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(upstreamRes.headers)) {
    if (value !== undefined && !RESPONSE_HOP_BY_HOP.has(name)) responseHeaders[name] = value;
  }
  res.writeHead(status, upstreamRes.statusMessage, responseHeaders);
  // Watches and log follows must reach the client as they happen. An answer of known length goes
  // out with its first bytes instead: one socket write (a TLS record, a syscall) less per request.
  if (upstreamRes.headers['content-length'] === undefined) res.flushHeaders();
  const error = await relayBody(upstreamRes, res, outCounter, cutNow);
  await sending;
  if (cutNow()) {
    // Nothing more passes (upstream is dropped too, whether or not the signal fired yet); a watch
    // client is told why in its own format, anything else is cut off.
    onCut();
    const final = cut!.finalChunk(upstreamRes.headers['content-type']);
    if (final && !res.destroyed) res.end(final);
    else res.destroy();
    return done({ status, bytesIn: inCounter.bytes, bytesOut: outCounter.bytes, cut: true });
  }
  if (!error) res.end();
  else res.destroy();
  return done({ status, bytesIn: inCounter.bytes, bytesOut: outCounter.bytes, ...(error ? { error } : {}) });
}

/** Methods that are safe to send twice when the first try never reached the server. */
const RETRIABLE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The one failure worth a second try: a safe request without a body on a dropped reused connection.
 * Never through a proxy subresource (`pods/x/proxy/...`, `services/x/proxy/...`): the API server
 * passes those on to an application whose GET may well have an effect, and a connection dropped
 * after upstream read the request looks the same as one dropped before. Any path segment `proxy`
 * counts (a resource named so loses only the retry).
 */
function retriableOnNewConnection(r: ReturnType<typeof https.request>, method: string | undefined, url: string | undefined, noBody: boolean, err: NodeJS.ErrnoException): boolean {
  return noBody && RETRIABLE_METHODS.has(method ?? '') && !throughProxy(url ?? '') && droppedReusedConnection(r.reusedSocket, err);
}

function throughProxy(url: string): boolean {
  const q = url.indexOf('?');
  return (q < 0 ? url : url.slice(0, q)).split('/').includes('proxy');
}

/**
 * Whether any byte of an answer came back on the request's connection (a status line, headers):
 * then upstream read and ran the request, and it is not sent again. A TLS close alert carries no
 * data, so the idle-close race still counts as unanswered.
 */
function heardBack(r: ReturnType<typeof https.request>): () => boolean {
  let heard = false;
  r.once('socket', (socket) => {
    const onData = (): void => {
      heard = true;
    };
    socket.on('data', onData);
    // The connection goes back to the pool (or away) with the request: stop listening then.
    r.once('close', () => socket.off('data', onData));
  });
  return () => heard;
}

/**
 * A request that declares no body (no Content-Length or a zero one, no Transfer-Encoding: most
 * GETs): upstream gets none, without a stream pipeline per request (its AbortController, a Transform
 * and their events were a measured share of a GET's cost).
 */
function hasNoBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] === undefined || req.headers['content-length'] === '0');
}

function sendEmpty(req: IncomingMessage, upstreamReq: ReturnType<typeof https.request>): Promise<void> {
  // Node's parser ends such a request at once; resume() lets it emit 'end' and be reused.
  req.resume();
  return new Promise((resolve) => {
    upstreamReq.once('error', () => resolve());
    upstreamReq.end(() => resolve());
  });
}

/** Sends a body read earlier, counting it like a streamed one. */
function sendBuffered(upstreamReq: ReturnType<typeof https.request>, body: Buffer, counter: { bytes: number }): Promise<void> {
  counter.bytes = body.length;
  return new Promise((resolve) => {
    upstreamReq.once('error', () => resolve());
    upstreamReq.end(body, () => resolve());
  });
}

/**
 * Copies the upstream body to the client with backpressure, counting bytes, and stops at once when
 * `cutNow()` turns true. The response is not ended here: the caller decides how it ends.
 */
function relayBody(from: IncomingMessage, to: ServerResponse, counter: { bytes: number }, cutNow: () => boolean): Promise<BastionError | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (err?: BastionError): void => {
      if (settled) return;
      settled = true;
      from.off('data', onData);
      to.off('close', onClientClose);
      resolve(err);
    };
    const onData = (chunk: Buffer): void => {
      if (cutNow()) {
        settle();
        return;
      }
      counter.bytes += chunk.length;
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    };
    const onClientClose = (): void => {
      if (!to.writableFinished) settle(new BastionError(ErrorCode.CONNECTION_CLOSED, 'the client closed the response early'));
    };
    from.on('data', onData);
    from.once('end', () => settle());
    from.once('error', (err) => settle(cutNow() ? undefined : new BastionError(ErrorCode.CONNECTION_CLOSED, `response stream ended early: ${err.message}`, undefined, { cause: err })));
    from.once('close', () => settle(from.readableEnded || cutNow() ? undefined : new BastionError(ErrorCode.CONNECTION_CLOSED, 'the upstream response ended early')));
    to.once('close', onClientClose);
  });
}
