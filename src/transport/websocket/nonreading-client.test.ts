import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { exitCodeStatus, successStatus } from '../../protocol/status.js';
import { acceptWebSocketRemoteCommand } from './server.js';
import type { WebSocketServerStreams } from './session.js';
import { EXEC_PATH, TestClient, optionsFromUrl, startHarness } from './test-support.js';

const TOTAL = 50 * 1024 * 1024;
const BOUND = 1024 * 1024;

interface Server {
  url(q: string): string;
  next(): Promise<{ streams: WebSocketServerStreams; socket: Duplex }>;
  close(): Promise<void>;
}

async function tlsServer(): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'nonreading-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'k'), '-out', join(dir, 'c')], { stdio: 'ignore' });
  const server = https.createServer({ cert: readFileSync(join(dir, 'c')), key: readFileSync(join(dir, 'k')) }, (_q, r) => r.writeHead(400).end());
  rmSync(dir, { recursive: true });
  const waiting: ((s: { streams: WebSocketServerStreams; socket: Duplex }) => void)[] = [];
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    void acceptWebSocketRemoteCommand(req, socket, head, { options: optionsFromUrl(req.url), closeTimeoutMs: 200 }).then((streams) => waiting.shift()?.({ streams, socket }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (q) => `wss://127.0.0.1:${port}${EXEC_PATH}?${q}`,
    next: () => new Promise((r) => waiting.push(r)),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

async function plainServer(): Promise<Server> {
  const h = await startHarness({ closeTimeoutMs: 200 });
  return { url: (q) => h.url(q), next: () => h.nextSession(), close: () => h.close() };
}

describe.each([
  ['plain', plainServer],
  ['TLS', tlsServer],
])('a client that never reads (%s)', (_name, start) => {
  let s: Server;
  beforeAll(async () => {
    s = await start();
  });
  afterAll(async () => {
    await s.close();
  });

  it('50 MiB of stdout stalls the producer with bounded buffers, and a destroy after the finish timeout frees it', async () => {
    const pending = s.next();
    const client = await TestClient.open(s.url('stdout=true'), 'v5.channel.k8s.io', { rejectUnauthorized: false });
    client.ws.pause();
    const { streams, socket } = await pending;
    const stdout = streams.stdout!;
    let produced = 0;
    let i = 0;
    // Mixed sizes: small chunks (joined by writev) between large ones.
    const producer = new Readable({
      read() {
        if (produced >= TOTAL) return void this.push(null);
        const size = i++ % 4 === 0 ? 64 * 1024 : 100;
        produced += size;
        this.push(Buffer.alloc(size, i & 0xff));
      },
    });
    let max = 0;
    const sampler = setInterval(() => (max = Math.max(max, socket.writableLength + stdout.writableLength)), 1);
    const piped = pipeline(producer, stdout).catch(() => {});
    await new Promise((r) => setTimeout(r, 1500));
    clearInterval(sampler);
    expect(produced).toBeLessThan(TOTAL);
    expect(max).toBeLessThan(BOUND);
    // finish cannot flush to a client that never reads; the relay's finish timeout destroys it.
    const finished = streams.finish(successStatus());
    const raced = await Promise.race([finished.then(() => 'finished'), new Promise((r) => setTimeout(() => r('pending'), 300))]);
    expect(raced).toBe('pending');
    streams.destroy(new Error('finish timeout'));
    await Promise.race([finished, new Promise((_r, rej) => setTimeout(() => rej(new Error('finish hung after destroy')), 2000))]);
    await piped;
    await new Promise((r) => setImmediate(r));
    expect(socket.destroyed).toBe(true);
    client.ws.terminate();
  }, 20_000);
});

describe.each([
  ['v5.channel.k8s.io', 'binary'],
  ['v4.base64.channel.k8s.io', 'base64'],
])('finish right behind a backlog of stdout (%s)', (protocol, encoding) => {
  it('a slow client gets every stdout byte in order (joined small writes and large ones), then the Status, then close 1000', async () => {
    const h = await startHarness({ closeTimeoutMs: 5000 });
    try {
      const client = await TestClient.open(h.url('stdout=true'), protocol);
      client.ws.pause();
      const { streams } = await h.nextSession();
      const stdout = streams.stdout!;
      const parts: Buffer[] = [];
      for (let i = 0; i < 3000; i++) {
        const b = i % 50 === 0 ? Buffer.alloc(40_000, i & 0xff) : Buffer.from(`${i},`);
        parts.push(b);
        stdout.write(b);
        if (i % 7 === 0) stdout.write(Buffer.alloc(0));
      }
      const finished = streams.finish(exitCodeStatus(3));
      setTimeout(() => client.ws.resume(), 200);
      const close = await client.closed;
      await finished;
      expect(close.code).toBe(1000);
      const decode = (m: { data: Buffer; isBinary: boolean }): { ch: number; bytes: Buffer } =>
        encoding === 'binary' ? { ch: m.data[0]!, bytes: m.data.subarray(1) } : { ch: m.data[0]! - 0x30, bytes: Buffer.from(m.data.subarray(1).toString(), 'base64') };
      const msgs = client.messages.map(decode).filter((m) => m.bytes.length > 0);
      const out = Buffer.concat(msgs.filter((m) => m.ch === 1).map((m) => m.bytes));
      expect(out.equals(Buffer.concat(parts))).toBe(true);
      const last = msgs[msgs.length - 1]!;
      expect(last.ch).toBe(3);
      if (protocol.startsWith('v5')) expect(JSON.parse(last.bytes.toString()).details.causes[0].message).toBe('3');
    } finally {
      await h.close();
    }
  }, 20_000);
});
