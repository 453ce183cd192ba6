import { describe, expect, it } from 'vitest';
import { BastionError, ErrorCode } from '../../errors/index.js';
import { ChannelSender, type MessageSink } from './sender.js';

/** A sink that holds every message until flush(): bufferedAmount is what has not been flushed. */
class FakeSink implements MessageSink {
  readonly sent: (Buffer | string)[] = [];
  private queue: { size: number; cb: (err?: Error) => void }[] = [];
  bufferedAmount = 0;
  maxBuffered = 0;

  send(data: Buffer | string, _options: { binary: boolean }, cb: (err?: Error) => void): void {
    this.sent.push(data);
    this.bufferedAmount += data.length;
    this.maxBuffered = Math.max(this.maxBuffered, this.bufferedAmount);
    this.queue.push({ size: data.length, cb });
  }

  /** Completes every queued send, in order, as a socket would; repeats until nothing is queued. */
  flushAll(): void {
    while (this.queue.length > 0) {
      const q = this.queue;
      this.queue = [];
      for (const { size, cb } of q) {
        this.bufferedAmount -= size;
        cb();
      }
    }
  }
}

describe('ChannelSender', () => {
  it('joins the small chunks a Writable queued behind an unfinished write into one message, in order', async () => {
    const sink = new FakeSink();
    const sender = new ChannelSender(sink, 'binary', { maxMessageBytes: 1000, maxBufferedBytes: 1_000_000 });
    const out = sender.createWritable(1);
    out.write(Buffer.from('a'));
    // Queued while the first write is in flight (the sink has not completed it).
    for (const s of ['bb', 'ccc', 'dddd']) out.write(Buffer.from(s));
    out.write(Buffer.alloc(1500, 0x65));
    expect(sink.sent.length).toBe(1);
    sink.flushAll();
    await new Promise((r) => setImmediate(r));
    sink.flushAll();
    await new Promise((r) => setImmediate(r));
    sink.flushAll();
    const messages = sink.sent.map((m) => (m as Buffer).toString('latin1'));
    // 'a' alone; the three small ones as one message; the large chunk split at 1000 as it would be alone.
    expect(messages.slice(0, 2)).toEqual(['\x01a', '\x01bbcccdddd']);
    expect(messages.slice(2).map((m) => m.length)).toEqual([1001, 501]);
    expect(Buffer.concat(sink.sent.map((m) => (m as Buffer).subarray(1))).toString('latin1')).toBe('abbcccdddd' + 'e'.repeat(1500));
  });

  it('splits a large write into bounded messages; calls back at once below the bound, after the socket took it above', async () => {
    const sink = new FakeSink();
    const sender = new ChannelSender(sink, 'binary', { maxMessageBytes: 1000, maxBufferedBytes: 3000 });
    let first = false;
    sender.write(1, Buffer.alloc(2500, 7), () => (first = true));
    expect(sink.sent.map((m) => m.length)).toEqual([1001, 1001, 501]);
    expect(sink.sent.every((m) => Buffer.isBuffer(m) && m[0] === 1)).toBe(true);
    // 2503 bytes unsent, under the bound: handed over is enough.
    await new Promise((r) => process.nextTick(r));
    expect(first).toBe(true);
    // The next one crosses the bound: its callback waits for the socket.
    let second = false;
    sender.write(1, Buffer.alloc(600, 8), () => (second = true));
    await new Promise((r) => setImmediate(r));
    expect(second).toBe(false);
    sink.flushAll();
    expect(second).toBe(true);
  });

  it('waits for the socket once bufferedAmount reaches the bound', () => {
    const sink = new FakeSink();
    const sender = new ChannelSender(sink, 'binary', { maxMessageBytes: 100, maxBufferedBytes: 350 });
    let done = false;
    sender.write(2, Buffer.alloc(10_000), () => (done = true));
    // 101-byte messages: three stay under 350, the fourth crosses it and is the one waited for.
    expect(sink.sent.length).toBe(4);
    sink.flushAll();
    expect(done).toBe(true);
    expect(Buffer.concat(sink.sent.map((m) => (m as Buffer).subarray(1))).length).toBe(10_000);
    expect(sink.maxBuffered).toBeLessThanOrEqual(350 + 101);
  });

  it('sends base64 text messages', () => {
    const sink = new FakeSink();
    const sender = new ChannelSender(sink, 'base64', { maxMessageBytes: 3 });
    sender.write(1, Buffer.from('hello'), () => {});
    expect(sink.sent).toEqual(['1aGVs', '1bG8=']);
  });

  it('keeps the Status in one message', () => {
    const sink = new FakeSink();
    const sender = new ChannelSender(sink, 'binary', { maxMessageBytes: 4 });
    sender.sendMessage(3, Buffer.from('{"metadata":{},"status":"Success"}'), () => {});
    expect(sink.sent).toEqual([Buffer.from('\x03{"metadata":{},"status":"Success"}', 'latin1')]);
  });

  it('fails pending and later writes with CONNECTION_CLOSED once closed', async () => {
    const sink = new FakeSink();
    const sender = new ChannelSender(sink, 'binary');
    const errors: unknown[] = [];
    sender.write(1, Buffer.from('a'), (e) => errors.push(e));
    sender.close(new BastionError(ErrorCode.CONNECTION_CLOSED, 'gone'));
    sender.write(1, Buffer.from('b'), (e) => errors.push(e));
    sink.flushAll(); // a late socket callback must not call back twice
    expect(errors).toHaveLength(2);
    expect(errors.every((e) => e instanceof BastionError && e.code === ErrorCode.CONNECTION_CLOSED)).toBe(true);
  });

  it('gives stdout-style Writables their callback only once the sink took the data, when it holds the bound', async () => {
    const sink = new FakeSink();
    const sender = new ChannelSender(sink, 'binary', { maxMessageBytes: 4, maxBufferedBytes: 6 });
    const w = sender.createWritable(1);
    let called = false;
    w.write(Buffer.from('abcdefgh'), () => (called = true));
    await new Promise((r) => setImmediate(r));
    expect(called).toBe(false);
    sink.flushAll();
    await new Promise((r) => setImmediate(r));
    expect(called).toBe(true);
  });
});
