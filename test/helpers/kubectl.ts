// Finds and runs the real kubectl binaries that the machine's `kubectl` package installs side by side.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Folder holding kubectl.1.27 ... kubectl.1.33; override with KUBECTL_BIN_DIR. */
function binDir(): string {
  if (process.env.KUBECTL_BIN_DIR) return process.env.KUBECTL_BIN_DIR;
  const listed = execFileSync('dpkg', ['-L', 'kubectl'], { encoding: 'utf8' })
    .split('\n')
    .find((line) => /\/kubectl\.1\.\d+$/.test(line));
  if (!listed) throw new Error('no kubectl.1.NN binaries found (dpkg -L kubectl); install the kubectl package');
  return listed.replace(/\/kubectl\.1\.\d+$/, '');
}

let cachedDir: string | undefined;

/** Path of `kubectl.1.<minor>`; throws (failing the test) if the machine lacks it. */
export function kubectlPath(minor: number): string {
  cachedDir ??= binDir();
  const path = join(cachedDir, `kubectl.1.${minor}`);
  if (!existsSync(path)) throw new Error(`kubectl 1.${minor} not installed at ${path}`);
  return path;
}

export interface KubectlResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

export interface KubectlRun {
  minor: number;
  kubeconfig: string;
  args: string[];
  stdin?: Buffer | string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Sees stdout as it arrives (e.g. to act once a watch has printed). */
  onStdout?: (chunk: Buffer) => void;
}

/** A fresh HOME per run, so no discovery cache from another run hides requests. */
export function freshHome(): string {
  return mkdtempSync(join(tmpdir(), 'kb-kubectl-home-'));
}

export function runKubectl(run: KubectlRun): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(kubectlPath(run.minor), ['--kubeconfig', run.kubeconfig, ...run.args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: freshHome(), ...run.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    // Decoded once at the end: a multi-byte character may straddle two chunks.
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
      run.onStdout?.(d);
    });
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), run.timeoutMs ?? 45_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => {}); // kubectl may exit before reading all of stdin
    if (run.stdin !== undefined) child.stdin.end(run.stdin);
    else child.stdin.end();
  });
}

/** The client matrix of the acceptance tests: version plus the transport env it runs with. */
export interface ClientVariant {
  label: string;
  minor: number;
  env: Record<string, string>;
  transport: 'spdy' | 'websocket';
}

export const EXEC_CLIENTS: ClientVariant[] = [
  { label: '1.27 (SPDY)', minor: 27, env: {}, transport: 'spdy' },
  { label: '1.29 (SPDY)', minor: 29, env: {}, transport: 'spdy' },
  { label: '1.29 (WebSocket)', minor: 29, env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'true' }, transport: 'websocket' },
  { label: '1.31 (WebSocket)', minor: 31, env: {}, transport: 'websocket' },
  { label: '1.33 (WebSocket)', minor: 33, env: {}, transport: 'websocket' },
];

/**
 * `kubectl logs -f` of demo/web-0 (app writes a line every 2 s) shows lines written after it
 * started: the log is followed, not just dumped.
 */
export async function expectLogsFollowed(minor: number, kubeconfig: string, poll: (get: () => string, expected: string) => Promise<void>): Promise<void> {
  const child = spawn(kubectlPath(minor), ['--kubeconfig', kubeconfig, 'logs', '-f', '-n', 'demo', 'web-0', '-c', 'app'], {
    env: { PATH: process.env.PATH ?? '', HOME: freshHome() },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await poll(() => out, 'listening on :8080');
    const last = Math.max(0, ...[...out.matchAll(/request (\d+)/g)].map((m) => Number(m[1])));
    await poll(() => out, `(request ${last + 1})`);
  } finally {
    child.kill('SIGKILL');
  }
}
