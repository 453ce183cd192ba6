import { afterAll, beforeAll, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { successStatus } from '../../protocol/status.js';
import { DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_MESSAGE_BYTES } from './sender.js';
import { STDIN_MAX_BUFFERED } from './session.js';
import { TestClient, startHarness, type Harness } from './test-support.js';

const TOTAL = 8 * 1024 * 1024;
const CHUNK = 32 * 1024;
/** Output queued in userland: the sender's bound, plus the message that crossed it, plus slack for pongs. */
const OUT_BOUND = DEFAULT_MAX_BUFFERED_BYTES + 2 * (DEFAULT_MAX_MESSAGE_BYTES + 1) + 1024;
/** Input queued in stdin: the bound at which the socket pauses, plus what one socket read (64 KiB, one message more) can still deliver after it. */
const IN_BOUND = STDIN_MAX_BUFFERED + 64 * 1024 + CHUNK + 1;

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

it('8 MiB stdin -> stdout through a slow consumer and a slow client: byte-exact, bounded buffers', async () => {
  const input = randomBytes(TOTAL);
  const client = await TestClient.open(h.url('stdin=true&stdout=true'), 'v5.channel.k8s.io');
  const { streams, socket } = await h.nextSession();
  const stdin = streams.stdin!;

  let maxOut = 0;
  let maxIn = 0;
  const sample = (): void => {
    maxOut = Math.max(maxOut, socket.writableLength);
    maxIn = Math.max(maxIn, stdin.readableLength);
  };
  const sampler = setInterval(sample, 1);

  // The "container": passes data on, but stalls a little every 512 KiB.
  let seen = 0;
  const slow = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sample();
      const before = seen;
      seen += chunk.length;
      if (Math.floor(before / (512 * 1024)) !== Math.floor(seen / (512 * 1024))) setTimeout(() => cb(null, chunk), 15);
      else cb(null, chunk);
    },
  });
  const served = pipeline(stdin, slow, streams.stdout!).then(() => streams.finish(successStatus()));

  // The client reads slowly too. It starts paused and stays so until the kernel buffers are full
  // and the server has had to queue output itself (or 2 s pass), then it stops again for a while
  // every 1 MiB. The server's own queue must stay bounded throughout.
  client.ws.pause();
  let sawQueue = false;
  const resumeAt = setTimeout(() => client.ws.resume(), 2000);
  const watchQueue = setInterval(() => {
    if (socket.writableLength === 0) return;
    sawQueue = true;
    clearInterval(watchQueue);
    clearTimeout(resumeAt);
    setTimeout(() => client.ws.resume(), 50);
  }, 1);
  let received = 0;
  client.ws.on('message', (data: Buffer) => {
    const before = received;
    received += data.length - 1;
    if (Math.floor(before / (1024 * 1024)) !== Math.floor(received / (1024 * 1024))) {
      client.ws.pause();
      setTimeout(() => client.ws.resume(), 30);
    }
  });

  for (let off = 0; off < TOTAL; off += CHUNK) client.send(Buffer.concat([Buffer.from([0]), input.subarray(off, off + CHUNK)]));
  client.send([255, 0]);

  const close = await client.closed;
  await served;
  clearInterval(sampler);
  clearInterval(watchQueue);

  expect(close.code).toBe(1000);
  const output = client.channel(1);
  expect(output.length).toBe(TOTAL);
  expect(output.equals(input)).toBe(true);
  expect(client.channel(3).toString()).toBe('{"metadata":{},"status":"Success"}');
  // The server did have to queue output (the client stalled it), and the queue stayed bounded.
  expect(sawQueue).toBe(true);
  expect(maxOut).toBeLessThanOrEqual(OUT_BOUND);
  expect(maxIn).toBeLessThanOrEqual(IN_BOUND);
  // The pause path was really taken: stdin filled to its mark at least once.
  expect(maxIn).toBeGreaterThanOrEqual(64 * 1024);
});

it('finish() closes cleanly even while stdin backpressure has the socket paused', { timeout: 10_000 }, async () => {
  // A long close timeout: if the paused socket never read the client's close frame, this would hang.
  const slowClose = await startHarness({ closeTimeoutMs: 30_000 });
  try {
    const client = await TestClient.open(slowClose.url('stdin=true&stdout=true'), 'v5.channel.k8s.io');
    const { streams } = await slowClose.nextSession();
    // Nobody reads stdin: 1 MiB fills it and the socket is paused.
    for (let i = 0; i < 32; i++) client.send(Buffer.concat([Buffer.from([0]), Buffer.alloc(CHUNK, 1)]));
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (streams.stdin!.readableLength < 64 * 1024) return;
        clearInterval(poll);
        resolve();
      }, 1);
    });
    await streams.finish(successStatus());
    expect((await client.closed).code).toBe(1000);
    await streams.closed;
  } finally {
    await slowClose.close();
  }
});

it('a client that pings while nobody reads stdin still gets pongs; stdin stays bounded and exact', { timeout: 20_000 }, async () => {
  const client = await TestClient.open(h.url('stdin=true&stdout=true'), 'v5.channel.k8s.io');
  const { streams, socket } = await h.nextSession();
  const stdin = streams.stdin!;
  stdin.pause();
  const sent: Buffer[] = [];
  const send = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const chunk = randomBytes(CHUNK);
      sent.push(chunk);
      client.send(Buffer.concat([Buffer.from([0]), chunk]));
    }
  };
  const until = (cond: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      const poll = setInterval(() => {
        if (!cond()) return;
        clearInterval(poll);
        resolve();
      }, 1);
    });
  let maxIn = 0;
  const sampler = setInterval(() => (maxIn = Math.max(maxIn, stdin.readableLength)), 1);

  // 256 KiB nobody reads: stdin is over its 64 KiB mark (the container is not reading), yet the
  // ping sent after it is read and answered. Before, the socket paused at the mark and the pong
  // never came (kubectl gives up after 61 s).
  send(8);
  await until(() => stdin.readableLength >= 8 * CHUNK);
  const pong = new Promise<Buffer>((resolve) => client.ws.once('pong', resolve));
  client.ws.ping(Buffer.from('still there?'));
  expect((await pong).toString()).toBe('still there?');
  expect(socket.isPaused()).toBe(false);

  // A client that keeps writing: the socket pauses at the bound, and what is held stays bounded.
  send(128);
  await until(() => socket.isPaused());
  expect(stdin.readableLength).toBeGreaterThanOrEqual(STDIN_MAX_BUFFERED);
  client.send([255, 0]);

  // Once the container reads, every byte arrives in order.
  const received: Buffer[] = [];
  stdin.on('data', (c: Buffer) => received.push(c));
  stdin.resume();
  await new Promise((resolve) => stdin.once('end', resolve));
  clearInterval(sampler);
  expect(maxIn).toBeLessThanOrEqual(IN_BOUND);
  expect(Buffer.concat(received).equals(Buffer.concat(sent))).toBe(true);
  await streams.finish(successStatus());
  expect((await client.closed).code).toBe(1000);
});
