// `npm run bench -- --smoke` keeps the benchmark suite from rotting: it runs every measure with tiny
// sizes against a real sim, bastion (and nginx when installed) and real kubectl, prints a table with
// every row and writes JSON. No timing is asserted: this machine's numbers mean nothing in smoke mode.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROWS = [
  'approval.firstbyte',
  'echo.p50',
  'echo.p99',
  'exec.kubectl.spdy',
  'exec.kubectl.websocket',
  'exec.client.spdy',
  'exec.client.websocket',
  'recording.cpu',
  'recording.disk',
  'floor.plain',
  'floor.hash',
  ...['get', 'list'].flatMap((op) => ['c1', 'c64'].flatMap((c) => ['rps', 'cpu', 'p50', 'p99'].map((m) => `rest.${op}.${c}.${m}`))),
  'cutoff.lastbyte',
  'cutoff.close',
  'cutoff.revoke.lastbyte',
  'cutoff.revoke.close',
  'concurrency.rss',
  'concurrency.cpu',
  'concurrency.echo',
  'concurrency.held',
  'held.sessions',
];

interface BenchJson {
  machine: { cores: number; loadAvgStart: number[]; node: string; date: string };
  mode: string;
  nginx: string;
  rows: Array<{ id: string; measure: string; target: string; verdict: string; derived?: string; direct?: { median: number }; pipe?: { median: number }; proxy?: { median: number }; bastion?: { median: number } }>;
  raw: {
    floor?: Record<'plain' | 'hash', { cpuPerGib: number[]; mibps: number[] }>;
    throughput?: { mibps: Record<string, Record<string, number[]>>; cpuPerGib: Record<string, number[]> };
    cutoff?: { direct: { sessions: number; failed: number; cats: number; endedEarly: number; notClosedWithin5s: number } };
    held?: { requested: number; opened: number; failed: number; alive: number; fdKinds: { catStdio?: string[] }; limits: { bastion?: number } };
  };
}

describe('npm run bench -- --smoke', () => {
  it('prints a table with every row and writes JSON that parses', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'kb-bench-smoke-')), 'bench.json');
    const child = spawn('npm', ['run', 'bench', '--silent', '--', '--smoke', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, `bench failed:\n${stderr.slice(-3000)}`).toBe(0);

    const json = JSON.parse(readFileSync(out, 'utf8')) as BenchJson;
    expect(json.mode).toBe('smoke');
    expect(json.machine.cores).toBeGreaterThan(0);
    expect(json.machine.loadAvgStart).toHaveLength(3);
    expect(json.rows.map((r) => r.id).sort()).toEqual([...ROWS].sort());
    for (const row of json.rows) {
      // Each row is a line of the printed table, with its target and a verdict.
      const line = stdout.split('\n').find((l) => l.startsWith(`| ${row.measure} `));
      expect(line, `row ${row.id} missing from the table`).toBeDefined();
      expect(line).toContain(row.target);
      expect(['pass', 'FAIL', 'n/a']).toContain(row.verdict);
      expect(Number.isFinite(row.bastion?.median), `row ${row.id} has no bastion value`).toBe(true);
    }
    // The floor (a bare Node TLS relay, plain and hashing) is a reference: CPU per GiB in the
    // relay's column, its MiB/s and the bastion's target beside it, no verdict.
    for (const id of ['floor.plain', 'floor.hash'] as const) {
      const row = json.rows.find((r) => r.id === id)!;
      const line = stdout.split('\n').find((l) => l.startsWith(`| ${row.measure} `))!;
      expect(line).toMatch(/^\| [^|]+ \| CPU-s\/GiB +\| - +\| - +\| - +\| - +\| [\d.]+[^|]* \| MiB\/s [\d.]+.*bastion target 4.* \| \(reference\) +\| n\/a +\|$/);
      const raw = json.raw.floor![id === 'floor.plain' ? 'plain' : 'hash'];
      expect(raw.cpuPerGib.every(Number.isFinite) && raw.mibps.every((x) => x > 0)).toBe(true);
    }
    // The node pipe (a bare Node TLS relay in front of the sim) is measured in every exec row, the
    // CPU row and the echo rows: its column, and the ratios (or added ms) beside the bastion's.
    const header = stdout.split('\n').find((l) => l.startsWith('| measure '))!;
    expect(header).toMatch(/\| nginx +\| node pipe +\| node proxy +\| bastion +\|/);
    for (const id of ['exec.kubectl.spdy', 'exec.kubectl.websocket', 'exec.client.spdy', 'exec.client.websocket', 'recording.cpu']) {
      const row = json.rows.find((r) => r.id === id)!;
      expect(Number.isFinite(row.pipe?.median), `row ${id} has no node pipe value`).toBe(true);
      expect(row.derived).toMatch(id === 'recording.cpu' ? /bastion\/pipe [\d.]+/ : /\/pipe [\d.]+; pipe\/direct [\d.]+/);
    }
    for (const id of ['echo.p50', 'echo.p99']) {
      const row = json.rows.find((r) => r.id === id)!;
      expect(Number.isFinite(row.pipe?.median), `row ${id} has no node pipe value`).toBe(true);
      expect(row.derived).toMatch(/pipe [+-][\d.]+\)$/);
    }
    expect(json.raw.throughput!.mibps['kubectl.spdy']!.pipe).toHaveLength(1);
    // The REST rows also run the node pipe and the node proxy (a bare Node HTTP reverse proxy in
    // front of the sim): their columns, the bastion's ratio to the proxy and the proxy's to direct.
    for (const id of ['get', 'list'].flatMap((op) => ['c1', 'c64'].flatMap((c) => ['rps', 'cpu', 'p50'].map((m) => `rest.${op}.${c}.${m}`)))) {
      const row = json.rows.find((r) => r.id === id)!;
      expect(Number.isFinite(row.pipe?.median), `row ${id} has no node pipe value`).toBe(true);
      expect(Number.isFinite(row.proxy?.median), `row ${id} has no node proxy value`).toBe(true);
      if (id.endsWith('.rps')) expect(row.derived).toMatch(/^bastion\/direct [\d.]+; \/proxy [\d.]+; proxy\/direct [\d.]+; pipe\/direct [\d.]+$/);
    }
    expect(json.raw.throughput!.cpuPerGib.pipe).toHaveLength(4);
    // Sessions held: every one of the smoke's 20 idle sessions opened and echoed a line; a run
    // asked for fewer than 5,000 says n/a, never pass. The sessions ask for no stderr, so their
    // `cat` has /dev/null as fd 2 (the sim holds three fds per session, not four).
    const held = json.rows.find((r) => r.id === 'held.sessions')!;
    expect(held.verdict).toBe('n/a');
    expect(held.bastion?.median).toBe(20);
    expect(held.derived).toMatch(/^20 opened in .*, 0 failed, 0 ended, 20 echoed .*bastion .* fds per session .*sim [\d.]+ fds per session/);
    expect(json.raw.held).toMatchObject({ requested: 20, opened: 20, failed: 0, alive: 20, limits: { bastion: expect.any(Number) } });
    expect(json.raw.held!.fdKinds.catStdio?.[2]).toBe('/dev/null');
    // The cutoff's direct comparator: the same sessions straight to the sim, their `cat`s killed at
    // one instant; every one found and told its end (the sim's exit Status), in both close rows.
    for (const id of ['cutoff.close', 'cutoff.revoke.close']) {
      const row = json.rows.find((r) => r.id === id)!;
      expect(Number.isFinite(row.direct?.median), `row ${id} has no direct value`).toBe(true);
      expect(row.derived).toMatch(/direct: 10 sessions straight to the sim, their cats killed at one instant: Status p50 [\d.]+, p99 [\d.]+ ms/);
    }
    expect(json.raw.cutoff!.direct).toMatchObject({ sessions: 10, failed: 0, cats: 10, endedEarly: 0, notClosedWithin5s: 0 });
    expect(stdout).toMatch(/machine: \d+ cores .* load average/);
    expect(stdout).toContain(json.nginx === 'absent, skipped' ? 'nginx: absent, skipped' : 'nginx: nginx version');
  }, 300_000);
});
