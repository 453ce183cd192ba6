// Sinks observe a session's traffic as it is relayed: the recorder, live viewers, metrics.
// A sink that throws, or reports a failure through onFailure, cuts the session (fail closed).
import type { TerminalSize } from '../protocol/resize.js';
import type { Status } from '../protocol/status.js';
import type { TransportKind } from '../protocol/streams.js';
import type { EndReason, StreamOperation } from './vocabulary.js';

export type { EndReason } from './vocabulary.js';

export interface SessionEnd {
  reason: EndReason;
  exitCode: number | null;
  status: Status;
  bytesIn: number;
  bytesOut: number;
}

export interface SessionSink {
  /** Bytes from the agent to the container, before they are relayed. */
  stdin?(chunk: Buffer): void;
  stdout?(chunk: Buffer): void;
  stderr?(chunk: Buffer): void;
  resize?(size: TerminalSize): void;
  marker?(label: string): void;
  /**
   * Sinks that batch their writes: undefined while they can take more; otherwise a promise that
   * settles once they can (the relay stops reading the stream the chunk came from until then).
   */
  ready?(): Promise<void> | undefined;
  /**
   * Sinks that write after a call has returned (batches): `listener` is called if such a write
   * fails, and the relay cuts the session (fail closed).
   */
  onFailure?(listener: (err: Error) => void): void;
  /** The session is over; flush and close. */
  end?(end: SessionEnd): void | Promise<void>;
}

/** What a sink knows about the session it observes. */
export interface SessionInfo {
  id: string;
  approvalId: string | null;
  agent: { id: string; name: string };
  operation: StreamOperation;
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  tty: boolean;
  transport: TransportKind;
  protocol: string;
  upstreamProtocol: string;
}
