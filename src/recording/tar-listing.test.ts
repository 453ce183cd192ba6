import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectTarTransfer, TarLister, type TarFileEntry } from './tar-listing.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

let root: string;
let expected: TarFileEntry[];

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'kb-tar-'));
  const src = join(root, 'src');
  const longDir = join(src, 'd'.repeat(60), 'e'.repeat(60), 'f'.repeat(60));
  mkdirSync(longDir, { recursive: true });
  mkdirSync(join(src, 'empty-dir'));
  const files: Array<[string, Buffer]> = [
    ['hello.txt', Buffer.from('hello, world\n')],
    ['empty', Buffer.alloc(0)],
    ['binary.bin', randomBytes(100_003)],
    ['exactly-512', Buffer.alloc(512, 0x61)],
    ['ünï©ødé 🙂.txt', Buffer.from('unicode name\n')],
    // 60*3 + 3 + 110 > 255: needs a GNU long name ('L') or a pax path ('x')
    [join('d'.repeat(60), 'e'.repeat(60), 'f'.repeat(60), `${'n'.repeat(110)}.txt`), Buffer.from('deep\n')],
  ];
  for (const [name, data] of files) writeFileSync(join(src, name), data);
  symlinkSync('hello.txt', join(src, 'link'));
  expected = files.map(([name, data]) => ({ name: `./${name}`, size: data.length, sha256: sha(data) })).sort((a, b) => a.name.localeCompare(b.name));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

function tarOf(format: string, ...extra: string[]): Buffer {
  return execFileSync('tar', ['--format', format, '-cf', '-', '-C', join(root, 'src'), ...extra, '.'], { maxBuffer: 64 * 1024 * 1024 });
}

function listAll(bytes: Uint8Array, chunk: (i: number) => number, lister = new TarLister()): { files: TarFileEntry[]; status: string } {
  const files: TarFileEntry[] = [];
  for (let i = 0, k = 0; i < bytes.length; k++) {
    const n = Math.max(1, chunk(k));
    files.push(...lister.push(bytes.subarray(i, i + n)));
    i += n;
  }
  return { files, status: lister.end().status };
}

const sorted = (f: TarFileEntry[]): TarFileEntry[] => [...f].sort((a, b) => a.name.localeCompare(b.name));

describe('TarLister on archives made by the system tar', () => {
  for (const format of ['gnu', 'pax', 'oldgnu']) {
    it(`lists every regular file of a ${format} archive (name, size, sha256), long names included`, () => {
      const bytes = tarOf(format);
      const whole = listAll(bytes, () => bytes.length);
      expect(whole.status).toBe('complete');
      expect(sorted(whole.files)).toEqual(expected);
      // same result with odd chunk sizes
      const seeds = randomBytes(4096);
      const odd = listAll(bytes, (k) => 1 + seeds[k % seeds.length]! * 37);
      expect(sorted(odd.files)).toEqual(expected);
    });
  }

  it('lists a ustar archive (prefix + name) fed one byte at a time', () => {
    const bytes = tarOf('ustar', '--exclude', `./${'d'.repeat(60)}`, '--exclude', './binary.bin');
    const r = listAll(bytes, () => 1);
    expect(r.status).toBe('complete');
    expect(sorted(r.files)).toEqual(expected.filter((e) => !e.name.includes('ddd') && e.name !== './binary.bin'));
  });

  it('reads a ustar prefix field for names longer than 100 bytes', () => {
    const dir = join(root, 'ustar-long');
    const sub = join(dir, 'p'.repeat(90), 'q'.repeat(40));
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `${'r'.repeat(80)}.txt`), 'x');
    const bytes = execFileSync('tar', ['--format', 'ustar', '-cf', '-', '-C', dir, '.']);
    const r = listAll(bytes, () => 100);
    expect(r.files).toEqual([{ name: `./${'p'.repeat(90)}/${'q'.repeat(40)}/${'r'.repeat(80)}.txt`, size: 1, sha256: sha(Buffer.from('x')) }]);
  });

  it('reports a truncated archive and does not list the partial file', () => {
    const bytes = tarOf('gnu');
    const r = listAll(bytes.subarray(0, Math.floor(bytes.length / 2)), () => 4096);
    expect(r.status).toBe('truncated');
    expect(r.files.length).toBeLessThan(expected.length);
    for (const f of r.files) expect(expected).toContainEqual(f);
  });

  it('yields nothing for streams that are not tar', () => {
    for (const garbage of [Buffer.from('hello world\n'), randomBytes(10_000), Buffer.alloc(2048), Buffer.from('x'.repeat(600))]) {
      const r = listAll(garbage, () => 333);
      expect(r.files).toEqual([]);
      expect(r.status).toBe('not-tar');
    }
    expect(new TarLister().end().status).toBe('empty');
  });

  it('stops at a corrupt header after good entries', () => {
    const bytes = Buffer.from(tarOf('gnu'));
    // Find the second header (after hello or whatever comes first) and break its checksum.
    const lister = new TarLister();
    const first = lister.push(bytes.subarray(0, 512 * 3));
    void first;
    const corrupt = Buffer.from(bytes);
    // Corrupt every header-looking block after the first 2 KiB by flipping a name byte.
    for (let off = 2048; off + 512 <= corrupt.length; off += 512) {
      if (corrupt.subarray(off + 257, off + 262).toString('latin1') === 'ustar') {
        corrupt[off] = corrupt[off]! ^ 0x55;
        break;
      }
    }
    const r = listAll(corrupt, () => 1000);
    expect(r.status).toBe('corrupt');
    expect(r.files.length).toBeLessThan(expected.length);
  });

  it('keeps memory bounded: at most maxFiles entries, the rest counted', () => {
    const bytes = tarOf('gnu');
    const lister = new TarLister({ maxFiles: 2 });
    const r = listAll(bytes, () => 8192, lister);
    expect(r.files).toHaveLength(2);
    expect(lister.end()).toMatchObject({ status: 'complete', files: expected.length, omitted: expected.length - 2 });
  });

  it('ignores what follows the end-of-archive blocks', () => {
    const bytes = Buffer.concat([tarOf('gnu'), randomBytes(5000)]);
    const r = listAll(bytes, () => 777);
    expect(r.status).toBe('complete');
    expect(sorted(r.files)).toEqual(expected);
  });
});

describe('detectTarTransfer (which exec commands carry a tar archive)', () => {
  it('recognises the exact commands kubectl cp sends', () => {
    expect(detectTarTransfer(['tar', '-xmf', '-'], false)).toEqual({ direction: 'in', channel: 'stdin', compressed: false, via: 'kubectl-cp' });
    expect(detectTarTransfer(['tar', '-xmf', '-', '-C', '/tmp'], false)).toMatchObject({ direction: 'in', via: 'kubectl-cp' });
    expect(detectTarTransfer(['tar', '--no-same-permissions', '--no-same-owner', '-xmf', '-', '-C', '/tmp/dir'], false)).toMatchObject({ direction: 'in', via: 'kubectl-cp' });
    expect(detectTarTransfer(['tar', 'cf', '-', '/var/log/app.log'], false)).toEqual({ direction: 'out', channel: 'stdout', compressed: false, via: 'kubectl-cp' });
    expect(detectTarTransfer(['sh', '-c', 'tar cf - /var/log | tail -c+0'], false)).toMatchObject({ direction: 'out', via: 'kubectl-cp' });
  });

  it('recognises other tar spellings with archive "-"', () => {
    const cases: Array<[string[], 'in' | 'out']> = [
      [['tar', 'xf', '-', '-C', '/tmp/bar'], 'in'],
      [['/bin/tar', '-x', '-f', '-'], 'in'],
      [['tar', '-xf-'], 'in'],
      [['tar', '--extract', '--file=-'], 'in'],
      [['tar', '--extract', '--file', '-', '--directory', '/x'], 'in'],
      [['gtar', '-cvf', '-', 'dir'], 'out'],
      [['tar', '--create', '--file=-', 'dir'], 'out'],
      [['bsdtar', 'cbf', '20', '-', 'dir'], 'out'],
    ];
    for (const [cmd, direction] of cases) expect(detectTarTransfer(cmd, false), cmd.join(' ')).toMatchObject({ direction, via: 'tar' });
  });

  it('flags compressed archives', () => {
    expect(detectTarTransfer(['tar', 'czf', '-', 'dir'], false)).toMatchObject({ direction: 'out', compressed: true });
    expect(detectTarTransfer(['tar', '-x', '--gzip', '-f', '-'], false)).toMatchObject({ direction: 'in', compressed: true });
  });

  it('does not fire for other commands, other archives, or a TTY', () => {
    expect(detectTarTransfer(['tar', '-xmf', '-'], true)).toBeNull();
    expect(detectTarTransfer(['tar', 'cf', '/tmp/x.tar', 'dir'], false)).toBeNull();
    expect(detectTarTransfer(['tar', 'tf', '-'], false)).toBeNull();
    expect(detectTarTransfer(['tar', '--version'], false)).toBeNull();
    expect(detectTarTransfer(['cat', '-'], false)).toBeNull();
    expect(detectTarTransfer(['sh', '-c', 'tar cf - x > /tmp/y'], false)).toBeNull();
    expect(detectTarTransfer(['test', '-d', '/tmp'], false)).toBeNull();
    expect(detectTarTransfer([], false)).toBeNull();
    expect(detectTarTransfer(['echo', 'tar', 'cf', '-'], false)).toBeNull();
  });
});
