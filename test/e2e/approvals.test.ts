// Approvals with real kubectl through the bastion: held exec and REST calls decided through the
// control API, scope checks, byte-exact relay over SPDY and WebSocket, and the hard cutoff at
// expiry and on revocation.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshHome, kubectlPath, runKubectl, type KubectlResult } from '../helpers/kubectl.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { controlApi } from '../helpers/control.js';
import type { Approval } from '../../src/model/approval.js';

let b: TestBastion;
let approverToken: string;

beforeAll(async () => {
  // A short hold, so out-of-scope attempts end quickly with "not decided in time".
  b = await startTestBastion({ extraArgs: ['--hold-timeout', '3'] });
  approverToken = (await b.bastion.store.users.createUser('alice', 'approver')).token;
});
afterAll(async () => {
  await b?.stop();
});

const CLIENTS = [
  { label: '1.27 (SPDY)', minor: 27, env: {} as Record<string, string>, upgrades: ['POST'] },
  { label: '1.29 (WebSocket)', minor: 29, env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'true' }, upgrades: ['GET'] },
  { label: '1.33 (WebSocket)', minor: 33, env: {} as Record<string, string>, upgrades: ['GET'] },
];

function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  return controlApi<T>(b, approverToken, method, path, body);
}

async function pendingFor(agent: string, known: Set<string>): Promise<Approval> {
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 25))) {
    const { json } = await api<{ items: Approval[] }>('GET', `/v1/approvals?state=pending&agent=${agent}`);
    const fresh = json.items.find((a) => !known.has(a.id));
    if (fresh) return fresh;
  }
  throw new Error('no pending approval appeared');
}

async function allApprovalIds(): Promise<Set<string>> {
  const { json } = await api<{ items: Approval[] }>('GET', '/v1/approvals');
  return new Set(json.items.map((a) => a.id));
}

/** Starts kubectl in the background; resolves with its result. */
function startKubectl(minor: number, env: Record<string, string>, args: string[], stdin?: Buffer) {
  const child = spawn(kubectlPath(minor), ['--kubeconfig', b.agentKubeconfig, ...args], { env: { PATH: process.env.PATH ?? '', HOME: freshHome(), ...env } });
  const out: Buffer[] = [];
  let err = '';
  let firstByteAt: number | undefined;
  child.stdout.on('data', (d: Buffer) => {
    firstByteAt ??= Date.now();
    out.push(d);
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.on('error', () => {});
  child.stdin.end(stdin);
  const done = new Promise<KubectlResult & { exitedAt: number }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err, exitedAt: Date.now() })),
  );
  return { done, firstByteAt: () => firstByteAt, kill: () => child.kill('SIGKILL') };
}

async function grant(scope: Record<string, unknown>, ttlSeconds = 60): Promise<Approval> {
  const { status, json } = await api<Approval>('POST', '/v1/approvals', { agent: b.agentName, ttlSeconds, reason: 'test grant', ...scope });
  expect(status).toBe(201);
  return json;
}

describe.each(CLIENTS)('held exec with kubectl $label', (client) => {
  it('is held until approved through the API, then the same command finishes', async () => {
    const known = await allApprovalIds();
    const since = await b.auditCount();
    const run = startKubectl(client.minor, client.env, ['exec', '-n', 'demo', 'web-0', '--', 'sh', '-c', `echo approved-$((40+${client.minor}))`]);
    const pending = await pendingFor(b.agentName, known);
    expect(pending.scope).toMatchObject({ kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] });
    expect(pending.requestedBy).toBe(`agent:${b.agentName}`);
    const approved = await api<Approval>('POST', `/v1/approvals/${pending.id}/approve`, { ttlSeconds: 120 });
    expect(approved.status).toBe(200);
    const r = await run.done;
    expect(r.stderr).toBe('');
    expect(r.stdout.toString()).toBe(`approved-${40 + client.minor}\n`);
    expect(r.code).toBe(0);
    expect((await allApprovalIds()).size).toBe(known.size + 1);
    // The upgrade's request row is written once its session has ended (group-committed): polled.
    const upgrades = async () => (await b.auditSince(since)).filter((row) => row.event === 'request' && row.path?.includes('/exec')).map((row) => `${row.method} ${row.approvalId}`);
    await expect.poll(upgrades, { timeout: 5000 }).toEqual(client.upgrades.map((m) => `${m} ${pending.id}`));
  });

  it('denied: kubectl prints the Status naming the approval and exits non-zero; one pending approval per run', async () => {
    const known = await allApprovalIds();
    const run = startKubectl(client.minor, client.env, ['exec', '-n', 'demo', 'web-0', '--', 'echo', 'never']);
    const pending = await pendingFor(b.agentName, known);
    expect((await api('POST', `/v1/approvals/${pending.id}/deny`, { reason: 'not during the freeze' })).status).toBe(200);
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('');
    expect(r.stderr).toContain(`kube-bastion approval ${pending.id} was denied by user:alice: not during the freeze`);
    // 1.30+ retries over SPDY after the refused WebSocket attempt: it gets the same decision.
    expect((await allApprovalIds()).size).toBe(known.size + 1);
  });
});

describe('scope', () => {
  it('an approval for demo/web-0 container app reaches app only', async () => {
    const approval = await grant({ namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] });
    const exec = (args: string[], kubeconfig = b.agentKubeconfig) => runKubectl({ minor: 33, kubeconfig, args: ['exec', ...args] });
    const inApp = await exec(['-n', 'demo', 'web-0', '-c', 'app', '--', 'sh', '-c', 'echo "$CONTAINER_NAME"']);
    expect(inApp.stdout.toString()).toBe('app\n');
    // Omitting -c reaches app because app is the resolved default, and only then.
    const byDefault = await exec(['-n', 'demo', 'web-0', '--', 'sh', '-c', 'echo "$CONTAINER_NAME"']);
    expect(byDefault.stdout.toString()).toBe('app\n');
    for (const args of [
      ['-n', 'demo', 'web-0', '-c', 'sidecar', '--', 'true'],
      ['-n', 'default', 'busybox', '--', 'true'],
    ]) {
      const r = await exec(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(/was not decided in time/);
    }
    const attach = await runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['attach', '-n', 'demo', 'web-0', '-c', 'app'] });
    expect(attach.code).toBe(1);
    expect(attach.stderr).toMatch(/was not decided in time/);
    // Another agent's token does not use this agent's approval.
    const other = await b.bastion.store.agents.createAgent('other-agent');
    const otherConfig = `${b.dir}/other.kubeconfig`;
    (await import('node:fs')).writeFileSync(otherConfig, b.bastion.agentKubeconfig('other-agent', other.token));
    const r = await exec(['-n', 'demo', 'web-0', '-c', 'app', '--', 'true'], otherConfig);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/was not decided in time/);
    expect((await api<Approval>('GET', `/v1/approvals/${approval.id}`)).json.state).toBe('approved');
  });
});

describe.each([
  { label: '1.27 (SPDY)', minor: 27 },
  { label: '1.33 (WebSocket)', minor: 33 },
])('relay through the bastion with kubectl $label', ({ minor }) => {
  it('returns 8 MiB of random stdin exactly and passes exit codes through', async () => {
    await grant({ namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] });
    const input = randomBytes(8 * 1024 * 1024);
    const r = await runKubectl({ minor, kubeconfig: b.agentKubeconfig, args: ['exec', '-i', '-n', 'demo', 'web-0', '--', 'cat'], stdin: input });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(createHash('sha256').update(r.stdout).digest('hex')).toBe(createHash('sha256').update(input).digest('hex'));
    const seven = await runKubectl({ minor, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7'] });
    expect(seven.stdout.toString()).toBe('out\n');
    expect(seven.stderr).toContain('err\n');
    expect(seven.code).toBe(7);
  });
});

describe.each([
  { label: '1.27 (SPDY)', minor: 27 },
  { label: '1.33 (WebSocket)', minor: 33 },
])('hard cutoff with kubectl $label', ({ minor }) => {
  const ticker = ['exec', '-n', 'demo', 'shell-0', '--', 'sh', '-c', 'while :; do date +%s%N; sleep 0.01; done'];

  it('cuts at expiry: no timestamp after the deadline, and kubectl names the approval', async () => {
    const approval = await grant({ namespace: 'demo', pod: 'shell-0', container: 'main', verbs: ['exec'] }, 3);
    const deadlineNs = BigInt(Date.parse(approval.expiresAt!)) * 1_000_000n;
    const run = startKubectl(minor, {}, ticker);
    const r = await run.done;
    const stamps = r.stdout.toString().trim().split('\n').map((l) => BigInt(l));
    expect(stamps.length).toBeGreaterThan(20);
    expect(stamps.at(-1)! <= deadlineNs).toBe(true);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`approval ${approval.id} expired`);
    // The session row is written just after kubectl has its Status.
    await expect.poll(async () => (await b.bastion.store.sessions.list({ approvalId: approval.id })).map((s) => s.endReason)).toEqual(['expired']);
  });

  it('cuts a live session when its approval is revoked', async () => {
    const approval = await grant({ namespace: 'demo', pod: 'shell-0', container: 'main', verbs: ['exec'] }, 300);
    const run = startKubectl(minor, {}, ticker);
    for (const end = Date.now() + 15_000; run.firstByteAt() === undefined && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 500));
    const revoked = await api<Approval>('POST', `/v1/approvals/${approval.id}/revoke`, { reason: 'incident over' });
    expect(revoked.status).toBe(200);
    const revokedNs = BigInt(Date.parse(revoked.json.revokedAt!)) * 1_000_000n;
    const r = await run.done;
    const stamps = r.stdout.toString().trim().split('\n').map((l) => BigInt(l));
    expect(stamps.at(-1)! <= revokedNs + 5_000_000n).toBe(true);
    expect(r.stderr).toContain(`approval ${approval.id} was revoked`);
    await expect.poll(async () => (await b.bastion.store.sessions.list({ approvalId: approval.id })).map((s) => s.endReason)).toEqual(['revoked']);
  });
});

describe('held REST call', () => {
  it('a delete that needs approval is held, approved through the API, and completes', async () => {
    const known = await allApprovalIds();
    const run = startKubectl(33, {}, ['delete', 'pod', '-n', 'default', 'busybox', '--wait=false']);
    const pending = await pendingFor(b.agentName, known);
    expect(pending.scope).toEqual({
      kind: 'rest',
      verb: 'delete',
      resource: 'pods',
      namespace: 'default',
      name: 'busybox',
      request: { method: 'DELETE', path: '/api/v1/namespaces/default/pods/busybox', query: '', bodySha256: pending.request!.body!.sha256, contentType: 'application/json', contentEncoding: null },
      maxUses: 1,
    });
    expect((await api('POST', `/v1/approvals/${pending.id}/approve`, {})).status).toBe(200);
    const r = await run.done;
    expect(r.stdout.toString()).toBe('pod "busybox" deleted\n');
    expect(r.code).toBe(0);
    expect(b.sim.store.get('pods', 'default', 'busybox')).toBeUndefined();
  });
});
