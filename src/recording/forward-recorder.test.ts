import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ForwardRecording, forwardRecordingPath, type ForwardRecordingOptions } from './forward-recorder.js';
import { nodeFileIo, type FileIo } from './append-file.js';
import { RecordingError } from './batch-writer.js';
import { readRawSidecar } from './raw-sidecar.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'kb-fwd-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('ForwardRecording', () => {
  it('keeps each direction exactly, hashes each, says what the traffic is, and hashes the file', async () => {
    const dir = tmp();
    const rec = new ForwardRecording({ dir, approvalId: 'a1', sessionId: 's1', seq: 2, port: 8080, startedAt: new Date() });
    expect(rec.path).toBe(forwardRecordingPath(dir, 'a1', 's1', 2));
    expect(rec.path).toBe(join(dir, 'a1', 's1.c2.raw'));
    expect(rec.relativePath).toBe(join('a1', 's1.c2.raw'));
    rec.toPod(Buffer.from('GET / HT'));
    rec.toPod(Buffer.from('TP/1.1\r\n\r\n'));
    rec.fromPod(Buffer.from('HTTP/1.1 200 OK\r\n\r\nhi'));
    rec.errorText('done');
    const result = await rec.end();
    expect(result).toEqual({
      bytesIn: 18,
      bytesOut: 21,
      sha256In: sha('GET / HTTP/1.1\r\n\r\n'),
      sha256Out: sha('HTTP/1.1 200 OK\r\n\r\nhi'),
      rawSha256: sha(readFileSync(rec.path)),
      protocol: 'http/1.x',
    });
    const raw = readRawSidecar(readFileSync(rec.path));
    expect(raw.meta).toMatchObject({ kind: 'kube-bastion-raw', session: 's1', approval: 'a1', operation: 'portforward', connection: 2, port: 8080 });
    expect(raw.records.map((r) => [r.channel, Buffer.from(r.data).toString()])).toEqual([
      [0, 'GET / HT'],
      [0, 'TP/1.1\r\n\r\n'],
      [1, 'HTTP/1.1 200 OK\r\n\r\nhi'],
      [3, 'done'],
    ]);
    // Idempotent.
    expect(await rec.end()).toBe(result);
  });

  it('a connection that carried nothing has no protocol; one where only the pod spoke is unrecognised', async () => {
    const dir = tmp();
    const quiet = new ForwardRecording({ dir, approvalId: null, sessionId: 's2', seq: 1, port: 7000, startedAt: new Date() });
    expect((await quiet.end()).protocol).toBeNull();
    const banner = new ForwardRecording({ dir, approvalId: null, sessionId: 's2', seq: 2, port: 22, startedAt: new Date() });
    banner.fromPod(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'));
    expect((await banner.end()).protocol).toBe('unrecognised');
  });

  it('cannot be created where it cannot be written: a RecordingError, so the connection is refused', () => {
    const dir = tmp();
    // The approval's directory is a file: nothing can be created under it (whoever runs this).
    writeFileSync(join(dir, 'a1'), 'not a directory');
    expect(() => new ForwardRecording({ dir, approvalId: 'a1', sessionId: 's3', seq: 1, port: 80, startedAt: new Date() })).toThrow(/cannot create .*s3\.c1\.raw/);
  });

  it('never overwrites: a second recording of the same connection is refused', async () => {
    const dir = tmp();
    await new ForwardRecording({ dir, approvalId: 'a1', sessionId: 's4', seq: 1, port: 80, startedAt: new Date() }).end();
    expect(() => new ForwardRecording({ dir, approvalId: 'a1', sessionId: 's4', seq: 1, port: 80, startedAt: new Date() })).toThrow(/EEXIST/);
  });
});

/** A disk the test controls: writes counted, held (a hung disk), or failing. */
function controlledDisk(): { io: FileIo; writes: number[]; fsyncs: () => number; state: { failWrite: boolean; failFsync: boolean; hang: boolean }; release(): void } {
  const state = { failWrite: false, failFsync: false, hang: false };
  const writes: number[] = [];
  let fsyncs = 0;
  let held: Array<() => void> = [];
  const io: FileIo = {
    ...nodeFileIo,
    write: async (fd, buf, off, len) => {
      writes.push(len);
      if (state.hang) await new Promise<void>((r) => held.push(r));
      if (state.failWrite) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      return nodeFileIo.write(fd, buf, off, len);
    },
    fsync: async (fd) => {
      fsyncs += 1;
      if (state.failFsync) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
      return nodeFileIo.fsync(fd);
    },
  };
  return {
    io,
    writes,
    fsyncs: () => fsyncs,
    state,
    release: () => {
      state.hang = false;
      for (const r of held.splice(0)) r();
      held = [];
    },
  };
}

function recording(dir: string, opts: Partial<ForwardRecordingOptions> = {}): ForwardRecording {
  return new ForwardRecording({ dir, approvalId: 'a1', sessionId: 'sb', seq: 1, port: 7000, startedAt: new Date(), ...opts });
}

function channel(path: string, ch: number): Buffer {
  return Buffer.concat(readRawSidecar(readFileSync(path)).records.filter((r) => r.channel === ch).map((r) => Buffer.from(r.data)));
}

const until = async (cond: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
};

describe('ForwardRecording: batched like the exec recorder', () => {
  it('many small chunks are a few large writes, within the batch window; the sidecar and hashes are exact', async () => {
    const dir = tmp();
    const disk = controlledDisk();
    const rec = recording(dir, { io: disk.io, batchWindowMs: 20 });
    const sent: Buffer[] = [];
    for (let i = 0; i < 1000; i++) {
      const b = Buffer.alloc(100, i % 256);
      sent.push(b);
      rec.toPod(b);
    }
    // Nothing is written on the relay's path: the batch waits for its window.
    expect(disk.writes).toEqual([]);
    await until(() => disk.writes.length > 0);
    await rec.flush();
    expect(disk.writes.length).toBeLessThanOrEqual(10);
    expect(channel(rec.path, 0).equals(Buffer.concat(sent))).toBe(true);
    const result = await rec.end();
    expect(result.sha256In).toBe(sha(Buffer.concat(sent)));
    expect(result.rawSha256).toBe(sha(readFileSync(rec.path)));
  });

  it('a batch of batchBytes is written at once, and fsynced as a group at most once per interval', async () => {
    const dir = tmp();
    const disk = controlledDisk();
    const rec = recording(dir, { io: disk.io, batchBytes: 64 * 1024, batchWindowMs: 60_000, fsyncIntervalMs: 60_000 });
    for (let i = 0; i < 64; i++) rec.fromPod(Buffer.alloc(1024, 0x61));
    await until(() => disk.writes.length > 0);
    await rec.flush();
    expect(channel(rec.path, 1).length).toBe(64 * 1024);
    // No fsync before the interval is over; the end syncs once.
    expect(disk.fsyncs()).toBe(0);
    await rec.end();
    expect(disk.fsyncs()).toBe(1);
  });

  it('a write that fails mid-stream: onFailure hears it, every later append throws, end() rejects, the file holds what was written', async () => {
    const dir = tmp();
    const disk = controlledDisk();
    const rec = recording(dir, { io: disk.io, batchWindowMs: 5 });
    const failures: Error[] = [];
    rec.onFailure((e) => failures.push(e));
    rec.toPod(Buffer.from('written'));
    await rec.flush();
    disk.state.failWrite = true;
    rec.toPod(Buffer.from('lost'));
    await until(() => failures.length === 1);
    expect(failures[0]).toBeInstanceOf(RecordingError);
    expect(failures[0]!.message).toBe(`cannot write ${rec.path}: ENOSPC: no space left on device, write`);
    expect(() => rec.fromPod(Buffer.from('after'))).toThrow(/ENOSPC/);
    expect(rec.ready()).toBeUndefined();
    await expect(rec.end()).rejects.toThrow(/ENOSPC/);
    expect(channel(rec.path, 0).toString()).toBe('written');
    // A listener added after the failure hears it at once.
    const late: Error[] = [];
    rec.onFailure((e) => late.push(e));
    expect(late).toHaveLength(1);
  });

  it('the last write fails at end(): end() rejects (the row then gets no hashes) and onFailure hears it', async () => {
    const dir = tmp();
    const disk = controlledDisk();
    const rec = recording(dir, { io: disk.io, batchWindowMs: 60_000 });
    const failures: Error[] = [];
    rec.onFailure((e) => failures.push(e));
    rec.toPod(Buffer.from('batched, never written'));
    disk.state.failWrite = true;
    await expect(rec.end()).rejects.toThrow(/cannot complete .*sb\.c1\.raw: ENOSPC/);
    expect(failures).toHaveLength(1);
    expect(channel(rec.path, 0).length).toBe(0);
  });

  it('the fsync at end() fails: end() rejects', async () => {
    const dir = tmp();
    const disk = controlledDisk();
    const rec = recording(dir, { io: disk.io });
    rec.fromPod(Buffer.from('data'));
    disk.state.failFsync = true;
    await expect(rec.end()).rejects.toThrow(/EIO/);
  });

  it('a hung write: end() gives up after endTimeoutMs and rejects', async () => {
    const dir = tmp();
    const disk = controlledDisk();
    const rec = recording(dir, { io: disk.io, batchWindowMs: 1, endTimeoutMs: 200 });
    disk.state.hang = true;
    rec.toPod(Buffer.from('stuck'));
    await until(() => disk.writes.length === 1);
    const started = Date.now();
    await expect(rec.end()).rejects.toThrow('the recording disk did not finish a write within 200 ms');
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(1500);
    disk.release();
  });

  it('backpressure: past maxUnwrittenBytes ready() holds the relay until the disk catches up', async () => {
    const dir = tmp();
    const disk = controlledDisk();
    const rec = recording(dir, { io: disk.io, batchBytes: 1000, maxUnwrittenBytes: 3000, batchWindowMs: 5 });
    disk.state.hang = true;
    expect(rec.ready()).toBeUndefined();
    let accepted = 0;
    let held: Promise<void> | undefined;
    while (!held && accepted < 100) {
      rec.fromPod(Buffer.alloc(500, 0x62));
      accepted += 1;
      held = rec.ready();
    }
    expect(held).toBeDefined();
    // Accepted up to the bound (records carry a 13-byte header each), not beyond.
    expect(accepted * 513).toBeGreaterThanOrEqual(3000);
    expect((accepted - 1) * 513).toBeLessThan(3000);
    let released = false;
    void held!.then(() => (released = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(released).toBe(false);
    disk.release();
    await until(() => released);
    const result = await rec.end();
    expect(result.bytesOut).toBe(accepted * 500);
    expect(channel(rec.path, 1).equals(Buffer.alloc(accepted * 500, 0x62))).toBe(true);
  });

  it('a failure releases a held relay (it then cuts rather than waits forever)', async () => {
    const dir = tmp();
    const disk = controlledDisk();
    const rec = recording(dir, { io: disk.io, batchBytes: 1000, maxUnwrittenBytes: 2000, batchWindowMs: 5 });
    disk.state.hang = true;
    for (let i = 0; i < 5; i++) rec.toPod(Buffer.alloc(500));
    const held = rec.ready();
    expect(held).toBeDefined();
    disk.state.failWrite = true;
    disk.release();
    await held;
    await expect(rec.end()).rejects.toThrow(/ENOSPC/);
  });
});
