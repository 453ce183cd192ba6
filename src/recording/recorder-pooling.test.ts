// Hostile review of recording memory that goes round (SegmentPool in raw-sidecar.ts, the cast
// buffers of cast-worker.ts / cast-derivation.ts): a segment given back is reused by any session's
// next batch, and a cast buffer given back is transferred to the thread and filled again, so
// anything still reading one (a write in flight, a view in an entry, the tar lister) would
// silently put wrong bytes in the record. Here every segment given back to the process's pool is
// filled with a poison byte at once, and the disk (the recorders' FileIo) notes a write of a
// segment that was given back, or of a buffer that changed or was taken away while its write was
// in flight; the disk holds, shortens, fails and hangs writes while other sessions churn the
// pool. Each test then checks from outside: the sidecar's bytes, rawSha256 = sha256(file), the
// channel hashes = sha256 of what was sent, and the cast's text.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SessionEnd } from '../model/session.js';
import { exitCodeStatus } from '../protocol/status.js';
import { encodeTarHeader } from '../tar/header.js';
import { nodeFileIo, type FileIo } from './append-file.js';
import { CastWorkerPool } from './cast-derivation.js';
import { parseCast } from './cast-reader.js';
import { outputText } from './events.js';
import { ForwardRecording } from './forward-recorder.js';
import { encodeRawRecord, MIN_SEGMENT_BYTES, RawChannel, RawRecordBatch, RECORD_HEADER_BYTES, readRawSidecar, SegmentPool, sharedSegmentPool } from './raw-sidecar.js';
import { createRecorder, type RecorderOptions, type RecorderSink, type RecordingResult } from './recorder.js';

const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');
const POISON = 0xee;

/** Segments given back to the shared pool and not handed out again. */
let released = new WeakSet<ArrayBufferLike>();

beforeAll(() => {
  const realRelease = sharedSegmentPool.release.bind(sharedSegmentPool);
  const realAcquire = sharedSegmentPool.acquire.bind(sharedSegmentPool);
  // Given back: nothing may read it any more, so whatever does reads poison.
  vi.spyOn(sharedSegmentPool, 'release').mockImplementation((parts, holder) => {
    for (const p of parts) {
      new Uint8Array(p.buffer).fill(POISON);
      released.add(p.buffer);
    }
    realRelease(parts, holder);
  });
  vi.spyOn(sharedSegmentPool, 'acquire').mockImplementation((size, holder) => {
    const b = realAcquire(size, holder);
    released.delete(b.buffer);
    return b;
  });
});
afterAll(() => vi.restoreAllMocks());

let dir: string;
let sessions = 0;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kb-rec-pool-'));
  released = new WeakSet();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const castWorker = new CastWorkerPool();
afterAll(() => castWorker.terminate());

/**
 * A disk the test controls, per recorder: writes held (`hold`: until release()), cut short
 * (`maxWrite`), failed (`fail`); every write checked (`violations`): not of a segment given back,
 * and its bytes unchanged (not poisoned, not transferred away) from the call to its completion.
 */
function testDisk() {
  const paths = new Map<number, string>();
  const calls = new Map<string, number>();
  const held: Array<() => void> = [];
  const violations: string[] = [];
  let completed = 0;
  const ctl = {
    hold: undefined as ((path: string) => boolean) | undefined,
    fail: undefined as ((path: string, nth: number) => boolean) | undefined,
    maxWrite: Infinity,
  };
  const io: FileIo = {
    ...nodeFileIo,
    openSync: (path, flags, mode) => {
      const fd = nodeFileIo.openSync(path, flags, mode);
      paths.set(fd, path);
      return fd;
    },
    write: async (fd, buf, off, len) => {
      const path = paths.get(fd) ?? '?';
      const nth = (calls.get(path) ?? 0) + 1;
      calls.set(path, nth);
      if (released.has(buf.buffer)) violations.push(`${path}: a segment given back was written`);
      const copy = Buffer.from(buf.subarray(off, off + len));
      if (ctl.hold?.(path)) await new Promise<void>((r) => held.push(r));
      if (ctl.fail?.(path, nth)) throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      if (buf.byteLength < off + len) {
        violations.push(`${path}: the buffer was taken away while its write was in flight`);
        throw new Error('detached');
      }
      const n = await nodeFileIo.write(fd, buf, off, Math.min(len, ctl.maxWrite));
      if (!Buffer.from(buf.buffer, buf.byteOffset + off, n).equals(copy.subarray(0, n))) violations.push(`${path}: the buffer changed while its write was in flight`);
      completed += 1;
      return n;
    },
  };
  return {
    io,
    ctl,
    violations,
    held: () => held.length,
    /** Writes that reached the file. */
    completed: () => completed,
    release: (): void => {
      ctl.hold = undefined;
      for (const r of held.splice(0)) r();
    },
  };
}

function options(over: Partial<RecorderOptions> = {}, header: Partial<RecorderOptions['header']> = {}): RecorderOptions {
  sessions += 1;
  return {
    dir,
    approvalId: null,
    sessionId: `ses_pool${String(sessions).padStart(4, '0')}`,
    format: 'v2',
    recordStdin: true,
    castWorker,
    batchWindowMs: 5,
    header: { agent: 'ci-bot', namespace: 'default', pod: 'web-0', container: 'app', command: ['sh'], tty: false, transport: 'websocket', protocol: 'v5.channel.k8s.io', ...header },
    ...over,
  };
}

const end = (code = 0): SessionEnd => ({ reason: 'completed', exitCode: code, status: exitCodeStatus(code), bytesIn: 0, bytesOut: 0 });

/** Printable text (never the poison byte), different per seed. */
const text = (bytes: number, seed: number): Buffer => {
  const b = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) b[i] = 0x21 + ((i * 7 + seed * 13) % 90);
  for (let i = 99; i < bytes; i += 100) b[i] = 0x0a;
  return b;
};

const sidecarChannel = (path: string, name: string): Buffer =>
  Buffer.concat(
    readRawSidecar(readFileSync(path))
      .records.filter((r) => r.name === name)
      .map((r) => r.data),
  );

/** The whole record of a completed session holds exactly `stdout`. */
function expectExact(rec: RecorderSink, result: RecordingResult, stdout: Buffer): void {
  expect(result.error).toBeUndefined();
  const file = readFileSync(rec.rawPath);
  expect(file.includes(Buffer.alloc(64, POISON))).toBe(false);
  expect(sidecarChannel(rec.rawPath, 'stdout').equals(stdout)).toBe(true);
  expect(result.rawSha256).toBe(sha(file));
  expect(result.channelSha256.stdout).toBe(sha(stdout));
  const castFile = readFileSync(rec.castPath, 'utf8');
  expect(result.castSha256).toBe(sha(castFile));
  expect(outputText(parseCast(castFile, 'v2').events)).toBe(stdout.toString('latin1'));
}

/**
 * Another session relaying bulk text in batches of the sizes the others use, so that what they
 * give back is handed out again at once (and its own record checked).
 */
async function churn(batches: number, seed: number): Promise<void> {
  const disk = testDisk();
  const rec = createRecorder(options({ io: disk.io, batchBytes: 16 * 1024 }));
  const sent: Buffer[] = [];
  for (let i = 0; i < batches; i++) {
    for (const size of [9_000, 7_000, 20_000]) {
      const chunk = text(size, seed + i);
      sent.push(chunk);
      rec.stdout(chunk);
    }
    await rec.flush();
  }
  await rec.end(end());
  expectExact(rec, await rec.finished, Buffer.concat(sent));
  expect(disk.violations).toEqual([]);
}

describe('segments going round: a batch being written keeps its segments', () => {
  it('a session whose batch write is held while another session runs many batches: both records are exact; idle between batches, it holds nothing stale', async () => {
    const disk = testDisk();
    const rec = createRecorder(options({ io: disk.io, batchBytes: 64 * 1024 }));
    const sent: Buffer[] = [];
    const say = (b: Buffer): void => {
      sent.push(b);
      rec.stdout(b);
    };
    disk.ctl.hold = (p) => p.endsWith('.raw');
    // Several segments (16 KiB first, then larger), the write held.
    for (let i = 0; i < 8; i++) say(text(10_000, i));
    const flushed = rec.flush();
    await vi.waitFor(() => expect(disk.held()).toBe(1));
    await churn(6, 100);
    disk.release();
    await flushed;
    // Idle, then more: the batch starts from new segments (the last ones were given back and reused).
    await churn(3, 200);
    for (let i = 0; i < 3; i++) say(text(30_000, 50 + i));
    await rec.end(end());
    expectExact(rec, await rec.finished, Buffer.concat(sent));
    expect(disk.violations).toEqual([]);
  });

  it('a short write, then EIO on the batch’s second part: the file holds whole records only, its hash matches, the digests cover every byte, and the segments are reused cleanly', async () => {
    const disk = testDisk();
    const rec = createRecorder(options({ io: disk.io, batchBytes: 1024 * 1024 }));
    const failures: Error[] = [];
    rec.onFailure((e) => failures.push(e));
    const first = text(12_000, 1);
    const second = text(12_000, 2); // does not fit the 16 KiB segment: a second part
    disk.ctl.maxWrite = 5_000;
    // Calls 1-3 write the first part in pieces; the first call for the second part fails.
    disk.ctl.fail = (p, nth) => p.endsWith('.raw') && nth === 4;
    rec.stdout(first);
    rec.stdout(second);
    await rec.flush();
    expect(failures.map((e) => e.message)).toEqual([expect.stringMatching(/cannot write .*\.raw: EIO/)]);
    await churn(3, 300);
    await expect(rec.end(end())).rejects.toThrow(/EIO/);
    const result = await rec.finished;
    const file = readFileSync(rec.rawPath);
    expect(result.rawSha256).toBe(sha(file));
    expect(readRawSidecar(file).records.map((r) => Buffer.from(r.data))).toEqual([first]);
    expect(result.channelSha256.stdout).toBe(sha(Buffer.concat([first, second])));
    expect(disk.violations).toEqual([]);
  });

  it('a write that hangs past the end: the recording fails, other sessions reuse the pool meanwhile, and when the write does complete it writes the bytes sent', async () => {
    const disk = testDisk();
    const rec = createRecorder(options({ io: disk.io, endTimeoutMs: 30 }));
    const hung = text(40_000, 7);
    disk.ctl.hold = (p) => p.endsWith('.raw');
    rec.stdout(hung);
    void rec.flush();
    await vi.waitFor(() => expect(disk.held()).toBe(1));
    const after = text(3_000, 8); // batched behind the hung write, never written
    rec.stdout(after);
    await expect(rec.end(end())).rejects.toThrow(/did not finish a write/);
    const result = await rec.finished;
    // The worker is alive: the digests cover both batches.
    expect(result.channelSha256.stdout).toBe(sha(Buffer.concat([hung, after])));
    await churn(4, 400);
    disk.release();
    await vi.waitFor(() => expect(sidecarChannel(rec.rawPath, 'stdout').length).toBe(hung.length));
    expect(sidecarChannel(rec.rawPath, 'stdout').equals(hung)).toBe(true);
    // Only the hung write itself lands: its batch's cast is not written after the end, so the
    // cast still has the hash the result gave it.
    await new Promise((r) => setTimeout(r, 100));
    expect(sha(readFileSync(rec.castPath))).toBe(result.castSha256);
    expect(disk.violations).toEqual([]);
  });

  it('the cast worker dies while the sidecar write is held: the sidecar holds that batch exactly, the digests are computed again from it, other sessions are unharmed', async () => {
    const own = new CastWorkerPool();
    const disk = testDisk();
    const rec = createRecorder(options({ io: disk.io, castWorker: own }));
    const batch = text(30_000, 9);
    disk.ctl.hold = (p) => p.endsWith('.raw');
    rec.stdout(batch);
    const flushed = rec.flush();
    await vi.waitFor(() => expect(disk.held()).toBe(1));
    await own.terminate();
    await churn(3, 500);
    disk.release();
    await flushed;
    await expect(rec.end(end())).rejects.toThrow(/cast worker exited/);
    const result = await rec.finished;
    expect(result.channelSha256.stdout).toBe(sha(batch));
    const file = readFileSync(rec.rawPath);
    expect(result.rawSha256).toBe(sha(file));
    expect(sidecarChannel(rec.rawPath, 'stdout').equals(batch)).toBe(true);
    expect(disk.violations).toEqual([]);
  });
});

describe('segments going round: kubectl cp listing across batches', () => {
  it('a tar on stdout whose headers and contents straddle small batches, other sessions reusing the segments between them: every file listed with its exact hash', async () => {
    const files = [
      { name: 'data/a.txt', content: text(1, 1) },
      { name: 'data/empty', content: Buffer.alloc(0) },
      { name: `data/${'d'.repeat(90)}/${'long-name-'.repeat(6)}.bin`, content: Buffer.from(Array.from({ length: 7_777 }, (_, i) => (i * 31) & 0xff)) },
      { name: 'data/c.bin', content: Buffer.from(Array.from({ length: 3_000 }, (_, i) => (i * 17 + 3) & 0xff)) },
    ];
    const blocks: Buffer[] = [];
    for (const f of files) {
      blocks.push(encodeTarHeader({ name: f.name, typeflag: '0', size: f.content.length, mode: 0o644, mtime: 0 }), f.content, Buffer.alloc((512 - (f.content.length % 512)) % 512));
    }
    blocks.push(Buffer.alloc(1024));
    const tar = Buffer.concat(blocks);
    const disk = testDisk();
    const rec = createRecorder(options({ io: disk.io, batchBytes: 700 }, { command: ['tar', 'cf', '-', '/data'] }));
    // 300-byte chunks: a header (512) is never whole in one batch's chunk.
    for (let i = 0; i < tar.length; i += 300) {
      rec.stdout(tar.subarray(i, i + 300));
      if (i % 1200 === 0) {
        await rec.flush();
        await churn(1, 600 + i);
      }
    }
    await rec.end(end());
    const result = await rec.finished;
    expect(result.error).toBeUndefined();
    expect(result.files).toEqual(files.map((f) => ({ name: f.name, size: f.content.length, sha256: sha(f.content) })));
    expect(result.tar).toMatchObject({ status: 'complete', fileCount: files.length });
    expect(sidecarChannel(rec.rawPath, 'stdout').equals(tar)).toBe(true);
    expect(result.rawSha256).toBe(sha(readFileSync(rec.rawPath)));
    expect(result.channelSha256.stdout).toBe(sha(tar));
    expect(disk.violations).toEqual([]);
  });
});

describe('segments going round: port-forward connections', () => {
  it('a connection whose write is held and one whose write fails, beside a churning session: each sidecar holds exactly what was written', async () => {
    const heldDisk = testDisk();
    const failDisk = testDisk();
    const startedAt = new Date();
    const held = new ForwardRecording({ dir, approvalId: null, sessionId: 'ses_poolfwd', seq: 1, port: 80, startedAt, io: heldDisk.io, batchWindowMs: 5 });
    const failing = new ForwardRecording({ dir, approvalId: null, sessionId: 'ses_poolfwd', seq: 2, port: 80, startedAt, io: failDisk.io, batchWindowMs: 5 });
    const up = [text(20_000, 11), text(9_000, 12)];
    const down = text(25_000, 13);
    heldDisk.ctl.hold = () => true;
    held.toPod(up[0]!);
    held.fromPod(down);
    held.toPod(up[1]!);
    const flushed = held.flush();
    await vi.waitFor(() => expect(heldDisk.held()).toBe(1));
    const ok = text(18_000, 14);
    failing.toPod(ok);
    await failing.flush();
    failDisk.ctl.fail = () => true;
    failing.fromPod(text(18_000, 15));
    await failing.flush();
    await expect(failing.end()).rejects.toThrow(/EIO/);
    await churn(3, 700);
    heldDisk.release();
    await flushed;
    const result = await held.end();
    const file = readFileSync(held.path);
    expect(result.rawSha256).toBe(sha(file));
    const records = readRawSidecar(file).records.map((r) => [r.channel, Buffer.from(r.data)]);
    expect(records).toEqual([
      [RawChannel.stdin, up[0]],
      [RawChannel.stdout, down],
      [RawChannel.stdin, up[1]],
    ]);
    expect(result.sha256In).toBe(sha(Buffer.concat(up)));
    expect(result.sha256Out).toBe(sha(down));
    expect(readRawSidecar(readFileSync(failing.path)).records.map((r) => Buffer.from(r.data))).toEqual([ok]);
    expect([...heldDisk.violations, ...failDisk.violations]).toEqual([]);
  });
});

describe('cast buffers going round', () => {
  it('a cast whose write is held is not handed back to the thread while other sessions’ large casts go round', async () => {
    const disk = testDisk();
    const rec = createRecorder(options({ io: disk.io }));
    // > 64 KiB of cast per batch: cast buffers are reused.
    const sent = [text(200_000, 21)];
    rec.stdout(sent[0]!);
    await rec.flush();
    disk.ctl.hold = (p) => p.endsWith('.cast');
    sent.push(text(300_000, 22));
    rec.stdout(sent[1]!);
    const flushed = rec.flush();
    await vi.waitFor(() => expect(disk.held()).toBe(1));
    for (let i = 0; i < 3; i++) {
      const other = createRecorder(options({ batchBytes: 256 * 1024 }));
      const out = text(600_000, 30 + i);
      for (let at = 0; at < out.length; at += 100_000) {
        other.stdout(out.subarray(at, at + 100_000));
        await other.flush();
      }
      await other.end(end());
      expectExact(other, await other.finished, out);
    }
    disk.release();
    await flushed;
    sent.push(text(150_000, 23));
    rec.stdout(sent[2]!);
    await rec.end(end());
    expectExact(rec, await rec.finished, Buffer.concat(sent));
    expect(disk.violations).toEqual([]);
  });
});

describe('RawRecordBatch over a pool that poisons what is given back', () => {
  class PoisonPool extends SegmentPool {
    override release(parts: readonly Uint8Array[], holder: object): void {
      for (const p of parts) new Uint8Array(p.buffer).fill(POISON);
      super.release(parts, holder);
    }
  }

  it('records at a segment’s exact end, one byte over, at the cap, over it and a power of two over it: each batch exact, its views exact until it is given back', () => {
    const pool = new PoisonPool();
    const batch = new RawRecordBatch(1024 * 1024, pool);
    const sizes = [
      [MIN_SEGMENT_BYTES - RECORD_HEADER_BYTES], // fills the first segment exactly
      [MIN_SEGMENT_BYTES - RECORD_HEADER_BYTES, 1], // the next one starts a new segment
      [1, MIN_SEGMENT_BYTES - 2 * RECORD_HEADER_BYTES - 1], // two records filling a segment exactly
      [1024 * 1024 - RECORD_HEADER_BYTES], // a record of the cap
      [1024 * 1024 + 1], // over the cap: a buffer of its own
      [2 * 1024 * 1024 - RECORD_HEADER_BYTES, 5], // over the cap, a power of two: pooled
      [3, 4, 5],
    ];
    let t = 0;
    let previous: { parts: Buffer[]; expected: Buffer } | undefined;
    for (const [n, batchSizes] of sizes.entries()) {
      const datas = batchSizes.map((size, i) => text(size, n * 10 + i));
      const views = datas.map((d) => batch.append(RawChannel.stdout, ++t, d));
      const expected = Buffer.concat(datas.map((d, i) => encodeRawRecord(RawChannel.stdout, t - datas.length + 1 + i, d)));
      // The batch before is given back only now (its write took this long): its bytes held until then.
      if (previous) {
        expect(Buffer.concat(previous.parts).equals(previous.expected)).toBe(true);
        batch.release(previous.parts);
      }
      for (const [i, v] of views.entries()) expect(v.equals(datas[i]!)).toBe(true);
      const parts = batch.take();
      expect(Buffer.concat(parts).equals(expected)).toBe(true);
      previous = { parts, expected };
    }
  });
});

describe('a port-forward connection whose write hangs past its end', () => {
  it('abandon() after end() gave up (as the port-forward session does) leaves the descriptor open under the write: its bytes never land in another file', async () => {
    const disk = testDisk();
    const rec = new ForwardRecording({ dir, approvalId: null, sessionId: 'ses_poolhang', seq: 1, port: 80, startedAt: new Date(), io: disk.io, batchWindowMs: 5, endTimeoutMs: 30 });
    const hung = text(5_000, 41);
    disk.ctl.hold = () => true;
    rec.toPod(hung);
    void rec.flush();
    await vi.waitFor(() => expect(disk.held()).toBe(1));
    await expect(rec.end()).rejects.toThrow(/did not finish a write/);
    rec.abandon();
    // The next file opened (another connection's sidecar) would get a descriptor closed beneath the write.
    const other = new ForwardRecording({ dir, approvalId: null, sessionId: 'ses_poolhang', seq: 2, port: 80, startedAt: new Date(), batchWindowMs: 5 });
    const otherHeader = readFileSync(other.path);
    disk.release();
    await vi.waitFor(() => expect(disk.completed()).toBe(1));
    other.fromPod(Buffer.from('pong'));
    const result = await other.end();
    const file = readFileSync(other.path);
    expect(file.subarray(0, otherHeader.length).equals(otherHeader)).toBe(true);
    expect(readRawSidecar(file).records.map((r) => Buffer.from(r.data).toString())).toEqual(['pong']);
    expect(result.rawSha256).toBe(sha(file));
    expect(sidecarChannel(rec.path, 'stdin').equals(hung)).toBe(true);
  });
});
