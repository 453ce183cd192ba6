// One of the cutoff measure's client processes (bench/measures/cutoff.ts forks several): it opens
// its share of the sessions, streams a line through each every SEND_EVERY_MS, and reports when
// each session's last byte, its Status and its close arrived, with how late its own event loop
// ran around the instant. Clients in several processes, as kubectl clients are: one Node process
// reading all 200 sessions made its own loop most of the measure's tail.
//
// Messages (IPC): the child says `ready` once loaded; the parent sends `start`, then `watch` (the instant, once known, for the loop
// watch and for counting bytes after it), then `report`; the child answers `opened` and `outcome`.
import { setMaxListeners } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { UpstreamSession } from '../src/upstream/executor.js';
import { dialUpstreamExec } from '../src/upstream/executor.js';
import { upstreamFromCredentials } from '../src/upstream/upstream.js';
import { ProtocolName } from '../src/protocol/constants.js';
import { execPath, nowMs } from './lib/clients.js';
import { SEND_EVERY_MS, type FromClients, type ToClients } from './lib/cutoff-protocol.js';

/** An open is given up this long before `openUntil`: finishing later, it would be cut (or held) at once. */
const OPEN_ABORT_BEFORE_MS = 1000;
/** An open that failed (a transient refusal under load) is tried again, at most this often per session. */
const OPEN_TRIES = 3;

interface Tracked {
  session: UpstreamSession;
  lastByteAt: number;
  statusAt: number;
  closedAt: number;
  /** The Status's message, or why the session ended without one. */
  told: string;
  /** Arrivals from 1 s before the watched instant on (bytes after the exact instant are counted at the report). */
  arrivals: Array<{ t: number; n: number }>;
  timer: NodeJS.Timeout;
}

const tracked: Tracked[] = [];
let watchFrom = Infinity;
let watchAt = Infinity;
/** Lines written in the second before the watched instant: the load the bastion had. */
let sentBefore = 0;

async function open(m: Extract<ToClients, { kind: 'start' }>): Promise<FromClients> {
  const out = { kind: 'opened' as const, open: 0, failed: 0, retried: 0, late: 0, reasons: {} as Record<string, number> };
  const stopStarting = m.openUntil - Math.min(10_000, m.ttlMs / 4);
  const giveUp = new AbortController();
  // Each open in flight listens to it (Node warns past 10).
  setMaxListeners(Math.max(10, 2 * m.inFlight), giveUp.signal);
  const giveUpTimer = Number.isFinite(m.openUntil) ? setTimeout(() => giveUp.abort(), Math.max(0, m.openUntil - OPEN_ABORT_BEFORE_MS - Date.now())) : undefined;
  const target = upstreamFromCredentials(m.target.url, m.target.caPem, m.target.token, m.target.label);
  const path = execPath({ namespace: 'demo', pod: 'web-0', container: 'sidecar', command: ['cat'] });
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
  let next = 0;
  await Promise.all(
    Array.from({ length: m.inFlight }, async () => {
      while (next < m.sessions && Date.now() < stopStarting) {
        next++;
        const session = await openOne();
        if (!session) continue;
        const t: Tracked = { session, lastByteAt: NaN, statusAt: NaN, closedAt: NaN, told: '', arrivals: [], timer: setInterval(() => {
            const now = Date.now();
            if (now >= watchAt - 1000 && now < watchAt) sentBefore++;
            session.stdin?.write(`${now}\n`);
          }, SEND_EVERY_MS) };
        session.stdout.on('data', (d: Buffer) => {
          t.lastByteAt = nowMs();
          if (t.lastByteAt >= watchFrom) t.arrivals.push({ t: t.lastByteAt, n: d.length });
        });
        session.stderr.resume();
        void session.status.then((status) => {
          t.told = status.message ?? status.reason ?? status.status ?? '';
          t.closedAt = nowMs();
          t.statusAt = session.statusArrivedAt ?? NaN;
          clearInterval(t.timer);
        });
        tracked.push(t);
      }
    }),
  );
  clearTimeout(giveUpTimer);
  out.open = tracked.length;
  return out;
}

/**
 * How late this process's event loop is around `at`: a timer due at `at` and the loop delay
 * histogram from 1 s before it to 2 s after. The clients' times include this lag.
 */
function watchLag(): { arm(at: number): void; stop(): { timerLagMs: number; loopP99Ms: number; loopMaxMs: number } } {
  const h = monitorEventLoopDelay({ resolution: 5 });
  let timerLagMs = NaN;
  let armed: NodeJS.Timeout | undefined;
  return {
    arm(at) {
      clearTimeout(armed);
      armed = setTimeout(() => {
        h.enable();
        setTimeout(() => (timerLagMs = Date.now() - at), Math.max(0, at - Date.now()));
        setTimeout(() => h.disable(), Math.max(0, at + 2000 - Date.now()));
      }, Math.max(0, at - 1000 - Date.now()));
    },
    stop() {
      clearTimeout(armed);
      h.disable();
      return { timerLagMs, loopP99Ms: h.count > 0 ? h.percentile(99) / 1e6 : NaN, loopMaxMs: h.count > 0 ? h.max / 1e6 : NaN };
    },
  };
}

const lag = watchLag();

async function report(at: number): Promise<FromClients> {
  while (Date.now() < at + 5000 && (Date.now() < at || tracked.some((t) => Number.isNaN(t.closedAt)))) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 200)); // a byte arriving late would show here
  for (const t of tracked) {
    clearInterval(t.timer);
    t.session.destroy();
  }
  return {
    kind: 'outcome',
    sessions: tracked.map((t) => ({ lastByteAt: t.lastByteAt, statusAt: t.statusAt, closedAt: t.closedAt, told: t.told, bytesAfter: t.arrivals.reduce((n, a) => n + (a.t > at ? a.n : 0), 0) })),
    lag: lag.stop(),
    sentPerS: sentBefore,
  };
}

process.on('message', (m: ToClients) => {
  const reply = (r: Promise<FromClients>): void => void r.then((x) => process.send!(x), (err: unknown) => process.stderr.write(`cutoff clients: ${String(err)}\n`));
  if (m.kind === 'start') reply(open(m));
  else if (m.kind === 'watch') {
    watchFrom = m.at - 1000;
    watchAt = m.at;
    lag.arm(m.at);
  } else reply(report(m.at));
});
// The driver going away must not leave clients behind.
process.on('disconnect', () => process.exit(0));
process.send!({ kind: 'ready' } satisfies FromClients);
