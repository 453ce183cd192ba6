// Interop with a real, independent client: @kubernetes/client-node 1.4.0's Exec.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough, Readable } from 'node:stream';
import { Exec, KubeConfig, type V1Status } from '@kubernetes/client-node';
import { exitCodeStatus, successStatus } from '../../protocol/status.js';
import { startHarness, type Harness } from './test-support.js';

let h: Harness;
let kc: KubeConfig;
beforeAll(async () => {
  h = await startHarness();
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'loopback', server: `http://127.0.0.1:${h.port}`, skipTLSVerify: true }],
    users: [{ name: 'agent', token: 'not-checked-here' }],
    contexts: [{ name: 'ctx', cluster: 'loopback', user: 'agent' }],
    currentContext: 'ctx',
  });
});
afterAll(async () => {
  await h.close();
});

function collect(stream: PassThrough): () => string {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return () => Buffer.concat(chunks).toString();
}

describe('@kubernetes/client-node Exec against our server', () => {
  it('echoes stdin (cat), half-closes with v5 CLOSE, and gets the Status through statusCallback', async () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out = collect(stdout);
    const err = collect(stderr);
    const stdin = Readable.from([Buffer.from('hello\n'), Buffer.from('world\n')]);

    const status = new Promise<V1Status>((resolve) => {
      void new Exec(kc).exec('team-a', 'web', 'app', ['cat'], stdout, stderr, stdin, false, resolve);
    });

    const { streams } = await h.nextSession();
    expect(streams.protocolName).toBe('v5.channel.k8s.io');
    expect(streams.options).toEqual({ stdin: true, stdout: true, stderr: true, tty: false });
    streams.stderr!.write('note\n');
    streams.stdin!.on('data', (d: Buffer) => streams.stdout!.write(d));
    // Only client-node's v5 CLOSE ([255,0]) can end stdin while the socket stays open.
    streams.stdin!.once('end', () => void streams.finish(successStatus()));

    expect(await status).toEqual({ metadata: {}, status: 'Success' });
    await streams.closed;
    expect(out()).toBe('hello\nworld\n');
    expect(err()).toBe('note\n');
    expect(streams.failure).toBeUndefined();
  });

  it('delivers a non-zero exit Status', async () => {
    const stdout = new PassThrough();
    const status = new Promise<V1Status>((resolve) => {
      void new Exec(kc).exec('team-a', 'web', 'app', ['sh', '-c', 'exit 3'], stdout, null, null, false, resolve);
    });
    const { streams } = await h.nextSession();
    expect(streams.stdin).toBeNull();
    await streams.finish(exitCodeStatus(3));
    const s = await status;
    expect(s.status).toBe('Failure');
    expect(s.reason).toBe('NonZeroExitCode');
    expect(s.details?.causes?.[0]).toEqual({ reason: 'ExitCode', message: '3' });
  });
});
