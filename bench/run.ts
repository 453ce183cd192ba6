// `npm run bench`: every measure of issue 11, direct (straight to the simulated cluster) vs nginx
// (a plain TLS proxy in front of the same sim, when installed) vs the bastion (recording on), in
// one run, interleaved rounds; the exec measures (throughput, echo) also through the node pipe (a
// bare Node TLS relay in front of the sim, a comparator); the REST measure also through the node
// pipe and the node proxy (a bare Node HTTP reverse proxy in front of the sim). Prints a table with each target's
// verdict and writes JSON.
//
//   npm run bench [-- --smoke] [--out FILE] [--rounds N] [--only m1,m2] [--ramp-cap N] [--sessions N] [--hold N] [--mib N] [--profile DIR] [--no-nginx] [--keep] [--bastion-from src|dist]
//
// The sim, the bastion, nginx, the node pipe and the node proxy each run in their own process (bench/servers.ts) so their CPU and
// RSS are read apart from the clients'. See bench/README.md for what each measure does.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { kubectlPath } from '../test/helpers/kubectl.js';
import { approve, FULL, SMOKE, type Ctx, type Sizes } from './lib/context.js';
import { nginxBinary, startBastionProcess, startNginx, startNodePipe, startNodeProxy, startSim, type BastionEndpoint, type Endpoint, type Server } from './lib/procs.js';
import { renderProfile, summariseProfile } from './lib/profile.js';
import { machine, renderTable, type Row } from './lib/report.js';
import { measureApproval } from './measures/approval.js';
import { measureConcurrency } from './measures/concurrency.js';
import { measureCutoff } from './measures/cutoff.js';
import { measureEcho } from './measures/echo.js';
import { measureFloor } from './measures/floor.js';
import { measureHeld } from './measures/held.js';
import { measureRest } from './measures/rest.js';
import { measureThroughput } from './measures/throughput.js';

const MEASURES: Record<string, (ctx: Ctx) => Promise<Row[]>> = {
  approval: measureApproval,
  echo: measureEcho,
  throughput: measureThroughput,
  // After throughput: its rows quote the bastion's and nginx's CPU per GiB from it.
  floor: measureFloor,
  rest: measureRest,
  cutoff: measureCutoff,
  concurrency: measureConcurrency,
  // Last: it takes the bastion to this machine's fd limit.
  held: measureHeld,
};

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    out: { type: 'string' },
    rounds: { type: 'string' },
    only: { type: 'string' },
    'ramp-cap': { type: 'string' },
    sessions: { type: 'string' },
    hold: { type: 'string' },
    mib: { type: 'string' },
    profile: { type: 'string' },
    'no-nginx': { type: 'boolean', default: false },
    'bastion-from': { type: 'string', default: 'src' },
    keep: { type: 'boolean', default: false },
  },
});

function sizesFromFlags(): Sizes {
  const s: Sizes = { ...(values.smoke ? SMOKE : FULL) };
  if (values.rounds) s.rounds = s.execRounds = Number(values.rounds);
  if (values.mib) s.execBytes = Number(values.mib) * 2 ** 20;
  if (values.sessions) s.sessions = Number(values.sessions);
  if (values.hold) s.holdSessions = Number(values.hold);
  if (values['ramp-cap']) {
    const cap = Number(values['ramp-cap']);
    s.rampLevels = s.rampLevels.filter((l) => l <= cap);
    if (cap > s.sessions && !s.rampLevels.includes(cap)) s.rampLevels.push(cap);
  }
  return s;
}

function versionOf(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? 'unknown';
}

const here = dirname(fileURLToPath(import.meta.url));
const outPath = resolve(values.out ?? join(here, 'results', 'latest.json'));
const sizes = sizesFromFlags();
const bastionFrom = values['bastion-from'];
if (bastionFrom !== 'src' && bastionFrom !== 'dist') throw new Error(`--bastion-from src or dist, not ${bastionFrom}`);
const only = values.only ? values.only.split(',') : Object.keys(MEASURES);
for (const m of only) if (!MEASURES[m]) throw new Error(`unknown measure ${m}; one of ${Object.keys(MEASURES).join(', ')}`);
const progress = (msg: string): void => void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

const nginxPath = values['no-nginx'] ? undefined : nginxBinary();
const nginxVersion = nginxPath ? versionOf(nginxPath, ['-v']) : 'absent';
const mach = machine(nginxVersion, `${versionOf(kubectlPath(27), ['version', '--client'])}; ${versionOf(kubectlPath(33), ['version', '--client'])}`);
const dir = mkdtempSync(join(tmpdir(), 'kb-bench-'));
function writeJson(extra: Record<string, unknown> = {}): void {
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, `${JSON.stringify({ machine: mach, mode: values.smoke ? 'smoke' : 'full', sizes, nginx: nginxPath ? nginxVersion : 'absent, skipped', bastionFrom, ...extra, rows, raw }, null, 2)}\n`);
}
// Interrupted: stop the servers (nginx is not our child's child and would outlive us).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const s of servers) s.child.kill('SIGKILL');
    process.exit(130);
  });
}
const servers: Array<Server<unknown>> = [];
const rows: Row[] = [];
const raw: Record<string, unknown> = {};
let profileText: string | undefined;
try {
  progress(`starting the sim, the bastion, the node pipe and proxy${nginxPath ? ' and nginx' : ''} (${values.smoke ? 'smoke' : 'full'} mode) in ${dir}`);
  const sim = await startSim(dir, sizes.restPods);
  servers.push(sim);
  const profileDir = values.profile ? resolve(values.profile) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const bastionProc = await startBastionProcess(dir, sim.info.kubeconfig, profileDir, bastionFrom);
  servers.push(bastionProc);
  const direct: Endpoint = { label: 'direct', ...sim.info, pids: () => [] };
  const bastion: BastionEndpoint = { label: 'bastion', ...bastionProc.info, pids: () => [bastionProc.child.pid!] };
  let nginx: Endpoint | undefined;
  if (nginxPath) {
    const n = await startNginx(nginxPath, dir, sim.info);
    servers.push(n);
    nginx = n.info;
  } else {
    progress('nginx: absent, skipped (install nginx for the nginx column)');
  }
  const pipeProc = await startNodePipe(dir, sim.info);
  servers.push(pipeProc);
  const pipe = pipeProc.info;
  const proxyProc = await startNodeProxy(dir, sim.info);
  servers.push(proxyProc);
  const proxy = proxyProc.info;
  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${bastion.controlUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${bastion.approverToken}`, 'Content-Type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return (await res.json()) as T;
  };
  const ctx: Ctx = { sizes, smoke: values.smoke!, direct, nginx, bastion, bastionPid: bastionProc.child.pid!, simPid: sim.child.pid!, targets: [direct, ...(nginx ? [nginx] : []), bastion], pipe, execTargets: [direct, ...(nginx ? [nginx] : []), pipe, bastion], proxy, restTargets: [direct, ...(nginx ? [nginx] : []), pipe, proxy, bastion], api, progress, dir, raw };
  // The sessions every measure but cutoff and approval runs under.
  await approve(ctx, 'web-0', 'app', 3600);
  await approve(ctx, 'shell-0', 'main', 3600);
  for (const m of Object.keys(MEASURES)) {
    if (!only.includes(m)) continue;
    progress(`measure: ${m}`);
    rows.push(...(await MEASURES[m]!(ctx)));
    // What is measured so far survives a later failure.
    writeJson({ partial: true });
    progress(`\n${renderTable(rows)}`);
  }
  if (profileDir) {
    await bastionProc.stop();
    // One profile per thread (tsx's loader has its own): the main thread is the busiest.
    const summaries = readdirSync(profileDir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => ({ file: join(profileDir, f), ...summariseProfile(join(profileDir, f)) }))
      .sort((a, b) => b.busyMs - a.busyMs);
    if (summaries[0]) {
      raw.profile = summaries[0];
      profileText = `${summaries[0].file}\n${renderProfile(summaries[0])}`;
    }
  }
} finally {
  for (const s of servers.reverse()) await s.stop().catch(() => undefined);
  // --keep leaves the logs, the database and the recordings for a look afterwards.
  if (values.keep) progress(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

mach.loadAvgEnd = loadavg().map((x) => Math.round(x * 100) / 100);
const header = [
  `kube-bastion bench, ${values.smoke ? 'SMOKE mode (tiny sizes: numbers mean nothing)' : 'full'}; ${mach.date}`,
  `machine: ${mach.cores} cores (${mach.cpuModel}), ${mach.memGiB} GiB, load average ${mach.loadAvgStart.join(' ')} at start, ${mach.loadAvgEnd.join(' ')} at end; node ${mach.node}`,
  `rounds: ${sizes.rounds}, exec throughput ${sizes.execRounds} (median (min..max) over rounds unless the row says otherwise); nginx: ${nginxPath ? nginxVersion : 'absent, skipped'}; bastion from ${bastionFrom === 'dist' ? 'dist (npm run build)' : 'src (tsx)'}`,
];
process.stdout.write(`${header.join('\n')}\n\n${renderTable(rows)}\n`);
for (const r of rows.filter((x) => x.note)) process.stdout.write(`note (${r.id}): ${r.note}\n`);
if (profileText) process.stdout.write(`\nbastion CPU profile (--profile):\n${profileText}\n`);
writeJson();
process.stdout.write(`\nJSON: ${outPath}\n`);
// Keep-alive sockets and timers of the clients must not hold the process.
process.exit(0);
