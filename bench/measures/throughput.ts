// Exec throughput: `cat` of N bytes in and out, SPDY and WebSocket, real kubectl and the efficient
// client, direct vs nginx vs node pipe vs bastion in interleaved rounds; every output checked by
// SHA-256. The same runs give the recording's cost: bastion CPU-seconds and disk bytes per GiB
// relayed. The node pipe (a bare Node TLS relay in front of the sim) has no target of its own: it
// shows what a Node process terminating TLS on both legs reaches with these clients, so each row
// says pipe/direct and bastion/pipe.
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { catWithClient, catWithKubectl, type Transport, type TransferResult } from '../lib/clients.js';
import { rotated, type Ctx } from '../lib/context.js';
import { diskBytes, totalCpu } from '../lib/procs.js';
import { fmt, ratio, spread, verdict, type Row } from '../lib/report.js';

const GIB = 2 ** 30;
type Client = 'kubectl' | 'client';
const ALL_CASES: Array<{ transport: Transport; client: Client; label: string }> = [
  { transport: 'spdy', client: 'kubectl', label: 'kubectl 1.27 SPDY' },
  { transport: 'websocket', client: 'kubectl', label: 'kubectl 1.33 WebSocket' },
  { transport: 'spdy', client: 'client', label: 'Node client SPDY' },
  { transport: 'websocket', client: 'client', label: 'Node client WebSocket v5' },
];
const CASES = ALL_CASES.filter((c) => !process.env.BENCH_CASES || process.env.BENCH_CASES.split(',').includes(`${c.client}.${c.transport}`));

/** Waits until the recordings stop growing (the session's files are closed after the client sees its end). */
async function settledDisk(dir: string): Promise<number> {
  let last = diskBytes(dir);
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 150));
    const now = diskBytes(dir);
    if (now === last) return now;
    last = now;
  }
  return last;
}

function clearRecordings(dir: string): void {
  for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true, force: true });
}

export async function measureThroughput(ctx: Ctx): Promise<Row[]> {
  const size = ctx.sizes.execBytes;
  const input = randomBytes(size);
  const want = createHash('sha256').update(input).digest('hex');
  const mibps: Record<string, Record<string, number[]>> = {};
  const cpuPerGib: Record<string, number[]> = { nginx: [], pipe: [], bastion: [] };
  const diskPerByte: number[] = [];
  clearRecordings(ctx.bastion.recordings);

  for (let round = 0; round < ctx.sizes.execRounds; round++) {
    for (const c of CASES) {
      const key = `${c.client}.${c.transport}`;
      mibps[key] ??= {};
      for (const ep of rotated(ctx.execTargets, round)) {
        ctx.progress(`throughput round ${round + 1}/${ctx.sizes.execRounds}: ${c.label} ${ep.label}`);
        const cpu0 = totalCpu(ep.pids());
        const r: TransferResult = c.client === 'kubectl' ? await catWithKubectl(ep, c.transport, input) : await catWithClient(ep, c.transport, input);
        if (r.sha256 !== want || r.outBytes !== size) throw new Error(`${ep.label} ${c.label}: output differs from input (${r.outBytes} bytes)`);
        let disk = 0;
        if (ep.label === 'bastion') disk = await settledDisk(ctx.bastion.recordings);
        const cpu = totalCpu(ep.pids()) - cpu0;
        (mibps[key]![ep.label] ??= []).push(size / 2 ** 20 / (r.ms / 1000));
        // Relayed = both directions (stdin in, stdout out).
        if (ep.label !== 'direct') cpuPerGib[ep.label]!.push(cpu / ((2 * size) / GIB));
        if (ep.label === 'bastion') {
          diskPerByte.push(disk / (2 * size));
          clearRecordings(ctx.bastion.recordings);
        }
      }
    }
  }
  ctx.raw.throughput = { bytesEachWay: size, mibps, cpuPerGib, diskPerByte };

  const rows: Row[] = CASES.map((c) => {
    const m = mibps[`${c.client}.${c.transport}`]!;
    const vsDirect = ratio(m.bastion!, m.direct!);
    const vsNginx = m.nginx ? ratio(m.bastion!, m.nginx) : undefined;
    const vsPipe = ratio(m.bastion!, m.pipe!);
    const pipeVsDirect = ratio(m.pipe!, m.direct!);
    const ok = vsDirect.median >= 0.8 && (vsNginx === undefined || vsNginx.median >= 0.85);
    return {
      id: `exec.${c.client}.${c.transport}`,
      measure: `exec cat ${fmt(size / 2 ** 20, 0)} MiB each way, ${c.label}`,
      unit: 'MiB/s',
      direct: spread(m.direct!),
      nginx: m.nginx ? spread(m.nginx) : undefined,
      pipe: spread(m.pipe!),
      bastion: spread(m.bastion!),
      derived:
        `bastion/direct ${fmt(vsDirect.median)} (${fmt(vsDirect.min)}..${fmt(vsDirect.max)})${vsNginx ? `, /nginx ${fmt(vsNginx.median)}` : ''}, /pipe ${fmt(vsPipe.median)}; ` +
        `pipe/direct ${fmt(pipeVsDirect.median)} (${fmt(pipeVsDirect.min)}..${fmt(pipeVsDirect.max)})`,
      target: '>= 0.8 direct, >= 0.85 nginx',
      verdict: verdict(ok),
    };
  });
  const bastionCpu = spread(cpuPerGib.bastion!);
  rows.push({
    id: 'recording.cpu',
    measure: 'CPU-seconds per GiB relayed (in + out, all exec runs)',
    unit: 'CPU-s/GiB',
    nginx: cpuPerGib.nginx!.length ? spread(cpuPerGib.nginx!) : undefined,
    pipe: spread(cpuPerGib.pipe!),
    bastion: bastionCpu,
    derived: `bastion incl. recording; bastion/pipe ${fmt(bastionCpu.median / spread(cpuPerGib.pipe!).median)}`,
    target: '<= 4 (bastion)',
    verdict: verdict(bastionCpu.median <= 4),
  });
  const disk = spread(diskPerByte);
  rows.push({
    id: 'recording.disk',
    measure: 'recording on disk per byte relayed (cast + sidecar, random bytes)',
    unit: 'bytes/byte',
    bastion: disk,
    derived: `${fmt(disk.median * 1024, 0)} MiB per GiB relayed`,
    target: '<= 1.5',
    verdict: verdict(disk.median <= 1.5),
  });
  return rows;
}

