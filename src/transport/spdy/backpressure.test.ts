// Backpressure end to end. kubectl does no SPDY flow control, so TCP is the only brake: a slow
// consumer must stop socket reading, and a slow peer must hold our writers, with bounded buffers.
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { FrameTap, PeerFramer } from '../../../test/fixtures/spdy/frame-tap.js';
import { socketPair } from '../../../test/fixtures/spdy/socket-pair.js';
import { successStatus } from '../../protocol/status.js';
import { SpdyConnection } from './connection.js';
import { Flag } from './frames.js';
import { acceptSpdyRemoteCommand } from './server.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(5);
  }
}

const request = {
  headers: { upgrade: 'SPDY/3.1' },
  headersDistinct: { upgrade: ['SPDY/3.1'], 'x-stream-protocol-version': ['v4.channel.k8s.io'] },
} as unknown as IncomingMessage;

describe('backpressure', () => {
  it('stops reading the socket while the stdin consumer is slow, then delivers everything', async () => {
    const pair = socketPair(16 * 1024);
    const peer = new PeerFramer();
    const tap = new FrameTap(pair.client, { expectHttpResponse: true });
    const accepted = acceptSpdyRemoteCommand(request, pair.server, Buffer.alloc(0), {
      options: { stdin: true, stdout: true, stderr: false, tty: false },
    });
    for (const [id, type] of [[1, 'error'], [3, 'stdin'], [5, 'stdout']] as const) {
      pair.client.write(await peer.synStream(id, { streamtype: type }));
      await tap.until((f) => f.some((x) => x.kind === 'SYN_REPLY' && x.streamId === id));
    }
    const streams = await accepted;
    const stdin = streams.stdin!;

    // kubectl's side: 8 MiB of stdin in 32 KiB frames, as fast as TCP (the pair) lets it.
    const input = randomBytes(8 * MiB);
    let framesWritten = 0;
    const writer = (async () => {
      for (let off = 0; off < input.length; off += 32 * 1024) {
        const last = off + 32 * 1024 >= input.length;
        framesWritten++;
        if (!pair.client.write(peer.data(3, input.subarray(off, off + 32 * 1024), last))) {
          await new Promise((r) => pair.client.once('drain', r));
        }
      }
    })();

    // Nobody reads stdin yet: the server must stop reading, so the writer stalls early.
    let stalledAt = -1;
    for (let polls = 0; polls < 100 && stalledAt !== pair.client.bytesSent; polls++) {
      stalledAt = pair.client.bytesSent;
      await sleep(30);
    }
    expect(pair.client.bytesSent).toBe(stalledAt); // no progress: the socket is not being read
    expect(stalledAt).toBeLessThan(256 * 1024);
    expect(framesWritten).toBeLessThan(input.length / (32 * 1024));
    // What the server holds: the stream's buffer (high-water mark + one frame) and one socket chunk.
    expect(stdin.readableLength).toBeLessThanOrEqual(64 * 1024 + 32 * 1024);
    expect(pair.server.readableLength).toBeLessThanOrEqual(64 * 1024);

    // A slow consumer: everything still arrives, intact.
    const received: Buffer[] = [];
    let readSinceTick = 0;
    await new Promise<void>((resolve) => {
      stdin.on('data', (chunk: Buffer) => {
        received.push(chunk);
        readSinceTick += chunk.length;
        if (readSinceTick > 512 * 1024) {
          readSinceTick = 0;
          stdin.pause();
          setTimeout(() => stdin.resume(), 5);
        }
      });
      stdin.once('end', resolve);
    });
    await writer;
    expect(sha256(Buffer.concat(received))).toBe(sha256(input));
    await streams.finish(successStatus());
    pair.client.end();
    await streams.closed;
    peer.close();
  });

  it('completes large stdout writes to a slow reader without queueing them whole', async () => {
    const pair = socketPair(16 * 1024);
    const server = new SpdyConnection(pair.server, { role: 'server' });
    const client = new SpdyConnection(pair.client, { role: 'client' });
    server.on('stream', (stream) => {
      stream.reply();
      const output = randomBytes(16 * MiB);
      expected = sha256(output);
      stream.end(output); // one huge write
    });
    let expected = '';
    const stdout = client.openStream({ streamtype: 'stdout' });
    const chunks: Buffer[] = [];
    let maxQueued = 0;
    let readSinceTick = 0;
    await new Promise<void>((resolve) => {
      stdout.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        // The server side may hold one frame in its writer plus the socket's own buffer.
        maxQueued = Math.max(maxQueued, pair.server.writableLength);
        readSinceTick += chunk.length;
        if (readSinceTick > 2 * MiB) {
          readSinceTick = 0;
          stdout.pause();
          setTimeout(() => stdout.resume(), 5);
        }
      });
      stdout.once('end', resolve);
    });
    expect(sha256(Buffer.concat(chunks))).toBe(expected);
    expect(maxQueued).toBeLessThanOrEqual(64 * 1024);
    await client.close();
    await Promise.all([client.closed, server.closed]);
  });

  it('stops reading a peer that floods PINGs without reading the echoes', async () => {
    const pair = socketPair(16 * 1024);
    const server = new SpdyConnection(pair.server, { role: 'server' });
    const peer = new PeerFramer();
    // The peer never reads: its receive buffer fills, then our socket's, then our queue.
    const flood = Buffer.concat(Array.from({ length: 1000 }, (_, i) => peer.ping(2 * i + 1)));
    let batches = 0;
    const writer = (async () => {
      for (; batches < 1000; batches++) {
        if (!pair.client.write(flood)) await new Promise((r) => pair.client.once('drain', r));
      }
    })();
    let stalledAt = -1;
    for (let polls = 0; polls < 100 && stalledAt !== pair.client.bytesSent; polls++) {
      stalledAt = pair.client.bytesSent;
      await sleep(30);
    }
    expect(stalledAt).toBeLessThan(1024 * 1024); // 12 MB were on offer
    expect(server.isOpen).toBe(true);
    // Reading the echoes lets the flood through, all of it answered.
    let echoed = 0;
    pair.client.on('data', (c: Buffer) => (echoed += c.length));
    await writer;
    await waitFor(() => echoed === 1000 * flood.length);
    server.destroy();
    peer.close();
  });

  it('splits writes into DATA frames of the configured size, the last one carrying FIN', async () => {
    const pair = socketPair();
    const server = new SpdyConnection(pair.server, { role: 'server', limits: { outboundDataFrameSize: 1000 } });
    const tap = new FrameTap(pair.client);
    const peer = new PeerFramer();
    server.on('stream', (stream) => stream.end(Buffer.alloc(2500, 1)));
    pair.client.write(await peer.synStream(1, { streamtype: 'stdout' }));
    await tap.until((f) => f.some((x) => x.kind === 'DATA' && (x.flags & Flag.FIN) !== 0));
    const sizes = tap.frames.flatMap((f) => (f.kind === 'DATA' ? [`${f.data.length}${f.flags ? '+FIN' : ''}`] : []));
    expect(sizes).toEqual(['1000', '1000', '500', '0+FIN']);
    server.destroy();
    peer.close();
  });
});
