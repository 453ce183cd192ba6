// Held REST bodies the approver could be misled by, with real kubectl 1.27 and 1.33 and raw HTTPS
// with the agent's token: a JSON body with a duplicate key (the API server merges both, JSON.parse
// shows one) is refused with 400 before any approval exists; the same bytes under another patch
// type (Content-Type) or Content-Encoding are another request, so they never join a pending
// approval or get forwarded under it.
import https from 'node:https';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshHome, kubectlPath, type KubectlResult } from '../helpers/kubectl.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { approvalIds, controlApi } from '../helpers/control.js';
import type { Approval } from '../../src/model/approval.js';

let b: TestBastion;
let approverToken: string;

beforeAll(async () => {
  b = await startTestBastion({ extraArgs: ['--hold-timeout', '30'] });
  approverToken = (await b.bastion.store.users.createUser('alice', 'approver')).token;
});
afterAll(async () => {
  agent.destroy();
  await b?.stop();
});

function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  return controlApi<T>(b, approverToken, method, path, body);
}

function knownIds(): Promise<Set<string>> {
  return approvalIds(b, approverToken);
}

async function pending(): Promise<Approval[]> {
  return (await api<{ items: Approval[] }>('GET', `/v1/approvals?state=pending&agent=${b.agentName}`)).json.items;
}

/** Waits until `n` pending approvals not in `known` exist; returns them oldest first. */
async function newPending(known: Set<string>, n = 1): Promise<Approval[]> {
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 25))) {
    const fresh = (await pending()).filter((a) => !known.has(a.id));
    if (fresh.length >= n) return fresh.reverse();
  }
  throw new Error(`fewer than ${n} new pending approvals appeared`);
}

async function decide(id: string, decision: 'approve' | 'deny'): Promise<void> {
  const r = await api<Approval>('POST', `/v1/approvals/${id}/${decision}`, decision === 'deny' ? { reason: 'not this one' } : {});
  expect(r.status, JSON.stringify(r.json)).toBe(200);
}

function kubectl(minor: number, args: string[]): Promise<KubectlResult> {
  const child = spawn(kubectlPath(minor), ['--kubeconfig', b.agentKubeconfig, ...args], { env: { PATH: process.env.PATH ?? '', HOME: freshHome() } });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end();
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err })));
}

const agent = new https.Agent({ keepAlive: true, maxSockets: 16 });
/** A raw request with the agent's token; `req` to abandon it. */
function send(method: string, path: string, headers: Record<string, string>, body?: string): { req: ClientRequest; done: Promise<{ status: number; body: string }> } {
  let req!: ClientRequest;
  const done = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req = https.request(`${b.bastion.kubeUrl}${path}`, { method, agent, ca: b.bastion.tls.caPem, headers: { Authorization: `Bearer ${b.agentToken}`, ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
  });
  req.end(body);
  return { req, done };
}

/** The review's probe: the approver would be shown the harmless last "spec"; upstream would merge in the first. */
function duplicateSpecPod(name: string, key = 'spec'): string {
  return (
    `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"${name}","namespace":"demo"},` +
    '"spec":{"hostPID":true,"hostNetwork":true,"volumes":[{"name":"root","hostPath":{"path":"/"}}],' +
    '"containers":[{"name":"app","image":"busybox","securityContext":{"privileged":true}}]},' +
    `"${key}":{"containers":[{"name":"app","image":"busybox"}]}}`
  );
}

async function refusalRows(since: number): Promise<[number | null, string | undefined, string | undefined][]> {
  const rows = (await b.auditSince(since)).filter((row) => row.event === 'request' && row.method === 'POST' && row.path?.includes('/pods'));
  return rows.map((row) => {
    const details = JSON.parse(row.details ?? '{}') as { outcome?: string; detail?: string };
    return [row.statusCode, details.outcome, details.detail];
  });
}

describe.each([27, 33])('a held body with a duplicate JSON key, kubectl 1.%i', (minor) => {
  it('`kubectl create --raw -f` of a pod with two "spec" keys: 400 naming the key, nothing held or forwarded, audited', async () => {
    const file = join(b.dir, `dup-${minor}.json`);
    writeFileSync(file, duplicateSpecPod(`dup-${minor}`));
    const known = await knownIds();
    const since = await b.auditCount();
    const mark = b.sim.requests.entries.length;
    const r = await kubectl(minor, ['create', '--raw', '/api/v1/namespaces/demo/pods', '-f', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('kube-bastion refuses a body with a duplicate field "spec"');
    expect([...(await knownIds())].filter((id) => !known.has(id))).toEqual([]);
    expect(await refusalRows(since)).toEqual([[400, 'duplicate-json-key', 'spec']]);
    expect(b.sim.requests.entries.slice(mark).filter((e) => e.method === 'POST')).toEqual([]);
    expect(b.sim.store.get('pods', 'demo', `dup-${minor}`)).toBeUndefined();
  });
});

describe('a held body with a duplicate JSON key, raw HTTPS', () => {
  it('keys equal only after unescaping ("spec" and "sp\\u0065c") are duplicates: the Status names the path', async () => {
    const known = await knownIds();
    const since = await b.auditCount();
    const r = await send('POST', '/api/v1/namespaces/demo/pods', { 'Content-Type': 'application/json' }, duplicateSpecPod('dup-escaped', 'sp\\u0065c')).done;
    expect(r.status).toBe(400);
    const status = JSON.parse(r.body) as { kind: string; code: number; reason: string; message: string; details?: { causes?: { reason: string; field?: string }[] } };
    expect(status).toMatchObject({ kind: 'Status', code: 400, reason: 'BadRequest' });
    expect(status.message).toBe(
      'pods is forbidden: kube-bastion refuses a body with a duplicate field "spec": the API server would merge both values, an approver would be shown one; send each field once',
    );
    expect(status.details?.causes).toEqual([{ reason: 'FieldValueDuplicate', message: 'duplicate field "spec"', field: 'spec' }]);
    expect([...(await knownIds())].filter((id) => !known.has(id))).toEqual([]);
    expect(await refusalRows(since)).toEqual([[400, 'duplicate-json-key', 'spec']]);
  });

  it('a nested duplicate is named by its path', async () => {
    const body = '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"dup-nested"},"spec":{"containers":[{"name":"app","image":"busybox","securityContext":{"privileged":true,"privileged":false}}]}}';
    const r = await send('POST', '/api/v1/namespaces/demo/pods', { 'Content-Type': 'application/json' }, body).done;
    expect(r.status).toBe(400);
    expect((JSON.parse(r.body) as { message: string }).message).toContain('duplicate field "spec.containers[0].securityContext.privileged"');
  });
});

describe.each([27, 33])('the REST binding names the patch type, kubectl 1.%i', (minor) => {
  it('`kubectl patch --type merge` of the same bytes does not join the pending strategic patch; approving one forwards only it', async () => {
    const patch = `{"metadata":{"labels":{"bump":"v${minor}"}}}`;
    const known = await knownIds();
    const strategic = kubectl(minor, ['patch', 'pod', 'web-0', '-n', 'demo', '--type', 'strategic', '-p', patch]);
    const [heldStrategic] = await newPending(known);
    const merge = kubectl(minor, ['patch', 'pod', 'web-0', '-n', 'demo', '--type', 'merge', '-p', patch]);
    const fresh = await newPending(known, 2);
    const heldMerge = fresh.find((a) => a.id !== heldStrategic!.id)!;
    const bound = (a: Approval) => (a.scope.kind === 'rest' ? a.scope.request : undefined);
    // Same bytes, another media type: another approval.
    expect(bound(heldMerge)!.bodySha256).toBe(bound(heldStrategic!)!.bodySha256);
    expect([bound(heldStrategic!)!.contentType, bound(heldStrategic!)!.contentEncoding]).toEqual(['application/strategic-merge-patch+json', null]);
    expect(bound(heldMerge)!.contentType).toBe('application/merge-patch+json');
    expect(heldMerge.request!.risk!.subject).toBe('merge patch of Pod');

    const mark = b.sim.requests.entries.length;
    await decide(heldStrategic!.id, 'approve');
    await strategic;
    const patches = b.sim.requests.entries.slice(mark).filter((e) => e.method === 'PATCH');
    expect(patches.map((e) => [e.path, e.headers['content-type']])).toEqual([['/api/v1/namespaces/demo/pods/web-0?fieldManager=kubectl-patch', 'application/strategic-merge-patch+json']]);
    // The merge patch is still held on its own approval.
    expect((await pending()).map((a) => a.id)).toContain(heldMerge.id);
    await decide(heldMerge.id, 'deny');
    const denied = await merge;
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(`kube-bastion approval ${heldMerge.id} was denied`);
    expect(b.sim.requests.entries.slice(mark).filter((e) => e.method === 'PATCH')).toHaveLength(1);
  });
});

describe('the REST binding names the patch type and encoding, raw HTTPS (the review probe)', () => {
  it('a merge-patch or gzip clone of a pending strategic patch does not join it, and is not forwarded when it is approved; a charset parameter does join', async () => {
    const path = '/apis/apps/v1/namespaces/demo/deployments/web';
    const body = JSON.stringify({ spec: { template: { spec: { containers: [{ name: 'app', image: 'registry/app:v2' }] } } } });
    const known = await knownIds();
    const original = send('PATCH', path, { 'Content-Type': 'application/strategic-merge-patch+json' }, body);
    const [held] = await newPending(known);
    const clone = send('PATCH', path, { 'Content-Type': 'application/merge-patch+json' }, body);
    const gzipClone = send('PATCH', path, { 'Content-Type': 'application/strategic-merge-patch+json', 'Content-Encoding': 'gzip' }, body);
    const sameType = send('PATCH', path, { 'Content-Type': 'application/strategic-merge-patch+json; charset=utf-8' }, body);
    const fresh = await newPending(known, 3);
    expect(fresh[0]!.id).toBe(held!.id);
    const others = fresh.slice(1);
    expect(others.map((a) => (a.scope.kind === 'rest' ? [a.scope.request?.contentType, a.scope.request?.contentEncoding] : null)).sort()).toEqual([
      ['application/merge-patch+json', null],
      ['application/strategic-merge-patch+json', 'gzip'],
    ]);
    // The same media type with a parameter joins the original.
    for (let i = 0; i < 200 && (await b.bastion.store.audit.query({ approvalId: held!.id, event: 'approval.joined' })).length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(await b.bastion.store.audit.query({ approvalId: held!.id, event: 'approval.joined' })).toHaveLength(1);

    const mark = b.sim.requests.entries.length;
    await decide(held!.id, 'approve');
    // One use: the original is forwarded, the joined twin is told the approval is used.
    expect((await sameType.done).status).toBe(403);
    await original.done;
    const upstream = b.sim.requests.entries.slice(mark).filter((e) => e.method === 'PATCH');
    expect(upstream.map((e) => e.headers['content-type'])).toEqual(['application/strategic-merge-patch+json']);
    // The clones are still held, each on its own approval.
    expect((await pending()).map((a) => a.id)).toEqual(expect.arrayContaining(others.map((a) => a.id)));
    for (const a of others) await decide(a.id, 'deny');
    expect((await clone.done).status).toBe(403);
    expect((await gzipClone.done).status).toBe(403);
    expect(b.sim.requests.entries.slice(mark).filter((e) => e.method === 'PATCH')).toHaveLength(1);
  });
});
