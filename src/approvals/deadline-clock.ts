// One clock for every deadline in the process (approval expiries, held by leases and relays), so
// that whichever event the event loop handles first after an instant ends everything due at it.
//
// Why not a timer per session: under load one turn of the loop handles a long backlog of socket
// events before it runs any timer, so a session whose own timer and own chunks both sit behind that
// backlog is cut late; 200 sessions expiring at once were cut up to 100 ms and more after their
// deadline that way, while the loop was already relaying other sessions' chunks past it. Here any
// relayed chunk polls the clock (one comparison) and the first one after the deadline cuts every
// session due; the single timer covers a quiet loop.

import { DeadlineTimer } from './deadline-timer.js';

interface Entry {
  readonly deadline: number;
  readonly expire: () => void;
  /** Its owner called the removal: set also while a poll that found it due is still expiring others. */
  removed: boolean;
}

export class DeadlineClock {
  private readonly entries = new Set<Entry>();
  /** The earliest deadline held, or earlier (a removed entry's: harmless, the next poll recomputes it). */
  private next = Infinity;
  private firing = false;
  /** For a quiet loop: armed for `next`. Timers may fire a millisecond early (their start is the loop's cached time): fire() then finds nothing due and arms again. */
  private readonly timer = new DeadlineTimer(() => this.fire(this.now()), () => this.now());

  constructor(
    // Read late (not `= Date.now`): a clock replaced after construction (tests' fake timers) is the one used.
    private readonly now: () => number = () => Date.now(),
    // A throwing expiry is as loud as a throwing timer callback was: uncaught, after the others ran.
    private readonly onError: (err: unknown) => void = (err) => queueMicrotask(() => {
      throw err;
    }),
  ) {}

  /**
   * Calls `expire` once, at the first poll or timer at or after `deadline` (epoch ms), unless the
   * returned function is called first. A deadline already past expires on the next poll or timer.
   */
  add(deadline: number, expire: () => void): () => void {
    const entry: Entry = { deadline, expire, removed: false };
    this.entries.add(entry);
    if (deadline < this.next) this.next = deadline;
    this.timer.armAt(this.next);
    return () => {
      entry.removed = true;
      this.entries.delete(entry);
      if (this.entries.size > 0) return;
      this.next = Infinity;
      this.timer.disarm();
    };
  }

  /**
   * Called on every relayed chunk: expires whatever is due (one comparison otherwise). Returns the
   * time the chunk's own deadline is to be checked against: `now`, or the clock read again when
   * expiries ran, since cutting many sessions takes time and may pass the chunk's own deadline.
   */
  poll(now: number = this.now()): number {
    if (now < this.next) return now;
    this.fire(now);
    return this.now();
  }

  /** How many deadlines are held (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  private fire(now: number): void {
    // An expire callback that polls (a cut relays nothing, but it may run sinks that do) must not
    // fire the same entries twice.
    if (this.firing) return;
    this.firing = true;
    try {
      const due: Entry[] = [];
      let next = Infinity;
      for (const e of this.entries) {
        if (e.deadline <= now) due.push(e);
        else if (e.deadline < next) next = e.deadline;
      }
      for (const e of due) this.entries.delete(e);
      this.next = next;
      due.sort((a, b) => a.deadline - b.deadline);
      for (const e of due) {
        // Removed by an expiry before it in this run (its session ended): not expired any more.
        if (e.removed) continue;
        try {
          e.expire();
        } catch (err) {
          // One session's failing cut must not keep the others from being cut.
          this.onError(err);
        }
      }
    } finally {
      this.firing = false;
    }
    if (this.next === Infinity) this.timer.disarm();
    else this.timer.armAt(this.next, true);
  }
}

/** The process's clock: leases and relays of every bastion in the process share it. */
export const deadlines = new DeadlineClock();
