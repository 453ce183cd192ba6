// The bastion in front of an upstream given by kubeconfig (here: a separately started simulated
// cluster whose token comes from an exec credential plugin), with upstream impersonation, plus
// agent lifecycle through the control API.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimCluster } from '../../src/sim/cluster.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { runKubectl } from '../helpers/kubectl.js';

let sim: SimCluster;
let b: TestBastion;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kb-upstream-'));
  sim = new SimCluster();
  await sim.start();
  // The upstream credential comes from an exec plugin, as with cloud providers' kubeconfigs.
  const plugin = join(dir, 'credential-plugin.sh');
  writeFileSync(plugin, `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"${sim.token}"}}'\n`);
  chmodSync(plugin, 0o755);
  const kubeconfig = join(dir, 'upstream.kubeconfig');
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'real', cluster: { server: sim.url, 'certificate-authority-data': Buffer.from(sim.caPem).toString('base64') } }],
      users: [{ name: 'plugin-user', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } } }],
      contexts: [
        { name: 'other', context: { cluster: 'real', user: 'nobody' } },
        { name: 'prod', context: { cluster: 'real', user: 'plugin-user' } },
      ],
      'current-context': 'other',
    }),
  );
  b = await startTestBastion({ extraArgs: ['--upstream-kubeconfig', kubeconfig, '--upstream-context', 'prod', '--impersonate'], sim });
});

afterAll(async () => {
  await b?.stop();
  await sim?.stop();
});

describe('upstream from --upstream-kubeconfig with an exec credential plugin', () => {
  it('forwards with the plugin token and impersonates the agent; client identity headers never pass', async () => {
    const since = sim.requests.entries.length;
    const r = await runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['get', 'pods', '-n', 'demo', '-o', 'name'] });
    expect(r.stderr).toBe('');
    expect(r.stdout.toString()).toBe('pod/shell-0\npod/web-0\n');
    const list = sim.requests.entries.slice(since).find((e) => e.path.startsWith('/api/v1/namespaces/demo/pods'));
    expect(list?.headers['impersonate-user']).toBe('kube-bastion:agent:test-agent');
    expect(list?.headers['impersonate-extra-kube-bastion.io%2fagent-id']).toMatch(/^[0-9a-f-]{36}$/);
    const raw = await b.rawRequest('GET', '/api/v1/namespaces/demo/configmaps', { 'X-Remote-User': 'admin' });
    expect(raw.status).toBe(200);
    const last = sim.requests.entries.at(-1)!;
    expect(last.headers['x-remote-user']).toBeUndefined();
    expect(last.headers['impersonate-user']).toBe('kube-bastion:agent:test-agent');
  });

  it('answers with the upstream /version (what the kubectl dispatcher picks its version by)', async () => {
    const v = await b.rawRequest('GET', '/version');
    expect(JSON.parse(v.body).gitVersion).toBe('v1.33.1-sim');
  });
});

describe('agents through the control API', () => {
  it('creates an agent whose kubeconfig works, and a revoked agent gets 401', async () => {
    const { token: adminToken } = await b.bastion.store.users.createUser('root-admin', 'admin');
    const res = await fetch(`${b.bastion.controlUrl}/v1/agents`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'api-agent' }),
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { agent: { name: string }; token: string; kubeconfig: string };
    expect(created.agent.name).toBe('api-agent');
    const kubeconfig = join(dir, 'api-agent.kubeconfig');
    writeFileSync(kubeconfig, created.kubeconfig);
    const ok = await runKubectl({ minor: 27, kubeconfig, args: ['get', 'ns', '-o', 'name'] });
    expect(ok.stdout.toString()).toContain('namespace/demo');

    const bad = await fetch(`${b.bastion.controlUrl}/v1/agents`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'x', color: 'blue' }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { field: string } }).error.field).toBe('color');

    const revoke = await fetch(`${b.bastion.controlUrl}/v1/agents/api-agent/revoke`, { method: 'POST', headers: { Authorization: `Bearer ${adminToken}` } });
    expect(revoke.status).toBe(200);
    const refused = await runKubectl({ minor: 27, kubeconfig, args: ['get', 'ns'] });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/Unauthorized|You must be logged in/);
  });
});
