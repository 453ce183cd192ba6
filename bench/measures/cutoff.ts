// Cutoff precision: N sessions under one approval, so all expire at the same instant, each
// streaming a small chunk through `cat` every 20 ms. For each session, when its last byte arrived
// at the client and when the client saw the session close, relative to the approval's expiresAt.
// Arrival at the client is an upper bound of when the bastion relayed the byte. The clients run in
// a few processes of their own (cutoff-clients.ts), as kubectl clients would. Then the same with a
// revocation, and last the direct comparator: the same sessions straight to the sim, ended at one
// instant by killing their `cat`s (the sim then sends each its exit Status), which is what the
// machine and these client processes take to hear of an end when no bastion is in the way.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scanRawSidecarFile, RawChannel } from '../../src/recording/raw-sidecar.js';
import { SEND_EVERY_MS, type FromClients, type ToClients } from '../lib/cutoff-protocol.js';
import { approve, type Ctx } from '../lib/context.js';
import { childrenNamed, type Endpoint } from '../lib/procs.js';
import { fmt, quantile, verdict, type Row, type Spread } from '../lib/report.js';

/** The sessions are spread over this many client processes (at most one per session). */
const CLIENT_PROCESSES = 4;
/** Opens in flight at once, over all client processes. */
const OPENS_IN_FLIGHT = 16;
const CLIENTS_ENTRY = fileURLToPath(new URL('../cutoff-clients.ts', import.meta.url));

/** Over the sessions that saw a byte (a session cut before its first echo has none). */
function pctSpread(all: number[]): Spread & { p99: number } {
  const xs = all.filter((x) => !Number.isNaN(x));
  if (xs.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0, p99: NaN };
  return { median: quantile(xs, 0.5), min: Math.min(...xs), max: Math.max(...xs), n: xs.length, p99: quantile(xs, 0.99) };
}

/** What opening the sessions came to, over all client processes. */
interface Opened {
  open: number;
  /** Sessions that could not be opened (each tried at most 3 times). */
  failed: number;
  /** Failed tries that a retry made good. */
  retried: number;
  /** Opens still under way when the deadline came near (not failures: the machine was too slow to open them all). */
  late: number;
  /** The distinct reasons of failed tries, with their counts. */
  reasons: Record<string, number>;
}

type Outcome = Extract<FromClients, { kind: 'outcome' }>;
type Lag = Outcome['lag'];

/** The next message of `kind` from a client process (rejects if it exits first). */
function answer<K extends FromClients['kind']>(child: ChildProcess, kind: K): Promise<Extract<FromClients, { kind: K }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: FromClients): void => {
      if (m.kind !== kind) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(m as Extract<FromClients, { kind: K }>);
    };
    const onExit = (code: number | null): void => reject(new Error(`a cutoff client process exited (${code}) before it answered ${kind}`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/**
 * One phase's client processes, loaded before its approval is made (a process takes seconds to
 * load under tsx, which an approval's TTL must not pay for): `sessions` spread over them at `open`.
 */
async function clientProcesses(sessions: number) {
  const n = Math.max(1, Math.min(CLIENT_PROCESSES, sessions));
  // 'advanced' (structured clone): NaN (never) and Infinity (no limit) survive the trip, as JSON's would not.
  const children = Array.from({ length: n }, () => fork(CLIENTS_ENTRY, [], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' }));
  await Promise.all(children.map((c) => answer(c, 'ready')));
  const send = (c: ChildProcess, m: ToClients): void => void c.send(m);
  return {
    processes: n,
    /** Opens the sessions as `start` says (see cutoff-clients.ts); resolves once every process has. */
    async open(endpoint: Endpoint, openUntil: number, ttlMs: number, watchAt?: number): Promise<Opened> {
      const { url, caPem, token, label } = endpoint;
      const opened = await Promise.all(
        children.map((c, i) => {
          const got = answer(c, 'opened');
          send(c, { kind: 'start', target: { url, caPem, token, label }, sessions: Math.floor(sessions / n) + (i < sessions % n ? 1 : 0), inFlight: Math.max(1, Math.round(OPENS_IN_FLIGHT / n)), openUntil, ttlMs });
          if (watchAt !== undefined) send(c, { kind: 'watch', at: watchAt });
          return got;
        }),
      );
      const all: Opened = { open: 0, failed: 0, retried: 0, late: 0, reasons: {} };
      for (const o of opened) {
        all.open += o.open;
        all.failed += o.failed;
        all.retried += o.retried;
        all.late += o.late;
        for (const [why, k] of Object.entries(o.reasons)) all.reasons[why] = (all.reasons[why] ?? 0) + k;
      }
      return all;
    },
    watch: (at: number): void => children.forEach((c) => send(c, { kind: 'watch', at })),
    /** Every process's sessions once they closed (or 5 s past `at`), and the worst loop lag among them; the processes exit. */
    async report(at: number): Promise<{ sessions: Outcome['sessions']; lag: Lag; sentPerS: number }> {
      const outs = await Promise.all(
        children.map((c) => {
          const got = answer(c, 'outcome');
          send(c, { kind: 'report', at });
          return got;
        }),
      );
      for (const c of children) c.kill();
      const worst = (f: (l: Lag) => number): number => Math.max(...outs.map((o) => f(o.lag)).filter((x) => !Number.isNaN(x)), -Infinity);
      return { sessions: outs.flatMap((o) => o.sessions), sentPerS: outs.reduce((n, o) => n + o.sentPerS, 0), lag: { timerLagMs: worst((l) => l.timerLagMs), loopP99Ms: worst((l) => l.loopP99Ms), loopMaxMs: worst((l) => l.loopMaxMs) } };
    },
  };
}

/** What the sessions saw relative to `at`. */
/** A session told more than this before the instant ended for another reason (clocks of two processes may differ by a few ms). */
const EARLY_MS = 100;

function outcome(all: Outcome['sessions'], at: number) {
  const toldAt = (t: Outcome['sessions'][number]): number => (Number.isNaN(t.statusAt) ? t.closedAt : t.statusAt);
  // Ended before the instant (a setup timeout, the pod, an error): not cut by it, so not in its
  // figures; counted, and the rows fail, since fewer sessions than they say met the instant.
  const early = all.filter((t) => toldAt(t) < at - EARLY_MS);
  const sessions = all.filter((t) => !early.includes(t));
  const last = sessions.map((t) => t.lastByteAt - at);
  const closedOnes = sessions.filter((t) => !Number.isNaN(t.closedAt));
  const closed = closedOnes.map((t) => t.closedAt - at);
  // A session whose close came without a Status (none arrived) counts at its close.
  const told = closedOnes.map((t) => toldAt(t) - at);
  // Why they ended, as their clients heard it (message -> count): the row names the commonest.
  const earlyWhy: Record<string, number> = {};
  for (const t of early) earlyWhy[t.told || 'no Status'] = (earlyWhy[t.told || 'no Status'] ?? 0) + 1;
  return {
    endedEarly: early.length,
    earlyWhy,
    earlyMs: early.map((t) => toldAt(t) - at),
    last,
    closed,
    notClosed: sessions.length - closed.length,
    afterBytes: all.reduce((n, t) => n + t.bytesAfter, 0),
    lastS: pctSpread(last),
    closeS: pctSpread(closed.length ? closed : [NaN]),
    told,
    toldS: pctSpread(told.length ? told : [NaN]),
  };
}

/**
 * What the bastion itself passed after `at`: every data record (stdin, stdout, stderr) in the raw
 * sidecars of the approval's sessions, at its recorded time (the sidecar's startedAt plus the
 * record's µs). The relay records a chunk just before it writes it on, so this is the relay-side
 * measure the client's arrival times only bound. startedAt has millisecond resolution: a record
 * counts as after `at` when its time is more than 1 ms past it.
 */
function recordedAfter(ctx: Ctx, approvalId: string, at: number): { sessions: number; bytes: number; lastMs: number; cutMs: number[] } {
  const dir = join(ctx.bastion.recordings, approvalId);
  const out = { sessions: 0, bytes: 0, lastMs: -Infinity, cutMs: [] as number[] };
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir).filter((name) => name.endsWith('.raw'))) {
    const data: Array<{ us: number; n: number }> = [];
    let cutUs: number | undefined;
    const { meta } = scanRawSidecarFile(join(dir, f), (r) => {
      if (r.channel === RawChannel.stdin || r.channel === RawChannel.stdout || r.channel === RawChannel.stderr) data.push({ us: r.timeUs, n: r.data.length });
      // The relay records its cutoff marker just before it writes the agent's Status.
      else if (r.channel === RawChannel.marker && cutUs === undefined && r.data.toString('utf8').startsWith('cutoff: ')) cutUs = r.timeUs;
    });
    out.sessions++;
    const start = Date.parse(meta.startedAt);
    if (cutUs !== undefined) out.cutMs.push(start + cutUs / 1000 - at);
    for (const d of data) {
      const ms = start + d.us / 1000 - at;
      out.lastMs = Math.max(out.lastMs, ms);
      if (ms > 1) out.bytes += d.n;
    }
  }
  return out;
}

/** The sessions that ended before the instant, when and why (the commonest message their clients got). */
function earlyText(o: { endedEarly: number; earlyMs: number[]; earlyWhy: Record<string, number> }, instant: string): string {
  if (o.endedEarly === 0) return '';
  const [why, n] = Object.entries(o.earlyWhy).sort((a, b) => b[1] - a[1])[0]!;
  return `; ${o.endedEarly} ended before ${instant} (left out; ${fmt(-Math.max(...o.earlyMs) / 1000)}-${fmt(-Math.min(...o.earlyMs) / 1000)} s before it; ${n} told "${why.slice(0, 120)}")`;
}

/** Where the close time goes: when the bastion cut (its recordings) and how late the clients' loops ran. */
function sentText(cutMs: number[], driver: { timerLagMs: number; loopP99Ms: number; loopMaxMs: number }, sentPerS: number): string {
  const c = pctSpread(cutMs);
  return `clients sent ${fmt(sentPerS)} lines/s before it (each echoed); bastion cut (recordings) p50 ${fmt(c.median)}, p99 ${fmt(c.p99)} ms; client loops (worst of the client processes) late ${fmt(driver.timerLagMs)} ms at the instant, p99 delay ${fmt(driver.loopP99Ms)} ms, max ${fmt(driver.loopMaxMs)} ms`;
}

/**
 * The comparator: the same number of sessions, the same clients and load, straight to the sim, and
 * at one instant the driver SIGKILLs their `cat`s (the sim's children started for them), so the
 * sim sends each its exit Status. Relative to that instant, what the clients hear is what this
 * machine and these client processes take to learn of an end with no bastion in the way.
 */
async function endedByTheSim(ctx: Ctx) {
  const clients = await clientProcesses(ctx.sizes.cutoffSessions);
  const before = new Set(childrenNamed(ctx.simPid, 'cat'));
  ctx.progress(`cutoff: opening ${ctx.sizes.cutoffSessions} sessions straight to the sim, to end by killing their cat`);
  const opened = await clients.open(ctx.direct, Infinity, Infinity);
  // The sim may answer an exec's upgrade before its process is running: wait for every `cat`.
  const newCats = (): number[] => childrenNamed(ctx.simPid, 'cat').filter((pid) => !before.has(pid));
  for (const until = Date.now() + 5000; newCats().length < opened.open && Date.now() < until; ) await new Promise((res) => setTimeout(res, 50));
  const cats = newCats();
  const planned = Date.now() + 1000;
  clients.watch(planned);
  await new Promise((res) => setTimeout(res, planned - Date.now()));
  // The instant is when the kills are sent (the driver's own timer may fire late).
  const at = Date.now();
  for (const pid of cats) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone: its session ended before the instant and is counted so
    }
  }
  const out = await clients.report(at);
  const o = outcome(out.sessions, at);
  const told: Record<string, number> = {};
  for (const t of out.sessions) told[t.told || 'no Status'] = (told[t.told || 'no Status'] ?? 0) + 1;
  return { processes: clients.processes, opened, cats: cats.length, at, o, told, lag: out.lag, sentPerS: out.sentPerS };
}

function directText(d: Awaited<ReturnType<typeof endedByTheSim>>): string {
  const mismatch = d.cats === d.opened.open ? '' : `, ${d.cats} cats found for ${d.opened.open} sessions`;
  const lost = d.opened.failed ? `, ${d.opened.failed} failed to open` : '';
  return `; direct: ${d.opened.open} sessions straight to the sim, their cats killed at one instant${mismatch}${lost}: Status p50 ${fmt(d.o.toldS.median)}, p99 ${fmt(d.o.toldS.p99)} ms${earlyText(d.o, 'the kill')}${d.o.notClosed ? `, ${d.o.notClosed} not closed within 5 s` : ''} (clients sent ${fmt(d.sentPerS)} lines/s; loops late ${fmt(d.lag.timerLagMs)} ms, p99 ${fmt(d.lag.loopP99Ms)})`;
}

export async function measureCutoff(ctx: Ctx): Promise<Row[]> {
  const expiring = await clientProcesses(ctx.sizes.cutoffSessions);
  // A container no other measure uses, so these sessions fall under this approval alone.
  const a = await approve(ctx, 'web-0', 'sidecar', ctx.sizes.cutoffTtlSeconds);
  const deadline = Date.parse(a.expiresAt);
  ctx.progress(`cutoff: opening ${ctx.sizes.cutoffSessions} sessions expiring at ${a.expiresAt}`);
  const opened = await expiring.open(ctx.bastion, deadline, ctx.sizes.cutoffTtlSeconds * 1000, deadline);
  const failed = opened.failed;
  ctx.progress(`cutoff: ${opened.open} sessions open in ${expiring.processes} client processes, ${failed} failed, ${opened.retried} retried, ${opened.late} too late; waiting for the deadline`);
  const eOut = await expiring.report(deadline);
  const e = outcome(eOut.sessions, deadline);
  const eDriver = eOut.lag;

  // Revocation (from the old bench/relay.ts): the same sessions, cut by a revoke call instead.
  const revoking = await clientProcesses(ctx.sizes.cutoffSessions);
  const r = await approve(ctx, 'web-0', 'sidecar', 600);
  ctx.progress(`cutoff: opening ${ctx.sizes.cutoffSessions} sessions to revoke`);
  const rev = await revoking.open(ctx.bastion, Infinity, Infinity);
  ctx.progress(`cutoff: ${rev.open} sessions open, ${rev.failed} failed, ${rev.retried} retried; revoking in 1 s`);
  revoking.watch(Date.now() + 1000);
  await new Promise((res) => setTimeout(res, 1000));
  const revoked = await ctx.api<{ revokedAt: string }>('POST', `/v1/approvals/${r.id}/revoke`, { reason: 'bench' });
  const revokedAt = Date.parse(revoked.revokedAt);
  const vOut = await revoking.report(revokedAt);
  const v = outcome(vOut.sessions, revokedAt);
  const vDriver = vOut.lag;
  const direct = await endedByTheSim(ctx);
  const dText = directText(direct);
  // The recordings are complete once every session ended (their final flush precedes the session row).
  await new Promise((res) => setTimeout(res, 2000));
  const eRec = recordedAfter(ctx, a.id, deadline);
  const vRec = recordedAfter(ctx, r.id, revokedAt);

  ctx.raw.cutoff = {
    sendEveryMs: SEND_EVERY_MS,
    clientLag: { expiry: eDriver, revocation: vDriver },
    linesPerS: { expiry: eOut.sentPerS, revocation: vOut.sentPerS },
    expiry: { wanted: ctx.sizes.cutoffSessions, clientProcesses: expiring.processes, sessions: opened.open, failed, retried: opened.retried, late: opened.late, openFailures: opened.reasons, notClosedWithin5s: e.notClosed, endedEarly: e.endedEarly, endedEarlyMs: e.earlyMs, endedEarlyWhy: e.earlyWhy, deadline: a.expiresAt, lastByteMs: e.last, statusMs: e.told, closeMs: e.closed, bytesAfterDeadline: e.afterBytes, recorded: eRec },
    direct: { clientProcesses: direct.processes, sessions: direct.opened.open, failed: direct.opened.failed, cats: direct.cats, killedAt: new Date(direct.at).toISOString(), notClosedWithin5s: direct.o.notClosed, endedEarly: direct.o.endedEarly, endedEarlyWhy: direct.o.earlyWhy, lastByteMs: direct.o.last, statusMs: direct.o.told, closeMs: direct.o.closed, told: direct.told, clientLag: direct.lag, linesPerS: direct.sentPerS },
    revocation: { clientProcesses: revoking.processes, sessions: rev.open, failed: rev.failed, retried: rev.retried, openFailures: rev.reasons, notClosedWithin5s: v.notClosed, endedEarly: v.endedEarly, endedEarlyMs: v.earlyMs, endedEarlyWhy: v.earlyWhy, revokedAt: revoked.revokedAt, lastByteMs: v.last, statusMs: v.told, closeMs: v.closed, bytesAfterRevokedAt: v.afterBytes, recorded: vRec },
  };
  const n = opened.open;
  return [
    {
      id: 'cutoff.lastbyte',
      measure: `${n} sessions expiring at once: last byte at the client - deadline`,
      unit: 'ms',
      bastion: e.lastS,
      derived: `p99 ${fmt(e.lastS.p99)}; ${e.afterBytes} bytes arrived after the deadline, ${eRec.bytes} relayed after it (recordings, last ${fmt(eRec.lastMs)} ms)${failed ? `; ${failed} failed to open` : ''}${opened.retried ? `; ${opened.retried} opens retried` : ''}${opened.late ? `; ${opened.late} still opening at the deadline` : ''}${n < ctx.sizes.cutoffSessions ? `; only ${n} of ${ctx.sizes.cutoffSessions} opened in time` : ''}${earlyText(e, 'the deadline')}`,
      target: 'no byte after the deadline',
      // Judged on what the bastion relayed (its recordings); arrival at a client on a loaded machine trails it.
      verdict: verdict(eRec.bytes === 0 && failed === 0 && e.endedEarly === 0 && n === ctx.sizes.cutoffSessions),
    },
    {
      id: 'cutoff.close',
      measure: `${n} sessions expiring at once: client gets its Status - deadline`,
      unit: 'ms',
      direct: direct.o.toldS,
      bastion: e.toldS,
      derived: `p99 ${fmt(e.toldS.p99)}${dText}; WebSocket closed at the client p50 ${fmt(e.closeS.median)}, p99 ${fmt(e.closeS.p99)}${e.notClosed ? `; ${e.notClosed} not closed within 5 s` : ''}${earlyText(e, 'the deadline')}; ${sentText(eRec.cutMs, eDriver, eOut.sentPerS)}`,
      target: 'p99 <= 50 ms',
      verdict: verdict(e.notClosed === 0 && failed === 0 && e.endedEarly === 0 && e.toldS.p99 <= 50),
    },
    {
      id: 'cutoff.revoke.lastbyte',
      measure: `${rev.open} sessions revoked at once: last byte at the client - revokedAt`,
      unit: 'ms',
      bastion: v.lastS,
      derived: `p99 ${fmt(v.lastS.p99)}; ${v.afterBytes} bytes arrived after revokedAt, ${vRec.bytes} relayed after it (recordings, last ${fmt(vRec.lastMs)} ms)${earlyText(v, 'revokedAt')}`,
      target: '<= 100 ms (relay.ts goal)',
      verdict: verdict(rev.failed === 0 && vRec.bytes === 0 && v.endedEarly === 0 && v.lastS.max <= 100),
    },
    {
      id: 'cutoff.revoke.close',
      measure: `${rev.open} sessions revoked at once: client gets its Status - revokedAt`,
      unit: 'ms',
      direct: direct.o.toldS,
      bastion: v.toldS,
      derived: `p99 ${fmt(v.toldS.p99)}${dText}; WebSocket closed at the client p50 ${fmt(v.closeS.median)}, p99 ${fmt(v.closeS.p99)}${v.notClosed ? `; ${v.notClosed} not closed within 5 s` : ''}${earlyText(v, 'revokedAt')}; ${sentText(vRec.cutMs, vDriver, vOut.sentPerS)}`,
      target: 'p99 <= 50 ms',
      verdict: verdict(v.notClosed === 0 && rev.failed === 0 && v.endedEarly === 0 && v.toldS.p99 <= 50),
    },
  ];
}
