// The built CLI answers like the API: every (sub)command's --help/-h prints its usage on stdout and
// exits 0, --version names the package's version, and a listen address already in use names the
// flag that chose it (exit 2, one line, no stack trace), for serve and sim alike; the start banner
// says what a held request does and, at a restart, how to get an admin token when the first is lost.
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
  'approvals show',
  'approvals grant',
  'approvals approve',
  'approvals deny',
  'approvals revoke',
  'approvals watch',
  'sessions',
  'sessions list',
  'sessions show',
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

describe('kube-bastion serve and sim on an address already in use', () => {
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

  it('sim --listen in use: exit 2 and the same line as serve, naming --listen; no kubeconfig written', async () => {
    const out = join(dir, 'sim.kubeconfig');
    const r = await cliAsync(['sim', '--listen', `127.0.0.1:${port}`, '--kubeconfig-out', out, '--work-dir', join(dir, 'work')]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`kube-bastion sim: --listen 127.0.0.1:${port}: address already in use (choose another with --listen)\n`);
    expect(existsSync(out)).toBe(false);
  });
});

describe('the serve banner', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kb-cli-banner-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Starts serve on dir's data dir and resolves with its banner once printed (the child keeps running). */
  async function serve(extra: string[] = []): Promise<{ banner: string; stop: () => Promise<void> }> {
    const args = ['serve', '--data-dir', join(dir, 'data'), '--recordings', join(dir, 'rec'), '--listen', '127.0.0.1:0', '--control-listen', '127.0.0.1:0', ...extra];
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    const deadline = Date.now() + 30_000;
    // The banner's last two lines are about the admin token (written in one piece).
    while (!/admin token.*\n.*\n/.test(stdout)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`serve did not start:\n${stdout}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return {
      banner: stdout,
      stop: async () => {
        child.kill('SIGTERM');
        await exited;
      },
    };
  }

  it("says a held request waits up to the hold timeout; at a restart, how to make a new admin token, and that command works while serving", async () => {
    const first = await serve(['--hold-timeout', '7']);
    await first.stop();
    expect(first.banner).toContain('get secret -n demo db-credentials\n');
    expect(first.banner).toContain('# held until an approver decides (up to 7 s, --hold-timeout): kube-bastion approvals list, then approve ID\n');
    expect(first.banner).not.toMatch(/refused/);
    expect(first.banner).toMatch(/admin token \(shown once[^)]*\): kbu_\S+\n/);

    const again = await serve();
    try {
      expect(again.banner).not.toMatch(/kbu_/);
      expect(again.banner).toContain('(up to 120 s, --hold-timeout)');
      const hint = /admin token: shown only at the first start; lost it\? create another admin \(works while serving\):\n {4}(kube-bastion user add NAME --role admin --data-dir (\S+))\n/.exec(again.banner);
      expect(hint, again.banner).not.toBeNull();
      expect(hint![2]).toBe(join(dir, 'data'));
      // The command as printed, with a name chosen, against the running bastion's data dir.
      const made = cli(...hint![1]!.replace('NAME', 'second-admin').split(' ').slice(1));
      expect(made.stderr).toBe('');
      expect(made.status).toBe(0);
      const token = made.stdout.trimEnd().split('\n').pop()!;
      expect(token).toMatch(/^kbu_/);
      const control = /control API:\s+(http:\/\/\S+)\/v1/.exec(again.banner)![1];
      const res = await fetch(`${control}/v1/agents`, { headers: { Authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
    } finally {
      await again.stop();
    }
  });
});
