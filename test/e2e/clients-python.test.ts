// Compatibility with the official Python client (Debian's python3-kubernetes, for /usr/bin/python3)
// through a real bastion on the simulated cluster: exec over WebSocket v4 (the only protocol that
// client speaks) with stdin on and off, TTY on and off. The client sends capitalised booleans
// (`stdin=False&tty=True`), which the API server accepts. Asserted: the exact output, the exit code
// the client reports (`returncode`, read from the error channel's Status), and the session rows.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { controlApi } from '../helpers/control.js';
import type { Approval } from '../../src/model/approval.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../clients/python-exec.py', import.meta.url));

interface PyResult {
  stdout: string;
  stderr: string;
  returncode: number | null;
  error: string | null;
  open_before_close?: boolean;
}

let b: TestBastion;
let approver: string;

beforeAll(async () => {
  b = await startTestBastion();
  approver = (await b.bastion.store.users.createUser('alice', 'approver')).token;
  const { status } = await controlApi<Approval>(b, approver, 'POST', '/v1/approvals', {
    agent: b.agentName, namespace: 'demo', pod: 'shell-0', container: 'main', verbs: ['exec'], ttlSeconds: 600, reason: 'python client suite',
  });
  expect(status).toBe(201);
});
afterAll(async () => {
  await b?.stop();
});

function runPython(args: { command: string[]; stdin: boolean; tty: boolean; input?: string; mode?: 'run' | 'echo-then-close' }): Promise<PyResult> {
  const spec = JSON.stringify({ kubeconfig: b.agentKubeconfig, namespace: 'demo', pod: 'shell-0', container: 'main', ...args });
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [SCRIPT, spec], { timeout: 60_000, env: { PATH: process.env.PATH ?? '', HOME: b.dir } }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout) as PyResult);
    });
  });
}

/** The session row of the last exec with this command. */
async function sessionOf(command: string[]) {
  const rows = await b.bastion.store.sessions.list({});
  const row = rows.find((r) => JSON.stringify(r.command) === JSON.stringify(command));
  expect(row).toBeDefined();
  return row!;
}

const SCRIPT_CMD = ['sh', '-c', 'printf "out \\303\\251\\n"; printf "err\\n" >&2; exit 3'];

describe('python3-kubernetes exec through the bastion (WebSocket v4)', () => {
  it.each([
    { stdin: false, tty: false },
    { stdin: true, tty: false },
  ])('stdin=$stdin tty=false: stdout and stderr apart, byte for byte; exit code 3', async ({ stdin, tty }) => {
    const before = await b.auditCount();
    const r = await runPython({ command: SCRIPT_CMD, stdin, tty });
    expect(r).toEqual({ stdout: 'out é\n', stderr: 'err\n', returncode: 3, error: null });
    // The client spells booleans the Python way; the audit row keeps the request as sent.
    // The upgrade's request row is written once its session has ended (group-committed): polled.
    await expect.poll(async () => (await b.auditSince(before)).some((row) => row.path?.includes('/exec')), { timeout: 5000 }).toBe(true);
    const exec = (await b.auditSince(before)).find((row) => row.path?.includes('/exec'));
    expect(exec?.path).toContain(`stdin=${stdin ? 'True' : 'False'}`);
    expect(exec?.path).toContain('tty=False');
  });

  it.each([
    { stdin: false, tty: true },
    { stdin: true, tty: true },
  ])('stdin=$stdin tty=true: one terminal stream (stderr merged, CRLF), exit code 3', async ({ stdin, tty }) => {
    const r = await runPython({ command: SCRIPT_CMD, stdin, tty });
    expect(r).toEqual({ stdout: 'out é\r\nerr\r\n', stderr: '', returncode: 3, error: null });
  });

  it('exit code 0 reads as 0', async () => {
    const r = await runPython({ command: ['sh', '-c', 'printf ok'], stdin: false, tty: false });
    expect(r).toEqual({ stdout: 'ok', stderr: '', returncode: 0, error: null });
  });

  it('stdin reaches the process (sent by the client as TEXT frames): head -c 6 echoes it and exits 0', async () => {
    const command = ['head', '-c', '6'];
    const r = await runPython({ command, stdin: true, tty: false, input: 'hello\n' });
    expect(r).toEqual({ stdout: 'hello\n', stderr: '', returncode: 0, error: null });
    expect(await sessionOf(command)).toMatchObject({ endReason: 'completed', exitCode: 0, bytesIn: 6, bytesOut: 6, protocol: 'v4.channel.k8s.io' });
  });

  it('cat: v4 has no stdin half-close, so the client can only close the connection; the session ends client-closed with the bytes recorded', async () => {
    const command = ['cat'];
    const r = await runPython({ command, stdin: true, tty: false, input: 'hello\n', mode: 'echo-then-close' });
    expect(r).toMatchObject({ stdout: 'hello\n', open_before_close: true, returncode: null, error: null });
    await expect.poll(async () => (await sessionOf(command)).endReason, { timeout: 10_000 }).toBe('client-closed');
    expect(await sessionOf(command)).toMatchObject({ bytesIn: 6, bytesOut: 6, exitCode: null });
  });
});
