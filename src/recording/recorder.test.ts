import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { exitCodeStatus, successStatus, apiStatus, type Status } from '../protocol/status.js';
import { v5 } from '../protocol/versions/index.js';
import type { ServerStreams } from '../protocol/streams.js';
import { Relay, type UpstreamStreams } from '../session/relay.js';
import type { SessionEnd } from '../model/session.js';
import { nodeFileIo, type FileIo } from './append-file.js';
import { parseCast } from './cast-reader.js';
import { outputText } from './events.js';
import { readRawSidecar, sharedSegmentPool } from './raw-sidecar.js';
import { createRecorder, RecordingError, toSessionRecording, type RecorderOptions, type RecordingResult } from './recorder.js';

const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');
const APR = 'apr_abcdefghijklmnopqrst';
const SES = 'ses_abcdefghijklmnopqrst';

let dir: string;
let clock = 0;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kb-rec-'));
  clock = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function options(over: Partial<RecorderOptions> = {}, header: Partial<RecorderOptions['header']> = {}): RecorderOptions {
  return {
    dir,
    approvalId: APR,
    sessionId: SES,
    format: 'v2',
    recordStdin: true,
    clockUs: () => clock,
    now: () => new Date('2025-06-01T12:00:00.000Z'),
    header: {
      agent: 'ci-bot',
      namespace: 'default',
      pod: 'web-0',
      container: 'app',
      command: ['sh'],
      tty: true,
      transport: 'websocket',
      protocol: 'v5.channel.k8s.io',
      ...header,
    },
    ...over,
  };
}

const end = (exitCode: number | null, reason: SessionEnd['reason'] = 'completed', status: Status = exitCode === null ? apiStatus(403, 'Forbidden', 'cut') : exitCodeStatus(exitCode)): SessionEnd => ({
  reason,
  exitCode,
  status,
  bytesIn: 0,
  bytesOut: 0,
});

describe('recorder: asciicast v2 (default)', () => {
  it('records a TTY session: header from the first resize, start marker, o/i/r/m events, exit marker; the sidecar and hashes', async () => {
    const rec = createRecorder(options());
    expect(rec.castPath).toBe(join(dir, APR, `${SES}.cast`));
    expect(rec.rawPath).toBe(join(dir, APR, `${SES}.raw`));
    // TTY: the header waits for the first resize
    expect(readFileSync(rec.castPath, 'utf8')).toBe('');
    clock = 1_000;
    rec.resize({ width: 132, height: 43 });
    clock = 20_000;
    rec.stdin(Buffer.from('ls\r'));
    const out = Buffer.from('файл.txt  🙂 done\r\n', 'utf8');
    clock = 30_000;
    rec.stdout(out.subarray(0, 3)); // splits the second Cyrillic letter
    clock = 40_000; // 10 ms later: an event of its own (closer chunks share one)
    rec.stdout(out.subarray(3, 14)); // splits the emoji
    clock = 50_000;
    rec.stdout(out.subarray(14));
    clock = 1_500_000;
    rec.resize({ width: 100, height: 30 });
    clock = 2_000_000;
    rec.marker('warning: approval expires in 60s');
    clock = 2_500_000;
    rec.end(end(0));
    const result = await rec.finished;

    const text = readFileSync(rec.castPath, 'utf8');
    const cast = parseCast(text, 'v2');
    expect(cast.truncatedTail).toBe(false);
    expect(cast.header.cols).toBe(132);
    expect(cast.header.rows).toBe(43);
    expect(cast.header.timestamp).toBe(Date.parse('2025-06-01T12:00:00Z') / 1000);
    expect(cast.header.command).toBe('sh');
    expect(cast.header.extra.kube_bastion).toMatchObject({
      approval: APR,
      session: SES,
      agent: 'ci-bot',
      namespace: 'default',
      pod: 'web-0',
      container: 'app',
      command: ['sh'],
      tty: true,
      transport: 'websocket',
      protocol: 'v5.channel.k8s.io',
      stdin_recorded: true,
      raw: `${SES}.raw`,
    });
    expect(cast.events).toEqual([
      { timeUs: 0, code: 'm', data: `session ${SES} started under approval ${APR}` },
      { timeUs: 20_000, code: 'i', data: 'ls\r' },
      { timeUs: 30_000, code: 'o', data: 'ф' },
      { timeUs: 40_000, code: 'o', data: 'айл.txt  ' },
      { timeUs: 50_000, code: 'o', data: '🙂 done\r\n' },
      { timeUs: 1_500_000, code: 'r', data: '100x30' },
      { timeUs: 2_000_000, code: 'm', data: 'warning: approval expires in 60s' },
      { timeUs: 2_500_000, code: 'm', data: 'exit status 0' },
    ]);
    expect(Buffer.from(outputText(cast.events), 'utf8').equals(out)).toBe(true);

    const raw = readRawSidecar(readFileSync(rec.rawPath));
    expect(raw.truncated).toBe(false);
    expect(raw.meta).toMatchObject({ session: SES, approval: APR, castFormat: 'v2', stdinRecorded: true });
    expect(raw.records.map((r) => r.name)).toEqual(['resize', 'stdin', 'stdout', 'stdout', 'stdout', 'resize', 'marker', 'marker', 'status']);
    expect(JSON.parse(raw.records.at(-1)!.data.toString())).toEqual(successStatus());

    expect(result).toEqual({
      format: 'v2',
      castPath: rec.castPath,
      castSha256: sha(readFileSync(rec.castPath)),
      rawPath: rec.rawPath,
      rawSha256: sha(readFileSync(rec.rawPath)),
      channelSha256: {
        stdin: sha('ls\r'),
        stdout: sha(out),
        stderr: sha(''),
        resize: sha('{"Width":132,"Height":43}\n{"Width":100,"Height":30}\n'),
      },
      eventCount: 8,
    });
    expect(raw.channelSha256).toEqual(result.channelSha256);
    expect(toSessionRecording(result)).toEqual({
      castPath: result.castPath,
      castSha256: result.castSha256,
      rawPath: result.rawPath,
      rawSha256: result.rawSha256,
      channelSha256: result.channelSha256,
    });
  });

  it('concatenated o data equals the output bytes for a split at every offset (stdout and stderr)', async () => {
    const outText = 'héllo wörld → 中文 🙂👍🏽\n';
    const errText = 'ошибка✗';
    const out = Buffer.from(outText);
    const err = Buffer.from(errText);
    for (let i = 0; i <= out.length; i++) {
      const sub = mkdtempSync(join(dir, 'split-'));
      const rec = createRecorder(options({ dir: sub }, { tty: false }));
      rec.stdout(out.subarray(0, i));
      rec.stderr(err.subarray(0, 5));
      rec.stdout(out.subarray(i));
      rec.stderr(err.subarray(5));
      rec.end(end(0));
      await rec.finished;
      const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
      const o = cast.events.filter((e) => e.code === 'o');
      // per channel, in arrival order: stdout's text is whole, stderr's text is whole
      const isErr = (t: string): boolean => [...t].every((c) => errText.includes(c));
      expect(o.filter((e) => !isErr(e.data)).map((e) => e.data).join('')).toBe(outText);
      expect(o.filter((e) => isErr(e.data)).map((e) => e.data).join('')).toBe(errText);
      expect(Buffer.from(outputText(cast.events)).length).toBe(out.length + err.length);
    }
  });

  it('writes the header at once without a TTY (80x24) and marks an incomplete character at the end as binary', async () => {
    const rec = createRecorder(options({}, { tty: false, command: ['cat', '/etc/motd'] }));
    const early = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect(early.header).toMatchObject({ cols: 80, rows: 24, command: 'cat /etc/motd' });
    expect(early.events).toHaveLength(1);
    rec.stdout(Buffer.from([0x61, 0xe2, 0x82]));
    rec.end(end(1));
    await rec.finished;
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect(cast.events.map((e) => [e.code, e.data])).toEqual([
      ['m', `session ${SES} started under approval ${APR}`],
      ['o', 'a'],
      ['m', `binary output on stdout: 2 bytes, kept in ${SES}.raw`],
      ['m', 'exit status 1'],
    ]);
  });

  it('with a TTY and output before any resize: 80x24 header and an r event later', async () => {
    const rec = createRecorder(options());
    clock = 10;
    rec.stdout(Buffer.from('$ '));
    clock = 20;
    rec.resize({ width: 200, height: 50 });
    rec.end(end(null, 'client-closed'));
    await rec.finished;
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect([cast.header.cols, cast.header.rows]).toEqual([80, 24]);
    expect(cast.events.map((e) => [e.code, e.data])).toEqual([
      ['m', `session ${SES} started under approval ${APR}`],
      ['o', '$ '],
      ['r', '200x50'],
      ['m', 'session ended: client-closed'],
    ]);
  });

  it('records nothing of stdin when the policy turns it off', async () => {
    const rec = createRecorder(options({ recordStdin: false }));
    rec.resize({ width: 80, height: 24 });
    rec.stdin(Buffer.from('secret\r'));
    rec.stdout(Buffer.from('ok'));
    rec.end(end(0));
    const result = await rec.finished;
    const text = readFileSync(rec.castPath, 'utf8');
    expect(text).not.toContain('secret');
    expect(readFileSync(rec.rawPath).includes('secret')).toBe(false);
    expect(parseCast(text, 'v2').events.some((e) => e.code === 'i')).toBe(false);
    expect(Object.keys(result.channelSha256).sort()).toEqual(['resize', 'stderr', 'stdout']);
    expect(parseCast(text, 'v2').header.extra.kube_bastion).toMatchObject({ stdin_recorded: false });
  });

  it('puts sessions without an approval under _none/', async () => {
    const rec = createRecorder(options({ approvalId: null }, { tty: false }));
    expect(rec.castPath).toBe(join(dir, '_none', `${SES}.cast`));
    rec.end(end(0));
    await rec.finished;
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect(cast.events[0]!.data).toBe(`session ${SES} started without an approval (allowed by policy)`);
    expect(cast.header.extra.kube_bastion).toMatchObject({ approval: null });
  });

  it('sanitises marker labels (no lone surrogates in the JSON)', async () => {
    const rec = createRecorder(options({}, { tty: false }));
    rec.writeMarker('bad \ud800 label');
    rec.end(end(0));
    await rec.finished;
    expect(readFileSync(rec.castPath, 'utf8')).toContain('"bad \ufffd label"');
  });
});

describe('recorder: asciicast v3', () => {
  it('writes intervals and an x exit event', async () => {
    const rec = createRecorder(options({ format: 'v3' }));
    clock = 1_000;
    rec.resize({ width: 90, height: 20 });
    clock = 250_400;
    rec.stdout(Buffer.from('hi\r\n'));
    clock = 1_000_000;
    rec.end(end(3));
    const result = await rec.finished;
    expect(result.format).toBe('v3');
    const text = readFileSync(rec.castPath, 'utf8');
    expect(text.split('\n').slice(1)).toEqual([
      `[0.000, "m", "session ${SES} started under approval ${APR}"]`,
      '[0.250, "o", "hi\\r\\n"]',
      '[0.750, "x", "3"]',
      '',
    ]);
    const cast = parseCast(text, 'v3');
    expect(cast.header).toMatchObject({ cols: 90, rows: 20 });
    expect(cast.events.at(-1)).toEqual({ timeUs: 1_000_000, code: 'x', data: '3' });
  });
});

describe('recorder: fail closed', () => {
  it('refuses to start when the directory cannot be created (a regular file is in the way)', () => {
    writeFileSync(join(dir, APR), 'not a directory');
    expect(() => createRecorder(options())).toThrow(RecordingError);
    expect(() => createRecorder(options())).toThrow(/cannot create the recording directory/);
  });

  it('never overwrites an existing recording', () => {
    mkdirSync(join(dir, APR));
    writeFileSync(join(dir, APR, `${SES}.cast`), 'old');
    expect(() => createRecorder(options())).toThrow(/EEXIST/);
    expect(readFileSync(join(dir, APR, `${SES}.cast`), 'utf8')).toBe('old');
  });

  it('rejects ids that are not safe file names', () => {
    expect(() => createRecorder(options({ sessionId: '../x' }))).toThrow(/unsafe session id/);
    expect(() => createRecorder(options({ approvalId: '..' }))).toThrow(/unsafe approval id/);
  });

  it('a failed batch write is reported through onFailure, and every sink call after it throws', async () => {
    let fail = false;
    const io: FileIo = {
      ...nodeFileIo,
      write: (fd, buf, off, len) => (fail ? Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })) : nodeFileIo.write(fd, buf, off, len)),
    };
    let finishedWith: RecordingResult | undefined;
    const rec = createRecorder(options({ io, onFinished: (r) => (finishedWith = r) }, { tty: false }));
    const failures: Error[] = [];
    rec.onFailure((err) => failures.push(err));
    rec.stdout(Buffer.from('fine\n'));
    await rec.flush();
    fail = true;
    rec.stdout(Buffer.from('lost\n')); // batched: the failure comes with its write
    expect(failures).toEqual([]);
    await rec.flush();
    expect(failures.map((e) => e.message)).toEqual([expect.stringMatching(/cannot write apr_abcdefghijklmnopqrst\/ses_abcdefghijklmnopqrst\.raw: ENOSPC/)]);
    expect(failures[0]).toBeInstanceOf(RecordingError);
    fail = false;
    expect(() => rec.stdout(Buffer.from('after\n'))).toThrow(RecordingError);
    expect(() => rec.marker('cutoff: recording-failed')).toThrow(RecordingError);
    // a listener registered after the failure hears of it at once
    let late: Error | undefined;
    rec.onFailure((err) => (late = err));
    expect(late?.message).toMatch(/ENOSPC/);
    await expect(rec.end(end(null, 'recording-failed'))).rejects.toThrow(/ENOSPC/);
    const result = await rec.finished;
    expect(result.error).toMatch(/cannot write apr_abcdefghijklmnopqrst\/ses_abcdefghijklmnopqrst\.raw: ENOSPC/);
    expect(finishedWith).toBe(result);
    // what was written before the failure stays readable
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect(outputText(cast.events)).toBe('fine\n');
  });

  it('a failed batch write cuts the session in the relay: nothing relayed after the failing batch', async () => {
    let failWrites = false;
    const io: FileIo = {
      ...nodeFileIo,
      write: (fd, buf, off, len) => (failWrites ? Promise.reject(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' })) : nodeFileIo.write(fd, buf, off, len)),
    };
    const rec = createRecorder(options({ io, batchWindowMs: 5 }, { tty: false }));
    const { agent, upstream, agentOut } = fakeSession();
    const relay = new Relay({ agent, upstream, sinks: [rec], cutStatus: (reason, detail) => apiStatus(403, 'Forbidden', `cut: ${reason}${detail ? ` (${detail})` : ''}`) });
    const done = relay.run();
    upstream.stdout.write(Buffer.from('first\n'));
    await until(() => agentOut.length === 1);
    await rec.flush();
    failWrites = true;
    // Within the batch window: relayed, then its write fails and the session is cut at once.
    upstream.stdout.write(Buffer.from('second\n'));
    await until(() => agentOut.length === 2);
    const sessionEnd = await done;
    upstream.stdout.write(Buffer.from('third\n'));
    expect(sessionEnd.reason).toBe('recording-failed');
    expect(sessionEnd.status.message).toMatch(/recording-failed \(cannot write .*EIO/);
    expect(Buffer.concat(agentOut).toString()).toBe('first\nsecond\n');
    const result = await rec.finished;
    expect(result.error).toMatch(/EIO/);
    expect(outputText(parseCast(readFileSync(rec.castPath, 'utf8'), 'v2').events)).toBe('first\n');
  });
});

describe('recorder: batching', () => {
  /** Counts write calls and lets a test hold them (a slow disk). */
  function countingIo(): { io: FileIo; writes: number[]; hold(): void; release(): void } {
    const writes: number[] = [];
    let gate: Promise<void> | undefined;
    let open: (() => void) | undefined;
    const io: FileIo = {
      ...nodeFileIo,
      write: async (fd, buf, off, len) => {
        writes.push(len);
        if (gate) await gate;
        return nodeFileIo.write(fd, buf, off, len);
      },
    };
    return {
      io,
      writes,
      hold: () => (gate = new Promise((r) => (open = r))),
      release: () => {
        gate = undefined;
        open?.();
      },
    };
  }

  it('writes many chunks in one write per file within the window, not one per chunk', async () => {
    const { io, writes } = countingIo();
    const rec = createRecorder(options({ io, batchWindowMs: 20 }, { tty: false }));
    for (let i = 0; i < 100; i++) rec.stdout(Buffer.from(`line ${i}\n`));
    expect(writes).toEqual([]); // nothing written on the relay's path
    // Written once the window (20 ms) is over; waited for, not timed (the cast worker may be slow to start on a busy machine).
    const text = Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join('');
    await vi.waitFor(() => expect(outputText(parseCast(readFileSync(rec.castPath, 'utf8'), 'v2').events)).toBe(text), { timeout: 10_000, interval: 20 });
    expect(writes.length).toBe(2); // one write of the sidecar, one of the cast
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    // the chunks arrived within 10 ms of each other: one event
    expect(cast.events.filter((e) => e.code === 'o')).toHaveLength(1);
    expect(outputText(cast.events)).toBe(text);
    expect(readRawSidecar(readFileSync(rec.rawPath)).records).toHaveLength(100);
    await rec.end(end(0));
  });

  it('writes at once when the batch reaches batchBytes', async () => {
    const { io, writes } = countingIo();
    const rec = createRecorder(options({ io, batchWindowMs: 60_000, batchBytes: 1000 }, { tty: false }));
    rec.stdout(Buffer.alloc(600, 0x61));
    expect(writes).toEqual([]);
    rec.stdout(Buffer.alloc(600, 0x62));
    await until(() => writes.length >= 2);
    expect(writes[0]).toBe(2 * (13 + 600));
    await rec.end(end(0));
  });

  it('bulk output is batched in a few reused segments, and the sidecar and hashes still hold every byte', async () => {
    // A new segment per batch was promoted by V8 and freed only by full GCs (a third of the
    // bastion's CPU while relaying): written batches give theirs back.
    const rec = createRecorder(options({}, { tty: false }));
    const before = sharedSegmentPool.created;
    const out = createHash('sha256');
    for (let i = 0; i < 256; i++) {
      const chunk = Buffer.alloc(256 * 1024, i);
      out.update(chunk);
      rec.stdout(chunk);
      await rec.ready();
      // A loop turn now and then lets written batches come back, as a relay's reads do.
      if (i % 8 === 7) await new Promise((r) => setImmediate(r));
    }
    await rec.end(end(0));
    const result = await rec.finished;
    // 64 MiB in 1 MiB batches: the segments in use at once (and the small ones the first batches start with), not 64.
    expect(sharedSegmentPool.created - before).toBeLessThanOrEqual(16);
    expect(result.channelSha256.stdout).toBe(out.digest('hex'));
    const raw = readRawSidecar(readFileSync(rec.rawPath));
    const sidecarOut = createHash('sha256');
    for (const r of raw.records) if (r.name === 'stdout') sidecarOut.update(r.data);
    expect(sidecarOut.digest('hex')).toBe(result.channelSha256.stdout);
    expect(result.rawSha256).toBe(sha(readFileSync(rec.rawPath)));
  });

  it('holds the relay (ready) while more than maxUnwrittenBytes are unwritten, and lets it go once written', async () => {
    const disk = countingIo();
    const rec = createRecorder(options({ io: disk.io, batchBytes: 1000, maxUnwrittenBytes: 4000 }, { tty: false }));
    disk.hold();
    rec.stdout(Buffer.alloc(1500, 0x61)); // starts a write the disk holds
    expect(rec.ready()).toBeUndefined();
    rec.stdout(Buffer.alloc(1500, 0x62));
    expect(rec.ready()).toBeUndefined();
    rec.stdout(Buffer.alloc(1500, 0x63)); // 4539 unwritten
    const held = rec.ready();
    expect(held).toBeInstanceOf(Promise);
    let released = false;
    void held!.then(() => (released = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(released).toBe(false);
    disk.release();
    await held;
    await rec.end(end(0));
    const raw = readRawSidecar(readFileSync(rec.rawPath));
    expect(Buffer.concat(raw.records.filter((r) => r.name === 'stdout').map((r) => r.data)).toString()).toBe('a'.repeat(1500) + 'b'.repeat(1500) + 'c'.repeat(1500));
  });

  it('the relay stops reading a stream while the recorder holds it, and relays everything once the disk catches up', async () => {
    const disk = countingIo();
    const rec = createRecorder(options({ io: disk.io, batchBytes: 1000, maxUnwrittenBytes: 2000 }, { tty: false }));
    const { agent, upstream, agentOut, finishStatus } = fakeSession();
    const relay = new Relay({ agent, upstream, sinks: [rec], cutStatus: () => apiStatus(403, 'Forbidden', 'cut') });
    const done = relay.run();
    disk.hold();
    for (let i = 0; i < 10; i++) upstream.stdout.write(Buffer.alloc(1000, 0x30 + i));
    await new Promise((r) => setTimeout(r, 30));
    // relayed no further than the bound (plus the chunk that crossed it)
    const relayed = agentOut.reduce((n, c) => n + c.length, 0);
    expect(relayed).toBeLessThanOrEqual(3000);
    expect(relayed).toBeGreaterThan(0);
    disk.release();
    upstream.stdout.end();
    upstream.stderr.end();
    finishStatus(exitCodeStatus(0));
    expect((await done).reason).toBe('completed');
    expect(agentOut.reduce((n, c) => n + c.length, 0)).toBe(10_000);
    const cast = parseCast(readFileSync((await rec.finished).castPath, 'utf8'), 'v2');
    expect(outputText(cast.events)).toBe(Array.from({ length: 10 }, (_, i) => String.fromCharCode(0x30 + i).repeat(1000)).join(''));
  });

  it('output that is not valid UTF-8 is one marker in the cast, its bytes exact in the sidecar', async () => {
    const rec = createRecorder(options({}, { tty: false }));
    const bin = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x41, 0xc3]);
    clock = 100;
    rec.stdout(Buffer.from('text\n'));
    clock = 50_000;
    rec.stdout(bin);
    rec.stdout(bin);
    clock = 100_000;
    rec.stdout(Buffer.from('é\n'));
    await rec.end(end(0));
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect(cast.events.map((e) => [e.timeUs, e.code, e.data])).toEqual([
      [0, 'm', `session ${SES} started under approval ${APR}`],
      [100, 'o', 'text\n'],
      [50_000, 'm', `binary output on stdout: 12 bytes, kept in ${SES}.raw`],
      [100_000, 'o', 'é\n'],
      [100_000, 'm', 'exit status 0'],
    ]);
    const raw = readRawSidecar(readFileSync(rec.rawPath));
    expect(Buffer.concat(raw.records.filter((r) => r.name === 'stdout').map((r) => r.data)).equals(Buffer.concat([Buffer.from('text\n'), bin, bin, Buffer.from('é\n')]))).toBe(true);
  });
});

/** Polls until `cond` holds (fails the test after 2 s). */
async function until(cond: () => boolean): Promise<void> {
  const stop = Date.now() + 2000;
  while (!cond()) {
    if (Date.now() > stop) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('recorder: through the relay', () => {
  it('records a whole session the relay runs, with the exit status', async () => {
    const rec = createRecorder(options({}, { tty: false, command: ['echo', 'hi'] }));
    const { agent, upstream, agentOut, finishStatus } = fakeSession();
    const relay = new Relay({ agent, upstream, sinks: [rec], cutStatus: () => apiStatus(403, 'Forbidden', 'cut') });
    const done = relay.run();
    upstream.stdout.write(Buffer.from('hi\n'));
    upstream.stderr.write(Buffer.from('warn\n'));
    upstream.stdout.end();
    upstream.stderr.end();
    finishStatus(exitCodeStatus(0));
    const sessionEnd = await done;
    expect(sessionEnd.reason).toBe('completed');
    expect(Buffer.concat(agentOut).toString()).toBe('hi\nwarn\n');
    const result = await rec.finished;
    const cast = parseCast(readFileSync(result.castPath, 'utf8'), 'v2');
    expect(outputText(cast.events)).toBe('hi\nwarn\n');
    expect(cast.events.at(-1)).toMatchObject({ code: 'm', data: 'exit status 0' });
  });
});

describe('recorder: crash safety', () => {
  it('leaves a cast the v2 parser reads when end() is never called', async () => {
    const rec = createRecorder(options());
    rec.resize({ width: 80, height: 24 });
    clock = 20_000;
    rec.stdout(Buffer.from('partial session\r\n'));
    rec.stdin(Buffer.from('x'));
    await rec.flush();
    // no end(): the bastion "crashed"; everything written (up to the last batch) is in the files
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect(cast.truncatedTail).toBe(false);
    expect(cast.events.map((e) => e.code)).toEqual(['m', 'o', 'i']);
    const raw = readRawSidecar(readFileSync(rec.rawPath));
    expect(raw.truncated).toBe(false);
    expect(raw.records.map((r) => r.name)).toEqual(['resize', 'stdout', 'stdin']);
  });
});

describe('recorder: kubectl cp', () => {
  function makeTree(): { src: string; files: Array<{ name: string; size: number; sha256: string }> } {
    const src = join(dir, 'tree');
    mkdirSync(join(src, 'sub'), { recursive: true });
    const content: Array<[string, Buffer]> = [
      ['a.txt', Buffer.from('alpha\n')],
      [join('sub', 'b.bin'), Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff))],
    ];
    for (const [n, d] of content) writeFileSync(join(src, n), d);
    return { src, files: content.map(([n, d]) => ({ name: `tree/${n}`, size: d.length, sha256: sha(d) })) };
  }

  function byName<T extends { name: string }>(list: T[] | undefined): T[] {
    return [...(list ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  }

  it('copy out (tar cf - on stdout): lists files in the result and as markers, keeps the exact bytes, no binary o events', async () => {
    const { files } = makeTree();
    const tar = execFileSync('tar', ['cf', '-', '-C', dir, 'tree']);
    const rec = createRecorder(options({ approvalId: null }, { tty: false, command: ['tar', 'cf', '-', '/data/tree'] }));
    for (let i = 0; i < tar.length; i += 1000) rec.stdout(tar.subarray(i, i + 1000));
    rec.stderr(Buffer.from("tar: Removing leading `/' from member names\n"));
    rec.end(end(0));
    const result = await rec.finished;
    expect(byName(result.files)).toEqual(files);
    expect(result.tar).toMatchObject({ direction: 'out', channel: 'stdout', via: 'kubectl-cp', status: 'complete', fileCount: 2, omitted: 0 });
    expect(result.channelSha256.stdout).toBe(sha(tar));
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect(outputText(cast.events)).toBe("tar: Removing leading `/' from member names\n");
    const markers = cast.events.filter((e) => e.code === 'm').map((e) => e.data);
    expect(markers[1]).toMatch(/^kubectl cp out of the pod: tar archive on stdout/);
    expect(markers).toContain(`file out of the pod: tree/a.txt (6 bytes, sha256 ${files[0]!.sha256})`);
    expect(markers).toContain(`file out of the pod: tree/sub/b.bin (3000 bytes, sha256 ${files[1]!.sha256})`);
    const raw = readRawSidecar(readFileSync(rec.rawPath));
    expect(Buffer.concat(raw.records.filter((r) => r.name === 'stdout').map((r) => r.data)).equals(tar)).toBe(true);
  });

  it('copy in (tar -xmf - on stdin): lists the files; stdin bytes kept when recorded', async () => {
    const { files } = makeTree();
    const tar = execFileSync('tar', ['cf', '-', '-C', dir, 'tree']);
    const rec = createRecorder(options({}, { tty: false, command: ['tar', '--no-same-permissions', '--no-same-owner', '-xmf', '-', '-C', '/data'] }));
    for (let i = 0; i < tar.length; i += 777) rec.stdin(tar.subarray(i, i + 777));
    rec.end(end(0));
    const result = await rec.finished;
    expect(byName(result.files)).toEqual(files);
    expect(result.tar).toMatchObject({ direction: 'in', channel: 'stdin', via: 'kubectl-cp', status: 'complete' });
    expect(result.channelSha256.stdin).toBe(sha(tar));
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect(cast.events.some((e) => e.code === 'i')).toBe(false);
    expect(cast.events.filter((e) => e.data.startsWith('file into the pod: '))).toHaveLength(2);
  });

  it('a command that looks like cp but carries no tar: nothing listed, a marker says so', async () => {
    const rec = createRecorder(options({}, { tty: false, command: ['tar', 'cf', '-', '/nope'] }));
    rec.stdout(Buffer.alloc(1024, 0x41));
    rec.end(end(2));
    const result = await rec.finished;
    expect(result.files).toEqual([]);
    expect(result.tar?.status).toBe('not-tar');
    const data = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2').events.map((e) => e.data);
    expect(data).toContain('stdout is not a tar archive: nothing listed (the bytes are in the sidecar)');
  });
});

describe('recorder: files', () => {
  it('creates the approval directory on demand', () => {
    const rec = createRecorder(options({ dir: join(dir, 'deep', 'recordings') }, { tty: false }));
    expect(existsSync(rec.castPath)).toBe(true);
    rec.end(end(0));
  });
});

// A minimal agent/upstream pair for the relay: PassThrough streams, no transport.
function fakeSession(): { agent: ServerStreams; upstream: UpstreamStreams & { stdout: PassThrough; stderr: PassThrough }; agentOut: Buffer[]; finishStatus(s: Status): void } {
  const agentOut: Buffer[] = [];
  const agentStdout = new PassThrough();
  const agentStderr = new PassThrough();
  agentStdout.on('data', (c: Buffer) => agentOut.push(c));
  agentStderr.on('data', (c: Buffer) => agentOut.push(c));
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
    finish: async () => {
      closeAgent();
    },
    destroy: () => closeAgent(),
    closed: agentClosed,
  };
  let finishStatus!: (s: Status) => void;
  const status = new Promise<Status>((r) => (finishStatus = r));
  const up = {
    stdin: null,
    stdout: new PassThrough(),
    stderr: new PassThrough(),
    resize: () => {},
    status,
    destroy: () => {
      up.stdout.destroy();
      up.stderr.destroy();
    },
    closed: new Promise<void>(() => {}),
  };
  return { agent, upstream: up, agentOut, finishStatus };
}
