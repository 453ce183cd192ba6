// Sinks observe a session's traffic as it is relayed: the recorder, live viewers, metrics.
// A sink that throws cuts the session (fail closed: nothing flows that was not recorded).
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
