// BatchWriter's end: a write still queued behind other recordings' writes (many sessions ending at
// once share libuv's few threads) is waited for while writes complete, whoever writes them; a disk
// on which nothing completes is a hung disk and fails the recording after endTimeoutMs.
import { stat } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppendFile, nodeFileIo, type FileIo } from './append-file.js';
import { BatchWriter, DRAIN_PATIENCE, type BatchSource } from './batch-writer.js';

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

/** A recording whose batch takes 1,200 ms ends (endTimeoutMs 300) while `other` runs again and again: the end's verdict. */
async function drainWhileOthersWrite(other: (i: number) => Promise<void>): Promise<{ hanging: boolean; failure: string | undefined }> {
  const slow = new BatchWriter(source(() => sleep(1200)), { endTimeoutMs: 300, fsyncIntervalMs: 0 });
  slow.schedule();
  void slow.flush().catch(() => {});
  let busy = true;
  const others = (async () => {
    for (let i = 0; busy; i++) await other(i);
  })();
  slow.stop();
  const hanging = await slow.drain();
  busy = false;
  await others;
  return { hanging, failure: slow.failure };
}

describe('BatchWriter drain', () => {
  it('a slow write while other recordings complete theirs is waited for: the recording does not fail', async () => {
    const end = await drainWhileOthersWrite(async () => {
      const w = new BatchWriter(source(() => sleep(50)), { fsyncIntervalMs: 0 });
      w.schedule();
      await sleep(60);
    });
    expect(end).toEqual({ hanging: false, failure: undefined });
  });

  // Found with 1,000 sessions closed at once (bench concurrency, 2026-12-07): the other sessions'
  // ends write their last batch and fsync through AppendFile, not through a BatchWriter, and a
  // streaming session's write queued behind them was judged a hung disk (its last batch lost).
  it('a slow write while other recordings end (their last batch and fsync, through AppendFile) is waited for', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kb-drain-'));
    // Thread-pool calls that take 50 ms each, as when many are queued.
    const queued: FileIo = {
      ...nodeFileIo,
      write: async (...a) => (await sleep(50), nodeFileIo.write(...a)),
      fsync: async (fd) => (await sleep(50), nodeFileIo.fsync(fd)),
    };
    try {
      const end = await drainWhileOthersWrite(async (i) => {
        const f = new AppendFile(join(dir, `other-${i}.raw`));
        await f.append([Buffer.from('last batch')], queued);
        await f.closeAsync(queued);
      });
      expect(end).toEqual({ hanging: false, failure: undefined });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a write that completed while the event loop was held longer than endTimeoutMs is not a hung disk', async () => {
    // The write is a real thread-pool call: it completes while the loop is held below, and the
    // loop hears of it only after its expired timers have run.
    const w = new BatchWriter(source(() => new Promise<void>((resolve) => stat('.', () => resolve()))), { endTimeoutMs: 100, fsyncIntervalMs: 0 });
    w.schedule();
    void w.flush().catch(() => {});
    w.stop();
    const draining = w.drain();
    const until = Date.now() + 300; // ending a thousand sessions at once holds the loop like this
    while (Date.now() < until) {
      // busy
    }
    expect(await draining).toBe(false);
    expect(w.failure).toBeUndefined();
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

/** A source that has a small batch whenever the test adds one (typing), each written by `write`. */
function typing(write: () => Promise<void>): BatchSource & { type(): void } {
  let batched = 0;
  return {
    type: () => void (batched += 3),
    batchedBytes: () => batched,
    hasBatched: () => batched > 0,
    take: () => {
      if (batched === 0) return undefined;
      const bytes = batched;
      batched = 0;
      return { bytes, write };
    },
    sync: () => Promise.resolve(),
  };
}

describe('BatchWriter while the recording runs', () => {
  // "Unrecordable -> not run": a hung disk must cut a running session, not only fail its end. A
  // session typing a few bytes at a time never reaches maxUnwrittenBytes, so backpressure never
  // holds it; other sessions' completed writes must not keep it alive either.
  it('a write that never completes fails the recording within DRAIN_PATIENCE x endTimeoutMs, though other recordings complete theirs', async () => {
    const endTimeoutMs = 30;
    const src = typing(() => new Promise<void>(() => {}));
    const w = new BatchWriter(src, { endTimeoutMs, fsyncIntervalMs: 0, batchWindowMs: 5 });
    const failures: string[] = [];
    w.onFailure((err) => failures.push(err.message));
    let busy = true;
    const others = (async () => {
      while (busy) {
        const o = new BatchWriter(source(() => sleep(10)), { fsyncIntervalMs: 0, batchWindowMs: 1 });
        o.schedule();
        await sleep(15);
      }
    })();
    const t0 = Date.now();
    while (failures.length === 0 && Date.now() - t0 < endTimeoutMs * DRAIN_PATIENCE * 4) {
      src.type();
      w.schedule();
      expect(w.ready()).toBeUndefined(); // far below the backpressure bound: nothing holds the relay
      await sleep(20);
    }
    busy = false;
    await others;
    expect(failures).toEqual([`the recording disk did not finish a write within ${endTimeoutMs * DRAIN_PATIENCE} ms`]);
    expect(Date.now() - t0).toBeLessThan(endTimeoutMs * DRAIN_PATIENCE * 3);
  });

  it('a slow disk that completes each write within that bound does not fail the recording', async () => {
    const endTimeoutMs = 30;
    let writes = 0;
    const src = typing(async () => {
      await sleep(endTimeoutMs * 4); // slower than endTimeoutMs, and nothing else completes meanwhile
      writes++;
    });
    const w = new BatchWriter(src, { endTimeoutMs, fsyncIntervalMs: 0, batchWindowMs: 5 });
    const failures: string[] = [];
    w.onFailure((err) => failures.push(err.message));
    for (let i = 0; i < 40; i++) {
      src.type();
      w.schedule();
      await sleep(20);
    }
    await w.flush();
    expect(writes).toBeGreaterThanOrEqual(4);
    expect(failures).toEqual([]);
    expect(w.failure).toBeUndefined();
  });
});
