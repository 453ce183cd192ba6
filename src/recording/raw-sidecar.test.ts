import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppendFile } from './append-file.js';
import {
  encodeRawRecord,
  MIN_SEGMENT_BYTES,
  RawChannel,
  RawRecordBatch,
  RawSidecarFormatError,
  RawSidecarParser,
  RawSidecarWriter,
  RECORD_HEADER_BYTES,
  readRawSidecar,
  SegmentPool,
  scanRawSidecarFile,
  type RawChannelId,
  type RawSidecarMeta,
} from './raw-sidecar.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

const meta: RawSidecarMeta = {
  kind: 'kube-bastion-raw',
  session: 'ses_test',
  approval: 'apr_test',
  startedAt: '2025-01-01T00:00:00.000Z',
  cast: 'ses_test.cast',
  castFormat: 'v2',
  stdinRecorded: true,
};

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kb-raw-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function writeSample(path: string): { input: Array<{ channel: RawChannelId; timeUs: number; data: Buffer }>; fileSha: string } {
  const file = new AppendFile(path);
  const w = new RawSidecarWriter(file, meta);
  const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const input: Array<{ channel: RawChannelId; timeUs: number; data: Buffer }> = [
    { channel: RawChannel.stdin, timeUs: 0, data: Buffer.from('ls\n') },
    { channel: RawChannel.stdout, timeUs: 1_234, data: every },
    { channel: RawChannel.stderr, timeUs: 2_000, data: randomBytes(70_000) },
    { channel: RawChannel.resize, timeUs: 3_000, data: Buffer.from('{"Width":100,"Height":30}\n') },
    { channel: RawChannel.stdout, timeUs: 2 ** 40, data: Buffer.from([0xff, 0xfe, 0x00, 0xe2, 0x82]) },
    { channel: RawChannel.marker, timeUs: 2 ** 40 + 1, data: Buffer.from('warning: é') },
  ];
  for (const r of input) w.append(r.channel, r.timeUs, r.data);
  w.append(RawChannel.stdout, 5, Buffer.alloc(0)); // dropped
  const fileSha = file.close();
  expect(w.channels.digests()).toEqual({
    stdin: sha(Buffer.from('ls\n')),
    stdout: sha(Buffer.concat([every, Buffer.from([0xff, 0xfe, 0x00, 0xe2, 0x82])])),
    stderr: sha(input[2]!.data),
    resize: sha(input[3]!.data),
  });
  return { input, fileSha };
}

describe('raw sidecar', () => {
  it('round-trips binary records with channel and time, and per-channel hashes', () => {
    const path = join(dir, 'a.raw');
    const { input, fileSha } = writeSample(path);
    const bytes = readFileSync(path);
    expect(sha(bytes)).toBe(fileSha);
    expect(bytes.subarray(0, 6).toString('latin1')).toBe('KBRAW\0');
    const got = readRawSidecar(bytes);
    expect(got.meta).toEqual(meta);
    expect(got.truncated).toBe(false);
    expect(got.validLength).toBe(bytes.length);
    expect(got.records.map((r) => ({ channel: r.channel, timeUs: r.timeUs, data: r.data }))).toEqual(input);
    expect(got.records.map((r) => r.name)).toEqual(['stdin', 'stdout', 'stderr', 'resize', 'stdout', 'marker']);
    expect(got.channelSha256.stdout).toBe(sha(Buffer.concat([input[1]!.data, input[4]!.data])));
    expect(scanRawSidecarFile(path).channelSha256).toEqual(got.channelSha256);
  });

  it('reads the same records however the file is chunked', () => {
    const path = join(dir, 'b.raw');
    const { input } = writeSample(path);
    const bytes = readFileSync(path);
    for (const size of [1, 7, 512, 65_536]) {
      const p = new RawSidecarParser();
      const recs = [];
      for (let i = 0; i < bytes.length; i += size) recs.push(...p.push(bytes.subarray(i, i + size)));
      expect(recs.map((r) => sha(r.data))).toEqual(input.map((r) => sha(r.data)));
      expect(p.truncated).toBe(false);
    }
  });

  it('detects and ignores a truncated last record at every cut point', () => {
    const path = join(dir, 'c.raw');
    const { input } = writeSample(path);
    const bytes = readFileSync(path);
    const lastLen = RECORD_HEADER_BYTES + input.at(-1)!.data.length;
    const lastStart = bytes.length - lastLen;
    for (let cut = lastStart + 1; cut < bytes.length; cut++) {
      const got = readRawSidecar(bytes.subarray(0, cut));
      expect(got.truncated).toBe(true);
      expect(got.validLength).toBe(lastStart);
      expect(got.records).toHaveLength(input.length - 1);
    }
    // cutting on a record boundary is not truncation
    expect(readRawSidecar(bytes.subarray(0, lastStart)).truncated).toBe(false);
    // a truncated file on disk scans the same way
    writeFileSync(path, bytes.subarray(0, bytes.length - 3));
    const scanned = scanRawSidecarFile(path);
    expect(scanned.truncated).toBe(true);
    expect(scanned.validLength).toBe(lastStart);
  });

  it('stops at an impossible record length (corruption) and keeps what came before', () => {
    const path = join(dir, 'd.raw');
    writeSample(path);
    const bytes = readFileSync(path);
    const garbage = Buffer.alloc(RECORD_HEADER_BYTES + 4, 0xff);
    const got = readRawSidecar(Buffer.concat([bytes, garbage]));
    expect(got.truncated).toBe(true);
    expect(got.validLength).toBe(bytes.length);
    expect(got.records).toHaveLength(6);
  });

  it('rejects a file that is not a sidecar', () => {
    expect(() => readRawSidecar(Buffer.from('{"version":2}\n'))).toThrow(RawSidecarFormatError);
    expect(() => readRawSidecar(Buffer.from('KBR'))).toThrow(/incomplete/);
  });
});

describe('RawRecordBatch segments', () => {
  const concat = (parts: Buffer[]): Buffer => Buffer.concat(parts);

  it('holds a small segment for light traffic and grows to the cap for bulk, bytes unchanged', () => {
    const batch = new RawRecordBatch(1024 * 1024);
    const expected: Buffer[] = [];
    const written: Buffer[] = [];
    // Light traffic: 1 KiB each way per batch, as an interactive or mostly idle session.
    for (let i = 0; i < 50; i++) {
      const a = randomBytes(1024);
      const b = randomBytes(1024);
      const va = batch.append(RawChannel.stdin, i * 1000, a);
      batch.append(RawChannel.stdout, i * 1000 + 1, b);
      expect(va.buffer.byteLength).toBeLessThanOrEqual(MIN_SEGMENT_BYTES);
      expected.push(encodeRawRecord(RawChannel.stdin, i * 1000, a), encodeRawRecord(RawChannel.stdout, i * 1000 + 1, b));
      written.push(...batch.take());
    }
    // Bulk: 256 KiB chunks; segments grow, never past the cap (a larger record gets its own).
    let largest = 0;
    for (let i = 0; i < 16; i++) {
      const c = randomBytes(256 * 1024);
      largest = Math.max(largest, batch.append(RawChannel.stdout, 1e6 + i, c).buffer.byteLength);
      expected.push(encodeRawRecord(RawChannel.stdout, 1e6 + i, c));
      if (i % 4 === 3) written.push(...batch.take());
    }
    expect(largest).toBeGreaterThan(256 * 1024);
    expect(largest).toBeLessThanOrEqual(1024 * 1024 + RECORD_HEADER_BYTES + 256 * 1024);
    // Light again: the big segment is let go at the next take.
    written.push(...batch.take());
    const v = batch.append(RawChannel.stdin, 2e6, Buffer.from('x'));
    expected.push(encodeRawRecord(RawChannel.stdin, 2e6, Buffer.from('x')));
    written.push(...batch.take());
    expect(v.buffer.byteLength).toBeLessThanOrEqual(MIN_SEGMENT_BYTES);
    expect(concat(written).equals(concat(expected))).toBe(true);
  });
});

describe('SegmentPool', () => {
  it('a batch reuses the segments of a written batch, not of one still being written, and the bytes stay exact', () => {
    const pool = new SegmentPool();
    const batch = new RawRecordBatch(64 * 1024, pool);
    const a = randomBytes(40_000);
    const b = randomBytes(40_000);
    const c = randomBytes(40_000);
    batch.append(RawChannel.stdout, 1, a);
    const first = batch.take();
    // Not given back yet (its write is in flight): the next batch gets another segment.
    batch.append(RawChannel.stdout, 2, b);
    const second = batch.take();
    expect(second[0]!.buffer).not.toBe(first[0]!.buffer);
    const written = Buffer.concat(first); // what the disk got
    batch.release(first);
    batch.append(RawChannel.stdout, 3, c);
    const third = batch.take();
    expect(third[0]!.buffer).toBe(first[0]!.buffer);
    expect(written.equals(encodeRawRecord(RawChannel.stdout, 1, a))).toBe(true);
    expect(Buffer.concat(second).equals(encodeRawRecord(RawChannel.stdout, 2, b))).toBe(true);
    expect(Buffer.concat(third).equals(encodeRawRecord(RawChannel.stdout, 3, c))).toBe(true);
    expect(pool.created).toBe(2);
  });

  it('ignores buffers it did not make, a second release, and sizes it does not keep; holds at most maxBytes', () => {
    const pool = new SegmentPool(64 * 1024);
    const me = {};
    pool.release([Buffer.allocUnsafeSlow(MIN_SEGMENT_BYTES), Buffer.alloc(10)], me);
    expect(pool.heldBytes).toBe(0);
    const seg = pool.acquire(32 * 1024, me);
    pool.release([seg.subarray(0, 10)], me);
    pool.release([seg], me);
    expect(pool.heldBytes).toBe(32 * 1024);
    // A record larger than any segment size gets a buffer of its own, never kept.
    const odd = pool.acquire(100_000, me);
    pool.release([odd], me);
    expect(pool.heldBytes).toBe(32 * 1024);
    const more = [pool.acquire(32 * 1024, me), pool.acquire(32 * 1024, me), pool.acquire(32 * 1024, me)];
    expect(more[0]!.buffer).toBe(seg.buffer);
    pool.release(more, me);
    expect(pool.heldBytes).toBe(64 * 1024);
  });

  it("a stale release after the segment went to another batch does not take it from that batch", () => {
    const pool = new SegmentPool();
    const a = new RawRecordBatch(64 * 1024, pool);
    const b = new RawRecordBatch(64 * 1024, pool);
    const c = new RawRecordBatch(64 * 1024, pool);
    a.append(RawChannel.stdout, 1, randomBytes(1000));
    const aTaken = a.take();
    a.release(aTaken);
    // b now writes into the segment a gave back.
    const bytes = randomBytes(1000);
    b.append(RawChannel.stdout, 2, bytes);
    const bTaken = b.take();
    expect(bTaken[0]!.buffer).toBe(aTaken[0]!.buffer);
    // a gives the same segment back again (a double release), and so does someone who never had it.
    a.release(aTaken);
    c.release(bTaken);
    // c's next batch must not land in b's segment while b's write is still in flight.
    c.append(RawChannel.stdout, 3, randomBytes(1000));
    const cTaken = c.take();
    expect(cTaken[0]!.buffer).not.toBe(bTaken[0]!.buffer);
    expect(Buffer.concat(bTaken).equals(encodeRawRecord(RawChannel.stdout, 2, bytes))).toBe(true);
    // b's own release returns it.
    b.release(bTaken);
    expect(pool.heldBytes).toBe(bTaken[0]!.buffer.byteLength);
  });
});
