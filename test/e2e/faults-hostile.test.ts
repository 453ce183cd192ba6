// Fault suite, hostile agent: requests shaped to slip past the one-audit-row promise or the
// cutoff. Each asserts from outside: what the client got, the simulated cluster's request log and
// the audit rows.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { execPath, rawUpgrade, requestRows, simExecs, until } from '../helpers/faults.js';
import { decodeStatus } from '../../src/protocol/status.js';
import { MAX_ARGV_LENGTH, MAX_ARG_LENGTH } from '../../src/model/approval-schema.js';

let b: TestBastion;

beforeAll(async () => {
  b = await startTestBastion({ extraArgs: ['--session-setup-timeout', '2'] });
});
afterEach(async () => {
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
