import { describe, expect, it } from 'vitest';
import { joinSmall } from './coalesce.js';

const b = (s: string): Buffer => Buffer.from(s);
const texts = (xs: Buffer[]): string[] => xs.map((x) => x.toString());

describe('joinSmall', () => {
  it('joins runs of small chunks up to the limit, keeps order, and never copies a large chunk', () => {
    const big = Buffer.alloc(10, 0x7a);
    const out = joinSmall([b('ab'), b('cd'), b('ef'), big, b('g'), b(''), b('hij')], 5);
    expect(texts(out)).toEqual(['abcd', 'ef', 'zzzzzzzzzz', 'ghij']);
    expect(out[2]).toBe(big);
  });

  it('hands back a single chunk as it is', () => {
    const one = b('only');
    const out = joinSmall([one], 2);
    expect(out).toHaveLength(1);
    expect(out[0]).toBe(one);
  });
});
