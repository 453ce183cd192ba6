// Client libraries other than kubectl: @kubernetes/client-node's Exec (v5) and a raw
// v4.channel.k8s.io WebSocket client, as older tools (e.g. Debian's python client) speak it.
import { PassThrough, Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Exec, KubeConfig, type V1Status } from '@kubernetes/client-node';
import WebSocket from 'ws';
import { startSim, upgradesSince, type StartedSim } from '../helpers/sim.js';

let env: StartedSim;
beforeAll(async () => {
  env = await startSim();
});
afterAll(async () => {
  await env?.sim.stop();
});

function collect(stream: PassThrough): () => Buffer {
  const chunks: Buffer[] = [];
  stream.on('data', (d: Buffer) => chunks.push(d));
  return () => Buffer.concat(chunks);
}

async function clientNodeExec(command: string[], stdin: Readable | null): Promise<{ status: V1Status; stdout: Buffer; stderr: Buffer }> {
  const kc = new KubeConfig();
  kc.loadFromFile(env.kubeconfig);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out = collect(stdout);
  const err = collect(stderr);
  const status = await new Promise<V1Status>((resolve, reject) => {
    new Exec(kc).exec('demo', 'web-0', 'app', command, stdout, stderr, stdin, false, (s) => resolve(s)).then((ws) => {
      ws.on('error', reject);
    }, reject);
  });
  // The status arrives before the socket closes; give the last stdout frames a moment to land.
  await new Promise((r) => setTimeout(r, 100));
  return { status, stdout: out(), stderr: err() };
}

describe('@kubernetes/client-node Exec (v5.channel.k8s.io)', () => {
  it('returns stdout, stderr and the exit code as a Status', async () => {
    const before = env.sim.requests.entries.length;
    const { status, stdout, stderr } = await clientNodeExec(['sh', '-c', 'echo hi there; echo oops >&2; exit 3'], null);
    expect(stdout.toString()).toBe('hi there\n');
    expect(stderr.toString()).toBe('oops\n');
    expect(status.status).toBe('Failure');
    expect(status.reason).toBe('NonZeroExitCode');
    expect(status.details?.causes?.[0]).toMatchObject({ reason: 'ExitCode', message: '3' });
    expect(upgradesSince(env.sim, before)).toEqual(['GET websocket']);
  });

  it('half-closes stdin with the v5 CLOSE signal so cat ends', async () => {
    const input = randomBytes(256 * 1024);
    const { status, stdout } = await clientNodeExec(['cat'], Readable.from([input]));
    expect(status.status).toBe('Success');
    expect(stdout.equals(input)).toBe(true);
  });
});

describe('raw v4.channel.k8s.io WebSocket client', () => {
  it('gets the initial frame, stdout, the Status on channel 3 and a 1000 close', async () => {
    const url = `${env.sim.url.replace('https:', 'wss:')}/api/v1/namespaces/demo/pods/web-0/exec?command=head&command=-c&command=5&container=app&stdin=true&stdout=true&stderr=true`;
    const ws = new WebSocket(url, ['v4.channel.k8s.io'], { ca: env.sim.caPem, headers: { Authorization: `Bearer ${env.sim.token}` } });
    const frames: Buffer[] = [];
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('message', (data: Buffer) => frames.push(Buffer.from(data)));
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => resolve());
      ws.on('error', reject);
    });
    expect(ws.protocol).toBe('v4.channel.k8s.io');
    ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('hello world')]));
    expect(await closed).toBe(1000);
    expect(frames[0]).toEqual(Buffer.from([1]));
    const stdout = Buffer.concat(frames.filter((f) => f[0] === 1).map((f) => f.subarray(1)));
    expect(stdout.toString()).toBe('hello');
    const status = frames.filter((f) => f[0] === 3).map((f) => f.subarray(1).toString());
    expect(status).toEqual(['{"metadata":{},"status":"Success"}']);
  });
});
