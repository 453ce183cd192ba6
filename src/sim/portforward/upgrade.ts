// The pods/portforward upgrade in its three forms, told apart as kube-apiserver tells them apart:
// a SPDY/3.1 POST (kubectl ≤1.30, and every version's fallback), a WebSocket GET offering
// `SPDY/3.1+portforward.k8s.io` (the tunnel of kubectl 1.31+), or any other WebSocket GET
// (the channel protocol with `?ports=`).
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Header, ProtocolName } from '../../protocol/constants.js';
import { parseOffer } from '../../protocol/versions/index.js';
import { apiStatus } from '../../protocol/status.js';
import { upgradeKind } from '../../transport/accept.js';
import { writeStatusToSocket } from '../../transport/http-response.js';
import { SpdyConnection, writeSwitchingProtocols } from '../../transport/spdy/index.js';
import { acceptChannels, chooseChannelProtocol, parsePorts, serveChannels } from './channels.js';
import { servePortForwardStreams } from './spdy.js';
import { PORT_FORWARD_TUNNEL_PROTOCOL, TUNNEL_PREFIX, acceptTunnel, isTunnelRequest, offeredSubprotocols } from './tunnel.js';
import type { PodTarget } from './target.js';

export type { PodTarget } from './target.js';

/** Serves one port-forward upgrade for `target`; resolves when the session is over. */
export async function servePortForward(req: IncomingMessage, socket: Duplex, head: Buffer, params: URLSearchParams, target: PodTarget): Promise<void> {
  switch (upgradeKind(req)) {
    case 'spdy':
      return serveSpdy(req, socket, head, target);
    case 'websocket':
      if (req.method !== 'GET') return refuse(socket, 400, 'BadRequest', `WebSocket upgrade must use GET, not ${req.method ?? '?'}`);
      if (isTunnelRequest(req)) return serveTunnel(req, socket, head, target);
      return serveChannelProtocol(req, socket, head, params, target);
    default:
      return refuse(socket, 400, 'BadRequest', 'Upgrade request required');
  }
}

function refuse(socket: Duplex, code: number, reason: string, message: string): void {
  writeStatusToSocket(socket, apiStatus(code, reason, message));
}

async function serveSpdy(req: IncomingMessage, socket: Duplex, head: Buffer, target: PodTarget): Promise<void> {
  const key = Header.streamProtocolVersion.toLowerCase();
  const offered = parseOffer(req.headersDistinct[key] ?? req.headers[key]);
  if (!offered.includes(ProtocolName.portForward)) {
    // httpstream.Handshake's wording; kubectl prints it.
    const message =
      offered.length === 0
        ? `unable to upgrade: ${Header.streamProtocolVersion} is required`
        : `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${ProtocolName.portForward}]`;
    writeStatusToSocket(
      socket,
      apiStatus(offered.length === 0 ? 400 : 403, offered.length === 0 ? 'BadRequest' : 'Forbidden', message),
      offered.length === 0 ? [] : [[Header.acceptedStreamProtocolVersions, ProtocolName.portForward]],
    );
    return;
  }
  writeSwitchingProtocols(socket, ProtocolName.portForward);
  (socket as Partial<Socket>).setNoDelay?.(true);
  await servePortForwardStreams(new SpdyConnection(socket, { role: 'server', head }), target);
}

async function serveTunnel(req: IncomingMessage, socket: Duplex, head: Buffer, target: PodTarget): Promise<void> {
  if (!offeredSubprotocols(req).includes(PORT_FORWARD_TUNNEL_PROTOCOL)) {
    // The API server strips the prefix and asks the kubelet, whose handshake refuses anything else.
    const inner = offeredSubprotocols(req)
      .filter((name) => name.startsWith(TUNNEL_PREFIX))
      .map((name) => name.slice(TUNNEL_PREFIX.length));
    return refuse(
      socket,
      403,
      'Forbidden',
      `unable to upgrade: unable to negotiate protocol: client supports [${inner.join(' ')}], server accepts [${ProtocolName.portForward}]`,
    );
  }
  const tunnel = await acceptTunnel(req, socket, head);
  if (!tunnel) return;
  await servePortForwardStreams(new SpdyConnection(tunnel, { role: 'server' }), target);
}

async function serveChannelProtocol(req: IncomingMessage, socket: Duplex, head: Buffer, params: URLSearchParams, target: PodTarget): Promise<void> {
  const ports = parsePorts(params);
  if (typeof ports === 'string') return refuse(socket, 400, 'BadRequest', ports);
  const offered = offeredSubprotocols(req);
  const chosen = chooseChannelProtocol(offered);
  if (!chosen) {
    return refuse(
      socket,
      403,
      'Forbidden',
      `requested protocol(s) are not supported: [${offered.join(' ')}]; supports [ ${CHANNEL_NAMES.join(' ')}]`,
    );
  }
  const ws = await acceptChannels(req, socket, head, chosen.name);
  if (!ws) return;
  await serveChannels(ws, chosen.encoding, ports, target);
}

const CHANNEL_NAMES = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io'];
