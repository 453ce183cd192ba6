// The review record of an approval (GET /v1/approvals/:id/record, `kube-bastion record ID`, the
// evidence bundle's record.json) answers the five questions from its own fields, with real
// kubectl 1.27 and 1.33 through the bastion: who acted, which rule held the request (with the
// policy version and the rule as written), who decided, the scope with every attempt outside it
// (refused, with reasons), and the sessions with their recordings.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKubectl } from '../helpers/kubectl.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { approvalIds, controlApi, newPending } from '../helpers/control.js';
import type { Approval } from '../../src/model/approval.js';
import type { ReviewRecord } from '../../src/model/review-record-schema.js';
import { ReviewRecordSchema } from '../../src/model/review-record-schema.js';
import { DEFAULT_POLICY_YAML } from '../../src/policy/default-policy.js';
import { policyHash } from '../../src/policy/load.js';

let b: TestBastion;
let ann: string;
let bob: string;

beforeAll(async () => {
  // A short hold, so out-of-scope attempts end quickly when nobody decides them.
  b = await startTestBastion({ extraArgs: ['--hold-timeout', '2'] });
  ann = (await b.bastion.store.users.createUser('ann', 'approver')).token;
  bob = (await b.bastion.store.users.createUser('bob', 'approver')).token;
});
afterAll(async () => {
  await b?.stop();
});

function api<T>(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  return controlApi<T>(b, token, method, path, body);
}

async function record(id: string): Promise<ReviewRecord> {
  const { status, json } = await api<ReviewRecord>(ann, 'GET', `/v1/approvals/${id}/record`);
  expect(status).toBe(200);
  // The answer is what the OpenAPI document says it is.
  return ReviewRecordSchema.parse(json);
}

async function pending(known: Set<string>): Promise<Approval> {
  return (await newPending(b, ann, known))[0]!;
}

function ids(): Promise<Set<string>> {
  return approvalIds(b, ann);
}

const ADDRESS = /^(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1):\d+$/;

describe.each([27, 33])('the review record with kubectl 1.%i', (minor) => {
  it('a grant with maxSessions 1 and a command allow-list: the second session and another command are refused and listed with reasons', async () => {
    const { status, json: grant } = await api<Approval>(ann, 'POST', '/v1/approvals', {
      agent: b.agentName,
      namespace: 'demo',
      pod: 'web-0',
      container: 'app',
      verbs: ['exec'],
      commands: [['echo', `allowed-${minor}`]],
      maxSessions: 1,
      ttlSeconds: 120,
      reason: 'one echo',
    });
    expect(status).toBe(201);
    const exec = (argv: string[]) => runKubectl({ minor, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '-c', 'app', '--', ...argv] });

    const first = await exec(['echo', `allowed-${minor}`]);
    expect(first.stdout.toString()).toBe(`allowed-${minor}\n`);
    expect(first.code).toBe(0);
    // Both are held on approvals of their own, nobody decides, and the hold ends: refused.
    const [second, other] = await Promise.all([exec(['echo', `allowed-${minor}`]), exec(['id'])]);
    expect(second.code).toBe(1);
    expect(other.code).toBe(1);
    expect(second.stdout.toString() + other.stdout.toString()).toBe('');

    const r = await record(grant.id);
    // The one session that ran, inside the scope, with its recording.
    expect(r.sessions.map((s) => [s.command, s.endReason, s.exitCode, s.inScope])).toEqual([[['echo', `allowed-${minor}`], 'completed', 0, true]]);
    expect(r.sessions[0]!.recording).toBe(`/v1/sessions/${r.sessions[0]!.id}/recording`);
    expect(r.sessions[0]!.client).toMatch(ADDRESS);
    expect(r.conformance.verdict).toBe('inside-scope');
    expect(r.conformance.used).toBe(1);

    const refused = r.conformance.attempts.filter((a) => a.refused);
    const why = (argv: string[]) => refused.filter((a) => JSON.stringify(a.command) === JSON.stringify(argv)).map((a) => a.why);
    // kubectl 1.33 tries WebSocket then SPDY: every attempt is listed, each with its reason.
    expect(why(['echo', `allowed-${minor}`]).length).toBeGreaterThan(0);
    for (const w of why(['echo', `allowed-${minor}`])) expect(w).toMatch(/^outside the scope: no sessions left \(1 of 1 used\); refused under approval apr_/);
    expect(why(['id']).length).toBeGreaterThan(0);
    for (const w of why(['id'])) expect(w).toMatch(/^outside the scope: command \["id"\] is not in the approved commands \[\["echo","allowed-\d+"\]\]; refused under approval apr_/);
    for (const a of refused) {
      expect(a.inScope).toBe(false);
      expect(a.relation).toBe('other-approval');
      expect(a.source).toMatch(ADDRESS);
    }
    expect(r.conformance.outside).toBe(refused.length);
    expect(r.answers.scopeKept).toContain(`${refused.length} attempts outside the scope, ${refused.length} refused`);
  });
});

describe('the five answers, each from the record\'s own fields', () => {
  let r: ReviewRecord;
  let held: Approval;

  beforeAll(async () => {
    const known = await ids();
    const run = runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '--', 'sh', '-c', 'echo reviewed'] });
    held = await pending(known);
    expect((await api(ann, 'POST', `/v1/approvals/${held.id}/approve`, { ttlSeconds: 120, reason: 'reason A' })).status).toBe(200);
    const done = await run;
    expect(done.stdout.toString()).toBe('reviewed\n');
    expect((await api(bob, 'POST', `/v1/approvals/${held.id}/revoke`, { reason: 'reason B' })).status).toBe(200);
    r = await record(held.id);
  });

  it('1. who acted: the agent, its id, and the client address of the held request', () => {
    expect(r.agent.name).toBe(b.agentName);
    expect(r.agent.id).toBe(held.agentId);
    expect(r.requested.by).toBe(`agent:${b.agentName}`);
    expect(r.requested.client).toMatch(ADDRESS);
    expect(r.requested.command).toEqual(['sh', '-c', 'echo reviewed']);
    expect(r.answers.who).toContain(`agent ${b.agentName} (${held.agentId})`);
    expect(r.answers.who).toContain(r.requested.client!);
  });

  it('2. approval was needed: the rule, the policy version and the rule as written', () => {
    expect(r.policy.needed).toBe(true);
    expect(r.policy.rule).toBe('pod-streams-need-approval');
    expect(r.policy.policyHash).toBe(policyHash(DEFAULT_POLICY_YAML));
    expect(r.policy.policyOrigin).toBe('built-in');
    expect(DEFAULT_POLICY_YAML).toContain(r.policy.ruleText!);
    expect(r.policy.ruleText).toContain(`name: ${r.policy.rule}`);
    expect(r.answers.approvalNeeded).toContain(`policy rule ${r.policy.rule}`);
  });

  it('3. who decided: approval (reason A) and revocation (reason B), each with its author; nothing overwritten', () => {
    const decided = r.decisions.filter((d) => d.event === 'approval.approved' || d.event === 'approval.revoked').map((d) => [d.event, d.actor, d.reason]);
    expect(decided).toEqual([
      ['approval.approved', 'user:ann', 'reason A'],
      ['approval.revoked', 'user:bob', 'reason B'],
    ]);
    expect(r.decisions[0]!.event).toBe('approval.requested');
    expect(r.answers.approvedBy).toContain('approved by user:ann');
    expect(r.answers.approvedBy).toContain('reason A');
    expect(r.answers.approvedBy).toContain('revoked by user:bob');
    expect(r.answers.approvedBy).toContain('reason B');
  });

  it('4. the scope and its window; everything that ran stayed inside', () => {
    expect(r.scope.approved).toEqual(held.scope);
    expect(r.scope.state).toBe('revoked');
    expect(r.scope.window.until).toBe(r.approval.revokedAt);
    expect(r.conformance.verdict).toBe('inside-scope');
    expect(r.answers.scopeKept).toContain('exec into demo/web-0 container app, commands ["sh","-c","echo reviewed"]');
    // The held request itself arrived before the approval existed, and is listed: it ran under it.
    const ran = r.conformance.attempts.filter((a) => a.relation === 'this-approval' && !a.refused);
    expect(ran.map((a) => [a.command, a.inScope, a.sessionId])).toEqual([[['sh', '-c', 'echo reviewed'], true, r.sessions[0]!.id]]);
    expect(ran[0]!.source).toMatch(ADDRESS);
  });

  it('5. what happened: the session, its exit code and its recording', () => {
    expect(r.sessions).toHaveLength(1);
    const s = r.sessions[0]!;
    expect([s.operation, s.command, s.endReason, s.exitCode]).toEqual(['exec', ['sh', '-c', 'echo reviewed'], 'completed', 0]);
    expect(s.castSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(r.answers.happened).toContain(`${s.id} exec ["sh","-c","echo reviewed"] ended completed exit 0`);
  });

  it('the CLI prints it, and the evidence bundle carries it as record.json', async () => {
    const cli = (...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
        execFile(process.execPath, [resolve('bin/kube-bastion.js'), ...args], { env: { ...process.env, KUBE_BASTION_URL: b.bastion.controlUrl, KUBE_BASTION_TOKEN: ann, XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'kb-config-')) } }, (err, stdout, stderr) =>
          done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );
    const text = await cli('record', held.id);
    expect(text.stderr).toBe('');
    expect(text.code).toBe(0);
    for (const answer of Object.values(r.answers).slice(0, 3)) expect(text.stdout).toContain(answer);
    expect(text.stdout).toContain('approval.revoked');
    const json = await cli('record', held.id, '-o', 'json');
    expect(ReviewRecordSchema.parse(JSON.parse(json.stdout)).approvalId).toBe(held.id);

    const out = join(mkdtempSync(join(tmpdir(), 'kb-record-')), 'evidence');
    const exported = await cli('export', '--approval', held.id, '--out', out);
    expect(exported.code).toBe(0);
    const bundled = ReviewRecordSchema.parse(JSON.parse(readFileSync(join(out, 'record.json'), 'utf8')));
    expect(bundled.answers.approvedBy).toBe(r.answers.approvedBy);
    expect(bundled.sessions.map((s) => s.id)).toEqual(r.sessions.map((s) => s.id));
    const verified = await cli('verify', out, '--fingerprint', b.bastion.signingKey.fingerprint);
    expect(verified.stdout).toContain(`signed by key ${b.bastion.signingKey.keyId} (${b.bastion.signingKey.fingerprint}, pinned with --fingerprint)`);
    expect(verified.code).toBe(0);
  });
});
