// The bench's server processes, one per process so each one's CPU and RSS can be read apart from
// the clients': `sim` (the simulated cluster, plus BENCH_PODS extra pod objects in namespace
// `bench` for the REST LIST) and `bastion` (the bastion as `serve` runs it, info log to a file,
// recording on, upstream = that sim through its kubeconfig). Forked by bench/lib/procs.ts; each
// sends one 'ready' message with what the driver needs, and exits (writing a --cpu-prof profile
// if asked) on a 'stop' message.
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { SimCluster } from '../src/sim/cluster.js';
import type { KubeObject } from '../src/sim/store.js';
import { writeKubeconfig } from '../src/app/kubeconfig.js';
import { startBastion } from '../src/app/bastion.js';
import { parseServeConfig } from '../src/app/config.js';
import { createLogger } from '../src/observability/log.js';
import { upstreamFromKubeconfigFile } from '../src/upstream/upstream.js';
import { BENCH_NAMESPACE } from './lib/context.js';


/** Pod objects only (no processes): the store is the sim's own, so LIST sees them like any pod. */
function seedPods(sim: SimCluster, count: number): void {
  const template = sim.store.get('pods', 'demo', 'web-0');
  if (!template) throw new Error('the sim has no demo/web-0 to copy');
  sim.store.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: BENCH_NAMESPACE }, spec: {}, status: { phase: 'Active' } });
  for (let i = 0; i < count; i++) {
    const pod: KubeObject = structuredClone(template);
    const name = `pod-${String(i).padStart(4, '0')}`;
    pod.metadata = { name, namespace: BENCH_NAMESPACE, labels: { app: 'bench' } };
    sim.store.create('pods', pod);
  }
}

async function runSim(dir: string, pods: number): Promise<() => Promise<void>> {
  const sim = new SimCluster({ host: '127.0.0.1', port: 0, onError: (err) => process.stderr.write(`sim: ${String(err)}\n`) });
  await sim.start();
  seedPods(sim, pods);
  const kubeconfig = join(dir, 'direct.kubeconfig');
  await writeKubeconfig(kubeconfig, { server: sim.url, caPem: sim.caPem, token: sim.token, name: 'direct' });
  process.send!({ ready: { url: sim.url, caPem: sim.caPem, token: sim.token, kubeconfig } });
  return () => sim.stop();
}

async function runBastion(dir: string, upstreamKubeconfig: string): Promise<() => Promise<void>> {
  const config = parseServeConfig(
    ['--data-dir', join(dir, 'data'), '--recordings', join(dir, 'recordings'), '--listen', '127.0.0.1:0', '--control-listen', '127.0.0.1:0', '--upstream-kubeconfig', upstreamKubeconfig, '--hold-timeout', '60'],
    dir,
  );
  // serve logs at info; the bench keeps that cost but writes it to a file.
  const log = createLogger('info', createWriteStream(join(dir, 'bastion.log')));
  const bastion = await startBastion(config, log, upstreamFromKubeconfigFile(upstreamKubeconfig));
  const { token: agentToken } = await bastion.store.agents.createAgent('bench-agent');
  const kubeconfig = join(dir, 'bastion.kubeconfig');
  const caPem = bastion.tls.caPem!; // generated material always has its CA
  await writeKubeconfig(kubeconfig, { server: bastion.kubeUrl, caPem, token: agentToken, name: 'bastion' });
  const approver = (await bastion.store.users.createUser('bench-approver', 'approver')).token;
  process.send!({
    ready: { url: bastion.kubeUrl, caPem, token: agentToken, kubeconfig, controlUrl: bastion.controlUrl, approverToken: approver, agent: 'bench-agent', recordings: config.recordingsDir },
  });
  return () => bastion.stop();
}

const [role, dir, arg] = process.argv.slice(2);
const stop = role === 'sim' ? await runSim(dir!, Number(arg ?? 0)) : await runBastion(dir!, arg!);
process.on('message', (m) => {
  if (m !== 'stop') return;
  void stop()
    .catch((err) => process.stderr.write(`${role} stop: ${String(err)}\n`))
    .finally(() => process.exit(0));
});
// The driver going away must not leave servers behind.
process.on('disconnect', () => process.exit(0));
