// One timer for many deadlines: armed for the earliest instant asked for, it fires once and is
// re-armed by its owner (the approval service, for the next stored expiry; the deadline clock of
// the leases and relays). Kept apart from the
// service so the life cycle reads as state changes, and the timing rules (earliest wins, never
// beyond setTimeout's range, unref'd) are tested on their own.

/** setTimeout's largest delay; a later deadline is re-armed when this one fires. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export class DeadlineTimer {
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (ms since epoch); Infinity when none is armed. */
  private at = Infinity;
  private closed = false;

  constructor(
    private readonly onDue: () => void,
    private readonly now: () => number,
  ) {}

  /** Arms for instant `at` unless an earlier one is armed; `force` replaces whatever is armed. */
  armAt(at: number, force = false, now = this.now()): void {
    if (this.closed || !Number.isFinite(at)) return;
    if (!force && this.timer !== undefined && this.at <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.at = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.at = Infinity;
      this.onDue();
    }, Math.min(MAX_TIMER_DELAY_MS, Math.max(0, at - now)));
    this.timer.unref();
  }

  /** The instant armed, or Infinity. */
  get armedAt(): number {
    return this.at;
  }

  /** Nothing armed until the next armAt (unlike close, which is for good). */
  disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.at = Infinity;
  }

  close(): void {
    this.closed = true;
    this.disarm();
  }
}
