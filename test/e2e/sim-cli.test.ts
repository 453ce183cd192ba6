// `kube-bastion sim` as a user runs it: the built CLI writes a kubeconfig once ready, serves real
// kubectl, and on SIGTERM exits 0 leaving no pod process behind; killed with SIGKILL, it leaves none
// either (nor an exec session's process). (Needs `npm run build`; npm test does it.)
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshHome, kubectlPath, runKubectl } from '../helpers/kubectl.js';

const BIN = resolve('bin/kube-bastion.js');

/** PIDs of processes whose working directory is inside `dir`. */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(dir)) pids.push(Number(entry));
    } catch {
      // exited or not ours to read
    }
  }
  return pids;
}

/** The command name of a process ('' once it has gone). */
function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** `kube-bastion sim` in a new temp dir; its stdout collected as it comes. */
function startSimCli(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const kubeconfig = join(dir, 'kubeconfig');
  const workDir = join(dir, 'work');
  const child = spawn(process.execPath, [BIN, 'sim', '--listen', '127.0.0.1:0', '--kubeconfig-out', kubeconfig, '--work-dir', workDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { dir, kubeconfig, workDir, child, out, exited };
}

describe('kube-bastion sim', () => {
  it('writes the kubeconfig when ready, serves kubectl, and stops cleanly on SIGTERM', async () => {
    expect(existsSync(join('dist', 'cli', 'main.js')), 'run `npm run build` first').toBe(true);
    const { kubeconfig, workDir, child, out, exited } = startSimCli('kb-sim-cli-');
    try {
      await expect.poll(() => out.stdout, { timeout: 20_000 }).toContain('kubeconfig:');
      expect(existsSync(kubeconfig)).toBe(true);
      const pods = await runKubectl({ minor: 33, kubeconfig, args: ['get', 'pods', '-n', 'demo', '-o', 'name'] });
      expect(pods.stdout.toString()).toBe('pod/shell-0\npod/web-0\n');
      expect(processesUnder(workDir).length).toBeGreaterThanOrEqual(4);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(processesUnder(workDir)).toEqual([]);
  });

  it('killed with SIGKILL (no chance to end its pods), it still leaves no pod process (nor the `cat` of an exec session) behind', async () => {
    const { kubeconfig, workDir, child, out, exited } = startSimCli('kb-sim-kill-');
    let exec: ChildProcessWithoutNullStreams | undefined;
    try {
      await expect.poll(() => out.stdout, { timeout: 20_000 }).toContain('kubeconfig:');
      // Pods' main processes: plain children (web-0, busybox) and one under a terminal (shell-0).
      await expect.poll(() => processesUnder(workDir).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(4);
      const pods = processesUnder(workDir);
      // An exec session held open: its `cat` (no parent-death signal, see process.ts) ends at its stdin's end.
      exec = spawn(kubectlPath(33), ['--kubeconfig', kubeconfig, 'exec', '-i', '-n', 'demo', 'web-0', '-c', 'sidecar', '--', 'cat'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: freshHome() } });
      let echoed = '';
      exec.stdout.on('data', (d: Buffer) => (echoed += d.toString()));
      exec.stdin.write('ping\n');
      await expect.poll(() => echoed, { timeout: 15_000 }).toBe('ping\n');
      expect(processesUnder(workDir).filter((pid) => !pods.includes(pid)).map(commandOf)).toEqual(['cat']);
    } finally {
      child.kill('SIGKILL');
    }
    await exited;
    exec?.kill('SIGKILL');
    // Each container's main process has the parent-death signal: the kernel ends them with the sim.
    await expect.poll(() => processesUnder(workDir), { timeout: 5_000 }).toEqual([]);
  });

  it('names the offending flag in usage errors', () => {
    const bad = spawnSync(process.execPath, [BIN, 'sim', '--listen', 'nonsense', '--kubeconfig-out', '/tmp/x'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--listen: expected HOST:PORT');
    const missing = spawnSync(process.execPath, [BIN, 'sim', '--listen', '127.0.0.1:0'], { encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('--kubeconfig-out FILE is required');
    const unknown = spawnSync(process.execPath, [BIN, 'sim', '--bogus'], { encoding: 'utf8' });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("'--bogus'");
  });
});
