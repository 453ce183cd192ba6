// Cutoff precision: N sessions under one approval, so all expire at the same instant, each
// streaming a small chunk through `cat` every 20 ms. For each session, when its last byte arrived
// at the client and when the client saw the session close, relative to the approval's expiresAt.
// Arrival at the client is an upper bound of when the bastion relayed the byte.
import type { UpstreamSession } from '../../src/upstream/executor.js';
import { nowMs, openExec } from '../lib/clients.js';
import { approve, type Ctx } from '../lib/context.js';
import { fmt, quantile, verdict, type Row, type Spread } from '../lib/report.js';

const SEND_EVERY_MS = 20;

interface Tracked {
  session: UpstreamSession;
  lastByteAt: number;
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

/**
 * Opens up to cutoffSessions sessions, but none later than 3 s before `openUntil` (a session opened
 * after its approval ended would be held for a new approval instead).
 */
async function openTracked(ctx: Ctx, deadline: () => number, openUntil = Infinity): Promise<{ tracked: Tracked[]; failed: number }> {
  const tracked: Tracked[] = [];
  let failed = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < ctx.sizes.cutoffSessions && Date.now() < openUntil - 3000) {
        next++;
        try {
          const session = await openExec(ctx.bastion, 'websocket', { namespace: 'demo', pod: 'web-0', container: 'sidecar', command: ['cat'] });
          const t: Tracked = { session, lastByteAt: NaN, closedAt: NaN, bytesAfterDeadline: 0, timer: setInterval(() => session.stdin?.write(`${Date.now()}\n`), SEND_EVERY_MS) };
          session.stdout.on('data', (d: Buffer) => {
            t.lastByteAt = nowMs();
            if (t.lastByteAt > deadline()) t.bytesAfterDeadline += d.length;
          });
          session.stderr.resume();
          void session.status.then(() => {
            t.closedAt = nowMs();
            clearInterval(t.timer);
          });
          tracked.push(t);
        } catch {
          failed++;
        }
      }
    }),
  );
  return { tracked, failed };
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
  return {
    last,
    closed,
    notClosed: tracked.length - closed.length,
    afterBytes: tracked.reduce((n, t) => n + t.bytesAfterDeadline, 0),
    lastS: pctSpread(last),
    closeS: pctSpread(closed.length ? closed : [NaN]),
  };
}

export async function measureCutoff(ctx: Ctx): Promise<Row[]> {
  // A container no other measure uses, so these sessions fall under this approval alone.
  const a = await approve(ctx, 'web-0', 'sidecar', ctx.sizes.cutoffTtlSeconds);
  const deadline = Date.parse(a.expiresAt);
  ctx.progress(`cutoff: opening ${ctx.sizes.cutoffSessions} sessions expiring at ${a.expiresAt}`);
  const { tracked, failed } = await openTracked(ctx, () => deadline, deadline);
  ctx.progress(`cutoff: ${tracked.length} sessions open, ${failed} failed; waiting for the deadline`);
  const e = await outcome(tracked, deadline);

  // Revocation (from the old bench/relay.ts): the same sessions, cut by a revoke call instead.
  const r = await approve(ctx, 'web-0', 'sidecar', 600);
  let revokedAt = Infinity;
  ctx.progress(`cutoff: opening ${ctx.sizes.cutoffSessions} sessions to revoke`);
  const rev = await openTracked(ctx, () => revokedAt);
  await new Promise((res) => setTimeout(res, 1000));
  const revoked = await ctx.api<{ revokedAt: string }>('POST', `/v1/approvals/${r.id}/revoke`, { reason: 'bench' });
  revokedAt = Date.parse(revoked.revokedAt);
  const v = await outcome(rev.tracked, revokedAt);

  ctx.raw.cutoff = {
    sendEveryMs: SEND_EVERY_MS,
    expiry: { wanted: ctx.sizes.cutoffSessions, sessions: tracked.length, failed, notClosedWithin5s: e.notClosed, deadline: a.expiresAt, lastByteMs: e.last, closeMs: e.closed, bytesAfterDeadline: e.afterBytes },
    revocation: { sessions: rev.tracked.length, failed: rev.failed, notClosedWithin5s: v.notClosed, revokedAt: revoked.revokedAt, lastByteMs: v.last, closeMs: v.closed, bytesAfterRevokedAt: v.afterBytes },
  };
  const n = tracked.length;
  return [
    {
      id: 'cutoff.lastbyte',
      measure: `${n} sessions expiring at once: last byte at the client - deadline`,
      unit: 'ms',
      bastion: e.lastS,
      derived: `p99 ${fmt(e.lastS.p99)}; ${e.afterBytes} bytes after the deadline${failed ? `; ${failed} failed to open` : ''}${n < ctx.sizes.cutoffSessions ? `; only ${n} of ${ctx.sizes.cutoffSessions} opened in time` : ''}`,
      target: 'no byte after the deadline',
      verdict: verdict(e.afterBytes === 0 && failed === 0 && n === ctx.sizes.cutoffSessions),
    },
    {
      id: 'cutoff.close',
      measure: `${n} sessions expiring at once: client sees the close - deadline`,
      unit: 'ms',
      bastion: e.closeS,
      derived: `p99 ${fmt(e.closeS.p99)}${e.notClosed ? `; ${e.notClosed} not closed within 5 s` : ''}`,
      target: 'p99 <= 50 ms',
      verdict: verdict(e.notClosed === 0 && failed === 0 && e.closeS.p99 <= 50),
    },
    {
      id: 'cutoff.revoke.lastbyte',
      measure: `${rev.tracked.length} sessions revoked at once: last byte at the client - revokedAt`,
      unit: 'ms',
      bastion: v.lastS,
      derived: `p99 ${fmt(v.lastS.p99)}; ${v.afterBytes} bytes after revokedAt`,
      target: '<= 100 ms (relay.ts goal)',
      verdict: verdict(rev.failed === 0 && v.lastS.max <= 100),
    },
    {
      id: 'cutoff.revoke.close',
      measure: `${rev.tracked.length} sessions revoked at once: client sees the close - revokedAt`,
      unit: 'ms',
      bastion: v.closeS,
      derived: `p99 ${fmt(v.closeS.p99)}${v.notClosed ? `; ${v.notClosed} not closed within 5 s` : ''}`,
      target: 'p99 <= 50 ms',
      verdict: verdict(v.notClosed === 0 && rev.failed === 0 && v.closeS.p99 <= 50),
    },
  ];
}
