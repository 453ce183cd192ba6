// The built CLI answers like the API: every (sub)command's --help/-h prints its usage on stdout and
// exits 0, --version names the package's version, and a listen address already in use names the
// flag that chose it (exit 2, one line, no stack trace).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = resolve('bin/kube-bastion.js');
const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });

/** Runs the CLI without blocking the event loop (the test holds a port open meanwhile). */
function cliAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr });
    });
  });
}

const COMMANDS = [
  'serve',
  'sim',
  'agent',
  'agent add',
  'agent list',
  'agent revoke',
  'user',
  'user add',
  'user list',
  'user disable',
  'user rotate',
  'approvals',
  'approvals list',
  'approvals get',
  'approvals grant',
  'approvals approve',
  'approvals deny',
  'approvals revoke',
  'approvals watch',
  'export',
  'verify',
  'audit',
  'audit verify',
];

beforeAll(() => {
  expect(existsSync('dist/cli/main.js'), 'run `npm run build` first').toBe(true);
});

describe('kube-bastion <command> --help', () => {
  for (const command of COMMANDS) {
    for (const flag of ['--help', '-h']) {
      it(`${command} ${flag} prints its usage on stdout and exits 0`, () => {
        const r = cli(...command.split(' '), flag);
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        expect(r.stdout.startsWith(`usage: kube-bastion ${command}`), r.stdout).toBe(true);
      });
    }
  }

  it('--help alone prints the command list', () => {
    const r = cli('--help');
    expect(r.status).toBe(0);
    expect(r.stdout.startsWith('usage: kube-bastion <command>')).toBe(true);
  });
});

describe('kube-bastion --version', () => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    it(`${flag} prints kube-bastion and the package.json version`, () => {
      const r = cli(flag);
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(`kube-bastion ${version}\n`);
    });
  }
});

describe('kube-bastion serve on an address already in use', () => {
  let dir: string;
  let taken: Server;
  let port: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kb-cli-help-'));
    taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    port = (taken.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise<void>((r) => taken.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  for (const flag of ['--listen', '--control-listen']) {
    it(`${flag} in use: exit 2 and a line naming ${flag}`, async () => {
      const other = flag === '--listen' ? '--control-listen' : '--listen';
      const r = await cliAsync(['serve', flag, `127.0.0.1:${port}`, other, '127.0.0.1:0', '--data-dir', join(dir, flag), '--recordings', join(dir, `${flag}-rec`)]);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`kube-bastion serve: ${flag} 127.0.0.1:${port}: address already in use (choose another with ${flag})\n`);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }
});
