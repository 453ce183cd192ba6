// REST calls with real kubectl against the simulated cluster.
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectLogsFollowed, runKubectl } from '../helpers/kubectl.js';
import { startSim, type StartedSim } from '../helpers/sim.js';

let env: StartedSim;
beforeAll(async () => {
  env = await startSim();
});
afterAll(async () => {
  await env?.sim.stop();
});

describe.each([27, 33])('kubectl 1.%i REST against the sim', (minor) => {
  const kubectl = (...args: string[]) => runKubectl({ minor, kubeconfig: env.kubeconfig, args });

  it('get pods -A lists the seeded pods as a table', async () => {
    const result = await kubectl('get', 'pods', '-A');
    expect(result.code).toBe(0);
    const rows = result.stdout.toString().trim().split('\n').map((l) => l.split(/\s+/));
    expect(rows[0]).toEqual(['NAMESPACE', 'NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
    expect(rows.slice(1).map((r) => r.slice(0, 4))).toEqual(
      expect.arrayContaining([
        ['demo', 'web-0', '2/2', 'Running'],
        ['demo', 'shell-0', '1/1', 'Running'],
      ]),
    );
  });

  it('get pod -o json returns the pod object', async () => {
    const result = await kubectl('get', 'pod', '-n', 'demo', 'web-0', '-o', 'json');
    expect(result.code).toBe(0);
    const pod = JSON.parse(result.stdout.toString());
    expect(pod.metadata.name).toBe('web-0');
    expect(pod.metadata.annotations['kubectl.kubernetes.io/default-container']).toBe('app');
    expect(pod.spec.containers.map((c: { name: string }) => c.name)).toEqual(['app', 'sidecar']);
    expect(pod.status.phase).toBe('Running');
  });

  it('logs -f streams new lines as the container writes them', async () => {
    await expectLogsFollowed(minor, env.kubeconfig, (get, expected) => expect.poll(get, { timeout: 15_000 }).toContain(expected));
  });

  it('get secret and configmaps work', async () => {
    const secret = await kubectl('get', 'secret', '-n', 'demo', 'db-credentials', '-o', 'jsonpath={.data.password}');
    expect(Buffer.from(secret.stdout.toString(), 'base64').toString()).toBe('s3cr3t-demo');
    const cms = await kubectl('get', 'configmaps', '-n', 'demo', '-o', 'name');
    expect(cms.stdout.toString()).toContain('configmap/web-config');
  });
});

describe('kubectl delete pod', () => {
  it('removes the pod and stops its processes (1.27 and 1.33)', async () => {
    const first = await runKubectl({ minor: 27, kubeconfig: env.kubeconfig, args: ['delete', 'pod', '-n', 'default', 'busybox'] });
    expect(first.stdout.toString()).toBe('pod "busybox" deleted\n');
    expect(first.code).toBe(0);
    const again = await runKubectl({ minor: 33, kubeconfig: env.kubeconfig, args: ['delete', 'pod', '-n', 'default', 'busybox'] });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('pods "busybox" not found');
    expect(env.sim.store.get('pods', 'default', 'busybox')).toBeUndefined();
    const list = await runKubectl({ minor: 33, kubeconfig: env.kubeconfig, args: ['get', 'pods', '-A', '-o', 'name'] });
    expect(list.stdout.toString()).not.toContain('busybox');
  });

  it('answers a request without the bearer token with a 401 Status', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.get(`${env.sim.url}/api/v1/pods`, { ca: env.sim.caPem }, (res) => {
        let data = '';
        res.on('data', (d: Buffer) => (data += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
      });
      req.on('error', reject);
    });
    expect(status).toBe(401);
    expect(JSON.parse(body)).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Unauthorized', code: 401 });
  });
});
