// Sessions held: N idle exec sessions (`cat`, WebSocket v5, stdin and stdout only, no stderr, so
// the sim holds three fds for each: the socket and two pipes) opened through the bastion, then
// each one checked alive by a line echoed through it. Reports how many were held, how many failed
// to open or ended (with their reasons), the open rate, and what the bastion, the sim and this
// driver hold per session: the "5,000 sessions held" (no latency target; the ramp in
// concurrency.ts is the one with p99 echo < 50 ms).
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import type { UpstreamSession } from '../../src/upstream/executor.js';
import { openExec } from '../lib/clients.js';
import type { Ctx } from '../lib/context.js';
import { childPids, childrenNamed, openFds, rssBytes } from '../lib/procs.js';
import { fmt, quantile, type Row } from '../lib/report.js';

const DIAL_PARALLEL = 16;
const CHECK_PARALLEL = 64;
const CHECK_TIMEOUT_MS = 15_000;
export const HELD_TARGET = 5000;

interface Held {
  session: UpstreamSession;
  out: string;
  ended?: string;
}

/** The soft "Max open files" of a process (what it can hold), or undefined if unreadable. */
function fdLimit(pid: number | 'self'): number | undefined {
  try {
    const m = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** A process's fds by kind (socket, pipe, anon_inode, /dev/null, other files): where the per-session fds go. */
function fdKinds(pid: number): Record<string, number> {
  const kinds: Record<string, number> = {};
  let names: string[] = [];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return kinds;
  }
  for (const fd of names) {
    let kind = 'gone';
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      kind = /^(socket|pipe|anon_inode):/.exec(target)?.[1] ?? (target === '/dev/null' ? '/dev/null' : 'file');
    } catch {
      // closed meanwhile
    }
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}

/** What fds 0, 1 and 2 of one `cat` under the sim are (the sim's change: 2 is /dev/null without stderr). */
function catStdio(simPid: number): string[] | undefined {
  for (const pid of childrenNamed(simPid, 'cat').reverse()) {
    try {
      return [0, 1, 2].map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/:\[\d+\]$/, ''));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return undefined;
}

/** Counts by reason, most frequent first: "12 × EMFILE ...; 3 × setup timeout". */
function tally(reasons: string[]): string {
  const counts = new Map<string, number>();
  for (const r of reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([r, n]) => `${n} × ${r}`).join('; ');
}

/** A reason without the parts that differ per session (ids, paths, ports), so equal causes count together. */
function reasonOf(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return (
    msg
      // The driver dials with the bastion's own executor, whose words name the bastion's upstream.
      .replace(/^kube-bastion could not reach the upstream API server: /, 'dialing the bastion failed: ')
      .replace(/\b(apr|ses)_[a-z0-9]+/g, '$1_…')
      .replace(/ '\/[^']*'/g, '')
      .replace(/:\d{2,5}\b/g, ':<port>')
      .slice(0, 300)
  );
}

/** Writes a line and waits for cat to send it back; resolves with the round trip in ms, or a reason. */
function echoCheck(h: Held, line: string): Promise<number | string> {
  return new Promise((resolve) => {
    if (h.ended !== undefined) return resolve(`ended before the check: ${h.ended}`);
    const t0 = performance.now();
    const onData = (): void => {
      if (!h.out.includes(line)) return;
      done(performance.now() - t0);
    };
    const timer = setTimeout(() => done(`no echo in ${CHECK_TIMEOUT_MS / 1000} s`), CHECK_TIMEOUT_MS);
    const done = (r: number | string): void => {
      clearTimeout(timer);
      h.session.stdout.off('data', onData);
      resolve(r);
    };
    h.session.stdout.on('data', onData);
    h.session.stdin!.write(line);
  });
}

async function inParallel<T>(items: T[], parallel: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

/**
 * Waits (at most 60 s) until the bastion's and the sim's fd counts hold still for a second: an
 * earlier measure's sessions may still be ending, and the counts before are the per-session base.
 */
async function settle(pids: number[]): Promise<number> {
  const t0 = performance.now();
  let last = pids.map(openFds).join();
  for (let i = 0; i < 60; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = pids.map(openFds).join();
    if (now === last) break;
    last = now;
  }
  return (performance.now() - t0) / 1000;
}

/** What the bastion, the sim and this driver hold at one moment. */
function snapshot(pids: { bastion: number; sim: number }) {
  return {
    bastionRss: rssBytes(pids.bastion),
    bastionFds: openFds(pids.bastion),
    simFds: openFds(pids.sim),
    driverFds: openFds(process.pid),
    simChildren: childPids(pids.sim).length,
  };
}
type Snapshot = ReturnType<typeof snapshot>;

interface Opened {
  held: Held[];
  failures: string[];
  attempts: number;
  seconds: number;
  stoppedEarly: boolean;
}

/** Opens up to `want` idle sessions, DIAL_PARALLEL in flight; stops after `maxFailures` failures. */
async function openSessions(ctx: Ctx, want: number, maxFailures: number): Promise<Opened> {
  const held: Held[] = [];
  const failures: string[] = [];
  let attempts = 0;
  let lastReport = 0;
  const t0 = performance.now();
  await inParallel(Array.from({ length: want }), DIAL_PARALLEL, async () => {
    if (failures.length >= maxFailures) return;
    attempts++;
    try {
      const session = await openExec(ctx.bastion, 'websocket', { namespace: 'demo', pod: 'web-0', container: 'app', command: ['cat'], stderr: false });
      const h: Held = { session, out: '' };
      session.stdout.on('data', (d: Buffer) => (h.out += d.toString()));
      session.stderr.resume();
      void session.status.then((st) => (h.ended = `${st.reason ?? st.status}: ${reasonOf(st.message ?? '')}`));
      held.push(h);
    } catch (err) {
      failures.push(reasonOf(err));
    }
    if (held.length - lastReport >= 500) {
      lastReport = held.length;
      const s = (performance.now() - t0) / 1000;
      ctx.progress(`held: ${held.length} open in ${fmt(s, 0)} s (${fmt(held.length / s)} per second), ${failures.length} failed; bastion ${openFds(ctx.bastionPid)} fds, sim ${openFds(ctx.simPid)} fds`);
    }
  });
  return { held, failures, attempts, seconds: (performance.now() - t0) / 1000, stoppedEarly: failures.length >= maxFailures };
}

/** Every session echoes a line of its own, CHECK_PARALLEL at a time: round trips, and why the others did not. */
async function checkAlive(held: Held[]): Promise<{ echoMs: number[]; dead: string[]; seconds: number }> {
  const echoMs: number[] = [];
  const dead: string[] = [];
  const t0 = performance.now();
  await inParallel(held, CHECK_PARALLEL, async (h, i) => {
    const r = await echoCheck(h, `alive ${i}\n`);
    if (typeof r === 'number') echoMs.push(r);
    else dead.push(r);
  });
  return { echoMs, dead, seconds: (performance.now() - t0) / 1000 };
}

export async function measureHeld(ctx: Ctx): Promise<Row[]> {
  const want = ctx.sizes.holdSessions;
  const pids = { bastion: ctx.bastionPid, sim: ctx.simPid };
  const settleSeconds = await settle([pids.bastion, pids.sim]);
  const kindsBefore = { bastion: fdKinds(pids.bastion), sim: fdKinds(pids.sim) };
  const before = snapshot(pids);
  // Past the bastion's (or the sim's) limit every further dial fails the same way; the reasons are
  // what the row reports, so opening stops after a few.
  const opened = await openSessions(ctx, want, Math.max(10, Math.ceil(want / 50)));
  const { held, failures } = opened;
  // Measured with every session open, before the check writes anything.
  await new Promise((r) => setTimeout(r, 2000));
  const at = snapshot(pids);
  const kinds = { bastion: fdKinds(pids.bastion), sim: fdKinds(pids.sim), catStdio: catStdio(pids.sim) };
  const open = held.filter((h) => h.ended === undefined).length;
  ctx.progress(`held: ${held.length} opened in ${fmt(opened.seconds, 0)} s, ${failures.length} failed, ${held.length - open} ended; checking each with an echo`);
  const check = await checkAlive(held);
  for (const h of held) h.session.destroy();
  // The bastion ends them all before the next measure (its fd count back near where it was).
  for (let i = 0; i < 60 && openFds(pids.bastion) > before.bastionFds + 50; i++) await new Promise((r) => setTimeout(r, 500));

  const limits = { bastion: fdLimit(pids.bastion), sim: fdLimit(pids.sim), driver: fdLimit('self'), pidMax: Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim()) };
  const perSession = (key: keyof Snapshot): number => (at[key] - before[key]) / Math.max(1, open);
  ctx.raw.held = {
    target: HELD_TARGET,
    requested: want,
    settleSeconds,
    attempts: opened.attempts,
    opened: held.length,
    failed: failures.length,
    failures: tally(failures),
    stoppedEarly: opened.stoppedEarly,
    endedBeforeCheck: held.length - open,
    alive: check.echoMs.length,
    dead: tally(check.dead),
    openSeconds: opened.seconds,
    openPerS: held.length / opened.seconds,
    checkSeconds: check.seconds,
    echoP50Ms: quantile(check.echoMs, 0.5),
    echoP99Ms: quantile(check.echoMs, 0.99),
    echoMaxMs: check.echoMs.length ? Math.max(...check.echoMs) : 0,
    before,
    at,
    fdKindsBefore: kindsBefore,
    fdKinds: kinds,
    bastionKibPerSession: perSession('bastionRss') / 1024,
    bastionFdsPerSession: perSession('bastionFds'),
    simFdsPerSession: perSession('simFds'),
    driverFdsPerSession: perSession('driverFds'),
    limits,
  };

  // What stopped it: the fd limit a process reached, and the failures' own words.
  const near = (who: string, fds: number, limit: number | undefined): string => (limit !== undefined && fds >= limit * 0.98 ? `${who} at ${fds} of its ${limit} fds` : '');
  const hit = [near('bastion', at.bastionFds, limits.bastion), near('sim', at.simFds, limits.sim), near('driver', at.driverFds, limits.driver)].filter(Boolean);
  const problems = [
    failures.length ? `failed to open: ${tally(failures)}${opened.stoppedEarly ? ' (stopped opening)' : ''}` : '',
    check.dead.length ? `not alive: ${tally(check.dead)}` : '',
  ].filter(Boolean);
  const alive = check.echoMs.length;
  const one = (n: number) => ({ median: n, min: n, max: n, n: 1 });
  return [
    {
      id: 'held.sessions',
      measure: `${want} idle sessions held (stdin+stdout, no stderr), each checked by an echo`,
      unit: 'sessions',
      bastion: one(alive),
      derived:
        `${held.length} opened in ${fmt(opened.seconds, 0)} s (${fmt(held.length / opened.seconds)} per second, ${DIAL_PARALLEL} in flight), ${failures.length} failed, ${held.length - open} ended, ${alive} echoed (p99 ${fmt(quantile(check.echoMs, 0.99))} ms); ` +
        `bastion ${fmt(at.bastionRss / 2 ** 20, 0)} MiB RSS, ${fmt(perSession('bastionRss') / 1024, 0)} KiB and ${fmt(perSession('bastionFds'), 2)} fds per session (${at.bastionFds} of ${limits.bastion ?? '?'}); ` +
        `sim ${fmt(perSession('simFds'), 2)} fds per session (${at.simFds} of ${limits.sim ?? '?'}), ${at.simChildren - before.simChildren} cat processes; driver ${at.driverFds} fds`,
      target: '>= 5,000',
      // A run asked for fewer than the target cannot show it met (smoke, --hold N).
      verdict: alive >= HELD_TARGET ? 'pass' : want < HELD_TARGET && problems.length === 0 ? 'n/a' : 'FAIL',
      note: [...hit, ...problems].join('; ') || (want < HELD_TARGET ? `asked for ${want} (--hold)` : undefined),
    },
  ];
}
