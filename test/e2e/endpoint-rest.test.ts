// Real kubectl 1.27 and 1.33 through the bastion onto the simulated cluster: what passes, what is
// refused, and proof from the sim's own request log that refused requests never reached it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectLogsFollowed, runKubectl } from '../helpers/kubectl.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';

let b: TestBastion;
beforeAll(async () => {
  // A short hold: requests that need an approval nobody gives are refused after a second.
  b = await startTestBastion({ extraArgs: ['--hold-timeout', '1'] });
});
afterAll(async () => {
  await b?.stop();
});

/** Requests the upstream sim saw whose path starts with `prefix`. */
function simSaw(prefix: string, since: number): string[] {
  return b.sim.requests.entries.slice(since).filter((e) => e.path.startsWith(prefix)).map((e) => `${e.method} ${e.path}`);
}

describe.each([27, 33])('kubectl 1.%i through the bastion', (minor) => {
  const kubectl = (...args: string[]) => runKubectl({ minor, kubeconfig: b.agentKubeconfig, args });

  it('lists pods across namespaces', async () => {
    const r = await kubectl('get', 'pods', '-A');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toMatch(/^NAMESPACE\s+NAME\s+READY\s+STATUS/);
    expect(r.stdout.toString()).toMatch(/demo\s+web-0\s+2\/2\s+Running/);
  });

  it('gets a pod as YAML', async () => {
    const r = await kubectl('get', 'pod', '-n', 'demo', 'web-0', '-o', 'yaml');
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toContain('name: web-0');
    expect(r.stdout.toString()).toContain('kubectl.kubernetes.io/default-container: app');
  });

  it('watches pods until --request-timeout ends the watch', async () => {
    const r = await kubectl('get', 'pods', '-n', 'demo', '-w', '--request-timeout=2s');
    expect(r.stdout.toString()).toMatch(/web-0\s+2\/2\s+Running/);
    expect(r.code).toBe(0);
  });

  it('follows logs as they are written', async () => {
    await expectLogsFollowed(minor, b.agentKubeconfig, (get, expected) => expect.poll(get, { timeout: 15_000 }).toContain(expected));
  });

  it('creates and deletes a configmap', async () => {
    const created = await kubectl('create', 'configmap', `via-bastion-${minor}`, '-n', 'demo', '--from-literal=k=v');
    expect(created.stderr).toBe('');
    expect(created.stdout.toString()).toBe(`configmap/via-bastion-${minor} created\n`);
    expect(b.sim.store.get('configmaps', 'demo', `via-bastion-${minor}`)?.data).toEqual({ k: 'v' });
    const deleted = await kubectl('delete', 'configmap', `via-bastion-${minor}`, '-n', 'demo');
    expect(deleted.stdout.toString()).toBe(`configmap "via-bastion-${minor}" deleted\n`);
    expect(b.sim.store.get('configmaps', 'demo', `via-bastion-${minor}`)).toBeUndefined();
  });

  it('holds a configmap write in kube-system (no approval: refused, nothing upstream); reads there pass', async () => {
    b.sim.store.create('configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `aws-auth-${minor}`, namespace: 'kube-system' }, data: { mapRoles: '[]' } });
    const since = b.sim.requests.entries.length;
    const created = await kubectl('create', 'configmap', `x-${minor}`, '-n', 'kube-system', '--from-literal=k=v');
    expect(created.code).toBe(1);
    expect(created.stderr).toMatch(/^error: failed to create configmap: configmaps is forbidden: kube-bastion approval apr_[a-z2-7]{20} was not decided in time/);
    const deleted = await kubectl('delete', 'configmap', `aws-auth-${minor}`, '-n', 'kube-system');
    expect(deleted.code).toBe(1);
    expect(deleted.stderr).toMatch(new RegExp(`configmaps "aws-auth-${minor}" is forbidden: kube-bastion approval apr_[a-z2-7]{20} was not decided in time`));
    expect(simSaw('/api/v1/namespaces/kube-system/configmaps', since).filter((p) => !p.startsWith('GET'))).toEqual([]);
    expect(b.sim.store.get('configmaps', 'kube-system', `x-${minor}`)).toBeUndefined();
    expect(b.sim.store.get('configmaps', 'kube-system', `aws-auth-${minor}`)).toBeDefined();
    const read = await kubectl('get', 'configmap', `aws-auth-${minor}`, '-n', 'kube-system', '-o', 'jsonpath={.data.mapRoles}');
    expect(read.code).toBe(0);
    expect(read.stdout.toString()).toBe('[]');
  });

  it('holds get secret, then refuses it with a Status kubectl prints; the sim never sees it', async () => {
    const since = b.sim.requests.entries.length;
    const r = await kubectl('get', 'secret', '-n', 'demo', 'db-credentials');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Error from server \(Forbidden\): secrets "db-credentials" is forbidden: kube-bastion approval apr_[a-z2-7]{20} was not decided in time/);
    expect(simSaw('/api/v1/namespaces/demo/secrets', since)).toEqual([]);
  });

  it('holds delete namespace demo, then refuses it; the namespace survives', async () => {
    const since = b.sim.requests.entries.length;
    const r = await kubectl('delete', 'namespace', 'demo');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Error from server \(Forbidden\): namespaces "demo" is forbidden: kube-bastion approval apr_[a-z2-7]{20} was not decided in time/);
    expect(simSaw('/api/v1/namespaces/demo', since).filter((p) => p.startsWith('DELETE'))).toEqual([]);
    expect(b.sim.store.get('namespaces', undefined, 'demo')).toBeDefined();
  });

  it('holds exec without approval, then refuses every transport attempt alike; no upgrade reaches the sim', async () => {
    const since = b.sim.requests.entries.length;
    const bastionSince = await b.auditCount();
    const r = await kubectl('exec', '-n', 'demo', 'web-0', '--', 'echo', 'hi');
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('');
    expect(r.stderr).toMatch(/pods "web-0" is forbidden: kube-bastion approval apr_[a-z2-7]{20} was not decided in time/);
    expect(b.sim.requests.entries.slice(since).filter((e) => e.upgrade)).toEqual([]);
    // 1.33 tries WebSocket first, then SPDY: both attempts are refused the same way.
    const attempts = (await b.auditSince(bastionSince)).filter((row) => row.event === 'request' && row.path?.includes('/exec'));
    expect(attempts.map((row) => `${row.method} ${row.decision} ${row.statusCode}`)).toEqual(
      minor === 27 ? ['POST approval 403'] : ['GET approval 403', 'POST approval 403'],
    );
  });

  it('refuses --as and --as-group impersonation; the sim never sees Impersonate headers', async () => {
    const since = b.sim.requests.entries.length;
    const as = await kubectl('get', 'pods', '-n', 'demo', '--as', 'system:admin');
    expect(as.code).toBe(1);
    expect(as.stderr).toMatch(/forbidden: kube-bastion rule "[^"]+" denies agent "test-agent"/);
    const asGroup = await kubectl('get', 'pods', '-n', 'demo', '--as', 'x', '--as-group', 'system:masters');
    expect(asGroup.code).toBe(1);
    const seen = b.sim.requests.entries.slice(since);
    expect(seen.filter((e) => Object.keys(e.headers).some((h) => h.startsWith('impersonate-')))).toEqual([]);
  });
});

describe('raw requests', () => {
  it('a raw Impersonate-User header is refused and never forwarded', async () => {
    const since = b.sim.requests.entries.length;
    const res = await b.rawRequest('GET', '/api/v1/namespaces/demo/pods', { 'Impersonate-User': 'system:admin' });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', reason: 'Forbidden' });
    expect(b.sim.requests.entries.slice(since)).toEqual([]);
  });

  it('X-Remote-User and a second Authorization never reach upstream on an allowed request', async () => {
    const since = b.sim.requests.entries.length;
    const res = await b.rawRequest('GET', '/api/v1/namespaces/demo/pods', { 'X-Remote-User': 'admin', 'X-Remote-Group': 'system:masters' });
    expect(res.status).toBe(200);
    const seen = b.sim.requests.entries.slice(since);
    expect(seen).toHaveLength(1);
    expect(Object.keys(seen[0]!.headers).filter((h) => h.startsWith('x-remote-') || h.startsWith('impersonate-'))).toEqual([]);
  });

  it('an unknown token gets a 401 Status and nothing is forwarded', async () => {
    const since = b.sim.requests.entries.length;
    const res = await b.rawRequest('GET', '/api/v1/pods', {}, 'kba_not-a-real-token');
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
    expect(b.sim.requests.entries.slice(since)).toEqual([]);
  });

  it('a non-canonical path is refused before anything is forwarded', async () => {
    const since = b.sim.requests.entries.length;
    for (const path of ['/api/v1/namespaces/demo/secrets/..%2fpods', '/api/v1/namespaces/demo//pods', '/api/v1/namespaces/demo/pods/web-0/exec;x=1']) {
      const res = await b.rawRequest('GET', path);
      expect(res.status, path).toBe(400);
      expect(JSON.parse(res.body).message, path).toContain('cannot classify');
    }
    expect(b.sim.requests.entries.slice(since)).toEqual([]);
  });
});

describe('every allowed read audited (its row group-committed within the window)', () => {
  it('N kubectl GETs of a pod give N audit rows, each with its status and bytes, and the chain verifies', async () => {
    const since = await b.auditCount();
    const N = 6;
    for (let i = 0; i < N; i++) {
      const r = await runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['get', 'pod', '-n', 'demo', 'web-0', '-o', 'name'] });
      expect(r.stdout.toString()).toBe('pod/web-0\n');
      expect(r.code).toBe(0);
    }
    const reads = async () => (await b.auditSince(since)).filter((r) => r.event === 'request' && r.path === '/api/v1/namespaces/demo/pods/web-0');
    // Committed within the window (50 ms): polled, not waited for.
    await expect.poll(async () => (await reads()).length, { timeout: 5000 }).toBe(N);
    await new Promise((r) => setTimeout(r, 200));
    const rows = await reads();
    expect(rows).toHaveLength(N);
    for (const row of rows) {
      expect(row).toMatchObject({ method: 'GET', verb: 'get', decision: 'allow', statusCode: 200, agentName: b.agentName });
      expect(row.bytesOut).toBeGreaterThan(0);
    }
    expect(await b.bastion.store.audit.verify()).toMatchObject({ ok: true });
  });
});
