// Fault suite, part 3: sessions that fail before they start. Broken agent handshakes (a bad
// Sec-WebSocket-Key, an unknown subprotocol, a SPDY client that never opens its streams) and a
// recordings directory that cannot be written: nothing reaches the cluster's exec endpoint, and the
// request's audit row says why (its `outcome`). The bastion runs with --session-setup-timeout 2.
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { execPath, grantExec, rawSpdyUpgrade, rawUpgrade, requestRows, simExecs, startKubectl, until } from '../helpers/faults.js';
import { decodeStatus } from '../../src/protocol/status.js';

let b: TestBastion;
let alice: string;

beforeAll(async () => {
  b = await startTestBastion({ extraArgs: ['--session-setup-timeout', '2'] });
  alice = (await b.bastion.store.users.createUser('alice', 'approver')).token;
});
afterEach(async () => {
  for (const a of await b.bastion.approvals.list({ state: 'approved' })) await b.bastion.approvals.revoke(a.id, { kind: 'system', reason: 'end of case' }).catch(() => {});
});
afterAll(async () => {
  await b?.stop();
});

let seq = 0;
const tagged = (what: string) => `fault-${what}-${++seq}`;

async function rowFor(approvalId: string) {
  return until('the request row', async () => (await requestRows(b, { approvalId })).find((r) => r.stream === 'exec'));
}

const WS_HEADERS = { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol': 'v5.channel.k8s.io' };

describe('broken agent handshakes after the gate', () => {
  it('a bad Sec-WebSocket-Key: 400 with a Status, nothing upstream, no session, audit outcome error', async () => {
    const tag = tagged('bad-key');
    const approval = await grantExec(b, alice, 'web-0', 'app', 300);
    const r = await rawUpgrade(b, execPath('web-0', 'app', ['echo', tag]), { ...WS_HEADERS, 'Sec-WebSocket-Key': 'not-a-key' });
    expect(r.status).toBe(400);
    expect(decodeStatus(Buffer.from(r.body)).message).toContain('Sec-WebSocket-Key');
    const row = await rowFor(approval.id);
    expect(row).toMatchObject({ outcome: 'error', statusCode: 400, sessionId: null });
    expect(row.detail).toMatch(/^handshake refused \(BAD_STREAM_REQUEST\): .*Sec-WebSocket-Key/i);
    expect(simExecs(b.sim, tag)).toEqual([]);
    expect(await b.bastion.store.sessions.list({ approvalId: approval.id })).toEqual([]);
  });

  it('an unknown subprotocol: 403 with a Status, nothing upstream, no session, audit outcome error', async () => {
    const tag = tagged('bad-protocol');
    const approval = await grantExec(b, alice, 'web-0', 'app', 300);
    const r = await rawUpgrade(b, execPath('web-0', 'app', ['echo', tag]), { ...WS_HEADERS, 'Sec-WebSocket-Protocol': 'v9.channel.example.com' });
    expect(r.status).toBe(403);
    expect(decodeStatus(Buffer.from(r.body)).message).toMatch(/subprotocol|protocol/i);
    const row = await rowFor(approval.id);
    expect(row).toMatchObject({ outcome: 'error', statusCode: 403, sessionId: null });
    expect(row.detail).toMatch(/^handshake refused \(NO_COMMON_PROTOCOL\): /);
    expect(simExecs(b.sim, tag)).toEqual([]);
    expect(await b.bastion.store.sessions.list({ approvalId: approval.id })).toEqual([]);
  });

  it('a SPDY client that never opens its streams: dropped at the setup timeout, nothing upstream, audit outcome setup-timeout', async () => {
    const tag = tagged('spdy-silent');
    const approval = await grantExec(b, alice, 'web-0', 'app', 300);
    const client = await rawSpdyUpgrade(b, execPath('web-0', 'app', ['echo', tag]));
    await client.closed;
    expect(client.stdout().length).toBe(0);
    const row = await rowFor(approval.id);
    expect(row).toMatchObject({ outcome: 'setup-timeout', sessionId: null });
    expect(simExecs(b.sim, tag)).toEqual([]);
    expect(await b.bastion.store.sessions.list({ approvalId: approval.id })).toEqual([]);
    // The bastion never answered with HTTP text after its 101.
    expect(client.rawAfterUpgrade().toString('latin1')).not.toContain('HTTP/1.1');
  });
});

describe.each([
  { label: 'kubectl 1.27 (SPDY)', minor: 27 },
  { label: 'kubectl 1.33 (WebSocket)', minor: 33 },
])('a recordings directory that cannot be written, $label', ({ minor }) => {
  it('refuses before dialing: Status says why, the session row ends recording-failed, nothing upstream', async () => {
    const tag = tagged(`unwritable-${minor}`);
    const approval = await grantExec(b, alice, 'web-0', 'app', 300);
    // As root a chmod would not stop the writes: the approval's folder points into /proc instead.
    mkdirSync(b.bastion.config.recordingsDir, { recursive: true });
    symlinkSync('/proc/self/fdinfo', join(b.bastion.config.recordingsDir, approval.id));
    const r = await startKubectl(minor, b.agentKubeconfig, ['exec', '-n', 'demo', 'web-0', '--', 'echo', tag]).done;
    expect(r.code).not.toBe(0);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toContain(`approval ${approval.id}: the recording could not be written`);
    expect(simExecs(b.sim, tag)).toEqual([]);
    const sessions = await until('the session row', async () => {
      const rows = await b.bastion.store.sessions.list({ approvalId: approval.id });
      return rows.length > 0 && rows.every((s) => s.state === 'ended') ? rows : undefined;
    });
    expect(sessions.map((s) => s.endReason)).toEqual(['recording-failed']);
    expect((await rowFor(approval.id)).outcome).toBe('recording-failed');
  });
});
