import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameTap, PeerFramer, summary } from '../../../test/fixtures/spdy/frame-tap.js';
import { socketPair } from '../../../test/fixtures/spdy/socket-pair.js';
import { exitCodeStatus, successStatus } from '../../protocol/status.js';
import type { ServerStreams, StreamOptions } from '../../protocol/streams.js';
import type { TerminalSize } from '../../protocol/resize.js';
import { acceptSpdyRemoteCommand } from './server.js';
import type { SpdyServerStreams } from './server-streams.js';

const V4_OFFER = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'];

/** The parts of an IncomingMessage the upgrade reads, as Node's HTTP parser fills them. */
function upgradeRequest(offer: readonly string[] | undefined, upgrade = 'SPDY/3.1'): IncomingMessage {
  const headers: Record<string, string> = { connection: 'Upgrade', upgrade };
  const headersDistinct: Record<string, string[]> = { connection: ['Upgrade'], upgrade: [upgrade] };
  if (offer) {
    headers['x-stream-protocol-version'] = offer.join(', ');
    headersDistinct['x-stream-protocol-version'] = [...offer];
  }
  return { headers, headersDistinct } as unknown as IncomingMessage;
}

function readAll(socket: Duplex): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
    socket.on('end', () => resolve(out));
  });
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** Plays kubectl: opens the streams one at a time, each after the previous SYN_REPLY. */
async function openSession(
  options: StreamOptions,
  types: readonly string[],
  offer: readonly string[] = V4_OFFER,
  extra: { streamSetupTimeoutMs?: number } = {},
) {
  const pair = socketPair();
  const tap = new FrameTap(pair.client, { expectHttpResponse: true });
  const peer = new PeerFramer();
  const accepted = acceptSpdyRemoteCommand(upgradeRequest(offer), pair.server, Buffer.alloc(0), { options, ...extra });
  accepted.catch(() => undefined);
  cleanups.push(() => {
    pair.server.destroy();
    peer.close();
  });
  const ids: Record<string, number> = {};
  let id = 1;
  for (const type of types) {
    ids[type] = id;
    pair.client.write(await peer.synStream(id, { streamtype: type }));
    const want = id;
    await tap.until((f) => f.some((x) => x.kind === 'SYN_REPLY' && x.streamId === want));
    id += 2;
  }
  return { pair, tap, peer, accepted, ids, send: (b: Buffer) => pair.client.write(b) };
}

describe('acceptSpdyRemoteCommand: negotiation', () => {
  it('answers 400 with a Status when X-Stream-Protocol-Version is missing', async () => {
    const pair = socketPair();
    const response = readAll(pair.client);
    const opts = { options: { stdin: false, stdout: true, stderr: true, tty: false } };
    await expect(acceptSpdyRemoteCommand(upgradeRequest(undefined), pair.server, Buffer.alloc(0), opts)).rejects.toMatchObject({
      code: 'BAD_STREAM_REQUEST',
    });
    const text = await response;
    expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toMatchObject({ kind: 'Status', code: 400, reason: 'BadRequest' });
  });

  it('answers 403 plus one X-Accepted-Stream-Protocol-Versions per supported version when nothing matches', async () => {
    const pair = socketPair();
    const response = readAll(pair.client);
    const opts = { options: { stdin: false, stdout: true, stderr: true, tty: false }, supported: ['v5.channel.k8s.io', 'v4.channel.k8s.io'] };
    await expect(
      acceptSpdyRemoteCommand(upgradeRequest(['v3.channel.k8s.io', 'channel.k8s.io']), pair.server, Buffer.alloc(0), opts),
    ).rejects.toMatchObject({ code: 'NO_COMMON_PROTOCOL' });
    const text = await response;
    expect(text).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(text.match(/^X-Accepted-Stream-Protocol-Versions: .*$/gm)).toEqual([
      'X-Accepted-Stream-Protocol-Versions: v5.channel.k8s.io',
      'X-Accepted-Stream-Protocol-Versions: v4.channel.k8s.io',
    ]);
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 403, reason: 'Forbidden' });
  });

  it('picks the first client-offered version the server supports, from repeated or comma-joined lines', async () => {
    const pair = socketPair();
    const tap = new FrameTap(pair.client, { expectHttpResponse: true });
    const req = {
      headers: { upgrade: 'SPDY/3.1', 'x-stream-protocol-version': 'v5.channel.k8s.io, v2.channel.k8s.io, v3.channel.k8s.io' },
      headersDistinct: { upgrade: ['SPDY/3.1'], 'x-stream-protocol-version': ['v5.channel.k8s.io, v2.channel.k8s.io', 'v3.channel.k8s.io'] },
    } as unknown as IncomingMessage;
    const accepted = acceptSpdyRemoteCommand(req, pair.server, Buffer.alloc(0), {
      options: { stdin: false, stdout: false, stderr: false, tty: false },
      supported: ['v3.channel.k8s.io', 'v2.channel.k8s.io'],
    });
    const peer = new PeerFramer();
    pair.client.write(await peer.synStream(1, { streamtype: 'error' }));
    const streams = await accepted;
    expect(streams.protocolName).toBe('v2.channel.k8s.io');
    expect(streams.protocol.version).toBe(2);
    await tap.until(() => tap.httpResponse !== undefined);
    expect(tap.httpResponse).toBe(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v2.channel.k8s.io\r\n\r\n',
    );
    streams.destroy();
    peer.close();
  });
});

describe('acceptSpdyRemoteCommand: a session', () => {
  const EXEC_I = { stdin: true, stdout: true, stderr: true, tty: false };

  it('runs `exec -i cat` the kubelet way (stream order, echo, FINs, Status, RST, GOAWAY)', async () => {
    const s = await openSession(EXEC_I, ['error', 'stdin', 'stdout', 'stderr']);
    const streams = await s.accepted;
    expect(streams.transport).toBe('spdy');
    expect(streams.protocolName).toBe('v4.channel.k8s.io');
    expect(streams.stderr).not.toBeNull();
    streams.stdin!.pipe(streams.stdout!, { end: false });
    const stdinDone = new Promise((resolve) => streams.stdin!.once('end', resolve));
    s.send(s.peer.data(3, 'hello\nworld\n'));
    s.send(s.peer.data(3, '', true));
    await stdinDone;
    await streams.finish(successStatus());
    s.pair.client.end();
    await streams.closed;
    expect(s.tap.frames.map(summary)).toEqual([
      'SYN_REPLY 1 {}',
      'SYN_REPLY 3 {}',
      'SYN_REPLY 5 {}',
      'SYN_REPLY 7 {}',
      'DATA 5 "hello\\nworld\\n"',
      'DATA 5 flags=1 ""',
      'DATA 7 flags=1 ""',
      'DATA 1 "{\\"metadata\\":{},\\"status\\":\\"Success\\"}"',
      'DATA 1 flags=1 ""',
      'RST_STREAM 3 status=5', // stdin: we never finished it, so it is reset, as spdystream's Close does
      'GOAWAY last=7 status=0',
    ]);
  });

  it('writes a non-zero exit code as a v4 Status, and as text for v2', async () => {
    const v4 = await openSession({ ...EXEC_I, stdin: false }, ['error', 'stdout', 'stderr']);
    await (await v4.accepted).finish(exitCodeStatus(7));
    const v4Status = v4.tap.frames.find((f) => f.kind === 'DATA' && f.streamId === 1 && f.data.length > 0);
    expect(JSON.parse((v4Status as { data: Buffer }).data.toString())).toMatchObject({
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: '7' }] },
    });

    const v2 = await openSession({ ...EXEC_I, stdin: false }, ['error', 'stdout', 'stderr'], ['v2.channel.k8s.io']);
    await (await v2.accepted).finish(exitCodeStatus(7));
    const v2Text = v2.tap.frames.find((f) => f.kind === 'DATA' && f.streamId === 1 && f.data.length > 0);
    expect((v2Text as { data: Buffer }).data.toString()).toBe('command terminated with non-zero exit code: exit status 7');
  });

  it('expects a resize stream and no stderr with a TTY, and delivers sizes (even those sent before subscribing)', async () => {
    const s = await openSession({ stdin: true, stdout: true, stderr: true, tty: true }, ['error', 'stdin', 'stdout', 'resize']);
    s.send(s.peer.data(7, '{"Width":100,"Height":30}\n'));
    const streams = await s.accepted;
    expect(streams.stderr).toBeNull();
    await new Promise((r) => setTimeout(r, 20)); // the first size arrives before anyone listens
    const sizes: TerminalSize[] = [];
    const more = new Promise<void>((resolve) =>
      streams.onResize((size) => {
        sizes.push(size);
        if (sizes.length === 3) resolve();
      }),
    );
    s.send(s.peer.data(7, '{"Width":120,'));
    s.send(s.peer.data(7, '"Height":40}\n{"Width":1,"Height":2}\n'));
    await more;
    expect(sizes).toEqual([
      { width: 100, height: 30 },
      { width: 120, height: 40 },
      { width: 1, height: 2 },
    ]);
    streams.destroy();
  });

  it('ends the connection with a protocol error on bad resize data', async () => {
    const s = await openSession({ stdin: false, stdout: true, stderr: false, tty: true }, ['error', 'stdout', 'resize']);
    const streams = await s.accepted;
    s.send(s.peer.data(5, 'not json\n'));
    await s.tap.untilEnded();
    expect(s.tap.frames.map(summary).at(-1)).toBe('GOAWAY last=5 status=1');
    s.pair.client.end(); // as kubectl closes after GOAWAY
    await streams.closed;
    expect((streams as SpdyServerStreams).error?.code).toBe('BAD_RESIZE');
  });

  it('times out waiting for streams, then closes', async () => {
    const pair = socketPair();
    const tap = new FrameTap(pair.client, { expectHttpResponse: true });
    const accepted = acceptSpdyRemoteCommand(upgradeRequest(V4_OFFER), pair.server, Buffer.alloc(0), {
      options: EXEC_I,
      streamSetupTimeoutMs: 50,
    });
    const peer = new PeerFramer();
    pair.client.write(await peer.synStream(1, { streamtype: 'error' }));
    await expect(accepted).rejects.toMatchObject({ code: 'STREAM_SETUP_TIMEOUT' });
    await tap.untilEnded();
    expect(tap.frames.map(summary)).toEqual(['SYN_REPLY 1 {}', 'RST_STREAM 1 status=5', 'GOAWAY last=1 status=0']);
    peer.close();
  });

  it('refuses a stream the options did not ask for', async () => {
    const pair = socketPair();
    const tap = new FrameTap(pair.client, { expectHttpResponse: true });
    const accepted = acceptSpdyRemoteCommand(upgradeRequest(V4_OFFER), pair.server, Buffer.alloc(0), {
      options: { stdin: false, stdout: true, stderr: true, tty: false },
    });
    const peer = new PeerFramer();
    pair.client.write(await peer.synStream(1, { streamtype: 'resize' }));
    await expect(accepted).rejects.toMatchObject({ code: 'BAD_STREAM_REQUEST' });
    await tap.untilEnded();
    expect(tap.frames.map(summary)).toEqual(['GOAWAY last=1 status=1']);
    peer.close();
  });

  it('rejects when the client goes away during setup', async () => {
    const pair = socketPair();
    const accepted = acceptSpdyRemoteCommand(upgradeRequest(V4_OFFER), pair.server, Buffer.alloc(0), { options: EXEC_I });
    pair.client.on('data', () => undefined);
    pair.client.end();
    await expect(accepted).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
  });

  it('finishes cleanly when kubectl has already cancelled everything', async () => {
    const s = await openSession({ ...EXEC_I, stdin: false }, ['error', 'stdout', 'stderr']);
    const streams: ServerStreams = await s.accepted;
    s.send(s.peer.rst(5));
    s.send(s.peer.rst(3));
    s.send(s.peer.rst(1));
    s.send(s.peer.goAway());
    s.pair.client.end();
    await streams.closed;
    await s.tap.untilEnded();
    // Every stream was reset by the peer: nothing to reset or finish, just our GOAWAY.
    const sent = s.tap.frames.map(summary);
    expect(sent).toEqual(['SYN_REPLY 1 {}', 'SYN_REPLY 3 {}', 'SYN_REPLY 5 {}', 'GOAWAY last=5 status=0']);
    expect((streams as SpdyServerStreams).error).toBeUndefined();
    // A late write is dropped: its callback succeeds, nothing reaches the wire.
    const err = await new Promise<Error | null | undefined>((resolve) => streams.stdout!.write('after the end: dropped, not thrown', resolve));
    expect(err).toBeFalsy();
    await streams.finish(successStatus());
    expect(s.tap.frames.map(summary)).toEqual(sent);
  });
});
