// Decisions are append-only and identities are managed, with real kubectl 1.27 and 1.33 and the
// built CLI: an approval approved by ann (reason A) and revoked by bob (reason B) while kubectl
// execs keeps both decisions with their authors, and kubectl's Status names bob and reason B; an
// agent's owner cannot approve its requests (API and CLI); a disabled user's token and a rotated
// one are refused; `kube-bastion agent list|revoke` and `user list|disable|rotate` work.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshHome, kubectlPath, runKubectl } from '../helpers/kubectl.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { controlApi } from '../helpers/control.js';
import type { Approval } from '../../src/model/approval.js';

const BIN = resolve('bin/kube-bastion.js');

let b: TestBastion;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  expect(existsSync('dist/cli/main.js'), 'run `npm run build` first').toBe(true);
  b = await startTestBastion({ extraArgs: ['--hold-timeout', '30'] });
  for (const [name, role] of [['ann', 'approver'], ['bob', 'approver'], ['root', 'admin']] as const) {
    tokens[name] = (await b.bastion.store.users.createUser(name, role)).token;
  }
});
afterAll(async () => {
  await b?.stop();
});

function api<T>(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  return controlApi<T>(b, token, method, path, body);
}

async function pending(agent: string, known: Set<string>): Promise<Approval> {
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 25))) {
    const { json } = await api<{ items: Approval[] }>(tokens.root!, 'GET', `/v1/approvals?state=pending&agent=${agent}`);
    const fresh = json.items.find((a) => !known.has(a.id));
    if (fresh) return fresh;
  }
  throw new Error('no pending approval appeared');
}

async function knownIds(): Promise<Set<string>> {
  return new Set((await api<{ items: Approval[] }>(tokens.root!, 'GET', '/v1/approvals')).json.items.map((a) => a.id));
}

/** The built CLI against the test bastion's control API, without blocking the event loop. */
function cli(args: string[], token?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const env = { PATH: process.env.PATH ?? '', KUBE_BASTION_URL: b.bastion.controlUrl, ...(token ? { KUBE_BASTION_TOKEN: token } : {}) };
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (status) => done({ status, stdout, stderr }));
  });
}

describe.each([
  { label: '1.27 (SPDY)', minor: 27 },
  { label: '1.33 (WebSocket)', minor: 33 },
])('approve by ann, revoke by bob, with kubectl $label', ({ minor }) => {
  it('keeps both decisions with their authors and reasons, and kubectl hears who revoked and why', async () => {
    const known = await knownIds();
    const child = spawn(kubectlPath(minor), ['--kubeconfig', b.agentKubeconfig, 'exec', '-n', 'demo', 'shell-0', '--', 'sh', '-c', 'while :; do echo tick; sleep 0.05; done'], {
      env: { PATH: process.env.PATH ?? '', HOME: freshHome() },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', r));

    const held = await pending(b.agentName, known);
    const approved = await api<Approval>(tokens.ann!, 'POST', `/v1/approvals/${held.id}/approve`, { ttlSeconds: 300, reason: `A: INC-${minor} look at the ticker` });
    expect(approved.status).toBe(200);
    for (const end = Date.now() + 15_000; !out.includes('tick') && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    expect(out).toContain('tick');
    const revoked = await api<Approval>(tokens.bob!, 'POST', `/v1/approvals/${held.id}/revoke`, { reason: `B: seen enough (${minor})` });
    expect(revoked.status).toBe(200);
    expect(await exited).not.toBe(0);

    const record = (await api<Approval>(tokens.root!, 'GET', `/v1/approvals/${held.id}`)).json;
    expect(record).toMatchObject({ state: 'revoked', decidedBy: 'user:ann', reason: `A: INC-${minor} look at the ticker`, revokedBy: 'user:bob' });
    expect(record.decisions.map((d) => ({ kind: d.kind, by: d.by, reason: d.reason }))).toEqual([
      { kind: 'approved', by: 'user:ann', reason: `A: INC-${minor} look at the ticker` },
      { kind: 'revoked', by: 'user:bob', reason: `B: seen enough (${minor})` },
    ]);
    expect(record.decisions[1]!.at).toBe(record.revokedAt);
    expect(err).toContain(`approval ${held.id} was revoked by user:bob (B: seen enough (${minor}))`);
    expect(err).not.toContain('A: INC');
  });
});

describe("an agent's owner", () => {
  it('cannot approve its requests through the API or the CLI; another approver can', async () => {
    const { agent, token } = await b.bastion.store.agents.createAgent('anns-agent', 'ann');
    const kubeconfig = join(b.dir, 'anns-agent.kubeconfig');
    writeFileSync(kubeconfig, b.bastion.agentKubeconfig(agent.name, token));
    const known = await knownIds();
    const run = runKubectl({ minor: 33, kubeconfig, args: ['exec', '-n', 'demo', 'web-0', '--', 'echo', 'owned'], timeoutMs: 40_000 });
    const held = await pending(agent.name, known);
    const viaApi = await api<{ error: { code: string; message: string } }>(tokens.ann!, 'POST', `/v1/approvals/${held.id}/approve`, { reason: 'mine' });
    expect(viaApi.status).toBe(403);
    expect(viaApi.json.error.message).toBe(
      'user:ann owns agent "anns-agent" and cannot approve its requests (rule owner-may-not-approve: another approver must; serve --owner-may-approve ROLE lets owners with that role decide)',
    );
    const viaCli = await cli(['approvals', 'approve', held.id, '--reason', 'mine'], tokens.ann);
    expect(viaCli.status).toBe(1);
    expect(viaCli.stderr).toContain('user:ann owns agent "anns-agent" and cannot approve its requests');
    expect((await cli(['approvals', 'grant', '--agent', agent.name, '--verb', 'get', '--resource', 'secrets', '--ttl', '1m', '--reason', 'x'], tokens.ann)).stderr).toContain('cannot grant to it');
    expect((await cli(['approvals', 'approve', held.id, '--reason', 'checked'], tokens.bob)).status).toBe(0);
    const r = await run;
    expect(r.stdout.toString()).toBe('owned\n');
    expect(r.code).toBe(0);
  });
});

describe('identities from the CLI', () => {
  it('agent list shows owners; agent revoke ends the agent at once and is audited', async () => {
    const { token } = await b.bastion.store.agents.createAgent('doomed', 'root');
    const list = await cli(['agent', 'list'], tokens.root);
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(/^NAME\s+OWNER\s+CREATED\s+REVOKED$/m);
    expect(list.stdout).toMatch(/^doomed\s+root\s+\S+Z\s+-$/m);
    const kubeconfig = join(b.dir, 'doomed.kubeconfig');
    writeFileSync(kubeconfig, b.bastion.agentKubeconfig('doomed', token));
    expect((await runKubectl({ minor: 33, kubeconfig, args: ['get', 'pods', '-n', 'demo', '-o', 'name'] })).code).toBe(0);
    expect((await cli(['agent', 'revoke', 'doomed', '--reason', 'leaked token'], tokens.ann)).stderr).toContain('role approver may not do this');
    const revoked = await cli(['agent', 'revoke', 'doomed', '--reason', 'leaked token'], tokens.root);
    expect(revoked.status).toBe(0);
    expect(revoked.stdout).toMatch(/^agent doomed revoked at \S+Z/);
    const after = await runKubectl({ minor: 27, kubeconfig, args: ['get', 'pods', '-n', 'demo'] });
    expect(after.code).toBe(1);
    expect(after.stderr).toContain('You must be logged in to the server');
    const rows = await b.bastion.store.audit.query({ event: 'agent.revoked', agent: 'doomed' });
    expect(rows.map((r) => [r.actor, r.details])).toEqual([['user:root', JSON.stringify({ reason: 'leaked token' })]]);
    const json = JSON.parse((await cli(['agent', 'list', '-o', 'json'], tokens.root)).stdout) as { items: Array<{ name: string; revokedAt: string | null }> };
    expect(json.items.find((a) => a.name === 'doomed')?.revokedAt).not.toBeNull();
  });

  it('user list, disable (401 at once) and rotate (old token 401, new one works) from the CLI', async () => {
    const { token: carlOld } = await b.bastion.store.users.createUser('carl', 'reviewer');
    const list = await cli(['user', 'list'], tokens.root);
    expect(list.stdout).toMatch(/^carl\s+reviewer\s+\S+Z\s+-$/m);
    const rotated = await cli(['user', 'rotate', 'carl'], carlOld);
    expect(rotated.status).toBe(0);
    const carlNew = rotated.stdout.trim().split('\n').pop()!;
    expect(carlNew).toMatch(/^kbu_[A-Za-z0-9_-]{43}$/);
    expect((await cli(['approvals', 'list'], carlOld)).stderr).toContain('unknown or disabled user token');
    expect((await cli(['approvals', 'list'], carlNew)).status).toBe(0);
    const disabled = await cli(['user', 'disable', 'carl'], tokens.root);
    expect(disabled.status).toBe(0);
    expect(disabled.stdout).toMatch(/^user carl disabled at \S+Z; its token no longer works$/m);
    const refused = await fetch(`${b.bastion.controlUrl}/v1/whoami`, { headers: { Authorization: `Bearer ${carlNew}` } });
    expect(refused.status).toBe(401);
    expect((await cli(['user', 'list'], tokens.root)).stdout).toMatch(/^carl\s+reviewer\s+\S+Z\s+\S+Z$/m);
    expect((await b.bastion.store.audit.query({ event: 'user.token-rotated' })).map((r) => r.actor)).toEqual(['user:carl']);
    expect((await b.bastion.store.audit.query({ event: 'user.disabled' })).map((r) => r.actor)).toEqual(['user:root']);
    // No API call without a token, and the usage says so.
    const none = spawnSync(process.execPath, [BIN, 'user', 'list'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('no user token');
  });
});
