// `kube-bastion sim` as a user runs it: the built CLI writes a kubeconfig once ready, serves real
// kubectl, and on SIGTERM exits 0 leaving no pod process behind. (Needs `npm run build`; npm test does it.)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runKubectl } from '../helpers/kubectl.js';

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

describe('kube-bastion sim', () => {
  it('writes the kubeconfig when ready, serves kubectl, and stops cleanly on SIGTERM', async () => {
    expect(existsSync(join('dist', 'cli', 'main.js')), 'run `npm run build` first').toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'kb-sim-cli-'));
    const kubeconfig = join(dir, 'kubeconfig');
    const workDir = join(dir, 'work');
    const child = spawn(process.execPath, [BIN, 'sim', '--listen', '127.0.0.1:0', '--kubeconfig-out', kubeconfig, '--work-dir', workDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await expect.poll(() => stdout, { timeout: 20_000 }).toContain('kubeconfig:');
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
