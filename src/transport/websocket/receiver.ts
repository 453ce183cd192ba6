// Decodes the client's WebSocket messages into channel events. Pure: no socket, no streams, never
// throws; a bad message yields a failure that names the close code the connection must end with.
import { Channel } from '../../protocol/constants.js';
import { ResizeDecodeError, ResizeDecoder, type TerminalSize } from '../../protocol/resize.js';
import { BastionError, ErrorCode } from '../../errors/index.js';
import { channelOf, decodeBase64Strict, type WebSocketSubprotocol } from './subprotocols.js';

/** RFC 6455 close codes this transport uses. */
export const CloseCode = {
  normal: 1000,
  /** Malformed CLOSE signal (wrong length, bad channel). */
  protocolError: 1002,
  /** Upstream only: a text message on a binary subprotocol, or the reverse (session.ts). */
  unsupportedData: 1003,
  /** Bad base64, bad resize JSON (and, from ws itself, invalid UTF-8 in a text message). */
  invalidPayload: 1007,
  /** From ws itself: a message longer than maxPayload. */
  messageTooBig: 1009,
  internalError: 1011,
} as const;

export type ChannelEvent =
  | { readonly kind: 'stdin'; readonly data: Buffer }
  /** v5 `[255, 0]`: the client will send no more stdin. */
  | { readonly kind: 'stdin-end' }
  | { readonly kind: 'resize'; readonly size: TerminalSize };

export interface ReceiveFailure {
  readonly closeCode: number;
  /** Short close reason (RFC 6455 caps it at 123 bytes). */
  readonly closeReason: string;
  readonly error: BastionError;
}

export type ReceiveResult = { readonly ok: true; readonly events: ChannelEvent[] } | { readonly ok: false; readonly failure: ReceiveFailure };

export interface ReceiverOptions {
  /** stdin was requested: channel 0 data is delivered (otherwise discarded, like an ignored channel). */
  stdin: boolean;
  /** A TTY is in use: channel 4 carries resize JSON (otherwise discarded). */
  resize: boolean;
}

/** The channels a v5 CLOSE may name: apimachinery allocates exactly stdin..resize. */
const HIGHEST_CHANNEL = Channel.resize;

const NOTHING: ReceiveResult = { ok: true, events: [] };

export class ChannelReceiver {
  private readonly resizeDecoder = new ResizeDecoder();
  private stdinOpen: boolean;
  private resizeOpen: boolean;

  constructor(
    private readonly subprotocol: WebSocketSubprotocol,
    options: ReceiverOptions,
  ) {
    this.stdinOpen = options.stdin;
    this.resizeOpen = options.resize;
  }

  /** Decodes one complete WebSocket message (`isBinary` false for a text message; either is accepted). */
  receive(message: Buffer, isBinary: boolean): ReceiveResult {
    // An empty message carries no channel byte; apimachinery skips it.
    if (message.length === 0) return NOTHING;
    const { encoding, protocol } = this.subprotocol;
    // The frame type does not matter, as in apimachinery's wsstream (x/net/websocket hands it the
    // payload of text and binary frames alike): the official Python client sends stdin written as
    // a str in TEXT frames on v4.channel.k8s.io. The subprotocol alone decides the encoding; a text
    // frame's payload is valid UTF-8 (ws checks it), which changes nothing for the bytes.
    void isBinary;
    // Only v5 gives byte 255 a meaning. Elsewhere it is channel 255, which nobody reads, so it is
    // discarded below exactly as apimachinery's v4 server does.
    if (protocol.supportsStreamClose && encoding === 'binary' && message[0] === Channel.close) {
      return this.receiveClose(message);
    }
    const channel = channelOf(encoding, message);
    // Decide whether anyone reads this channel before decoding it: apimachinery drops messages for
    // unknown or unread channels without looking at the payload.
    const wanted = (channel === Channel.stdin && this.stdinOpen) || (channel === Channel.resize && this.resizeOpen);
    if (!wanted) return NOTHING;
    let payload = message.subarray(1);
    if (encoding === 'base64') {
      const decoded = decodeBase64Strict(payload);
      if (decoded === undefined) return fail(CloseCode.invalidPayload, 'invalid base64 payload', ErrorCode.WS_BAD_MESSAGE, { channel });
      payload = decoded;
    }
    // A zero-length payload (the conventional "connected" frame, or an empty write) means nothing.
    if (payload.length === 0) return NOTHING;
    if (channel === Channel.stdin) return { ok: true, events: [{ kind: 'stdin', data: payload }] };
    return this.receiveResize(payload);
  }

  private receiveClose(message: Buffer): ReceiveResult {
    if (message.length !== 2) {
      return fail(CloseCode.protocolError, 'CLOSE signal must be exactly 2 bytes', ErrorCode.WS_BAD_MESSAGE, {
        length: message.length,
      });
    }
    const channel = message[1] as number;
    if (channel > HIGHEST_CHANNEL) {
      return fail(CloseCode.protocolError, `CLOSE for unknown channel ${channel}`, ErrorCode.WS_UNKNOWN_CHANNEL, { channel });
    }
    if (channel === Channel.stdin && this.stdinOpen) {
      this.stdinOpen = false;
      return { ok: true, events: [{ kind: 'stdin-end' }] };
    }
    // Later data on a closed channel is dropped, as apimachinery's closed pipe drops it.
    if (channel === Channel.resize) this.resizeOpen = false;
    // Closing an output channel (or one already closed) is legal and means nothing to the server.
    return NOTHING;
  }

  private receiveResize(payload: Buffer): ReceiveResult {
    try {
      const sizes = this.resizeDecoder.push(payload);
      return { ok: true, events: sizes.map((size) => ({ kind: 'resize', size })) };
    } catch (err) {
      this.resizeOpen = false;
      if (err instanceof ResizeDecodeError) {
        return fail(CloseCode.invalidPayload, 'invalid resize message', ErrorCode.BAD_RESIZE, undefined, err);
      }
      return fail(CloseCode.internalError, 'resize decoding failed', ErrorCode.INTERNAL, undefined, err);
    }
  }
}

function fail(
  closeCode: number,
  reason: string,
  code: ErrorCode,
  details?: Record<string, unknown>,
  cause?: unknown,
): ReceiveResult {
  const error = new BastionError(code, reason, { closeCode, ...details }, cause === undefined ? undefined : { cause });
  return { ok: false, failure: { closeCode, closeReason: reason, error } };
}
