// Benchmarks of the relay, each against a direct connection to the same simulated cluster
// measured in the same run. Prints numbers and ratios; asserts nothing (machines here are noisy).
//
//   npx tsx bench/relay.ts [--mib 64] [--runs 3]
//
// 1. Throughput: `kubectl exec -i -- cat` of N MiB, direct vs through the bastion (SPDY 1.27, WebSocket 1.33).
// 2. Approval latency: approve call -> first byte at kubectl (goal < 200 ms), next to a direct exec's time to first byte.
// 3. Cutoff: expiry -> kubectl exit (goal < 1 s), and revocation -> last byte relayed (goal < 100 ms).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { freshHome, kubectlPath } from '../test/helpers/kubectl.js';
import { startTestBastion } from '../test/helpers/bastion.js';
import { writeKubeconfig } from '../src/app/kubeconfig.js';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '64' }, runs: { type: 'string', default: '3' } } });
const MIB = Number(values.mib);
const RUNS = Number(values.runs);

interface Run {
  ms: number;
  firstByteMs: number | undefined;
  exitedAt: number;
  stdout: Buffer;
  stderr: string;
  code: number | null;
}

function kubectl(minor: number, kubeconfig: string, args: string[], stdin?: Buffer, env: Record<string, string> = {}): { done: Promise<Run>; startedAt: number } {
  const startedAt = Date.now();
  const t0 = performance.now();
  const child = spawn(kubectlPath(minor), ['--kubeconfig', kubeconfig, ...args], { env: { PATH: process.env.PATH ?? '', HOME: freshHome(), ...env } });
  const out: Buffer[] = [];
  let first: number | undefined;
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    first ??= performance.now() - t0;
    out.push(d);
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.on('error', () => {});
  child.stdin.end(stdin);
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code) => resolve({ ms: performance.now() - t0, firstByteMs: first, exitedAt: Date.now(), stdout: Buffer.concat(out), stderr: err, code })),
  );
  return { done, startedAt };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number) => n.toFixed(1);

const b = await startTestBastion({ extraArgs: ['--hold-timeout', '30'] });
const direct = `${b.dir}/direct.kubeconfig`;
await writeKubeconfig(direct, { server: b.sim.url, caPem: b.sim.caPem, token: b.sim.token, name: 'direct' });
const approver = (await b.bastion.store.users.createUser('bench-approver', 'approver')).token;
const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${b.bastion.controlUrl}${path}`, { method, headers: { Authorization: `Bearer ${approver}`, 'Content-Type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return (await res.json()) as Record<string, unknown>;
};
await api('POST', '/v1/approvals', { agent: b.agentName, namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], ttlSeconds: 3600, reason: 'bench' });

console.log(`# relay throughput: kubectl exec -i -- cat, ${MIB} MiB, median of ${RUNS}`);
const input = randomBytes(MIB * 1024 * 1024);
for (const [label, minor] of [['SPDY (kubectl 1.27)', 27], ['WebSocket (kubectl 1.33)', 33]] as const) {
  const times = { direct: [] as number[], bastion: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    for (const [which, cfg] of [['direct', direct], ['bastion', b.agentKubeconfig]] as const) {
      const r = await kubectl(minor, cfg, ['exec', '-i', '-n', 'demo', 'web-0', '--', 'cat'], input).done;
      if (!r.stdout.equals(input)) throw new Error(`${which} ${label}: output differs`);
      times[which].push(r.ms);
    }
  }
  const d = median(times.direct);
  const p = median(times.bastion);
  console.log(`${label.padEnd(26)} direct ${fmt((MIB / d) * 1000)} MiB/s   bastion ${fmt((MIB / p) * 1000)} MiB/s   bastion/direct time ratio ${(p / d).toFixed(2)}`);
}

console.log('\n# approval latency: approve call -> first byte at kubectl (goal < 200 ms)');
for (let i = 0; i < RUNS; i++) {
  const before = new Set(((await api('GET', '/v1/approvals')).items as Array<{ id: string }>).map((a) => a.id));
  const run = kubectl(33, b.agentKubeconfig, ['exec', '-n', 'default', 'busybox', '--', 'echo', `held-${i}`]);
  let pending: { id: string } | undefined;
  while (!pending) {
    await new Promise((r) => setTimeout(r, 20));
    pending = ((await api('GET', '/v1/approvals?state=pending')).items as Array<{ id: string }>).find((a) => !before.has(a.id));
  }
  const approveAt = Date.now();
  await api('POST', `/v1/approvals/${pending.id}/approve`, {});
  const r = await run.done;
  const firstByteAt = run.startedAt + (r.firstByteMs ?? NaN);
  const directRun = await kubectl(33, direct, ['exec', '-n', 'default', 'busybox', '--', 'echo', 'x']).done;
  console.log(`run ${i}: approve -> first byte ${Math.round(firstByteAt - approveAt)} ms   (a whole direct exec: ${fmt(directRun.ms)} ms, ratio ${((firstByteAt - approveAt) / directRun.ms).toFixed(2)})`);
}

console.log('\n# cutoff: expiry -> kubectl exit (goal < 1 s); revocation -> last byte (goal < 100 ms)');
const ticker = ['exec', '-n', 'demo', 'shell-0', '--', 'sh', '-c', 'while :; do date +%s%N; sleep 0.01; done'];
for (const minor of [27, 33]) {
  const a = (await api('POST', '/v1/approvals', { agent: b.agentName, namespace: 'demo', pod: 'shell-0', container: 'main', verbs: ['exec'], ttlSeconds: 3, reason: 'bench' })) as { expiresAt: string; id: string };
  const r = await kubectl(minor, b.agentKubeconfig, ticker).done;
  const deadline = Date.parse(a.expiresAt);
  const last = Number(BigInt(r.stdout.toString().trim().split('\n').at(-1)!) / 1_000_000n);
  console.log(`kubectl 1.${minor} expiry: last stamp ${deadline - last} ms before the deadline; kubectl exited ${r.exitedAt - deadline} ms after it`);
  await api('POST', `/v1/approvals/${a.id}/revoke`, { reason: 'bench cleanup' }).catch(() => {});

  const long = (await api('POST', '/v1/approvals', { agent: b.agentName, namespace: 'demo', pod: 'shell-0', container: 'main', verbs: ['exec'], ttlSeconds: 600, reason: 'bench' })) as { id: string };
  const run = kubectl(minor, b.agentKubeconfig, ticker);
  await new Promise((r) => setTimeout(r, 1500));
  const revoked = (await api('POST', `/v1/approvals/${long.id}/revoke`, { reason: 'bench' })) as { revokedAt: string };
  const rr = await run.done;
  const lastStamp = Number(BigInt(rr.stdout.toString().trim().split('\n').at(-1)!) / 1_000_000n);
  console.log(`kubectl 1.${minor} revocation: last stamp ${lastStamp - Date.parse(revoked.revokedAt)} ms after revokedAt; kubectl exited ${rr.exitedAt - Date.parse(revoked.revokedAt)} ms after it`);
}

await b.stop();
