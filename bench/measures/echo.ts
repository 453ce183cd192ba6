// Keystroke echo: a TTY session running `cat` in raw mode on each endpoint (the node pipe too, a
// comparator with no target); one byte out, wait for it back, in blocks that alternate between the
// endpoints.
import { EchoProbe } from '../lib/clients.js';
import { rotated, type Ctx } from '../lib/context.js';
import type { Endpoint } from '../lib/procs.js';
import { fmt, quantile, verdict, type Row, type Spread } from '../lib/report.js';

const BLOCK = 100;

/** Overall quantile as the median; min/max of the same quantile per block as the spread. */
function quantileSpread(blocks: number[][], q: number): Spread {
  const per = blocks.map((b) => quantile(b, q));
  return { median: quantile(blocks.flat(), q), min: Math.min(...per), max: Math.max(...per), n: blocks.flat().length };
}

export async function collectEcho(probe: EchoProbe, samples: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < samples; i++) out.push(await probe.sample());
  return out;
}

export async function measureEcho(ctx: Ctx): Promise<Row[]> {
  const probes = new Map<Endpoint, EchoProbe>();
  for (const ep of ctx.execTargets) probes.set(ep, await EchoProbe.open(ep));
  // Warm-up: the first keystrokes pay for JIT and buffers.
  for (const p of probes.values()) await collectEcho(p, 20);
  const blocks = new Map<string, number[][]>();
  const blockSize = Math.min(BLOCK, ctx.sizes.echoSamples);
  const nBlocks = Math.ceil(ctx.sizes.echoSamples / blockSize);
  for (let b = 0; b < nBlocks; b++) {
    ctx.progress(`echo block ${b + 1}/${nBlocks}`);
    for (const ep of rotated(ctx.execTargets, b)) {
      const list = blocks.get(ep.label) ?? [];
      list.push(await collectEcho(probes.get(ep)!, blockSize));
      blocks.set(ep.label, list);
    }
  }
  for (const p of probes.values()) p.close();
  ctx.raw.echo = Object.fromEntries([...blocks].map(([k, v]) => [k, { samples: v.flat().length, p50: quantile(v.flat(), 0.5), p90: quantile(v.flat(), 0.9), p99: quantile(v.flat(), 0.99), max: Math.max(...v.flat()) }]));

  const rows: Row[] = [];
  for (const [q, name, limit] of [
    [0.5, 'p50', 0.5],
    [0.99, 'p99', 3],
  ] as const) {
    const s = (label: string): Spread | undefined => (blocks.has(label) ? quantileSpread(blocks.get(label)!, q) : undefined);
    const direct = s('direct')!;
    const bastion = s('bastion')!;
    const nginx = s('nginx');
    const pipe = s('pipe');
    const added = bastion.median - direct.median;
    const plus = (x: number): string => `${x >= 0 ? '+' : ''}${fmt(x, 2)}`;
    const besides = [nginx ? `nginx ${plus(nginx.median - direct.median)}` : undefined, pipe ? `pipe ${plus(pipe.median - direct.median)}` : undefined].filter((x) => x !== undefined);
    rows.push({
      id: `echo.${name}`,
      measure: `keystroke echo ${name}, TTY raw cat, ${blocks.get('direct')!.flat().length} samples each`,
      unit: 'ms',
      direct,
      nginx,
      pipe,
      bastion,
      derived: `added ${plus(added)} ms${besides.length ? ` (${besides.join(', ')})` : ''}`,
      target: `added <= ${limit} ms`,
      verdict: verdict(added <= limit),
    });
  }
  return rows;
}
