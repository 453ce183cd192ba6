import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ChannelDecoders, Utf8StreamDecoder } from './utf8-decoder.js';

// 1-, 2-, 3- and 4-byte characters side by side.
const TEXT = 'a é ß € 中文 🙂👍🏽 z';
const BYTES = Buffer.from(TEXT, 'utf8');

function decodeChunks(chunks: Uint8Array[]): string {
  const d = new Utf8StreamDecoder();
  return chunks.map((c) => d.push(c)).join('') + d.flush();
}

describe('Utf8StreamDecoder', () => {
  it('has characters of every length in the sample', () => {
    const lengths = new Set([...TEXT].map((c) => Buffer.byteLength(c)));
    expect([...lengths].sort()).toEqual([1, 2, 3, 4]);
  });

  it('decodes a split at every byte offset to the same text', () => {
    for (let i = 0; i <= BYTES.length; i++) {
      expect(decodeChunks([BYTES.subarray(0, i), BYTES.subarray(i)])).toBe(TEXT);
    }
  });

  it('decodes a three-way split at every pair of offsets', () => {
    for (let i = 0; i <= BYTES.length; i++) {
      for (let j = i; j <= BYTES.length; j++) {
        expect(decodeChunks([BYTES.subarray(0, i), BYTES.subarray(i, j), BYTES.subarray(j)])).toBe(TEXT);
      }
    }
  });

  it('holds back an incomplete character and writes it whole with the next chunk', () => {
    const smile = Buffer.from('🙂', 'utf8');
    const d = new Utf8StreamDecoder();
    expect(d.push(smile.subarray(0, 1))).toBe('');
    expect(d.push(smile.subarray(1, 3))).toBe('');
    expect(d.push(Buffer.concat([smile.subarray(3), Buffer.from('!')]))).toBe('🙂!');
    expect(d.flush()).toBe('');
  });

  it('decodes one byte at a time', () => {
    expect(decodeChunks([...BYTES].map((b) => Uint8Array.of(b)))).toBe(TEXT);
  });

  it('flushes an incomplete trailing sequence as U+FFFD', () => {
    const d = new Utf8StreamDecoder();
    expect(d.push(Buffer.from([0x41, 0xe2, 0x82]))).toBe('A');
    expect(d.flush()).toBe('\ufffd');
    // reusable after flush
    expect(d.push(Buffer.from('ok'))).toBe('ok');
  });

  it('keeps a leading BOM (byte-exact)', () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf, 0x68, 0x69]);
    expect(Buffer.from(decodeChunks([bom]), 'utf8')).toEqual(bom);
    expect(Buffer.from(decodeChunks([bom.subarray(0, 2), bom.subarray(2)]), 'utf8')).toEqual(bom);
  });

  it('replaces invalid bytes exactly as a one-shot TextDecoder, however the input is split', () => {
    const oneShot = new TextDecoder('utf-8', { ignoreBOM: true });
    const interesting = [0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80, 0xed, 0xa0, 0xf4, 0x90, 0xc0, 0x80, 0xbf, 0xff, 0x41];
    for (let n = 0; n < 3000; n++) {
      const len = 1 + (n % 14);
      const r = randomBytes(len + 3);
      const buf = Buffer.from(Array.from({ length: len }, (_, i) => (r[i]! & 1 ? interesting[r[i]! % interesting.length]! : r[i]!)));
      const cuts = Array.from({ length: 3 }, (_, i) => r[len + i]! % (len + 1)).sort((a, b) => a - b);
      const chunks = [buf.subarray(0, cuts[0]), buf.subarray(cuts[0], cuts[1]), buf.subarray(cuts[1], cuts[2]), buf.subarray(cuts[2])];
      expect(decodeChunks(chunks)).toBe(oneShot.decode(buf));
    }
  });

  it('round-trips valid UTF-8 byte for byte', () => {
    const all = Buffer.from('\u0000\u001b[1m' + TEXT + '\u2028\u{10ffff}\r\n', 'utf8');
    for (let i = 0; i <= all.length; i++) {
      expect(Buffer.from(decodeChunks([all.subarray(0, i), all.subarray(i)]), 'utf8').equals(all)).toBe(true);
    }
  });
});

describe('ChannelDecoders', () => {
  it('keeps state per channel when splits on two channels interleave', () => {
    const other = 'ошибка: 💥 ✗';
    const otherBytes = Buffer.from(other, 'utf8');
    for (let i = 0; i <= BYTES.length; i++) {
      for (let j = 0; j <= otherBytes.length; j++) {
        const d = new ChannelDecoders<'stdout' | 'stderr'>();
        let out = d.push('stdout', BYTES.subarray(0, i));
        let err = d.push('stderr', otherBytes.subarray(0, j));
        out += d.push('stdout', BYTES.subarray(i));
        err += d.push('stderr', otherBytes.subarray(j));
        for (const { channel, text } of d.flushAll()) {
          if (channel === 'stdout') out += text;
          else err += text;
        }
        expect(out).toBe(TEXT);
        expect(err).toBe(other);
      }
    }
  });

  it('flushes only channels with something held back', () => {
    const d = new ChannelDecoders();
    d.push('stdout', Buffer.from([0xe2]));
    d.push('stderr', Buffer.from('x'));
    expect(d.flushAll()).toEqual([{ channel: 'stdout', text: '\ufffd' }]);
  });
});
