// Fault suite, part 1: the cutoff at every phase of a session. An approval revoked (or expiring)
// while the bastion dials upstream, while the agent has not yet opened its SPDY streams, and while
// the session relays: nothing the pod printed after the cutoff reaches the client (pod timestamps
// from `date +%s%N` against the approval's revokedAt / expiresAt), the session never ends
// `completed`, and the client's Status names the approval, who revoked it and why. The upstream
// dial is held on the wire by a TLS proxy between the bastion and the simulated cluster.
import { existsSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSim, type StartedSim } from '../helpers/sim.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import {
  api,
  execPath,
  grantExec,
  isoToNs,
  pendingApproval,
  rawSpdyUpgrade,
  rawUpgrade,
  requestRows,
  revoke,
  simExecs,
  stamps,
  startHoldingProxy,
  startKubectl,
  ticker,
  until,
  type HoldingProxy,
} from '../helpers/faults.js';
import type { Approval } from '../../src/model/approval.js';
import { decodeStatus } from '../../src/protocol/status.js';

let sim: StartedSim;
let proxy: HoldingProxy;
let b: TestBastion;
let alice: string;

beforeAll(async () => {
  sim = await startSim();
  proxy = await startHoldingProxy(sim.sim);
  b = await startTestBastion({ sim: sim.sim, extraArgs: ['--upstream-kubeconfig', proxy.kubeconfig, '--session-setup-timeout', '3'] });
  alice = (await b.bastion.store.users.createUser('alice', 'approver')).token;
});
// Each case grants its own approval; none may be left usable for the next (an approval without a
// command list covers any command in its container).
afterEach(async () => {
  for (const a of await b.bastion.approvals.list({ state: 'approved' })) await b.bastion.approvals.revoke(a.id, { kind: 'system', reason: 'end of case' }).catch(() => {});
});
afterAll(async () => {
  await b?.stop();
  await proxy?.close();
  await sim?.sim.stop();
});

const CLIENTS = [
  { label: 'kubectl 1.27 (SPDY)', minor: 27 },
  { label: 'kubectl 1.33 (WebSocket)', minor: 33 },
];

let seq = 0;
/** A tag unique to one case, carried in the exec command so the sim's request log can find it. */
const tagFor = (what: string, minor: number): string => `fault-${what}-${minor}-${++seq}`;

async function sessionsOf(approvalId: string) {
  return b.bastion.store.sessions.list({ approvalId });
}

/** The session rows of an approval once all of them have ended. */
async function endedSessions(approvalId: string) {
  return until(`the sessions of ${approvalId} to end`, async () => {
    const rows = await sessionsOf(approvalId);
    return rows.length > 0 && rows.every((s) => s.state === 'ended') ? rows : undefined;
  });
}

async function outcomeOf(approvalId: string): Promise<string[]> {
  return until(`the request row of ${approvalId}`, async () => {
    const rows = (await requestRows(b, { approvalId })).filter((r) => r.stream === 'exec');
    return rows.length > 0 ? rows.map((r) => r.outcome ?? 'none') : undefined;
  });
}

describe.each(CLIENTS)('revocation while the upstream dial is in progress, $label', ({ minor }) => {
  it('held before it reaches the cluster: nothing runs upstream, the client gets the Status, the session is revoked and recorded', async () => {
    const tag = tagFor('dial-request', minor);
    proxy.modeFor = (path) => (path.includes(tag) ? 'hold-request' : 'pass');
    const approval = await grantExec(b, alice, 'shell-0', 'main', 300);
    const run = startKubectl(minor, b.agentKubeconfig, ['exec', '-n', 'demo', 'shell-0', '--', ...ticker(tag)]);
    const held = await proxy.upgradeFor(tag);
    // The bastion has written the session row and the recorder before dialing.
    const [open] = await sessionsOf(approval.id);
    expect(open).toMatchObject({ state: 'open' });
    await revoke(b, alice, approval.id, 'dial-phase drill');
    const r = await run.done;
    // The bastion gave up the dial; letting the held request through now reaches nobody.
    await held.clientClosed;
    held.release();
    expect(held.forwarded()).toBe(false);
    expect(simExecs(sim.sim, tag)).toEqual([]);
    expect(r.stdout.length).toBe(0);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`approval ${approval.id} was revoked by user:alice (dial-phase drill)`);
    const [session] = await endedSessions(approval.id);
    expect(session).toMatchObject({ endReason: 'revoked', bytesOut: 0 });
    expect(existsSync(session!.castPath!)).toBe(true);
    expect(await outcomeOf(approval.id)).toEqual(['revoked']);
  });

  it('cluster answer held (the command already started upstream): none of its output reaches the client', async () => {
    const tag = tagFor('dial-response', minor);
    proxy.modeFor = (path) => (path.includes(tag) ? 'hold-response' : 'pass');
    const approval = await grantExec(b, alice, 'shell-0', 'main', 300);
    const run = startKubectl(minor, b.agentKubeconfig, ['exec', '-n', 'demo', 'shell-0', '--', ...ticker(tag)]);
    const held = await proxy.upgradeFor(tag);
    // The 101 and a few ticks are waiting in the proxy: produced before the revocation, and still never relayed.
    await until('ticks held in the proxy', () => held.heldBytes() > 300);
    const revoked = await revoke(b, alice, approval.id, 'answer-phase drill');
    const r = await run.done;
    await held.clientClosed;
    held.release();
    expect(held.droppedBytes()).toBeGreaterThan(300);
    expect(simExecs(sim.sim, tag)).toHaveLength(1);
    expect(r.stdout.length).toBe(0);
    expect(stamps(r.stdout).filter((s) => s > isoToNs(revoked.revokedAt!))).toEqual([]);
    expect(r.stderr).toContain(`approval ${approval.id} was revoked by user:alice (answer-phase drill)`);
    const [session] = await endedSessions(approval.id);
    expect(session).toMatchObject({ endReason: 'revoked', bytesOut: 0 });
    expect(existsSync(session!.castPath!)).toBe(true);
    expect(await outcomeOf(approval.id)).toEqual(['revoked']);
  });

  it('expiry while the dial is held: Status names the expiry, nothing ran upstream, the session is expired', async () => {
    const tag = tagFor('dial-expiry', minor);
    proxy.modeFor = (path) => (path.includes(tag) ? 'hold-request' : 'pass');
    // Held for a decision, then approved for 2 s: the session reaches the dial well inside that.
    const run = startKubectl(minor, b.agentKubeconfig, ['exec', '-n', 'demo', 'shell-0', '--', ...ticker(tag)]);
    const pending = await pendingApproval(b, (a) => a.scope.kind === 'stream' && JSON.stringify(a.scope).includes(tag));
    const approved = await api<Approval>(b, alice, 'POST', `/v1/approvals/${pending.id}/approve`, { ttlSeconds: 2 });
    expect(approved.status).toBe(200);
    const held = await proxy.upgradeFor(tag);
    const r = await run.done;
    await held.clientClosed;
    held.release();
    expect(held.forwarded()).toBe(false);
    expect(simExecs(sim.sim, tag)).toEqual([]);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toContain(`approval ${pending.id} expired at ${approved.json.expiresAt}`);
    const [session] = await endedSessions(pending.id);
    expect(session).toMatchObject({ endReason: 'expired', bytesOut: 0 });
    expect(await outcomeOf(pending.id)).toContain('expired');
  });

  it('revocation during the relay: no timestamp printed after revokedAt reaches kubectl; the session ends revoked', async () => {
    const tag = tagFor('relay', minor);
    const approval = await grantExec(b, alice, 'shell-0', 'main', 300);
    const run = startKubectl(minor, b.agentKubeconfig, ['exec', '-n', 'demo', 'shell-0', '--', ...ticker(tag)]);
    await until('ticks at kubectl', () => stamps(run.stdout()).length >= 10);
    const revoked = await revoke(b, alice, approval.id, 'relay-phase drill');
    const r = await run.done;
    const got = stamps(r.stdout);
    expect(got.length).toBeGreaterThanOrEqual(10);
    expect(got.filter((s) => s > isoToNs(revoked.revokedAt!))).toEqual([]);
    expect(r.stderr).toContain(`approval ${approval.id} was revoked by user:alice (relay-phase drill)`);
    expect(simExecs(sim.sim, tag)).toHaveLength(1);
    const [session] = await endedSessions(approval.id);
    expect(session).toMatchObject({ endReason: 'revoked', exitCode: null });
    expect(await outcomeOf(approval.id)).toEqual(['revoked']);
  });

  it('a dial that outlasts the setup timeout: the Status blames the upstream, nothing ran, the session ends setup-timeout', async () => {
    const tag = tagFor('dial-timeout', minor);
    proxy.modeFor = (path) => (path.includes(tag) ? 'hold-request' : 'pass');
    const approval = await grantExec(b, alice, 'shell-0', 'main', 300);
    const run = startKubectl(minor, b.agentKubeconfig, ['exec', '-n', 'demo', 'shell-0', '--', ...ticker(tag)]);
    const held = await proxy.upgradeFor(tag);
    const r = await run.done;
    await held.clientClosed;
    held.release();
    expect(held.forwarded()).toBe(false);
    expect(simExecs(sim.sim, tag)).toEqual([]);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toContain(`approval ${approval.id}: the upstream API server did not answer within 3 s`);
    const [session] = await endedSessions(approval.id);
    expect(session).toMatchObject({ endReason: 'setup-timeout', bytesOut: 0 });
    expect(await outcomeOf(approval.id)).toEqual(['setup-timeout']);
  });

  it('the agent vanishes while the dial is held: the command that reached upstream has its session row and recording', async () => {
    const tag = tagFor('dial-vanish', minor);
    proxy.modeFor = (path) => (path.includes(tag) ? 'hold-request' : 'pass');
    const approval = await grantExec(b, alice, 'shell-0', 'main', 300);
    const run = startKubectl(minor, b.agentKubeconfig, ['exec', '-n', 'demo', 'shell-0', '--', ...ticker(tag)]);
    const held = await proxy.upgradeFor(tag);
    run.kill();
    await run.done;
    held.release();
    const [session] = await endedSessions(approval.id);
    expect(session!.endReason).not.toBe('completed');
    expect(existsSync(session!.castPath!)).toBe(true);
    // Whatever reached the cluster is accounted for by that row.
    expect(simExecs(sim.sim, tag).length).toBeLessThanOrEqual(1);
  });
});

describe('agent revocation while its exec waits for the pod lookup (the lookup held at the proxy)', () => {
  it('is refused as a revoked agent, with an audit row saying so; nothing reaches the cluster', async () => {
    const tag = tagFor('lookup-revoke', 0);
    const { agent, token } = await b.bastion.store.agents.createAgent('late-agent');
    const admin = (await b.bastion.store.users.createUser('root', 'admin')).token;
    const approval = await grantExec(b, alice, 'busybox', 'busybox', 300, 'late-agent');
    proxy.holdRest = (method, p) => method === 'GET' && p.startsWith('/api/v1/namespaces/default/pods/busybox');
    try {
      const answer = rawUpgrade(
        b,
        execPath('busybox', 'busybox', ['echo', tag], 'stdout=true&stderr=true', 'default'),
        { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol': 'v5.channel.k8s.io' },
        'GET',
        token,
      );
      const lookup = await proxy.heldRestFor('/namespaces/default/pods/busybox');
      expect((await api(b, admin, 'POST', '/v1/agents/late-agent/revoke')).status).toBe(200);
      lookup.release();
      const r = await answer;
      expect(r.status).toBe(401);
      expect(decodeStatus(Buffer.from(r.body)).message).toContain('revoked agent token');
      expect(simExecs(sim.sim, tag)).toEqual([]);
      expect((await b.bastion.approvals.get(approval.id))!.state).toBe('revoked');
      const rows = await until('the request row', async () => {
        const found = (await requestRows(b, { path: tag })).filter((row) => row.agentId === agent.id);
        return found.length > 0 ? found : undefined;
      });
      expect(rows.map((row) => [row.outcome, row.statusCode])).toEqual([['agent-revoked', 401]]);
    } finally {
      proxy.holdRest = () => false;
    }
  });
});

describe('an agent that has not opened its SPDY streams yet (raw SPDY client)', () => {
  const path = (tag: string) => execPath('shell-0', 'main', ticker(tag));

  it('revoked in between: when it opens them it gets the Status on the error stream, and nothing ran', async () => {
    const tag = tagFor('spdy-setup-revoke', 0);
    const approval = await grantExec(b, alice, 'shell-0', 'main', 300);
    const client = await rawSpdyUpgrade(b, path(tag));
    await revoke(b, alice, approval.id, 'setup-phase drill');
    await client.openStreams();
    await client.closed;
    const status = decodeStatus(client.error());
    expect(status.message).toContain(`approval ${approval.id} was revoked by user:alice (setup-phase drill)`);
    expect(client.stdout().length).toBe(0);
    expect(simExecs(sim.sim, tag)).toEqual([]);
    // No session was started: nothing had been accepted when the lease ended.
    expect(await sessionsOf(approval.id)).toEqual([]);
    expect(await outcomeOf(approval.id)).toEqual(['revoked']);
  });

  it('expired in between: the Status names the expiry, and nothing ran', async () => {
    const tag = tagFor('spdy-setup-expiry', 0);
    const approval = await grantExec(b, alice, 'shell-0', 'main', 2);
    const client = await rawSpdyUpgrade(b, path(tag));
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(approval.expiresAt!) - Date.now()) + 100));
    await client.openStreams();
    await client.closed;
    const status = decodeStatus(client.error());
    expect(status.message).toContain(`approval ${approval.id} expired at ${approval.expiresAt}`);
    expect(client.stdout().length).toBe(0);
    expect(simExecs(sim.sim, tag)).toEqual([]);
    for (const s of await sessionsOf(approval.id)) expect(s).toMatchObject({ state: 'ended', endReason: 'expired' });
    expect(await outcomeOf(approval.id)).toEqual(['expired']);
  });
});
