// Approval options with real kubectl: a policy rule that approves by itself, the pending webhook,
// the per-agent limit on pending holds, and the warning before expiry.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_POLICY_YAML } from '../../src/policy/index.js';
import type { Approval } from '../../src/model/approval.js';
import { runKubectl } from '../helpers/kubectl.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';

let b: TestBastion;
let hook: http.Server;
const notices: Array<{ event: string; approval: Approval; approve: string }> = [];

beforeAll(async () => {
  hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      notices.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'kb-policy-auto-'));
  const policy = join(dir, 'policy.yaml');
  // busybox exec is approved by policy for 60 s; everything else as in the default policy.
  writeFileSync(
    policy,
    DEFAULT_POLICY_YAML.replace(
      '  - name: pod-streams-need-approval\n',
      '  - name: busybox-exec-auto\n    match: { streams: [exec], namespaces: [default], names: [busybox] }\n    action: approval\n    autoApprove: { ttlSeconds: 60 }\n\n  - name: pod-streams-need-approval\n',
    ),
  );
  b = await startTestBastion({
    extraArgs: ['--policy', policy, '--hold-timeout', '2', '--max-pending-per-agent', '1', '--webhook', `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`, '--expiry-warning', '1'],
  });
});

afterAll(async () => {
  await b?.stop();
  hook?.close();
});

describe('approval options', () => {
  it('a policy rule with autoApprove lets the exec run at once, recorded as policy:<rule>@<sha256>', async () => {
    const r = await runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'default', 'busybox', '--', 'echo', 'auto'] });
    expect(r.stdout.toString()).toBe('auto\n');
    expect(r.code).toBe(0);
    const approvals = await b.bastion.approvals.list({ agent: b.agentName });
    const auto = approvals.find((a) => a.scope.kind === 'stream' && a.scope.pod === 'busybox');
    expect(auto?.state).toBe('approved');
    expect(auto?.decidedBy).toBe(`policy:busybox-exec-auto@${b.bastion.policy.current.hash}`);
  });

  it('posts a webhook notice for a pending approval, and limits pending holds per agent', async () => {
    const first = runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '--', 'echo', 'one'] });
    await expect.poll(() => notices.length, { timeout: 10_000 }).toBe(1);
    expect(notices[0]).toMatchObject({ event: 'approval.pending', approval: { state: 'pending', agent: b.agentName, scope: { pod: 'web-0', container: 'app' } } });
    expect(notices[0]!.approve).toBe(`${b.bastion.controlUrl}/v1/approvals/${notices[0]!.approval.id}/approve`);
    // A second, different operation while the first is pending: over the limit of 1.
    const second = await runKubectl({ minor: 27, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '-c', 'sidecar', '--', 'echo', 'two'] });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('already has 1 pending approvals (limit 1)');
    expect((await first).stderr).toContain('was not decided in time');
  });

  it('warns the agent before its approval expires', async () => {
    const { token } = await b.bastion.store.users.createUser('carol', 'approver');
    const res = await fetch(`${b.bastion.controlUrl}/v1/approvals`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ agent: b.agentName, namespace: 'demo', pod: 'shell-0', container: 'main', verbs: ['exec'], ttlSeconds: 3, reason: 'warning test' }),
    });
    const approval = (await res.json()) as Approval;
    const r = await runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'shell-0', '--', 'sleep', '10'] });
    expect(r.stderr).toContain(`[kube-bastion] approval ${approval.id} expires in 1s`);
    expect(r.stderr).toContain(`approval ${approval.id} expired`);
  });
});
