// The ustar writer and reader: round trips, and both directions against GNU tar.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOCK } from '../tar/header.js';
import { listTar, readTar, tarChunks, tarHeader, tarSize, type TarWriteEntry } from './tar.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kb-tar-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(c);
  return Buffer.concat(parts);
}

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

const longDir = `evidence-apr_abcdefghijklmnopqrst/${'deep/'.repeat(20)}`.replace(/\/$/, '');
const mtime = new Date('2025-06-02T09:14:03.000Z');
const files: Array<{ name: string; data: Buffer }> = [
  { name: 'top/empty.txt', data: Buffer.alloc(0) },
  { name: 'top/one.bin', data: bytes(1) },
  { name: 'top/a511.bin', data: bytes(511, 2) },
  { name: 'top/a512.bin', data: bytes(512, 3) },
  { name: 'top/a513.bin', data: bytes(513, 4) },
  { name: 'top/sessions/ses_abcdefghijklmnopqrst.raw', data: bytes(70_000, 5) },
  { name: 'top/ünïcode-名前.json', data: Buffer.from('{"ok":true}\n') },
  { name: `${longDir}/file-with-a-long-name.cast`, data: Buffer.from('[0.5, "o", "hi"]\n') },
];

function entries(chunkSize = 1000): TarWriteEntry[] {
  return [
    { type: 'directory', name: 'top', mtime },
    { type: 'directory', name: 'top/sessions', mtime },
    ...files.map(
      (f): TarWriteEntry => ({
        type: 'file',
        name: f.name,
        size: f.data.length,
        mtime,
        // Several chunks per file, to exercise the writer's accounting.
        body: function* () {
          for (let i = 0; i < f.data.length; i += chunkSize) yield f.data.subarray(i, i + chunkSize);
        },
      }),
    ),
  ];
}

describe('tar writer and reader', () => {
  it('round-trips files of every size class and the directories, and tarSize predicts the length', async () => {
    const archive = await collect(tarChunks(entries()));
    expect(archive.length).toBe(tarSize(entries().map((e) => ({ type: e.type, size: e.type === 'file' ? e.size : 0 }))));
    expect(archive.length % BLOCK).toBe(0);
    const read = await listTar(archive);
    expect(read.filter((e) => e.type === 'directory').map((e) => e.name)).toEqual(['top', 'top/sessions']);
    const got = read.filter((e) => e.type === 'file');
    expect(got.map((e) => e.name)).toEqual(files.map((f) => f.name));
    for (const [i, f] of files.entries()) {
      expect(got[i]!.size).toBe(f.data.length);
      expect(got[i]!.data.equals(f.data), f.name).toBe(true);
      expect(got[i]!.mtime.toISOString()).toBe(mtime.toISOString());
      expect(got[i]!.mode).toBe(0o644);
    }
  });

  it('reads an archive fed one byte at a time', async () => {
    const archive = await collect(tarChunks(entries()));
    const seen: string[] = [];
    await readTar(
      (function* () {
        for (let i = 0; i < archive.length; i++) yield archive.subarray(i, i + 1);
      })(),
      { file: (h) => ({ write: () => undefined, end: () => void seen.push(h.name) }) },
    );
    expect(seen).toEqual(files.map((f) => f.name));
  });

  it('is read by GNU tar: listing, sizes and extracted bytes', async () => {
    const archive = await collect(tarChunks(entries()));
    const file = join(dir, 'ours.tar');
    writeFileSync(file, archive);
    const listing = execFileSync('tar', ['-tvf', file], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    for (const f of files) {
      const line = listing.split('\n').find((l) => l.endsWith(` ${f.name}`));
      expect(line, f.name).toBeDefined();
      expect(line).toMatch(new RegExp(`^-rw-r--r-- 0/0\\s+${f.data.length} 2025-06-02 `));
    }
    expect(listing).toMatch(/^drwxr-xr-x .* top\/$/m);
    const out = join(dir, 'gnu-extract');
    mkdirSync(out);
    execFileSync('tar', ['-xf', file, '-C', out]);
    for (const f of files) expect(readFileSync(join(out, f.name)).equals(f.data), f.name).toBe(true);
  });

  it('reads what GNU tar writes in ustar format', async () => {
    const src = join(dir, 'gnu-src');
    mkdirSync(join(src, 'evidence-x', 'sessions'), { recursive: true });
    writeFileSync(join(src, 'evidence-x', 'manifest.json'), '{}\n');
    writeFileSync(join(src, 'evidence-x', 'sessions', 'a.raw'), bytes(10_000));
    const file = join(dir, 'gnu.tar');
    execFileSync('tar', ['--format=ustar', '-cf', file, '-C', src, 'evidence-x']);
    const read = await listTar(readFileSync(file));
    const byName = new Map(read.map((e) => [e.name, e]));
    expect(byName.get('evidence-x')?.type).toBe('directory');
    expect(byName.get('evidence-x/manifest.json')?.data.toString()).toBe('{}\n');
    expect(byName.get('evidence-x/sessions/a.raw')?.data.equals(bytes(10_000))).toBe(true);
  });

  it('writes sizes of 8 GiB and more base-256, and reads them back', async () => {
    const size = 8 ** 11 + 12345;
    const header = tarHeader({ name: 'big.raw', type: 'file', size, mode: 0o644, mtime });
    expect(header[124]).toBe(0x80);
    let seen = 0;
    // Only the header: the reader reports the entry, then finds the body missing.
    await expect(
      readTar([header], {
        file: (h) => {
          seen = h.size;
          return { write: () => undefined, end: () => undefined };
        },
      }),
    ).rejects.toThrow(/truncated/);
    expect(seen).toBe(size);
  });

  it('fails a body that does not match its declared size', async () => {
    const bad: TarWriteEntry = { type: 'file', name: 'x', size: 10, body: () => [Buffer.alloc(9)] };
    await expect(collect(tarChunks([bad]))).rejects.toThrow(/yielded 9 bytes, declared 10/);
    const over: TarWriteEntry = { type: 'file', name: 'x', size: 1, body: () => [Buffer.alloc(2)] };
    await expect(collect(tarChunks([over]))).rejects.toThrow(/more than/);
  });

  it('refuses unsafe names when writing', () => {
    for (const name of ['/etc/passwd', '../x', 'a/../b', 'a//b', '']) {
      expect(() => tarHeader({ name, type: 'file', size: 0, mode: 0o644, mtime }), name).toThrow(/unsafe/);
    }
  });

  describe('the reader refuses', () => {
    async function archiveWith(patch: (header: Buffer) => void): Promise<Buffer> {
      const archive = await collect(tarChunks([{ type: 'file', name: 'top/a.txt', size: 3, body: () => [Buffer.from('abc')] }]));
      const header = archive.subarray(0, BLOCK);
      patch(header);
      // Recompute the checksum so only the patched field is wrong.
      header.write('        ', 148, 8, 'ascii');
      let sum = 0;
      for (const b of header) sum += b;
      header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
      return archive;
    }

    it('a header whose checksum does not match', async () => {
      const archive = await collect(tarChunks(entries()));
      archive[5] = archive[5]! ^ 0x01;
      await expect(listTar(archive)).rejects.toThrow(/checksum/);
    });

    it('a truncated archive', async () => {
      const archive = await collect(tarChunks(entries()));
      await expect(listTar(archive.subarray(0, archive.length - BLOCK * 2 - 100))).rejects.toThrow(/truncated/);
      await expect(listTar(archive.subarray(0, archive.length - BLOCK))).rejects.toThrow(/truncated/);
    });

    it('path escapes and absolute paths', async () => {
      for (const name of ['../evil', '/etc/evil', 'top/../../evil']) {
        const archive = await archiveWith((h) => {
          h.fill(0, 0, 100);
          h.write(name, 0, 'utf8');
        });
        await expect(listTar(archive), name).rejects.toThrow(/unsafe entry name/);
      }
    });

    it('links and other entry types', async () => {
      for (const flag of ['1', '2', '3', 'x', 'L']) {
        const archive = await archiveWith((h) => h.write(flag, 156, 1, 'ascii'));
        await expect(listTar(archive), flag).rejects.toThrow(/unsupported type/);
      }
    });

    it('data after the end of the archive', async () => {
      const archive = await collect(tarChunks(entries()));
      await expect(listTar(Buffer.concat([archive, Buffer.from('junk')]))).rejects.toThrow(/after the end/);
      // Zero padding (as tar writes to fill a record) is fine.
      await expect(listTar(Buffer.concat([archive, Buffer.alloc(10 * BLOCK)]))).resolves.toBeDefined();
    });
  });
});
