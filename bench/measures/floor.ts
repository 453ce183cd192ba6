// The floor: what relaying bytes costs in Node at the least for this design (TLS terminated on
// both legs, one event loop), measured in the same run as the bastion, so its CPU per GiB target
// can be read against it. A bare TLS relay (servers.ts tls-relay: each connection piped to a TLS
// connection to a TLS echo in another process), without and with one SHA-256 per direction over
// every relayed byte (the least a recorder must do). Per transfer: the relay process's CPU
// (utime + stime) per GiB relayed, counting both directions, and MiB/s.
import { createHash, randomBytes } from 'node:crypto';
import tls from 'node:tls';
import { rotated, type Ctx } from '../lib/context.js';
import { cpuTimes, startFloorServers, type FloorVariant } from '../lib/procs.js';
import { fmt, fmtSpread, spread, type Row } from '../lib/report.js';
import type { TransferResult } from '../lib/clients.js';

const GIB = 2 ** 30;
const CHUNK = 256 * 1024;
const VARIANTS: Array<{ variant: FloorVariant; label: string }> = [
  { variant: 'plain', label: 'Node TLS relay floor: bare pipe, TLS both legs (no framing, no recording)' },
  { variant: 'hash', label: 'Node TLS relay floor: bare pipe + one SHA-256 per byte' },
];

/**
 * Writes `input` through the relay in 256 KiB chunks with backpressure while reading the echo back;
 * done when every byte came back and the connection closed (its teardown counts too). ms is from
 * the first byte written to the last byte back.
 */
async function transfer(port: number, ca: string, input: Buffer): Promise<TransferResult> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const hash = createHash('sha256');
  let outBytes = 0;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const back = new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      hash.update(d);
      outBytes += d.length;
      if (outBytes >= input.length) resolve();
    });
    socket.once('error', reject);
    void closed.then(() => reject(new Error(`floor relay closed after ${outBytes} of ${input.length} bytes`)));
  });
  back.catch(() => undefined); // awaited below; a failure while writing ends the wait for 'drain'
  const t0 = performance.now();
  for (let off = 0; off < input.length; off += CHUNK) {
    if (!socket.write(input.subarray(off, off + CHUNK))) await Promise.race([new Promise((r) => socket.once('drain', r)), back]);
  }
  await back;
  const ms = performance.now() - t0;
  socket.end();
  // The relay closes both legs once the echo has ended too; a stuck close must not hang the bench.
  const timer = setTimeout(() => socket.destroy(), 10_000);
  await closed;
  clearTimeout(timer);
  return { ms, outBytes, sha256: hash.digest('hex') };
}

/** The throughput measure's CPU per GiB, when it ran before in this run. */
function throughputCpu(ctx: Ctx): { nginx: number[]; pipe: number[]; bastion: number[] } | undefined {
  const t = ctx.raw.throughput as { cpuPerGib?: { nginx?: number[]; pipe?: number[]; bastion?: number[] } } | undefined;
  return t?.cpuPerGib ? { nginx: t.cpuPerGib.nginx ?? [], pipe: t.cpuPerGib.pipe ?? [], bastion: t.cpuPerGib.bastion ?? [] } : undefined;
}

export async function measureFloor(ctx: Ctx): Promise<Row[]> {
  const size = ctx.sizes.execBytes;
  const input = randomBytes(size);
  const want = createHash('sha256').update(input).digest('hex');
  const servers = await startFloorServers(ctx.dir);
  const per: Record<FloorVariant, { cpuPerGib: number[]; mibps: number[]; user: number[]; sys: number[] }> = {
    plain: { cpuPerGib: [], mibps: [], user: [], sys: [] },
    hash: { cpuPerGib: [], mibps: [], user: [], sys: [] },
  };
  try {
    for (let round = 0; round < ctx.sizes.rounds; round++) {
      for (const { variant } of rotated(VARIANTS, round)) {
        ctx.progress(`floor round ${round + 1}/${ctx.sizes.rounds}: ${variant}`);
        const relay = servers.relays[variant];
        const pid = relay.child.pid!;
        const cpu0 = cpuTimes(pid);
        const r = await transfer(relay.info.port, servers.caPem, input);
        const cpu1 = cpuTimes(pid);
        if (r.sha256 !== want || r.outBytes !== size) throw new Error(`floor ${variant}: echo differs from input (${r.outBytes} bytes)`);
        // Relayed = both directions (to the echo and back).
        const gib = (2 * size) / GIB;
        const p = per[variant];
        p.user.push((cpu1.user - cpu0.user) / gib);
        p.sys.push((cpu1.sys - cpu0.sys) / gib);
        p.cpuPerGib.push((cpu1.user + cpu1.sys - cpu0.user - cpu0.sys) / gib);
        p.mibps.push(size / 2 ** 20 / (r.ms / 1000));
      }
    }
  } finally {
    await Promise.all([servers.relays.plain.stop(), servers.relays.hash.stop(), servers.echo.stop()]);
  }
  ctx.raw.floor = { bytesEachWay: size, chunkBytes: CHUNK, ...per };

  const measured = throughputCpu(ctx);
  // Beside the floor: the target, and what the throughput measure (when it ran) measured.
  const quoted = [
    measured?.bastion.length ? `bastion ${fmt(spread(measured.bastion).median)}` : undefined,
    measured?.nginx.length ? `nginx ${fmt(spread(measured.nginx).median)}` : undefined,
    measured?.pipe.length ? `node pipe ${fmt(spread(measured.pipe).median)}` : undefined,
  ].filter((x) => x !== undefined);
  const beside = `bastion target 4${quoted.length ? `; exec throughput: ${quoted.join(', ')}` : ''}`;
  return VARIANTS.map(({ variant, label }) => {
    const p = per[variant];
    return {
      id: `floor.${variant}`,
      measure: label,
      unit: 'CPU-s/GiB',
      // The column of the process that stands where the bastion would.
      bastion: spread(p.cpuPerGib),
      derived: `MiB/s ${fmtSpread(spread(p.mibps))}; user ${fmt(spread(p.user).median)} + sys ${fmt(spread(p.sys).median)}; ${beside}`,
      target: '(reference)',
      verdict: 'n/a',
    };
  });
}
