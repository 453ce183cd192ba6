// Who is waiting on a held request, with real kubectl: every audit row of a held request and of a
// session names the client's address and port, the approval shows the rule and policy version that
// held it, and a held request whose kubectl is killed ends `abandoned` after the grace (approving
// it then is refused, saying nobody is waiting).
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshHome, kubectlPath } from '../helpers/kubectl.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { controlApi, newPending as waitForPending } from '../helpers/control.js';
import type { Approval } from '../../src/model/approval.js';
import type { AuditRecord } from '../../src/store/index.js';

let b: TestBastion;
let approverToken: string;
const GRACE_SECONDS = 2;

beforeAll(async () => {
  b = await startTestBastion({ extraArgs: ['--hold-timeout', '60', '--abandon-grace', String(GRACE_SECONDS)] });
  approverToken = (await b.bastion.store.users.createUser('alice', 'approver')).token;
});
afterAll(async () => {
  await b?.stop();
});

function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  return controlApi<T>(b, approverToken, method, path, body);
}

async function until<T>(what: string, read: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 25))) {
    const v = await read();
    if (v !== undefined) return v;
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function newPending(known: Set<string>): Promise<Approval> {
  return (await waitForPending(b, approverToken, known))[0]!;
}

async function approvalIds(): Promise<Set<string>> {
  return new Set((await api<{ items: Approval[] }>('GET', '/v1/approvals')).json.items.map((a) => a.id));
}

function startKubectl(minor: number, args: string[]) {
  const child = spawn(kubectlPath(minor), ['--kubeconfig', b.agentKubeconfig, ...args], { env: { PATH: process.env.PATH ?? '', HOME: freshHome() } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end();
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout: out, stderr: err })));
  return { done, kill: () => child.kill('SIGKILL') };
}

/** The rows of one approval and of the sessions under it, in order. */
async function rowsOf(approvalId: string, since: number): Promise<AuditRecord[]> {
  const rows = await b.auditSince(since);
  const sessions = new Set(rows.filter((r) => r.approvalId === approvalId && r.sessionId).map((r) => r.sessionId));
  return rows.filter((r) => r.approvalId === approvalId || (r.sessionId !== null && sessions.has(r.sessionId)));
}

const CLIENT = /^127\.0\.0\.1:\d{2,5}$/;

describe.each([27, 33])('kubectl 1.%i', (minor) => {
  it('every audit row of a held exec and of its session carries the client address and port; the approval names the rule and policy version', async () => {
    const known = await approvalIds();
    const since = await b.auditCount();
    const run = startKubectl(minor, ['exec', '-n', 'demo', 'web-0', '--', 'echo', 'addressed']);
    const pending = await newPending(known);
    expect(pending.request).toMatchObject({ client: expect.stringMatching(CLIENT), rule: 'pod-streams-need-approval', policyHash: b.bastion.policy.current.hash });
    expect((await api('POST', `/v1/approvals/${pending.id}/approve`, { ttlSeconds: 60 })).status).toBe(200);
    const r = await run.done;
    expect(r.stdout).toBe('addressed\n');
    expect(r.code).toBe(0);
    // kubectl can exit before the bastion has written the session's last rows.
    const rows = await until('the session.end row', async () => {
      const all = await rowsOf(pending.id, since);
      return all.some((x) => x.event === 'session.end') && all.some((x) => x.event === 'request' && x.sessionId !== null) ? all : undefined;
    });
    const events = rows.map((row) => row.event);
    expect(events).toEqual(expect.arrayContaining(['approval.requested', 'approval.approved', 'session.start', 'session.end', 'request']));
    for (const row of rows.filter((x) => x.event !== 'approval.approved')) expect(row.source, `${row.event} row ${row.id}`).toMatch(CLIENT);
    // The session row keeps it too, and the row that started it is the one that ran it.
    const start = rows.find((x) => x.event === 'session.start')!;
    const session = await b.bastion.store.sessions.get(start.sessionId!);
    expect(session!.client).toBe(start.source);
    expect(rows.find((x) => x.event === 'session.end')!.source).toBe(start.source);
    // The next kubectl version is held again.
    expect((await api('POST', `/v1/approvals/${pending.id}/revoke`, { reason: 'test done' })).status).toBe(200);
  });

  it('a held REST request: approval.requested and the request row carry the client address', async () => {
    const known = await approvalIds();
    const since = await b.auditCount();
    const run = startKubectl(minor, ['get', 'secret', '-n', 'demo', 'db-credentials', '-o', 'name']);
    const pending = await newPending(known);
    expect(pending.request).toMatchObject({ client: expect.stringMatching(CLIENT), rule: 'secrets-need-approval', policyHash: b.bastion.policy.current.hash });
    expect((await api('POST', `/v1/approvals/${pending.id}/approve`, {})).status).toBe(200);
    const r = await run.done;
    expect(r.stdout).toBe('secret/db-credentials\n');
    const rows = (await rowsOf(pending.id, since)).filter((x) => x.event !== 'approval.approved');
    expect(rows.map((x) => x.event)).toEqual(expect.arrayContaining(['approval.requested', 'request']));
    for (const row of rows) expect(row.source, `${row.event} row ${row.id}`).toMatch(CLIENT);
    expect((await api('POST', `/v1/approvals/${pending.id}/revoke`, { reason: 'test done' })).status).toBe(200);
  });

  it('a held exec whose kubectl is killed shows nobody waiting, ends abandoned after the grace, and cannot be approved', async () => {
    const known = await approvalIds();
    const since = await b.auditCount();
    const run = startKubectl(minor, ['exec', '-n', 'demo', 'web-0', '--', 'echo', 'never']);
    const pending = await newPending(known);
    expect(pending.nobodyWaitingSince).toBeNull();
    run.kill();
    await run.done;
    const unwaited = await until('nobody waiting', async () => {
      const { json } = await api<Approval>('GET', `/v1/approvals/${pending.id}`);
      return json.nobodyWaitingSince !== null ? json : undefined;
    });
    expect(unwaited.state).toBe('pending');
    const abandoned = await until('abandoned', async () => {
      const { json } = await api<Approval>('GET', `/v1/approvals/${pending.id}`);
      return json.state === 'abandoned' ? json : undefined;
    });
    const waitedMs = Date.now() - Date.parse(unwaited.nobodyWaitingSince!);
    expect(waitedMs).toBeGreaterThanOrEqual(GRACE_SECONDS * 1000 - 50);
    expect(abandoned.nobodyWaitingSince).toBe(unwaited.nobodyWaitingSince);
    const { status, json } = await api<{ error: { code: string; message: string } }>('POST', `/v1/approvals/${pending.id}/approve`, {});
    expect(status).toBe(400);
    expect(json.error.code).toBe('INVALID_STATE');
    expect(json.error.message).toBe(
      `approval ${pending.id} is abandoned; nobody is waiting for it (every client that asked went away at ${unwaited.nobodyWaitingSince} and none came back within ${GRACE_SECONDS} s), so it can no longer be approved; the agent has to ask again`,
    );
    const rows = await rowsOf(pending.id, since);
    expect(rows.filter((x) => x.event === 'approval.abandoned').map((x) => x.actor)).toEqual(['system']);
    expect(rows.some((x) => x.event === 'approval.approved')).toBe(false);
    expect((await api<{ items: Approval[] }>('GET', '/v1/approvals?state=abandoned')).json.items.map((a) => a.id)).toContain(pending.id);
  });
});
