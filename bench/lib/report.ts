// Statistics, rows with their targets, the printed table and the JSON document.
import { cpus, loadavg, totalmem } from 'node:os';

export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i]!;
}

/** The middle value; the mean of the two middle ones for an even count (two rounds: their mean). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A value with its spread over rounds (or samples). */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(xs: number[]): Spread {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

export type Verdict = 'pass' | 'FAIL' | 'n/a';

export interface Row {
  /** Stable id (the smoke test checks every one is present). */
  id: string;
  measure: string;
  unit: string;
  direct?: Spread | undefined;
  nginx?: Spread | undefined;
  /** The node pipe (a bare Node TLS relay in front of the sim), where a measure runs it. */
  pipe?: Spread | undefined;
  /** The node proxy (a bare Node HTTP reverse proxy in front of the sim), where a measure runs it. */
  proxy?: Spread | undefined;
  bastion?: Spread | undefined;
  /** What the target compares, e.g. "bastion/direct 0.15 (0.14-0.16)". */
  derived?: string;
  target: string;
  verdict: Verdict;
  note?: string;
}

export function fmt(n: number | undefined, digits?: number): string {
  if (n === undefined || Number.isNaN(n)) return '-';
  const d = digits ?? (Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2);
  return n.toFixed(d);
}

export function fmtSpread(s: Spread | undefined): string {
  if (!s) return '-';
  if (s.n <= 1 || s.min === s.max) return fmt(s.median);
  return `${fmt(s.median)} (${fmt(s.min)}..${fmt(s.max)})`;
}

/** Ratio of medians, with the spread of the per-round ratios. */
export function ratio(num: number[], den: number[]): Spread {
  const per = num.map((n, i) => n / den[i]!);
  return { ...spread(per), median: median(num) / median(den) };
}

export function verdict(ok: boolean | undefined): Verdict {
  return ok === undefined ? 'n/a' : ok ? 'pass' : 'FAIL';
}

export interface Machine {
  date: string;
  cores: number;
  cpuModel: string;
  memGiB: number;
  loadAvgStart: number[];
  loadAvgEnd?: number[];
  node: string;
  kubectl: string;
  nginx: string;
}

export function machine(nginx: string, kubectl: string): Machine {
  return {
    date: new Date().toISOString(),
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
    loadAvgStart: loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    kubectl,
    nginx,
  };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export function renderTable(rows: Row[]): string {
  const header = ['measure', 'unit', 'direct', 'nginx', 'node pipe', 'node proxy', 'bastion', 'derived', 'target', 'verdict'];
  const cells = rows.map((r) => [r.measure, r.unit, fmtSpread(r.direct), fmtSpread(r.nginx), fmtSpread(r.pipe), fmtSpread(r.proxy), fmtSpread(r.bastion), r.derived ?? '', r.target, r.verdict]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]): string => `| ${c.map((x, i) => pad(x, widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}
