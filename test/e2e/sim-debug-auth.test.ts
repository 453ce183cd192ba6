// kubectl debug, auth can-i and auth whoami against the simulated cluster directly, and the pod
// processes' identity: started as root (as this suite runs), the sim runs them as nobody.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freshHome, kubectlPath, runKubectl } from '../helpers/kubectl.js';
import { startSim, type StartedSim } from '../helpers/sim.js';
import { TmuxSession } from '../helpers/tmux.js';
import { nobodyUser } from '../../src/sim/runtime/user.js';

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

const MINORS = [27, 33];
const kubectl = (minor: number, args: string[], stdin?: string) =>
  runKubectl({ minor, kubeconfig: env.kubeconfig, args, ...(stdin !== undefined ? { stdin } : {}) });

interface EphemeralStatus {
  name: string;
  state: { terminated?: { exitCode: number } };
}

describe.each(MINORS)('kubectl 1.%i', (minor) => {
  it('auth can-i answers yes (exit 0), for resources and non-resource URLs, and --list lists the rules', async () => {
    const can = await kubectl(minor, ['auth', 'can-i', 'create', 'pods/portforward', '-n', 'demo']);
    expect([can.code, can.stdout.toString(), can.stderr]).toEqual([0, 'yes\n', '']);
    const url = await kubectl(minor, ['auth', 'can-i', 'get', '/healthz']);
    expect([url.code, url.stdout.toString()]).toEqual([0, 'yes\n']);
    const list = await kubectl(minor, ['auth', 'can-i', '--list', '-n', 'demo']);
    expect(list.code).toBe(0);
    expect(list.stdout.toString()).toMatch(/^\*\.\*\s+\[\]\s+\[\]\s+\[\*\]$/m);
  });

  it('auth whoami names the sim user and its groups', async () => {
    const who = await kubectl(minor, ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username} {.status.userInfo.groups}']);
    expect(who.stderr).toBe('');
    expect(who.stdout.toString()).toBe('kube-bastion-sim-admin ["system:masters","system:authenticated"]');
  });

  it('debug -i runs an ephemeral container as a real process, which stays terminated afterwards', async () => {
    const result = await kubectl(minor, ['debug', '-i', '-n', 'demo', 'web-0', '--image=busybox', '--target=app', '--', 'sh'], 'echo "debugging $CONTAINER_NAME in $POD_NAME"; exit 0\n');
    // kubectl prints its notices on stdout, before the container's output.
    const stdout = result.stdout.toString();
    const name = /Defaulting debug container name to (debugger-[a-z0-9]+)\./.exec(stdout)?.[1];
    expect(name, stdout + result.stderr).toBeDefined();
    expect(result.code).toBe(0);
    expect(stdout).toMatch(new RegExp(`\\.\\n(If you don't see a command prompt, try pressing enter\\.\\n)?debugging ${name} in web-0\\n$`));
    const pod = env.sim.store.get('pods', 'demo', 'web-0')!;
    expect((pod.spec as { ephemeralContainers: Array<{ name: string; targetContainerName?: string; image?: string }> }).ephemeralContainers).toContainEqual(
      expect.objectContaining({ name, image: 'busybox', targetContainerName: 'app' }),
    );
    const statuses = (pod.status as { ephemeralContainerStatuses: EphemeralStatus[] }).ephemeralContainerStatuses;
    expect(statuses.find((s) => s.name === name)?.state.terminated?.exitCode).toBe(0);
  });

  it('debug -it gives an interactive shell in a terminal', async () => {
    const term = new TmuxSession();
    sessions.push(term);
    term.start(`${kubectlPath(minor)} --kubeconfig ${env.kubeconfig} debug -it -n demo web-0 --image=busybox --target=app -- sh`, { width: 100, height: 30 }, { HOME: freshHome() });
    await term.waitFor(/If you don't see a command prompt, try pressing enter/);
    term.type(`echo debug-$((6*7))-${minor}`);
    await term.waitFor(new RegExp(`^debug-42-${minor}$`, 'm'));
    term.type('stty size');
    await term.waitFor(/^30 100$/m);
    term.type('exit');
    await term.waitFor(/EXIT=0/);
  });
});

describe('pod processes', () => {
  it.runIf(process.getuid?.() === 0)('run as nobody in a directory of their own when the sim runs as root', async () => {
    const { uid, gid } = nobodyUser();
    const result = await kubectl(33, ['exec', '-n', 'demo', 'web-0', '--', 'sh', '-c', 'id -u; id -g; id -G; pwd; echo x > own-file && echo wrote']);
    expect(result.code).toBe(0);
    const [u, g, groups, dir, wrote] = result.stdout.toString().trim().split('\n');
    expect([Number(u), Number(g), groups, wrote]).toEqual([uid, gid, String(gid), 'wrote']);
    const stat = statSync(dir!);
    expect([stat.uid, stat.mode & 0o777]).toEqual([uid, 0o700]);
    // The long-running containers too, not only exec sessions: the app's HTTP server process.
    const servers = readdirSync('/proc')
      .filter((pid) => /^\d+$/.test(pid))
      .filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('server.listen(8080, host');
        } catch {
          return false; // gone meanwhile
        }
      });
    expect(servers.length).toBeGreaterThan(0);
    for (const pid of servers) expect(statSync(`/proc/${pid}`).uid).toBe(uid);
  });
});
