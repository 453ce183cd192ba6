// REST: a GET of one pod and a LIST of the namespace's 1,000 pods, at concurrency 1 and 64, for a
// fixed window per endpoint, endpoints interleaved per round (keep-alive connections, bodies read
// in full, not parsed). Endpoints: direct, nginx, the node pipe (a TLS byte relay), the node proxy
// (a bare Node HTTP reverse proxy: what any Node proxy terminating TLS on both legs costs) and the
// bastion.
import https from 'node:https';
import { restGet } from '../lib/clients.js';
import { BENCH_NAMESPACE, rotated, type Ctx } from '../lib/context.js';
import { cpuSeconds, totalCpu, type Endpoint } from '../lib/procs.js';
import { fmt, fmtSpread, quantile, ratio, spread, verdict, type Row, type Spread } from '../lib/report.js';

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
  /**
   * CPU (utime + stime) over the window, µs per request (10 ms /proc resolution): the sim's, and
   * the endpoint's own processes' (the bastion, the node proxy, the node pipe, nginx's worker; none
   * for direct).
   */
  simCpuUsPerReq: number;
  endpointCpuUsPerReq: number;
  /** The bench's own client (this process) over the window, µs per request. */
  clientCpuUsPerReq: number;
}

async function window(ctx: Ctx, ep: Endpoint, agent: https.Agent, path: string, concurrency: number, ms: number): Promise<WindowResult> {
  const latencies: number[] = [];
  let bytes = 0;
  const client0 = process.cpuUsage();
  const sim0 = cpuSeconds(ctx.simPid);
  const endpoint0 = totalCpu(ep.pids());
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
    endpointCpuUsPerReq: perReq(totalCpu(ep.pids()) - endpoint0),
  };
}

/**
 * One request on each of the window's `concurrency` connections, not measured: the window then
 * runs on open connections, on both legs of a relay. Without it every window opened its
 * connections anew (the client closes them after 3 s idle, the sim its own after 5 s, and the
 * other endpoints' windows take longer than that): 64 TLS handshakes on each leg of a relay in a
 * GET c=64 window, a per-connection cost in the per-request figures (the node pipe's CPU per GET
 * was 161 µs with them, 89 without; bench/README.md, REST).
 */
async function warm(ep: Endpoint, agent: https.Agent, path: string, concurrency: number): Promise<void> {
  await Promise.all(Array.from({ length: concurrency }, () => restGet(ep, agent, path)));
}

export async function measureRest(ctx: Ctx): Promise<Row[]> {
  const OPS = ops(ctx.sizes.restPods);
  const rps: Record<string, Record<string, number[]>> = {};
  const lat: Record<string, Record<string, number[]>> = {};
  const bodyBytes: Record<string, number> = {};
  const windows: Array<Record<string, unknown>> = [];
  /** Per op and concurrency, per endpoint: CPU µs per request per round, of the endpoint's processes and of the sim. */
  const cpu: Record<string, Record<string, { endpoint: number[]; sim: number[]; client: number[] }>> = {};
  const agents = new Map<string, https.Agent>();
  const agentFor = (ep: Endpoint, c: number): https.Agent => {
    const key = `${ep.label}.${c}`;
    if (!agents.has(key)) agents.set(key, restAgent(ep, c));
    return agents.get(key)!;
  };
  // Warm-up: connections, JIT, the bastion's pod cache.
  for (const ep of ctx.restTargets) for (const o of OPS) await window(ctx, ep, agentFor(ep, 1), o.path, 1, 100);

  for (let round = 0; round < ctx.sizes.rounds; round++) {
    for (const o of OPS) {
      for (const c of CONCURRENCY) {
        const key = `${o.op}.c${c}`;
        rps[key] ??= {};
        lat[key] ??= {};
        cpu[key] ??= {};
        for (const ep of rotated(ctx.restTargets, round)) {
          ctx.progress(`rest round ${round + 1}/${ctx.sizes.rounds}: ${o.label} c=${c} ${ep.label}`);
          await warm(ep, agentFor(ep, c), o.path, c);
          const w = await window(ctx, ep, agentFor(ep, c), o.path, c, ctx.sizes.restWindowMs);
          windows.push({ op: o.op, concurrency: c, endpoint: ep.label, round, requests: w.latencies.length, startUs: w.startUs, endUs: w.endUs, simCpuUsPerReq: Math.round(w.simCpuUsPerReq), endpointCpuUsPerReq: Math.round(w.endpointCpuUsPerReq), clientCpuUsPerReq: Math.round(w.clientCpuUsPerReq) });
          const c1 = (cpu[key]![ep.label] ??= { endpoint: [], sim: [], client: [] });
          c1.endpoint.push(w.endpointCpuUsPerReq);
          c1.sim.push(w.simCpuUsPerReq);
          c1.client.push(w.clientCpuUsPerReq);
          (rps[key]![ep.label] ??= []).push(w.rps);
          (lat[key]![ep.label] ??= []).push(...w.latencies);
          bodyBytes[o.op] = w.bytes;
        }
      }
    }
  }
  for (const a of agents.values()) a.destroy();
  const pcts = (xs: number[] | undefined) => (xs ? { p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), n: xs.length } : undefined);
  ctx.raw.rest = { bodyBytes, windows, rps, cpuUsPerReq: cpu, latency: Object.fromEntries(Object.entries(lat).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([e, xs]) => [e, pcts(xs)]))])) };

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
        pipe: spread(r.pipe!),
        proxy: spread(r.proxy!),
        bastion: spread(r.bastion!),
        derived: [
          `bastion/direct ${fmtSpread(vsDirect)}`,
          `/proxy ${fmtSpread(ratio(r.bastion!, r.proxy!))}`,
          `proxy/direct ${fmtSpread(ratio(r.proxy!, r.direct!))}`,
          `pipe/direct ${fmtSpread(ratio(r.pipe!, r.direct!))}`,
        ].join('; '),
        target: '>= 0.7 direct',
        verdict: verdict(vsDirect.median >= 0.7),
      });
      // Where the two cores go: throughput here follows the CPU per request of all processes.
      const k = cpu[key]!;
      const med = (xs: number[] | undefined): Spread | undefined => (xs && xs.length > 0 ? spread(xs) : undefined);
      const total = (label: string): string => fmt(spread(k[label]!.client).median + spread(k[label]!.sim).median + spread(k[label]!.endpoint).median, 0);
      rows.push({
        id: `rest.${key}.cpu`,
        measure: `REST ${o.label}, concurrency ${c}: CPU per request of the process(es) between client and sim`,
        unit: 'µs',
        direct: undefined,
        nginx: med(k.nginx?.endpoint),
        pipe: med(k.pipe!.endpoint),
        proxy: med(k.proxy!.endpoint),
        bastion: med(k.bastion!.endpoint),
        derived: `client+sim+endpoint: direct ${total('direct')}, proxy ${total('proxy')}, bastion ${total('bastion')}; sim: direct ${fmt(spread(k.direct!.sim).median, 0)}, via bastion ${fmt(spread(k.bastion!.sim).median, 0)}`,
        target: '(none)',
        verdict: 'n/a',
      });
      for (const q of [0.5, 0.99] as const) {
        const one = (xs: number[] | undefined) => (xs ? { median: quantile(xs, q), min: quantile(xs, q), max: quantile(xs, q), n: xs.length } : undefined);
        rows.push({
          id: `rest.${key}.p${q * 100}`,
          measure: `REST ${o.label}, concurrency ${c}: latency p${q * 100} (all rounds)`,
          unit: 'ms',
          direct: one(lat[key]!.direct),
          nginx: one(lat[key]!.nginx),
          pipe: one(lat[key]!.pipe),
          proxy: one(lat[key]!.proxy),
          bastion: one(lat[key]!.bastion),
          derived: `bastion/direct ${fmt(quantile(lat[key]!.bastion!, q) / quantile(lat[key]!.direct!, q))}, bastion/proxy ${fmt(quantile(lat[key]!.bastion!, q) / quantile(lat[key]!.proxy!, q))}`,
          target: '(none)',
          verdict: 'n/a',
        });
      }
    }
  }
  return rows;
}
