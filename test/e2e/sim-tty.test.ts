// TTY sessions with real kubectl in a real terminal (tmux): exec -it sees resizes, attach -it
// joins the pod's long-running shell.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freshHome, kubectlPath } from '../helpers/kubectl.js';
import { startSim, upgradesSince, type StartedSim } from '../helpers/sim.js';
import { expectShellFollowsResize, TmuxSession } from '../helpers/tmux.js';

let env: StartedSim;
const sessions: TmuxSession[] = [];
beforeAll(async () => {
  env = await startSim();
});
afterEach(() => {
  for (const s of sessions.splice(0)) s.kill();
});
afterAll(async () => {
  await env?.sim.stop();
});

function terminal(): TmuxSession {
  const s = new TmuxSession();
  sessions.push(s);
  return s;
}

const CLIENTS = [
  { label: '1.27 (SPDY)', minor: 27, env: {}, upgrade: 'POST spdy/3.1' },
  { label: '1.33 (WebSocket)', minor: 33, env: {}, upgrade: 'GET websocket' },
];

describe.each(CLIENTS)('kubectl $label with a terminal', (client) => {
  it('exec -it sees the terminal size and its changes', async () => {
    const before = env.sim.requests.entries.length;
    const term = terminal();
    term.start(`${kubectlPath(client.minor)} --kubeconfig ${env.kubeconfig} exec -it -n demo web-0 -- sh`, { width: 100, height: 30 }, { HOME: freshHome(), ...client.env });
    await expectShellFollowsResize(term, 3);
    expect(upgradesSince(env.sim, before)).toEqual([client.upgrade]);
  });

  it('attach -it joins the running shell of demo/shell-0', async () => {
    const term = terminal();
    term.start(`${kubectlPath(client.minor)} --kubeconfig ${env.kubeconfig} attach -it -n demo shell-0`, { width: 90, height: 25 }, { HOME: freshHome(), ...client.env });
    await term.waitFor(/If you don't see a command prompt, try pressing enter/);
    term.type(`echo attached-$((6*7))-${client.minor}`);
    await term.waitFor(new RegExp(`^attached-42-${client.minor}$`, 'm'));
    term.type('stty size');
    await term.waitFor(/^25 90$/m);
    // Leaving the shell ends the container's main process; the attach ends with it, cleanly.
    term.type('exit');
    await term.waitFor(/Session ended, resume using/);
    await term.waitFor(/EXIT=0/);
    // restartPolicy Always: the shell comes back for the next attach.
    await expect.poll(() => env.sim.store.get('pods', 'demo', 'shell-0')?.status, { timeout: 10_000 }).toMatchObject({
      containerStatuses: [expect.objectContaining({ ready: true })],
    });
  });
});
