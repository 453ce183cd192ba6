// Fault injection for the end-to-end fault suite (test/e2e/faults-*.test.ts): a TLS proxy in front
// of the simulated cluster that can hold exec upgrades (the bastion's upstream dial), raw SPDY and
// WebSocket clients that talk to the bastion's Kubernetes endpoint over TLS, kubectl in the
// background, and the control API. Nothing here mocks the bastion: every fault is on the wire.
import { spawn } from 'node:child_process';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { createLoopbackServingMaterial } from '../../src/tls/ca.js';
import { writeKubeconfig } from '../../src/app/kubeconfig.js';
import { SpdyConnection } from '../../src/transport/spdy/connection.js';
import type { SpdyStream } from '../../src/transport/spdy/stream.js';
import type { SimCluster } from '../../src/sim/cluster.js';
import type { Approval } from '../../src/model/approval.js';
import type { AuditRecord } from '../../src/store/index.js';
import type { TestBastion } from './bastion.js';
import { freshHome, kubectlPath } from './kubectl.js';

// ---- waiting ---------------------------------------------------------------------------------

/** Polls `check` until it returns a value other than undefined/false (event-driven tests use it for outside state). */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `promise`, or a failure naming `what` after `timeoutMs`. */
export function within<T>(promise: Promise<T>, what: string, timeoutMs = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs))),
  ]).finally(() => clearTimeout(timer));
}

// ---- the holding proxy -----------------------------------------------------------------------

export type HoldMode =
  /** Forward at once. */
  | 'pass'
  /** Keep the upgrade request here until released: nothing reaches the cluster before. */
  | 'hold-request'
  /** Forward the request at once (the command starts upstream) but keep the cluster's answer (101 and output) until released. */
  | 'hold-response';

export interface ProxiedUpgrade {
  method: string;
  path: string;
  mode: HoldMode;
  /** Lets the held part through (a no-op once passed). */
  release(): void;
  /** Whether the bastion's side of this connection is gone. */
  clientGone(): boolean;
  readonly clientClosed: Promise<void>;
  /** Whether the request was forwarded to the cluster. */
  forwarded(): boolean;
  /** Bytes the cluster sent that are being held (not yet released). */
  heldBytes(): number;
  /** Bytes the cluster sent that were held, then dropped because the bastion had gone. */
  droppedBytes(): number;
}

export interface HoldingProxy {
  url: string;
  /** A kubeconfig for the bastion's --upstream-kubeconfig: the proxy, with the cluster's token. */
  kubeconfig: string;
  /** How an exec/attach upgrade is treated, by its request-target (default: pass). */
  modeFor: (path: string) => HoldMode;
  readonly upgrades: ProxiedUpgrade[];
  /** REST requests to hold until released (default: none), by method and request-target. */
  holdRest: (method: string, path: string) => boolean;
  /** The held REST request whose request-target contains `marker`, once it arrived; `release` forwards it. */
  heldRestFor(marker: string): Promise<{ path: string; release(): void }>;
  /** The upgrade whose request-target contains `marker`, once it arrived. */
  upgradeFor(marker: string): Promise<ProxiedUpgrade>;
  /** Cuts every connection, as a crashed API server would. */
  killConnections(): void;
  close(): Promise<void>;
}

/**
 * An HTTPS proxy between the bastion and the simulated cluster. REST calls pass; exec/attach
 * upgrades pass, or are held (request or response) until the test releases them: a slow or stuck
 * upstream dial, injected on the wire.
 */
export async function startHoldingProxy(sim: SimCluster): Promise<HoldingProxy> {
  const tls = await createLoopbackServingMaterial('kube-bastion fault proxy CA');
  const target = new URL(sim.url);
  const sockets = new Set<Duplex>();
  const upgrades: ProxiedUpgrade[] = [];
  const waiters: Array<() => void> = [];
  const agent = new https.Agent({ keepAlive: true, ca: sim.caPem });

  const server = https.createServer({ cert: tls.serving.cert, key: tls.serving.key });
  server.on('connection', (s: Duplex) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const heldRest: Array<{ path: string; release(): void }> = [];
  server.on('request', (req, res) => {
    if (proxy.holdRest(req.method ?? '', req.url ?? '')) {
      let go: () => void = () => {};
      const released = new Promise<void>((r) => (go = r));
      heldRest.push({ path: req.url ?? '', release: () => go() });
      for (const w of waiters.splice(0)) w();
      void released.then(() => forwardRest(req, res));
      return;
    }
    forwardRest(req, res);
  });
  const forwardRest = (req: IncomingMessage, res: import('node:http').ServerResponse): void => {
    const up = https.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  };
  server.on('upgrade', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    client.on('error', () => {});
    const mode = proxy.modeFor(req.url ?? '');
    let released = mode === 'pass';
    let gone = false;
    let forwarded = false;
    let dropped = 0;
    let upstream: TLSSocket | undefined;
    const held: Buffer[] = [];
    let onRelease: (() => void) | undefined;
    const clientClosed = new Promise<void>((resolve) => client.once('close', () => {
      gone = true;
      upstream?.destroy();
      resolve();
    }));
    const forward = (): void => {
      if (gone || forwarded) return;
      forwarded = true;
      upstream = tlsConnect({ host: target.hostname, port: Number(target.port), ca: sim.caPem, servername: 'localhost' });
      sockets.add(upstream);
      upstream.on('close', () => {
        sockets.delete(upstream!);
        client.destroy();
      });
      upstream.on('error', () => {});
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        if (!released) held.push(chunk);
        else if (gone) dropped += chunk.length;
        else client.write(chunk);
      });
    };
    const upgrade: ProxiedUpgrade = {
      method: req.method ?? '',
      path: req.url ?? '',
      mode,
      release: () => {
        if (released) return;
        released = true;
        if (mode === 'hold-request') forward();
        for (const chunk of held.splice(0)) {
          if (gone) dropped += chunk.length;
          else client.write(chunk);
        }
        onRelease?.();
      },
      clientGone: () => gone,
      clientClosed,
      forwarded: () => forwarded,
      heldBytes: () => held.reduce((n, c) => n + c.length, 0),
      droppedBytes: () => dropped + held.reduce((n, c) => n + c.length, 0),
    };
    upgrades.push(upgrade);
    for (const w of waiters.splice(0)) w();
    if (mode !== 'hold-request') forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const url = `https://127.0.0.1:${port}`;
  const dir = mkdtempSync(join(tmpdir(), 'kb-fault-proxy-'));
  const kubeconfig = join(dir, 'upstream.kubeconfig');
  await writeKubeconfig(kubeconfig, { server: url, caPem: tls.ca.cert, token: sim.token, name: 'fault-proxy' });

  const proxy: HoldingProxy = {
    url,
    kubeconfig,
    modeFor: () => 'pass',
    upgrades,
    holdRest: () => false,
    heldRestFor: async (marker) => {
      for (;;) {
        const found = heldRest.find((h) => h.path.includes(marker));
        if (found) return found;
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    upgradeFor: async (marker) => {
      for (;;) {
        const found = upgrades.find((u) => u.path.includes(marker));
        if (found) return found;
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    killConnections: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      for (const u of upgrades) u.release();
      for (const h of heldRest) h.release();
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}

// ---- the control API ---------------------------------------------------------------------------

export async function api<T = unknown>(b: TestBastion, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(`${b.bastion.controlUrl}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as T };
}

/** A stream grant through the control API (as an approver would). */
export async function grantExec(b: TestBastion, token: string, pod: string, container: string, ttlSeconds: number, agent = b.agentName): Promise<Approval> {
  const { status, json } = await api<Approval>(b, token, 'POST', '/v1/approvals', { agent, namespace: 'demo', pod, container, verbs: ['exec'], ttlSeconds, reason: 'fault suite' });
  if (status !== 201) throw new Error(`grant failed: ${status} ${JSON.stringify(json)}`);
  return json;
}

export async function revoke(b: TestBastion, token: string, id: string, reason: string): Promise<Approval> {
  const { status, json } = await api<Approval>(b, token, 'POST', `/v1/approvals/${id}/revoke`, { reason });
  if (status !== 200) throw new Error(`revoke failed: ${status} ${JSON.stringify(json)}`);
  return json;
}

/** The pending approval a held request created, once it exists. */
export function pendingApproval(b: TestBastion, match: (a: Approval) => boolean): Promise<Approval> {
  return until('a pending approval', async () => (await b.bastion.approvals.list({ state: 'pending' })).find(match));
}

// ---- what the outside sees ---------------------------------------------------------------------

/** The request rows of the audit log for one approval (or matching `path`). */
export async function requestRows(b: TestBastion, filter: { approvalId?: string; path?: string }): Promise<Array<AuditRecord & { outcome: string | null; detail: string | null }>> {
  const rows = await b.bastion.store.audit.query({ event: 'request', limit: 10_000 });
  return rows
    .filter((r) => (filter.approvalId === undefined || r.approvalId === filter.approvalId) && (filter.path === undefined || (r.path ?? '').includes(filter.path)))
    .map((r) => {
      const details = r.details ? (JSON.parse(r.details) as { outcome?: string; detail?: string }) : {};
      return { ...r, outcome: details.outcome ?? null, detail: details.detail ?? null };
    });
}

/** Exec/attach upgrades that reached the simulated cluster whose request-target contains `marker`. */
export function simExecs(sim: SimCluster, marker: string): string[] {
  return sim.requests.entries.filter((e) => e.upgrade && e.path.includes(marker)).map((e) => `${e.method} ${e.path}`);
}

/** Nanosecond timestamps (`date +%s%N` lines) in some output. */
export function stamps(out: Buffer | string): bigint[] {
  return out
    .toString()
    .split(/\r?\n/)
    .filter((l) => /^\d{19}$/.test(l.trim()))
    .map((l) => BigInt(l.trim()));
}

/** An ISO instant (millisecond precision) as the last nanosecond it may stand for. */
export function isoToNs(iso: string): bigint {
  // The ISO text is truncated to the millisecond: the real instant is within the next 1 ms.
  return BigInt(Date.parse(iso)) * 1_000_000n + 999_999n;
}

/** A shell loop printing `date +%s%N` every 20 ms, tagged so the sim's request log can find it. */
export function ticker(tag: string): string[] {
  return ['sh', '-c', `: ${tag}; echo pid=$$ >&2; while :; do date +%s%N; sleep 0.02; done`];
}

// ---- kubectl in the background ------------------------------------------------------------------

export interface BackgroundKubectl {
  readonly done: Promise<{ code: number | null; stdout: Buffer; stderr: string }>;
  stdout(): Buffer;
  stderr(): string;
  kill(): void;
}

export function startKubectl(minor: number, kubeconfig: string, args: string[], env: Record<string, string> = {}): BackgroundKubectl {
  const child = spawn(kubectlPath(minor), ['--kubeconfig', kubeconfig, ...args], { env: { PATH: process.env.PATH ?? '', HOME: freshHome(), ...env } });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.on('error', () => {});
  child.stdin.end();
  const done = new Promise<{ code: number | null; stdout: Buffer; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err })),
  );
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void done.then(() => clearTimeout(timer));
  return { done, stdout: () => Buffer.concat(out), stderr: () => err, kill: () => child.kill('SIGKILL') };
}

// ---- raw clients of the bastion's Kubernetes endpoint --------------------------------------------

export function execPath(pod: string, container: string, command: string[], flags = 'stdout=true&stderr=true', namespace = 'demo'): string {
  const q = new URLSearchParams();
  for (const arg of command) q.append('command', arg);
  q.set('container', container);
  return `/api/v1/namespaces/${namespace}/pods/${pod}/exec?${q.toString()}&${flags}`;
}

export interface RawSpdy {
  /** Everything the bastion sent on the socket after the 101, as raw bytes (to prove no HTTP text follows). */
  rawAfterUpgrade(): Buffer;
  /** Opens the streams kubectl would (error, stdout, stderr), one after the other. */
  openStreams(): Promise<void>;
  error(): Buffer;
  stdout(): Buffer;
  stderr(): Buffer;
  readonly closed: Promise<void>;
  destroy(): void;
}

/**
 * POST `path` to the bastion asking for a SPDY/3.1 upgrade to `protocol`; resolves with the
 * upgraded socket and the bytes that came with the 101, rejects with the answer when refused.
 */
export function spdyUpgrade(b: TestBastion, path: string, protocol: string, token = b.agentToken): Promise<{ socket: Duplex; head: Buffer }> {
  const url = new URL(b.bastion.kubeUrl);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: url.hostname,
      port: url.port,
      method: 'POST',
      path,
      ca: b.bastion.tls.caPem,
      headers: {
        Authorization: `Bearer ${token}`,
        Connection: 'Upgrade',
        Upgrade: 'SPDY/3.1',
        'X-Stream-Protocol-Version': protocol,
        'Content-Length': '0',
      },
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => reject(new Error(`no upgrade: ${res.statusCode} ${body}`)));
    });
    req.on('error', reject);
    req.on('upgrade', (_res, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {});
      resolve({ socket, head });
    });
    req.end();
  });
}

/** A SPDY/3.1 exec upgrade to the bastion; resolves once the 101 arrived (no streams are opened). */
export async function rawSpdyUpgrade(b: TestBastion, path: string): Promise<RawSpdy> {
  const { socket, head } = await spdyUpgrade(b, path, 'v4.channel.k8s.io');
  const raw: Buffer[] = [head];
  socket.on('data', (d: Buffer) => raw.push(d));
  const conn = new SpdyConnection(socket, { role: 'client', head });
  conn.on('error', () => {});
  const got = { error: [] as Buffer[], stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return {
    rawAfterUpgrade: () => Buffer.concat(raw),
    openStreams: async () => {
      for (const type of ['error', 'stdout', 'stderr'] as const) {
        let stream: SpdyStream;
        try {
          stream = conn.openStream({ streamtype: type });
        } catch {
          return;
        }
        stream.on('error', () => {});
        stream.on('data', (c: Buffer) => got[type].push(c));
      }
    },
    error: () => Buffer.concat(got.error),
    stdout: () => Buffer.concat(got.stdout),
    stderr: () => Buffer.concat(got.stderr),
    closed,
    destroy: () => socket.destroy(),
  };
}

/** A raw HTTPS upgrade request with the given headers; resolves with the status line and body (or 101). */
export function rawUpgrade(b: TestBastion, path: string, headers: Record<string, string>, method = 'GET', token = b.agentToken): Promise<{ status: number; body: string }> {
  const url = new URL(b.bastion.kubeUrl);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: url.hostname,
      port: url.port,
      method,
      path,
      ca: b.bastion.tls.caPem,
      headers: { Authorization: `Bearer ${token}`, Connection: 'Upgrade', ...headers },
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 101, body: '' });
    });
    req.on('error', reject);
    req.end();
  });
}

export interface RawWebSocket {
  ws: WebSocket;
  /** Binary messages, channel byte first. */
  messages: Buffer[];
  channel(n: number): Buffer;
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Every byte the bastion sent on the socket after the handshake (frames only, never HTTP text). */
  rawAfterUpgrade(): Buffer;
}

/** A v5.channel.k8s.io exec WebSocket to the bastion, opened (101 received). */
export function rawWebSocket(b: TestBastion, path: string, protocol = 'v5.channel.k8s.io'): Promise<RawWebSocket> {
  const url = b.bastion.kubeUrl.replace(/^https/, 'wss') + path;
  const ws = new WebSocket(url, [protocol], { ca: b.bastion.tls.caPem, headers: { Authorization: `Bearer ${b.agentToken}` } });
  const messages: Buffer[] = [];
  const raw: Buffer[] = [];
  ws.on('message', (data: Buffer) => messages.push(Buffer.from(data)));
  ws.on('error', () => {});
  ws.on('upgrade', (res) => {
    res.socket.on('data', (d: Buffer) => raw.push(d));
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    ws.once('open', () =>
      resolve({
        ws,
        messages,
        channel: (n) => Buffer.concat(messages.filter((m) => m[0] === n).map((m) => m.subarray(1))),
        closed,
        rawAfterUpgrade: () => Buffer.concat(raw),
      }),
    );
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
    ws.once('error', reject);
  });
}
