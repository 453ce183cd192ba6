// Real kubectl (1.27 to 1.33, SPDY and WebSocket) against the simulated cluster: exec with
// byte-exact stdin/stdout, exit codes, stderr and container selection.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXEC_CLIENTS, runKubectl } from '../helpers/kubectl.js';
import { startSim, upgradesSince, type StartedSim } from '../helpers/sim.js';

let env: StartedSim;
beforeAll(async () => {
  env = await startSim();
});
afterAll(async () => {
  await env?.sim.stop();
});

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe.each(EXEC_CLIENTS)('kubectl $label exec against the sim', (client) => {
  const expectedUpgrade = client.transport === 'spdy' ? 'POST spdy/3.1' : 'GET websocket';
  const exec = (args: string[], stdin?: Buffer) =>
    runKubectl({ minor: client.minor, kubeconfig: env.kubeconfig, env: client.env, args: ['exec', ...args], ...(stdin ? { stdin } : {}) });

  it('cat returns 8 MiB of random stdin byte for byte, and stdin EOF ends it', async () => {
    const input = randomBytes(8 * 1024 * 1024);
    const before = env.sim.requests.entries.length;
    const result = await exec(['-i', '-n', 'demo', 'web-0', '--', 'cat'], input);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.length).toBe(input.length);
    expect(sha256(result.stdout)).toBe(sha256(input));
    expect(upgradesSince(env.sim, before)).toEqual([expectedUpgrade]);
  });

  it('separates stdout and stderr and returns the exit status', async () => {
    const result = await exec(['-n', 'demo', 'web-0', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(result.stdout.toString()).toBe('out\n');
    expect(result.stderr).toContain('err\n');
    expect(result.stderr).toContain('command terminated with exit code 7');
    expect(result.code).toBe(7);
  });

  it('runs in the container it names, and in the annotated default container otherwise', async () => {
    const sidecar = await exec(['-n', 'demo', 'web-0', '-c', 'sidecar', '--', 'sh', '-c', 'echo "$CONTAINER_NAME"']);
    expect(sidecar.code).toBe(0);
    expect(sidecar.stdout.toString()).toBe('sidecar\n');
    const byDefault = await exec(['-n', 'demo', 'web-0', '--', 'sh', '-c', 'echo "$CONTAINER_NAME"']);
    expect(byDefault.stdout.toString()).toBe('app\n');
  });

  it('reports a missing command as an error kubectl prints', async () => {
    const result = await exec(['-n', 'default', 'busybox', '--', 'no-such-command-xyz']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('executable file not found');
  });
});
