// Summarises a V8 .cpuprofile (node --cpu-prof): self time per frame, and inclusive time per
// source folder (src/recording, src/transport, ...) as a share of the busy (non-idle) time.
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function where(url: string): string {
  const m = /\/(src\/[^?]+)/.exec(url);
  if (m) return m[1]!;
  if (url.includes('node_modules/')) return url.replace(/.*node_modules\//, '').split('/').slice(0, 1).join('/');
  if (url.startsWith('node:')) return url;
  return url === '' ? '' : url.split('/').slice(-1)[0]!;
}

function folder(url: string): string | undefined {
  const m = /\/(src\/[^/]+)\//.exec(url);
  if (m) return m[1];
  const n = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (n) return n[1];
  return undefined;
}

export interface ProfileSummary {
  busyMs: number;
  idleMs: number;
  topSelf: Array<{ frame: string; ms: number; share: number }>;
  folders: Array<{ folder: string; ms: number; share: number }>;
}

/** A stretch of time in the profile's clock (monotonic µs, as process.hrtime on Linux). */
export interface ProfileWindow {
  startUs: number;
  endUs: number;
}

/** `windows`: count only samples taken inside one of them (e.g. the REST GET windows of a run). */
export function summariseProfile(path: string, top = 20, windows?: ProfileWindow[]): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const inside = (t: number): boolean => windows === undefined || windows.some((w) => t >= w.startUs && t < w.endUs);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Time per sample: its own delta (the next sample's timeDelta), as DevTools does.
  const selfMs = new Map<number, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (!inside(t)) continue;
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    selfMs.set(p.samples[i]!, (selfMs.get(p.samples[i]!) ?? 0) + dt);
  }
  let idle = 0;
  let busy = 0;
  const frames = new Map<string, number>();
  const folders = new Map<string, number>();
  for (const [id, ms] of selfMs) {
    const n = byId.get(id)!;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += ms;
      continue;
    }
    busy += ms;
    const frame = n.callFrame.url ? `${name} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : name;
    frames.set(frame, (frames.get(frame) ?? 0) + ms);
    // Inclusive per folder: every folder on this sample's stack gets its time once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = folder(byId.get(cur)!.callFrame.url);
      if (f) seen.add(f);
    }
    if (seen.size === 0) seen.add(name.startsWith('(') ? name : '(node internals)');
    for (const f of seen) folders.set(f, (folders.get(f) ?? 0) + ms);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return {
    busyMs: busy,
    idleMs: idle,
    topSelf: sorted(frames).slice(0, top).map(([frame, ms]) => ({ frame, ms, share: ms / busy })),
    folders: sorted(folders).slice(0, top).map(([f, ms]) => ({ folder: f, ms, share: ms / busy })),
  };
}

export function renderProfile(s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(6);
  return [
    `busy ${(s.busyMs / 1000).toFixed(1)} s, idle ${(s.idleMs / 1000).toFixed(1)} s`,
    'top frames by self time (share of busy):',
    ...s.topSelf.map((f) => `  ${pct(f.share)}  ${f.frame}`),
    'inclusive by folder / package (a sample counts once per folder on its stack):',
    ...s.folders.map((f) => `  ${pct(f.share)}  ${f.folder}`),
  ].join('\n');
}
