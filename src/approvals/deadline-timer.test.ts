import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineTimer, MAX_TIMER_DELAY_MS } from './deadline-timer.js';

describe('DeadlineTimer', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  it('fires once at the earliest instant armed; a later arm does not postpone it', () => {
    const fired: number[] = [];
    const t = new DeadlineTimer(() => fired.push(Date.now()), () => Date.now());
    t.armAt(1_000_500);
    t.armAt(1_000_900);
    expect(t.armedAt).toBe(1_000_500);
    vi.advanceTimersByTime(499);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([1_000_500]);
    expect(t.armedAt).toBe(Infinity);
    vi.advanceTimersByTime(10_000);
    expect(fired).toHaveLength(1);
  });

  it('an earlier arm replaces a later one; force replaces an earlier one', () => {
    const fired: number[] = [];
    const t = new DeadlineTimer(() => fired.push(Date.now()), () => Date.now());
    t.armAt(1_000_900);
    t.armAt(1_000_200);
    vi.advanceTimersByTime(200);
    expect(fired).toEqual([1_000_200]);
    t.armAt(1_000_300);
    t.armAt(1_000_700, true);
    vi.advanceTimersByTime(1_000);
    expect(fired).toEqual([1_000_200, 1_000_700]);
  });

  it('a past instant fires at once; a far one is clamped to setTimeout range; close disarms for good', () => {
    let fired = 0;
    const t = new DeadlineTimer(() => fired++, () => Date.now());
    t.armAt(1);
    vi.advanceTimersByTime(0);
    expect(fired).toBe(1);
    t.armAt(Date.now() + MAX_TIMER_DELAY_MS * 3);
    vi.advanceTimersByTime(MAX_TIMER_DELAY_MS);
    expect(fired).toBe(2);
    t.armAt(Date.now() + 10);
    t.close();
    t.armAt(Date.now() + 10);
    vi.advanceTimersByTime(100);
    expect(fired).toBe(2);
    expect(t.armedAt).toBe(Infinity);
  });
});
