// Starts a simulated cluster for a test file and writes a kubeconfig for it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimCluster } from '../../src/sim/cluster.js';
import { writeKubeconfig } from '../../src/app/kubeconfig.js';

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

/** Upgrade requests (exec/attach) the sim received since `from`, as "METHOD upgrade". */
export function upgradesSince(sim: SimCluster, from: number): string[] {
  return sim.requests.entries.slice(from).filter((e) => e.upgrade).map((e) => `${e.method} ${e.upgrade!.toLowerCase()}`);
}
