// REST: a GET of one pod and a LIST of the namespace's 1,000 pods, at concurrency 1 and 64, for a
// fixed window per endpoint, endpoints interleaved per round (keep-alive connections, bodies read
// in full, not parsed).
import https from 'node:https';
import { restGet } from '../lib/clients.js';
import { BENCH_NAMESPACE, rotated, type Ctx } from '../lib/context.js';
import { cpuSeconds, type Endpoint } from '../lib/procs.js';
import { fmt, quantile, ratio, spread, verdict, type Row } from '../lib/report.js';

function ops(pods: number) {
  return [
    { op: 'get', label: 'GET one pod', path: `/api/v1/namespaces/${BENCH_NAMESPACE}/pods/pod-${String(Math.floor(pods / 2)).padStart(4, '0')}` },
    { op: 'list', label: `LIST ${pods.toLocaleString('en-US')} pods`, path: `/api/v1/namespaces/${BENCH_NAMESPACE}/pods` },
  ] as const;
}
const CONCURRENCY = [1, 64] as const;

/**
 * Keep-alive connections for one endpoint and concurrency. Idle ones are closed by the client after
 * 3 s: the servers (sim and bastion, Node's default keepAliveTimeout of 5 s) close them after 5, and
 * a request sent on one the server is closing just then failed the run with ECONNRESET (seen in the
 * LIST c=64 window, its connections idle since the GET c=64 window).
 */
function restAgent(ep: Endpoint, maxSockets: number): https.Agent {
  return new https.Agent({ keepAlive: true, maxSockets, ca: ep.caPem, timeout: 3000 });
}

/** Monotonic µs, the clock V8's --cpu-prof timestamps use on Linux: windows can be cut out of the bastion's profile. */
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

interface WindowResult {
  rps: number;
  latencies: number[];
  bytes: number;
  /** Window start and end in monotonic µs (see monoUs). */
  startUs: number;
  endUs: number;
  /** CPU (utime + stime) of the sim and the bastion over the window, µs per request (10 ms /proc resolution). */
  simCpuUsPerReq: number;
  bastionCpuUsPerReq: number;
  /** The bench's own client (this process) over the window, µs per request. */
  clientCpuUsPerReq: number;
}

async function window(ctx: Ctx, ep: Endpoint, agent: https.Agent, path: string, concurrency: number, ms: number): Promise<WindowResult> {
  const latencies: number[] = [];
  let bytes = 0;
  const client0 = process.cpuUsage();
  const sim0 = cpuSeconds(ctx.simPid);
  const bastion0 = cpuSeconds(ctx.bastionPid);
  const startUs = monoUs();
  const t0 = performance.now();
  const until = t0 + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const s = performance.now();
        bytes = await restGet(ep, agent, path);
        latencies.push(performance.now() - s);
      }
    }),
  );
  const endUs = monoUs();
  const client = process.cpuUsage(client0);
  const perReq = (cpu: number) => (cpu * 1e6) / Math.max(1, latencies.length);
  return {
    rps: latencies.length / ((performance.now() - t0) / 1000),
    latencies,
    bytes,
    startUs,
    endUs,
    simCpuUsPerReq: perReq(cpuSeconds(ctx.simPid) - sim0),
    clientCpuUsPerReq: perReq((client.user + client.system) / 1e6),
    bastionCpuUsPerReq: perReq(cpuSeconds(ctx.bastionPid) - bastion0),
  };
}

export async function measureRest(ctx: Ctx): Promise<Row[]> {
  const OPS = ops(ctx.sizes.restPods);
  const rps: Record<string, Record<string, number[]>> = {};
  const lat: Record<string, Record<string, number[]>> = {};
  const bodyBytes: Record<string, number> = {};
  const windows: Array<Record<string, unknown>> = [];
  const agents = new Map<string, https.Agent>();
  const agentFor = (ep: Endpoint, c: number): https.Agent => {
    const key = `${ep.label}.${c}`;
    if (!agents.has(key)) agents.set(key, restAgent(ep, c));
    return agents.get(key)!;
  };
  // Warm-up: connections, JIT, the bastion's pod cache.
  for (const ep of ctx.targets) for (const o of OPS) await window(ctx, ep, agentFor(ep, 1), o.path, 1, 100);

  for (let round = 0; round < ctx.sizes.rounds; round++) {
    for (const o of OPS) {
      for (const c of CONCURRENCY) {
        const key = `${o.op}.c${c}`;
        rps[key] ??= {};
        lat[key] ??= {};
        for (const ep of rotated(ctx.targets, round)) {
          ctx.progress(`rest round ${round + 1}/${ctx.sizes.rounds}: ${o.label} c=${c} ${ep.label}`);
          const w = await window(ctx, ep, agentFor(ep, c), o.path, c, ctx.sizes.restWindowMs);
          windows.push({ op: o.op, concurrency: c, endpoint: ep.label, round, requests: w.latencies.length, startUs: w.startUs, endUs: w.endUs, simCpuUsPerReq: Math.round(w.simCpuUsPerReq), bastionCpuUsPerReq: Math.round(w.bastionCpuUsPerReq), clientCpuUsPerReq: Math.round(w.clientCpuUsPerReq) });
          (rps[key]![ep.label] ??= []).push(w.rps);
          (lat[key]![ep.label] ??= []).push(...w.latencies);
          bodyBytes[o.op] = w.bytes;
        }
      }
    }
  }
  for (const a of agents.values()) a.destroy();
  const pcts = (xs: number[] | undefined) => (xs ? { p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), n: xs.length } : undefined);
  ctx.raw.rest = { bodyBytes, windows, rps, latency: Object.fromEntries(Object.entries(lat).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([e, xs]) => [e, pcts(xs)]))])) };

  const rows: Row[] = [];
  for (const o of OPS) {
    for (const c of CONCURRENCY) {
      const key = `${o.op}.c${c}`;
      const r = rps[key]!;
      const vsDirect = ratio(r.bastion!, r.direct!);
      rows.push({
        id: `rest.${key}.rps`,
        measure: `REST ${o.label} (${fmt(bodyBytes[o.op]! / 1024, 0)} KiB), concurrency ${c}`,
        unit: 'req/s',
        direct: spread(r.direct!),
        nginx: r.nginx ? spread(r.nginx) : undefined,
        bastion: spread(r.bastion!),
        derived: `bastion/direct ${fmt(vsDirect.median)} (${fmt(vsDirect.min)}..${fmt(vsDirect.max)})`,
        target: '>= 0.7 direct',
        verdict: verdict(vsDirect.median >= 0.7),
      });
      for (const q of [0.5, 0.99] as const) {
        const one = (xs: number[] | undefined) => (xs ? { median: quantile(xs, q), min: quantile(xs, q), max: quantile(xs, q), n: xs.length } : undefined);
        rows.push({
          id: `rest.${key}.p${q * 100}`,
          measure: `REST ${o.label}, concurrency ${c}: latency p${q * 100} (all rounds)`,
          unit: 'ms',
          direct: one(lat[key]!.direct),
          nginx: one(lat[key]!.nginx),
          bastion: one(lat[key]!.bastion),
          derived: `bastion/direct ${fmt(quantile(lat[key]!.bastion!, q) / quantile(lat[key]!.direct!, q))}`,
          target: '(none)',
          verdict: 'n/a',
        });
      }
    }
  }
  return rows;
}
