import type { Readable, Writable } from 'node:stream';
import type { ChannelProtocol } from './versions/types.js';
import type { Status } from './status.js';
import type { TerminalSize } from './resize.js';

/** What the client asked for in the exec/attach query (PodExecOptions / PodAttachOptions). */
export interface StreamOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** The transports a remote-command session arrives over. */
export const TRANSPORTS = ['spdy', 'websocket'] as const;
export type TransportKind = (typeof TRANSPORTS)[number];

/**
 * The server side of one accepted remote-command session, the same whatever transport carried it.
 * Transports (SPDY/3.1, WebSocket) produce it; the sim and the bastion consume it.
 *
 * Life cycle: the transport resolves it once every expected stream exists. The consumer pipes
 * data, then calls `finish(status)` exactly once (or `destroy` to cut the connection).
 */
export interface ServerStreams {
  readonly transport: TransportKind;
  /** The negotiated protocol version, with its wire name (e.g. `v5.channel.k8s.io`). */
  readonly protocol: ChannelProtocol;
  /** The wire name as negotiated, including a base64 variant when chosen. */
  readonly protocolName: string;
  readonly options: StreamOptions;
  /** The client's stdin; ends when the client half-closes it. Null when stdin was not requested. */
  readonly stdin: Readable | null;
  readonly stdout: Writable | null;
  /** Null with a TTY (stderr is merged into stdout) or when not requested. */
  readonly stderr: Writable | null;
  /** Subscribes to terminal sizes sent by the client. Returns an unsubscribe function. */
  onResize(listener: (size: TerminalSize) => void): () => void;
  /**
   * Ends the session the protocol's way: flushes stdout/stderr, writes `status` on the error
   * stream (encoded for the negotiated version) and closes the connection.
   */
  finish(status: Status): Promise<void>;
  /** Tears the connection down at once; nothing more is written. */
  destroy(reason?: Error): void;
  /** Resolves when the underlying connection is gone (after finish, destroy or a peer close). */
  readonly closed: Promise<void>;
}
