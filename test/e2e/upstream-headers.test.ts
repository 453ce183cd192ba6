// What reaches the cluster: only the headers on the allow-list (upstream/headers.ts), never the
// client's forwarding, override or identity headers; with --impersonate, the agent as the user and
// the approval a request ran under as an Impersonate-Extra key, so the cluster's audit log joins the
// bastion's record.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { controlApi, newPending } from '../helpers/control.js';
import { runKubectl } from '../helpers/kubectl.js';
import type { Approval } from '../../src/model/approval.js';
import type { LoggedRequest } from '../../src/sim/request-log.js';

let b: TestBastion;
let approverToken: string;

beforeAll(async () => {
  b = await startTestBastion({ extraArgs: ['--impersonate', '--hold-timeout', '20'] });
  approverToken = (await b.bastion.store.users.createUser('alice', 'approver')).token;
});
afterAll(async () => {
  await b?.stop();
});

/**
 * Client headers that are not the Kubernetes API's and must not reach it (a client's own
 * `Impersonate-*` headers are refused by the default policy before anything is forwarded).
 */
const HOSTILE = {
  'X-Forwarded-For': '10.9.9.9',
  'X-Forwarded-Host': 'kubernetes.default.svc',
  'X-Forwarded-Proto': 'http',
  'X-Original-URL': '/api/v1/namespaces/kube-system/secrets',
  'X-Rewrite-URL': '/api/v1/namespaces/kube-system/secrets',
  'X-HTTP-Method-Override': 'DELETE',
  Expect: '100-continue',
  'Audit-ID': 'forged-audit-id',
  'X-Remote-User': 'system:admin',
  'X-Remote-Group': 'system:masters',
  Cookie: 'session=1',
};

/** The sim's log entry of the one request to `path` since `from`. */
function upstreamEntry(from: number, path: string): LoggedRequest {
  const matching = b.sim.requests.entries.slice(from).filter((e) => e.path === path);
  expect(matching.length).toBe(1);
  return matching[0]!;
}

function expectNoneOfTheHostile(entry: LoggedRequest): void {
  const names = Object.keys(entry.headers);
  for (const name of Object.keys(HOSTILE)) expect(names, name).not.toContain(name.toLowerCase());
  expect(names.filter((n) => n.startsWith('x-'))).toEqual([]);
}

describe('headers upstream', () => {
  it('a REST request carrying forwarding, override and identity headers: upstream sees none of them', async () => {
    const from = b.sim.requests.entries.length;
    const path = '/api/v1/namespaces/demo/configmaps';
    const r = await b.rawRequest('GET', path, { ...HOSTILE, Accept: 'application/json', 'User-Agent': 'header-test/1.0', 'Kubectl-Command': 'kubectl get' });
    expect(r.status).toBe(200);
    const entry = upstreamEntry(from, path);
    expectNoneOfTheHostile(entry);
    expect(entry.headers).toMatchObject({ accept: 'application/json', 'user-agent': 'header-test/1.0', 'kubectl-command': 'kubectl get', 'impersonate-user': 'kube-bastion:agent:test-agent' });
    expect(entry.headers['impersonate-extra-kube-bastion.io%2fagent-id']).toMatch(/^[0-9a-f-]{36}$/);
    // Not under an approval: no approval id.
    expect(entry.headers['impersonate-extra-kube-bastion.io%2fapproval-id']).toBeUndefined();
  });

  it('an approved REST request: upstream sees the approval id as an Impersonate-Extra key, and still none of the headers', async () => {
    const known = new Set((await controlApi<{ items: Approval[] }>(b, approverToken, 'GET', '/v1/approvals')).json.items.map((a) => a.id));
    const from = b.sim.requests.entries.length;
    const path = '/api/v1/namespaces/demo/secrets/db-credentials';
    const request = b.rawRequest('GET', path, { ...HOSTILE, Accept: 'application/json' });
    const [held] = await newPending(b, approverToken, known);
    const approved = await controlApi<Approval>(b, approverToken, 'POST', `/v1/approvals/${held!.id}/approve`, {});
    expect(approved.status).toBe(200);
    const r = await request;
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ kind: 'Secret', metadata: { name: 'db-credentials' } });
    const entry = upstreamEntry(from, path);
    expectNoneOfTheHostile(entry);
    expect(entry.headers['impersonate-user']).toBe('kube-bastion:agent:test-agent');
    expect(entry.headers['impersonate-extra-kube-bastion.io%2fapproval-id']).toBe(held!.id);
  });

  it('kubectl still works: what it sends for a list reaches upstream (Accept, User-Agent, Kubectl-Command, Kubectl-Session)', async () => {
    const from = b.sim.requests.entries.length;
    const r = await runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['get', 'configmaps', '-n', 'demo', '-o', 'name'] });
    expect(r.stderr).toBe('');
    expect(r.stdout.toString()).toContain('configmap/web-config');
    const list = b.sim.requests.entries.slice(from).find((e) => e.path.startsWith('/api/v1/namespaces/demo/configmaps'))!;
    expect(Object.keys(list.headers).sort()).toEqual(
      ['accept', 'accept-encoding', 'authorization', 'connection', 'host', 'impersonate-extra-kube-bastion.io%2fagent-id', 'impersonate-user', 'kubectl-command', 'kubectl-session', 'user-agent'].sort(),
    );
    expect(list.headers['kubectl-command']).toBe('kubectl get');
    expect(String(list.headers['user-agent'])).toMatch(/^kubectl/);
  });

  it('an approved exec: the upgrade upstream carries the approval id and the session id, which name the bastion\'s session row', async () => {
    const known = new Set((await controlApi<{ items: Approval[] }>(b, approverToken, 'GET', '/v1/approvals')).json.items.map((a) => a.id));
    const from = b.sim.requests.entries.length;
    const run = runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '-c', 'app', '--', 'echo', 'joined'] });
    const [held] = await newPending(b, approverToken, known);
    expect((await controlApi<Approval>(b, approverToken, 'POST', `/v1/approvals/${held!.id}/approve`, {})).status).toBe(200);
    const r = await run;
    expect(r.stdout.toString()).toBe('joined\n');
    const exec = b.sim.requests.entries.slice(from).find((e) => e.path.startsWith('/api/v1/namespaces/demo/pods/web-0/exec'))!;
    const [session] = await b.bastion.store.sessions.list({ approvalId: held!.id });
    expect(exec.headers['impersonate-extra-kube-bastion.io%2fapproval-id']).toBe(held!.id);
    expect(exec.headers['impersonate-extra-kube-bastion.io%2fsession-id']).toBe(session!.id);
    expectNoneOfTheHostile(exec);
  });
});
