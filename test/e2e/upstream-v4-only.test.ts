// A bastion in front of a cluster that refuses WebSocket v5, as an API server older than 1.30 does
// (no stream translator: the kubelet speaks v4 and older). v4 over WebSocket cannot half-close
// stdin, so the bastion dials such an upstream over SPDY/3.1, where a FIN on the stdin stream is
// the half-close: `kubectl exec -i … -- cat` ends when its stdin does.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimCluster } from '../../src/sim/cluster.js';
import type { Approval } from '../../src/model/approval.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { controlApi } from '../helpers/control.js';
import { runKubectl } from '../helpers/kubectl.js';

let sim: SimCluster;
let b: TestBastion;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kb-v4-only-'));
  sim = new SimCluster({ maxRemoteCommandVersion: 4 });
  await sim.start();
  const kubeconfig = join(dir, 'upstream.kubeconfig');
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'old', cluster: { server: sim.url, 'certificate-authority-data': Buffer.from(sim.caPem).toString('base64') } }],
      users: [{ name: 'bastion', user: { token: sim.token } }],
      contexts: [{ name: 'old', context: { cluster: 'old', user: 'bastion' } }],
      'current-context': 'old',
    }),
  );
  b = await startTestBastion({ extraArgs: ['--upstream-kubeconfig', kubeconfig], sim });
  const approver = (await b.bastion.store.users.createUser('alice', 'approver')).token;
  const { status } = await controlApi<Approval>(b, approver, 'POST', '/v1/approvals', {
    agent: b.agentName, namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], ttlSeconds: 600, reason: 'v4-only upstream suite',
  });
  expect(status).toBe(201);
});

afterAll(async () => {
  await b?.stop();
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('exec through the bastion to an upstream that speaks only v4', () => {
  it.each([27, 33])('kubectl 1.%i exec -i … -- cat: 1 MiB comes back byte-identical and kubectl exits 0', async (minor) => {
    const input = randomBytes(1024 * 1024);
    const upgradesBefore = sim.requests.entries.filter((e) => e.upgrade).length;
    const r = await runKubectl({ minor, kubeconfig: b.agentKubeconfig, args: ['exec', '-i', '-n', 'demo', 'web-0', '-c', 'app', '--', 'cat'], stdin: input, timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(input.length);
    expect(sha256(r.stdout)).toBe(sha256(input));

    // Upstream: the refused WebSocket v5 offer, then the SPDY upgrade that ran the command.
    const upgrades = sim.requests.entries.filter((e) => e.upgrade).slice(upgradesBefore);
    expect(upgrades.map((e) => e.method)).toEqual(['GET', 'POST']);
    expect(upgrades[0]!.headers['sec-websocket-protocol']).toBe('v5.channel.k8s.io');

    // The session row says what was used upstream, and that the command completed.
    const ended = async () => (await b.bastion.store.sessions.list({})).filter((s) => JSON.stringify(s.command) === '["cat"]' && s.endReason !== null);
    await expect.poll(async () => (await ended()).length, { timeout: 10_000 }).toBe(minor === 27 ? 1 : 2);
    const row = (await ended()).find((s) => s.transport === (minor === 27 ? 'spdy' : 'websocket'));
    expect(row).toMatchObject({ upstreamProtocol: 'v4.channel.k8s.io over SPDY/3.1', endReason: 'completed', exitCode: 0, bytesIn: input.length, bytesOut: input.length });
  });

  it('kubectl 1.33 exec with a failing command: the exit code comes back through the SPDY error stream', async () => {
    const r = await runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '-c', 'app', '--', 'sh', '-c', 'echo out; echo err >&2; exit 5'] });
    expect(r.code).toBe(5);
    expect(r.stdout.toString()).toBe('out\n');
    expect(r.stderr).toBe('err\ncommand terminated with exit code 5\n');
  });
});
