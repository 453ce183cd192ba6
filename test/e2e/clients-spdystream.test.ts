// A raw SPDY/3.1 client built from moby/spdystream (Debian's golang-github-docker-spdystream-dev,
// the library under kubectl's SPDY transport) through a real bastion: the upgrade written by hand,
// the streams opened as client-go opens them, stdin closed with a FIN. The Go program
// (test/clients/spdy-exec/main.go) is built once per source version into a temp folder and reused.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Approval } from '../../src/model/approval.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { approvalIds, controlApi, newPending } from '../helpers/control.js';

const SOURCE = fileURLToPath(new URL('../clients/spdy-exec/main.go', import.meta.url));

function goAvailable(): boolean {
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const HAVE_GO = goAvailable();
if (!HAVE_GO) console.warn('clients-spdystream: skipped, `go` is not installed (apt-get install golang-go golang-github-docker-spdystream-dev)');

/** Builds the client unless a binary of this exact source exists already; returns its path. */
function buildClient(): string {
  const hash = createHash('sha256').update(readFileSync(SOURCE)).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `kube-bastion-spdy-exec-${hash}`);
  const binary = join(dir, 'spdy-exec');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const partial = `${binary}.${process.pid}`;
  // GOPATH mode against the Debian package's sources; no module download is ever attempted.
  execFileSync('go', ['build', '-o', partial, SOURCE], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, GO111MODULE: 'off', GOPATH: `${join(dir, 'gopath')}:/usr/share/gocode`, GOCACHE: join(dir, 'cache'), GOFLAGS: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  execFileSync('mv', [partial, binary]);
  return binary;
}

interface Report {
  httpStatus: number;
  protocol: string;
  streams: string[] | null;
  status?: Record<string, unknown>;
  body?: string;
  error?: string;
}

let b: TestBastion;
let approver: string;
let binary: string;
let caFile: string;

beforeAll(async () => {
  if (!HAVE_GO) return;
  binary = buildClient();
  b = await startTestBastion({ extraArgs: ['--hold-timeout', '30'] });
  caFile = join(b.dir, 'bastion-ca.pem');
  const ca = b.bastion.tls.caPem;
  if (!ca) throw new Error('the test bastion serves TLS with its own CA');
  writeFileSync(caFile, ca);
  approver = (await b.bastion.store.users.createUser('alice', 'approver')).token;
  const { status } = await controlApi<Approval>(b, approver, 'POST', '/v1/approvals', {
    agent: b.agentName, namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], ttlSeconds: 600, reason: 'spdystream suite',
  });
  expect(status).toBe(201);
}, 120_000);
afterAll(async () => {
  await b?.stop();
});

function execPath(pod: string, container: string, command: string[], stdin: boolean): string {
  const q = new URLSearchParams();
  for (const c of command) q.append('command', c);
  q.set('container', container);
  if (stdin) q.set('stdin', 'true');
  q.set('stdout', 'true');
  q.set('stderr', 'true');
  return `/api/v1/namespaces/demo/pods/${pod}/exec?${q.toString()}`;
}

let runs = 0;
function runClient(path: string, input?: Buffer): Promise<{ code: number | null; stdout: Buffer; stderr: string; report: Report }> {
  const report = join(b.dir, `spdy-report-${++runs}.json`);
  const args = ['-server', b.bastion.kubeUrl, '-token', b.agentToken, '-ca', caFile, '-path', path, '-report', report, ...(input ? ['-stdin'] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'), report: JSON.parse(readFileSync(report, 'utf8')) as Report });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

describe.skipIf(!HAVE_GO)('raw moby/spdystream client through the bastion (SPDY/3.1, v4.channel.k8s.io)', () => {
  it('cat: 512 KiB on stdin come back identical after the FIN, exit 0, Status Success; the session row says SPDY v4', async () => {
    const input = randomBytes(512 * 1024);
    const r = await runClient(execPath('web-0', 'app', ['cat'], true), input);
    expect(r.report).toMatchObject({ httpStatus: 101, protocol: 'v4.channel.k8s.io', streams: ['error', 'stdin', 'stdout', 'stderr'], status: { metadata: {}, status: 'Success' } });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.equals(input)).toBe(true);
    const ended = async () => (await b.bastion.store.sessions.list({})).find((s) => JSON.stringify(s.command) === '["cat"]' && s.endReason !== null);
    await expect.poll(async () => (await ended())?.endReason, { timeout: 10_000 }).toBe('completed');
    expect(await ended()).toMatchObject({ transport: 'spdy', protocol: 'v4.channel.k8s.io', exitCode: 0, bytesIn: input.length, bytesOut: input.length });
  });

  it('a failing command: stdout and stderr apart, the exit code from the error stream Status', async () => {
    const r = await runClient(execPath('web-0', 'app', ['sh', '-c', 'echo out; echo err >&2; exit 6'], false));
    expect(r.code).toBe(6);
    expect(r.stdout.toString()).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    expect(r.report.streams).toEqual(['error', 'stdout', 'stderr']);
    expect(r.report.status).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '6' }] } });
  });

  it('a held request the approver denies: a 403 whose body is the bastion\'s metav1.Status', async () => {
    const known = await approvalIds(b, approver);
    const running = runClient(execPath('shell-0', 'main', ['sh', '-c', 'echo never'], false));
    const [pending] = await newPending(b, approver, known);
    expect((await controlApi(b, approver, 'POST', `/v1/approvals/${pending!.id}/deny`, { reason: 'not now' })).status).toBe(200);
    const r = await running;
    expect(r.code).toBe(1);
    expect(r.report.httpStatus).toBe(403);
    const status = JSON.parse(r.report.body!) as { kind: string; code: number; message: string };
    expect(status).toMatchObject({ kind: 'Status', code: 403 });
    expect(status.message).toContain(`kube-bastion approval ${pending!.id} was denied`);
    expect(status.message).toMatch(/: not now$/);
  });
});
