// Golden tests from real kubectl traffic (test/fixtures/spdy/kubectl-*.json, recorded by
// test/fixtures/spdy/capture.ts). No network: the captured bytes are decoded, and replayed into
// acceptSpdyRemoteCommand through an in-memory socket pair.
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { catHandler, newObservations, ttyEchoHandler } from '../../../test/fixtures/spdy/exec-handlers.js';
import { bytes, loadFixture, type CaptureFixture } from '../../../test/fixtures/spdy/fixture.js';
import { decodeAll, summary } from '../../../test/fixtures/spdy/frame-tap.js';
import { socketPair } from '../../../test/fixtures/spdy/socket-pair.js';
import { FrameReader } from './frame-reader.js';
import { DEFAULT_LIMITS } from './limits.js';
import { acceptSpdyRemoteCommand } from './server.js';
import type { SpdyServerStreams } from './server-streams.js';

const EXEC_I = loadFixture('kubectl-1.27-exec-i.json');
const EXEC_IT = loadFixture('kubectl-1.33-exec-it.json');
const CLIENT_ENDS = loadFixture('kubectl-1.27-exec-i-client-ends.json');

const chunks = (f: CaptureFixture, dir: 'c2s' | 's2c'): Buffer[] =>
  f.timeline.filter((e) => e.dir === dir).map((e) => Buffer.from(e.hex, 'hex'));

const SUCCESS = '"{\\"metadata\\":{},\\"status\\":\\"Success\\"}"';

const EXPECTED: Record<string, { c2s: string[]; s2c: string[] }> = {
  [EXEC_I.description]: {
    c2s: [
      'SYN_STREAM 1 {"streamtype":["error"]}',
      'SYN_STREAM 3 {"streamtype":["stdin"]}',
      'SYN_STREAM 5 {"streamtype":["stdout"]}',
      'SYN_STREAM 7 {"streamtype":["stderr"]}',
      'DATA 3 "hello\\nworld\\n"',
      'DATA 3 flags=1 ""',
      // kubectl began its own shutdown (CANCEL what it has not half-closed) before it read our
      // GOAWAY; that race decides how many of these a capture shows.
      'RST_STREAM 1 status=5',
    ],
    s2c: [
      'SYN_REPLY 1 {}',
      'SYN_REPLY 3 {}',
      'SYN_REPLY 5 {}',
      'SYN_REPLY 7 {}',
      'DATA 5 "hello\\nworld\\n"',
      'DATA 5 flags=1 ""',
      'DATA 7 flags=1 ""',
      `DATA 1 ${SUCCESS}`,
      'DATA 1 flags=1 ""',
      'RST_STREAM 3 status=5',
      'GOAWAY last=7 status=0',
    ],
  },
  [EXEC_IT.description]: {
    c2s: [
      'SYN_STREAM 1 {"streamtype":["error"]}',
      'SYN_STREAM 3 {"streamtype":["stdin"]}',
      'SYN_STREAM 5 {"streamtype":["stdout"]}',
      'SYN_STREAM 7 {"streamtype":["resize"]}',
      'DATA 7 "{\\"Width\\":100,\\"Height\\":30}\\n"',
      'DATA 3 "hello world"',
      'DATA 3 "\\r"',
      'DATA 7 "{\\"Width\\":120,\\"Height\\":40}\\n"',
      'PING 1',
      'DATA 3 "bye"',
    ],
    s2c: [
      'SYN_REPLY 1 {}',
      'SYN_REPLY 3 {}',
      'SYN_REPLY 5 {}',
      'SYN_REPLY 7 {}',
      'DATA 5 "hello world"',
      'DATA 5 "\\r"',
      'PING 1',
      'DATA 5 "bye"',
      'DATA 5 flags=1 ""',
      `DATA 1 ${SUCCESS}`,
      'DATA 1 flags=1 ""',
      'RST_STREAM 3 status=5',
      'RST_STREAM 7 status=5',
      'GOAWAY last=7 status=0',
    ],
  },
  [CLIENT_ENDS.description]: {
    c2s: [
      'SYN_STREAM 1 {"streamtype":["error"]}',
      'SYN_STREAM 3 {"streamtype":["stdin"]}',
      'SYN_STREAM 5 {"streamtype":["stdout"]}',
      'SYN_STREAM 7 {"streamtype":["stderr"]}',
      'DATA 3 "hello\\nworld\\n"',
      'DATA 3 flags=1 ""',
      // kubectl ends the session: CANCEL every stream it has not half-closed (in Go map order,
      // so a re-capture may order them differently), then GOAWAY.
      'RST_STREAM 1 status=5',
      'RST_STREAM 5 status=5',
      'RST_STREAM 7 status=5',
      'GOAWAY last=0 status=0',
    ],
    s2c: [
      'SYN_REPLY 1 {}',
      'SYN_REPLY 3 {}',
      'SYN_REPLY 5 {}',
      'SYN_REPLY 7 {}',
      'DATA 5 "hello\\nworld\\n"',
      'DATA 5 flags=1 ""',
      'DATA 7 flags=1 ""',
      `DATA 1 ${SUCCESS}`,
      'DATA 1 flags=1 ""',
    ],
  },
};

/** The IncomingMessage fields the upgrade reads, rebuilt from the captured request. */
function requestFrom(f: CaptureFixture): IncomingMessage {
  const headers: Record<string, string> = {};
  const headersDistinct: Record<string, string[]> = {};
  for (const [name, value] of f.request.headers) {
    const key = name.toLowerCase();
    (headersDistinct[key] ??= []).push(value);
    headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
  }
  return { method: f.request.method, url: f.request.url, headers, headersDistinct } as unknown as IncomingMessage;
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`replay stalled waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * Replays kubectl's side of a capture into the server. With `causal`, each client chunk is sent
 * only once the server has written everything that preceded it in the capture, as kubectl (which
 * waits for each SYN_REPLY, and reacts to output) would; without it everything is sent at once.
 */
async function replay(f: CaptureFixture, causal: boolean) {
  const pair = socketPair(1024 * 1024);
  let out = Buffer.alloc(0);
  pair.client.on('data', (c: Buffer) => (out = Buffer.concat([out, c])));
  const seen = newObservations();
  const handler = f.handler === 'cat' ? catHandler(0, seen) : ttyEchoHandler(seen);
  const session = acceptSpdyRemoteCommand(requestFrom(f), pair.server, Buffer.alloc(0), { options: f.options }).then(async (streams) => {
    await handler(streams);
    return streams as SpdyServerStreams;
  });
  const headLength = Buffer.byteLength(f.response, 'latin1');
  let serverBytesBefore = 0;
  for (const entry of f.timeline) {
    const chunk = Buffer.from(entry.hex, 'hex');
    if (entry.dir === 's2c') {
      serverBytesBefore += chunk.length;
      continue;
    }
    if (causal) await waitUntil(() => out.length >= headLength + serverBytesBefore, `${serverBytesBefore} server bytes`);
    pair.client.write(chunk);
  }
  if (causal) await waitUntil(() => out.length >= headLength + serverBytesBefore, 'the end of the server output');
  pair.client.end();
  const streams = await session;
  await streams.closed;
  return { response: out.subarray(0, headLength).toString('latin1'), output: out.subarray(headLength), seen, streams };
}

describe.each([EXEC_I, EXEC_IT, CLIENT_ENDS])('golden: $description', (fixture) => {
  it('was recorded from the kubectl build and request the fixture names', () => {
    expect(fixture.kubectl).toMatch(/^v1\.(27|33)\.\d+$/);
    expect(fixture.request.method).toBe('POST');
    const offered = fixture.request.headers.filter(([k]) => k === 'X-Stream-Protocol-Version').map(([, v]) => v);
    expect(offered.at(-1)).toBe('channel.k8s.io'); // repeated header lines, most preferred first
    expect(offered[0]).toBe(fixture.protocol);
    expect(fixture.result.exitCode).toBe(0);
  });

  it('decodes kubectl’s frames exactly', async () => {
    expect((await decodeAll(chunks(fixture, 'c2s'))).map(summary)).toEqual(EXPECTED[fixture.description]!.c2s);
  });

  it('decodes the server’s frames exactly', async () => {
    expect((await decodeAll(chunks(fixture, 's2c'))).map(summary)).toEqual(EXPECTED[fixture.description]!.s2c);
  });

  it('decodes the same bytes whatever the chunking (one buffer, 1-byte chunks)', async () => {
    const all = bytes(fixture, 'c2s');
    const expected = EXPECTED[fixture.description]!.c2s;
    expect((await decodeAll(all)).map(summary)).toEqual(expected);
    expect((await decodeAll([...all].map((b) => Buffer.of(b)))).map(summary)).toEqual(expected);
  });
});

describe('golden: wire details', () => {
  it('kubectl’s first SYN_STREAM header block is the protocol.md golden block', () => {
    const [first] = new FrameReader(DEFAULT_LIMITS).push(bytes(EXEC_I, 'c2s'));
    expect(first?.kind).toBe('SYN_STREAM');
    expect(first?.kind === 'SYN_STREAM' && first.headerBlock.toString('hex')).toBe(
      '78f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff',
    );
  });

  it('our first SYN_REPLY is the fresh-deflater empty block, later ones the short form', () => {
    const frames = new FrameReader(DEFAULT_LIMITS).push(bytes(EXEC_I, 's2c'));
    const blocks = frames.flatMap((f) => (f.kind === 'SYN_REPLY' ? [f.headerBlock.toString('hex')] : []));
    expect(blocks).toEqual(['78f9e3c6a7c262000200000000ffff', '020100000000ffff', '020100000000ffff', '020100000000ffff']);
  });
});

describe('golden: replay into acceptSpdyRemoteCommand', () => {
  it.each([EXEC_I, EXEC_IT])('reproduces the captured server bytes exactly: $description', async (fixture) => {
    const { response, output, seen, streams } = await replay(fixture, true);
    expect(response).toBe(fixture.response);
    expect(output.toString('hex')).toBe(bytes(fixture, 's2c').toString('hex'));
    expect(Buffer.concat(seen.stdin).toString('latin1')).toBe(fixture.stdin);
    expect(seen.resizes).toEqual(fixture.resizes);
    expect(streams.error).toBeUndefined();
  });

  it('handles kubectl ending the session, even with all its bytes arriving at once', async () => {
    const { seen, streams } = await replay(CLIENT_ENDS, false);
    expect(Buffer.concat(seen.stdin).toString('latin1')).toBe('hello\nworld\n');
    expect(streams.error).toBeUndefined();
  });

  it('handles kubectl ending the session at its own pace', async () => {
    const { output, seen, streams } = await replay(CLIENT_ENDS, true);
    expect(Buffer.concat(seen.stdin).toString('latin1')).toBe('hello\nworld\n');
    // Our server closes the kubelet way once stdin ends; kubectl's cancels then cross our GOAWAY.
    expect((await decodeAll(output)).map(summary).slice(0, 9)).toEqual(EXPECTED[CLIENT_ENDS.description]!.s2c);
    expect(streams.error).toBeUndefined();
  });
});
