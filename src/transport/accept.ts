// Picks the transport for an exec/attach upgrade: WebSocket (GET) or SPDY/3.1 (POST). Both carry
// the same operation; the caller treats them alike.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { BastionError, ErrorCode } from '../errors/index.js';
import { SPDY_UPGRADE } from '../protocol/constants.js';
import type { ServerStreams, StreamOptions, TransportKind } from '../protocol/streams.js';
import { acceptSpdyRemoteCommand } from './spdy/server.js';
import { acceptWebSocketRemoteCommand } from './websocket/server.js';

/** Which transport an upgrade request asks for, or undefined if it is not an upgrade we speak. */
export function upgradeKind(req: IncomingMessage): TransportKind | undefined {
  const upgrade = (req.headers.upgrade ?? '').toLowerCase();
  const connection = (req.headers.connection ?? '').toLowerCase();
  if (!connection.split(',').some((t) => t.trim() === 'upgrade')) return undefined;
  if (upgrade === 'websocket') return 'websocket';
  if (upgrade === SPDY_UPGRADE.toLowerCase()) return 'spdy';
  return undefined;
}

export interface AcceptedProtocols {
  websocket?: readonly string[];
  spdy?: readonly string[];
}

export function acceptRemoteCommand(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  options: StreamOptions,
  /** How long a SPDY client may take to open its streams after the 101 (WebSocket needs none). */
  setupTimeoutMs?: number,
  /** Protocol names accepted per transport (default: every one each transport implements). */
  supported: AcceptedProtocols = {},
): Promise<ServerStreams> {
  switch (upgradeKind(req)) {
    case 'websocket':
      return acceptWebSocketRemoteCommand(req, socket, head, { options, ...(supported.websocket ? { supported: supported.websocket } : {}) });
    case 'spdy':
      return acceptSpdyRemoteCommand(req, socket, head, {
        options,
        ...(setupTimeoutMs !== undefined ? { streamSetupTimeoutMs: setupTimeoutMs } : {}),
        ...(supported.spdy ? { supported: supported.spdy } : {}),
      });
    default:
      return Promise.reject(new BastionError(ErrorCode.UPGRADE_REQUIRED, 'Upgrade request required'));
  }
}
