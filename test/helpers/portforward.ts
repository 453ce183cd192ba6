// Port-forward as tests drive it: real `kubectl port-forward` on free local ports, an HTTP GET
// through a forwarded port, and a byte round trip that half-closes and reads to the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { freshHome, kubectlPath } from './kubectl.js';

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export interface Forward {
  child: ChildProcess;
  /** Local port per remote port. */
  local: Map<number, number>;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/**
 * Starts `kubectl port-forward demo/web-0` on free local ports and waits until every port is
 * announced (kubectl announces them once its upgrade succeeded: a held request announces nothing
 * until it is approved). `startTimeoutMs` bounds that wait.
 */
export async function kubectlPortForward(opts: { minor: number; kubeconfig: string; env?: Record<string, string>; ports: number[]; pod?: string; startTimeoutMs?: number }): Promise<Forward> {
  const child = spawn(
    kubectlPath(opts.minor),
    ['--kubeconfig', opts.kubeconfig, 'port-forward', '--address', '127.0.0.1', '-n', 'demo', opts.pod ?? 'web-0', ...opts.ports.map((p) => `:${p}`)],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: freshHome(), ...(opts.env ?? {}) }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const local = new Map<number, number>();
  const deadline = Date.now() + (opts.startTimeoutMs ?? 20_000);
  while (local.size < opts.ports.length) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`port-forward did not start: ${out} ${err}`);
    }
    for (const m of out.matchAll(/Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)/g)) local.set(Number(m[2]), Number(m[1]));
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, local, stdout: () => out, stderr: () => err, exited };
}

export async function stopForward(fwd: Forward): Promise<void> {
  fwd.child.kill('SIGKILL');
  await fwd.exited;
}

export function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends `data`, half-closes, and reads until the other side closes. */
export function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => {
      socket.end();
      resolve(Buffer.concat(chunks));
    });
    socket.on('error', reject);
    socket.end(data);
  });
}
