// Starts a simulated cluster for a test file and writes a kubeconfig for it.
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { SimCluster } from '../../src/sim/cluster.js';
import { writeKubeconfig } from '../../src/app/kubeconfig.js';
import { upstreamFromCredentials, type UpstreamTarget } from '../../src/upstream/upstream.js';

export interface StartedSim {
  sim: SimCluster;
  kubeconfig: string;
  dir: string;
}

export async function startSim(): Promise<StartedSim> {
  const dir = mkdtempSync(join(tmpdir(), 'kb-sim-test-'));
  const sim = new SimCluster({ onError: (err) => console.error('sim error:', err) });
  await sim.start();
  const kubeconfig = join(dir, 'kubeconfig');
  await writeKubeconfig(kubeconfig, { server: sim.url, caPem: sim.caPem, token: sim.token, name: 'sim' });
  return { sim, kubeconfig, dir };
}

/** A sim for the whole test file (started before its tests, stopped and removed after), handed over with an upstream target for it. */
export function startSimForFile(onStarted: (started: StartedSim, upstream: UpstreamTarget) => void): void {
  let started: StartedSim | undefined;
  beforeAll(async () => {
    started = await startSim();
    onStarted(started, upstreamFromCredentials(started.sim.url, started.sim.caPem, started.sim.token, 'sim'));
  });
  afterAll(async () => {
    await started?.sim.stop();
    if (started) await rm(started.dir, { recursive: true, force: true });
  });
}

/** Upgrade requests (exec/attach) the sim received since `from`, as "METHOD upgrade". */
export function upgradesSince(sim: SimCluster, from: number): string[] {
  return sim.requests.entries.slice(from).filter((e) => e.upgrade).map((e) => `${e.method} ${e.upgrade!.toLowerCase()}`);
}
