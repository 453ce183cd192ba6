// The server side of one port-forward session, the same whichever of the three forms carried it
// (SPDY/3.1, SPDY inside a WebSocket tunnel, the WebSocket channel protocol). The sim forwards each
// connection to a pod's port; the bastion gates, records and relays it upstream.
import type { Duplex } from 'node:stream';
import type { TransportKind } from '../../protocol/streams.js';

/** `spdy`: POST + SPDY/3.1; `tunnel`: GET, SPDY/3.1 frames inside WebSocket messages; `channels`: v4 channel protocol with `?ports=`. */
export const PORT_FORWARD_FORMS = ['spdy', 'tunnel', 'channels'] as const;
export type PortForwardForm = (typeof PORT_FORWARD_FORMS)[number];

/** One connection the client forwards: the pod port it asked for, its bytes, and its error stream. */
export interface ForwardStream {
  readonly port: number;
  /** The client's id for the connection (SPDY `requestID`; the port's index for channels). */
  readonly requestId: string;
  /**
   * The connection's bytes both ways. Ending it sends the client an end of data (SPDY FIN);
   * it ends when the client has sent everything; it is destroyed when the client resets it.
   */
  readonly data: Duplex;
  /** Ends the connection with `message` on its error stream: the client reports it (kubectl then ends its whole session). */
  fail(message: string): void;
  /** Ends the error stream with nothing: the connection ended normally. */
  done(): void;
}

export interface PortForwardServer {
  readonly transport: TransportKind;
  readonly form: PortForwardForm;
  /** The negotiated name: `portforward.k8s.io`, `SPDY/3.1+portforward.k8s.io`, `v4.channel.k8s.io`, ... */
  readonly protocolName: string;
  /** The ports the request named (channel protocol); undefined when they come per connection. */
  readonly ports: readonly number[] | undefined;
  /**
   * Delivers each connection the client opens, starting now (connections opened before are
   * delivered at once). A connection with an unusable port is answered by the transport itself.
   * With the channel protocol every port's connection exists from the start.
   */
  onConnection(listener: (stream: ForwardStream) => void): void;
  /** Ends the session gracefully once queued bytes are written: no more connections. */
  close(): Promise<void>;
  /** Tears the connection down at once. */
  destroy(): void;
  /** Resolves when the client's connection is gone. */
  readonly closed: Promise<void>;
  /** Why the connection failed (the client broke the protocol, the socket failed), once it has; undefined for a clean end. */
  readonly failure: Error | undefined;
}

/**
 * Connections one port-forward session may have open at once. Each is two SPDY streams; a browser
 * behind a forwarded port opens a dozen or more, and each stream's buffer is bounded.
 */
export const MAX_FORWARDED_CONNECTIONS = 512;
/** The SPDY stream limit that allows MAX_FORWARDED_CONNECTIONS (an error and a data stream each). */
export const PORT_FORWARD_SPDY_LIMITS = { maxConcurrentStreams: 2 * MAX_FORWARDED_CONNECTIONS } as const;

/** The kubelet's wording for an unusable port header or parameter (cri-streaming portforward). */
export function portProblem(text: string): string | undefined {
  if (!/^\d+$/.test(text) || Number(text) > 0xffff) return `unable to parse "${text}" as a port: strconv.ParseUint: parsing "${text}": invalid syntax`;
  if (Number(text) === 0) return `port "${text}" must be > 0`;
  return undefined;
}
