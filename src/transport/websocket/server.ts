// The server side of a remote-command WebSocket: checks the handshake, negotiates the subprotocol,
// refuses with a metav1.Status before the upgrade (kubectl 1.30+ then retries over SPDY), or
// upgrades and hands back the session's streams.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { StreamOptions } from '../../protocol/streams.js';
import { BastionError, ErrorCode } from '../../errors/index.js';
import { writeStatusToSocket } from '../http-response.js';
import type { SenderLimits } from './sender.js';
import { createWebSocketStreams, type WebSocketServerStreams } from './session.js';
import { DEFAULT_SUPPORTED, negotiateSubprotocol } from './subprotocols.js';

export interface AcceptWebSocketOptions {
  /** What the exec/attach query asked for. */
  options: StreamOptions;
  /** Subprotocol names to accept (default: all of v5, v4, v4.base64, channel, base64.channel). */
  supported?: readonly string[];
  /** Largest client message accepted; a bigger one closes the connection with 1009. */
  maxPayload?: number;
  /** How long a closing connection waits for the client's close frame (default 5 s). */
  closeTimeoutMs?: number;
  /** Output pacing; defaults suit kubectl (32 KiB messages, 256 KiB socket backlog). */
  limits?: Partial<SenderLimits>;
}

/**
 * kubectl sends at most 32 KiB per message; other clients (client-node, python) send whatever
 * chunk they were given. 4 MiB leaves them room while bounding what one message can cost us.
 */
export const DEFAULT_MAX_PAYLOAD = 4 * 1024 * 1024;
export const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;

/** RFC 6455 key: 16 random bytes in base64. */
const KEY_PATTERN = /^[+/0-9A-Za-z]{22}==$/;

/**
 * Accepts an exec/attach WebSocket upgrade (call it from the HTTP server's 'upgrade' event).
 *
 * Resolves once the connection is upgraded and the `[0x01]` "connected" frame is queued. Rejects
 * with a BastionError when the request is refused (bad handshake: BAD_STREAM_REQUEST or
 * METHOD_NOT_ALLOWED; no acceptable subprotocol: NO_COMMON_PROTOCOL 403, or BAD_STREAM_REQUEST 400
 * when none was offered and channel.k8s.io is not allowed; unknown names in `supported`:
 * CONFIG_INVALID). On rejection the socket has already been answered with the matching Status.
 */
export function acceptWebSocketRemoteCommand(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  opts: AcceptWebSocketOptions,
): Promise<WebSocketServerStreams> {
  // Node's HTTP server removes its own socket error handler before 'upgrade'; a client reset
  // while we answer must not become an uncaught 'error'. ws adds its own after the upgrade.
  socket.on('error', ignore);
  return new Promise((resolve, reject) => {
    let settled = false;
    const refuse = (error: BastionError, extraHeaders: ReadonlyArray<readonly [string, string]> = []): void => {
      if (settled) return;
      settled = true;
      writeStatusToSocket(socket, error.toStatus(), extraHeaders);
      reject(error);
    };

    const bad = checkHandshake(req);
    if (bad) return refuse(bad.error, bad.headers);

    const negotiation = negotiateSubprotocol(req.headersDistinct['sec-websocket-protocol'], opts.supported ?? DEFAULT_SUPPORTED);
    if (!negotiation.ok) return refuse(negotiation.error);
    const { subprotocol } = negotiation;

    const server = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      // Terminal traffic is small and latency-bound, and compression costs memory per connection.
      perMessageDeflate: false,
      maxPayload: opts.maxPayload ?? DEFAULT_MAX_PAYLOAD,
      // Negotiation already happened above; ws only calls this when a header was sent, and then
      // the answer is never false (we refused before the upgrade instead).
      handleProtocols: () => subprotocol.name || false,
    });
    // Handshake faults ws finds that checkHandshake did not (e.g. a malformed protocol list).
    server.on('wsClientError', (err: Error) => {
      refuse(new BastionError(ErrorCode.BAD_STREAM_REQUEST, 'invalid WebSocket handshake', undefined, { cause: err }));
    });

    let upgraded: WebSocket | undefined;
    try {
      // Synchronous here: no verifyClient, so the callback has run (or not) when this returns.
      server.handleUpgrade(req, socket, head, (ws) => {
        upgraded = ws;
      });
    } catch (err) {
      return refuse(new BastionError(ErrorCode.INTERNAL, 'WebSocket upgrade failed', undefined, { cause: err }));
    }
    if (settled) return;
    if (upgraded === undefined) {
      // ws dropped the socket itself (the client had already half-closed it).
      settled = true;
      socket.destroy();
      reject(new BastionError(ErrorCode.CONNECTION_CLOSED, 'connection closed during the WebSocket handshake'));
      return;
    }
    settled = true;
    resolve(
      createWebSocketStreams(upgraded, subprotocol, {
        options: opts.options,
        closeTimeoutMs: opts.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS,
        socket,
        ...(opts.limits ? { limits: opts.limits } : {}),
      }),
    );
  });
}

interface HandshakeFault {
  error: BastionError;
  headers?: ReadonlyArray<readonly [string, string]>;
}

/** The RFC 6455 request checks, done here so each refusal gets a typed error and a Status. */
function checkHandshake(req: IncomingMessage): HandshakeFault | undefined {
  if (req.method !== 'GET') {
    // RFC 6455 upgrades are GET; kubectl's POST is SPDY and belongs to the other transport.
    return { error: new BastionError(ErrorCode.METHOD_NOT_ALLOWED, `WebSocket upgrade must use GET, not ${req.method ?? '?'}`) };
  }
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    return { error: new BastionError(ErrorCode.UPGRADE_REQUIRED, 'Upgrade: websocket required') };
  }
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !KEY_PATTERN.test(key)) {
    return { error: new BastionError(ErrorCode.BAD_STREAM_REQUEST, 'missing or invalid Sec-WebSocket-Key') };
  }
  const version = req.headers['sec-websocket-version'];
  if (version !== '13') {
    return {
      error: new BastionError(ErrorCode.BAD_STREAM_REQUEST, 'unsupported Sec-WebSocket-Version', { version }),
      headers: [['Sec-WebSocket-Version', '13']],
    };
  }
  return undefined;
}

function ignore(): void {}
