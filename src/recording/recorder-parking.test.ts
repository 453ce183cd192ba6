// A quiet recording gives up its file descriptors (AppendFile.park, after quietMs with nothing
// written) and takes them again when its next record is batched: the files stay exact and their
// hashes true; a file that vanished, was replaced or changed while parked, or cannot be opened
// (EMFILE), fails that sink call (the relay cuts before the bytes move) instead of being created
// anew or written elsewhere; a write in flight keeps its descriptor.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fdsOn } from '../../test/helpers/fds.js';
import type { SessionEnd } from '../model/session.js';
import { exitCodeStatus } from '../protocol/status.js';
import { AppendFile, nodeFileIo, type FileIo } from './append-file.js';
import { readRawSidecar } from './raw-sidecar.js';
import { ForwardRecording } from './forward-recorder.js';
import { createRecorder, type RecorderOptions, type RecorderSink } from './recorder.js';

const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const realClockUs = (): number => Number(process.hrtime.bigint() / 1000n);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kb-park-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Waits (in steps of the quiet interval) until both files of `rec` hold no descriptor. */
async function parked(rec: RecorderSink): Promise<void> {
  await rec.flush();
  for (let i = 0; i < 100 && fdsOn(rec.rawPath) + fdsOn(rec.castPath) > 0; i++) await sleep(60);
  expect(fdsOn(rec.rawPath) + fdsOn(rec.castPath)).toBe(0);
}

function options(over: Partial<RecorderOptions> = {}): RecorderOptions {
  return {
    dir,
    approvalId: 'apr_abcdefghijklmnopqrst',
    sessionId: 'ses_abcdefghijklmnopqrst',
    format: 'v2',
    recordStdin: true,
    clockUs: realClockUs,
    batchWindowMs: 10,
    fsyncIntervalMs: 20,
    quietMs: 60,
    header: { agent: 'ci-bot', namespace: 'default', pod: 'web-0', container: 'app', command: ['cat'], tty: false, transport: 'websocket', protocol: 'v5.channel.k8s.io' },
    ...over,
  };
}

const end: SessionEnd = { reason: 'completed', exitCode: 0, status: exitCodeStatus(0), bytesIn: 0, bytesOut: 0 };

describe('a quiet recording parks its files', () => {
  it('after quietMs both files hold no descriptor; the next output takes them again; files and hashes are exact', async () => {
    const rec = createRecorder(options());
    rec.stdout(Buffer.from('first\n'));
    expect(fdsOn(rec.rawPath)).toBe(1);
    expect(fdsOn(rec.castPath)).toBe(1);
    await rec.flush(); // the first batch waits for the cast worker's start
    await sleep(250);
    expect(fdsOn(rec.rawPath)).toBe(0);
    expect(fdsOn(rec.castPath)).toBe(0);
    // Output again: written through descriptors opened again (append), then quiet again.
    rec.stdout(Buffer.from('second\n'));
    rec.stderr(Buffer.from('err\n'));
    await rec.flush();
    expect(fdsOn(rec.rawPath) + fdsOn(rec.castPath)).toBe(2);
    await sleep(250);
    expect(fdsOn(rec.rawPath) + fdsOn(rec.castPath)).toBe(0);
    rec.stdout(Buffer.from('third\n'));
    rec.end(end);
    const result = await rec.finished;
    expect(result.error).toBeUndefined();
    expect(fdsOn(rec.rawPath) + fdsOn(rec.castPath)).toBe(0);

    expect(sha(readFileSync(rec.rawPath))).toBe(result.rawSha256);
    expect(sha(readFileSync(rec.castPath))).toBe(result.castSha256);
    const raw = readRawSidecar(readFileSync(rec.rawPath));
    expect(raw.truncated).toBe(false);
    const stdout = Buffer.concat(raw.records.filter((r) => r.channel === 1).map((r) => r.data)).toString();
    expect(stdout).toBe('first\nsecond\nthird\n');
    expect(result.channelSha256['stdout']).toBe(sha('first\nsecond\nthird\n'));
    expect(result.channelSha256['stderr']).toBe(sha('err\n'));
    const cast = readFileSync(rec.castPath, 'utf8');
    expect(cast).toContain('"o", "first\\n"');
    expect(cast).toContain('"o", "third\\n"');
  });

  it('a sidecar that vanished while parked is not created anew: the next sink call throws (the relay cuts before its bytes move)', async () => {
    const rec = createRecorder(options());
    rec.stdout(Buffer.from('before\n'));
    await parked(rec);
    unlinkSync(rec.rawPath);
    expect(() => rec.stdout(Buffer.from('after\n'))).toThrow(/ENOENT/);
    // Every later call throws too, and the end says why.
    expect(() => rec.stdin(Buffer.from('more\n'))).toThrow(/ENOENT/);
    await expect(rec.end(end)).rejects.toThrow(/ENOENT/);
    const result = await rec.finished;
    expect(result.error).toMatch(/ENOENT/);
    expect(result.channelSha256['stdout']).not.toBe(sha('before\nafter\n'));
    expect(() => readFileSync(rec.rawPath)).toThrow(/ENOENT/);
  });

  it('a parked recording that cannot open its files again (EMFILE: the descriptor limit) fails the sink call that wakes it', async () => {
    let limit = false;
    const emfile = Object.assign(new Error('EMFILE: too many open files, open'), { code: 'EMFILE' });
    const io: FileIo = { ...nodeFileIo, openSync: (path, flags, mode) => {
      if (limit) throw emfile;
      return nodeFileIo.openSync(path, flags, mode);
    } };
    const rec = createRecorder(options({ io }));
    rec.stdout(Buffer.from('before\n'));
    await parked(rec);
    limit = true;
    expect(() => rec.stdin(Buffer.from('keystroke'))).toThrow(/EMFILE/);
    limit = false;
    await expect(rec.end(end)).rejects.toThrow(/EMFILE/);
    expect(fdsOn(rec.rawPath) + fdsOn(rec.castPath)).toBe(0);
  });

  for (const [what, swap] of [
    ['renamed over by another file', (path: string) => {
      writeFileSync(`${path}.other`, 'not the recording\n');
      renameSync(`${path}.other`, path);
    }],
    ['swapped for a symlink to another file', (path: string) => {
      writeFileSync(`${path}.target`, 'somebody else\'s file\n');
      unlinkSync(path);
      symlinkSync(`${path}.target`, path);
    }],
    ['truncated', (path: string) => truncateSync(path, 10)],
  ] as const) {
    it(`a sidecar ${what} while parked is not written to: the sink call that wakes it throws, and the other file is untouched`, async () => {
      const rec = createRecorder(options());
      rec.stdout(Buffer.from('before\n'));
      await parked(rec);
      swap(rec.rawPath);
      const onDisk = readFileSync(rec.rawPath);
      expect(() => rec.stdout(Buffer.from('after\n'))).toThrow(/not the file this recording wrote/);
      await expect(rec.end(end)).rejects.toThrow(/not the file this recording wrote/);
      expect(readFileSync(rec.rawPath)).toEqual(onDisk);
    });
  }

  it('a sidecar renamed over while parked, then the session ends: its last records are not appended to the other file; the end fails', async () => {
    const rec = createRecorder(options());
    rec.stdout(Buffer.from('before\n'));
    await parked(rec);
    writeFileSync(`${rec.rawPath}.other`, 'not the recording\n');
    renameSync(`${rec.rawPath}.other`, rec.rawPath);
    await expect(rec.end(end)).rejects.toThrow(/not the file this recording wrote/);
    expect(readFileSync(rec.rawPath, 'utf8')).toBe('not the recording\n');
  });

  it('with quiet never reached (output every few ms) the files keep their descriptors', async () => {
    const rec = createRecorder(options());
    for (let i = 0; i < 20; i++) {
      rec.stdout(Buffer.from(`line ${i}\n`));
      await sleep(10);
    }
    expect(fdsOn(rec.rawPath)).toBe(1);
    rec.end(end);
    await rec.finished;
  });
});

/** While `pending` (an I/O held until `release`) runs, park() keeps the descriptor; then it settles. */
async function parkRefusedUntil(f: AppendFile, path: string, pending: Promise<void>, release: () => void): Promise<void> {
  f.park();
  expect(f.isParked).toBe(false);
  expect(fdsOn(path)).toBe(1);
  release();
  await pending;
}

describe('AppendFile.park', () => {
  /** nodeFileIo, with the open calls and their flags counted. */
  function countingIo(): FileIo & { opens: Array<string | number> } {
    const opens: Array<string | number> = [];
    return { ...nodeFileIo, opens, openSync: (path, flags, mode) => (opens.push(flags), nodeFileIo.openSync(path, flags, mode)) };
  }

  it('reopens to append on the next write, sync or close of unsynced data; a clean parked file closes without opening', async () => {
    const io = countingIo();
    const path = join(dir, 'f');
    const f = new AppendFile(path, io);
    f.write(Buffer.from('a'));
    f.park();
    expect(f.isParked).toBe(true);
    expect(f.isOpen).toBe(true);
    expect(fdsOn(path)).toBe(0);
    await f.append([Buffer.from('b'), Buffer.from('c')], io);
    expect(f.isParked).toBe(false);
    await f.syncAsync(io);
    f.park();
    expect(f.sha256()).toBe(sha('abc')); // the running hash while parked
    const opensBefore = io.opens.length;
    expect(await f.closeAsync(io)).toBe(sha('abc'));
    expect(io.opens.length).toBe(opensBefore); // clean: no open just to close
    expect(readFileSync(path, 'utf8')).toBe('abc');
    expect(io.opens[0]).toBe('wx');
    expect(typeof io.opens[1]).toBe('number'); // O_WRONLY | O_APPEND, no O_CREAT
  });

  it('reopens only the file it created, unchanged: another file at the path, or the file with other contents, is refused', () => {
    const path = join(dir, 'r');
    const f = new AppendFile(path);
    f.write(Buffer.from('ours'));
    f.park();
    writeFileSync(`${path}.other`, 'theirs');
    renameSync(`${path}.other`, path);
    expect(() => f.write(Buffer.from('+more'))).toThrow(/not the file this recording wrote/);
    expect(readFileSync(path, 'utf8')).toBe('theirs');
    expect(fdsOn(path)).toBe(0);

    const g = new AppendFile(join(dir, 's'));
    g.write(Buffer.from('ours'));
    g.park();
    writeFileSync(join(dir, 's'), 'ours, and then some', { flag: 'a' });
    expect(() => g.write(Buffer.from('+more'))).toThrow(/not the file this recording wrote/);
    expect(readFileSync(join(dir, 's'), 'utf8')).toBe('oursours, and then some');
  });

  it('is refused while an fsync is in flight', async () => {
    const path = join(dir, 'h');
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const io: FileIo = { ...nodeFileIo, fsync: async (fd) => (await held, nodeFileIo.fsync(fd)) };
    const f = new AppendFile(path, io);
    await f.append([Buffer.from('y')], io);
    await parkRefusedUntil(f, path, f.syncAsync(io), release);
    f.park();
    expect(f.isParked).toBe(true);
    expect(await f.closeAsync(io)).toBe(sha('y'));
  });

  it('is refused while an append is in flight, and after freeze (a hung write keeps its descriptor)', async () => {
    const path = join(dir, 'g');
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const io: FileIo = { ...nodeFileIo, write: async (fd, b, o, l) => (await held, nodeFileIo.write(fd, b, o, l)) };
    const f = new AppendFile(path, io);
    await parkRefusedUntil(f, path, f.append([Buffer.from('x')], io), release);
    f.freeze();
    f.park();
    expect(f.isParked).toBe(false);
    expect(fdsOn(path)).toBe(1);
    f.abandon();
    expect(fdsOn(path)).toBe(0);
  });
});

describe('a parked port-forward connection sidecar', () => {
  /** A connection's recording that wrote a request and then parked its sidecar (no descriptor on it). */
  async function parkedForward(sessionId: string): Promise<ForwardRecording> {
    const rec = new ForwardRecording({ dir, approvalId: 'a1', sessionId, seq: 1, port: 8080, startedAt: new Date(), batchWindowMs: 10, fsyncIntervalMs: 20, quietMs: 60 });
    rec.toPod(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await rec.flush();
    for (let i = 0; i < 100 && fdsOn(rec.path) > 0; i++) await sleep(60);
    expect(fdsOn(rec.path)).toBe(0);
    return rec;
  }

  it('that vanished fails the chunk that wakes it, before the chunk is batched', async () => {
    const rec = await parkedForward('s1');
    unlinkSync(rec.path);
    expect(() => rec.fromPod(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'))).toThrow(/ENOENT/);
    expect(() => rec.fromPod(Buffer.from('again'))).toThrow(/ENOENT/);
    await expect(rec.end()).rejects.toThrow(/ENOENT/);
  });

  it('renamed over while parked, then ended with nothing more to write: the end fails (its hashes would describe no file at its path)', async () => {
    const rec = await parkedForward('s2');
    writeFileSync(`${rec.path}.other`, 'theirs');
    renameSync(`${rec.path}.other`, rec.path);
    // The connection closes quietly (no error text): nothing is appended, the file is only closed.
    await expect(rec.end()).rejects.toThrow(/another file is at its path/);
    expect(readFileSync(rec.path, 'utf8')).toBe('theirs');
  });
});
