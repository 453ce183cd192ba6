// The default policy with real kubectl 1.27 and 1.33: kubectl cp into and out of a pod completes
// with one human decision made 15 s after the request while kubectl waits (its `test -d` probe
// passes on the cp-directory-probe rule, recorded), and writes that could run code, mint
// credentials or change permissions are held, with nothing reaching the cluster.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReviewRecord } from '../../src/model/review-record-schema.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKubectl } from '../helpers/kubectl.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { controlApi } from '../helpers/control.js';
import type { Approval } from '../../src/model/approval.js';
import type { Session } from '../../src/store/index.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const api = controlApi;

describe('kubectl cp with the default policy: one decision, made while kubectl waits', () => {
  let b: TestBastion;
  let alice: string;
  const dir = mkdtempSync(join(tmpdir(), 'kb-cp-policy-'));

  beforeAll(async () => {
    // The default hold is longer than the 15 s the approver takes; a short one would fail the test.
    b = await startTestBastion({ extraArgs: ['--hold-timeout', '60'] });
    alice = (await b.bastion.store.users.createUser('alice', 'approver')).token;
  });
  afterAll(async () => {
    await b?.stop();
  });

  /** A pending approval whose exec argv is `argv`, once it appears. */
  async function pendingFor(argv: string[]): Promise<Approval> {
    let found: Approval | undefined;
    await expect
      .poll(
        async () => {
          const { json } = await api<{ items: Approval[] }>(b, alice, 'GET', `/v1/approvals?state=pending&agent=${b.agentName}`);
          found = json.items.find((a) => a.scope.kind === 'stream' && JSON.stringify(a.scope.commands) === JSON.stringify([argv]));
          return found !== undefined;
        },
        { timeout: 15_000, interval: 50 },
      )
      .toBe(true);
    return found!;
  }

  /** Runs `kubectl cp`; approves its one held exec 15 s after it was requested, while kubectl still waits. */
  async function copyWithOneDecision(minor: number, args: string[], heldArgv: string[]) {
    let exited = false;
    const run = runKubectl({ minor, kubeconfig: b.agentKubeconfig, args: ['cp', ...args, '-c', 'app'], timeoutMs: 60_000 }).finally(() => (exited = true));
    const pending = await pendingFor(heldArgv);
    // A timer may fire a millisecond early by Date.now(): wait until the wall clock says 15 s.
    const decideAt = Date.parse(pending.createdAt) + 15_000;
    while (Date.now() < decideAt) await sleep(decideAt - Date.now());
    const waitedMs = Date.now() - Date.parse(pending.createdAt);
    const stillWaiting = !exited;
    const approved = await api<Approval>(b, alice, 'POST', `/v1/approvals/${pending.id}/approve`, { ttlSeconds: 60, reason: `cp for 1.${minor}` });
    const result = await run;
    return { result, approval: approved.json, status: approved.status, waitedMs, stillWaiting };
  }

  async function endedSession(filter: (s: Session) => boolean): Promise<Session> {
    let found: Session | undefined;
    await expect
      .poll(async () => {
        found = (await b.bastion.store.sessions.list({ agent: b.agentName })).find(filter);
        return Boolean(found?.state === 'ended' && found.castSha256);
      }, { timeout: 10_000 })
      .toBe(true);
    return found!;
  }

  it('into and out of demo/web-0 on 1.27 and 1.33: bytes match, the approval records the file, the probe passes recorded', async () => {
    // Files to copy out, and directories to copy into, made under a grant that covers exactly these commands.
    const seed = (minor: number) => ['sh', '-c', `mkdir -p in-${minor} && yes kube-bastion-${minor} | head -c 70000 > out-${minor}.bin`];
    const seeded = await api<Approval>(b, alice, 'POST', '/v1/approvals', {
      agent: b.agentName, namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], commands: [seed(27), seed(33)], ttlSeconds: 120, reason: 'seed files for cp',
    });
    expect(seeded.status).toBe(201);
    for (const minor of [27, 33]) {
      const r = await runKubectl({ minor, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '-c', 'app', '--', ...seed(minor)] });
      expect(r.code).toBe(0);
    }
    const cursor = await b.auditCount();

    const payloads = new Map<number, Buffer>();
    const copies = [27, 33].flatMap((minor) => {
      const payload = Buffer.concat([Buffer.from(`payload for 1.${minor}\n`), randomBytes(70_000)]);
      payloads.set(minor, payload);
      writeFileSync(join(dir, `payload-${minor}.bin`), payload);
      return [
        copyWithOneDecision(minor, [join(dir, `payload-${minor}.bin`), `demo/web-0:in-${minor}`], ['tar', '-xmf', '-', '-C', `in-${minor}`]),
        copyWithOneDecision(minor, [`demo/web-0:out-${minor}.bin`, join(dir, `back-${minor}.bin`)], ['tar', 'cf', '-', `out-${minor}.bin`]),
      ];
    });
    const results = await Promise.all(copies);

    for (const [i, minor] of [27, 27, 33, 33].entries()) {
      const { result, approval, status, waitedMs, stillWaiting } = results[i]!;
      // Decided by a person 15 s after the request, while kubectl waited; then the copy completed.
      expect({ status, state: approval.state, stillWaiting }).toEqual({ status: 200, state: 'approved', stillWaiting: true });
      expect(waitedMs).toBeGreaterThanOrEqual(15_000);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const into = i % 2 === 0;
      const payload = into ? payloads.get(minor)! : Buffer.from(`kube-bastion-${minor}\n`.repeat(5000).slice(0, 70000));
      const name = into ? `payload-${minor}.bin` : `out-${minor}.bin`;
      if (!into) expect(readFileSync(join(dir, `back-${minor}.bin`)).equals(payload)).toBe(true);
      // The approval's one session names the file, with its size and hash.
      const sessions = await b.bastion.store.sessions.list({ approvalId: approval.id });
      expect(sessions.map((s) => s.command[0])).toEqual(['tar']);
      const tar = await endedSession((s) => s.id === sessions[0]!.id);
      expect(tar.files).toEqual([{ name, size: payload.length, sha256: sha256(payload) }]);
      // And the approval's review record lists it, next to the one decision.
      const record = (await api(b, alice, 'GET', `/v1/approvals/${approval.id}/record`)).json as ReviewRecord;
      expect(record.sessions.flatMap((s) => s.files ?? [])).toEqual([{ name, size: payload.length, sha256: sha256(payload) }]);
      expect(record.answers.happened).toContain(`files: ${name}`);
      expect(record.decisions.filter((d) => d.event === 'approval.approved').map((d) => d.actor)).toEqual(['user:alice']);
    }

    // The bytes copied in are in the pod, exactly.
    const cat = (minor: number) => ['cat', `in-${minor}/payload-${minor}.bin`];
    expect((await api(b, alice, 'POST', '/v1/approvals', { agent: b.agentName, namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], commands: [cat(27), cat(33)], ttlSeconds: 60, reason: 'check' })).status).toBe(201);
    for (const minor of [27, 33]) {
      const r = await runKubectl({ minor, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '-c', 'app', '--', ...cat(minor)] });
      expect(r.stdout.equals(payloads.get(minor)!)).toBe(true);
    }

    // Each copy into the pod ran its probe once: allowed by the rule, with no approval, and recorded.
    const probes = (await b.auditSince(cursor)).filter((row) => row.stream === 'exec' && row.rule === 'cp-directory-probe');
    expect(probes.map((row) => [row.decision, row.approvalId])).toEqual([
      ['allow', null],
      ['allow', null],
    ]);
    for (const minor of [27, 33]) {
      const probe = await endedSession((s) => JSON.stringify(s.command) === JSON.stringify(['test', '-d', `in-${minor}`]));
      expect(probe).toMatchObject({ approvalId: null, exitCode: 0, endReason: 'completed' });
      expect(probe.castPath).toBeTruthy();
    }
    // No other approval was asked for: four human decisions in all.
    const asked = (await api<{ items: Approval[] }>(b, alice, 'GET', `/v1/approvals?agent=${b.agentName}`)).json.items.filter((a) => a.requestedBy !== null && a.requestedBy.startsWith('agent:'));
    expect(asked.map((a) => a.state).sort()).toEqual(['approved', 'approved', 'approved', 'approved']);
  }, 90_000);
});

describe('the default policy holds escalation through kubectl; plain data passes', () => {
  let b: TestBastion;
  const dir = mkdtempSync(join(tmpdir(), 'kb-escalation-'));
  const body = (name: string, obj: unknown) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(obj));
    return file;
  };

  beforeAll(async () => {
    // Nobody decides: each held request is refused after a second.
    b = await startTestBastion({ extraArgs: ['--hold-timeout', '1', '--max-pending-per-agent', '50'] });
    // kubectl patch reads the object first; the CA bundle every namespace has in a real cluster.
    b.sim.store.create('configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kube-root-ca.crt', namespace: 'demo' }, data: { 'ca.crt': 'real' } });
  });
  afterAll(async () => {
    await b?.stop();
  });

  // `--raw` needs no discovery, so kubectl sends these even though the simulator serves only core resources.
  const held: [label: string, args: string[], rule: string][] = [
    ['create a rolebinding', ['create', '--raw', '/apis/rbac.authorization.k8s.io/v1/namespaces/demo/rolebindings', '-f', body('rb', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'me-admin' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' }, subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: 'demo' }] })], 'rbac-writes-need-approval'],
    ['create a clusterrolebinding', ['create', '--raw', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', '-f', body('crb', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'me' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' }, subjects: [] })], 'rbac-writes-need-approval'],
    ['mint a service account token', ['create', '--raw', '/api/v1/namespaces/demo/serviceaccounts/default/token', '-f', body('tr', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [] } })], 'identity-writes-need-approval'],
    ['approve a CSR', ['replace', '--validate=false', '--raw', '/apis/certificates.k8s.io/v1/certificatesigningrequests/csr-1/approval', '-f', body('csr', { apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { name: 'csr-1' } })], 'identity-writes-need-approval'],
    ['create a mutating webhook', ['create', '--raw', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', '-f', body('wh', { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'wh' }, webhooks: [] })], 'admission-and-api-writes-need-approval'],
    ['create a persistent volume', ['create', '--raw', '/api/v1/persistentvolumes', '-f', body('pv', { apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'root' }, spec: { hostPath: { path: '/' } } })], 'node-and-storage-writes-need-approval'],
    ['run a pod', ['run', 'evil', '-n', 'demo', '--image=busybox', '--restart=Never', '--', 'sh'], 'workload-writes-need-approval'],
    ['patch kube-root-ca.crt in an app namespace', ['patch', 'configmap', 'kube-root-ca.crt', '-n', 'demo', '-p', '{"data":{"ca.crt":"forged"}}'], 'trust-configmap-writes-need-approval'],
    ['delete every configmap in a namespace at once', ['delete', '--raw', '/api/v1/namespaces/demo/configmaps'], 'trust-configmap-writes-need-approval'],
  ];

  it.each([27, 33])('kubectl 1.%i: each escalation is held under its own rule and never reaches the cluster', async (minor) => {
    const cursor = await b.auditCount();
    const since = b.sim.requests.entries.length;
    const results = await Promise.all(held.map(([, args]) => runKubectl({ minor, kubeconfig: b.agentKubeconfig, args })));
    for (const [i, [label, args, rule]] of held.entries()) {
      expect({ label, code: results[i]!.code }).toEqual({ label, code: 1 });
      expect({ label, stderr: results[i]!.stderr }).toEqual({ label, stderr: expect.stringMatching(/kube-bastion approval apr_[a-z2-7]{20} was not decided in time/) });
      const path = args.includes('--raw') ? args[args.indexOf('--raw') + 1]! : undefined;
      const rows = (await b.auditSince(cursor)).filter((row) => row.rule === rule && (path === undefined || row.path === path));
      expect({ label, decisions: [...new Set(rows.map((row) => row.decision))] }).toEqual({ label, decisions: ['approval'] });
    }
    const writes = b.sim.requests.entries.slice(since).filter((e) => e.method !== 'GET');
    expect(writes.map((e) => `${e.method} ${e.path}`)).toEqual([]);
  }, 30_000);

  it.each([27, 33])('kubectl 1.%i: plain configmaps are created, changed and deleted; reads of trust-bearing ones pass', async (minor) => {
    const kubectl = (...args: string[]) => runKubectl({ minor, kubeconfig: b.agentKubeconfig, args });
    const name = `plain-${minor}`;
    expect((await kubectl('create', 'configmap', name, '-n', 'demo', '--from-literal=k=v')).code).toBe(0);
    // The simulator has no PATCH; that it answers at all shows the bastion let the patch through.
    const since = b.sim.requests.entries.length;
    const patched = await kubectl('patch', 'configmap', name, '-n', 'demo', '-p', '{"data":{"k":"w"}}');
    expect(patched.stderr).toBe('Error from server (MethodNotAllowed): the simulated cluster does not support PATCH on configmaps\n');
    expect(b.sim.requests.entries.slice(since).filter((e) => e.method === 'PATCH').map((e) => e.path.split('?')[0])).toEqual([`/api/v1/namespaces/demo/configmaps/${name}`]);
    expect((await kubectl('delete', 'configmap', name, '-n', 'demo')).code).toBe(0);
    expect(b.sim.store.get('configmaps', 'demo', name)).toBeUndefined();
    const read = await kubectl('get', 'configmap', 'kube-root-ca.crt', '-n', 'demo', '-o', 'jsonpath={.data.ca\\.crt}');
    expect(read.stdout.toString()).toBe('real');
  });
});
