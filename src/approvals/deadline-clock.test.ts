// The process's deadline clock: any poll after an instant expires everything due at it, in
// deadline order, once; a quiet loop is covered by its one timer, also when that timer fires early.
import { describe, expect, it } from 'vitest';
import { DeadlineClock } from './deadline-clock.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A clock whose time the test sets; its timer is real (armed for deadline - now). */
function manual(start = 1_000_000) {
  let t = start;
  const clock = new DeadlineClock(() => t);
  return { clock, set: (ms: number) => (t = ms), start };
}

describe('DeadlineClock: polls', () => {
  it('a poll before the deadline expires nothing; the first poll at it expires every entry due, in deadline order, once', () => {
    const { clock, start } = manual();
    const fired: string[] = [];
    clock.add(start + 60_000, () => fired.push('b'));
    clock.add(start + 50_000, () => fired.push('a'));
    clock.add(start + 70_000, () => fired.push('later'));
    clock.poll(start + 49_999);
    expect(fired).toEqual([]);
    clock.poll(start + 60_000);
    expect(fired).toEqual(['a', 'b']);
    clock.poll(start + 60_001);
    expect(fired).toEqual(['a', 'b']);
    expect(clock.size).toBe(1);
    clock.poll(start + 70_000);
    expect(fired).toEqual(['a', 'b', 'later']);
    expect(clock.size).toBe(0);
  });

  it('an entry removed before its deadline never fires, and its removal does not hide a later one', () => {
    const { clock, start } = manual();
    const fired: string[] = [];
    const off = clock.add(start + 10_000, () => fired.push('removed'));
    clock.add(start + 20_000, () => fired.push('kept'));
    off();
    clock.poll(start + 15_000);
    expect(fired).toEqual([]);
    clock.poll(start + 20_000);
    expect(fired).toEqual(['kept']);
  });

  it('after every entry is gone, a new entry with the same deadline as a removed one still expires on the timer', async () => {
    const { clock, set, start } = manual();
    const fired: string[] = [];
    clock.add(start + 30, () => fired.push('first'))();
    clock.add(start + 30, () => fired.push('second'));
    set(start + 30);
    await sleep(80);
    expect(fired).toEqual(['second']);
  });

  it('an expiry that throws does not keep the others due at the same instant from expiring; the error is reported, not swallowed', () => {
    const errors: unknown[] = [];
    const start = 1_000_000;
    const clock = new DeadlineClock(() => start, (err) => errors.push(err));
    const fired: string[] = [];
    clock.add(start + 5, () => {
      throw new Error('boom');
    });
    clock.add(start + 5, () => fired.push('other'));
    clock.poll(start + 5);
    expect(fired).toEqual(['other']);
    expect(errors).toEqual([new Error('boom')]);
  });

  it('an expiry that polls again (a cut whose sinks see a chunk) does not expire anything twice', () => {
    const { clock, start } = manual();
    const fired: string[] = [];
    clock.add(start + 5, () => {
      fired.push('a');
      clock.poll(start + 6);
    });
    clock.add(start + 5, () => fired.push('b'));
    clock.poll(start + 5);
    expect(fired).toEqual(['a', 'b']);
  });

  it('an entry removed by an earlier expiry of the same poll does not fire (its owner has ended)', () => {
    const { clock, start } = manual();
    const fired: string[] = [];
    let offB = (): void => {};
    clock.add(start + 5, () => {
      fired.push('a');
      offB();
    });
    offB = clock.add(start + 5, () => fired.push('b'));
    clock.poll(start + 5);
    expect(fired).toEqual(['a']);
    expect(clock.size).toBe(0);
  });

  it('poll returns the time to check a chunk against: read again when expiries ran (a slow cut may pass another deadline)', () => {
    const { clock, set, start } = manual();
    // Stands for the cuts of many sessions due at start + 5 taking 3 ms of the loop.
    clock.add(start + 5, () => set(start + 8));
    expect(clock.poll(start + 4)).toBe(start + 4);
    expect(clock.poll(start + 5)).toBe(start + 8);
    expect(clock.poll(start + 9)).toBe(start + 9);
  });

  it('an entry added during an expiry with a deadline already past expires without another poll', async () => {
    const { clock, set, start } = manual();
    set(start + 5);
    const fired: string[] = [];
    clock.add(start + 5, () => {
      fired.push('a');
      clock.add(start + 1, () => fired.push('added late'));
    });
    clock.poll(start + 5);
    expect(fired).toEqual(['a']);
    await sleep(20);
    expect(fired).toEqual(['a', 'added late']);
  });
});

describe('DeadlineClock: the timer (a quiet loop)', () => {
  it('expires at the deadline with no poll at all', async () => {
    const clock = new DeadlineClock();
    const at: number[] = [];
    const deadline = Date.now() + 40;
    clock.add(deadline, () => at.push(Date.now()));
    await sleep(15);
    expect(at).toEqual([]);
    await sleep(120);
    expect(at).toHaveLength(1);
    expect(at[0]).toBeGreaterThanOrEqual(deadline);
  });

  it('a timer that runs before the deadline by the clock (timers may fire early) arms again and expires at it', async () => {
    const { clock, set, start } = manual();
    const fired: number[] = [];
    clock.add(start + 30, () => fired.push(1));
    // The timer runs after 30 ms of real time, but the clock reads 10 ms short of the deadline.
    set(start + 20);
    await sleep(60);
    expect(fired).toEqual([]);
    set(start + 30);
    await sleep(60);
    expect(fired).toEqual([1]);
  });

  it('an earlier deadline added after a later one is expired by the timer at its own time', async () => {
    const clock = new DeadlineClock();
    const fired: string[] = [];
    clock.add(Date.now() + 60_000, () => fired.push('later'));
    clock.add(Date.now() + 20, () => fired.push('sooner'));
    await sleep(100);
    expect(fired).toEqual(['sooner']);
    expect(clock.size).toBe(1);
  });
});
