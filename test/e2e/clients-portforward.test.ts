// Port-forward through the bastion with the clients that speak the WebSocket channel protocol
// (`v4.channel.k8s.io`, ports in the query): the official Python client (Debian's
// python3-kubernetes) and @kubernetes/client-node. The request names its ports, so the held
// approval asks for exactly those and the approver need not choose them.
import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { KubeConfig, PortForward } from '@kubernetes/client-node';
import type WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Approval } from '../../src/model/approval.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { approvalIds, controlApi, newPending } from '../helpers/control.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../clients/python-portforward.py', import.meta.url));

let b: TestBastion;
let approver: string;
beforeAll(async () => {
  b = await startTestBastion();
  approver = (await b.bastion.store.users.createUser('alice', 'approver')).token;
});
afterAll(async () => {
  await b?.stop();
});

/** Waits for the held request, checks it asks for `ports`, and approves it as asked. */
async function approveAsAsked(known: Set<string>, ports: number[]): Promise<Approval> {
  const [pending] = await newPending(b, approver, known);
  expect(pending!.scope).toEqual({ kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports });
  const approved = await controlApi<Approval>(b, approver, 'POST', `/v1/approvals/${pending!.id}/approve`, {});
  expect(approved.status).toBe(200);
  return approved.json;
}

interface PyResult {
  http?: string;
  echo_sha256_sent?: string;
  echo_sha256_received?: string;
  echo_length?: number;
  http_error?: string | null;
  echo_error?: string | null;
  error: string | null;
}

describe('python3-kubernetes portforward through the bastion', () => {
  it('is held for ports 8080 and 7000, approved as asked, answers HTTP and echoes 1 MiB; both connections are recorded', async () => {
    const known = await approvalIds(b, approver);
    const spec = JSON.stringify({ kubeconfig: b.agentKubeconfig, namespace: 'demo', pod: 'web-0', http_port: 8080, echo_port: 7000, echo_bytes: 1024 * 1024, path: '/from-python' });
    const running = new Promise<PyResult>((resolve, reject) => {
      execFile(PYTHON, [SCRIPT, spec], { timeout: 60_000, env: { PATH: process.env.PATH ?? '', HOME: b.dir } }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`${err.message}\n${stderr}`));
        resolve(JSON.parse(stdout) as PyResult);
      });
    });
    const approval = await approveAsAsked(known, [7000, 8080]);
    const r = await running;
    expect(r.error).toBeNull();
    expect(r.http).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(r.http!.endsWith('hello from demo/web-0 (container app, port 8080): GET /from-python\n')).toBe(true);
    expect(r.echo_length).toBe(1024 * 1024);
    expect(r.echo_sha256_received).toBe(r.echo_sha256_sent);
    const [session] = await b.bastion.store.sessions.list({ approvalId: approval.id });
    expect({ transport: session!.transport, protocol: session!.protocol }).toEqual({ transport: 'websocket', protocol: 'v4.channel.k8s.io' });
    await expect.poll(async () => (await b.bastion.store.sessions.listConnections(session!.id)).map((c) => [c.port, c.outcome, c.protocol, c.sha256In === c.sha256Out]), { timeout: 10_000 }).toEqual([
      [8080, 'closed', 'http/1.x', false],
      [7000, 'closed', 'unrecognised', true],
    ]);
    const echo = (await b.bastion.store.sessions.listConnections(session!.id))[1]!;
    expect(echo.sha256In).toBe(r.echo_sha256_sent);
    // Done: the next client's request is held again instead of running under this approval.
    expect((await controlApi(b, approver, 'POST', `/v1/approvals/${approval.id}/revoke`, { reason: 'test done' })).status).toBe(200);
  });
});

describe('@kubernetes/client-node PortForward through the bastion', () => {
  it('is held for port 8080, approved as asked, and gets the HTTP answer of demo/web-0', async () => {
    const known = await approvalIds(b, approver);
    const kc = new KubeConfig();
    kc.loadFromFile(b.agentKubeconfig);
    const output = new PassThrough();
    const errors = new PassThrough();
    const input = new PassThrough();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    output.on('data', (d: Buffer) => out.push(d));
    errors.on('data', (d: Buffer) => err.push(d));
    const opening = new PortForward(kc).portForward('demo', 'web-0', [8080], output, errors, input) as Promise<WebSocket>;
    const approval = await approveAsAsked(known, [8080]);
    const ws = await opening;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    expect(ws.protocol).toBe('v4.channel.k8s.io');
    input.write('GET /client-node-through-bastion HTTP/1.0\r\n\r\n');
    await closed;
    const http = Buffer.concat(out).toString();
    expect(http).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(http.endsWith('hello from demo/web-0 (container app, port 8080): GET /client-node-through-bastion\n')).toBe(true);
    expect(Buffer.concat(err).length).toBe(0);
    const [session] = await b.bastion.store.sessions.list({ approvalId: approval.id });
    await expect.poll(async () => (await b.bastion.store.sessions.listConnections(session!.id)).map((c) => `${c.port} ${c.outcome} ${c.protocol}`), { timeout: 10_000 }).toEqual(['8080 closed http/1.x']);
  });
});
