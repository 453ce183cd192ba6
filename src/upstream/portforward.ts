// The client side of a port-forward session with the real API server: one SPDY/3.1 connection
// (POST, `X-Stream-Protocol-Version: portforward.k8s.io`), which every API server version accepts
// and which the WebSocket forms only wrap. Each forwarded connection is an error stream and a data
// stream, opened as client-go's portforward.go opens them.
import https from 'node:https';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { BastionError, ErrorCode } from '../errors/index.js';
import { Header, ProtocolName, SPDY_UPGRADE, StreamType } from '../protocol/constants.js';
import { SpdyConnection, type SpdyStream } from '../transport/spdy/index.js';
import { PORT_FORWARD_SPDY_LIMITS } from '../transport/portforward/index.js';
import { tlsOptions } from './executor/dial.js';
import { classifyRefusal, readBoundedBody } from './executor/refusal.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from './executor/types.js';
import { upstreamPath } from './rest-proxy.js';
import { upstreamRequestOptions, type UpstreamTarget } from './upstream.js';

/** Longest error-stream text kept from upstream (the kubelet's messages are a few hundred bytes). */
const MAX_ERROR_TEXT = 64 * 1024;

export interface UpstreamPortForwardRequest {
  /** `/api/v1/namespaces/NS/pods/POD/portforward`. */
  path: string;
  headers?: OutgoingHttpHeaders;
  signal?: AbortSignal;
  handshakeTimeoutMs?: number;
}

/** One forwarded connection upstream. */
export interface UpstreamForward {
  /** The connection's bytes both ways. */
  readonly data: SpdyStream;
  /** Upstream's error-stream text once it has ended ('' for none): non-empty means the connection failed. */
  readonly error: Promise<string>;
}

export interface UpstreamPortForward {
  /** The negotiated protocol (always `portforward.k8s.io`). */
  readonly protocol: string;
  /** Opens a connection to `port`: the error stream first, its write side closed at once, then the data stream. Throws when the connection is closed. */
  open(port: number, requestId: string): UpstreamForward;
  /** Resolves when the connection is gone. */
  readonly closed: Promise<void>;
  /** False once the connection is closing or gone. */
  readonly isOpen: boolean;
  close(): Promise<void>;
  destroy(): void;
}

/**
 * Dials upstream and resolves once upgraded. Rejects only with a BastionError: an UpstreamRefusal
 * with upstream's own Status for a non-101 answer; UPSTREAM_UNAVAILABLE for network, TLS, timeout
 * and credential failures or a 101 for another protocol; CONNECTION_CLOSED when aborted.
 */
export async function dialUpstreamPortForward(upstream: UpstreamTarget, req: UpstreamPortForwardRequest): Promise<UpstreamPortForward> {
  const base = await upstreamRequestOptions(upstream);
  if (req.signal?.aborted) throw aborted(req.signal);
  const target = new URL(upstream.server);
  const headers: OutgoingHttpHeaders = { ...((base.headers as OutgoingHttpHeaders | undefined) ?? {}), ...(req.headers ?? {}) };
  headers['connection'] = 'Upgrade';
  headers['upgrade'] = SPDY_UPGRADE;
  headers[Header.streamProtocolVersion.toLowerCase()] = ProtocolName.portForward;
  headers['content-length'] = '0';
  return new Promise((resolve, reject) => {
    let settled = false;
    const request = https.request({
      ...tlsOptions(base),
      ...(base.auth ? { auth: base.auth } : {}),
      host: target.hostname,
      port: target.port || 443,
      method: 'POST',
      path: upstreamPath(upstream.server, req.path),
      headers,
      agent: false,
    });
    const fail = (error: BastionError): void => {
      if (settled) return;
      settled = true;
      req.signal?.removeEventListener('abort', onAbort);
      request.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(aborted(req.signal!));
    req.signal?.addEventListener('abort', onAbort, { once: true });
    request.setTimeout(req.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, () =>
      fail(new BastionError(ErrorCode.UPSTREAM_UNAVAILABLE, 'the upstream API server did not answer the port-forward upgrade in time')),
    );
    request.on('error', (err) => fail(new BastionError(ErrorCode.UPSTREAM_UNAVAILABLE, `kube-bastion could not reach the upstream API server: ${err.message}`, undefined, { cause: err })));
    request.on('response', (res: IncomingMessage) => {
      void readBoundedBody(res).then((body) => fail(classifyRefusal(res.statusCode ?? 0, res.statusMessage, body, [ProtocolName.portForward], 'port-forward').error));
    });
    request.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      socket.on('error', () => undefined);
      if (settled) {
        socket.destroy();
        return;
      }
      const chosen = res.headers[Header.streamProtocolVersion.toLowerCase()];
      if (chosen !== ProtocolName.portForward) {
        socket.destroy();
        fail(new BastionError(ErrorCode.UPSTREAM_UNAVAILABLE, `upstream upgraded the port-forward to ${String(chosen ?? 'no protocol')}, not ${ProtocolName.portForward}`));
        return;
      }
      settled = true;
      req.signal?.removeEventListener('abort', onAbort);
      request.setTimeout(0);
      socket.setTimeout(0);
      socket.setNoDelay(true);
      resolve(new SpdyUpstreamPortForward(new SpdyConnection(socket, { role: 'client', head, limits: PORT_FORWARD_SPDY_LIMITS })));
    });
    request.end();
  });
}

function aborted(signal: AbortSignal): BastionError {
  return new BastionError(ErrorCode.CONNECTION_CLOSED, 'upstream dial aborted', { aborted: true }, { cause: signal.reason });
}

class SpdyUpstreamPortForward implements UpstreamPortForward {
  readonly protocol = ProtocolName.portForward;
  readonly closed: Promise<void>;

  constructor(private readonly conn: SpdyConnection) {
    conn.on('error', () => undefined);
    // Upstream never opens streams on a port-forward connection; openStream refuses them.
    conn.on('stream', (stream) => stream.cancel());
    this.closed = conn.closed;
  }

  get isOpen(): boolean {
    return this.conn.isOpen;
  }

  open(port: number, requestId: string): UpstreamForward {
    const common = { [Header.portForwardPort]: String(port), [Header.portForwardRequestId]: requestId };
    const errorStream = this.conn.openStream({ [Header.streamType]: StreamType.error, ...common });
    errorStream.on('error', () => undefined);
    errorStream.end();
    const data = this.conn.openStream({ [Header.streamType]: StreamType.data, ...common });
    data.on('error', () => undefined);
    return { data, error: readText(errorStream) };
  }

  close(): Promise<void> {
    return this.conn.close();
  }

  destroy(): void {
    this.conn.destroy();
  }
}

/** The stream's bytes as text once it has ended or gone; bounded. */
function readText(stream: SpdyStream): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      if (size < MAX_ERROR_TEXT) chunks.push(chunk.subarray(0, MAX_ERROR_TEXT - size));
      size += chunk.length;
    });
    const done = (): void => resolve(Buffer.concat(chunks).toString('utf8'));
    stream.once('end', done);
    stream.once('close', done);
  });
}
