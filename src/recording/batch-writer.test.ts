// BatchWriter's end: a write still queued behind other recordings' writes (many sessions ending at
// once share libuv's few threads) is waited for while writes complete; a disk on which nothing
// completes is a hung disk and fails the recording after endTimeoutMs.
import { describe, expect, it } from 'vitest';
import { BatchWriter, type BatchSource } from './batch-writer.js';

/** A source whose single batch is written by `write` (the test decides when it settles). */
function source(write: () => Promise<void>): BatchSource {
  let pending = true;
  return {
    batchedBytes: () => (pending ? 10 : 0),
    hasBatched: () => pending,
    take: () => {
      if (!pending) return undefined;
      pending = false;
      return { bytes: 10, write };
    },
    sync: () => Promise.resolve(),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('BatchWriter drain', () => {
  it('a slow write while other recordings complete theirs is waited for: the recording does not fail', async () => {
    const slow = new BatchWriter(source(() => sleep(1200)), { endTimeoutMs: 300, fsyncIntervalMs: 0 });
    slow.schedule();
    void slow.flush().catch(() => {});
    // Other sessions' writes keep completing meanwhile.
    let busy = true;
    const others = (async () => {
      while (busy) {
        const w = new BatchWriter(source(() => sleep(50)), { fsyncIntervalMs: 0 });
        w.schedule();
        await sleep(60);
      }
    })();
    slow.stop();
    const hanging = await slow.drain();
    busy = false;
    await others;
    expect(hanging).toBe(false);
    expect(slow.failure).toBeUndefined();
  });

  it('a write that never completes, with nothing else completing, fails the recording after endTimeoutMs', async () => {
    const hung = new BatchWriter(source(() => new Promise<void>(() => {})), { endTimeoutMs: 300, fsyncIntervalMs: 0 });
    hung.schedule();
    void hung.flush().catch(() => {});
    await sleep(400); // the last completion anywhere is older than endTimeoutMs
    hung.stop();
    const t0 = Date.now();
    const hanging = await hung.drain();
    expect(hanging).toBe(true);
    expect(Date.now() - t0).toBeLessThan(300 * 3);
    expect(hung.failure).toBe('the recording disk did not finish a write within 300 ms');
  });
});
