// What every stream session shares while it is set up: the race of each setup step against the
// lease and the setup deadline, the words a lease end adds to the agent's message, and the one
// outcome each attempt ends in (for the request's audit row).
import type { ApprovalLease, LeaseEnd } from '../approvals/lease.js';
import type { EndReason } from '../model/session.js';

/** How the attempt ended, for the request's one audit row. */
export interface SessionOutcome {
  /** Whether the agent's transport was accepted (the connection was upgraded). */
  upgraded: boolean;
  /** The session row, when one was written. */
  sessionId: string | null;
  /** Whether anything was dialed upstream. */
  dialed: boolean;
  reason: EndReason;
  /** What the reason alone does not say (the refused handshake's error, who revoked and why). */
  detail?: string;
  /** HTTP-like code for the audit row: 101 once upgraded, else the refusal's code. */
  status: number;
  bytesIn: number;
  bytesOut: number;
}

/** How long a Status may take to reach an agent whose transport is still being accepted after its lease ended. */
export const STATUS_GRACE_MS = 1000;

/** The words a lease end adds to the agent's Status: who ended it and why. */
export function leaseEndDetail(end: LeaseEnd): string | undefined {
  if (end.reason === 'expired') return undefined;
  if (end.reason === 'error') return end.why ?? undefined;
  return `by ${end.by}${end.why ? ` (${end.why})` : ''}`;
}

export type Setup<T> = { ok: true; value: T } | { ok: false; reason: EndReason; detail?: string; error?: unknown };

/**
 * Runs `step` until it settles, the lease ends or the setup deadline passes, whichever is first.
 * `abort` is called when the step loses the race (it must make the step settle soon). `late` says
 * who did not answer in time, for the Status.
 */
export async function raceSetup<T>(step: Promise<T>, lease: ApprovalLease, deadline: number, abort: () => void, late?: string): Promise<Setup<T>> {
  let offLease = (): void => {};
  let timer: NodeJS.Timeout | undefined;
  const lost = new Promise<Setup<T>>((resolve) => {
    offLease = lease.onEnd((end) => resolve({ ok: false, reason: end.reason, ...(leaseEndDetail(end) ? { detail: leaseEndDetail(end)! } : {}) }));
    timer = setTimeout(() => resolve({ ok: false, reason: 'setup-timeout', ...(late ? { detail: late } : {}) }), Math.max(0, deadline - Date.now()));
  });
  const won = step.then(
    (value): Setup<T> => ({ ok: true, value }),
    (error: unknown): Setup<T> => ({ ok: false, reason: 'error', error }),
  );
  try {
    const first = await Promise.race([won, lost]);
    if (!first.ok && first.error === undefined) abort();
    return first;
  } finally {
    offLease();
    clearTimeout(timer);
  }
}

export function outcome(o: Partial<SessionOutcome> & Pick<SessionOutcome, 'reason' | 'status'>): SessionOutcome {
  return { upgraded: false, sessionId: null, dialed: false, bytesIn: 0, bytesOut: 0, ...o };
}

