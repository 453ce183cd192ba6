// Opens an exec/attach upstream over SPDY/3.1 as kubectl does: POST with `Upgrade: SPDY/3.1` and
// the channel versions offered in X-Stream-Protocol-Version, then the session's streams opened one
// at a time (error, stdin, stdout, stderr, resize), each after upstream's SYN_REPLY to the last.
// Used when upstream refuses WebSocket v5: SPDY gives stdin its half-close on every version.
import https from 'node:https';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { BastionError, ErrorCode, UpstreamRefusal } from '../../errors/index.js';
import { Header, ProtocolName, SPDY_UPGRADE } from '../../protocol/constants.js';
import type { StreamOptions } from '../../protocol/streams.js';
import { protocolByName, type ChannelProtocol } from '../../protocol/versions/index.js';
import { expectedStreamTypes, SpdyConnection, type SessionStreamType, type SpdyStream } from '../../transport/spdy/index.js';
import { upstreamPath } from '../rest-proxy.js';
import { classifyRefusal, readBoundedBody } from './refusal.js';
import { spdyProtocolLabel, SpdyUpstreamSession } from './spdy-session.js';
import { DEFAULT_CLOSE_TIMEOUT_MS, DEFAULT_HANDSHAKE_TIMEOUT_MS, type UpstreamSession } from './types.js';

/** kubectl 1.27's offer: the versions every kubelet's SPDY server speaks (v5 exists only over WebSocket upstream). */
export const SPDY_UPSTREAM_PROTOCOLS: readonly string[] = [ProtocolName.v4, ProtocolName.v3, ProtocolName.v2, ProtocolName.v1];

export interface SpdyDialRequest {
  /** The upstream server URL (its path prefix is kept). */
  server: string;
  /** The target's per-request options: credential headers and basic auth. */
  base: https.RequestOptions;
  /** Its TLS settings, for a connection of our own (dial.ts `tlsOptions`). */
  tls: Record<string, unknown>;
  /** request-target, e.g. /api/v1/namespaces/NS/pods/P/exec?command=cat&stdin=true… */
  path: string;
  /** Which streams to open (from the request's query, TTY already applied). */
  options: StreamOptions;
  headers?: Record<string, string | string[]> | undefined;
  signal?: AbortSignal | undefined;
  /** Covers the upgrade and the stream setup. */
  handshakeTimeoutMs?: number | undefined;
  keepAliveMs: number;
  /** Added to every error's details (e.g. what the WebSocket attempt offered). */
  details?: Record<string, unknown>;
}

/** Headers the upgrade itself owns; a caller's copy would break it. */
const OWN_HEADERS = new Set(['host', 'connection', 'upgrade', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'content-length', 'te', 'trailer', Header.streamProtocolVersion.toLowerCase()]);

/**
 * Dials upstream and resolves once every stream is open. Rejects only with a BastionError: an
 * UpstreamRefusal carrying upstream's Status for a non-101 answer; NO_COMMON_PROTOCOL for a 101
 * naming a version we did not offer; UPSTREAM_UNAVAILABLE for network, TLS and timeout failures
 * and a stream upstream refused; CONNECTION_CLOSED (details.aborted) when aborted.
 */
export function dialUpstreamSpdyExec(req: SpdyDialRequest): Promise<UpstreamSession> {
  const offered = [...SPDY_UPSTREAM_PROTOCOLS];
  const details = { offered, transport: 'spdy', ...(req.details ?? {}) };
  const target = new URL(req.server);
  const headers: OutgoingHttpHeaders = {};
  for (const source of [req.base.headers as OutgoingHttpHeaders | undefined, req.headers]) {
    for (const [name, value] of Object.entries(source ?? {})) {
      if (value !== undefined && !OWN_HEADERS.has(name.toLowerCase())) headers[name.toLowerCase()] = value;
    }
  }
  headers['connection'] = 'Upgrade';
  headers['upgrade'] = SPDY_UPGRADE;
  // Repeated header lines, most preferred first, as client-go sends them.
  headers[Header.streamProtocolVersion.toLowerCase()] = offered;
  headers['content-length'] = '0';

  return new Promise((resolve, reject) => {
    let settled = false;
    let conn: SpdyConnection | undefined;
    const request = https.request({
      ...req.tls,
      ...(req.base.auth ? { auth: req.base.auth } : {}),
      host: target.hostname,
      port: target.port || 443,
      method: 'POST',
      path: upstreamPath(req.server, req.path),
      headers,
      // An upgrade takes its socket for good: never from the keep-alive REST agent.
      agent: false,
    });
    const timer = setTimeout(
      () => fail(new BastionError(ErrorCode.UPSTREAM_UNAVAILABLE, 'timed out opening the upstream SPDY exec session', details)),
      req.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    );
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const fail = (error: BastionError): void => {
      if (!finish()) return;
      request.destroy();
      conn?.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(new BastionError(ErrorCode.CONNECTION_CLOSED, 'upstream dial aborted', { aborted: true, ...details }, { cause: req.signal?.reason }));
    if (req.signal?.aborted) return onAbort();
    req.signal?.addEventListener('abort', onAbort, { once: true });

    request.on('error', (err) => fail(new BastionError(ErrorCode.UPSTREAM_UNAVAILABLE, `kube-bastion could not reach the upstream API server: ${err.message}`, details, { cause: err })));
    request.on('response', (res: IncomingMessage) => {
      void readBoundedBody(res).then((body) => {
        const refusal = classifyRefusal(res.statusCode ?? 0, res.statusMessage, body, offered).error;
        fail(new UpstreamRefusal(refusal.status, refusal.upstreamHttpStatus, { ...refusal.details, ...details }));
      });
    });
    request.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      socket.on('error', ignore);
      if (settled) return void socket.destroy();
      const chosen = negotiated(res.headers[Header.streamProtocolVersion.toLowerCase()]);
      if (chosen === undefined || !offered.includes(chosen.name)) {
        socket.destroy();
        const answer = String(res.headers[Header.streamProtocolVersion.toLowerCase()]);
        return fail(new BastionError(ErrorCode.NO_COMMON_PROTOCOL, `upstream upgraded the SPDY exec to ${answer}; offered ${offered.join(', ')}`, details));
      }
      socket.setTimeout(0);
      socket.setNoDelay(true);
      const connection = new SpdyConnection(socket, { role: 'client', head });
      conn = connection;
      connection.on('error', ignore);
      openStreams(connection, expectedStreamTypes(req.options, chosen)).then(
        (streams) => {
          if (!finish()) return;
          resolve(
            new SpdyUpstreamSession(connection, streams, {
              channel: chosen,
              label: spdyProtocolLabel(chosen.name),
              keepAliveMs: req.keepAliveMs,
              closeTimeoutMs: DEFAULT_CLOSE_TIMEOUT_MS,
              signal: req.signal,
            }),
          );
        },
        (err: Error) => fail(new BastionError(ErrorCode.UPSTREAM_UNAVAILABLE, `upstream SPDY exec session setup failed: ${err.message}`, details, { cause: err })),
      );
    });
    request.end();
  });
}

/**
 * The version upstream chose. client-go reads a 101 without X-Stream-Protocol-Version as the
 * original channel.k8s.io (servers from before the header existed); so do we.
 */
function negotiated(value: string | string[] | undefined): ChannelProtocol | undefined {
  if (value === undefined) return protocolByName(ProtocolName.v1);
  return typeof value === 'string' ? protocolByName(value.trim()) : undefined;
}

/** Opens the streams in order, each once upstream answered the one before (client-go waits the same way). */
async function openStreams(conn: SpdyConnection, types: readonly SessionStreamType[]): Promise<Map<SessionStreamType, SpdyStream>> {
  const streams = new Map<SessionStreamType, SpdyStream>();
  for (const type of types) {
    const stream = conn.openStream({ [Header.streamType]: type });
    stream.on('error', ignore);
    streams.set(type, stream);
    await replied(conn, stream, type);
  }
  return streams;
}

function replied(conn: SpdyConnection, stream: SpdyStream, type: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      stream.off('reply', onReply);
      stream.off('reset', onReset);
      conn.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onReply = (): void => done();
    const onReset = (status: number): void => done(new Error(`upstream reset the ${type} stream (status ${status})`));
    const onClose = (): void => done(new Error(`upstream closed the connection before answering the ${type} stream`));
    stream.on('reply', onReply);
    stream.on('reset', onReset);
    conn.on('close', onClose);
  });
}

function ignore(): void {}
