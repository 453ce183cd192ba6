// Test fixtures for the WebSocket transport: a real HTTP server on 127.0.0.1 whose 'upgrade'
// handler calls acceptWebSocketRemoteCommand, and a raw `ws` client that records every message.
import { createServer, request, type IncomingHttpHeaders, type OutgoingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, type ClientOptions } from 'ws';
import type { StreamOptions } from '../../protocol/streams.js';
import { acceptWebSocketRemoteCommand, type AcceptWebSocketOptions } from './server.js';
import type { WebSocketServerStreams } from './session.js';

export type Accepted =
  | { ok: true; streams: WebSocketServerStreams; socket: Duplex }
  | { ok: false; error: unknown };

export interface Harness {
  readonly port: number;
  url(query?: string): string;
  /** The outcome of the next upgrade request (in arrival order). */
  nextAccepted(): Promise<Accepted>;
  /** The next successfully accepted session. */
  nextSession(): Promise<{ streams: WebSocketServerStreams; socket: Duplex }>;
  close(): Promise<void>;
}

export const EXEC_PATH = '/api/v1/namespaces/ns/pods/pod/exec';

/** Reads StreamOptions from an exec query (explicit `false` and omitted keys both mean false). */
export function optionsFromUrl(url: string | undefined): StreamOptions {
  const q = new URL(url ?? '/', 'http://x').searchParams;
  const flag = (k: string): boolean => q.get(k) === 'true';
  return { stdin: flag('stdin'), stdout: flag('stdout'), stderr: flag('stderr'), tty: flag('tty') };
}

export async function startHarness(extra: Omit<AcceptWebSocketOptions, 'options'> = {}): Promise<Harness> {
  const results: Promise<Accepted>[] = [];
  const live = new Set<WebSocketServerStreams>();
  const waiters: ((p: Promise<Accepted>) => void)[] = [];
  const server: Server = createServer((_req, res) => {
    res.writeHead(400).end();
  });
  server.on('upgrade', (req, socket, head) => {
    const outcome = acceptWebSocketRemoteCommand(req, socket, head, { ...extra, options: optionsFromUrl(req.url) }).then(
      (streams): Accepted => {
        live.add(streams);
        return { ok: true, streams, socket };
      },
      (error: unknown): Accepted => ({ ok: false, error }),
    );
    const waiter = waiters.shift();
    if (waiter) waiter(outcome);
    else results.push(outcome);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const nextAccepted = (): Promise<Accepted> => {
    const ready = results.shift();
    return ready ?? new Promise<Promise<Accepted>>((resolve) => waiters.push(resolve)).then((p) => p);
  };
  return {
    port,
    url: (query = 'stdin=true&stdout=true&stderr=true') => `ws://127.0.0.1:${port}${EXEC_PATH}?${query}`,
    nextAccepted,
    async nextSession() {
      const a = await nextAccepted();
      if (!a.ok) throw a.error;
      return { streams: a.streams, socket: a.socket };
    },
    close: () =>
      new Promise<void>((resolve) => {
        // Upgraded sockets are no longer the HTTP server's: end them here so nothing lingers.
        for (const streams of live) streams.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Message {
  data: Buffer;
  isBinary: boolean;
}

/** A raw ws client that keeps every message and the close it ends with. */
export class TestClient {
  readonly messages: Message[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly changed = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      this.messages.push({ data: Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]), isBinary });
      for (const f of [...this.changed]) f();
    });
    ws.on('error', () => {}); // the close event carries what the tests check
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static open(url: string, protocols?: string | string[], options?: ClientOptions): Promise<TestClient> {
    const ws = protocols === undefined ? new WebSocket(url, options) : new WebSocket(url, protocols, options);
    const client = new TestClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** Resolves once `predicate` holds for the messages received so far. */
  waitFor(predicate: (messages: Message[]) => boolean): Promise<void> {
    if (predicate(this.messages)) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (!predicate(this.messages)) return;
        this.changed.delete(check);
        resolve();
      };
      this.changed.add(check);
    });
  }

  /** Concatenated payloads of binary messages on `channel` (channel byte stripped). */
  channel(channel: number): Buffer {
    return Buffer.concat(this.messages.filter((m) => m.isBinary && m.data[0] === channel).map((m) => m.data.subarray(1)));
  }

  send(bytes: number[] | Buffer | string): void {
    this.ws.send(Array.isArray(bytes) ? Buffer.from(bytes) : bytes);
  }
}

/** A bare upgrade request, for checking the handshake answer (status, headers, body) byte for byte. */
export function rawUpgrade(
  port: number,
  headers: OutgoingHttpHeaders,
  options: { method?: string; path?: string } = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      method: options.method ?? 'GET',
      path: options.path ?? `${EXEC_PATH}?stdout=true`,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}
