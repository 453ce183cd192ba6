import type { Status } from '../status.js';

/**
 * What one remote-command protocol version means, independent of the transport (SPDY streams or
 * WebSocket channels) that carries it.
 */
export interface ChannelProtocol {
  /** The name negotiated in X-Stream-Protocol-Version (SPDY) or Sec-WebSocket-Protocol. */
  readonly name: string;
  readonly version: 1 | 2 | 3 | 4 | 5;
  /** v3+: a resize stream/channel exists when a TTY is in use. */
  readonly supportsResize: boolean;
  /** v5: a client may half-close a single channel (WebSocket `[255, ch]`). */
  readonly supportsStreamClose: boolean;
  /**
   * The bytes written on the error stream/channel at the end of a session. v1-v3 carry plain text
   * (empty on success); v4+ carry a metav1.Status JSON.
   */
  encodeError(status: Status): Buffer;
  /** Reads what a server wrote on the error stream (client side). */
  decodeError(bytes: Buffer): Status;
}
