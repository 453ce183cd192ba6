// The HTTP side of a SPDY/3.1 upgrade: protocol negotiation as apimachinery's
// httpstream.Handshake does it, the refusal answers kubectl understands, and the 101 response.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { BastionError, ErrorCode } from '../../errors/index.js';
import { Header, SPDY_UPGRADE } from '../../protocol/constants.js';
import { ALL_VERSIONS, negotiate, parseOffer, protocolByName, type ChannelProtocol } from '../../protocol/versions/index.js';
import { writeStatusToSocket } from '../http-response.js';

/** What the server offers by default, most preferred first: v5, v4, v3, v2, channel.k8s.io. */
export const DEFAULT_SPDY_PROTOCOLS: readonly string[] = ALL_VERSIONS.map((p) => p.name);

export interface Negotiated {
  protocol: ChannelProtocol;
  /** The name sent back in X-Stream-Protocol-Version. */
  name: string;
}

/** The client's offer, from repeated and/or comma-joined X-Stream-Protocol-Version lines. */
function offeredProtocols(req: IncomingMessage): string[] {
  const key = Header.streamProtocolVersion.toLowerCase();
  const distinct = req.headersDistinct?.[key];
  return parseOffer(distinct ?? req.headers[key]);
}

/**
 * Picks the first protocol the client offers that the server supports. Throws a BastionError
 * the caller turns into the HTTP refusal (refuseUpgrade): UPGRADE_REQUIRED when the request does
 * not ask for SPDY/3.1, BAD_STREAM_REQUEST (400) without an offer, NO_COMMON_PROTOCOL (403) when
 * nothing matches, CONFIG_INVALID when `supported` names a protocol this code does not implement.
 */
export function negotiateSpdy(req: IncomingMessage, supported: readonly string[]): Negotiated {
  const unknown = supported.filter((name) => !protocolByName(name));
  if (unknown.length > 0 || supported.length === 0) {
    throw new BastionError(ErrorCode.CONFIG_INVALID, `unsupported remote-command protocols configured: ${unknown.join(', ') || '(none)'}`);
  }
  const upgrade = (req.headers.upgrade ?? '').toLowerCase();
  if (!upgrade.split(',').some((token) => token.trim() === SPDY_UPGRADE.toLowerCase())) {
    throw new BastionError(ErrorCode.UPGRADE_REQUIRED, `unable to upgrade: expected Upgrade: ${SPDY_UPGRADE}`);
  }
  const offered = offeredProtocols(req);
  if (offered.length === 0) {
    throw new BastionError(ErrorCode.BAD_STREAM_REQUEST, `unable to upgrade: ${Header.streamProtocolVersion} is required`);
  }
  const name = negotiate(offered, supported);
  if (name === undefined) {
    throw new BastionError(
      ErrorCode.NO_COMMON_PROTOCOL,
      `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${supported.join(' ')}]`,
      { offered, supported: [...supported] },
    );
  }
  return { protocol: protocolByName(name)!, name };
}

/** Answers a refused upgrade with the error's metav1.Status and closes the connection. */
export function refuseUpgrade(socket: Duplex, err: BastionError, supported: readonly string[]): void {
  // After an upgrade, Node's HTTP server no longer listens for socket errors; a peer that has
  // already gone (EPIPE, ECONNRESET) must not crash the process.
  socket.on('error', () => undefined);
  const extra: [string, string][] =
    err.code === ErrorCode.NO_COMMON_PROTOCOL ? supported.map((name) => [Header.acceptedStreamProtocolVersions, name]) : [];
  writeStatusToSocket(socket, err.toStatus(), extra);
}

/** The 101 that apimachinery's SPDY upgrader sends; SPDY frames may follow at once. */
export function writeSwitchingProtocols(socket: Duplex, protocolName: string): void {
  socket.write(
    [
      'HTTP/1.1 101 Switching Protocols',
      'Connection: Upgrade',
      `Upgrade: ${SPDY_UPGRADE}`,
      `${Header.streamProtocolVersion}: ${protocolName}`,
      '',
      '',
    ].join('\r\n'),
    'latin1',
  );
}
