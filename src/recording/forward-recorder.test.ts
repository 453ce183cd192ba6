import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ForwardRecording, forwardRecordingPath } from './forward-recorder.js';
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
  it('keeps each direction exactly, hashes each, says what the traffic is, and hashes the file', () => {
    const dir = tmp();
    const rec = new ForwardRecording({ dir, approvalId: 'a1', sessionId: 's1', seq: 2, port: 8080, startedAt: new Date() });
    expect(rec.path).toBe(forwardRecordingPath(dir, 'a1', 's1', 2));
    expect(rec.path).toBe(join(dir, 'a1', 's1.c2.raw'));
    expect(rec.relativePath).toBe(join('a1', 's1.c2.raw'));
    rec.toPod(Buffer.from('GET / HT'));
    rec.toPod(Buffer.from('TP/1.1\r\n\r\n'));
    rec.fromPod(Buffer.from('HTTP/1.1 200 OK\r\n\r\nhi'));
    rec.errorText('done');
    const result = rec.finish();
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
    expect(rec.finish()).toBe(result);
  });

  it('a connection that carried nothing has no protocol; one where only the pod spoke is unrecognised', () => {
    const dir = tmp();
    const quiet = new ForwardRecording({ dir, approvalId: null, sessionId: 's2', seq: 1, port: 7000, startedAt: new Date() });
    expect(quiet.finish().protocol).toBeNull();
    const banner = new ForwardRecording({ dir, approvalId: null, sessionId: 's2', seq: 2, port: 22, startedAt: new Date() });
    banner.fromPod(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'));
    expect(banner.finish().protocol).toBe('unrecognised');
  });

  it('cannot be created where it cannot be written: a RecordingError, so the connection is refused', () => {
    const dir = tmp();
    // The approval's directory is a file: nothing can be created under it (whoever runs this).
    writeFileSync(join(dir, 'a1'), 'not a directory');
    expect(() => new ForwardRecording({ dir, approvalId: 'a1', sessionId: 's3', seq: 1, port: 80, startedAt: new Date() })).toThrow(/cannot create .*s3\.c1\.raw/);
  });

  it('never overwrites: a second recording of the same connection is refused', () => {
    const dir = tmp();
    new ForwardRecording({ dir, approvalId: 'a1', sessionId: 's4', seq: 1, port: 80, startedAt: new Date() }).finish();
    expect(() => new ForwardRecording({ dir, approvalId: 'a1', sessionId: 's4', seq: 1, port: 80, startedAt: new Date() })).toThrow(/EEXIST/);
  });
});
