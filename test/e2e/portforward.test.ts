// kubectl port-forward through the bastion: held, approved with ports, relayed upstream over
// plain SPDY, recorded per connection. Real kubectl in every form it speaks (SPDY for 1.27, the
// WebSocket tunnel for 1.30 with the variable, 1.31 and 1.33); the pod's ports are real processes
// on the simulated cluster (demo/web-0: HTTP on 8080, an echo on 7000).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Approval } from '../../src/model/approval.js';
import type { ForwardedConnection } from '../../src/model/forward.js';
import type { ReviewRecord } from '../../src/model/review-record-schema.js';
import { readRawSidecar } from '../../src/recording/raw-sidecar.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { approvalIds, controlApi, newPending } from '../helpers/control.js';
import { httpGet, kubectlPortForward, roundTrip, sha256, stopForward, type Forward } from '../helpers/portforward.js';

let b: TestBastion;
let approver: string;
beforeAll(async () => {
  b = await startTestBastion();
  approver = (await b.bastion.store.users.createUser('alice', 'approver')).token;
});
afterAll(async () => {
  await b?.stop();
});

/** Starts kubectl port-forward, waits for its held request, approves it with `ports`; resolves with the running forward. */
async function heldThenApproved(opts: { minor: number; env?: Record<string, string>; ports: number[]; approve: number[]; ttlSeconds?: number }): Promise<{ fwd: Forward; approval: Approval }> {
  const known = await approvalIds(b, approver);
  const starting = kubectlPortForward({ minor: opts.minor, kubeconfig: b.agentKubeconfig, ports: opts.ports, ...(opts.env ? { env: opts.env } : {}), startTimeoutMs: 30_000 });
  starting.catch(() => {});
  const [pending] = await newPending(b, approver, known);
  expect(pending!.scope).toEqual({ kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'] });
  const approved = await controlApi<Approval>(b, approver, 'POST', `/v1/approvals/${pending!.id}/approve`, { ports: opts.approve, ...(opts.ttlSeconds ? { ttlSeconds: opts.ttlSeconds } : {}) });
  expect(approved.status).toBe(200);
  return { fwd: await starting, approval: approved.json };
}

/** Ends an approval once its test is done, so the next port-forward is held again rather than admitted under it. */
async function retire(approval: Approval): Promise<void> {
  const r = await controlApi<Approval>(b, approver, 'POST', `/v1/approvals/${approval.id}/revoke`, { reason: 'test done' });
  expect([200, 409]).toContain(r.status);
}

async function sessionOf(approvalId: string) {
  const sessions = await b.bastion.store.sessions.list({ approvalId });
  expect(sessions).toHaveLength(1);
  return sessions[0]!;
}

async function connectionsOf(sessionId: string): Promise<ForwardedConnection[]> {
  return b.bastion.store.sessions.listConnections(sessionId);
}

/** A recording's path on disk: the store keeps it relative to the recordings directory. */
function onDisk(rawPath: string): string {
  return join(b.dir, 'recordings', rawPath);
}

/** The bytes of a raw sidecar's channel. */
function channelBytes(path: string, channel: number): Buffer {
  return Buffer.concat(readRawSidecar(readFileSync(path)).records.filter((r) => r.channel === channel).map((r) => Buffer.from(r.data)));
}

/** The port-forward upgrades the sim received since `from`, as "METHOD transport". */
function upstreamForwardsSince(from: number): string[] {
  return b.sim.requests.entries
    .slice(from)
    .filter((e) => e.path.split('?')[0]!.endsWith('/pods/web-0/portforward'))
    .map((e) => `${e.method} ${e.transport ?? 'none'}`);
}

const CLIENTS: Array<{ label: string; minor: number; env: Record<string, string>; transport: string; protocol: string }> = [
  { label: '1.27 (SPDY)', minor: 27, env: {}, transport: 'spdy', protocol: 'portforward.k8s.io' },
  { label: '1.30 with KUBECTL_PORT_FORWARD_WEBSOCKETS=true (tunnel)', minor: 30, env: { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'true' }, transport: 'websocket', protocol: 'SPDY/3.1+portforward.k8s.io' },
  { label: '1.31 (tunnel)', minor: 31, env: {}, transport: 'websocket', protocol: 'SPDY/3.1+portforward.k8s.io' },
  { label: '1.33 (tunnel)', minor: 33, env: {}, transport: 'websocket', protocol: 'SPDY/3.1+portforward.k8s.io' },
];

describe.each(CLIENTS)('kubectl $label port-forward demo/web-0 through the bastion', (client) => {
  it('is held, approved for 8080 and 7000, answers HTTP, echoes 8 MiB byte for byte, and records each connection', async () => {
    const before = b.sim.requests.entries.length;
    const { fwd, approval } = await heldThenApproved({ minor: client.minor, env: client.env, ports: [8080, 7000], approve: [8080, 7000] });
    let input: Buffer;
    try {
      const answer = await httpGet(fwd.local.get(8080)!, `/through-the-bastion-1.${client.minor}`);
      expect(answer).toEqual({ status: 200, body: `hello from demo/web-0 (container app, port 8080): GET /through-the-bastion-1.${client.minor}\n` });
      input = randomBytes(8 * 1024 * 1024);
      const echoed = await roundTrip(fwd.local.get(7000)!, input);
      expect(echoed.length).toBe(input.length);
      expect(sha256(echoed)).toBe(sha256(input));
    } finally {
      await stopForward(fwd);
      await retire(approval);
    }
    // The transport the agent used, with no silent fallback; upstream is always plain SPDY.
    const session = await sessionOf(approval.id);
    expect({ transport: session.transport, protocol: session.protocol, operation: session.operation }).toEqual({ transport: client.transport, protocol: client.protocol, operation: 'portforward' });
    expect(upstreamForwardsSince(before)).toEqual(['POST spdy']);
    await expect.poll(async () => (await b.bastion.store.sessions.get(session.id))?.endedAt ?? null, { timeout: 10_000 }).not.toBeNull();
    // The agent ended it: a completed port-forward, whose recorded Status is a Success.
    const ended = (await b.bastion.store.sessions.get(session.id))!;
    expect({ endReason: ended.endReason, status: ended.status }).toEqual({ endReason: 'completed', status: expect.objectContaining({ status: 'Success' }) });

    const connections = await connectionsOf(session.id);
    expect(connections.map((c) => ({ seq: c.seq, port: c.port, outcome: c.outcome, protocol: c.protocol }))).toEqual([
      { seq: 1, port: 8080, outcome: 'closed', protocol: 'http/1.x' },
      { seq: 2, port: 7000, outcome: 'closed', protocol: 'unrecognised' },
    ]);
    const echo = connections[1]!;
    expect({ bytesIn: echo.bytesIn, bytesOut: echo.bytesOut, sha256In: echo.sha256In, sha256Out: echo.sha256Out }).toEqual({
      bytesIn: input.length,
      bytesOut: input.length,
      sha256In: sha256(input),
      sha256Out: sha256(input),
    });
    // The raw sidecar reproduces the bytes each way, and its own hash matches the row.
    expect(sha256(channelBytes(onDisk(echo.rawPath!), 0))).toBe(sha256(input));
    expect(sha256(channelBytes(onDisk(echo.rawPath!), 1))).toBe(sha256(input));
    expect(sha256(readFileSync(onDisk(echo.rawPath!)))).toBe(echo.rawSha256);
    const http = connections[0]!;
    expect(channelBytes(onDisk(http.rawPath!), 0).toString()).toMatch(new RegExp(`^GET /through-the-bastion-1\\.${client.minor} HTTP/1\\.1\\r\\n`));
    expect(channelBytes(onDisk(http.rawPath!), 1).toString()).toContain(`hello from demo/web-0 (container app, port 8080): GET /through-the-bastion-1.${client.minor}\n`);
  });
});

describe('the approval names the ports', () => {
  it('a connection to a port outside them is refused on its error stream, never dialed, and recorded as refused', async () => {
    const before = b.sim.requests.entries.length;
    const { fwd, approval } = await heldThenApproved({ minor: 33, ports: [8080, 7000], approve: [8080] });
    const answer = await httpGet(fwd.local.get(8080)!, '/allowed');
    expect(answer.status).toBe(200);
    const refused = await roundTrip(fwd.local.get(7000)!, Buffer.from('not for you')).catch(() => Buffer.alloc(0));
    expect(refused.length).toBe(0);
    // kubectl prints the error stream's text and ends its session.
    expect(await fwd.exited).toBe(1);
    await retire(approval);
    expect(fwd.stderr()).toContain(`kube-bastion refused the connection to port 7000 of pod web-0: approval ${approval.id} allows port-forward to port(s) 8080 only`);
    const session = await sessionOf(approval.id);
    await expect.poll(async () => (await connectionsOf(session.id)).map((c) => `${c.port} ${c.outcome}`), { timeout: 10_000 }).toEqual(['8080 closed', '7000 refused']);
    const row = (await connectionsOf(session.id))[1]!;
    expect(row).toMatchObject({ bytesIn: 0, bytesOut: 0, rawPath: null, detail: expect.stringContaining('allows port-forward to port(s) 8080 only') });
    // Upstream saw one port-forward session and, inside it, nothing for 7000 (the sim's pod logs no echo connection).
    expect(upstreamForwardsSince(before)).toEqual(['POST spdy']);
    // The approval's review record lists the refused connection as outside the approved ports.
    const record = await controlApi<ReviewRecord>(b, approver, 'GET', `/v1/approvals/${approval.id}/record`);
    expect(record.status).toBe(200);
    const connections = record.json.sessions[0]!.connections!;
    expect(connections.map((c) => [c.port, c.outcome, c.inScope])).toEqual([
      [8080, 'closed', true],
      [7000, 'refused', false],
    ]);
    expect(connections[1]!.why).toContain('outside the approved ports');
    expect(record.json.conformance.refused).toBeGreaterThanOrEqual(1);
  });

  it('approving a held port-forward without ports is refused: the approver must name them', async () => {
    const known = await approvalIds(b, approver);
    const starting = kubectlPortForward({ minor: 33, kubeconfig: b.agentKubeconfig, ports: [8080], startTimeoutMs: 30_000 });
    starting.catch(() => {});
    const [pending] = await newPending(b, approver, known);
    const refused = await controlApi<{ error: { code: string; field: string } }>(b, approver, 'POST', `/v1/approvals/${pending!.id}/approve`, {});
    expect(refused.status).toBe(400);
    expect(refused.json.error).toMatchObject({ code: 'INVALID_FIELD', field: 'ports' });
    expect((await controlApi<Approval>(b, approver, 'POST', `/v1/approvals/${pending!.id}/deny`, { reason: 'test over' })).status).toBe(200);
    await expect(starting).rejects.toThrow(/port-forward did not start/);
  });
});

describe('the approval ends', () => {
  it('at expiry the open connection is cut with the reason, no byte moves after the deadline, and kubectl ends', async () => {
    const { fwd, approval } = await heldThenApproved({ minor: 33, ports: [7000], approve: [7000], ttlSeconds: 3 });
    const deadline = Date.parse(approval.expiresAt!);
    const socket = connect({ host: '127.0.0.1', port: fwd.local.get(7000)! });
    let received = 0;
    socket.on('data', (d: Buffer) => (received += d.length));
    socket.on('error', () => {});
    const closedAt = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    const sender = setInterval(() => socket.write(Buffer.alloc(1024, 0x61)), 20);
    try {
      await expect.poll(() => received, { timeout: 10_000 }).toBeGreaterThan(0);
      const closed = await closedAt;
      expect(closed).toBeGreaterThanOrEqual(deadline);
      expect(await fwd.exited).toBe(1);
      expect(fwd.stderr()).toContain(`approval ${approval.id} expired`);
    } finally {
      clearInterval(sender);
      socket.destroy();
      await stopForward(fwd);
    }
    const session = await sessionOf(approval.id);
    await expect.poll(async () => (await b.bastion.store.sessions.get(session.id))?.endReason ?? null, { timeout: 10_000 }).toBe('expired');
    const [conn] = await connectionsOf(session.id);
    expect(conn).toMatchObject({ port: 7000, outcome: 'cut', detail: expect.stringContaining('expired') });
    // Every recorded byte (each direction is recorded before it is relayed) is from before the deadline.
    const start = Date.parse(conn!.startedAt);
    const records = readRawSidecar(readFileSync(onDisk(conn!.rawPath!))).records.filter((r) => r.channel === 0 || r.channel === 1);
    expect(records.length).toBeGreaterThan(0);
    for (const r of records) expect(start + Number(r.timeUs) / 1000).toBeLessThanOrEqual(deadline + 5);
  });
});
