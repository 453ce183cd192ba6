// One forwarded connection of a port-forward session, as the store keeps it and the review record,
// the API and the UI show it: which port, when, how it ended, the bytes each way with their
// SHA-256, the raw sidecar holding them, and what the traffic plainly was.
import type { ForwardOutcome, ForwardProtocol } from './vocabulary.js';

export interface ForwardedConnection {
  sessionId: string;
  /** 1, 2, 3... in the order the client opened them within the session. */
  seq: number;
  port: number;
  startedAt: string;
  /** Null while the connection is open. */
  endedAt: string | null;
  /** Null while open. */
  outcome: ForwardOutcome | null;
  /** Why it was refused, failed or cut (the text the client received on its error stream). */
  detail: string | null;
  /** Bytes from the agent to the pod. */
  bytesIn: number;
  /** Bytes from the pod to the agent. */
  bytesOut: number;
  /** SHA-256 (hex) of the bytes each way; null while open or when refused. */
  sha256In: string | null;
  sha256Out: string | null;
  /** The connection's raw sidecar (channel 0: agent to pod, 1: pod to agent, 3: the error-stream text), relative to the recordings directory; null when refused. */
  rawPath: string | null;
  rawSha256: string | null;
  protocol: ForwardProtocol | null;
}

/** What the session reports when a connection starts (it is written before any byte is relayed). */
export type ForwardedConnectionStart = Pick<ForwardedConnection, 'sessionId' | 'seq' | 'port' | 'startedAt' | 'rawPath'>;

/** What the session reports when it ends. */
export type ForwardedConnectionEnd = Pick<
  ForwardedConnection,
  'endedAt' | 'outcome' | 'detail' | 'bytesIn' | 'bytesOut' | 'sha256In' | 'sha256Out' | 'rawSha256' | 'protocol'
> & { endedAt: string; outcome: ForwardOutcome };
