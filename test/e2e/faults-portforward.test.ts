// Fault suite, port-forward: a hostile agent holding a kubeconfig for the bastion, and an auditor
// who must trust the record. The attacks are on the wire (raw SPDY/3.1 and WebSocket channel
// clients, kubectl), on the upstream (a proxy that holds or kills the bastion's dial), and on the
// bastion's own dependencies (the store and the recordings folder, failing in-process). The pod's
// ports here are listeners the test owns on the pod's own address, so "no byte reached the pod"
// is counted where it would land, not inferred.
import { MAX_FORWARDED_CONNECTIONS } from '../../src/transport/portforward/index.js';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync, renameSync, statSync, symlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { api, requestRows, revoke, spdyUpgrade, startHoldingProxy, until, within, type HoldingProxy } from '../helpers/faults.js';
import { startSim, type StartedSim } from '../helpers/sim.js';
import { kubectlPortForward, stopForward } from '../helpers/portforward.js';
import { SpdyConnection } from '../../src/transport/spdy/connection.js';
import { SpdyStream } from '../../src/transport/spdy/stream.js';
import { readRawSidecar } from '../../src/recording/raw-sidecar.js';
import { ForwardRecording } from '../../src/recording/forward-recorder.js';
import { nodeFileIo } from '../../src/recording/append-file.js';
import type { Approval } from '../../src/model/approval.js';
import type { ForwardedConnection } from '../../src/model/forward.js';

let sim: StartedSim;
let proxy: HoldingProxy;
let b: TestBastion;
let alice: string;
let podAddress: string;

beforeAll(async () => {
  sim = await startSim();
  proxy = await startHoldingProxy(sim.sim);
  b = await startTestBastion({ sim: sim.sim, extraArgs: ['--upstream-kubeconfig', proxy.kubeconfig, '--session-setup-timeout', '3'] });
  alice = (await b.bastion.store.users.createUser('alice', 'approver')).token;
  // The sim keeps where a pod's processes listen to itself; tests listen there as the pod would.
  podAddress = (sim.sim as unknown as { runtime: { podAddress(ns: string, name: string): string | undefined } }).runtime.podAddress('demo', 'web-0')!;
  expect(podAddress).toMatch(/^127\./);
});
afterEach(async () => {
  vi.restoreAllMocks();
  proxy.modeFor = () => 'pass';
  for (const a of await b.bastion.approvals.list({ state: 'approved' })) await b.bastion.approvals.revoke(a.id, { kind: 'system', reason: 'end of case' }).catch(() => {});
});
afterAll(async () => {
  await b?.stop();
  await proxy?.close();
  await sim?.sim.stop();
});

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

// ---- the pod's side: listeners the test owns ---------------------------------------------------

interface PodPort {
  port: number;
  /** Connections accepted, with the instant each arrived. */
  accepted: number[];
  /** Bytes received from all connections. */
  received(): Buffer;
  sockets: Socket[];
  close(): Promise<void>;
}

/** A TCP listener on the pod's address (a port of demo/web-0); `onConnection` plays the pod's app. */
async function podPort(onConnection: (socket: Socket) => void = () => {}): Promise<PodPort> {
  const accepted: number[] = [];
  const chunks: Buffer[] = [];
  const sockets: Socket[] = [];
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted.push(Date.now());
    sockets.push(socket);
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => chunks.push(d));
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, podAddress, resolve));
  return {
    port: (server.address() as { port: number }).port,
    accepted,
    received: () => Buffer.concat(chunks),
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A pod port that echoes every byte back (half-close honoured). */
const echoPort = (): Promise<PodPort> => podPort((s) => s.pipe(s));

// ---- the agent's side: a raw SPDY/3.1 port-forward client ----------------------------------------

interface RawConnection {
  data: SpdyStream;
  error: SpdyStream;
  /** The error stream's text once it has ended (or the stream is gone). */
  errorText: Promise<string>;
  /** Bytes received on the data stream so far. */
  received(): Buffer;
  /** Resolves when the data stream is closed (ended both ways or reset). */
  dataClosed: Promise<void>;
}

interface RawForward {
  conn: SpdyConnection;
  /** Opens a forwarded connection as client-go does: the error stream (write side closed at once), then the data stream. */
  open(port: number | string | undefined, requestId?: string, opts?: { readData?: boolean }): RawConnection;
  /** Opens only an error stream for `requestId` (a pair never completed). */
  openErrorOnly(port: number | string, requestId: string): SpdyStream;
  readonly closed: Promise<void>;
  destroy(): void;
}

function textOf(stream: SpdyStream): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    const done = (): void => resolve(Buffer.concat(chunks).toString());
    stream.once('end', done);
    stream.once('close', done);
  });
}

/** POST .../portforward with SPDY/3.1; resolves once the 101 arrived (a held request waits). */
async function rawForward(opts: { bastion?: TestBastion; pod?: string; token?: string } = {}): Promise<RawForward> {
  const on = opts.bastion ?? b;
  const { socket, head } = await spdyUpgrade(on, `/api/v1/namespaces/demo/pods/${opts.pod ?? 'web-0'}/portforward`, 'portforward.k8s.io', opts.token ?? on.agentToken);
  const conn = new SpdyConnection(socket, { role: 'client', head, limits: { maxConcurrentStreams: 10_000 } });
  conn.on('error', () => {});
  conn.on('stream', (s) => s.cancel());
  let next = 0;
  const headersFor = (type: 'error' | 'data', port: number | string | undefined, requestId: string): Record<string, string> => ({
    streamtype: type,
    ...(port !== undefined ? { port: String(port) } : {}),
    requestid: requestId,
  });
  return {
    conn,
    open: (port, requestId = String(next++), opts = {}) => {
      const error = conn.openStream(headersFor('error', port, requestId));
      error.on('error', () => {});
      error.end();
      const errorText = textOf(error);
      const data = conn.openStream(headersFor('data', port, requestId));
      data.on('error', () => {});
      const chunks: Buffer[] = [];
      if (opts.readData !== false) data.on('data', (d: Buffer) => chunks.push(d));
      const dataClosed = new Promise<void>((r) => (data.destroyed ? r() : data.once('close', () => r())));
      return { data, error, errorText, received: () => Buffer.concat(chunks), dataClosed };
    },
    openErrorOnly: (port, requestId) => {
      const error = conn.openStream(headersFor('error', port, requestId));
      error.on('error', () => {});
      error.end();
      return error;
    },
    closed: conn.closed,
    destroy: () => conn.destroy(),
  };
}

// ---- the agent's side: the WebSocket channel protocol ---------------------------------------------

interface RawChannels {
  ws: WebSocket;
  messages: Array<[number, Buffer]>;
  on(channel: number): Buffer;
  closed: Promise<number>;
}

function rawChannels(query: string, token = b.agentToken): Promise<RawChannels> {
  const ws = new WebSocket(`${b.bastion.kubeUrl.replace(/^https/, 'wss')}/api/v1/namespaces/demo/pods/web-0/portforward?${query}`, ['v4.channel.k8s.io'], {
    ca: b.bastion.tls.caPem,
    headers: { Authorization: `Bearer ${token}` },
  });
  const messages: Array<[number, Buffer]> = [];
  ws.on('message', (data: Buffer) => messages.push([data[0]!, Buffer.from(data.subarray(1))]));
  ws.on('error', () => {});
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, messages, on: (c) => Buffer.concat(messages.filter(([ch]) => ch === c).map(([, p]) => p)), closed }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => reject(new Error(`HTTP ${res.statusCode} ${body}`)));
    });
    ws.once('error', reject);
  });
}

// ---- approvals and the record --------------------------------------------------------------------

async function grantForward(ports: number[], ttlSeconds = 300, extra: Record<string, unknown> = {}): Promise<Approval> {
  const { status, json } = await api<Approval>(b, alice, 'POST', '/v1/approvals', { agent: b.agentName, namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports, ttlSeconds, reason: 'port-forward fault suite', ...extra });
  if (status !== 201) throw new Error(`grant failed: ${status} ${JSON.stringify(json)}`);
  return json;
}

async function theSession(approvalId: string) {
  return until('the session row', async () => (await b.bastion.store.sessions.list({ approvalId }))[0]);
}

async function endedSession(approvalId: string) {
  return until('the session to end', async () => {
    const s = (await b.bastion.store.sessions.list({ approvalId }))[0];
    return s?.endedAt ? s : undefined;
  });
}

const connections = (sessionId: string): Promise<ForwardedConnection[]> => b.bastion.store.sessions.listConnections(sessionId);

async function endedConnections(sessionId: string, n: number): Promise<ForwardedConnection[]> {
  return until(`${n} ended connection rows`, async () => {
    const rows = await connections(sessionId);
    return rows.length === n && rows.every((r) => r.endedAt !== null) ? rows : undefined;
  });
}

/** A forward of `port` under a new approval, once more than 64 KiB came through it. */
async function flowing(port: number) {
  const approval = await grantForward([port]);
  const fwd = await rawForward();
  const c = fwd.open(port);
  await until('some bytes', () => c.received().length > 64 * 1024);
  return { approval, fwd, c };
}

/** A pod port that writes 4 KiB (A, B, C, ...) every 2 ms to each connection until it closes. */
function drip(s: Socket): void {
  let n = 0;
  const timer = setInterval(() => {
    if (s.destroyed) return clearInterval(timer);
    s.write(Buffer.alloc(4096, 0x41 + (n++ % 26)));
  }, 2);
  s.on('close', () => clearInterval(timer));
}

/** From now on the recording's writes to the file named `sidecar` (and only those) go through `how`; `write` does the real one. */
function onSidecarWrite(sidecar: string, how: (write: () => Promise<number>) => Promise<number>): void {
  const write = nodeFileIo.write;
  vi.spyOn(nodeFileIo, 'write').mockImplementation((fd, buf, off, len) => {
    let path = '';
    try {
      path = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      // not ours
    }
    return path.endsWith(sidecar) ? how(() => write(fd, buf, off, len)) : write(fd, buf, off, len);
  });
}

function channelBytes(path: string, channel: number): Buffer {
  return Buffer.concat(readRawSidecar(readFileSync(path)).records.filter((r) => r.channel === channel).map((r) => Buffer.from(r.data)));
}

/** A connection's sidecar on disk: the store keeps its path relative to the recordings directory. */
function onDisk(rawPath: string, recordingsDir = b.bastion.config.recordingsDir): string {
  return join(recordingsDir, rawPath);
}

/** The store's row agrees with its raw sidecar on disk: file hash, and each direction's bytes and hash. */
function expectRowMatchesSidecar(row: ForwardedConnection, recordingsDir?: string): void {
  if (row.rawPath === null) {
    expect(row.rawSha256).toBeNull();
    return;
  }
  const path = onDisk(row.rawPath, recordingsDir);
  expect(existsSync(path)).toBe(true);
  expect(row.rawSha256, `connection ${row.seq} names ${row.rawPath} but no hash of it`).not.toBeNull();
  expect(sha256(readFileSync(path))).toBe(row.rawSha256);
  const toPod = channelBytes(path, 0);
  const fromPod = channelBytes(path, 1);
  expect({ bytesIn: row.bytesIn, bytesOut: row.bytesOut }).toEqual({ bytesIn: toPod.length, bytesOut: fromPod.length });
  expect({ sha256In: row.sha256In, sha256Out: row.sha256Out }).toEqual({ sha256In: sha256(toPod), sha256Out: sha256(fromPod) });
}

/**
 * The next time the bastion's side of an agent's SPDY connection runs `method` with `when` true,
 * this process (the bastion's) stalls there until past `deadline` (a GC pause just as the agent's
 * frames, or its leaving, are read), then goes on: what was read is handled after the deadline and
 * before any timer (the deadline's) can run. `after` runs once the bastion has handled it.
 */
function stallBastionIn(method: 'onSocketData' | 'teardown', deadline: number, when: (args: unknown[]) => boolean, after: () => void = () => {}): void {
  const proto = SpdyConnection.prototype as unknown as Record<typeof method, (...args: unknown[]) => unknown>;
  const original = proto[method];
  let armed = true;
  vi.spyOn(proto, method).mockImplementation(function (this: SpdyConnection, ...args: unknown[]) {
    if (!armed || this.role !== 'server' || !when(args)) return original.apply(this, args);
    armed = false;
    while (Date.now() < deadline + 30) {
      /* the stall */
    }
    const result = original.apply(this, args);
    setImmediate(after);
    return result;
  });
}

/** Whether a chunk the bastion reads starts with a SPDY/3 RST_STREAM frame. */
const isReset = (chunk: Buffer): boolean => chunk.length >= 16 && chunk[0] === 0x80 && chunk[1] === 3 && chunk[2] === 0 && chunk[3] === 3;

// ---- (1) the approval's ports are the only ports -----------------------------------------------

describe('ports outside the approval', () => {
  it('SPDY: a connection to another port, and unusable port headers, never reach the pod; each is answered on its error stream and recorded', async () => {
    const allowed = await echoPort();
    const other = await echoPort();
    try {
      const approval = await grantForward([allowed.port]);
      const fwd = await rawForward();
      const ok = fwd.open(allowed.port);
      ok.data.end(Buffer.from('to the allowed port'));
      await until('the echo', () => ok.received().toString() === 'to the allowed port');
      const refused = fwd.open(other.port);
      refused.data.write(Buffer.from('must not arrive'));
      expect(await within(refused.errorText, 'the refusal')).toBe(`kube-bastion refused the connection to port ${other.port} of pod web-0: approval ${approval.id} allows port-forward to port(s) ${allowed.port} only`);
      // Headers the kubelet refuses: answered by the transport with the kubelet's words.
      const texts = await Promise.all(['0', '65536', 'abc', '+80', ` ${allowed.port}`].map((p) => within(fwd.open(p).errorText, `the refusal of ${p}`)));
      expect(texts).toEqual([
        'port "0" must be > 0',
        'unable to parse "65536" as a port: strconv.ParseUint: parsing "65536": invalid syntax',
        'unable to parse "abc" as a port: strconv.ParseUint: parsing "abc": invalid syntax',
        'unable to parse "+80" as a port: strconv.ParseUint: parsing "+80": invalid syntax',
        `unable to parse " ${allowed.port}" as a port: strconv.ParseUint: parsing " ${allowed.port}": invalid syntax`,
      ]);
      expect(await within(fwd.open(undefined).errorText, 'the refusal of no port')).toMatch(/^unable to parse "" as a port/);
      fwd.destroy();
      expect(other.accepted).toEqual([]);
      expect(allowed.accepted).toHaveLength(1);
      expect(allowed.received().toString()).toBe('to the allowed port');
      const session = await endedSession(approval.id);
      const rows = await endedConnections(session.id, 2);
      expect(rows.map((r) => [r.port, r.outcome])).toEqual([
        [allowed.port, 'closed'],
        [other.port, 'refused'],
      ]);
      expect(rows[1]).toMatchObject({ rawPath: null, bytesIn: 0, bytesOut: 0 });
      for (const row of rows) expectRowMatchesSidecar(row);
    } finally {
      await allowed.close();
      await other.close();
    }
  });

  it('SPDY: a requestID reused for another port does not join the first pair; the other port is refused', async () => {
    const allowed = await echoPort();
    const other = await echoPort();
    try {
      const approval = await grantForward([allowed.port]);
      const fwd = await rawForward();
      // Error stream for the allowed port, then a data stream of the same requestID naming another port.
      const error = fwd.openErrorOnly(allowed.port, 'r1');
      const errorText = textOf(error);
      const data = fwd.conn.openStream({ streamtype: 'data', port: String(other.port), requestid: 'r1' });
      data.on('error', () => {});
      data.write('smuggled');
      // The pair takes its port from the data stream: refused as the other port.
      expect(await within(errorText, 'the refusal')).toContain(`refused the connection to port ${other.port}`);
      // The same requestID again, now for the allowed port: a fresh pair that works.
      const again = fwd.open(allowed.port, 'r1');
      again.data.end('second use of r1');
      await until('the echo', () => again.received().toString() === 'second use of r1');
      // A third data stream for a requestID whose pair is complete and open: refused by the transport.
      fwd.destroy();
      expect(other.accepted).toEqual([]);
      const session = await endedSession(approval.id);
      expect((await endedConnections(session.id, 2)).map((r) => `${r.port} ${r.outcome}`)).toEqual([`${other.port} refused`, `${allowed.port} closed`]);
    } finally {
      await allowed.close();
      await other.close();
    }
  });

  it('channel protocol: ?ports= with 100 ports of which one is approved reaches only that one; port 0 and 65536 are refused before anything runs', async () => {
    const allowed = await echoPort();
    const trap = await echoPort();
    try {
      const approval = await grantForward([allowed.port]);
      for (const bad of ['0', '65536', '', '80,x']) {
        await expect(rawChannels(`ports=${bad}`)).rejects.toThrow(/^HTTP 400 /);
      }
      // 99 ports the approval does not name (one of them a real listener), and the approved one last.
      const ports = [...Array.from({ length: 98 }, (_, i) => 20000 + i), trap.port, allowed.port];
      const ch = await rawChannels(`ports=${ports.join(',')}`);
      const last = (ports.length - 1) * 2;
      await until('the port prefixes', () => ch.messages.length >= ports.length * 2);
      ch.ws.send(Buffer.concat([Buffer.from([last]), Buffer.from('hello allowed')]));
      await until('the echo', () => ch.on(last).subarray(2).toString() === 'hello allowed');
      ch.ws.close();
      await ch.closed;
      expect(trap.accepted).toEqual([]);
      expect(allowed.received().toString()).toBe('hello allowed');
      // Every refused port is told on its own error channel, after its port prefix.
      expect(ch.on(1).subarray(2).toString()).toContain(`refused the connection to port 20000 of pod web-0`);
      expect(ch.on(last - 1).subarray(2).toString()).toContain(`refused the connection to port ${trap.port}`);
      const session = await endedSession(approval.id);
      const rows = await endedConnections(session.id, ports.length);
      expect(rows.filter((r) => r.outcome === 'refused')).toHaveLength(ports.length - 1);
      expect(rows.find((r) => r.port === allowed.port)!.outcome).toBe('closed');
    } finally {
      await allowed.close();
      await trap.close();
    }
  });
});

describe('the channel protocol after a refusal', () => {
  it('bytes the client sends on a refused port\'s channel are dropped; the other ports keep flowing and closing ends the session at once', async () => {
    const allowed = await echoPort();
    const other = await echoPort();
    try {
      const approval = await grantForward([allowed.port]);
      const ch = await rawChannels(`ports=${allowed.port},${other.port}`);
      await until('the refusal on channel 3', () => ch.on(3).length > 2);
      // The client had not read its error channel yet: it sends on the refused port, then on the allowed one.
      ch.ws.send(Buffer.concat([Buffer.from([2]), Buffer.from('to the refused port')]));
      ch.ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('still flowing')]));
      await within(until('the echo', () => ch.on(0).subarray(2).toString() === 'still flowing'), 'the allowed port to echo', 5_000);
      const closing = Date.now();
      ch.ws.close();
      await within(ch.closed, 'the close handshake', 5_000);
      expect(Date.now() - closing).toBeLessThan(2_000);
      expect(other.accepted).toEqual([]);
      const session = await within(endedSession(approval.id), 'the session to end', 5_000);
      expect(session.endReason).toBe('completed');
    } finally {
      await allowed.close();
      await other.close();
    }
  });
});

// ---- (8) what the approver saw vs. what runs --------------------------------------------------

describe('a held request: what the approver sees is what runs', () => {
  it('a channel request held for ?ports=P also naming ?port=Q: approved as asked, Q is refused and never reached', async () => {
    const allowed = await echoPort();
    const smuggled = await echoPort();
    try {
      const opening = rawChannels(`ports=${allowed.port}&port=${smuggled.port}`);
      opening.catch(() => {});
      const pending = await until('the pending approval', async () => (await b.bastion.approvals.list({ state: 'pending' })).find((a) => a.scope.kind === 'stream' && a.scope.verbs.includes('portforward')));
      expect(pending.scope).toEqual({ kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports: [allowed.port] });
      expect((await api(b, alice, 'POST', `/v1/approvals/${pending.id}/approve`, {})).status).toBe(200);
      const ch = await opening;
      ch.ws.send(Buffer.concat([Buffer.from([2]), Buffer.from('smuggled bytes')]));
      ch.ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('fine')]));
      await until('the echo', () => ch.on(0).subarray(2).toString() === 'fine');
      await until('the refusal', () => ch.on(3).length > 2);
      expect(ch.on(3).subarray(2).toString()).toContain(`refused the connection to port ${smuggled.port}`);
      ch.ws.close();
      await ch.closed;
      expect(smuggled.accepted).toEqual([]);
    } finally {
      await allowed.close();
      await smuggled.close();
    }
  });

  it('an exec approval on the same pod does not admit a port-forward: it is held, and nothing reaches the pod', async () => {
    const target = await echoPort();
    try {
      const { status } = await api(b, alice, 'POST', '/v1/approvals', { agent: b.agentName, namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec', 'attach'], ttlSeconds: 300, reason: 'exec only' });
      expect(status).toBe(201);
      const opening = rawForward();
      opening.catch(() => {});
      const pending = await until('the held port-forward', async () => (await b.bastion.approvals.list({ state: 'pending' })).find((a) => a.scope.kind === 'stream' && a.scope.verbs.includes('portforward')));
      expect(pending.scope).toEqual({ kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'] });
      // Approving without naming ports is refused: an approval with portforward and no ports does not exist.
      const bare = await api<{ error: { field: string } }>(b, alice, 'POST', `/v1/approvals/${pending.id}/approve`, {});
      expect(bare.status).toBe(400);
      expect(bare.json.error.field).toBe('ports');
      expect((await api(b, alice, 'POST', `/v1/approvals/${pending.id}/deny`, { reason: 'no' })).status).toBe(200);
      await expect(opening).rejects.toThrow(/no upgrade: 403/);
      expect(target.accepted).toEqual([]);
    } finally {
      await target.close();
    }
  });

  it('maxSessions 1: the second port-forward under the approval is refused before it is upgraded', async () => {
    const target = await echoPort();
    try {
      const approval = await grantForward([target.port], 300, { maxSessions: 1 });
      const first = await rawForward();
      await theSession(approval.id);
      await expect(rawForward()).rejects.toThrow(/no upgrade: 403 .*/);
      first.destroy();
      expect((await b.bastion.store.sessions.list({ approvalId: approval.id })).length).toBe(1);
    } finally {
      await target.close();
    }
  });
});

// ---- (6) hostile clients: backpressure, unpaired streams ---------------------------------------

describe('a client that never reads', () => {
  it('the pod sends 48 MiB, the agent reads nothing: what the bastion takes (and records) stays bounded; then everything arrives, recorded byte for byte', async () => {
    const TOTAL = 48 * 1024 * 1024;
    let sentByPod = 0;
    const flood = await podPort((s) => {
      const chunk = Buffer.alloc(64 * 1024, 0x5a);
      const pump = (): void => {
        while (sentByPod < TOTAL) {
          sentByPod += chunk.length;
          if (!s.write(chunk)) {
            s.once('drain', pump);
            return;
          }
        }
        s.end();
      };
      pump();
    });
    try {
      const approval = await grantForward([flood.port]);
      const fwd = await rawForward();
      const c = fwd.open(flood.port, undefined, { readData: false });
      c.data.pause();
      const session = await theSession(approval.id);
      const [row] = await until('the connection row', async () => {
        const rows = await connections(session.id);
        return rows.length === 1 ? rows : undefined;
      });
      // Let the pod push for a while; the bastion must stop taking bytes well short of 48 MiB.
      await new Promise((r) => setTimeout(r, 2000));
      const recorded1 = statSync(onDisk(row!.rawPath!)).size;
      await new Promise((r) => setTimeout(r, 1000));
      const recorded2 = statSync(onDisk(row!.rawPath!)).size;
      expect(recorded2).toBeLessThan(8 * 1024 * 1024);
      expect(recorded2 - recorded1).toBeLessThan(256 * 1024);
      // Now the agent reads: every byte arrives, and the record has all of them.
      let got = 0;
      const h = createHash('sha256');
      c.data.on('data', (d: Buffer) => {
        got += d.length;
        h.update(d);
      });
      c.data.resume();
      await until('the whole flood', () => got === TOTAL, 30_000);
      expect(h.digest('hex')).toBe(sha256(Buffer.alloc(TOTAL, 0x5a)));
      fwd.destroy();
      const [done] = await endedConnections(session.id, 1);
      expect(done!.bytesOut).toBe(TOTAL);
      expectRowMatchesSidecar(done!);
    } finally {
      await flood.close();
    }
  }, 45_000);

  it('error streams that never get their data stream: nothing reaches the pod, the pairs time out, the session stays usable', async () => {
    const target = await echoPort();
    try {
      const approval = await grantForward([target.port]);
      const fwd = await rawForward();
      const orphans = Array.from({ length: 10 }, (_, i) => textOf(fwd.openErrorOnly(target.port, `orphan-${i}`)));
      // The setup timeout (3 s) is also the stream creation timeout: each orphan is told.
      const texts = await within(Promise.all(orphans), 'the orphans to time out', 10_000);
      expect(new Set(texts)).toEqual(new Set(['timed out waiting for streams']));
      expect(target.accepted).toEqual([]);
      // The session still forwards a real connection.
      const ok = fwd.open(target.port);
      ok.data.end('after the orphans');
      await until('the echo', () => ok.received().toString() === 'after the orphans');
      fwd.destroy();
      const session = await endedSession(approval.id);
      expect((await endedConnections(session.id, 1)).map((r) => r.outcome)).toEqual(['closed']);
    } finally {
      await target.close();
    }
  });

  it('a client that opens connections far beyond the stream limit is cut; the pod sees none beyond what was relayed and the session row does not say completed', async () => {
    const target = await echoPort();
    try {
      const approval = await grantForward([target.port]);
      const fwd = await rawForward();
      // Each connection is two streams; past 2 × MAX_FORWARDED_CONNECTIONS streams open at once the
      // SPDY stream limit trips. Error streams alone (never paired) reach it without relaying anything.
      for (let i = 0; i < 2 * MAX_FORWARDED_CONNECTIONS + 8; i++) fwd.openErrorOnly(target.port, `flood-${i}`);
      await within(fwd.closed, 'the connection to be cut', 10_000);
      const session = await endedSession(approval.id);
      const rows = await connections(session.id);
      expect(target.accepted.length).toBeLessThanOrEqual(rows.length);
      // A client that broke the protocol did not complete a session.
      expect(session.endReason).not.toBe('completed');
    } finally {
      await target.close();
    }
  });
});

describe('many concurrent connections from a real client', () => {
  it('kubectl 1.33 port-forward with 24 connections open at once (a browser opens this many): every one is relayed', async () => {
    const target = await echoPort();
    try {
      const approval = await grantForward([target.port]);
      const fwd = await kubectlPortForward({ minor: 33, kubeconfig: b.agentKubeconfig, ports: [target.port] });
      const local = fwd.local.get(target.port)!;
      const sockets: Socket[] = [];
      try {
        const echoes = Array.from({ length: 24 }, (_, i) =>
          new Promise<string>((resolve) => {
            const s = connect({ host: '127.0.0.1', port: local });
            sockets.push(s);
            let got = '';
            s.on('data', (d: Buffer) => {
              got += d.toString();
              if (got.endsWith('\n')) resolve(got);
            });
            s.on('error', () => resolve(got));
            s.on('close', () => resolve(got));
            s.write(`connection ${i}\n`);
          }),
        );
        const got = await within(Promise.all(echoes), 'the echoes', 15_000);
        expect(got).toEqual(Array.from({ length: 24 }, (_, i) => `connection ${i}\n`));
        expect(fwd.child.exitCode).toBeNull();
      } finally {
        for (const s of sockets) s.destroy();
        await stopForward(fwd);
      }
      const session = await endedSession(approval.id);
      const rows = await connections(session.id);
      expect(rows.filter((r) => r.outcome !== 'closed').map((r) => `${r.seq} ${r.outcome} ${r.detail}`)).toEqual([]);
    } finally {
      await target.close();
    }
  });
});

// ---- (4) the lease ends: expiry, revocation, agent revoked, shutdown ---------------------------

describe('the lease ends under open connections', () => {
  it('revocation: every open connection is cut with the reason on its error stream, nothing moves after, and the rows say so', async () => {
    const a = await echoPort();
    const bPort = await echoPort();
    try {
      const approval = await grantForward([a.port, bPort.port]);
      const fwd = await rawForward();
      const c1 = fwd.open(a.port);
      const c2 = fwd.open(bPort.port);
      c1.data.write('one');
      c2.data.write('two');
      await until('both echoes', () => c1.received().toString() === 'one' && c2.received().toString() === 'two');
      await revoke(b, alice, approval.id, 'drill');
      const revokedAt = Date.now();
      const [t1, t2] = await within(Promise.all([c1.errorText, c2.errorText]), 'the cut');
      for (const t of [t1, t2]) expect(t).toBe(`pods "web-0" is forbidden: kube-bastion ended the session: approval ${approval.id} was revoked by user:alice (drill)`);
      // Bytes written after the revocation do not reach the pod.
      const before = a.received().length;
      c1.data.write('after the cut');
      await new Promise((r) => setTimeout(r, 200));
      expect(a.received().length).toBe(before);
      await within(fwd.closed, 'the agent connection to close');
      const session = await endedSession(approval.id);
      expect(session.endReason).toBe('revoked');
      const rows = await endedConnections(session.id, 2);
      expect(rows.map((r) => r.outcome)).toEqual(['cut', 'cut']);
      for (const r of rows) {
        expect(r.detail).toContain('was revoked');
        expectRowMatchesSidecar(r);
        expect(Date.parse(r.endedAt!)).toBeGreaterThanOrEqual(revokedAt - 1000);
      }
    } finally {
      await a.close();
      await bPort.close();
    }
  });

  it('agent revoked: the open connection is cut with the reason; the session under its (revoked) approval ends revoked', async () => {
    const target = await echoPort();
    const admin = (await b.bastion.store.users.createUser(`root-${Date.now()}`, 'admin')).token;
    // A second agent, so revoking it leaves the suite's agent alone.
    const { token } = await b.bastion.store.agents.createAgent('doomed-agent');
    try {
      const { status, json: approval } = await api<Approval>(b, alice, 'POST', '/v1/approvals', { agent: 'doomed-agent', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports: [target.port], ttlSeconds: 300, reason: 'agent revoke drill' });
      expect(status).toBe(201);
      const fwd = await rawForward({ token });
      const c = fwd.open(target.port);
      c.data.write('x');
      await until('the echo', () => c.received().toString() === 'x');
      expect((await api(b, admin, 'POST', '/v1/agents/doomed-agent/revoke', { reason: 'token leaked' })).status).toBe(200);
      // Revoking an agent revokes its approvals: sessions under one end as it is revoked (as exec's do).
      expect(await within(c.errorText, 'the cut')).toContain(`approval ${approval.id} was revoked by user:`);
      expect(await c.errorText).toContain('(agent "doomed-agent" was revoked: token leaked)');
      const session = await endedSession(approval.id);
      expect(session.endReason).toBe('revoked');
      expect((await endedConnections(session.id, 1))[0]!.outcome).toBe('cut');
    } finally {
      await target.close();
    }
  });

  it('revocation while the dial upstream is held: nothing reaches the cluster, and a connection the agent opened meanwhile is told why', async () => {
    const target = await echoPort();
    try {
      const approval = await grantForward([target.port]);
      proxy.modeFor = (path) => (path.includes('/portforward') ? 'hold-request' : 'pass');
      const seen = proxy.upgrades.length;
      const fwd = await rawForward();
      const upgrade = await until('the held dial', () => proxy.upgrades.slice(seen).find((u) => u.path.includes('/pods/web-0/portforward')));
      expect(upgrade.mode).toBe('hold-request');
      const c = fwd.open(target.port);
      c.data.write('early bytes');
      await revoke(b, alice, approval.id, 'during the dial');
      // The bastion abandons its dial; only then is the proxy let go (it forwards nothing for a closed client).
      await within(upgrade.clientClosed, 'the bastion to abandon its dial');
      upgrade.release();
      const session = await endedSession(approval.id);
      expect(session.endReason).toBe('revoked');
      expect(upgrade.forwarded()).toBe(false);
      expect(target.accepted).toEqual([]);
      // The agent's connection existed (its streams were accepted): it is told why, as an open one would be.
      expect(await within(c.errorText, 'the error stream')).toContain(`approval ${approval.id} was revoked`);
    } finally {
      await target.close();
    }
  });

  it('revocation while a connection row is being written: the connection is refused with the reason, nothing reaches the pod, and the row agrees with the disk', async () => {
    const target = await echoPort();
    try {
      const approval = await grantForward([target.port]);
      const fwd = await rawForward();
      await theSession(approval.id);
      await until('the upstream dial', async () => (await theSession(approval.id)).upstreamProtocol !== null);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const store = b.bastion.store.sessions;
      const original = store.connectionStarted.bind(store);
      let entered = false;
      vi.spyOn(store, 'connectionStarted').mockImplementation(async (start) => {
        entered = true;
        await gate;
        return original(start);
      });
      const c = fwd.open(target.port);
      c.data.write('while the row is written');
      await until('the row write to start', () => entered);
      await revoke(b, alice, approval.id, 'mid-open');
      release();
      const text = await within(c.errorText, 'the error stream');
      expect(target.accepted).toEqual([]);
      const session = await endedSession(approval.id);
      expect(session.endReason).toBe('revoked');
      const [row] = await endedConnections(session.id, 1);
      expect(row!.outcome).toBe('cut');
      expect(row!.detail).toContain('was revoked');
      expectRowMatchesSidecar(row!);
      // The agent is told why, as a connection already open would be.
      expect(text).toContain(`approval ${approval.id} was revoked`);
    } finally {
      await target.close();
    }
  });

  it('expiry: a connection whose row is written across the deadline (the event loop stalled) is refused and never reaches the pod', async () => {
    const target = await echoPort();
    try {
      const approval = await grantForward([target.port], 3);
      const deadline = Date.parse(approval.expiresAt!);
      const fwd = await rawForward();
      await until('the upstream dial', async () => (await theSession(approval.id)).upstreamProtocol !== null);
      const store = b.bastion.store.sessions;
      const original = store.connectionStarted.bind(store);
      // Every stream the bastion opens upstream, with when (the agent's own streams are tagged "agent-").
      const upstreamOpens: Array<{ at: number; requestid: string | undefined }> = [];
      const openStream = SpdyConnection.prototype.openStream;
      vi.spyOn(SpdyConnection.prototype, 'openStream').mockImplementation(function (this: SpdyConnection, headers) {
        const requestid = (headers as Record<string, string>)['requestid'];
        if (!requestid?.startsWith('agent-')) upstreamOpens.push({ at: Date.now(), requestid });
        return openStream.call(this, headers);
      });
      // The row is written just before the deadline, and the process stalls past it (a GC pause, a slow disk).
      vi.spyOn(store, 'connectionStarted').mockImplementation(async (start) => {
        while (Date.now() < deadline + 30) {
          /* stall */
        }
        return original(start);
      });
      await new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now() - 400)));
      const c = fwd.open(target.port, 'agent-late');
      c.data.write('at the deadline');
      const text = await within(c.errorText, 'the error stream');
      expect(text).toContain('expired');
      expect(target.received().length).toBe(0);
      const session = await endedSession(approval.id);
      expect(session.endReason).toBe('expired');
      // Nothing was dialed for it: no connection at the pod, no stream opened upstream at or after the deadline.
      expect(target.accepted).toEqual([]);
      expect(upstreamOpens.filter((o) => o.at >= deadline)).toEqual([]);
    } finally {
      await target.close();
    }
  });

  it('expiry: a held connection the agent resets after the deadline, before the timer ran (the event loop stalled), ends cut: expired, not closed', async () => {
    const target = await podPort();
    try {
      const approval = await grantForward([target.port], 5);
      const deadline = Date.parse(approval.expiresAt!);
      const fwd = await rawForward();
      const session = await theSession(approval.id);
      await until('the upstream dial', async () => (await theSession(approval.id)).upstreamProtocol !== null);
      // The sidecar's disk hangs until the gate opens, so the bastion holds (pauses) the agent's data
      // stream once maxUnwrittenBytes are unwritten: a paused stream that is reset closes without
      // 'end', so only the connection's own check after its end can see the deadline.
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      onSidecarWrite(`${session.id}.c1.raw`, (write) => gate.then(write));
      let held: SpdyStream | undefined;
      const pause = SpdyStream.prototype.pause;
      vi.spyOn(SpdyStream.prototype, 'pause').mockImplementation(function (this: SpdyStream) {
        if (this.headers['requestid']?.[0] === 'agent-held' && this.headers['streamtype']?.[0] === 'data') held = this;
        return pause.call(this);
      });
      // Held by the recording (not only for a moment by upstream's drain): it stays held until the gate opens.
      let recordingFull = false;
      const ready = ForwardRecording.prototype.ready;
      vi.spyOn(ForwardRecording.prototype, 'ready').mockImplementation(function (this: ForwardRecording) {
        const wait = ready.call(this);
        if (wait) recordingFull = true;
        return wait;
      });
      const c = fwd.open(target.port, 'agent-held');
      // A chunk at a time, each read by the bastion before the next: what it takes after it pauses
      // stays under a stream's buffer, so it keeps reading the socket and the reset reaches it.
      const settle = async (): Promise<void> => {
        for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
      };
      while (!recordingFull || !held?.isPaused()) {
        expect(Date.now(), 'the hold came too late to reset before the deadline').toBeLessThan(deadline - 300);
        c.data.write(Buffer.alloc(32 * 1024, 0x78));
        await settle();
      }
      // The agent resets the connection just before the deadline; the bastion stalls as it reads
      // the reset, until past the deadline. The disk answers once it has handled the reset.
      stallBastionIn('onSocketData', deadline, ([chunk]) => isReset(chunk as Buffer), open);
      await new Promise((r) => setTimeout(r, deadline - Date.now() - 200));
      c.data.cancel();
      const text = await within(c.errorText, 'the error stream');
      expect(text).toContain('expired');
      const ended = await endedSession(approval.id);
      expect(ended.endReason).toBe('expired');
      const [row] = await endedConnections(session.id, 1);
      expect({ outcome: row!.outcome, detail: row!.detail }).toEqual({ outcome: 'cut', detail: expect.stringContaining('expired') });
      expectRowMatchesSidecar(row!);
    } finally {
      await target.close();
    }
  });

  it('expiry: the agent leaving after the deadline, before the timer ran (the event loop stalled), ends the session expired, not completed', async () => {
    const approval = await grantForward([9], 3);
    const deadline = Date.parse(approval.expiresAt!);
    const fwd = await rawForward();
    await until('the upstream dial', async () => (await theSession(approval.id)).upstreamProtocol !== null);
    // The agent leaves just before the deadline; the bastion stalls as it takes the connection
    // down, until past the deadline.
    stallBastionIn('teardown', deadline, () => true);
    await new Promise((r) => setTimeout(r, deadline - Date.now() - 200));
    fwd.destroy();
    const session = await endedSession(approval.id);
    expect(session.endReason).toBe('expired');
  });

  it('a connection opened after the deadline is refused (and told), nothing dialed to the pod', async () => {
    const target = await echoPort();
    try {
      const approval = await grantForward([target.port], 2);
      const fwd = await rawForward();
      await until('the upstream dial', async () => (await theSession(approval.id)).upstreamProtocol !== null);
      await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(approval.expiresAt!) - Date.now() + 50)));
      let c: RawConnection | undefined;
      try {
        c = fwd.open(target.port);
      } catch {
        /* the session is already gone: also fine */
      }
      if (c) await Promise.race([c.errorText, fwd.closed]);
      expect(target.accepted).toEqual([]);
      const session = await endedSession(approval.id);
      expect(session.endReason).toBe('expired');
    } finally {
      await target.close();
    }
  });
});

// ---- (7) upstream and the bastion's own dependencies failing -----------------------------------

describe('failures under a live port-forward', () => {
  it('the upstream API server dies mid-connection: the connection is cut with the reason, the session ends upstream-closed, the record is whole', async () => {
    const target = await echoPort();
    try {
      const approval = await grantForward([target.port]);
      const fwd = await rawForward();
      const c = fwd.open(target.port);
      c.data.write('before the crash');
      await until('the echo', () => c.received().toString() === 'before the crash');
      proxy.killConnections();
      const text = await within(c.errorText, 'the error stream');
      const session = await endedSession(approval.id);
      expect(session.endReason).toBe('upstream-closed');
      const [row] = await endedConnections(session.id, 1);
      expectRowMatchesSidecar(row!);
      expect(channelBytes(onDisk(row!.rawPath!), 1).toString()).toBe('before the crash');
      // The pod did not end this connection: the record and the agent say it was cut, and why.
      expect({ outcome: row!.outcome, detail: row!.detail }).toEqual({ outcome: 'cut', detail: expect.stringContaining('the upstream API server closed') });
      expect(text).toContain('the upstream API server closed');
    } finally {
      await target.close();
    }
  });

  it('the store fails as a connection starts: refused with a message, nothing reaches the pod', async () => {
    const target = await echoPort();
    try {
      const approval = await grantForward([target.port]);
      const fwd = await rawForward();
      await until('the upstream dial', async () => (await theSession(approval.id)).upstreamProtocol !== null);
      vi.spyOn(b.bastion.store.sessions, 'connectionStarted').mockRejectedValue(new Error('SQLITE_IOERR: disk I/O error'));
      const c = fwd.open(target.port);
      c.data.write('must not arrive');
      // Nothing runs that cannot be recorded: the session ends, and the connection is told why.
      expect(await within(c.errorText, 'the refusal')).toBe(`pods "web-0" is forbidden: kube-bastion ended the session under approval ${approval.id}: a connection could not be recorded`);
      expect(target.accepted).toEqual([]);
      const session = await endedSession(approval.id);
      expect(session.endReason).toBe('error');
    } finally {
      await target.close();
    }
  });

  it('the recordings folder becomes unwritable mid-session: the next connection is refused and never dialed, the open one is cut with the reason, the session ends recording-failed', async () => {
    const target = await echoPort();
    try {
      const approval = await grantForward([target.port]);
      const fwd = await rawForward();
      const c1 = fwd.open(target.port);
      c1.data.write('first');
      await until('the echo', () => c1.received().toString() === 'first');
      // The approval's folder is moved away and replaced by a place where no file can be created.
      const folder = join(b.bastion.config.recordingsDir, approval.id);
      renameSync(folder, `${folder}.moved`);
      symlinkSync('/proc/self/fdinfo', folder);
      const c2 = fwd.open(target.port);
      c2.data.write('second');
      expect(await within(c2.errorText, 'the refusal')).toContain(`approval ${approval.id}: the recording could not be written (cannot create `);
      expect(await within(c1.errorText, 'the cut')).toContain('the recording could not be written');
      expect(target.accepted).toHaveLength(1);
      const session = await endedSession(approval.id);
      expect(session.endReason).toBe('recording-failed');
    } finally {
      await target.close();
    }
  });

  it('a sidecar write fails mid-connection: the bytes not recorded are not relayed; what the agent got is exactly what is recorded', async () => {
    const flood = await podPort(drip);
    try {
      const { approval, fwd, c } = await flowing(flood.port);
      // From now on every write of the pod's bytes to the sidecar fails (the disk filled up).
      vi.spyOn(ForwardRecording.prototype, 'fromPod').mockImplementation(() => {
        throw new Error('ENOSPC: no space left on device, write');
      });
      expect(await within(c.errorText, 'the cut')).toContain('the recording could not be written');
      await c.dataClosed.catch(() => {});
      await within(fwd.closed, 'the agent connection to close');
      const session = await endedSession(approval.id);
      expect(session.endReason).toBe('recording-failed');
      const [row] = await endedConnections(session.id, 1);
      expectRowMatchesSidecar(row!);
      expect(sha256(c.received())).toBe(sha256(channelBytes(onDisk(row!.rawPath!), 1)));
    } finally {
      await flood.close();
    }
  });
});

describe('a failing recording disk under a live connection', () => {
  it('the sidecar\'s batched write fails (ENOSPC): the connection is cut with the reason on its error stream; the disk holds a prefix of what the agent got, within the bound; the row has no hashes of an incomplete sidecar', async () => {
    const flood = await podPort(drip);
    try {
      const { approval, fwd, c } = await flowing(flood.port);
      const session = await theSession(approval.id);
      const sidecar = `${session.id}.c1.raw`;
      // A first batch is on disk (within the batch window).
      const [started] = await connections(session.id);
      await until('a batch on disk', () => existsSync(onDisk(started!.rawPath!)) && channelBytes(onDisk(started!.rawPath!), 1).length > 0);
      // From now on the disk refuses this connection's sidecar (and only it): the batched write fails.
      onSidecarWrite(sidecar, () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })));
      const told = await within(c.errorText, 'the cut');
      expect(told).toContain('the recording could not be written');
      expect(told).toContain('ENOSPC');
      await within(fwd.closed, 'the agent connection to close');
      const ended = await endedSession(approval.id);
      expect(ended.endReason).toBe('recording-failed');
      const [row] = await endedConnections(session.id, 1);
      expect(row).toMatchObject({ outcome: 'cut', sha256In: null, sha256Out: null, rawSha256: null });
      // Fail closed within the documented window: what the disk has is a prefix of what the agent
      // got, and the agent got at most maxUnwrittenBytes (4 MiB) plus a chunk beyond it.
      const onDiskOut = channelBytes(onDisk(row!.rawPath!), 1);
      const got = c.received();
      expect(onDiskOut.length).toBeGreaterThan(0);
      expect(got.subarray(0, onDiskOut.length).equals(onDiskOut)).toBe(true);
      expect(got.length - onDiskOut.length).toBeLessThanOrEqual(4 * 1024 * 1024 + 64 * 1024);
    } finally {
      await flood.close();
    }
  });

  it('the sidecar\'s disk hangs: the relay stops within maxUnwrittenBytes of what is written; once the disk answers, everything flows and the record is whole', async () => {
    const flood = await podPort((s) => {
      const chunk = Buffer.alloc(64 * 1024, 0x7a);
      const pump = (): void => {
        while (!s.destroyed && s.write(chunk));
        if (!s.destroyed) s.once('drain', pump);
      };
      s.on('error', () => {});
      pump();
    });
    try {
      const { approval, fwd, c } = await flowing(flood.port);
      const session = await theSession(approval.id);
      const sidecar = `${session.id}.c1.raw`;
      // This connection's sidecar writes hang (and only them) until the gate opens.
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      onSidecarWrite(sidecar, (write) => gate.then(write));
      const [row] = await connections(session.id);
      const path = onDisk(row!.rawPath!);
      await new Promise((r) => setTimeout(r, 1500));
      const got1 = c.received().length;
      await new Promise((r) => setTimeout(r, 500));
      const got2 = c.received().length;
      const written = channelBytes(path, 1).length;
      // Held: nothing more reaches the agent, and what it got beyond the disk is within the bound.
      expect(got2).toBe(got1);
      expect(got2 - written).toBeLessThanOrEqual(4 * 1024 * 1024 + 2 * 64 * 1024);
      open();
      await until('the flow to resume', () => c.received().length > got2 + 8 * 1024 * 1024, 20_000);
      fwd.destroy();
      const [done] = await endedConnections(session.id, 1);
      expectRowMatchesSidecar(done!);
      const onDiskOut = channelBytes(path, 1);
      const received = c.received();
      expect(onDiskOut.length).toBeGreaterThanOrEqual(received.length);
      expect(onDiskOut.subarray(0, received.length).equals(received)).toBe(true);
    } finally {
      await flood.close();
    }
  }, 45_000);
});

// ---- (4) shutdown, on a bastion of its own -----------------------------------------------------

describe('shutdown', () => {
  it('the open connection is cut with the shutdown reason on its error stream; the session ends shutdown', async () => {
    const own = await startTestBastion({ sim: sim.sim, extraArgs: ['--upstream-kubeconfig', sim.kubeconfig, '--shutdown-grace', '1'] });
    const target = await echoPort();
    try {
      const approver = (await own.bastion.store.users.createUser('alice', 'approver')).token;
      const { json: approval } = await api<Approval>(own, approver, 'POST', '/v1/approvals', { agent: own.agentName, namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports: [target.port], ttlSeconds: 300, reason: 'shutdown drill' });
      const fwd = await rawForward({ bastion: own });
      const c = fwd.open(target.port);
      c.data.write('before shutdown');
      await until('the echo', () => c.received().toString() === 'before shutdown');
      const sessionId = (await own.bastion.store.sessions.list({ approvalId: approval.id }))[0]!.id;
      const stopping = own.bastion.stop();
      expect(await within(c.errorText, 'the cut')).toContain('the bastion is shutting down');
      await stopping;
      // The store is closed with the bastion: read what it wrote from disk.
      const { openStore } = await import('../../src/store/index.js');
      const store = openStore(join(own.dir, 'data'));
      try {
        const s = await store.sessions.get(sessionId);
        expect(s!.endReason).toBe('shutdown');
        const [row] = await store.sessions.listConnections(sessionId);
        expect(row!.outcome).toBe('cut');
        expectRowMatchesSidecar(row!, own.bastion.config.recordingsDir);
      } finally {
        await store.close();
      }
    } finally {
      await target.close();
    }
  });
});

// ---- (9) the audit chain -------------------------------------------------------------------------

describe('the audit chain', () => {
  it('one session.connection row per connection (refused ones too), naming the approval and agent, agreeing with the store; the chain verifies', async () => {
    const target = await echoPort();
    const other = await echoPort();
    try {
      const approval = await grantForward([target.port]);
      const fwd = await rawForward();
      const c1 = fwd.open(target.port);
      c1.data.end('audited');
      await until('the echo', () => c1.received().toString() === 'audited');
      await within(fwd.open(other.port).errorText, 'the refusal');
      fwd.destroy();
      const session = await endedSession(approval.id);
      const rows = await endedConnections(session.id, 2);
      const audit = await until('two session.connection rows', async () => {
        const r = await b.bastion.store.audit.query({ event: 'session.connection', sessionId: session.id });
        return r.length === 2 ? r : undefined;
      });
      // In the order the connections ended (the refusal may come first): compared by seq.
      const details = audit.map((r) => JSON.parse(r.details!) as Record<string, unknown>).sort((x, y) => Number(x['seq']) - Number(y['seq']));
      expect(details.map((d) => [d['seq'], d['port'], d['outcome'], d['sha256In'] ?? null, d['rawSha256'] ?? null])).toEqual(rows.map((r) => [r.seq, r.port, r.outcome, r.sha256In, r.rawSha256]));
      expect((await b.bastion.store.audit.verify()).ok).toBe(true);
      // The request's own audit row names the session (group-committed once the upgrade ends: polled).
      const req = await until('the request row', async () => (await requestRows(b, { approvalId: approval.id }))[0]);
      expect(req).toMatchObject({ sessionId: session.id });
      // An auditor filtering by approval or agent finds the connections too.
      for (const r of audit) expect({ approvalId: r.approvalId, agent: r.agentName }).toEqual({ approvalId: approval.id, agent: b.agentName });
    } finally {
      await target.close();
      await other.close();
    }
  });
});
