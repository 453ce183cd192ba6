// The shared tar codec and framer on their own; the readers built on them are tested with real
// archives in src/recording/tar-listing.test.ts and src/evidence/tar.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TarFramer, type TarFrame } from './framer.js';
import { BLOCK, decodePaxRecords, decodeTarHeader, encodeTarHeader, isZeroBlock, paddedSize, TarFormatError } from './header.js';

const fields = { name: 'dir/file.txt', typeflag: '0', size: 1234, mode: 0o640, mtime: 1_748_855_643 };

function rechecksum(block: Buffer, signed = false): void {
  block.write('        ', 148, 8, 'ascii');
  let sum = 0;
  for (const b of block) sum += signed && b > 127 ? b - 256 : b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
}

describe('tar header codec', () => {
  it('decodes what it encodes', () => {
    expect(decodeTarHeader(encodeTarHeader(fields))).toEqual({ ...fields, format: 'ustar' });
  });

  it('splits a long path into prefix and name, and joins them back', () => {
    const name = `${'p'.repeat(120)}/${'q'.repeat(90)}.txt`;
    const block = encodeTarHeader({ ...fields, name });
    expect(block.toString('utf8', 0, 94)).toBe(`${'q'.repeat(90)}.txt`);
    expect(decodeTarHeader(block).name).toBe(name);
    expect(() => encodeTarHeader({ ...fields, name: 'x'.repeat(101) })).toThrow(/too long/);
  });

  it('writes sizes beyond 11 octal digits base-256 and reads them back', () => {
    const size = 8 ** 11 + 7;
    const block = encodeTarHeader({ ...fields, size });
    expect(block[124]).toBe(0x80);
    expect(decodeTarHeader(block).size).toBe(size);
    block[124] = 0xff; // negative base-256
    rechecksum(block);
    expect(() => decodeTarHeader(block)).toThrow(/size/);
  });

  it('is read by GNU tar', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kb-tarhdr-'));
    try {
      const file = join(dir, 'one.tar');
      const body = Buffer.alloc(paddedSize(3));
      body.write('abc');
      writeFileSync(file, Buffer.concat([encodeTarHeader({ ...fields, size: 3 }), body, Buffer.alloc(2 * BLOCK)]));
      const listing = execFileSync('tar', ['-tvf', file], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
      expect(listing).toMatch(/^-rw-r----- 0\/0\s+3 2025-06-02 09:14 dir\/file\.txt$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts the signed checksum old tars wrote, refuses a wrong one', () => {
    const block = encodeTarHeader({ ...fields, name: 'ünï.txt' });
    rechecksum(block, true);
    expect(decodeTarHeader(block).name).toBe('ünï.txt');
    block[0] = block[0]! ^ 1;
    expect(() => decodeTarHeader(block)).toThrow(TarFormatError);
  });

  it('tells POSIX, old GNU and v7 headers apart (only POSIX has a prefix)', () => {
    const gnu = encodeTarHeader({ ...fields, name: `${'p'.repeat(120)}/n` });
    gnu.write('ustar  \0', 257, 8, 'latin1');
    rechecksum(gnu);
    expect(decodeTarHeader(gnu)).toMatchObject({ format: 'gnu', name: 'n' });
    const v7 = encodeTarHeader(fields);
    v7.fill(0, 257, 265);
    rechecksum(v7);
    expect(decodeTarHeader(v7).format).toBe('v7');
  });

  it('leaves unreadable mode and mtime undefined rather than failing the header', () => {
    const block = encodeTarHeader(fields);
    block.write('xyz', 100, 'ascii');
    block.write('9', 136, 'ascii');
    rechecksum(block);
    expect(decodeTarHeader(block)).toMatchObject({ mode: undefined, mtime: undefined, size: 1234 });
  });

  it('reads pax records (lengths in bytes) and stops at a malformed one', () => {
    const record = (k: string, v: string): string => {
      const body = ` ${k}=${v}\n`;
      const bytes = Buffer.byteLength(body);
      let len = bytes + 1;
      while (String(len).length + bytes !== len) len = String(len).length + bytes;
      return `${len}${body}`;
    };
    const data = Buffer.from(record('path', 'dïr/ñame 🙂.txt') + record('size', '42') + record('path', 'later') + 'zz junk\n' + record('size', '1'));
    expect([...decodePaxRecords(data)]).toEqual([
      ['path', 'later'],
      ['size', '42'],
    ]);
  });
});

describe('TarFramer', () => {
  // header, 700 bytes of content (padded to 1024), header with no content, two zero blocks
  const body = Buffer.alloc(700, 0x61);
  const archive = Buffer.concat([
    encodeTarHeader({ ...fields, size: 700 }),
    body,
    Buffer.alloc(paddedSize(700) - 700),
    encodeTarHeader({ ...fields, typeflag: '5', size: 0 }),
    Buffer.alloc(2 * BLOCK),
  ]);

  function frames(chunk: number): Array<{ kind: string; bytes: number; last?: boolean }> {
    const framer = new TarFramer();
    const out: Array<{ kind: string; bytes: number; last?: boolean }> = [];
    const content: Buffer[] = [];
    for (let i = 0; i < archive.length; i += chunk) {
      framer.feed(archive.subarray(i, i + chunk));
      for (let f: TarFrame | undefined = framer.next(); f; f = framer.next()) {
        if (f.kind === 'header') {
          out.push({ kind: 'header', bytes: BLOCK });
          if (isZeroBlock(f.block)) continue;
          const h = decodeTarHeader(f.block);
          if (h.typeflag === '0') framer.content(h.size);
        } else {
          content.push(Buffer.from(f.data));
          if (f.last) out.push({ kind: 'content', bytes: Buffer.concat(content).length, last: true });
        }
      }
    }
    expect(Buffer.concat(content).equals(body)).toBe(true);
    expect(framer.consumed).toBe(archive.length);
    expect(framer.atBoundary).toBe(true);
    return out;
  }

  it('yields headers and content without padding, however the bytes are chunked', () => {
    const expected = [{ kind: 'header', bytes: 512 }, { kind: 'content', bytes: 700, last: true }, { kind: 'header', bytes: 512 }, { kind: 'header', bytes: 512 }, { kind: 'header', bytes: 512 }];
    for (const chunk of [1, 100, 511, 512, 513, archive.length]) expect(frames(chunk), String(chunk)).toEqual(expected);
  });

  it('knows when it stopped inside an entry, and hands over the rest', () => {
    const framer = new TarFramer();
    framer.feed(archive.subarray(0, BLOCK + 700));
    const h = framer.next();
    expect(h?.kind).toBe('header');
    framer.content(700);
    expect(framer.next()).toMatchObject({ kind: 'data', last: true });
    expect(framer.next()).toBeUndefined();
    expect(framer.atBoundary).toBe(false); // the padding is missing
    framer.feed(Buffer.from('padding and more'));
    expect(framer.rest().toString()).toBe('padding and more');
    expect(framer.consumed).toBe(BLOCK + 700 + 16);
  });
});
