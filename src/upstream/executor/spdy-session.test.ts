// The SPDY/3.1 fallback of the upstream exec/attach client against a scripted fake kubelet: the
// WebSocket v5 offer is refused with a bare 403 (what a pre-1.30 API server passes back), the
// SPDY upgrade is answered by a server-role SpdyConnection the test drives frame by frame.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { createLoopbackServingMaterial, type ServingMaterial } from '../../tls/ca.js';
import { apiStatus, encodeStatus, exitCodeOf, exitCodeStatus, successStatus } from '../../protocol/status.js';
import { writeStatusToSocket } from '../../transport/http-response.js';
import { SpdyConnection, writeSwitchingProtocols, type SpdyStream } from '../../transport/spdy/index.js';
import { isBastionError, UpstreamRefusal } from '../../errors/index.js';
import { upstreamFromCredentials, type UpstreamTarget } from '../upstream.js';
import { dialUpstreamExec } from './dial.js';

type Script = (conn: SpdyConnection, streams: Map<string, SpdyStream>, req: IncomingMessage) => void;

let tls: ServingMaterial;
let server: https.Server;
let port: number;
let upgrades: IncomingMessage[] = [];
/** Stream types in the order the client opened them, per SPDY connection. */
let opened: string[] = [];
let script: Script;
let chosen: string | undefined;
let spdyAnswer: ((req: IncomingMessage, socket: Duplex) => boolean) | undefined;
const sockets = new Set<Duplex>();

beforeAll(async () => {
  tls = await createLoopbackServingMaterial('spdy executor test CA');
  server = https.createServer({ cert: tls.serving.cert, key: tls.serving.key });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    sockets.add(socket);
    upgrades.push(req);
    if (req.headers.upgrade?.toLowerCase() === 'websocket') {
      // golang.org/x/net/websocket in a kubelet, refusing v5: a bare 403.
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    if (spdyAnswer?.(req, socket)) return;
    writeSwitchingProtocols(socket, chosen ?? 'v4.channel.k8s.io');
    const conn = new SpdyConnection(socket, { role: 'server', head });
    conn.on('error', () => {});
    const streams = new Map<string, SpdyStream>();
    const expected = expectedCount(req);
    conn.on('stream', (stream) => {
      const type = stream.headers['streamtype']![0]!;
      opened.push(type);
      streams.set(type, stream);
      stream.on('error', () => {});
      stream.reply();
      if (streams.size === expected) script(conn, streams, req);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterEach(() => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  upgrades = [];
  opened = [];
  chosen = undefined;
  spdyAnswer = undefined;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function expectedCount(req: IncomingMessage): number {
  const q = new URL(req.url!, 'https://x').searchParams;
  const tty = q.get('tty') === 'true';
  return 1 + Number(q.get('stdin') === 'true') + Number(q.get('stdout') === 'true') + Number(q.get('stderr') === 'true' && !tty) + Number(tty);
}

function target(): UpstreamTarget {
  return upstreamFromCredentials(`https://127.0.0.1:${port}`, tls.ca.cert, 'fake-token', 'fake kubelet');
}

const PATH = '/api/v1/namespaces/ns/pods/p/exec?command=cat&stdin=true&stdout=true&stderr=true';

function collect(stream: Readable): () => string {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return () => Buffer.concat(chunks).toString('utf8');
}

function text(stream: SpdyStream): Promise<{ text: string; reset: number | undefined }> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => stream.once('end', () => resolve({ text: Buffer.concat(chunks).toString('utf8'), reset: stream.reset })));
}

/** As the kubelet ends a session: FIN the outputs, the Status on the error stream, then close. */
async function finish(conn: SpdyConnection, streams: Map<string, SpdyStream>, payload: Buffer): Promise<void> {
  streams.get('stdout')?.end();
  streams.get('stderr')?.end();
  const error = streams.get('error')!;
  if (payload.length > 0) error.write(payload);
  error.end();
  await new Promise((r) => setTimeout(r, 10));
  await conn.close();
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('SPDY fallback when upstream refuses WebSocket v5', () => {
  it('offers v4..channel.k8s.io as kubectl 1.27 does, opens the streams in order, and stdin end() is a FIN that ends cat', async () => {
    let stdinSeen!: Promise<{ text: string; reset: number | undefined }>;
    script = (conn, streams) => {
      const stdin = streams.get('stdin')!;
      stdinSeen = text(stdin);
      // cat: echo stdin to stdout until EOF, then exit 0.
      stdin.on('data', (c: Buffer) => streams.get('stdout')!.write(c));
      stdin.once('end', () => void finish(conn, streams, encodeStatus(successStatus())));
    };
    const session = await dialUpstreamExec(target(), { path: PATH, headers: { 'Impersonate-User': 'agent', 'Impersonate-Group': ['a', 'b'] } });
    expect(session.protocol).toBe('v4.channel.k8s.io over SPDY/3.1');
    expect(session.canHalfCloseStdin).toBe(true);
    const out = collect(session.stdout);
    session.stdin!.write('hello ');
    session.stdin!.end('world\n');
    const status = await session.status;
    expect(status).toEqual(successStatus());
    expect(session.statusFromUpstream).toBe(true);
    expect(out()).toBe('hello world\n');
    // A FIN, not a reset: the process saw EOF.
    expect(await stdinSeen).toEqual({ text: 'hello world\n', reset: undefined });
    await session.closed;

    expect(upgrades.map((u) => u.headers.upgrade)).toEqual(['websocket', 'SPDY/3.1']);
    const spdy = upgrades[1]!;
    expect(spdy.method).toBe('POST');
    expect(spdy.url).toBe(PATH);
    expect(spdy.headersDistinct['x-stream-protocol-version']).toEqual(['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io']);
    expect(spdy.headers.authorization).toBe('Bearer fake-token');
    expect(spdy.headers['impersonate-user']).toBe('agent');
    expect(spdy.headersDistinct['impersonate-group']).toEqual(['a', 'b']);
    expect(opened).toEqual(['error', 'stdin', 'stdout', 'stderr']);
  });

  it('reports the exit code from the error stream Status, with stderr kept apart', async () => {
    script = (conn, streams) => {
      streams.get('stdout')!.write('out\n');
      streams.get('stderr')!.write('err\n');
      void finish(conn, streams, encodeStatus(exitCodeStatus(3)));
    };
    const session = await dialUpstreamExec(target(), { path: '/api/v1/namespaces/ns/pods/p/exec?command=sh&stdout=true&stderr=true' });
    expect(session.stdin).toBeNull();
    const out = collect(session.stdout);
    const err = collect(session.stderr);
    const status = await session.status;
    expect(status.reason).toBe('NonZeroExitCode');
    expect(exitCodeOf(status)).toBe(3);
    expect(session.statusFromUpstream).toBe(true);
    expect([out(), err()]).toEqual(['out\n', 'err\n']);
    expect(opened).toEqual(['error', 'stdout', 'stderr']);
  });

  it('with a TTY: no stderr stream, a resize stream carrying the Go-encoded sizes', async () => {
    let sizes!: Promise<{ text: string; reset: number | undefined }>;
    script = (conn, streams) => {
      sizes = text(streams.get('resize')!);
      streams.get('stdin')!.once('end', () => void finish(conn, streams, encodeStatus(exitCodeStatus(0))));
      streams.get('stdin')!.resume();
    };
    const session = await dialUpstreamExec(target(), { path: '/api/v1/namespaces/ns/pods/p/exec?command=sh&stdin=true&stdout=true&stderr=true&tty=true' });
    expect(opened).toEqual(['error', 'stdin', 'stdout', 'resize']);
    session.resize({ width: 120, height: 40 });
    session.resize({ width: 70000, height: 5 }); // not a uint16: dropped
    session.resize({ width: 80, height: 24 });
    session.stdin!.end();
    expect((await session.status).status).toBe('Success');
    await session.closed;
    expect((await sizes).text).toBe('{"Width":120,"Height":40}\n{"Width":80,"Height":24}\n');
  });

  it('v1-v3: an empty error stream is success and text is the failure (exit code read from it)', async () => {
    chosen = 'v2.channel.k8s.io';
    script = (conn, streams) => void finish(conn, streams, Buffer.alloc(0));
    const ok = await dialUpstreamExec(target(), { path: PATH });
    expect(ok.protocol).toBe('v2.channel.k8s.io over SPDY/3.1');
    expect(await ok.status).toEqual(successStatus());
    expect(ok.statusFromUpstream).toBe(true);

    chosen = 'v3.channel.k8s.io';
    script = (conn, streams) => void finish(conn, streams, Buffer.from('command terminated with non-zero exit code: exit code 2'));
    const failed = await dialUpstreamExec(target(), { path: PATH });
    expect(exitCodeOf(await failed.status)).toBe(2);
  });

  it('a connection lost without a Status is a Failure the bastion words; data already received still arrives', async () => {
    script = (_conn, streams) => {
      streams.get('stdout')!.write('partial');
      setTimeout(() => sockets.forEach((s) => s.destroy()), 30);
    };
    const session = await dialUpstreamExec(target(), { path: PATH });
    const out = collect(session.stdout);
    const status = await session.status;
    expect(status).toMatchObject({ status: 'Failure', reason: 'InternalError' });
    expect(status.message).toMatch(/without a Status/);
    expect(session.statusFromUpstream).toBe(false);
    await session.closed;
    expect(out()).toBe('partial');
    expect(session.stdin!.destroyed).toBe(true);
  });

  it('destroy() stops delivery at once and resolves status and closed', async () => {
    script = (_conn, streams) => streams.get('stdout')!.write('x');
    const session = await dialUpstreamExec(target(), { path: PATH });
    await new Promise((r) => session.stdout.once('data', r));
    session.destroy();
    expect((await session.status).message).toMatch(/destroyed by kube-bastion/);
    await session.closed;
  });

  it('a SPDY refusal carrying a Status is upstream\'s answer, with what was tried in its details', async () => {
    const denial = apiStatus(403, 'Forbidden', 'pods "p" is forbidden: nope', { name: 'p', kind: 'pods' });
    spdyAnswer = (_req, socket) => {
      writeStatusToSocket(socket, denial);
      return true;
    };
    const err = await rejection(dialUpstreamExec(target(), { path: PATH }));
    expect(err).toBeInstanceOf(UpstreamRefusal);
    expect((err as UpstreamRefusal).status).toEqual(denial);
    expect((err as UpstreamRefusal).details).toMatchObject({ transport: 'spdy', fallbackFrom: ['v5.channel.k8s.io'], offered: ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] });
  });

  it('a 101 naming a version that was not offered is NO_COMMON_PROTOCOL; a stream upstream resets fails the dial', async () => {
    chosen = 'v5.channel.k8s.io';
    script = () => {};
    expect(isBastionError(await rejection(dialUpstreamExec(target(), { path: PATH })), 'NO_COMMON_PROTOCOL')).toBe(true);

    chosen = undefined;
    spdyAnswer = (_req, socket) => {
      writeSwitchingProtocols(socket, 'v4.channel.k8s.io');
      const conn = new SpdyConnection(socket, { role: 'server' });
      conn.on('error', () => {});
      conn.on('stream', (stream) => stream.cancel(3));
      return true;
    };
    const err = await rejection(dialUpstreamExec(target(), { path: PATH }));
    expect(isBastionError(err, 'UPSTREAM_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toMatch(/reset the error stream/);
  });

  it('times out a SPDY upgrade whose streams are never answered', async () => {
    spdyAnswer = (_req, socket) => {
      writeSwitchingProtocols(socket, 'v4.channel.k8s.io');
      const conn = new SpdyConnection(socket, { role: 'server' });
      conn.on('error', () => {});
      conn.on('stream', () => {}); // never replies
      return true;
    };
    const err = await rejection(dialUpstreamExec(target(), { path: PATH, handshakeTimeoutMs: 300 }));
    expect(isBastionError(err, 'UPSTREAM_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toMatch(/timed out/);
  });
});
