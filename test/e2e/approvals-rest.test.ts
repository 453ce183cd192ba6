// REST approvals bound to the exact request, with real kubectl 1.27 and 1.33: an approval covers
// the request it was made for (method, path, query, body hash), once; another body or a repeat is
// held anew; identical held requests join one pending approval and only one of them uses it; the
// approver sees the body (secret values redacted) and its risk summary; bodies above 3 MiB get 413.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshHome, kubectlPath, type KubectlResult } from '../helpers/kubectl.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { controlApi, newPending as waitForPending } from '../helpers/control.js';
import type { Approval } from '../../src/model/approval.js';

let b: TestBastion;
let approverToken: string;

beforeAll(async () => {
  b = await startTestBastion({ extraArgs: ['--hold-timeout', '20'] });
  approverToken = (await b.bastion.store.users.createUser('alice', 'approver')).token;
});
afterAll(async () => {
  await b?.stop();
});

function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  return controlApi<T>(b, approverToken, method, path, body);
}

async function pending(): Promise<Approval[]> {
  return (await api<{ items: Approval[] }>('GET', `/v1/approvals?state=pending&agent=${b.agentName}`)).json.items;
}

/** Waits until `n` pending approvals not in `known` exist; returns them oldest first. */
function newPending(known: Set<string>, n = 1): Promise<Approval[]> {
  return waitForPending(b, approverToken, known, n);
}

async function knownIds(): Promise<Set<string>> {
  return new Set((await api<{ items: Approval[] }>('GET', '/v1/approvals')).json.items.map((a) => a.id));
}

function kubectl(minor: number, args: string[], stdin?: string): Promise<KubectlResult> {
  const child = spawn(kubectlPath(minor), ['--kubeconfig', b.agentKubeconfig, ...args], { env: { PATH: process.env.PATH ?? '', HOME: freshHome() } });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.on('error', () => {});
  child.stdin.end(stdin);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err })));
}

async function decide(id: string, decision: 'approve' | 'deny', body: Record<string, unknown> = {}): Promise<Approval> {
  const r = await api<Approval>('POST', `/v1/approvals/${id}/${decision}`, decision === 'deny' ? { reason: 'not this one', ...body } : body);
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json;
}

function pod(name: string, extra: Record<string, unknown> = {}, container: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'demo' },
    spec: { containers: [{ name: 'app', image: 'busybox:1.36', command: ['sleep', '3600'], ...container }], ...extra },
  });
}

describe.each([27, 33])('REST approvals bound to the request, kubectl 1.%i', (minor) => {
  it('an approved `create secret a` admits that request once: `b` is held, and `a` again is held again', async () => {
    const a = `a-${minor}`;
    const known = await knownIds();
    const create = (name: string) => kubectl(minor, ['create', 'secret', 'generic', name, '--from-literal=k=v', '-n', 'demo']);
    const first = create(a);
    const [held] = await newPending(known);
    expect(held!.scope).toMatchObject({ kind: 'rest', verb: 'create', resource: 'secrets', namespace: 'demo', name: '', maxUses: 1, request: { method: 'POST', path: '/api/v1/namespaces/demo/secrets' } });
    // The approver sees the body with the value redacted (v is dg== in base64), and what it is.
    const body = held!.request!.body!;
    expect(body.redacted).toBe(true);
    expect(body.text).toContain('"k": "<redacted>"');
    expect(body.text).not.toContain('dg==');
    expect(body.sha256).toBe((held!.scope as { request: { bodySha256: string } }).request.bodySha256);
    expect(held!.request!.risk!.findings.map((f) => f.text)).toContain('keys: k (values not shown)');
    await decide(held!.id, 'approve', { reason: 'create a' });
    const r = await first;
    expect(r.stderr).toBe('');
    expect(r.stdout.toString()).toBe(`secret/${a} created\n`);
    expect(b.sim.store.get('secrets', 'demo', a)).toBeDefined();
    expect((await api<Approval>('GET', `/v1/approvals/${held!.id}`)).json.sessionsStarted).toBe(1);

    // Another secret under the same shape: held, a new pending approval.
    const known2 = await knownIds();
    const other = create(`b-${minor}`);
    const [heldB] = await newPending(known2);
    expect(heldB!.id).not.toBe(held!.id);
    await decide(heldB!.id, 'deny');
    expect((await other).code).toBe(1);
    expect(b.sim.store.get('secrets', 'demo', `b-${minor}`)).toBeUndefined();

    // The very same request again: the single use is spent, so it is held again.
    const known3 = await knownIds();
    const again = create(a);
    const [heldAgain] = await newPending(known3);
    expect(heldAgain!.scope).toEqual(held!.scope);
    await decide(heldAgain!.id, 'deny');
    const denied = await again;
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(`kube-bastion approval ${heldAgain!.id} was denied by user:alice: not this one`);
  });

  it('an approved pod create does not admit a privileged pod of the same name; the approver sees its risks', async () => {
    const name = `p-${minor}`;
    const known = await knownIds();
    const plain = kubectl(minor, ['create', '--validate=false', '-f', '-'], pod(name));
    const [held] = await newPending(known);
    expect(held!.request!.risk!.findings.filter((f) => f.level === 'high')).toEqual([]);
    await decide(held!.id, 'approve');
    expect((await plain).stdout.toString()).toBe(`pod/${name} created\n`);

    const known2 = await knownIds();
    const privileged = kubectl(minor, ['create', '--validate=false', '-f', '-'], pod(name, { hostNetwork: true, volumes: [{ name: 'root', hostPath: { path: '/' } }] }, { securityContext: { privileged: true } }));
    const [heldPriv] = await newPending(known2);
    expect(heldPriv!.id).not.toBe(held!.id);
    const high = heldPriv!.request!.risk!.findings.filter((f) => f.level === 'high').map((f) => f.text);
    expect(high).toEqual([
      "hostNetwork: true (shares the node's network namespace)",
      'container app is privileged (securityContext.privileged: true)',
      'volume root: hostPath / (a directory of the node)',
    ]);
    expect(heldPriv!.request!.body!.text).toContain('"privileged": true');
    await decide(heldPriv!.id, 'deny');
    expect((await privileged).code).toBe(1);
  });

  it('identical held requests join one pending approval and only one uses it; another body is another approval', async () => {
    const name = `c-${minor}`;
    const known = await knownIds();
    const args = ['create', 'secret', 'generic', name, '--from-literal=k=same', '-n', 'demo'];
    const one = kubectl(minor, args);
    const two = kubectl(minor, args);
    const [joined] = await newPending(known);
    // Both are held on it (the second joined), and a different body makes a second approval.
    const different = kubectl(minor, ['create', 'secret', 'generic', name, '--from-literal=k=other', '-n', 'demo']);
    const fresh = await newPending(known, 2);
    expect(fresh.map((a) => a.id)).toContain(joined!.id);
    const second = fresh.find((a) => a.id !== joined!.id)!;
    expect((second.scope as { request: { bodySha256: string } }).request.bodySha256).not.toBe((joined!.scope as { request: { bodySha256: string } }).request.bodySha256);
    for (let i = 0; i < 200 && (await b.bastion.store.audit.query({ approvalId: joined!.id, event: 'approval.joined' })).length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(await b.bastion.store.audit.query({ approvalId: joined!.id, event: 'approval.joined' })).toHaveLength(1);

    await decide(joined!.id, 'approve');
    const results = await Promise.all([one, two]);
    const created = results.filter((r) => r.code === 0);
    const refused = results.filter((r) => r.code !== 0);
    expect(created.map((r) => r.stdout.toString())).toEqual([`secret/${name} created\n`]);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.stderr).toContain(`kube-bastion approval ${joined!.id} (1 use) admits no further request`);
    await decide(second.id, 'deny');
    expect((await different).code).toBe(1);
    expect(b.sim.store.get('secrets', 'demo', name)?.data).toEqual({ k: Buffer.from('same').toString('base64') });
  });

  it('a body above 3 MiB is refused with 413 before anything is held', async () => {
    const file = join(b.dir, `big-${minor}`);
    writeFileSync(file, Buffer.alloc(3 * 1024 * 1024, 'x'));
    const known = await knownIds();
    const since = await b.auditCount();
    const r = await kubectl(minor, ['create', 'secret', 'generic', `big-${minor}`, `--from-file=big=${file}`, '-n', 'demo']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Request entity too large: limit is 3145728');
    expect([...(await knownIds())].filter((id) => !known.has(id))).toEqual([]);
    const rows = (await b.auditSince(since)).filter((row) => row.event === 'request' && row.path?.includes('/secrets'));
    expect(rows.map((row) => [row.statusCode, (JSON.parse(row.details ?? '{}') as { outcome?: string }).outcome])).toEqual([[413, 'body-too-large']]);
  });
});
