// The process survives its readers going away and repeated signals: a closed stdout/stderr never
// kills `serve` (logs are dropped), a second SIGINT during the grace period does not skip the
// orderly cut of live sessions, and CLI commands end quietly when their output pipe is closed.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { runKubectl } from '../helpers/kubectl.js';

const BIN = resolve('bin/kube-bastion.js');

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
}

describe('serve with its stdout and stderr closed', () => {
  let dir: string;
  let serve: ChildProcess;
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let banner = '';

  beforeAll(async () => {
    expect(existsSync('dist/cli/main.js'), 'run `npm run build` first').toBe(true);
    dir = mkdtempSync(join(tmpdir(), 'kb-stdio-'));
    serve = spawn(process.execPath, [BIN, 'serve', '--data-dir', join(dir, 'data'), '--recordings', join(dir, 'rec'), '--listen', '127.0.0.1:0', '--control-listen', '127.0.0.1:0', '--shutdown-grace', '2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    exited = exitOf(serve);
    serve.stdout!.on('data', (d: Buffer) => (banner += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!banner.includes('admin token')) {
      if (Date.now() > deadline || serve.exitCode !== null) throw new Error(`serve did not start:\n${banner}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // The readers go away (`| head -n 1`, a terminal closed under `tee`).
    serve.stdout!.destroy();
    serve.stderr!.destroy();
  });

  afterAll(() => {
    if (serve.exitCode === null) serve.kill('SIGKILL');
  });

  it('keeps serving while every request logs into the closed pipe', async () => {
    const control = /control API:\s+(http:\/\/\S+)\/v1/.exec(banner)![1]!;
    const kubeconfig = join(dir, 'data', 'agents', 'demo.kubeconfig');
    for (let i = 0; i < 5; i++) {
      const pods = await runKubectl({ minor: 33, kubeconfig, args: ['get', 'pods', '-n', 'demo', '-o', 'name'] });
      expect(pods.code).toBe(0);
      expect(pods.stdout.toString()).toContain('pod/web-0');
    }
    expect((await fetch(`${control}/healthz`)).status).toBe(200);
    expect(serve.exitCode).toBeNull();
  });

  it('a second SIGINT during the grace period still cuts the live session with a Status, and serve exits 0', async () => {
    const control = /control API:\s+(http:\/\/\S+)\/v1/.exec(banner)![1]!;
    const token = /admin token[^:]*: (kbu_\S+)/.exec(banner)![1]!;
    const grant = await fetch(`${control}/v1/approvals`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ agent: 'demo', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], ttlSeconds: 300, reason: 'signals test' }),
    });
    expect(grant.status).toBe(201);
    const approval = (await grant.json()) as { id: string };
    const kubeconfig = join(dir, 'data', 'agents', 'demo.kubeconfig');
    const run = runKubectl({ minor: 33, kubeconfig, args: ['exec', '-n', 'demo', 'web-0', '--', 'sh', '-c', 'while :; do echo alive; sleep 0.1; done'] });
    // Relaying: the row is written before upstream is dialed, and names the upstream protocol once it is.
    const relaying = async (): Promise<boolean> => {
      const res = await fetch(`${control}/v1/sessions?approval=${approval.id}&state=open`, { headers: { Authorization: `Bearer ${token}` } });
      const items = ((await res.json()) as { items: Array<{ upstreamProtocol: string | null }> }).items;
      return items.length === 1 && items[0]!.upstreamProtocol !== null;
    };
    await expect.poll(relaying, { timeout: 15_000 }).toBe(true);
    serve.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300));
    serve.kill('SIGINT');
    const r = await run;
    expect(r.stdout.toString()).toContain('alive');
    expect(r.stderr).toContain(`kube-bastion ended the session under approval ${approval.id}: the bastion is shutting down`);
    expect(await exited).toEqual({ code: 0, signal: null });
    const store = openStore(join(dir, 'data'));
    try {
      const [session] = await store.sessions.list({ approvalId: approval.id });
      expect(session).toMatchObject({ state: 'ended', endReason: 'shutdown' });
    } finally {
      await store.close();
    }
  });
});

describe('CLI commands with their stdout closed', () => {
  /** Runs the CLI with its reader gone before it writes (`head` exited): every write meets EPIPE. */
  async function runWithReaderGone(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.destroy();
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    return { ...(await exitOf(child)), stderr };
  }

  it('kube-bastion verify DIR | head -n 1: a directory with many problems ends with exit 1 and no stack trace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kb-verify-pipe-'));
    for (let i = 0; i < 50; i++) writeFileSync(join(dir, `stray-${i}.txt`), `${i}\n`);
    expect(await runWithReaderGone(['verify', dir])).toEqual({ code: 1, signal: null, stderr: '' });
  });

  for (const args of [['--help'], ['approvals', '--help'], ['verify', '--help']]) {
    it(`kube-bastion ${args.join(' ')} ends with its own exit code and no stack trace`, async () => {
      expect(await runWithReaderGone(args)).toEqual({ code: 0, signal: null, stderr: '' });
    });
  }
});
