import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameTap, PeerFramer, summary } from '../../../test/fixtures/spdy/frame-tap.js';
import { socketPair } from '../../../test/fixtures/spdy/socket-pair.js';
import type { BastionError } from '../../errors/index.js';
import { SpdyConnection } from './connection.js';
import { GoAwayStatus, RstStatus } from './frames.js';
import type { SpdyStream } from './stream.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A server connection on one end of a pair; the test plays kubectl on the other. */
function serverWithPeer(limits = {}) {
  const pair = socketPair();
  const server = new SpdyConnection(pair.server, { role: 'server', limits });
  const errors: BastionError[] = [];
  server.on('error', (err) => errors.push(err));
  const tap = new FrameTap(pair.client);
  const peer = new PeerFramer();
  cleanups.push(() => {
    server.destroy();
    peer.close();
  });
  return { pair, server, tap, peer, errors, send: (b: Buffer) => pair.client.write(b) };
}

/** Reads to the end without destroying the stream (an async iterator would destroy it). */
function text(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks).toString()));
    stream.once('error', reject);
  });
}

function nextStream(conn: SpdyConnection): Promise<SpdyStream> {
  return new Promise((resolve) => conn.once('stream', resolve));
}

describe('SpdyConnection (server role)', () => {
  it('hands over peer streams with their headers and carries data both ways', async () => {
    const { server, tap, peer, send } = serverWithPeer();
    const got = nextStream(server);
    send(await peer.synStream(1, { streamtype: 'stdin' }));
    const stream = await got;
    expect(stream.id).toBe(1);
    expect(stream.headers).toEqual({ streamtype: ['stdin'] });
    stream.reply();
    await tap.until((f) => f.length === 1);
    expect(summary(tap.frames[0]!)).toBe('SYN_REPLY 1 {}');

    send(peer.data(1, 'hello '));
    send(peer.data(1, 'world', true));
    expect(await text(stream)).toBe('hello world');
    expect(stream.remoteEnded).toBe(true);

    stream.end('bye');
    await tap.until((f) => f.some((x) => x.kind === 'DATA' && x.flags === 1));
    expect(tap.frames.slice(1).map(summary)).toEqual(['DATA 1 "bye"', 'DATA 1 flags=1 ""']);
    expect(server.openStreamCount).toBe(0); // both sides closed
  });

  it('joins the small writes queued behind one in flight into one DATA frame, in order', async () => {
    const { server, tap, peer, send } = serverWithPeer();
    const got = nextStream(server);
    send(await peer.synStream(1, { streamtype: 'stdout' }));
    const stream = await got;
    stream.write('a');
    for (const s of ['bb', 'ccc', 'dddd']) stream.write(s);
    stream.end();
    await tap.until((f) => f.some((x) => x.kind === 'DATA' && x.flags === 1));
    expect(tap.frames.slice(1).map(summary)).toEqual(['DATA 1 "a"', 'DATA 1 "bbcccdddd"', 'DATA 1 flags=1 ""']);
  });

  it('review: a reset while queued chunks are being written stops them; every write still calls back and ends', async () => {
    const { server, tap, peer, send } = serverWithPeer({ outboundDataFrameSize: 1024 });
    const got = nextStream(server);
    send(await peer.synStream(1, { streamtype: 'stdout' }));
    const stream = await got;
    stream.on('error', () => {});
    let called = 0;
    stream.write(Buffer.alloc(64 * 1024, 0x61), () => called++);
    for (let i = 0; i < 8; i++) stream.write(Buffer.alloc(i % 2 ? 10 : 20 * 1024, 0x62 + i), () => called++);
    stream.write(Buffer.alloc(0), () => called++);
    await tap.until((f) => f.some((x) => x.kind === 'DATA'));
    send(peer.rst(1, RstStatus.CANCEL));
    send(peer.ping(3));
    await tap.until((f) => f.some((x) => x.kind === 'PING'));
    stream.end();
    await new Promise<void>((resolve) => stream.once('finish', () => resolve()).once('close', () => resolve()));
    expect(called).toBe(10);
    const dataBytes = tap.frames.filter((f) => f.kind === 'DATA').length * 1024;
    expect(dataBytes).toBeLessThan(64 * 1024 + 8 * 20 * 1024);
    expect(server.isOpen).toBe(true);
  });

  it('echoes the peer’s PINGs unchanged and ignores unsolicited replies to its own parity', async () => {
    const { tap, peer, send } = serverWithPeer();
    send(peer.ping(1));
    send(peer.ping(2)); // our parity, never sent by us: ignored
    send(peer.ping(0xffffffff));
    await tap.until((f) => f.length === 2);
    expect(tap.frames.map(summary)).toEqual(['PING 1', 'PING 4294967295']);
  });

  it('ignores SETTINGS and WINDOW_UPDATE and never waits for them', async () => {
    const { server, tap, peer, send } = serverWithPeer();
    send(Buffer.from('800300040000000c000000010000000400000064', 'hex')); // SETTINGS max streams 100
    send(Buffer.from('80030009000000080000000000010000', 'hex')); // WINDOW_UPDATE connection
    const got = nextStream(server);
    send(await peer.synStream(1, { streamtype: 'stdout' }));
    const stream = await got;
    const big = randomBytes(1024 * 1024); // far beyond SPDY/3.1's 64 KiB initial window
    stream.end(big);
    await tap.until((f) => f.some((x) => x.kind === 'DATA' && x.flags === 1));
    const data = Buffer.concat(tap.frames.flatMap((f) => (f.kind === 'DATA' ? [f.data] : [])));
    expect(createHash('sha256').update(data).digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
    // Large writes are split into bounded frames.
    expect(Math.max(...tap.frames.map((f) => (f.kind === 'DATA' ? f.data.length : 0)))).toBe(server.limits.outboundDataFrameSize);
  });

  it('treats RST_STREAM from the peer as the end of its data and drops our later writes', async () => {
    const { server, tap, peer, send } = serverWithPeer();
    const got = nextStream(server);
    send(await peer.synStream(1, { streamtype: 'stdin' }));
    const stream = await got;
    stream.reply();
    const resets: number[] = [];
    stream.on('reset', (status) => resets.push(status));
    send(peer.data(1, 'partial'));
    send(peer.rst(1, RstStatus.CANCEL));
    expect(await text(stream)).toBe('partial');
    expect(resets).toEqual([RstStatus.CANCEL]);
    stream.write('dropped');
    send(peer.data(1, 'late data crossing the reset is ignored'));
    send(peer.ping(3));
    await tap.until((f) => f.some((x) => x.kind === 'PING'));
    expect(tap.frames.map(summary)).toEqual(['SYN_REPLY 1 {}', 'PING 3']);
    expect(server.isOpen).toBe(true);
  });

  it('closes like the kubelet: RST what we have not finished, GOAWAY(OK), end the socket', async () => {
    const { server, tap, peer, send, pair } = serverWithPeer();
    for (const [id, type] of [[1, 'error'], [3, 'stdin'], [5, 'stdout']] as const) {
      const got = nextStream(server);
      send(await peer.synStream(id, { streamtype: type }));
      const s = await got;
      s.reply();
      if (type === 'stdout') s.end('out');
    }
    await tap.until((f) => f.some((x) => x.kind === 'DATA' && x.flags === 1));
    await server.close();
    await tap.untilEnded();
    expect(tap.frames.map(summary)).toEqual([
      'SYN_REPLY 1 {}',
      'SYN_REPLY 3 {}',
      'SYN_REPLY 5 {}',
      'DATA 5 "out"',
      'DATA 5 flags=1 ""',
      'RST_STREAM 1 status=5',
      'RST_STREAM 3 status=5',
      'GOAWAY last=5 status=0',
    ]);
    pair.client.end();
    await server.closed;
    expect(server.error).toBeUndefined();
  });

  it('handles kubectl ending the session: RST CANCEL on all streams, GOAWAY, TCP close', async () => {
    const { server, peer, send, pair, errors } = serverWithPeer();
    const streams: SpdyStream[] = [];
    for (const [id, type] of [[1, 'error'], [3, 'stdout']] as const) {
      const got = nextStream(server);
      send(await peer.synStream(id, { streamtype: type }));
      streams.push(await got);
    }
    send(peer.rst(1));
    send(peer.rst(3));
    send(peer.goAway(0, GoAwayStatus.OK));
    pair.client.end();
    await server.closed;
    expect(server.goAway).toEqual({ lastGoodStreamId: 0, status: 0 });
    expect(errors).toEqual([]);
    expect(server.error).toBeUndefined();
  });

  it('ends the session with GOAWAY(PROTOCOL_ERROR) for a stream id that does not increase', async () => {
    const { server, tap, peer, send, errors } = serverWithPeer();
    server.on('stream', (s) => s.reply());
    send(await peer.synStream(3, { streamtype: 'a' }));
    send(await peer.synStream(1, { streamtype: 'b' }));
    await tap.untilEnded();
    expect(tap.frames.map(summary)).toEqual(['SYN_REPLY 3 {}', 'GOAWAY last=3 status=1']);
    expect(errors.map((e) => e.code)).toEqual(['SPDY_PROTOCOL_ERROR']);
  });

  it('refuses a stream over the concurrency limit and ends the session', async () => {
    const { server, tap, peer, send, errors } = serverWithPeer({ maxConcurrentStreams: 2 });
    server.on('stream', (s) => s.reply());
    for (const id of [1, 3, 5]) send(await peer.synStream(id, { streamtype: 'x' }));
    await tap.untilEnded();
    expect(tap.frames.map(summary)).toEqual(['SYN_REPLY 1 {}', 'SYN_REPLY 3 {}', 'RST_STREAM 5 status=3', 'GOAWAY last=5 status=1']);
    expect(errors.map((e) => e.code)).toEqual(['SPDY_TOO_MANY_STREAMS']);
  });

  it('rejects DATA for a stream that was never opened', async () => {
    const { tap, peer, send, errors } = serverWithPeer();
    send(peer.data(9, 'x'));
    await tap.untilEnded();
    expect(tap.frames.map(summary)).toEqual(['GOAWAY last=0 status=1']);
    expect(errors.map((e) => e.code)).toEqual(['SPDY_INVALID_STREAM']);
  });

  it('survives a throwing stream listener (reported as the connection error, not thrown)', async () => {
    const { server, tap, peer, send, errors } = serverWithPeer();
    server.on('stream', () => {
      throw new Error('consumer bug');
    });
    send(await peer.synStream(1, { streamtype: 'x' }));
    await tap.untilEnded();
    expect(errors.map((e) => e.code)).toEqual(['INTERNAL']);
    expect(tap.frames.map(summary).at(-1)).toBe(`GOAWAY last=1 status=${GoAwayStatus.INTERNAL_ERROR}`);
  });

  it('reads SPDY bytes that arrived with the upgrade request (head) before the socket', async () => {
    const pair = socketPair();
    const peer = new PeerFramer();
    const head = await peer.synStream(1, { streamtype: 'error' });
    const server = new SpdyConnection(pair.server, { role: 'server', head });
    cleanups.push(() => server.destroy());
    const got = new Promise<SpdyStream>((resolve) => server.on('stream', resolve));
    expect((await got).headers).toEqual({ streamtype: ['error'] });
  });
});

describe('SpdyConnection (client role)', () => {
  it('opens odd streams, talks to a server connection, pings, and closes cleanly', async () => {
    const pair = socketPair();
    const server = new SpdyConnection(pair.server, { role: 'server' });
    const client = new SpdyConnection(pair.client, { role: 'client' });
    cleanups.push(() => {
      server.destroy();
      client.destroy();
    });
    server.on('stream', (stream) => {
      stream.reply({ 'x-answer': 'yes' });
      stream.pipe(stream); // echo
    });
    const a = client.openStream({ streamtype: 'stdin' });
    const b = client.openStream({ streamtype: 'resize' });
    expect([a.id, b.id]).toEqual([1, 3]);
    const replied = new Promise((resolve) => a.once('reply', resolve));
    a.end('ping-pong');
    expect(await replied).toEqual({ 'x-answer': ['yes'] });
    expect(await text(a)).toBe('ping-pong');
    expect(a.headers).toEqual({ 'x-answer': ['yes'] });
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
    b.end();
    await client.close();
    await Promise.all([client.closed, server.closed]);
    expect(client.error).toBeUndefined();
    expect(server.error).toBeUndefined();
    expect(server.goAway).toEqual({ lastGoodStreamId: 0, status: 0 });
  });

  it('refuses new streams after the peer’s GOAWAY', async () => {
    const pair = socketPair();
    const client = new SpdyConnection(pair.client, { role: 'client' });
    const goaway = new Promise((resolve) => client.once('goaway', resolve));
    pair.server.write(new PeerFramer().goAway(0, GoAwayStatus.OK));
    await goaway;
    expect(() => client.openStream({ a: 'b' })).toThrow(expect.objectContaining({ code: 'SPDY_GOAWAY' }));
    client.destroy();
  });
});
