// WebSocket subprotocols for remote-command (exec/attach): which names we accept, which protocol
// version each stands for, how each frames a channel message, and how the server picks one.
import { ProtocolName } from '../../protocol/constants.js';
import { negotiate, parseOffer, v1, v4, v5, type ChannelProtocol } from '../../protocol/versions/index.js';
import { BastionError, ErrorCode } from '../../errors/index.js';

export type Encoding = 'binary' | 'base64';

export interface WebSocketSubprotocol {
  /** The name echoed in Sec-WebSocket-Protocol; '' when the client offered none (kubelet's "" case). */
  readonly name: string;
  /** The version semantics (error channel format, v5 CLOSE). */
  readonly protocol: ChannelProtocol;
  /** binary: one channel byte + raw payload. base64: text, '0'+channel then standard base64. */
  readonly encoding: Encoding;
}

/**
 * Every subprotocol the WebSocket transport can speak, keyed by wire name. v2/v3 have no WebSocket
 * form (the kubelet never registered them), so a client offering only those is refused.
 */
export const SUBPROTOCOLS: ReadonlyMap<string, WebSocketSubprotocol> = new Map(
  [
    { name: ProtocolName.v5, protocol: v5, encoding: 'binary' },
    { name: ProtocolName.v4, protocol: v4, encoding: 'binary' },
    { name: ProtocolName.base64v4, protocol: v4, encoding: 'base64' },
    { name: ProtocolName.v1, protocol: v1, encoding: 'binary' },
    { name: ProtocolName.base64v1, protocol: v1, encoding: 'base64' },
  ].map((s) => [s.name, s as WebSocketSubprotocol]),
);

/** The default accepted list. Order does not matter: the client's order decides (see negotiate). */
export const DEFAULT_SUPPORTED: readonly string[] = [...SUBPROTOCOLS.keys()];

/** What a request that offers no subprotocol gets: channel.k8s.io framing, nothing echoed. */
const NO_OFFER: WebSocketSubprotocol = { name: '', protocol: v1, encoding: 'binary' };

export type Negotiation = { ok: true; subprotocol: WebSocketSubprotocol } | { ok: false; error: BastionError };

/**
 * Picks the subprotocol for an upgrade request.
 *
 * `offered` is the raw header, as `req.headersDistinct['sec-websocket-protocol']` gives it: clients
 * send either repeated lines (kubectl sends one name) or one comma-joined line (client-node).
 * The first offered name that is also in `supported` wins, like apimachinery's handshake, so a
 * client that lists v5 before v4 gets v5. With no header at all the kubelet serves channel.k8s.io
 * semantics and echoes nothing; we do the same, provided channel.k8s.io is supported.
 */
export function negotiateSubprotocol(
  offered: string | readonly string[] | undefined,
  supported: readonly string[] = DEFAULT_SUPPORTED,
): Negotiation {
  const unknown = supported.filter((name) => !SUBPROTOCOLS.has(name));
  if (unknown.length > 0) {
    return {
      ok: false,
      error: new BastionError(ErrorCode.CONFIG_INVALID, `no WebSocket framing for subprotocol(s): ${unknown.join(', ')}`, {
        unknown,
      }),
    };
  }
  const names = parseOffer(offered);
  if (names.length === 0) {
    if (supported.includes(ProtocolName.v1)) return { ok: true, subprotocol: NO_OFFER };
    return {
      ok: false,
      error: new BastionError(ErrorCode.BAD_STREAM_REQUEST, 'missing Sec-WebSocket-Protocol; supported: ' + supported.join(', '), {
        offered: [],
        supported: [...supported],
      }),
    };
  }
  const chosen = negotiate(names, supported);
  const subprotocol = chosen === undefined ? undefined : SUBPROTOCOLS.get(chosen);
  if (subprotocol === undefined) {
    return {
      ok: false,
      error: new BastionError(
        ErrorCode.NO_COMMON_PROTOCOL,
        `none of the offered WebSocket subprotocols is supported: offered ${names.join(', ')}; supported ${supported.join(', ')}`,
        { offered: names, supported: [...supported] },
      ),
    };
  }
  return { ok: true, subprotocol };
}

// ---------------------------------------------------------------------------------------------
// Framing

const DIGIT_ZERO = 0x30;

/** Encodes one channel message. Binary framing gives a Buffer, base64 framing a string (a text frame). */
export function encodeMessage(encoding: Encoding, channel: number, payload: Buffer): Buffer | string {
  if (encoding === 'base64') return String.fromCharCode(DIGIT_ZERO + channel) + payload.toString('base64');
  const message = Buffer.allocUnsafe(payload.length + 1);
  message[0] = channel;
  payload.copy(message, 1);
  return message;
}

/**
 * The channel number a (non-empty) message is addressed to. For base64 it is the first character
 * minus '0', as apimachinery computes it; a non-digit just lands on a channel nobody reads.
 */
export function channelOf(encoding: Encoding, message: Buffer): number {
  const first = message[0] ?? 0;
  return encoding === 'base64' ? first - DIGIT_ZERO : first;
}

/**
 * Strict standard base64 (with padding), as Go's base64.StdEncoding.Decode accepts it: CR and LF
 * are skipped, anything else outside the alphabet, or bad padding, is an error. Node's own decoder
 * silently drops bad characters, which would let garbage through into a recording.
 * Returns undefined when the text is not valid base64.
 */
export function decodeBase64Strict(text: Buffer): Buffer | undefined {
  let bytes = text;
  if (bytes.includes(0x0d) || bytes.includes(0x0a)) bytes = Buffer.from(bytes.filter((b) => b !== 0x0d && b !== 0x0a));
  const n = bytes.length;
  if (n % 4 !== 0) return undefined;
  for (let i = 0; i < n; i++) {
    const b = bytes[i] as number;
    if (isBase64Char(b)) continue;
    // '=' may only fill the last one or two positions, and nothing but '=' may follow it.
    if (b === 0x3d && (i === n - 1 || (i === n - 2 && bytes[n - 1] === 0x3d))) continue;
    return undefined;
  }
  return Buffer.from(bytes.toString('latin1'), 'base64');
}

function isBase64Char(b: number): boolean {
  return (
    (b >= 0x41 && b <= 0x5a) || // A-Z
    (b >= 0x61 && b <= 0x7a) || // a-z
    (b >= 0x30 && b <= 0x39) || // 0-9
    b === 0x2b || // +
    b === 0x2f // /
  );
}
