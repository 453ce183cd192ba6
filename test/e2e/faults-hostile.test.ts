// Fault suite, hostile agent: requests shaped to slip past the one-audit-row promise or the
// cutoff. Each asserts from outside: what the client got, the simulated cluster's request log and
// the audit rows.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { api, execPath, rawUpgrade, rawWebSocket, requestRows, simExecs, until } from '../helpers/faults.js';
import type { Approval } from '../../src/model/approval.js';
import { decodeStatus } from '../../src/protocol/status.js';
import { MAX_ARGV_LENGTH, MAX_ARG_LENGTH } from '../../src/model/approval-schema.js';

let b: TestBastion;
let alice: string;

beforeAll(async () => {
  b = await startTestBastion({ extraArgs: ['--session-setup-timeout', '2', '--hold-timeout', '1'] });
  alice = (await b.bastion.store.users.createUser('alice', 'approver')).token;
});
afterEach(async () => {
  for (const a of await b.bastion.approvals.list({ state: 'approved' })) await b.bastion.approvals.revoke(a.id, { kind: 'system', reason: 'end of case' }).catch(() => {});
  for (const a of await b.bastion.approvals.list({ state: 'pending' })) await b.bastion.approvals.deny(a.id, { kind: 'system', reason: 'end of case' }, 'end of case').catch(() => {});
});
afterAll(async () => {
  await b?.stop();
});

let seq = 0;
const tagged = (what: string) => `hostile-${what}-${++seq}`;
const WS_HEADERS = { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol': 'v5.channel.k8s.io' };

describe('an exec whose command cannot be put up for approval', () => {
  const cases: Array<[string, (tag: string) => string[]]> = [
    ['an empty program', (tag) => ['', tag]],
    [`more than ${MAX_ARGV_LENGTH} arguments`, (tag) => ['echo', tag, ...Array.from({ length: MAX_ARGV_LENGTH }, () => 'x')]],
    [`an argument longer than ${MAX_ARG_LENGTH} characters`, (tag) => ['echo', tag, 'y'.repeat(MAX_ARG_LENGTH + 1)]],
  ];
  it.each(cases)('%s: a 400 Status saying why, exactly one audit row, nothing upstream, nothing pending', async (what, argv) => {
    const tag = tagged(what.replace(/\W+/g, '-'));
    const path = execPath('web-0', 'app', argv(tag));
    const r = await rawUpgrade(b, path, WS_HEADERS);
    expect(r.status).toBe(400);
    expect(decodeStatus(Buffer.from(r.body))).toMatchObject({ kind: 'Status', status: 'Failure', code: 400 });
    const rows = await until('the request row', async () => {
      const found = await requestRows(b, { path: tag });
      return found.length > 0 ? found : undefined;
    }, 5000);
    await new Promise((res) => setTimeout(res, 200));
    expect(await requestRows(b, { path: tag })).toHaveLength(1);
    expect(rows[0]).toMatchObject({ statusCode: 400, sessionId: null });
    expect(simExecs(b.sim, tag)).toEqual([]);
    expect(await b.bastion.approvals.list({ state: 'pending' })).toEqual([]);
  });
});

describe('maxSessions: 1 raced by concurrent execs', () => {
  it('exactly one session runs upstream; every other attempt is refused (no-sessions-left, or held and not approved); one audit row each', async () => {
    const tag = tagged('race');
    const { status, json: approval } = await api<Approval>(b, alice, 'POST', '/v1/approvals', {
      agent: b.agentName, namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], maxSessions: 1, ttlSeconds: 300, reason: 'race',
    });
    expect(status).toBe(201);
    const path = execPath('web-0', 'app', ['echo', tag]);
    const N = 6;
    // An attempt that finds the approval already used is held like any request without one (here
    // for 1 s, undecided) and then refused; none may run.
    const attempts = await Promise.allSettled(Array.from({ length: N }, () => rawWebSocket(b, path)));
    const opened = attempts.filter((a) => a.status === 'fulfilled');
    expect(opened).toHaveLength(1);
    for (const a of attempts) if (a.status === 'rejected') expect(String(a.reason)).toMatch(/unexpected response (403|429)/);
    await (opened[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof rawWebSocket>>>).value.closed;
    const rows = await until('all request rows', async () => {
      const found = await requestRows(b, { path: tag });
      return found.length >= N ? found : undefined;
    }, 10_000);
    expect(rows).toHaveLength(N);
    const outcomes = rows.map((r) => r.outcome);
    expect(outcomes.filter((o) => o === 'completed')).toHaveLength(1);
    expect(outcomes.filter((o) => o !== 'completed').every((o) => o === 'no-sessions-left' || o === 'not-approved')).toBe(true);
    expect(simExecs(b.sim, tag)).toHaveLength(1);
    expect(await b.bastion.store.sessions.list({ approvalId: approval.id })).toHaveLength(1);
    expect((await b.bastion.approvals.get(approval.id))?.sessionsStarted).toBe(1);
  });
});
