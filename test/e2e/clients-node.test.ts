// Compatibility with @kubernetes/client-node (1.4.0, the last line that runs on Node 20) through a
// real bastion on the simulated cluster: `Exec.exec` over WebSocket v5.channel.k8s.io with stdin
// that ends (the library half-closes it with the v5 CLOSE signal), with a TTY, and a request the
// approver denies. Asserted: the bytes, the Status the library hands its statusCallback, the
// session rows, and what the library reports for a refused upgrade.
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Exec, KubeConfig, type V1Status } from '@kubernetes/client-node';
import type WebSocket from 'ws';
import type { Approval } from '../../src/model/approval.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { approvalIds, controlApi, newPending } from '../helpers/control.js';

let b: TestBastion;
let approver: string;

beforeAll(async () => {
  b = await startTestBastion({ extraArgs: ['--hold-timeout', '30'] });
  approver = (await b.bastion.store.users.createUser('alice', 'approver')).token;
  const { status } = await controlApi<Approval>(b, approver, 'POST', '/v1/approvals', {
    agent: b.agentName, namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], ttlSeconds: 600, reason: 'client-node suite',
  });
  expect(status).toBe(201);
});
afterAll(async () => {
  await b?.stop();
});

interface ExecResult {
  status: V1Status | undefined;
  stdout: Buffer;
  stderr: Buffer;
  closeCode: number;
}

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(b.agentKubeconfig);
  return kc;
}

/** Runs Exec.exec in `pod`/`container` and waits for the socket to close. */
async function nodeExec(command: string[], stdin: Readable | null, tty: boolean, pod = 'web-0', container = 'app'): Promise<ExecResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (d: Buffer) => out.push(d));
  stderr.on('data', (d: Buffer) => err.push(d));
  let status: V1Status | undefined;
  const ws = (await new Exec(kubeConfig()).exec('demo', pod, container, command, stdout, stderr, stdin, tty, (s) => (status = s))) as unknown as WebSocket;
  const closeCode = await new Promise<number>((resolve) => ws.on('close', (code: number) => resolve(code)));
  return { status, stdout: Buffer.concat(out), stderr: Buffer.concat(err), closeCode };
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** The newest ended session row whose command is `command`. */
async function sessionOf(command: string[]) {
  const rows = (await b.bastion.store.sessions.list({})).filter((r) => JSON.stringify(r.command) === JSON.stringify(command) && r.endReason !== null);
  return rows.sort((x, y) => (x.startedAt < y.startedAt ? 1 : -1))[0];
}

describe('@kubernetes/client-node Exec through the bastion (v5.channel.k8s.io)', () => {
  it('stdin that ends after 300 KiB: cat returns the bytes, the CLOSE signal lets it exit, Status Success', async () => {
    const input = randomBytes(300 * 1024);
    const stdin = new PassThrough();
    // Written in pieces, then ended: the library turns the end into `[255, 0]`.
    setTimeout(() => {
      stdin.write(input.subarray(0, 100_000));
      stdin.end(input.subarray(100_000));
    }, 50);
    const r = await nodeExec(['cat'], stdin, false);
    expect(r.status).toEqual({ metadata: {}, status: 'Success' });
    expect(r.stdout.length).toBe(input.length);
    expect(sha256(r.stdout)).toBe(sha256(input));
    expect(r.stderr.length).toBe(0);
    expect(r.closeCode).toBe(1000);
    await expect.poll(async () => (await sessionOf(['cat']))?.endReason, { timeout: 10_000 }).toBe('completed');
    expect(await sessionOf(['cat'])).toMatchObject({
      transport: 'websocket',
      protocol: 'v5.channel.k8s.io',
      upstreamProtocol: 'v5.channel.k8s.io',
      exitCode: 0,
      bytesIn: input.length,
      bytesOut: input.length,
    });
  });

  it('a non-zero exit reaches the statusCallback as the API server words it, stdout and stderr apart', async () => {
    const r = await nodeExec(['sh', '-c', 'printf "out \\303\\251\\n"; printf "err\\n" >&2; exit 3'], null, false);
    expect(r.stdout.toString('utf8')).toBe('out é\n');
    expect(r.stderr.toString('utf8')).toBe('err\n');
    expect(r.status).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } });
  });

  it('with a TTY: typed input runs in a shell, stderr is merged into the terminal, the exit code arrives', async () => {
    const stdin = new PassThrough();
    const r = nodeExec(['sh'], stdin, true);
    setTimeout(() => stdin.write('echo typed-$((6*7)); echo oops >&2; exit 4\n'), 100);
    const done = await r;
    const text = done.stdout.toString('utf8');
    expect(text).toContain('typed-42\r\n');
    expect(text).toContain('oops\r\n');
    expect(done.stderr.length).toBe(0);
    expect(done.status).toMatchObject({ reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '4' }] } });
    await expect.poll(async () => (await sessionOf(['sh']))?.tty, { timeout: 10_000 }).toBe(true);
    expect(await sessionOf(['sh'])).toMatchObject({ exitCode: 4, endReason: 'completed' });
  });

  it('a held request the approver denies: the library rejects with the HTTP status only (it never reads the Status body)', async () => {
    const known = await approvalIds(b, approver);
    const running = nodeExec(['sh', '-c', 'echo never'], null, false, 'shell-0', 'main').then(
      () => undefined,
      (e: unknown) => e,
    );
    const [pending] = await newPending(b, approver, known);
    expect(pending!.scope).toMatchObject({ kind: 'stream', namespace: 'demo', pod: 'shell-0', container: 'main', verbs: ['exec'] });
    expect((await controlApi(b, approver, 'POST', `/v1/approvals/${pending!.id}/deny`, { reason: 'not now' })).status).toBe(200);
    const rejected = (await running) as { message?: string; type?: string } | undefined;
    // ws's ErrorEvent: the library passes it through unchanged, with the 403 in its message.
    expect(rejected?.type).toBe('error');
    expect(rejected?.message).toBe('Unexpected server response: 403');
    // The reason the bastion gave in its Status (kubectl prints it) is on the approval's record.
    const { json } = await controlApi<Approval>(b, approver, 'GET', `/v1/approvals/${pending!.id}`);
    expect(json).toMatchObject({ state: 'denied', reason: 'not now' });
  });
});
