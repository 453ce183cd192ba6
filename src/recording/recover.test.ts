import { createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseCast } from './cast-reader.js';
import { readRawSidecar } from './raw-sidecar.js';
import { createRecorder, type RecorderOptions } from './recorder.js';
import { INTERRUPTED_MARKER, recoverRecording } from './recover.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

let dir: string;
let clock = 0;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kb-recover-'));
  clock = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function opts(over: Partial<RecorderOptions> = {}, tty = false): RecorderOptions {
  return {
    dir,
    approvalId: 'apr_x',
    sessionId: 'ses_y',
    recordStdin: true,
    clockUs: () => clock,
    header: { agent: 'a', namespace: 'n', pod: 'p', container: 'c', command: ['sh'], tty, transport: 'spdy', protocol: 'v4.channel.k8s.io' },
    ...over,
  };
}

describe('recoverRecording (after a crash)', () => {
  it('closes an interrupted v2 cast with a marker at the last event time and returns the hashes', async () => {
    const rec = createRecorder(opts());
    clock = 1_250_000;
    rec.stdout(Buffer.from('still running\n'));
    clock = 2_000_000;
    rec.stdin(Buffer.from('q'));
    await rec.flush();
    // crash: no end()
    const r = recoverRecording({ castPath: rec.castPath, rawPath: rec.rawPath });
    expect(r.interruptedMarkerWritten).toBe(true);
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect(cast.events.at(-1)).toEqual({ timeUs: 2_000_000, code: 'm', data: INTERRUPTED_MARKER });
    expect(r.castSha256).toBe(sha(readFileSync(rec.castPath)));
    expect(r.rawSha256).toBe(sha(readFileSync(rec.rawPath)));
    expect(r.channelSha256.stdout).toBe(sha(Buffer.from('still running\n')));
    expect(r.channelSha256.stdin).toBe(sha(Buffer.from('q')));
    // running it again changes nothing
    const again = recoverRecording({ castPath: rec.castPath, rawPath: rec.rawPath });
    expect(again.interruptedMarkerWritten).toBe(false);
    expect(again.castSha256).toBe(r.castSha256);
  });

  it('removes a torn last line and a torn last record', async () => {
    const rec = createRecorder(opts());
    rec.stdout(Buffer.from('ok\n'));
    await rec.flush();
    appendFileSync(rec.castPath, '[1.5, "o", "half a li');
    appendFileSync(rec.rawPath, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 50, 0x41]));
    expect(parseCast(readFileSync(rec.castPath, 'utf8'), 'v2').truncatedTail).toBe(true);
    const r = recoverRecording({ castPath: rec.castPath, rawPath: rec.rawPath });
    expect(r.castTruncatedTail).toBe(true);
    expect(r.rawTruncatedTail).toBe(true);
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v2');
    expect(cast.truncatedTail).toBe(false);
    expect(cast.events.map((e) => e.data)).toEqual(['session ses_y started under approval apr_x', 'ok\n', INTERRUPTED_MARKER]);
    expect(readRawSidecar(readFileSync(rec.rawPath)).truncated).toBe(false);
  });

  it('writes the header of a TTY cast that never got one (v3)', () => {
    const rec = createRecorder(opts({ format: 'v3' }, true));
    expect(readFileSync(rec.castPath, 'utf8')).toBe('');
    const r = recoverRecording({ castPath: rec.castPath, rawPath: rec.rawPath });
    expect(r.castHeaderWritten).toBe(true);
    const cast = parseCast(readFileSync(rec.castPath, 'utf8'), 'v3');
    expect(cast.header).toMatchObject({ cols: 80, rows: 24 });
    expect(cast.header.extra.kube_bastion).toMatchObject({ session: 'ses_y', approval: 'apr_x' });
    expect(cast.events.map((e) => e.data)).toEqual(['session ses_y started under approval apr_x', INTERRUPTED_MARKER]);
  });

  it('only computes hashes with repair: false', () => {
    const rec = createRecorder(opts({ recordStdin: false }));
    rec.stdout(Buffer.from('x'));
    const before = readFileSync(rec.castPath);
    const r = recoverRecording({ castPath: rec.castPath, rawPath: rec.rawPath, repair: false });
    expect(readFileSync(rec.castPath).equals(before)).toBe(true);
    expect(r.castSha256).toBe(sha(before));
    expect(r.channelSha256.stdin).toBeUndefined();
  });
});
