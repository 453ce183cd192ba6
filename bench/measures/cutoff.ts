// Cutoff precision: N sessions under one approval, so all expire at the same instant, each
// streaming a small chunk through `cat` every 20 ms. For each session, when its last byte arrived
// at the client and when the client saw the session close, relative to the approval's expiresAt.
// Arrival at the client is an upper bound of when the bastion relayed the byte.
import { setMaxListeners } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { UpstreamSession } from '../../src/upstream/executor.js';
import { dialUpstreamExec } from '../../src/upstream/executor.js';
import { upstreamFromCredentials } from '../../src/upstream/upstream.js';
import { ProtocolName } from '../../src/protocol/constants.js';
import { scanRawSidecarFile, RawChannel } from '../../src/recording/raw-sidecar.js';
import { execPath, nowMs } from '../lib/clients.js';
import { approve, type Ctx } from '../lib/context.js';
import { fmt, quantile, verdict, type Row, type Spread } from '../lib/report.js';

const SEND_EVERY_MS = 20;

interface Tracked {
  session: UpstreamSession;
  lastByteAt: number;
  /** When the Status arrived (the client learnt the session was cut and why). */
  statusAt: number;
  /** When the driver's WebSocket closed (after its own half of the close handshake). */
  closedAt: number;
  bytesAfterDeadline: number;
  timer: NodeJS.Timeout;
}

/** Over the sessions that saw a byte (a session cut before its first echo has none). */
function pctSpread(all: number[]): Spread & { p99: number } {
  const xs = all.filter((x) => !Number.isNaN(x));
  if (xs.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0, p99: NaN };
  return { median: quantile(xs, 0.5), min: Math.min(...xs), max: Math.max(...xs), n: xs.length, p99: quantile(xs, 0.99) };
}

/** An open is given up this long before the deadline: finishing later, it would be cut (or held) at once. */
const OPEN_ABORT_BEFORE_MS = 1000;
/** An open that failed (a transient refusal under load) is tried again, at most this often per session. */
const OPEN_TRIES = 3;

/** What opening the sessions came to: the failures with their reasons, and those given up as too late. */
interface Opened {
  tracked: Tracked[];
  /** Sessions that could not be opened in OPEN_TRIES tries. */
  failed: number;
  /** Failed tries that a retry made good. */
  retried: number;
  /** Opens still under way when the deadline came near (not failures: the machine was too slow to open them all). */
  late: number;
  /** The distinct reasons of failed tries, with their counts. */
  reasons: Record<string, number>;
}

/**
 * Opens up to cutoffSessions sessions, 16 at a time, starting none in the last quarter of the TTL
 * (at most 10 s) before `openUntil`: under load one open takes seconds, and one that reaches the
 * gate after its approval ended is held for a new approval instead. An open still under way
 * OPEN_ABORT_BEFORE_MS before `openUntil` is given up (counted as late, not failed); one that
 * fails is retried, and the reasons are kept for the JSON.
 */
async function openTracked(ctx: Ctx, deadline: () => number, openUntil = Infinity, ttlMs = Infinity): Promise<Opened> {
  const out: Opened = { tracked: [], failed: 0, retried: 0, late: 0, reasons: {} };
  const stopStarting = openUntil - Math.min(10_000, ttlMs / 4);
  const giveUp = new AbortController();
  // Each of the 16 opens in flight listens to it (Node warns past 10).
  setMaxListeners(32, giveUp.signal);
  const giveUpTimer = Number.isFinite(openUntil) ? setTimeout(() => giveUp.abort(), Math.max(0, openUntil - OPEN_ABORT_BEFORE_MS - Date.now())) : undefined;
  const target = upstreamFromCredentials(ctx.bastion.url, ctx.bastion.caPem, ctx.bastion.token, ctx.bastion.label);
  const path = execPath({ namespace: 'demo', pod: 'web-0', container: 'sidecar', command: ['cat'] });
  let next = 0;
  const openOne = async (): Promise<UpstreamSession | undefined> => {
    for (let attempt = 1; ; attempt++) {
      try {
        // The signal is the dial's alone: an executor session keeps listening to it once open.
        const dialing = new AbortController();
        const stop = (): void => dialing.abort();
        giveUp.signal.addEventListener('abort', stop, { once: true });
        try {
          return await dialUpstreamExec(target, { path, protocols: [ProtocolName.v5], keepAliveMs: 0, signal: dialing.signal });
        } finally {
          giveUp.signal.removeEventListener('abort', stop);
        }
      } catch (err) {
        if (giveUp.signal.aborted) {
          out.late++;
          return undefined;
        }
        const why = (err as Error).message.replace(/ses_\w+|apr_\w+/g, '…').slice(0, 160);
        out.reasons[why] = (out.reasons[why] ?? 0) + 1;
        if (attempt >= OPEN_TRIES || Date.now() >= stopStarting) {
          out.failed++;
          return undefined;
        }
        out.retried++;
      }
    }
  };
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < ctx.sizes.cutoffSessions && Date.now() < stopStarting) {
        next++;
        const session = await openOne();
        if (!session) continue;
        const t: Tracked = { session, lastByteAt: NaN, statusAt: NaN, closedAt: NaN, bytesAfterDeadline: 0, timer: setInterval(() => session.stdin?.write(`${Date.now()}\n`), SEND_EVERY_MS) };
        session.stdout.on('data', (d: Buffer) => {
          t.lastByteAt = nowMs();
          if (t.lastByteAt > deadline()) t.bytesAfterDeadline += d.length;
        });
        session.stderr.resume();
        void session.status.then(() => {
          t.closedAt = nowMs();
          t.statusAt = session.statusArrivedAt ?? NaN;
          clearInterval(t.timer);
        });
        out.tracked.push(t);
      }
    }),
  );
  clearTimeout(giveUpTimer);
  return out;
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

/**
 * How late the driver's own event loop is around `at`: a timer due at `at` and the loop delay
 * histogram from 1 s before it to 2 s after. The clients' close times include this lag.
 */
function watchDriverLag(at: () => number): { stop(): { timerLagMs: number; loopP99Ms: number; loopMaxMs: number } } {
  const h = monitorEventLoopDelay({ resolution: 5 });
  let timerLagMs = NaN;
  const timer = setInterval(() => {
    const due = at();
    if (!Number.isFinite(due) || Date.now() < due - 1000) return;
    clearInterval(timer);
    h.enable();
    setTimeout(() => (timerLagMs = Date.now() - due), Math.max(0, due - Date.now()));
    setTimeout(() => h.disable(), Math.max(0, due + 2000 - Date.now()));
  }, 20);
  return {
    stop: () => {
      clearInterval(timer);
      h.disable();
      return { timerLagMs, loopP99Ms: h.count > 0 ? h.percentile(99) / 1e6 : NaN, loopMaxMs: h.count > 0 ? h.max / 1e6 : NaN };
    },
  };
}

/** Until every session closed, or 5 s past the deadline; then what each saw relative to it. */
async function outcome(tracked: Tracked[], deadline: number) {
  while (Date.now() < deadline + 5000 && (Date.now() < deadline || tracked.some((t) => Number.isNaN(t.closedAt)))) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 200)); // a byte arriving late would show here
  for (const t of tracked) {
    clearInterval(t.timer);
    t.session.destroy();
  }
  const last = tracked.map((t) => t.lastByteAt - deadline);
  const closed = tracked.filter((t) => !Number.isNaN(t.closedAt)).map((t) => t.closedAt - deadline);
  // A session whose close came without a Status (none arrived) counts at its close.
  const told = tracked.filter((t) => !Number.isNaN(t.closedAt)).map((t) => (Number.isNaN(t.statusAt) ? t.closedAt : t.statusAt) - deadline);
  return {
    last,
    closed,
    notClosed: tracked.length - closed.length,
    afterBytes: tracked.reduce((n, t) => n + t.bytesAfterDeadline, 0),
    lastS: pctSpread(last),
    closeS: pctSpread(closed.length ? closed : [NaN]),
    told,
    toldS: pctSpread(told.length ? told : [NaN]),
  };
}

/** Where the close time goes: when the bastion cut (its recordings) and how late the driver's loop ran. */
function sentText(cutMs: number[], driver: { timerLagMs: number; loopP99Ms: number; loopMaxMs: number }): string {
  const c = pctSpread(cutMs);
  return `bastion cut (recordings) p50 ${fmt(c.median)}, p99 ${fmt(c.p99)} ms; driver loop late ${fmt(driver.timerLagMs)} ms at the instant, p99 delay ${fmt(driver.loopP99Ms)} ms, max ${fmt(driver.loopMaxMs)} ms`;
}

export async function measureCutoff(ctx: Ctx): Promise<Row[]> {
  // A container no other measure uses, so these sessions fall under this approval alone.
  const a = await approve(ctx, 'web-0', 'sidecar', ctx.sizes.cutoffTtlSeconds);
  const deadline = Date.parse(a.expiresAt);
  ctx.progress(`cutoff: opening ${ctx.sizes.cutoffSessions} sessions expiring at ${a.expiresAt}`);
  const eLag = watchDriverLag(() => deadline);
  const opened = await openTracked(ctx, () => deadline, deadline, ctx.sizes.cutoffTtlSeconds * 1000);
  const { tracked, failed } = opened;
  ctx.progress(`cutoff: ${tracked.length} sessions open, ${failed} failed, ${opened.retried} retried, ${opened.late} too late; waiting for the deadline`);
  const e = await outcome(tracked, deadline);
  const eDriver = eLag.stop();

  // Revocation (from the old bench/relay.ts): the same sessions, cut by a revoke call instead.
  const r = await approve(ctx, 'web-0', 'sidecar', 600);
  let revokedAt = Infinity;
  let revokeAt = Infinity;
  const vLag = watchDriverLag(() => revokeAt);
  ctx.progress(`cutoff: opening ${ctx.sizes.cutoffSessions} sessions to revoke`);
  const rev = await openTracked(ctx, () => revokedAt);
  ctx.progress(`cutoff: ${rev.tracked.length} sessions open, ${rev.failed} failed, ${rev.retried} retried; revoking in 1 s`);
  revokeAt = Date.now() + 1000;
  await new Promise((res) => setTimeout(res, 1000));
  const revoked = await ctx.api<{ revokedAt: string }>('POST', `/v1/approvals/${r.id}/revoke`, { reason: 'bench' });
  revokedAt = Date.parse(revoked.revokedAt);
  const v = await outcome(rev.tracked, revokedAt);
  const vDriver = vLag.stop();
  // The recordings are complete once every session ended (their final flush precedes the session row).
  await new Promise((res) => setTimeout(res, 2000));
  const eRec = recordedAfter(ctx, a.id, deadline);
  const vRec = recordedAfter(ctx, r.id, revokedAt);

  ctx.raw.cutoff = {
    sendEveryMs: SEND_EVERY_MS,
    driverLag: { expiry: eDriver, revocation: vDriver },
    expiry: { wanted: ctx.sizes.cutoffSessions, sessions: tracked.length, failed, retried: opened.retried, late: opened.late, openFailures: opened.reasons, notClosedWithin5s: e.notClosed, deadline: a.expiresAt, lastByteMs: e.last, statusMs: e.told, closeMs: e.closed, bytesAfterDeadline: e.afterBytes, recorded: eRec },
    revocation: { sessions: rev.tracked.length, failed: rev.failed, retried: rev.retried, openFailures: rev.reasons, notClosedWithin5s: v.notClosed, revokedAt: revoked.revokedAt, lastByteMs: v.last, statusMs: v.told, closeMs: v.closed, bytesAfterRevokedAt: v.afterBytes, recorded: vRec },
  };
  const n = tracked.length;
  return [
    {
      id: 'cutoff.lastbyte',
      measure: `${n} sessions expiring at once: last byte at the client - deadline`,
      unit: 'ms',
      bastion: e.lastS,
      derived: `p99 ${fmt(e.lastS.p99)}; ${e.afterBytes} bytes arrived after the deadline, ${eRec.bytes} relayed after it (recordings, last ${fmt(eRec.lastMs)} ms)${failed ? `; ${failed} failed to open` : ''}${opened.retried ? `; ${opened.retried} opens retried` : ''}${opened.late ? `; ${opened.late} still opening at the deadline` : ''}${n < ctx.sizes.cutoffSessions ? `; only ${n} of ${ctx.sizes.cutoffSessions} opened in time` : ''}`,
      target: 'no byte after the deadline',
      // Judged on what the bastion relayed (its recordings); arrival at a client on a loaded machine trails it.
      verdict: verdict(eRec.bytes === 0 && failed === 0 && n === ctx.sizes.cutoffSessions),
    },
    {
      id: 'cutoff.close',
      measure: `${n} sessions expiring at once: client gets its Status - deadline`,
      unit: 'ms',
      bastion: e.toldS,
      derived: `p99 ${fmt(e.toldS.p99)}; WebSocket closed at the driver p50 ${fmt(e.closeS.median)}, p99 ${fmt(e.closeS.p99)}${e.notClosed ? `; ${e.notClosed} not closed within 5 s` : ''}; ${sentText(eRec.cutMs, eDriver)}`,
      target: 'p99 <= 50 ms',
      verdict: verdict(e.notClosed === 0 && failed === 0 && e.toldS.p99 <= 50),
    },
    {
      id: 'cutoff.revoke.lastbyte',
      measure: `${rev.tracked.length} sessions revoked at once: last byte at the client - revokedAt`,
      unit: 'ms',
      bastion: v.lastS,
      derived: `p99 ${fmt(v.lastS.p99)}; ${v.afterBytes} bytes arrived after revokedAt, ${vRec.bytes} relayed after it (recordings, last ${fmt(vRec.lastMs)} ms)`,
      target: '<= 100 ms (relay.ts goal)',
      verdict: verdict(rev.failed === 0 && vRec.bytes === 0 && v.lastS.max <= 100),
    },
    {
      id: 'cutoff.revoke.close',
      measure: `${rev.tracked.length} sessions revoked at once: client gets its Status - revokedAt`,
      unit: 'ms',
      bastion: v.toldS,
      derived: `p99 ${fmt(v.toldS.p99)}; WebSocket closed at the driver p50 ${fmt(v.closeS.median)}, p99 ${fmt(v.closeS.p99)}${v.notClosed ? `; ${v.notClosed} not closed within 5 s` : ''}; ${sentText(vRec.cutMs, vDriver)}`,
      target: 'p99 <= 50 ms',
      verdict: verdict(v.notClosed === 0 && rev.failed === 0 && v.toldS.p99 <= 50),
    },
  ];
}
