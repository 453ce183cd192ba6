// Accepts a pods/portforward upgrade in whichever of its three forms the client speaks, told apart
// as kube-apiserver tells them apart: a SPDY/3.1 POST (kubectl ≤1.30 and every version's
// fallback), a WebSocket GET offering a `SPDY/3.1+….k8s.io` subprotocol (the tunnel of kubectl
// 1.31+), or any other WebSocket GET (the channel protocol, ports in the query).
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { BastionError, ErrorCode } from '../../errors/index.js';
import { Header, ProtocolName } from '../../protocol/constants.js';
import { parseOffer } from '../../protocol/versions/index.js';
import { upgradeKind } from '../accept.js';
import { writeStatusToSocket } from '../http-response.js';
import { SpdyConnection } from '../spdy/connection.js';
import { writeSwitchingProtocols } from '../spdy/upgrade.js';
import { ChannelPortForwardServer, CHANNEL_SUBPROTOCOLS, acceptChannels, chooseChannelProtocol, parsePorts } from './channels.js';
import { SpdyPortForwardServer } from './spdy-pairs.js';
import { PORT_FORWARD_TUNNEL_PROTOCOL, TUNNEL_PREFIX, acceptTunnel, isTunnelRequest, offeredSubprotocols } from './tunnel.js';
import { PORT_FORWARD_SPDY_LIMITS, type PortForwardServer } from './types.js';

export interface AcceptPortForwardOptions {
  /** How long a SPDY client has to open both streams of a connection (default 30 s, the kubelet's). */
  streamCreationTimeoutMs?: number;
}

/**
 * Resolves once the client's connection is upgraded. Rejects with a BastionError when the request
 * is refused; the socket has then been answered with the matching Status (the wording is the
 * API server's, which kubectl prints).
 */
export async function acceptPortForward(req: IncomingMessage, socket: Duplex, head: Buffer, query: URLSearchParams, opts: AcceptPortForwardOptions = {}): Promise<PortForwardServer> {
  // Node's HTTP server drops its own socket error handler before 'upgrade'.
  socket.on('error', () => undefined);
  switch (upgradeKind(req)) {
    case 'spdy':
      return acceptSpdy(req, socket, head, opts);
    case 'websocket':
      if (req.method !== 'GET') throw refuse(socket, new BastionError(ErrorCode.METHOD_NOT_ALLOWED, `WebSocket upgrade must use GET, not ${req.method ?? '?'}`));
      if (isTunnelRequest(req)) return acceptTunnelled(req, socket, head, opts);
      return acceptChannelProtocol(req, socket, head, query);
    default:
      throw refuse(socket, new BastionError(ErrorCode.UPGRADE_REQUIRED, 'Upgrade request required'));
  }
}

function refuse(socket: Duplex, error: BastionError, headers: ReadonlyArray<readonly [string, string]> = []): BastionError {
  writeStatusToSocket(socket, error.toStatus(), headers);
  return error;
}

function acceptSpdy(req: IncomingMessage, socket: Duplex, head: Buffer, opts: AcceptPortForwardOptions): PortForwardServer {
  const key = Header.streamProtocolVersion.toLowerCase();
  const offered = parseOffer(req.headersDistinct[key] ?? req.headers[key]);
  if (offered.length === 0) throw refuse(socket, new BastionError(ErrorCode.BAD_STREAM_REQUEST, `unable to upgrade: ${Header.streamProtocolVersion} is required`));
  if (!offered.includes(ProtocolName.portForward)) {
    // httpstream.Handshake's wording; kubectl prints it.
    throw refuse(
      socket,
      new BastionError(ErrorCode.NO_COMMON_PROTOCOL, `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${ProtocolName.portForward}]`),
      [[Header.acceptedStreamProtocolVersions, ProtocolName.portForward]],
    );
  }
  writeSwitchingProtocols(socket, ProtocolName.portForward);
  (socket as Partial<Socket>).setNoDelay?.(true);
  return new SpdyPortForwardServer(new SpdyConnection(socket, { role: 'server', head, limits: PORT_FORWARD_SPDY_LIMITS }), 'spdy', 'spdy', ProtocolName.portForward, opts.streamCreationTimeoutMs);
}

async function acceptTunnelled(req: IncomingMessage, socket: Duplex, head: Buffer, opts: AcceptPortForwardOptions): Promise<PortForwardServer> {
  if (!offeredSubprotocols(req).includes(PORT_FORWARD_TUNNEL_PROTOCOL)) {
    // The API server strips the prefix and asks the kubelet, whose handshake refuses anything else.
    const inner = offeredSubprotocols(req)
      .filter((name) => name.startsWith(TUNNEL_PREFIX))
      .map((name) => name.slice(TUNNEL_PREFIX.length));
    throw refuse(
      socket,
      new BastionError(ErrorCode.NO_COMMON_PROTOCOL, `unable to upgrade: unable to negotiate protocol: client supports [${inner.join(' ')}], server accepts [${ProtocolName.portForward}]`),
    );
  }
  const tunnel = await acceptTunnel(req, socket, head);
  if (!tunnel) throw new BastionError(ErrorCode.BAD_STREAM_REQUEST, 'invalid WebSocket handshake');
  return new SpdyPortForwardServer(new SpdyConnection(tunnel, { role: 'server', limits: PORT_FORWARD_SPDY_LIMITS }), 'websocket', 'tunnel', PORT_FORWARD_TUNNEL_PROTOCOL, opts.streamCreationTimeoutMs);
}

async function acceptChannelProtocol(req: IncomingMessage, socket: Duplex, head: Buffer, query: URLSearchParams): Promise<PortForwardServer> {
  const ports = parsePorts(query);
  if (typeof ports === 'string') throw refuse(socket, new BastionError(ErrorCode.BAD_STREAM_REQUEST, ports));
  const offered = offeredSubprotocols(req);
  const chosen = chooseChannelProtocol(offered);
  if (!chosen) {
    throw refuse(
      socket,
      new BastionError(ErrorCode.NO_COMMON_PROTOCOL, `requested protocol(s) are not supported: [${offered.join(' ')}]; supports [ ${[...CHANNEL_SUBPROTOCOLS.keys()].join(' ')}]`),
    );
  }
  const ws = await acceptChannels(req, socket, head, chosen.name);
  if (!ws) throw new BastionError(ErrorCode.BAD_STREAM_REQUEST, 'invalid WebSocket handshake');
  return new ChannelPortForwardServer(ws, chosen.encoding, ports, chosen.name);
}
