// One ServerStreams contract, both transports. A real HTTP server hands every upgrade to
// acceptRemoteCommand (the entry the bastion uses); a SPDY/3.1 client (SpdyConnection in the
// client role, opening streams as kubectl does) and a WebSocket client (ws, as kubectl ≥1.30 and
// client-node) drive it. Every case runs the same assertions against every variant.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { finished } from 'node:stream/promises';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Channel } from '../protocol/constants.js';
import type { TerminalSize } from '../protocol/resize.js';
import { decodeStatus, exitCodeStatus, successStatus, type Status } from '../protocol/status.js';
import type { ServerStreams } from '../protocol/streams.js';
import { protocolByName } from '../protocol/versions/index.js';
import { acceptRemoteCommand } from './accept.js';
import { SpdyConnection } from './spdy/connection.js';
import { expectedStreamTypes } from './spdy/stream-setup.js';
import type { SpdyStream } from './spdy/stream.js';
import { EXEC_PATH, optionsFromUrl, TestClient } from './websocket/test-support.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

// ---- the server: every upgrade through acceptRemoteCommand ------------------------------------

interface ServerSide {
  port: number;
  /** The next accepted session, in arrival order. */
  next(): Promise<ServerStreams>;
  close(): Promise<void>;
}

async function startServer(): Promise<ServerSide> {
  const ready: Promise<ServerStreams>[] = [];
  const waiters: ((p: Promise<ServerStreams>) => void)[] = [];
  const live = new Set<ServerStreams>();
  const server: Server = createServer((_req, res) => res.writeHead(400).end());
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    const accepted = acceptRemoteCommand(req, socket, head, optionsFromUrl(req.url));
    accepted.then((s) => live.add(s), () => undefined);
    const waiter = waiters.shift();
    if (waiter) waiter(accepted);
    else ready.push(accepted);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    next: () => ready.shift() ?? new Promise<Promise<ServerStreams>>((resolve) => waiters.push(resolve)).then((p) => p),
    close: () =>
      new Promise((resolve) => {
        for (const s of live) s.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---- the clients: one interface, one implementation per transport -----------------------------

interface Client {
  /** Bytes received on stdout / stderr / the error channel so far. */
  stdout(): Buffer;
  /** How many stdout bytes arrived (cheap, for waiting on large transfers). */
  stdoutLength(): number;
  stderr(): Buffer;
  errorChannel(): Buffer;
  /** Resolves once `predicate` holds (checked whenever something arrives). */
  waitFor(predicate: () => boolean): Promise<void>;
  sendStdin(bytes: Buffer): void;
  /** The client's half-close of stdin (SPDY FIN, v5 CLOSE). */
  endStdin(): void;
  resize(size: TerminalSize): void;
  /** Stops / restarts reading from the connection. */
  pause(): void;
  resume(): void;
  /** A clean close from the client's side (SPDY GOAWAY + end, WebSocket close 1000). */
  close(): void;
  /** The client vanishes (socket destroyed, no goodbye). */
  vanish(): void;
  /** Resolves once the client's connection is gone. */
  readonly closed: Promise<void>;
}

interface Variant {
  name: string;
  transport: 'spdy' | 'websocket';
  protocol: string;
  /** Whether the client can half-close stdin while the session goes on. */
  halfClose: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'SPDY/3.1, v4.channel.k8s.io (kubectl ≤1.29)', transport: 'spdy', protocol: 'v4.channel.k8s.io', halfClose: true },
  { name: 'SPDY/3.1, v5.channel.k8s.io', transport: 'spdy', protocol: 'v5.channel.k8s.io', halfClose: true },
  { name: 'WebSocket, v5.channel.k8s.io (kubectl ≥1.30)', transport: 'websocket', protocol: 'v5.channel.k8s.io', halfClose: true },
  { name: 'WebSocket, v4.channel.k8s.io (client-node)', transport: 'websocket', protocol: 'v4.channel.k8s.io', halfClose: false },
];

class Notifier {
  private readonly waiters = new Set<() => void>();
  notify(): void {
    for (const w of [...this.waiters]) w();
  }
  waitFor(predicate: () => boolean): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (!predicate()) return;
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    });
  }
}

/** Plays kubectl over SPDY/3.1: upgrade, then one stream per channel, each tagged `streamtype`. */
async function openSpdy(port: number, query: string, protocol: string): Promise<Client> {
  const { socket, head } = await new Promise<{ socket: Duplex; head: Buffer }>((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: `${EXEC_PATH}?${query}`,
      headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': protocol, 'Content-Length': '0' },
      // Half-open like kubectl's TCP connection: the server's end must not tear our side down
      // before every frame already received has been decoded.
      createConnection: () => netConnect({ host: '127.0.0.1', port, allowHalfOpen: true }),
    });
    req.on('upgrade', (res, socket, head) => {
      if (res.headers['x-stream-protocol-version'] !== protocol) reject(new Error(`negotiated ${String(res.headers['x-stream-protocol-version'])}`));
      resolve({ socket, head });
    });
    req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
  socket.on('error', () => undefined);
  const conn = new SpdyConnection(socket, { role: 'client', head });
  conn.on('error', () => undefined);
  const options = optionsFromUrl(`${EXEC_PATH}?${query}`);
  const notifier = new Notifier();
  const received = { stdout: [] as Buffer[], stderr: [] as Buffer[], error: [] as Buffer[] };
  let stdoutLength = 0;
  const streams = new Map<string, SpdyStream>();
  for (const type of expectedStreamTypes(options, protocolByName(protocol)!)) {
    const stream = conn.openStream({ streamtype: type });
    stream.on('error', () => undefined);
    streams.set(type, stream);
    if (type === 'stdout' || type === 'stderr' || type === 'error') {
      stream.on('data', (c: Buffer) => {
        received[type].push(c);
        if (type === 'stdout') stdoutLength += c.length;
        notifier.notify();
      });
    }
  }
  void conn.closed.then(() => notifier.notify());
  return {
    stdout: () => Buffer.concat(received.stdout),
    stdoutLength: () => stdoutLength,
    stderr: () => Buffer.concat(received.stderr),
    errorChannel: () => Buffer.concat(received.error),
    waitFor: (p) => notifier.waitFor(p),
    sendStdin: (bytes) => void streams.get('stdin')!.write(bytes),
    endStdin: () => void streams.get('stdin')!.end(),
    resize: (size) => void streams.get('resize')!.write(`${JSON.stringify({ Width: size.width, Height: size.height })}\n`),
    // Through the stream, not the socket: the connection's read gate resumes a socket paused
    // behind its back whenever a stream asks for more, so only a paused stream stops reading.
    pause: () => void streams.get('stdout')?.pause(),
    resume: () => void streams.get('stdout')?.resume(),
    close: () => void conn.close(),
    vanish: () => socket.destroy(),
    closed: conn.closed,
  };
}

/** Plays kubectl ≥1.30 / client-node over WebSocket: one binary message per write, channel byte first. */
async function openWebSocket(port: number, query: string, protocol: string): Promise<Client> {
  const client = await TestClient.open(`ws://127.0.0.1:${port}${EXEC_PATH}?${query}`, protocol);
  expect(client.ws.protocol).toBe(protocol);
  const notifier = new Notifier();
  let stdoutLength = 0;
  client.ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary && data[0] === Channel.stdout) stdoutLength += data.length - 1;
    notifier.notify();
  });
  const closed = client.closed.then(() => notifier.notify());
  const frame = (channel: number, bytes: Buffer): Buffer => Buffer.concat([Buffer.from([channel]), bytes]);
  return {
    stdout: () => client.channel(Channel.stdout),
    stdoutLength: () => stdoutLength,
    stderr: () => client.channel(Channel.stderr),
    errorChannel: () => client.channel(Channel.error),
    waitFor: (p) => notifier.waitFor(p),
    sendStdin: (bytes) => client.send(frame(Channel.stdin, bytes)),
    endStdin: () => client.send([255, Channel.stdin]),
    resize: (size) => client.send(frame(Channel.resize, Buffer.from(JSON.stringify({ Width: size.width, Height: size.height })))),
    pause: () => client.ws.pause(),
    resume: () => client.ws.resume(),
    close: () => client.ws.close(1000),
    vanish: () => client.ws.terminate(),
    closed,
  };
}

// ---- the contract -----------------------------------------------------------------------------

let server: ServerSide;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.close();
});

/** The most a socket pair can buffer (receive + send maxima), rounded up to a MiB; 24 MiB if unknown. */
function socketBufferCeiling(): number {
  try {
    const max = (file: string): number => Number(readFileSync(file, 'utf8').trim().split(/\s+/)[2]);
    const bytes = max('/proc/sys/net/ipv4/tcp_rmem') + max('/proc/sys/net/ipv4/tcp_wmem');
    return Number.isFinite(bytes) && bytes > 0 ? Math.ceil(bytes / 1048576) * 1048576 : 24 * 1048576;
  } catch {
    return 24 * 1048576;
  }
}

describe.each(VARIANTS)('ServerStreams over $name', (variant) => {
  /** Opens a session; both ends. */
  async function open(query = 'stdin=true&stdout=true&stderr=true'): Promise<{ client: Client; streams: ServerStreams }> {
    const accepted = server.next();
    const client = variant.transport === 'spdy' ? await openSpdy(server.port, query, variant.protocol) : await openWebSocket(server.port, query, variant.protocol);
    const streams = await accepted;
    return { client, streams };
  }

  it('names its transport, protocol and options', async () => {
    const { streams } = await open('stdin=true&stdout=true&stderr=true');
    expect(streams.transport).toBe(variant.transport);
    expect(streams.protocol.name).toBe(variant.protocol);
    expect(streams.protocolName).toBe(variant.protocol);
    expect(streams.options).toEqual({ stdin: true, stdout: true, stderr: true, tty: false });
    expect([streams.stdin, streams.stdout, streams.stderr].every((s) => s !== null)).toBe(true);
    streams.destroy();
    await streams.closed;
  });

  it('only the requested streams exist: no stdin without stdin=true; no stderr with a TTY', async () => {
    const a = await open('stdout=true&stderr=true');
    expect(a.streams.stdin).toBeNull();
    expect(a.streams.stderr).not.toBeNull();
    a.streams.destroy();
    const b = await open('stdin=true&stdout=true&stderr=true&tty=true');
    expect(b.streams.stderr).toBeNull();
    expect(b.streams.options.tty).toBe(true);
    b.streams.destroy();
    await Promise.all([a.streams.closed, b.streams.closed]);
  });

  it('stdin bytes arrive exactly, in order, across many writes', async () => {
    const { client, streams } = await open();
    const input = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(200 * 1024)]);
    const got: Buffer[] = [];
    let total = 0;
    const all = new Promise<void>((resolve) =>
      streams.stdin!.on('data', (c: Buffer) => {
        got.push(c);
        total += c.length;
        if (total >= input.length) resolve();
      }),
    );
    for (let off = 0; off < input.length; off += 7919) client.sendStdin(input.subarray(off, off + 7919));
    await all;
    expect(total).toBe(input.length);
    expect(sha256(Buffer.concat(got))).toBe(sha256(input));
    streams.destroy();
    await streams.closed;
  });

  // Each variant gets the half-close case its protocol allows (no skipped tests in the summary).
  if (variant.halfClose) {
    it("stdin ends on the client's half-close while output still flows", async () => {
      const { client, streams } = await open();
      const got: Buffer[] = [];
      streams.stdin!.on('data', (c: Buffer) => got.push(c));
      client.sendStdin(Buffer.from('last words'));
      client.endStdin();
      await once(streams.stdin!, 'end');
      expect(Buffer.concat(got).toString()).toBe('last words');
      // The session is still up: output after stdin's EOF reaches the client.
      streams.stdout!.write('still here');
      await client.waitFor(() => client.stdout().toString() === 'still here');
      await streams.finish(successStatus());
      await client.closed;
    });
  } else {
    it('without a half-close, stdin ends only when the connection does', async () => {
      const { client, streams } = await open();
      let ended = false;
      streams.stdin!.on('data', () => undefined);
      streams.stdin!.on('end', () => (ended = true));
      client.endStdin(); // not understood by this protocol version: ignored
      client.sendStdin(Buffer.from('more'));
      await once(streams.stdin!, 'data');
      expect(ended).toBe(false);
      client.close();
      await once(streams.stdin!, 'end');
      await streams.closed;
    });
  }

  it('stdout and stderr arrive on their own channels, byte-exact', async () => {
    const { client, streams } = await open('stdout=true&stderr=true');
    const out = Buffer.concat([Buffer.from('out\n'), Buffer.from([0, 255, 10])]);
    streams.stdout!.write(out.subarray(0, 2));
    streams.stderr!.write('err-1\n');
    streams.stdout!.write(out.subarray(2));
    streams.stderr!.write('err-2\n');
    await client.waitFor(() => client.stdout().length === out.length && client.stderr().length === 12);
    expect(client.stdout()).toEqual(out);
    expect(client.stderr().toString()).toBe('err-1\nerr-2\n');
    streams.destroy();
    await streams.closed;
  });

  it('terminal sizes reach onResize in order, including one sent before anyone subscribed', async () => {
    const { client, streams } = await open('stdin=true&stdout=true&tty=true');
    client.resize({ width: 100, height: 30 });
    // Some stdin after it: once that is here, the early size has been handled too.
    client.sendStdin(Buffer.from('x'));
    await once(streams.stdin!, 'data');
    const sizes: TerminalSize[] = [];
    const three = new Promise<void>((resolve) =>
      streams.onResize((size) => {
        sizes.push(size);
        if (sizes.length === 3) resolve();
      }),
    );
    client.resize({ width: 120, height: 40 });
    client.resize({ width: 80, height: 24 });
    await three;
    expect(sizes).toEqual([
      { width: 100, height: 30 },
      { width: 120, height: 40 },
      { width: 80, height: 24 },
    ]);
    streams.destroy();
    await streams.closed;
  });

  it('an unsubscribed listener hears nothing more', async () => {
    const { client, streams } = await open('stdin=true&stdout=true&tty=true');
    const first: TerminalSize[] = [];
    const second: TerminalSize[] = [];
    const off = streams.onResize((s) => first.push(s));
    const notifier = new Notifier();
    streams.onResize((s) => {
      second.push(s);
      notifier.notify();
    });
    client.resize({ width: 10, height: 5 });
    await notifier.waitFor(() => second.length === 1);
    off();
    client.resize({ width: 11, height: 6 });
    await notifier.waitFor(() => second.length === 2);
    expect(first).toEqual([{ width: 10, height: 5 }]);
    expect(second).toEqual([
      { width: 10, height: 5 },
      { width: 11, height: 6 },
    ]);
    streams.destroy();
    await streams.closed;
  });

  it.each([
    ['Success', successStatus()],
    ['exit code 3', exitCodeStatus(3)],
  ])('finish(%s): output first, then the Status on the error channel, then the connection closes', async (_name, status: Status) => {
    const { client, streams } = await open('stdout=true&stderr=true');
    streams.stdout!.write('final output');
    streams.stderr!.write('final error');
    await streams.finish(status);
    await client.closed;
    await streams.closed;
    expect(client.stdout().toString()).toBe('final output');
    expect(client.stderr().toString()).toBe('final error');
    expect(decodeStatus(client.errorChannel())).toEqual(status);
    // finish is idempotent: a second call neither throws nor sends anything.
    await streams.finish(exitCodeStatus(9));
    expect(decodeStatus(client.errorChannel())).toEqual(status);
  });

  it('destroy() cuts the connection at once: no Status, closed resolves on both sides', async () => {
    const { client, streams } = await open();
    streams.stdout!.write('before');
    await client.waitFor(() => client.stdout().toString() === 'before');
    streams.destroy();
    await streams.closed;
    await client.closed;
    expect(client.errorChannel().length).toBe(0);
  });

  it.each(['close', 'vanish'] as const)('a peer %s resolves closed and ends stdin; late writes and finish do not throw', async (how) => {
    const { client, streams } = await open();
    streams.stdin!.resume();
    client[how]();
    await streams.closed;
    // stdin is over: ended (EOF) or destroyed (an abort), never left hanging.
    await finished(streams.stdin!, { writable: false }).catch(() => undefined);
    expect(streams.stdin!.readableEnded || streams.stdin!.destroyed).toBe(true);
    expect(() => streams.stdout!.write('nobody listens')).not.toThrow();
    await streams.finish(successStatus());
  });

  it('backpressure: with a client that does not read, the stdout writer is held; once it reads, every byte arrives', async () => {
    const { client, streams } = await open('stdout=true');
    const stdout = streams.stdout!;
    stdout.on('error', () => undefined);
    // More than the kernel's socket buffers can absorb for a reader that does not read (loopback
    // autotuning grows the receive buffer up to tcp_rmem's maximum: 32 MiB on some machines).
    const CHUNK = 64 * 1024;
    const TOTAL = socketBufferCeiling() + 16 * 1024 * 1024;
    const data = randomBytes(TOTAL);
    client.pause();

    let accepted = 0;
    let waitingForDrain = false;
    let done = false;
    const writer = (async () => {
      for (let off = 0; off < TOTAL; off += CHUNK) {
        const ok = stdout.write(data.subarray(off, off + CHUNK), () => (accepted += CHUNK));
        if (!ok) {
          waitingForDrain = true;
          await once(stdout, 'drain');
          waitingForDrain = false;
        }
      }
      done = true;
    })();

    // Wait until the writer stops making progress (or, without backpressure, finishes).
    let last = -1;
    let still = 0;
    // Half a second without progress: on a loaded machine a shorter pause is not yet a stall.
    for (let polls = 0; polls < 1000 && !done && still < 25; polls++) {
      await new Promise((r) => setTimeout(r, 20));
      still = accepted === last && waitingForDrain ? still + 1 : 0;
      last = accepted;
    }
    expect(done).toBe(false);
    expect(waitingForDrain).toBe(true);
    expect(accepted).toBeLessThan(TOTAL - 8 * 1024 * 1024);

    client.resume();
    await writer;
    await client.waitFor(() => client.stdoutLength() >= TOTAL);
    expect(client.stdout().length).toBe(TOTAL);
    expect(sha256(client.stdout())).toBe(sha256(data));
    await streams.finish(successStatus());
    await client.closed;
  });
});
