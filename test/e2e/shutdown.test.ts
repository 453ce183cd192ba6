// Graceful shutdown with a live session: after the grace period the session is cut with a Status
// that says the bastion is shutting down, and its row records why.
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { runKubectl } from '../helpers/kubectl.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';

let b: TestBastion | undefined;
afterAll(async () => {
  await b?.stop();
});

describe('shutdown during a session', () => {
  it('cuts the session after the grace period with a Status naming the reason', async () => {
    b = await startTestBastion({ extraArgs: ['--shutdown-grace', '1'] });
    const approval = await b.bastion.approvals.grant(
      { agent: b.agentName, scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] }, ttlSeconds: 300, reason: 'shutdown test' },
      { kind: 'user', name: 'op', role: 'approver' },
    );
    const run = runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '--', 'sh', '-c', 'while :; do echo alive; sleep 0.1; done'] });
    // The row is written before upstream is dialed; the upstream protocol is set once it is.
    await expect.poll(async () => (await b!.bastion.store.sessions.list({ approvalId: approval.id }))[0]?.upstreamProtocol ?? null, { timeout: 15_000 }).not.toBeNull();
    const stopping = b.bastion.stop();
    const r = await run;
    await stopping;
    expect(r.stdout.toString()).toContain('alive');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`kube-bastion ended the session under approval ${approval.id}: the bastion is shutting down`);
    const reopened = openStore(join(b.dir, 'data'));
    try {
      const [session] = await reopened.sessions.list({ approvalId: approval.id });
      expect(session).toMatchObject({ state: 'ended', endReason: 'shutdown' });
    } finally {
      await reopened.close();
    }
    b = undefined;
  });
});
