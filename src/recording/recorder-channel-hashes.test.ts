// The channel SHA-256s are computed in the cast worker (not on the relay's loop) and still equal
// the SHA-256 of each channel's exact bytes, whatever the bytes are and however they reach the
// worker (as cast text, or hash-only: a tar stream, resize records).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { apiStatus, exitCodeStatus, type Status } from '../protocol/status.js';
import type { SessionEnd } from '../model/session.js';
import { nodeFileIo, type FileIo } from './append-file.js';
import { CastWorkerPool, type Derived } from './cast-derivation.js';
import { ChannelHashes, readRawSidecar } from './raw-sidecar.js';
import { createRecorder, type RecorderOptions, type RecordingResult } from './recorder.js';

const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');
const EMPTY = sha('');

let dir: string;
let clock = 0;
const pool = new CastWorkerPool();
/** Every reply of the worker that carried digests (the last batch of each recording). */
let fromWorker: Array<Record<string, string>> = [];
const realSend = pool.send.bind(pool);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kb-rec-hash-'));
  clock = 0;
  fromWorker = [];
  vi.spyOn(pool, 'send').mockImplementation(async (...args: Parameters<CastWorkerPool['send']>) => {
    const d: Derived = await realSend(...args);
    if (d.digests) fromWorker.push(d.digests);
    return d;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});
afterAll(() => pool.terminate());

function options(over: Partial<RecorderOptions> = {}, header: Partial<RecorderOptions['header']> = {}): RecorderOptions {
  return {
    dir,
    approvalId: null,
    sessionId: 'ses_hashes00000000000000',
    recordStdin: true,
    clockUs: () => clock,
    castWorker: pool,
    // Many small batches: the hashes run across batch boundaries.
    batchBytes: 64,
    batchWindowMs: 1,
    // Not a test of a hung disk: a busy machine may starve the worker for over the default 1 s.
    endTimeoutMs: 10_000,
    header: { agent: 'ci-bot', namespace: 'default', pod: 'web-0', container: 'app', command: ['sh'], tty: false, transport: 'websocket', protocol: 'v5.channel.k8s.io', ...header },
    ...over,
  };
}

const end = (exitCode: number | null, status: Status = exitCode === null ? apiStatus(403, 'Forbidden', 'cut') : exitCodeStatus(exitCode)): SessionEnd => ({ reason: 'completed', exitCode, status, bytesIn: 0, bytesOut: 0 });

/** Watches the main thread's ChannelHashes: the recorder must not hash there. */
function mainThreadHashing(): { calls: () => number } {
  const spy = vi.spyOn(ChannelHashes.prototype, 'update');
  return { calls: () => spy.mock.calls.length };
}

/** The result's digests are the worker's (the last reply), and equal those the sidecar gives (read on this thread: check mainThreadHashing first). */
function expectFromWorker(result: RecordingResult, rawPath: string): void {
  expect(fromWorker).toHaveLength(1);
  const worker = { ...fromWorker[0]! };
  if (!Object.hasOwn(result.channelSha256, 'stdin')) delete worker['stdin'];
  expect(result.channelSha256).toEqual(worker);
  const side = readRawSidecar(readFileSync(rawPath)).channelSha256;
  if (!Object.hasOwn(result.channelSha256, 'stdin')) delete side['stdin'];
  expect(result.channelSha256).toEqual(side);
}

async function feed(chunks: Array<[(b: Buffer) => void, Buffer]>): Promise<void> {
  for (const [f, b] of chunks) {
    clock += 3_000;
    f(b);
    // Let some batches go to the worker while others are still being filled.
    await new Promise((r) => setImmediate(r));
  }
}

describe('recorder: channel SHA-256s computed in the cast worker', () => {
  it('text, invalid UTF-8, NUL bytes, a character split across batches, and resize records', async () => {
    const watch = mainThreadHashing();
    const rec = createRecorder(options({}, { tty: true }));
    const smile = Buffer.from('🙂', 'utf8');
    const binary = Buffer.from([0xff, 0xfe, 0x80, 0xc3, 0x28, 0x00, 0xf5]);
    const nul = Buffer.from([0x61, 0x00, 0x00, 0x62, 0x00]);
    const out = [Buffer.from('hello, world\r\n'), smile.subarray(0, 2), smile.subarray(2), binary, nul, Buffer.alloc(300, 'z')];
    const err = [Buffer.from('warning: x\n'), Buffer.from([0xc0, 0xaf]), nul];
    const input = [Buffer.from('ls\r'), Buffer.from([0x00, 0xff, 0x1b])];
    await feed([
      [(b) => rec.stdout(b), out[0]!],
      [(b) => rec.stdin(b), input[0]!],
      [(b) => rec.stdout(b), out[1]!],
      [(b) => rec.stderr(b), err[0]!],
      [(b) => rec.stdout(b), out[2]!],
      [(b) => rec.stdout(b), out[3]!],
      [(b) => rec.stdin(b), input[1]!],
      [(b) => rec.stderr(b), err[1]!],
      [(b) => rec.stdout(b), out[4]!],
      [(b) => rec.stderr(b), err[2]!],
      [(b) => rec.stdout(b), out[5]!],
    ]);
    rec.resize({ width: 100, height: 30 });
    rec.stdout(Buffer.from('after resize\n'));
    rec.resize({ width: 80, height: 24 });
    await rec.end(end(0));
    const result = await rec.finished;
    expect(result.error).toBeUndefined();
    expect(result.channelSha256).toEqual({
      stdin: sha(Buffer.concat(input)),
      stdout: sha(Buffer.concat([...out, Buffer.from('after resize\n')])),
      stderr: sha(Buffer.concat(err)),
      resize: sha('{"Width":100,"Height":30}\n{"Width":80,"Height":24}\n'),
    });
    expect(watch.calls()).toBe(0);
    expectFromWorker(result, rec.rawPath);
  });

  it('an unused channel hashes the empty string; stdin is omitted when not recorded', async () => {
    const watch = mainThreadHashing();
    const rec = createRecorder(options({ recordStdin: false }));
    rec.stdin(Buffer.from('secret\n'));
    rec.stdout(Buffer.from('ok\n'));
    await rec.end(end(0));
    const result = await rec.finished;
    expect(result.channelSha256).toEqual({ stdout: sha('ok\n'), stderr: EMPTY, resize: EMPTY });
    expect(watch.calls()).toBe(0);
    expectFromWorker(result, rec.rawPath);
  });

  function tarOfTree(): Buffer {
    const src = join(dir, 'tree');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'alpha\n');
    writeFileSync(join(src, 'b.bin'), Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 13) & 0xff)));
    return execFileSync('tar', ['cf', '-', '-C', dir, 'tree']);
  }

  it('kubectl cp out: the tar stream on stdout (listed, not cast text) is hashed in the worker', async () => {
    const tar = tarOfTree();
    const watch = mainThreadHashing();
    const rec = createRecorder(options({}, { command: ['tar', 'cf', '-', '/data/tree'] }));
    const chunks: Array<[(b: Buffer) => void, Buffer]> = [];
    for (let i = 0; i < tar.length; i += 1000) chunks.push([(b) => rec.stdout(b), tar.subarray(i, i + 1000)]);
    await feed(chunks);
    rec.stderr(Buffer.from("tar: Removing leading `/' from member names\n"));
    await rec.end(end(0));
    const result = await rec.finished;
    expect(result.tar).toMatchObject({ status: 'complete', fileCount: 2 });
    expect(result.channelSha256).toEqual({ stdin: EMPTY, stdout: sha(tar), stderr: sha("tar: Removing leading `/' from member names\n"), resize: EMPTY });
    expect(watch.calls()).toBe(0);
    expectFromWorker(result, rec.rawPath);
  });

  it('a compressed tar on stdout (not listed) and a tar on stdin (listed, recorded) are hashed in the worker', async () => {
    const tar = tarOfTree();
    const gz = execFileSync('gzip', ['-c'], { input: tar });
    const out = createRecorder(options({ sessionId: 'ses_hashesgz000000000000' }, { command: ['tar', 'czf', '-', '/data/tree'] }));
    for (let i = 0; i < gz.length; i += 500) out.stdout(gz.subarray(i, i + 500));
    await out.end(end(0));
    const outResult = await out.finished;
    expect(outResult.tar).toMatchObject({ compressed: true });
    expect(outResult.channelSha256.stdout).toBe(sha(gz));
    expectFromWorker(outResult, out.rawPath);

    fromWorker = [];
    const inp = createRecorder(options({ sessionId: 'ses_hashesin000000000000' }, { command: ['tar', '-xmf', '-', '-C', '/data'] }));
    for (let i = 0; i < tar.length; i += 777) inp.stdin(tar.subarray(i, i + 777));
    await inp.end(end(0));
    const inResult = await inp.finished;
    expect(inResult.tar).toMatchObject({ direction: 'in', status: 'complete', fileCount: 2 });
    expect(inResult.channelSha256.stdin).toBe(sha(tar));
    expectFromWorker(inResult, inp.rawPath);
  });

  it('the worker dies mid-session: the recording fails (onFailure, end rejects); the digests are computed again from the sidecar', async () => {
    const own = new CastWorkerPool();
    const rec = createRecorder(options({ castWorker: own, sessionId: 'ses_hashesdead0000000000' }));
    const failures: Error[] = [];
    rec.onFailure((e) => failures.push(e));
    rec.stdout(Buffer.from('before\n'));
    await rec.flush();
    await own.terminate();
    rec.stdout(Buffer.from('after\n'));
    await expect(rec.end(end(0))).rejects.toThrow(/cast worker exited/);
    const result = await rec.finished;
    expect(result.error).toMatch(/cast worker exited/);
    expect(failures).toHaveLength(1);
    expect(result.channelSha256).toEqual({ stdin: EMPTY, stdout: sha('before\nafter\n'), stderr: EMPTY, resize: EMPTY });
  });

  it('the worker dies while a batch is written: the digests cover the sidecar file and what was still batched', async () => {
    const own = new CastWorkerPool();
    const rec = createRecorder(options({ castWorker: own, sessionId: 'ses_hashesdead3000000000' }));
    rec.stdout(Buffer.from('before\n'));
    await rec.flush();
    await own.terminate();
    rec.stdout(Buffer.from('written\n'));
    const flushing = rec.flush(); // the sidecar's bytes are written, then the cast is asked of a dead worker
    rec.stdout(Buffer.from('batched\n')); // relayed meanwhile: never reaches the file
    await flushing;
    await expect(rec.end(end(0))).rejects.toThrow(/cast worker exited/);
    const result = await rec.finished;
    expect(readRawSidecar(readFileSync(rec.rawPath)).channelSha256.stdout).toBe(sha('before\nwritten\n'));
    expect(result.channelSha256.stdout).toBe(sha('before\nwritten\nbatched\n'));
  });

  it('the worker dies and stdin is not recorded: stdin is left out of the digests, as with a live worker', async () => {
    const own = new CastWorkerPool();
    const rec = createRecorder(options({ castWorker: own, recordStdin: false, sessionId: 'ses_hashesdead1000000000' }));
    rec.stdin(Buffer.from('typed\n'));
    rec.stdout(Buffer.from('shown\n'));
    await rec.flush();
    await own.terminate();
    await expect(rec.end(end(0))).rejects.toThrow(/cast worker exited/);
    expect((await rec.finished).channelSha256).toEqual({ stdout: sha('shown\n'), stderr: EMPTY, resize: EMPTY });
  });

  it('the worker dies and a sidecar write failed: no digests (the sidecar does not hold every byte relayed)', async () => {
    const own = new CastWorkerPool();
    let failWrites = false;
    const io: FileIo = {
      ...nodeFileIo,
      write: (fd, buf, off, len) => (failWrites ? Promise.reject(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })) : nodeFileIo.write(fd, buf, off, len)),
    };
    const rec = createRecorder(options({ io, castWorker: own, sessionId: 'ses_hashesdead2000000000' }));
    rec.stdout(Buffer.from('written\n'));
    await rec.flush();
    failWrites = true;
    rec.stdout(Buffer.from('lost\n'));
    await own.terminate();
    await expect(rec.end(end(0))).rejects.toThrow(/EIO|cast worker exited/);
    expect((await rec.finished).channelSha256).toEqual({});
  });

  it('a failed write (the worker alive): the recording fails, the digests still cover every byte relayed', async () => {
    let failWrites = false;
    const io: FileIo = {
      ...nodeFileIo,
      write: (fd, buf, off, len) => (failWrites ? Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })) : nodeFileIo.write(fd, buf, off, len)),
    };
    const rec = createRecorder(options({ io, sessionId: 'ses_hashesdisk0000000000' }));
    rec.stdout(Buffer.from('written\n'));
    await rec.flush();
    failWrites = true;
    rec.stdout(Buffer.from([0xff, 0x00, 0x41]));
    await expect(rec.end(end(0))).rejects.toThrow(/ENOSPC/);
    const result = await rec.finished;
    expect(result.error).toMatch(/ENOSPC/);
    expect(result.channelSha256).toEqual({ stdin: EMPTY, stdout: sha(Buffer.concat([Buffer.from('written\n'), Buffer.from([0xff, 0x00, 0x41])])), stderr: EMPTY, resize: EMPTY });
    expect(fromWorker).toHaveLength(1);
  });
});
