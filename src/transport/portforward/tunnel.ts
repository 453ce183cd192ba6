// The WebSocket tunnel kubectl 1.31+ uses for port-forward (client-go tunneling_connection.go):
// GET with the one subprotocol `SPDY/3.1+portforward.k8s.io`, then SPDY/3.1 frames carried in
// binary messages. kubectl writes each frame field as its own message (some empty), so message
// boundaries mean nothing: the messages are concatenated into a byte stream for the SPDY code.
import type { IncomingMessage } from 'node:http';
import { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { apiStatus } from '../../protocol/status.js';
import { writeStatusToSocket } from '../http-response.js';

export const TUNNEL_PREFIX = 'SPDY/3.1+';
export const PORT_FORWARD_TUNNEL_PROTOCOL = 'SPDY/3.1+portforward.k8s.io';

/**
 * `ws` checks subprotocols against RFC 7230's token characters, and `/` is not one: it would
 * answer 400 and kubectl would silently fall back to a SPDY POST. The name is swapped for this
 * token-safe alias before ws sees the request, and swapped back in the 101.
 */
const TOKEN_SAFE_ALIAS = 'kube-bastion.spdy-3.1-portforward.k8s.io';

/** The offered subprotocol names, from repeated and/or comma-joined headers. */
export function offeredSubprotocols(req: IncomingMessage): string[] {
  const lines = req.headersDistinct['sec-websocket-protocol'] ?? [];
  return lines.flatMap((line) => line.split(',')).map((name) => name.trim()).filter((name) => name !== '');
}

/**
 * True when the API server would tunnel this request (wsstream.IsWebSocketRequestWithTunnelingProtocol):
 * a protocol that starts with `SPDY/3.1+` and ends with `.k8s.io`.
 */
export function isTunnelRequest(req: IncomingMessage): boolean {
  return offeredSubprotocols(req).some((name) => name.startsWith(TUNNEL_PREFIX) && name.endsWith('.k8s.io'));
}

/**
 * Completes the WebSocket handshake with `SPDY/3.1+portforward.k8s.io` selected. Resolves with
 * the byte stream, or undefined when ws refused the handshake (it has answered the client).
 */
export function acceptTunnel(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<Duplex | undefined> {
  req.headers['sec-websocket-protocol'] = offeredSubprotocols(req)
    .map((name) => (name === PORT_FORWARD_TUNNEL_PROTOCOL ? TOKEN_SAFE_ALIAS : name))
    .filter((name) => !name.includes('/'))
    .join(', ');
  const server = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    // A SPDY DATA frame is at most 16 MiB; kubectl's messages are single frame fields.
    maxPayload: 17 * 1024 * 1024,
    handleProtocols: (offered) => (offered.has(TOKEN_SAFE_ALIAS) ? TOKEN_SAFE_ALIAS : false),
  });
  server.on('headers', (headers) => {
    const i = headers.indexOf(`Sec-WebSocket-Protocol: ${TOKEN_SAFE_ALIAS}`);
    if (i >= 0) headers[i] = `Sec-WebSocket-Protocol: ${PORT_FORWARD_TUNNEL_PROTOCOL}`;
  });
  return new Promise((resolve) => {
    let done = false;
    server.on('wsClientError', (err: Error) => {
      // With a listener, answering the bad handshake is ours to do.
      done = true;
      writeStatusToSocket(socket, apiStatus(400, 'BadRequest', `unable to upgrade: ${err.message}`));
      resolve(undefined);
    });
    server.handleUpgrade(req, socket, head, (ws) => {
      done = true;
      resolve(new TunnelStream(ws));
    });
    if (!done && socket.destroyed) resolve(undefined);
  });
}

/**
 * A WebSocket as a byte stream, like client-go's TunnelingConnection: each write is one binary
 * message, reads concatenate messages, a text message is an error, close 1000 is EOF.
 */
export class TunnelStream extends Duplex {
  constructor(private readonly ws: WebSocket) {
    super({ allowHalfOpen: false });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary) {
        this.destroy(new Error('invalid message type received'));
        return;
      }
      const chunk = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      if (chunk.length > 0 && !this.push(chunk)) ws.pause();
    });
    ws.on('close', () => {
      this.push(null);
      // Nothing can be sent any more either.
      queueMicrotask(() => this.destroy());
    });
    ws.on('error', (err) => this.destroy(err));
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) return callback(new Error('tunnel closed'));
    this.ws.send(chunk, { binary: true }, (err) => callback(err ?? null));
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.CLOSED) this.ws.terminate();
    callback(error);
  }
}
