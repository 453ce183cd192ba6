// Live interoperability: real kubectl binaries exec through acceptSpdyRemoteCommand over HTTPS.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catHandler, newObservations, type ExecObservations } from '../../../test/fixtures/spdy/exec-handlers.js';
import { NAMESPACE, POD, startFakeApiServer, type FakeApiServer } from '../../../test/fixtures/spdy/fake-apiserver.js';
import { runKubectl } from '../../../test/helpers/kubectl.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** kubectl 1.27 speaks SPDY by default; 1.33 needs WebSocket switched off. */
const CLIENTS: { minor: number; env: Record<string, string> }[] = [
  { minor: 27, env: {} },
  { minor: 33, env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' } },
];

describe('kubectl exec over SPDY/3.1 (live)', () => {
  let dir: string;
  let api: FakeApiServer;
  const seen: ExecObservations[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kb-spdy-interop-'));
    api = await startFakeApiServer({
      dir,
      handler: (exec) => {
        const observations = newObservations();
        seen.push(observations);
        // `sh -c "cat; exit N"` stands for a command that reads stdin and exits with N.
        const exit = /exit (\d+)/.exec(exec.command.join(' '));
        return catHandler(exit ? Number(exit[1]) : 0, observations);
      },
    });
  });

  afterAll(async () => {
    await api?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(CLIENTS)('kubectl 1.$minor: `exec -i -- cat` carries 1 MiB of stdin to stdout intact', async ({ minor, env }) => {
    const input = randomBytes(1024 * 1024);
    const result = await runKubectl({
      minor,
      kubeconfig: api.kubeconfig,
      args: ['exec', '-i', POD, '-n', NAMESPACE, '-c', 'app', '--', 'cat'],
      stdin: input,
      env,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.length).toBe(input.length);
    expect(sha256(result.stdout)).toBe(sha256(input));
    await api.idle();
    expect(api.errors).toEqual([]);
    const exec = api.execs.at(-1)!;
    expect(exec.method).toBe('POST'); // the SPDY executor, not WebSocket
    expect(exec.options).toEqual({ stdin: true, stdout: true, stderr: true, tty: false });
    expect(sha256(Buffer.concat(seen.at(-1)!.stdin))).toBe(sha256(input));
  });

  it.each(CLIENTS)('kubectl 1.$minor: exits with the code the server reports', async ({ minor, env }) => {
    const result = await runKubectl({
      minor,
      kubeconfig: api.kubeconfig,
      args: ['exec', '-i', POD, '-n', NAMESPACE, '-c', 'app', '--', 'sh', '-c', 'cat; exit 7'],
      stdin: 'some input\n',
      env,
    });
    expect(result.stdout.toString()).toBe('some input\n');
    expect(result.stderr).toContain('command terminated with exit code 7');
    expect(result.code).toBe(7);
    await api.idle();
    expect(api.errors).toEqual([]);
  });
});
