// The messages between the cutoff measure (bench/measures/cutoff.ts) and its client processes
// (bench/cutoff-clients.ts), and what both need to agree on.

/** Each session writes a line this often. */
export const SEND_EVERY_MS = 20;
export type ToClients =
  | {
      kind: 'start';
      target: { url: string; caPem: string; token: string; label: string };
      sessions: number;
      /** Opens in flight at once in this process. */
      inFlight: number;
      /** Epoch ms: none is started in the last quarter of ttlMs (at most 10 s) before it, and one under way OPEN_ABORT_BEFORE_MS before it is given up. Infinity: no limit. */
      openUntil: number;
      ttlMs: number;
    }
  /** The instant (epoch ms) the sessions end at, or a close estimate of it. */
  | { kind: 'watch'; at: number }
  /** Wait until every session closed (or 5 s past `at`), then answer `outcome`. */
  | { kind: 'report'; at: number };

export type FromClients =
  /** Loaded and listening (sent once, first). */
  | { kind: 'ready' }
  | { kind: 'opened'; open: number; failed: number; retried: number; late: number; reasons: Record<string, number> }
  | {
      kind: 'outcome';
      /** Per session, epoch ms (NaN: never): last byte, Status, close; the bytes that arrived after `at`; the Status's message (or why it closed without one). */
      sessions: Array<{ lastByteAt: number; statusAt: number; closedAt: number; bytesAfter: number; told: string }>;
      lag: { timerLagMs: number; loopP99Ms: number; loopMaxMs: number };
      /** Lines written in the second before the watched instant (the estimate sent 1 s ahead, for a revocation). */
      sentPerS: number;
    };
