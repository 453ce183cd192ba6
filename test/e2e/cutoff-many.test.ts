// Many sessions under one approval, cut at one instant: by its expiry, and by a revocation. Real
// kubectl (SPDY 1.27 and WebSocket 1.33) against a real bastion. Every client gets the Status that
// names the approval; no timestamp the pod printed after the deadline (or revokedAt) reaches a
// client or the recording; what each recording holds is exactly what its client received.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSim, type StartedSim } from '../helpers/sim.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { grantExec, isoToNs, revoke, stamps, startKubectl, ticker, until, type BackgroundKubectl } from '../helpers/faults.js';
import { readRawSidecar, RawChannel } from '../../src/recording/raw-sidecar.js';
import { decodeStatus } from '../../src/protocol/status.js';
import type { Session } from '../../src/store/index.js';

let sim: StartedSim;
let b: TestBastion;
let alice: string;

beforeAll(async () => {
  sim = await startSim();
  b = await startTestBastion({ sim: sim.sim });
  alice = (await b.bastion.store.users.createUser('alice', 'approver')).token;
});
afterAll(async () => {
  await b?.stop();
  await sim?.sim.stop();
});

/** Four SPDY and four WebSocket clients: enough to cut many at once on a shared 2-core machine. */
const MINORS = [27, 33, 27, 33, 27, 33, 27, 33];

interface Run {
  tag: string;
  kubectl: BackgroundKubectl;
}

function startAll(what: string): Run[] {
  return MINORS.map((minor, i) => {
    const tag = `many-${what}-${minor}-${i}`;
    return { tag, kubectl: startKubectl(minor, b.agentKubeconfig, ['exec', '-n', 'demo', 'shell-0', '-c', 'main', '--', ...ticker(tag)]) };
  });
}

/** The ended session rows of an approval, one per client, found by the tag in each command. */
async function endedRows(approvalId: string, runs: Run[]): Promise<Map<string, Session>> {
  const rows = await until(`the ${runs.length} sessions of ${approvalId} to end`, async () => {
    const all = await b.bastion.store.sessions.list({ approvalId });
    return all.length === runs.length && all.every((s) => s.state === 'ended') ? all : undefined;
  });
  return new Map(runs.map((r) => [r.tag, rows.find((s) => s.command.join(' ').includes(r.tag))!]));
}

function recorded(session: Session): { stdout: Buffer; status: string } {
  const records = readRawSidecar(readFileSync(session.rawPath!)).records;
  const stdout = Buffer.concat(records.filter((r) => r.channel === RawChannel.stdout).map((r) => r.data));
  const status = records.find((r) => r.channel === RawChannel.status);
  return { stdout, status: status ? (decodeStatus(status.data).message ?? '') : '' };
}

async function expectAllCut(runs: Run[], approvalId: string, cutAt: string, message: string, reason: string): Promise<void> {
  const results = await Promise.all(runs.map((r) => r.kubectl.done));
  const rows = await endedRows(approvalId, runs);
  const limit = isoToNs(cutAt);
  for (const [i, r] of runs.entries()) {
    const got = results[i]!;
    expect(got.code, r.tag).not.toBe(0);
    expect(got.stderr, r.tag).toContain(message);
    expect(stamps(got.stdout).length, r.tag).toBeGreaterThan(0);
    expect(stamps(got.stdout).filter((s) => s > limit), r.tag).toEqual([]);
    const row = rows.get(r.tag)!;
    expect(row, r.tag).toMatchObject({ endReason: reason, exitCode: null });
    const rec = recorded(row);
    // Nothing after the cut was recorded, and the recording is what the client got, byte for byte.
    expect(stamps(rec.stdout).filter((s) => s > limit), r.tag).toEqual([]);
    expect(rec.stdout.equals(got.stdout), r.tag).toBe(true);
    expect(rec.status, r.tag).toContain(message);
  }
}

describe('eight sessions under one approval, cut at one instant', () => {
  it('expiry: every client gets the expiry Status; no byte printed after expiresAt reaches a client or a recording', async () => {
    const approval = await grantExec(b, alice, 'shell-0', 'main', 20);
    const runs = startAll('expiry');
    await until('ticks at every kubectl', () => runs.every((r) => stamps(r.kubectl.stdout()).length >= 3), 20_000);
    await expectAllCut(runs, approval.id, approval.expiresAt!, `approval ${approval.id} expired at ${approval.expiresAt}`, 'expired');
  });

  it('revocation: every client gets the revocation Status; no byte printed after revokedAt reaches a client or a recording', async () => {
    const approval = await grantExec(b, alice, 'shell-0', 'main', 300);
    const runs = startAll('revoke');
    await until('ticks at every kubectl', () => runs.every((r) => stamps(r.kubectl.stdout()).length >= 3), 20_000);
    const revoked = await revoke(b, alice, approval.id, 'many at once');
    await expectAllCut(runs, approval.id, revoked.revokedAt!, `approval ${approval.id} was revoked by user:alice (many at once)`, 'revoked');
  });
});
