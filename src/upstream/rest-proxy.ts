// Forwards one REST request upstream and streams the answer back: no body is buffered whole,
// so watches, `logs -f` and large lists flow with backpressure in both directions.
import https from 'node:https';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BastionError, ErrorCode } from '../errors/index.js';
import { writeStatusResponse } from '../transport/http-response.js';
import { forwardableHeaders, impersonationHeaders, type UpstreamIdentity } from './headers.js';
import type { UpstreamTarget } from './upstream.js';

export interface ProxyOutcome {
  /** HTTP status sent to the client (502 when upstream could not be reached). */
  status: number;
  bytesIn: number;
  bytesOut: number;
  /** Set when the exchange failed part-way (upstream error, client gone). */
  error?: BastionError;
}

const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'trailer', 'proxy-connection']);

class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

/** Joins the upstream server's own path prefix (if any) with the request-target. */
export function upstreamPath(server: string, requestTarget: string): string {
  const prefix = new URL(server).pathname.replace(/\/+$/, '');
  return `${prefix}${requestTarget}`;
}

export async function proxyRest(
  req: IncomingMessage,
  res: ServerResponse,
  upstream: UpstreamTarget,
  identity?: UpstreamIdentity,
): Promise<ProxyOutcome> {
  const base = await upstream.requestOptions();
  const target = new URL(upstream.server);
  const headers: OutgoingHttpHeaders = {
    ...forwardableHeaders(req.headers),
    ...(base.headers as OutgoingHttpHeaders | undefined),
    ...(identity ? impersonationHeaders(identity) : {}),
  };
  const upstreamReq = https.request({
    ...base,
    protocol: 'https:',
    hostname: target.hostname.replace(/^\[|\]$/g, ''),
    port: target.port || 443,
    method: req.method,
    path: upstreamPath(upstream.server, req.url ?? '/'),
    headers,
  });
  const inCounter = new ByteCounter();
  const outCounter = new ByteCounter();

  // The client going away ends the upstream exchange too (a watch must not linger upstream).
  const abort = (): void => {
    if (!res.writableFinished) upstreamReq.destroy();
  };
  res.on('close', abort);

  const response = new Promise<IncomingMessage>((resolve, reject) => {
    upstreamReq.once('response', resolve);
    upstreamReq.once('error', reject);
  });
  const sending = pipeline(req, inCounter, upstreamReq).catch(() => {});

  let upstreamRes: IncomingMessage;
  try {
    upstreamRes = await response;
  } catch (err) {
    res.off('close', abort);
    const error = new BastionError(ErrorCode.UPSTREAM_UNAVAILABLE, `kube-bastion could not reach the upstream API server: ${(err as Error).message}`, undefined, { cause: err });
    if (!res.headersSent && !res.destroyed) writeStatusResponse(res, error.toStatus());
    return { status: 502, bytesIn: inCounter.bytes, bytesOut: 0, error };
  }
  const status = upstreamRes.statusCode ?? 502;
  const responseHeaders: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(upstreamRes.headers)) {
    if (value !== undefined && !RESPONSE_HOP_BY_HOP.has(name)) responseHeaders[name] = value;
  }
  res.writeHead(status, upstreamRes.statusMessage, responseHeaders);
  // Watches and log follows must reach the client as they happen.
  res.flushHeaders();
  let error: BastionError | undefined;
  try {
    await pipeline(upstreamRes, outCounter, res);
  } catch (err) {
    error = new BastionError(ErrorCode.CONNECTION_CLOSED, `response stream ended early: ${(err as Error).message}`, undefined, { cause: err });
  } finally {
    res.off('close', abort);
  }
  await sending;
  return { status, bytesIn: inCounter.bytes, bytesOut: outCounter.bytes, ...(error ? { error } : {}) };
}
