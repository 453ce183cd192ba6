// Hostile review of the batched exec/attach recorder (recorder.ts, append-file.ts, cast-batch.ts)
// and the relay's use of SessionSink.ready()/onFailure(): a disk that fails, fsyncs that fail, a
// disk that hangs, end() during a write, and UTF-8 split across batches. The disk is the
// recorder's injectable FileIo; both sides of the relay are PassThrough fakes.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SessionEnd } from '../model/session.js';
import { apiStatus, exitCodeStatus, type Status } from '../protocol/status.js';
import type { ServerStreams } from '../protocol/streams.js';
import { v5 } from '../protocol/versions/index.js';
import { Relay, type UpstreamStreams } from '../session/relay.js';
import { nodeFileIo, type FileIo } from './append-file.js';
import { CastWorkerPool } from './cast-derivation.js';
import { parseCast } from './cast-reader.js';
import { outputText } from './events.js';
import { readRawSidecar } from './raw-sidecar.js';
import { createRecorder, RecordingError, type RecorderOptions } from './recorder.js';

const APR = 'apr_abcdefghijklmnopqrst';
const SES = 'ses_abcdefghijklmnopqrst';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kb-rec-hostile-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function options(over: Partial<RecorderOptions> = {}): RecorderOptions {
  return {
    dir,
    approvalId: APR,
    sessionId: SES,
    format: 'v2',
    recordStdin: true,
    now: () => new Date('2025-06-01T12:00:00.000Z'),
    header: { agent: 'ci-bot', namespace: 'default', pod: 'web-0', container: 'app', command: ['sh'], tty: false, transport: 'websocket', protocol: 'v5.channel.k8s.io' },
    ...over,
  };
}

const sessionEnd = (exitCode: number | null, reason: SessionEnd['reason'] = 'completed'): SessionEnd => ({
  reason,
  exitCode,
  status: exitCode === null ? apiStatus(403, 'Forbidden', 'cut') : exitCodeStatus(exitCode),
  bytesIn: 0,
  bytesOut: 0,
});

const ENOSPC = (): Error => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
const EIO = (): Error => Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });

/**
 * A disk the test controls: which path each fd belongs to, every write and fsync per path, and
 * switches to fail writes/fsyncs, hold writes (slow disk), or never complete them (hung disk).
 */
function controlledDisk() {
  const paths = new Map<number, string>();
  const writes: Array<{ path: string; len: number }> = [];
  const fsyncs: string[] = [];
  const state = {
    failWrite: undefined as ((path: string, nth: number) => boolean) | undefined,
    failFsync: false,
    hang: false,
    gate: undefined as Promise<void> | undefined,
  };
  let open: (() => void) | undefined;
  let rawWrites = 0;
  const io: FileIo = {
    ...nodeFileIo,
    openSync: (path, flags, mode) => {
      const fd = nodeFileIo.openSync(path, flags, mode);
      paths.set(fd, path);
      return fd;
    },
    write: async (fd, buf, off, len) => {
      const path = paths.get(fd) ?? '?';
      writes.push({ path, len });
      if (path.endsWith('.raw')) rawWrites += 1;
      if (state.hang) return new Promise<number>(() => undefined);
      if (state.gate) await state.gate;
      if (state.failWrite?.(path, rawWrites)) throw ENOSPC();
      return nodeFileIo.write(fd, buf, off, len);
    },
    fsync: async (fd) => {
      fsyncs.push(paths.get(fd) ?? '?');
      if (state.failFsync) throw EIO();
      return nodeFileIo.fsync(fd);
    },
  };
  return {
    io,
    writes,
    fsyncs,
    state,
    hold: () => (state.gate = new Promise((r) => (open = r))),
    release: () => {
      state.gate = undefined;
      open?.();
    },
  };
}

/** The agent and upstream sides of one non-TTY exec, as PassThrough fakes. */
function fakeSession() {
  const agentOut: Buffer[] = [];
  const agentStdout = new PassThrough();
  const agentStderr = new PassThrough();
  agentStdout.on('data', (c: Buffer) => agentOut.push(c));
  agentStderr.on('data', (c: Buffer) => agentOut.push(c));
  const finished: Status[] = [];
  let closeAgent!: () => void;
  const agentClosed = new Promise<void>((r) => (closeAgent = r));
  const agent: ServerStreams = {
    transport: 'websocket',
    protocol: v5,
    protocolName: v5.name,
    options: { stdin: false, stdout: true, stderr: true, tty: false },
    stdin: null,
    stdout: agentStdout,
    stderr: agentStderr,
    onResize: () => () => {},
    finish: async (s: Status) => {
      finished.push(s);
      closeAgent();
    },
    destroy: () => closeAgent(),
    closed: agentClosed,
  };
  let settle!: (s: Status) => void;
  const status = new Promise<Status>((r) => (settle = r));
  const upstream = {
    stdin: null,
    stdout: new PassThrough(),
    stderr: new PassThrough(),
    resize: () => {},
    status,
    destroy: () => {
      settle(apiStatus(500, 'InternalError', 'upstream session destroyed'));
    },
    closed: new Promise<void>(() => {}),
  } satisfies UpstreamStreams;
  const exit = (code: number): void => {
    upstream.stdout.end();
    upstream.stderr.end();
    settle(exitCodeStatus(code));
  };
  const relayed = (): Buffer => Buffer.concat(agentOut);
  return { agent, upstream, agentOut, relayed, finished, exit };
}

const cutStatus = (reason: string, detail?: string): Status => apiStatus(403, 'Forbidden', `cut: ${reason}${detail ? ` (${detail})` : ''}`);

/** Polls until `cond` holds (throws after `ms`). */
async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const stop = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > stop) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Resolves with the value, or with 'timeout' after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())]);
}

const sidecarStdout = (path: string): Buffer =>
  Buffer.concat(
    readRawSidecar(readFileSync(path))
      .records.filter((r) => r.name === 'stdout')
      .map((r) => r.data),
  );

describe('recorder (hostile): failures mid-session', () => {
  it('a write that fails on the second batch cuts the session; the sidecar is a prefix of what the agent got, within the bound', async () => {
    const disk = controlledDisk();
    // the second raw write (the second batch) fails; the first went through
    disk.state.failWrite = (path, nth) => path.endsWith('.raw') && nth >= 2;
    const rec = createRecorder(options({ io: disk.io, batchBytes: 1000, maxUnwrittenBytes: 4000, batchWindowMs: 5 }));
    const failures: Error[] = [];
    rec.onFailure((e) => failures.push(e));
    const s = fakeSession();
    const relay = new Relay({ agent: s.agent, upstream: s.upstream, sinks: [rec], cutStatus });
    const done = relay.run();
    let sent = 0;
    for (let i = 0; i < 40 && !failures.length; i++) {
      s.upstream.stdout.write(Buffer.alloc(600, 0x41 + (i % 26)));
      sent += 1;
      await new Promise((r) => setTimeout(r, 3));
    }
    const end = await done;
    expect(end.reason).toBe('recording-failed');
    expect(end.status.message).toMatch(/recording-failed \(cannot write .*\.raw: ENOSPC/);
    expect(failures).toHaveLength(1);
    // nothing more is relayed after the cut
    const before = s.relayed().length;
    s.upstream.stdout.write(Buffer.alloc(600, 0x7a));
    await new Promise((r) => setTimeout(r, 10));
    expect(s.relayed().length).toBe(before);
    const result = await rec.finished;
    expect(result.error).toMatch(/ENOSPC/);
    const recorded = sidecarStdout(rec.rawPath);
    const relayed = s.relayed();
    expect(recorded.length).toBeGreaterThan(0);
    // the docs: the agent has at most the unwritten window beyond what is on disk
    expect(relayed.subarray(0, recorded.length).equals(recorded)).toBe(true);
    expect(relayed.length - recorded.length).toBeLessThanOrEqual(4000 + 600);
    expect(sent).toBeGreaterThan(1);
    // the cast says what the sidecar says (written from the same batches)
    expect(outputText(parseCast(readFileSync(rec.castPath, 'utf8'), 'v2').events)).toBe(recorded.toString());
  });

  it('a marker after a failure throws and is not recorded; the cutoff marker attempt does not change the cut', async () => {
    const disk = controlledDisk();
    const rec = createRecorder(options({ io: disk.io }));
    rec.stdout(Buffer.from('one\n'));
    disk.state.failWrite = () => true;
    await rec.flush();
    expect(() => rec.marker('cutoff: recording-failed')).toThrow(RecordingError);
    expect(() => rec.writeMarker('warning: x')).toThrow(RecordingError);
    expect(() => rec.resize({ width: 10, height: 10 })).toThrow(RecordingError);
    expect(rec.ready()).toBeUndefined();
    disk.state.failWrite = undefined;
    await expect(rec.end(sessionEnd(null, 'recording-failed'))).rejects.toThrow(RecordingError);
    const raw = readRawSidecar(readFileSync(rec.rawPath));
    expect(raw.records.filter((r) => r.name === 'marker')).toEqual([]);
    expect(raw.records.filter((r) => r.name === 'status')).toEqual([]);
  });

  it('a failing periodic fsync cuts the session through onFailure', async () => {
    const disk = controlledDisk();
    disk.state.failFsync = true;
    const rec = createRecorder(options({ io: disk.io, fsyncIntervalMs: 1, batchWindowMs: 1 }));
    const s = fakeSession();
    const relay = new Relay({ agent: s.agent, upstream: s.upstream, sinks: [rec], cutStatus });
    const done = relay.run();
    await new Promise((r) => setTimeout(r, 5));
    s.upstream.stdout.write('x\n');
    const end = await within(done, 2000);
    expect(end).not.toBe('timeout');
    expect((end as SessionEnd).reason).toBe('recording-failed');
    expect((end as SessionEnd).status.message).toMatch(/cannot sync .*EIO/);
  });
});

describe('recorder (hostile): the cast worker fails', () => {
  it('the worker thread dies mid-session: the session is cut with recording-failed, the sidecar still has what the agent got', async () => {
    const pool = new CastWorkerPool();
    const rec = createRecorder(options({ castWorker: pool, batchWindowMs: 5 }));
    const failures: Error[] = [];
    rec.onFailure((e) => failures.push(e));
    const s = fakeSession();
    const relay = new Relay({ agent: s.agent, upstream: s.upstream, sinks: [rec], cutStatus });
    const done = relay.run();
    s.upstream.stdout.write('before\n');
    await until(() => readFileSync(rec.castPath, 'utf8').includes('before'), 15_000); // the thread's start (through tsx here)
    await pool.terminate();
    s.upstream.stdout.write('after\n');
    const end = await within(done, 3000);
    expect(end).not.toBe('timeout');
    expect((end as SessionEnd).reason).toBe('recording-failed');
    expect((end as SessionEnd).status.message).toMatch(/recording-failed \(cannot derive .*\.cast: the cast worker exited/);
    expect(failures).toHaveLength(1);
    expect((await rec.finished).error).toMatch(/cast worker exited/);
    // what the agent got is in the sidecar (written before the cast of the same batch)
    expect(sidecarStdout(rec.rawPath).toString()).toBe(s.relayed().toString());
    expect(outputText(parseCast(readFileSync(rec.castPath, 'utf8'), 'v2').events)).toBe('before\n');
  });

  it('a session opened after the worker died gets a new one and records normally', async () => {
    const pool = new CastWorkerPool();
    const first = createRecorder(options({ castWorker: pool, sessionId: 'ses_first000000000000000' }));
    await pool.terminate();
    await expect(first.end(sessionEnd(0))).rejects.toThrow(/cast worker exited/);
    const rec = createRecorder(options({ castWorker: pool }));
    rec.stdout(Buffer.from('fine\n'));
    await rec.end(sessionEnd(0));
    expect(outputText(parseCast(readFileSync(rec.castPath, 'utf8'), 'v2').events)).toBe('fine\n');
    await pool.terminate();
  });
});

describe('recorder (hostile): failures at the end of a completed command', () => {
  it('an fsync that fails at end(): the recording reports the error', async () => {
    const disk = controlledDisk();
    const rec = createRecorder(options({ io: disk.io, fsyncIntervalMs: 0 }));
    rec.stdout(Buffer.from('out\n'));
    disk.state.failFsync = true;
    await expect(rec.end(sessionEnd(0))).rejects.toThrow(/EIO/);
    const result = await rec.finished;
    expect(result.error).toMatch(/EIO/);
  });

  it('an fsync that fails at end() is reported through onFailure (docs: "a batch write (or fsync) that fails is reported through onFailure")', async () => {
    const disk = controlledDisk();
    const rec = createRecorder(options({ io: disk.io, fsyncIntervalMs: 0 }));
    const failures: Error[] = [];
    rec.onFailure((e) => failures.push(e));
    rec.stdout(Buffer.from('out\n'));
    disk.state.failFsync = true;
    await expect(rec.end(sessionEnd(0))).rejects.toThrow(/EIO/);
    expect(failures.map((e) => e.message)).toEqual([expect.stringMatching(/EIO/)]);
  });

  it('an fsync that fails at end(): the agent does not hear a successful exit status (recording not on disk)', async () => {
    const disk = controlledDisk();
    const rec = createRecorder(options({ io: disk.io, fsyncIntervalMs: 0 }));
    const s = fakeSession();
    const relay = new Relay({ agent: s.agent, upstream: s.upstream, sinks: [rec], cutStatus });
    const done = relay.run();
    s.upstream.stdout.write('the output\n');
    await until(() => s.agentOut.length === 1);
    disk.state.failFsync = true;
    s.exit(0);
    const end = await done;
    expect((await rec.finished).error).toMatch(/EIO/);
    // fail closed: the command's recording is not on disk, so the agent must not be told "exit 0"
    expect(s.finished).toHaveLength(1);
    expect(s.finished[0]).not.toEqual(exitCodeStatus(0));
    expect(end.reason).toBe('recording-failed');
  });

  it('the final batch write fails at end(): the agent does not hear a successful exit status', async () => {
    const disk = controlledDisk();
    const rec = createRecorder(options({ io: disk.io, batchWindowMs: 60_000 }));
    const s = fakeSession();
    const relay = new Relay({ agent: s.agent, upstream: s.upstream, sinks: [rec], cutStatus });
    const done = relay.run();
    s.upstream.stdout.write('relayed, never written\n');
    await until(() => s.agentOut.length === 1);
    disk.state.failWrite = () => true;
    s.exit(0);
    const end = await done;
    expect((await rec.finished).error).toMatch(/ENOSPC/);
    // the agent got output the disk never got; it must not also get "exit 0"
    expect(sidecarStdout(rec.rawPath).length).toBe(0);
    expect(s.finished[0]).not.toEqual(exitCodeStatus(0));
    expect(end.reason).toBe('recording-failed');
  });
});

describe('recorder (hostile): a hung disk', () => {
  it('the relay stops relaying past maxUnwrittenBytes (plus one chunk) while the disk hangs', async () => {
    const disk = controlledDisk();
    const rec = createRecorder(options({ io: disk.io, batchBytes: 1000, maxUnwrittenBytes: 3000, batchWindowMs: 5 }));
    const s = fakeSession();
    const relay = new Relay({ agent: s.agent, upstream: s.upstream, sinks: [rec], cutStatus });
    const done = relay.run();
    disk.state.hang = true;
    for (let i = 0; i < 50; i++) {
      s.upstream.stdout.write(Buffer.alloc(500, 0x61));
      s.upstream.stderr.write(Buffer.alloc(500, 0x62));
    }
    await new Promise((r) => setTimeout(r, 50));
    const relayed = s.relayed().length;
    expect(relayed).toBeGreaterThan(0);
    // one chunk per stream may cross the bound
    expect(relayed).toBeLessThanOrEqual(3000 + 2 * 500);
    relay.cut('revoked');
    await within(done, 300);
  });

  it('a session held by a hung disk can still be cut: the agent hears the cut Status', async () => {
    const disk = controlledDisk();
    const rec = createRecorder(options({ io: disk.io, batchBytes: 1000, maxUnwrittenBytes: 3000, batchWindowMs: 5 }));
    const s = fakeSession();
    const relay = new Relay({ agent: s.agent, upstream: s.upstream, sinks: [rec], cutStatus });
    const done = relay.run();
    disk.state.hang = true;
    for (let i = 0; i < 20; i++) s.upstream.stdout.write(Buffer.alloc(500, 0x61));
    await new Promise((r) => setTimeout(r, 30));
    relay.cut('revoked');
    await until(() => s.finished.length === 1, 1000);
    expect(s.finished[0]!.message).toBe('cut: revoked');
    void done;
  });

  it('a session held by a hung disk, once cut, ends (run() resolves, the recording finishes with an error)', async () => {
    const disk = controlledDisk();
    const rec = createRecorder(options({ io: disk.io, batchBytes: 1000, maxUnwrittenBytes: 3000, batchWindowMs: 5 }));
    const s = fakeSession();
    const relay = new Relay({ agent: s.agent, upstream: s.upstream, sinks: [rec], cutStatus });
    const done = relay.run();
    disk.state.hang = true;
    for (let i = 0; i < 20; i++) s.upstream.stdout.write(Buffer.alloc(500, 0x61));
    await new Promise((r) => setTimeout(r, 30));
    relay.cut('revoked');
    const end = await within(done, 3000);
    expect(end).not.toBe('timeout');
    expect((end as SessionEnd).reason).toBe('revoked');
    const result = await within(rec.finished, 100);
    expect(result).not.toBe('timeout');
  });

  it('a command that completes while the disk hangs: a revocation still reaches the agent', async () => {
    const disk = controlledDisk();
    const rec = createRecorder(options({ io: disk.io, batchWindowMs: 5 }));
    const s = fakeSession();
    const relay = new Relay({ agent: s.agent, upstream: s.upstream, sinks: [rec], cutStatus });
    const done = relay.run();
    s.upstream.stdout.write('out\n');
    await until(() => s.agentOut.length === 1);
    disk.state.hang = true;
    s.exit(0); // the relay now waits for the final flush, which never completes
    await new Promise((r) => setTimeout(r, 30));
    relay.cut('revoked');
    await new Promise((r) => setTimeout(r, 500));
    // the agent must hear *something* (the cut) rather than hang with its connection open forever
    expect(s.finished).toHaveLength(1);
    void done;
  });
});

describe('recorder (hostile): a disk that hangs while a session types', () => {
  // A few bytes at a time never reach maxUnwrittenBytes, so backpressure never holds the relay:
  // only a bound on the write in flight stops a session whose recording reaches no disk.
  it('the session is cut with recording-failed within DRAIN_PATIENCE x endTimeoutMs; the agent hears the Status', async () => {
    const disk = controlledDisk();
    const endTimeoutMs = 30;
    const rec = createRecorder(options({ io: disk.io, batchWindowMs: 5, endTimeoutMs }));
    const s = fakeSession();
    const relay = new Relay({ agent: s.agent, upstream: s.upstream, sinks: [rec], cutStatus });
    const done = relay.run();
    s.upstream.stdout.write('$ ');
    await until(() => s.agentOut.length === 1);
    disk.state.hang = true;
    const t0 = Date.now();
    let typed = 0;
    while (s.finished.length === 0 && Date.now() - t0 < 3000) {
      s.upstream.stdout.write('x');
      typed++;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(typed).toBeGreaterThan(3);
    expect(s.finished).toHaveLength(1);
    expect(s.finished[0]!.message).toBe(`cut: recording-failed (the recording disk did not finish a write within ${endTimeoutMs * 10} ms)`);
    expect(Date.now() - t0).toBeLessThan(endTimeoutMs * 10 * 4);
    const end = await within(done, 3000);
    expect(end).not.toBe('timeout');
    expect((end as SessionEnd).reason).toBe('recording-failed');
  });
});

describe('recorder (hostile): end() during a write', () => {
  it('end() while a batch write is in flight: everything batched before and after is written, once, in order', async () => {
    const disk = controlledDisk();
    const rec = createRecorder(options({ io: disk.io, batchBytes: 1000 }));
    disk.hold();
    rec.stdout(Buffer.alloc(1200, 0x61)); // batch 1: in flight, held
    await until(() => disk.writes.length >= 1);
    rec.stdout(Buffer.alloc(1200, 0x62)); // batch 2: queued behind it (flushWanted)
    rec.stdout(Buffer.from('tail\n'));
    const ended = rec.end(sessionEnd(0));
    expect(() => rec.stdout(Buffer.from('after end'))).toThrow(RecordingError);
    expect(rec.ready()).toBeUndefined();
    let settled = false;
    void ended.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false); // end waits for the write in flight
    disk.release();
    await ended;
    const result = await rec.finished;
    expect(result.error).toBeUndefined();
    const expected = 'a'.repeat(1200) + 'b'.repeat(1200) + 'tail\n';
    expect(sidecarStdout(rec.rawPath).toString()).toBe(expected);
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect(cast.truncatedTail).toBe(false);
    expect(outputText(cast.events)).toBe(expected);
    expect(cast.events.at(-1)).toMatchObject({ code: 'm', data: 'exit status 0' });
    const raw = readRawSidecar(readFileSync(rec.rawPath));
    expect(raw.records.filter((r) => r.name === 'status')).toHaveLength(1);
    // end twice: same result, nothing more written
    const size = readFileSync(rec.rawPath).length;
    await rec.end(sessionEnd(1));
    expect(readFileSync(rec.rawPath).length).toBe(size);
  });

  it('end() while a batch write is in flight that then fails: finished reports the error, the end is not written', async () => {
    const disk = controlledDisk();
    const rec = createRecorder(options({ io: disk.io, batchBytes: 1000 }));
    const failures: Error[] = [];
    rec.onFailure((e) => failures.push(e));
    disk.hold();
    rec.stdout(Buffer.alloc(1200, 0x61));
    await until(() => disk.writes.length >= 1);
    disk.state.failWrite = () => true;
    const ended = rec.end(sessionEnd(0));
    disk.release();
    await expect(ended).rejects.toThrow(/ENOSPC/);
    const result = await rec.finished;
    expect(result.error).toMatch(/ENOSPC/);
    expect(failures).toHaveLength(1);
    expect(readRawSidecar(readFileSync(rec.rawPath)).records).toEqual([]);
  });
});

describe('recorder (hostile): fsync cadence', () => {
  it('what was written is fsynced within about fsyncIntervalMs even when the session then goes idle', async () => {
    const disk = controlledDisk();
    const rec = createRecorder(options({ io: disk.io, fsyncIntervalMs: 50, batchWindowMs: 5 }));
    await new Promise((r) => setTimeout(r, 60)); // past the first interval
    rec.stdout(Buffer.from('first\n'));
    await until(() => disk.writes.some((w) => w.path.endsWith('.cast') && w.len > 0));
    const fsyncsAfterFirst = disk.fsyncs.length;
    rec.stdout(Buffer.from('second\n')); // written within the interval of the first fsync: not synced now
    await until(() => disk.writes.filter((w) => w.path.endsWith('.raw')).length >= 2); // the metadata is written synchronously at creation
    await new Promise((r) => setTimeout(r, 300)); // idle for 6 intervals
    // docs: a power loss loses at most what was written in the last second (here: interval)
    expect(disk.fsyncs.length).toBeGreaterThan(fsyncsAfterFirst);
    await rec.end(sessionEnd(0));
  });
});

describe('recorder (hostile): cast validity across batches', () => {
  it('many one-byte chunks of multibyte UTF-8, batched at a few bytes, split characters across batches: the cast has exactly the text', async () => {
    const disk = controlledDisk();
    let clock = 0;
    const rec = createRecorder(options({ io: disk.io, batchBytes: 50, batchWindowMs: 1, clockUs: () => clock }));
    const text = 'héllo wörld — ✓ 日本語 😀 ascii\n'.repeat(20);
    const bytes = Buffer.from(text, 'utf8');
    for (let i = 0; i < bytes.length; i++) {
      rec.stdout(bytes.subarray(i, i + 1));
      // runs break every few chunks (times more than RUN_SPAN apart), inside characters too
      if (i % 7 === 0) clock += 20_000;
      // a batch boundary every 17 bytes: inside characters, many times
      if (i % 17 === 0) await rec.flush();
    }
    await rec.end(sessionEnd(0));
    expect((await rec.finished).error).toBeUndefined();
    expect(disk.writes.filter((w) => w.path.endsWith('.raw')).length).toBeGreaterThan(5);
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect(cast.truncatedTail).toBe(false);
    for (const e of cast.events) expect(e.data).not.toContain('\uFFFD');
    expect(cast.events.filter((e) => e.code === 'm' && e.data.startsWith('binary'))).toEqual([]);
    expect(outputText(cast.events)).toBe(text);
    expect(sidecarStdout(rec.rawPath).equals(bytes)).toBe(true);
    // times never go backwards
    const times = cast.events.map((e) => e.timeUs);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('stdout and stderr interleaved, each with characters split across batches: no binary marker, every byte as text', async () => {
    const disk = controlledDisk();
    let clock = 0;
    const rec = createRecorder(options({ io: disk.io, batchBytes: 40, batchWindowMs: 1, clockUs: () => clock }));
    const out = Buffer.from('ÄÖÜ€😀'.repeat(30), 'utf8');
    const err = Buffer.from('日本語✓'.repeat(30), 'utf8');
    let i = 0;
    let j = 0;
    while (i < out.length || j < err.length) {
      if (i < out.length) rec.stdout(out.subarray(i, (i += 3)));
      if (j < err.length) rec.stderr(err.subarray(j, (j += 2)));
      clock += 3_000;
      await new Promise((r) => setImmediate(r));
    }
    await rec.end(sessionEnd(0));
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect(cast.events.filter((e) => e.code === 'm' && e.data.startsWith('binary'))).toEqual([]);
    for (const e of cast.events) expect(e.data).not.toContain('\uFFFD');
    const o = outputText(cast.events);
    expect(Buffer.byteLength(o)).toBe(out.length + err.length);
    expect(o.replace(/[日本語✓]/gu, '')).toBe(out.toString());
    expect(o.replace(/[ÄÖÜ€😀]/gu, '')).toBe(err.toString());
  });

  it('a character left incomplete at the end is one binary marker, its bytes in the sidecar', async () => {
    const disk = controlledDisk();
    const rec = createRecorder(options({ io: disk.io, batchWindowMs: 1 }));
    rec.stdout(Buffer.from('ok '));
    rec.stdout(Buffer.from([0xf0, 0x9f]));
    await rec.flush();
    rec.stdout(Buffer.from([0x98]));
    await rec.end(sessionEnd(0));
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect(outputText(cast.events)).toBe('ok ');
    expect(cast.events.filter((e) => e.code === 'm').map((e) => e.data)).toContain(`binary output on stdout: 3 bytes, kept in ${SES}.raw`);
    expect(sidecarStdout(rec.rawPath).equals(Buffer.from([0x6f, 0x6b, 0x20, 0xf0, 0x9f, 0x98]))).toBe(true);
  });
});
