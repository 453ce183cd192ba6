// The cast worker's buffers go round: a batch's cast comes back joined in one buffer, and once the
// recorder has written it, that buffer returns to the thread with the next batch to be filled
// again (a new buffer per batch was promoted by V8 and freed only by full GCs). What comes back
// must be exactly what a CastBatch makes from the same calls, whichever buffer it is in.
import { afterAll, describe, expect, it } from 'vitest';
import { CastWorkerPool } from './cast-derivation.js';
import { newCastBatch } from './cast-ops.js';

const pool = new CastWorkerPool();
afterAll(() => pool.terminate());

const text = (bytes: number, seed: number): Buffer => Buffer.from(Array.from({ length: bytes }, (_, i) => String.fromCharCode(0x21 + ((i * 7 + seed) % 90))).join(''));

describe('cast worker buffers', () => {
  it('a written cast goes back to the thread and later casts (larger and smaller) are exact', async () => {
    const derivation = pool.session('v2', 's.raw');
    const local = newCastBatch('v2', 's.raw');
    let previous: Buffer | undefined;
    // Large, smaller, larger again: a reused buffer is longer than the cast put in it.
    const sizes = [300_000, 100_000, 700_000, 90_000, 1_500_000, 200_000];
    for (const [i, size] of sizes.entries()) {
      const chunk = text(size, i);
      derivation.text('stdout', i * 1_000_000, chunk);
      local.text('stdout', i * 1_000_000, chunk);
      const cast = await derivation.take();
      // The buffer recycled after the last batch was handed to the thread with this one.
      if (previous) expect(previous.buffer.byteLength).toBe(0);
      expect(cast.equals(local.take()[0]!)).toBe(true);
      derivation.recycle(cast); // "written"
      previous = cast;
    }
    derivation.close();
  });

  it('a small cast stays where it is; a cast recycled twice goes back once (the next batch still works)', async () => {
    const derivation = pool.session('v2', 't.raw');
    const local = newCastBatch('v2', 't.raw');
    derivation.text('stdout', 0, text(100, 1));
    local.text('stdout', 0, text(100, 1));
    const small = await derivation.take();
    expect(small.equals(local.take()[0]!)).toBe(true);
    derivation.recycle(small);
    derivation.text('stdout', 1_000_000, text(200_000, 2));
    local.text('stdout', 1_000_000, text(200_000, 2));
    const big = await derivation.take();
    // Under the reuse size: kept here, untouched.
    expect(small.buffer.byteLength).toBeGreaterThan(0);
    expect(big.equals(local.take()[0]!)).toBe(true);
    derivation.recycle(big);
    derivation.recycle(big);
    derivation.text('stdout', 2_000_000, text(50_000, 3));
    local.text('stdout', 2_000_000, text(50_000, 3));
    expect((await derivation.take()).equals(local.take()[0]!)).toBe(true);
    expect(big.buffer.byteLength).toBe(0);
    derivation.close();
  });
});
