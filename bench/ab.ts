// Before/after in one run: bastions built from several source trees (another commit checked out
// elsewhere, e.g. `git archive COMMIT | tar -x -C DIR` with node_modules linked) in front of one
// sim, REST GET windows of one pod interleaved between them in a rotated order each round, each
// window on open connections (one unmeasured request per connection first). Prints, per bastion,
// req/s and its CPU per request (utime + stime from /proc) per round, and req/s over the first's in
// the same round. With AB_PROXY=1 the node proxy (servers.ts http-proxy) runs too, first.
//
//   npx tsx bench/ab.ts ROUNDS CONCURRENCY WINDOW_MS LABEL:TREE[:src|dist] ...
//   e.g. AB_PROXY=1 npx tsx bench/ab.ts 10 64 1500 before:/tmp/kb-before after:.
//
// Each TREE's own bench/servers.ts starts its bastion (so from that tree's src, or its dist with
// `:dist` where that tree's servers.ts takes it).
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { restGet } from './lib/clients.js';
import { BENCH_NAMESPACE } from './lib/context.js';
import { cpuSeconds, startNodeProxy, type Endpoint } from './lib/procs.js';
import { median } from './lib/report.js';

interface Started {
  info: { url: string; caPem: string; token: string; kubeconfig: string };
  pid: number;
  /** Resolves once the process has exited. */
  stop(): Promise<void>;
}

function start(servers: string, args: string[]): Promise<Started> {
  // process.execArgv carries tsx's loader, so the child runs the TypeScript sources too.
  const child = fork(servers, args, { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolveStarted, reject) => {
    const stop = (): Promise<void> =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.send('stop');
      });
    child.once('message', (m: { ready: Started['info'] }) => resolveStarted({ info: m.ready, pid: child.pid!, stop }));
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code} before it was ready`)));
  });
}

const [rounds = '10', concurrency = '64', windowMs = '1500', ...specs] = process.argv.slice(2);
if (specs.length === 0) throw new Error('usage: ab.ts ROUNDS CONCURRENCY WINDOW_MS LABEL:TREE[:src|dist] ...');
const c = Number(concurrency);
const dir = mkdtempSync(join(tmpdir(), 'kb-ab-'));
const here = fileURLToPath(new URL('.', import.meta.url));
const sim = await start(join(here, 'servers.ts'), ['sim', dir, '20']);
const endpoints: Array<Endpoint & { stop(): Promise<void>; pid: number }> = [];
if (process.env.AB_PROXY) {
  const p = await startNodeProxy(dir, sim.info);
  endpoints.push({ ...p.info, pid: p.child.pid!, stop: () => p.stop() });
}
for (const spec of specs) {
  const [label, tree, from] = spec.split(':');
  const d = join(dir, label!);
  mkdirSync(d);
  const b = await start(join(resolve(tree!), 'bench/servers.ts'), ['bastion', d, sim.info.kubeconfig, ...(from ? [from] : [])]);
  endpoints.push({ label: label as Endpoint['label'], ...b.info, pid: b.pid, stop: b.stop, pids: () => [b.pid] });
}
const path = `/api/v1/namespaces/${BENCH_NAMESPACE}/pods/pod-0010`;
const results = new Map<string, { rps: number[]; cpu: number[] }>();
// Round -1 warms every bastion up (JIT, caches) and is not counted.
for (let round = -1; round < Number(rounds); round++) {
  const k = Math.max(round, 0) % endpoints.length;
  for (const ep of [...endpoints.slice(k), ...endpoints.slice(0, k)]) {
    const agent = new https.Agent({ keepAlive: true, maxSockets: c, ca: ep.caPem });
    await Promise.all(Array.from({ length: c }, () => restGet(ep, agent, path)));
    let n = 0;
    const cpu0 = cpuSeconds(ep.pid);
    const t0 = performance.now();
    const until = t0 + (round < 0 ? 300 : Number(windowMs));
    await Promise.all(
      Array.from({ length: c }, async () => {
        while (performance.now() < until) {
          await restGet(ep, agent, path);
          n++;
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const cpuUs = ((cpuSeconds(ep.pid) - cpu0) * 1e6) / n;
    agent.destroy();
    if (round < 0) continue;
    const r = results.get(ep.label) ?? { rps: [], cpu: [] };
    results.set(ep.label, r);
    r.rps.push(n / seconds);
    r.cpu.push(cpuUs);
  }
}
const first = results.get(endpoints[0]!.label)!;
for (const ep of endpoints) {
  const r = results.get(ep.label)!;
  const vsFirst = r.rps.map((v, i) => v / first.rps[i]!);
  const list = (xs: number[], d = 0) => xs.map((x) => x.toFixed(d)).join(' ');
  console.log(`${ep.label}: req/s median ${median(r.rps).toFixed(0)} [${list(r.rps)}]; CPU µs per request median ${median(r.cpu).toFixed(0)} [${list(r.cpu)}]; req/s over ${endpoints[0]!.label} in the same round median ${median(vsFirst).toFixed(2)} [${list(vsFirst, 2)}]`);
}
await Promise.all([...endpoints.map((ep) => ep.stop()), sim.stop()]);
rmSync(dir, { recursive: true, force: true });
process.exit(0);
