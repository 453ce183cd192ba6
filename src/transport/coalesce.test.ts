import { describe, expect, it } from 'vitest';
import { joinSmall, SMALL_CHUNK_BYTES } from './coalesce.js';

const b = (s: string): Buffer => Buffer.from(s);
const texts = (xs: Buffer[]): string[] => xs.map((x) => x.toString());

describe('joinSmall', () => {
  it('joins runs of small chunks up to the limit, keeps order, and never copies a large chunk', () => {
    const big = Buffer.alloc(10, 0x7a);
    const out = joinSmall([b('ab'), b('cd'), b('ef'), big, b('g'), b(''), b('hij')], 5);
    expect(texts(out)).toEqual(['abcd', 'ef', 'zzzzzzzzzz', 'ghij']);
    expect(out[2]).toBe(big);
  });

  it('never copies a chunk of SMALL_CHUNK_BYTES or more, even when it would fit the limit', () => {
    const a = Buffer.alloc(SMALL_CHUNK_BYTES, 1);
    const b2 = Buffer.alloc(SMALL_CHUNK_BYTES, 2);
    const out = joinSmall([b('x'), a, b2, b('y'), b('z')], 4 * SMALL_CHUNK_BYTES);
    expect(out.map((x) => x.length)).toEqual([1, SMALL_CHUNK_BYTES, SMALL_CHUNK_BYTES, 2]);
    expect(out[1]).toBe(a);
    expect(out[2]).toBe(b2);
  });

  it('hands back a single chunk as it is', () => {
    const one = b('only');
    const out = joinSmall([one], 2);
    expect(out).toHaveLength(1);
    expect(out[0]).toBe(one);
  });
});
