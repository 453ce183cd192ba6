// The upstream exec/attach client against scripted fake servers: what the simulated cluster
// cannot be made to do (old servers refusing v5, protocol violations, silent peers, hangs).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { createLoopbackServingMaterial, type ServingMaterial } from '../../tls/ca.js';
import { exitCodeStatus, encodeStatus } from '../../protocol/status.js';
import { writeStatusToSocket } from '../../transport/http-response.js';
import { apiStatus } from '../../protocol/status.js';
import { isBastionError, UpstreamRefusal } from '../../errors/index.js';
import { upstreamFromCredentials, type UpstreamTarget } from '../upstream.js';
import { clientOptions, dialUpstreamExec, upstreamUrl } from './dial.js';

type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

let tls: ServingMaterial;
let server: https.Server;
let port: number;
let onUpgrade: UpgradeHandler;
let upgrades: IncomingMessage[] = [];
const sockets = new Set<Duplex>();

beforeAll(async () => {
  tls = await createLoopbackServingMaterial('executor test CA');
  server = https.createServer({ cert: tls.serving.cert, key: tls.serving.key }, (_req, res) => res.writeHead(400).end());
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    sockets.add(socket);
    upgrades.push(req);
    onUpgrade(req, socket, head);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterEach(() => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  upgrades = [];
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function target(prefix = ''): UpstreamTarget {
  return upstreamFromCredentials(`https://127.0.0.1:${port}${prefix}`, tls.ca.cert, 'fake-token', 'fake upstream');
}

const PATH = '/api/v1/namespaces/ns/pods/p/exec?command=sh&stdin=true&stdout=true&stderr=true';

function offered(req: IncomingMessage): string[] {
  return String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Accepts with `pick(offer)` as the subprotocol (false: none) and hands the socket to `run`. */
function accept(pick: (offer: string[]) => string | false, run: (ws: WebSocket, req: IncomingMessage) => void, wsOptions: { autoPong?: boolean } = {}): UpgradeHandler {
  return (req, socket, head) => {
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols: (set) => pick([...set]), ...wsOptions });
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => {});
      run(ws, req);
    });
  };
}

function frame(channel: number, payload: string | Buffer | number[]): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Array.isArray(payload) ? Buffer.from(payload) : Buffer.from(payload);
  return Buffer.concat([Buffer.from([channel]), body]);
}

/** A well-behaved v5/v4 server: connected frame, `out` on stdout, Status, close 1000. */
function helloServer(out = 'hello\n', code = 0): (ws: WebSocket) => void {
  return (ws) => {
    ws.send(frame(1, []));
    ws.send(frame(1, out));
    ws.send(frame(3, encodeStatus(exitCodeStatus(code))));
    ws.close(1000);
  };
}

function collect(stream: Readable): () => string {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return () => Buffer.concat(chunks).toString('utf8');
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('options and URL', () => {
  it('keeps the server URL path prefix and builds wss://', () => {
    expect(upstreamUrl('https://10.0.0.1:6443', '/api/v1/x?a=b')).toBe('wss://10.0.0.1:6443/api/v1/x?a=b');
    expect(upstreamUrl('https://rancher.example/k8s/clusters/c-1', '/api/v1/x')).toBe('wss://rancher.example/k8s/clusters/c-1/api/v1/x');
    expect(upstreamUrl('https://[::1]:6443', '/api')).toBe('wss://[::1]:6443/api');
  });

  it('takes TLS fields and headers, never the keep-alive agent, and lets caller headers through', () => {
    const agent = new https.Agent({ keepAlive: true, ca: 'AGENT-CA', servername: 'agent-sni' });
    const opts = clientOptions(
      { ca: 'CA', cert: 'CERT', key: 'KEY', rejectUnauthorized: false, agent, headers: { Authorization: 'Bearer t' } },
      { headers: { 'Impersonate-User': 'u', 'Sec-WebSocket-Protocol': 'evil', Connection: 'close' } },
    ) as Record<string, unknown>;
    expect(opts.agent).toBeUndefined();
    expect(opts).toMatchObject({ ca: 'CA', cert: 'CERT', key: 'KEY', rejectUnauthorized: false, servername: 'agent-sni', perMessageDeflate: false });
    expect(opts.headers).toEqual({ authorization: 'Bearer t', 'impersonate-user': 'u' });
    agent.destroy();
  });
});

describe('handshake', () => {
  it('dials under the server path prefix with the bearer token, offering v5 only', async () => {
    onUpgrade = accept((o) => o[0]!, helloServer());
    const session = await dialUpstreamExec(target('/k8s/clusters/c-1'), { path: PATH });
    expect(session.protocol).toBe('v5.channel.k8s.io');
    const out = collect(session.stdout);
    expect((await session.status).status).toBe('Success');
    expect(out()).toBe('hello\n');
    expect(upgrades[0]!.url).toBe(`/k8s/clusters/c-1${PATH}`);
    expect(upgrades[0]!.headers.authorization).toBe('Bearer fake-token');
    expect(offered(upgrades[0]!)).toEqual(['v5.channel.k8s.io']);
  });

  it('falls back to SPDY/3.1 (never WebSocket v4) when a kubelet-style handshake refuses v5 with a bare 403', async () => {
    // What a kubelet behind a pre-1.30 API server does with an offer it cannot serve; the SPDY
    // session itself is covered in spdy-session.test.ts.
    onUpgrade = (req, socket) => {
      if (req.headers.upgrade === 'websocket') socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      else socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v9\r\n\r\n');
    };
    const err = await rejection(dialUpstreamExec(target(), { path: PATH }));
    expect(isBastionError(err, 'NO_COMMON_PROTOCOL')).toBe(true);
    expect((err as { details: Record<string, unknown> }).details).toMatchObject({ transport: 'spdy', fallbackFrom: ['v5.channel.k8s.io'] });
    expect(upgrades.map((u) => [u.method, u.headers.upgrade])).toEqual([['GET', 'websocket'], ['POST', 'SPDY/3.1']]);
  });

  it('falls back to SPDY when upstream answers 101 without a subprotocol', async () => {
    onUpgrade = (req, socket, head) => {
      if (req.headers.upgrade === 'websocket') return accept(() => false, () => {})(req, socket, head);
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nno');
    };
    const err = await rejection(dialUpstreamExec(target(), { path: PATH }));
    expect(isBastionError(err, 'BAD_REQUEST')).toBe(true);
    expect((err as Error).message).toBe('upstream refused the exec/attach upgrade: HTTP 400 Bad Request: no');
    expect(upgrades).toHaveLength(2);
  });

  it('an explicit offer without v5 is never retried', async () => {
    onUpgrade = accept(() => false, () => {});
    const err = await rejection(dialUpstreamExec(target(), { path: PATH, protocols: ['v4.channel.k8s.io'] }));
    expect(isBastionError(err, 'NO_COMMON_PROTOCOL')).toBe(true);
    expect(upgrades).toHaveLength(1);
  });

  it('never retries a refusal that carries a Status (RBAC 403), and keeps that Status as data', async () => {
    const denial = apiStatus(403, 'Forbidden', 'pods "p" is forbidden: User "bastion" cannot create resource "pods/exec" in API group "" in the namespace "ns"', { name: 'p', kind: 'pods' });
    onUpgrade = (_req, socket) => writeStatusToSocket(socket, denial);
    const err = await rejection(dialUpstreamExec(target(), { path: PATH }));
    expect(isBastionError(err, 'FORBIDDEN')).toBe(true);
    expect(err).toBeInstanceOf(UpstreamRefusal);
    expect((err as UpstreamRefusal).status).toEqual(denial);
    expect((err as UpstreamRefusal).upstreamHttpStatus).toBe(403);
    expect((err as Error).message).toBe(denial.message);
    expect(upgrades).toHaveLength(1);
  });

  it('synthesises a Status for a refusal without one (502 from a proxy) and bounds the body it reads', async () => {
    onUpgrade = (_req, socket) => {
      const body = 'x'.repeat(1024 * 1024);
      socket.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    };
    const err = await rejection(dialUpstreamExec(target(), { path: PATH }));
    expect(isBastionError(err, 'UPSTREAM_UNAVAILABLE')).toBe(true);
    const status = (err as UpstreamRefusal).status;
    expect(status).toMatchObject({ code: 502, status: 'Failure' });
    expect(status.message).toMatch(/^upstream refused the exec\/attach upgrade: HTTP 502 Bad Gateway: x+$/);
    expect(status.message?.length).toBeLessThan(2000);
  });

  it('rejects an untrusted server certificate with UPSTREAM_UNAVAILABLE', async () => {
    const other = await createLoopbackServingMaterial('some other CA');
    const untrusted = upstreamFromCredentials(`https://127.0.0.1:${port}`, other.ca.cert, 't', 'wrong CA');
    const err = await rejection(dialUpstreamExec(untrusted, { path: PATH }));
    expect(isBastionError(err, 'UPSTREAM_UNAVAILABLE')).toBe(true);
    expect(upgrades).toHaveLength(0);
  });

  it('times out a handshake nobody answers, and aborts through the signal', async () => {
    onUpgrade = () => {}; // hold the request forever
    const timedOut = await rejection(dialUpstreamExec(target(), { path: PATH, handshakeTimeoutMs: 200 }));
    expect(isBastionError(timedOut, 'UPSTREAM_UNAVAILABLE')).toBe(true);
    expect((timedOut as Error).message).toMatch(/timed out/);

    const controller = new AbortController();
    const dialing = dialUpstreamExec(target(), { path: PATH, signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const aborted = await rejection(dialing);
    expect(isBastionError(aborted, 'CONNECTION_CLOSED')).toBe(true);
    expect((aborted as { details: { aborted: boolean } }).details.aborted).toBe(true);

    const already = await rejection(dialUpstreamExec(target(), { path: PATH, signal: AbortSignal.abort() }));
    expect(isBastionError(already, 'CONNECTION_CLOSED')).toBe(true);
  });

  it('refuses an unknown subprotocol name or a relative path before dialing', async () => {
    expect(isBastionError(await rejection(dialUpstreamExec(target(), { path: PATH, protocols: ['v9.channel.k8s.io'] })), 'CONFIG_INVALID')).toBe(true);
    expect(isBastionError(await rejection(dialUpstreamExec(target(), { path: 'api/v1' })), 'BAD_REQUEST')).toBe(true);
    expect(upgrades).toHaveLength(0);
  });
});

describe('open session', () => {
  it('ignores the connected frame, empty payloads and unknown channels; sends stdin, resize and v5 CLOSE as frames', async () => {
    const received: Buffer[] = [];
    onUpgrade = accept((o) => o[0]!, (ws) => {
      ws.send(frame(1, []));
      ws.send(frame(2, []));
      ws.send(frame(9, 'unknown channel'));
      ws.send(frame(0, 'stdin channel from server'));
      ws.send(frame(4, '{"Width":1,"Height":1}'));
      ws.send(frame(255, [0]));
      ws.send(Buffer.alloc(0));
      ws.send(frame(1, 'out'));
      ws.send(frame(2, 'err'));
      ws.on('message', (data: Buffer) => {
        received.push(data);
        if (data[0] === 255) {
          ws.send(frame(3, encodeStatus(exitCodeStatus(0))));
          ws.close(1000);
        }
      });
    });
    const session = await dialUpstreamExec(target(), { path: PATH });
    const out = collect(session.stdout);
    const err = collect(session.stderr);
    session.resize({ width: 120, height: 40 });
    session.resize({ width: -1, height: 5 }); // dropped
    session.stdin!.write('typed');
    session.stdin!.end();
    expect((await session.status).status).toBe('Success');
    expect(out()).toBe('out');
    expect(err()).toBe('err');
    expect(received.map((b) => [...b])).toEqual([
      [4, ...Buffer.from('{"Width":120,"Height":40}\n')],
      [0, ...Buffer.from('typed')],
      [255, 0],
    ]);
  });

  it('a text frame on a binary protocol ends the session with a Failure Status (data already received still arrives)', async () => {
    let serverClosed!: Promise<number>;
    onUpgrade = accept((o) => o[0]!, (ws) => {
      serverClosed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
      ws.send(frame(1, 'before'));
      ws.send('1not-binary');
      ws.send(frame(1, 'after'));
    });
    const session = await dialUpstreamExec(target(), { path: PATH });
    const out = collect(session.stdout);
    const ended = new Promise((r) => session.stdout.once('end', r));
    const status = await session.status;
    await ended;
    await session.closed;
    expect(status).toMatchObject({ status: 'Failure', reason: 'InternalError' });
    expect(status.message).toMatch(/text message/);
    expect(out()).toBe('before');
    expect(await serverClosed).toBe(1003);
    expect(session.stdin!.destroyed).toBe(true);
  });

  it('a close without a Status, or a lost connection, yields a Failure Status describing it', async () => {
    onUpgrade = accept((o) => o[0]!, (ws) => ws.close(1000));
    const clean = await dialUpstreamExec(target(), { path: PATH });
    const s1 = await clean.status;
    expect(s1.status).toBe('Failure');
    expect(s1.message).toMatch(/without a Status \(close code 1000\)/);

    onUpgrade = accept((o) => o[0]!, (ws) => {
      ws.send(frame(1, 'partial'));
      setTimeout(() => ws.terminate(), 20);
    });
    const lost = await dialUpstreamExec(target(), { path: PATH });
    const out = collect(lost.stdout);
    const s2 = await lost.status;
    expect(s2.status).toBe('Failure');
    expect(s2.message).toMatch(/connection lost.*1006/);
    await lost.closed;
    expect(out()).toBe('partial');
  });

  it('a Status that arrived wins over a lost connection; a server that never closes after it is cut', async () => {
    onUpgrade = accept((o) => o[0]!, (ws) => {
      ws.send(frame(3, encodeStatus(exitCodeStatus(5))));
      // ...and never closes.
    });
    const started = Date.now();
    const session = await dialUpstreamExec(target(), { path: PATH });
    const status = await session.status;
    expect(status.reason).toBe('NonZeroExitCode');
    expect(Date.now() - started).toBeLessThan(8000);
  }, 15_000);

  it('an invalid Status on the error channel is reported as such', async () => {
    onUpgrade = accept((o) => o[0]!, (ws) => {
      ws.send(frame(3, '{"not":"a status"}'));
      ws.close(1000);
    });
    const session = await dialUpstreamExec(target(), { path: PATH });
    expect((await session.status).message).toMatch(/invalid Status/);
  });

  it('keep-alive: a peer that stops answering pings is declared dead; one that answers is not', async () => {
    onUpgrade = accept((o) => o[0]!, () => {}, { autoPong: false });
    const silent = await dialUpstreamExec(target(), { path: PATH, keepAliveMs: 100 });
    const status = await silent.status;
    expect(status.status).toBe('Failure');
    expect(status.message).toMatch(/stopped responding/);

    let pings = 0;
    onUpgrade = accept((o) => o[0]!, (ws) => {
      ws.on('ping', () => pings++);
      setTimeout(helloServer('alive\n'), 700, ws);
    });
    const live = await dialUpstreamExec(target(), { path: PATH, keepAliveMs: 100 });
    const out = collect(live.stdout);
    expect((await live.status).status).toBe('Success');
    expect(out()).toBe('alive\n');
    expect(pings).toBeGreaterThanOrEqual(3);
  });

  it('a consumer that destroys stderr does not stall stdout; abort after open destroys the session', async () => {
    onUpgrade = accept((o) => o[0]!, (ws) => {
      const big = Buffer.alloc(32 * 1024, 0x65);
      for (let i = 0; i < 64; i++) ws.send(frame(2, big)); // 2 MiB nobody reads
      ws.send(frame(1, 'stdout-after-stderr'));
      ws.send(frame(3, encodeStatus(exitCodeStatus(0))));
      ws.close(1000);
    });
    const session = await dialUpstreamExec(target(), { path: PATH });
    session.stderr.destroy();
    const out = collect(session.stdout);
    expect((await session.status).status).toBe('Success');
    expect(out()).toBe('stdout-after-stderr');

    onUpgrade = accept((o) => o[0]!, (ws) => ws.send(frame(1, 'x')));
    const controller = new AbortController();
    const held = await dialUpstreamExec(target(), { path: PATH, signal: controller.signal });
    controller.abort();
    const status = await held.status;
    expect(status.message).toMatch(/destroyed/);
    await held.closed;
  });
});
