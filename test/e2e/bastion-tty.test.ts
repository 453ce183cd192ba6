// TTY sessions through the bastion with real kubectl in a real terminal: resizes reach the
// container through the relay, and attach -it joins the pod's shell.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freshHome, kubectlPath } from '../helpers/kubectl.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { expectShellFollowsResize, TmuxSession } from '../helpers/tmux.js';

let b: TestBastion;
const terms: TmuxSession[] = [];
beforeAll(async () => {
  b = await startTestBastion();
  const { token } = await b.bastion.store.users.createUser('tty-approver', 'approver');
  for (const scope of [
    { pod: 'web-0', container: 'app', verbs: ['exec'] },
    { pod: 'shell-0', container: 'main', verbs: ['attach'] },
  ]) {
    const res = await fetch(`${b.bastion.controlUrl}/v1/approvals`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ agent: b.agentName, namespace: 'demo', ttlSeconds: 600, reason: 'tty tests', ...scope }),
    });
    expect(res.status).toBe(201);
  }
});
afterEach(() => {
  for (const t of terms.splice(0)) t.kill();
});
afterAll(async () => {
  await b?.stop();
});

describe.each([
  { label: '1.27 (SPDY)', minor: 27 },
  { label: '1.33 (WebSocket)', minor: 33 },
])('kubectl $label with a terminal, through the bastion', ({ minor }) => {
  it('exec -it sees the terminal size and its changes', async () => {
    const term = new TmuxSession();
    terms.push(term);
    term.start(`${kubectlPath(minor)} --kubeconfig ${b.agentKubeconfig} exec -it -n demo web-0 -- sh`, { width: 100, height: 30 }, { HOME: freshHome() });
    await expectShellFollowsResize(term, 4);
  });

  it('attach -it joins the running shell of demo/shell-0', async () => {
    const term = new TmuxSession();
    terms.push(term);
    term.start(`${kubectlPath(minor)} --kubeconfig ${b.agentKubeconfig} attach -it -n demo shell-0`, { width: 90, height: 25 }, { HOME: freshHome() });
    await term.waitFor(/If you don't see a command prompt, try pressing enter/);
    term.type(`echo via-bastion-$((6*7))-${minor}`);
    await term.waitFor(new RegExp(`^via-bastion-42-${minor}$`, 'm'));
    term.type('stty size');
    await term.waitFor(/^25 90$/m);
  });
});
