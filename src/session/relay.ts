// Bridges the agent's accepted streams and the upstream session, byte for byte, with
// backpressure both ways, and cuts both sides hard at the deadline or on revocation: from that
// instant no byte is relayed in either direction, and the agent gets a Status saying why.
import type { Readable, Writable } from 'node:stream';
import type { ServerStreams } from '../protocol/streams.js';
import type { TerminalSize } from '../protocol/resize.js';
import { exitCodeOf, type Status } from '../protocol/status.js';
import type { EndReason, SessionEnd, SessionSink } from '../model/session.js';
import { deadlines } from '../approvals/deadline-clock.js';

/** The client side of the upstream session (see src/upstream/executor.ts). */
export interface UpstreamStreams {
  readonly stdin: Writable | null;
  readonly stdout: Readable;
  readonly stderr: Readable;
  resize(size: TerminalSize): void;
  readonly status: Promise<Status>;
  /** Read once `status` resolved: false when upstream ended without saying how (see UpstreamSession). */
  readonly statusFromUpstream?: boolean;
  destroy(): void;
  readonly closed: Promise<void>;
}

export interface RelayOptions {
  agent: ServerStreams;
  upstream: UpstreamStreams;
  /** Epoch ms from which on (at or after it) nothing is relayed (the approval's expiry); undefined: none. */
  deadline?: number;
  /** The Status the agent receives when the session is cut for `reason`. */
  cutStatus(reason: EndReason, detail?: string): Status;
  sinks: SessionSink[];
  /** How long the final Status may take to reach a client that does not read, before the socket is dropped. */
  finishTimeoutMs?: number;
  /** How long the sinks may take to end (default 12 s): a recording that cannot be completed by then has failed. */
  sinkEndTimeoutMs?: number;
  /** Before the deadline, tell the agent's terminal (stderr, or stdout with a TTY) and mark the recording. */
  warning?: { at: number; message: string };
}

/** The sink method each relayed stream's chunks go to. */
type DataChannel = 'stdin' | 'stdout' | 'stderr';

/**
 * Bounds the whole end of the sinks. The recorder bounds its own wait: it fails a write in flight
 * after 1 s without any recording write completing in the process (a hung disk), and waits at most
 * 10 s while writes complete (a queue: many sessions ending at once; batch-writer.ts drain()).
 */
const DEFAULT_SINK_END_TIMEOUT_MS = 12_000;

export class Relay {
  private open = true;
  private bytesIn = 0;
  private bytesOut = 0;
  private leaveClock = (): void => {};
  private warningTimer: NodeJS.Timeout | undefined;
  private cutRequest: { reason: EndReason; detail?: string } | undefined;
  private wake: (() => void) | undefined;
  private sinksEnding: Promise<string | undefined> | undefined;
  /** Set while a completed command's recording is being completed: a cut then still reaches the agent. */
  private lateCut: ((cut: { reason: EndReason; detail?: string }) => void) | undefined;

  constructor(private readonly opts: RelayOptions) {}

  /** Cuts the session now (revocation, shutdown, failed sink). Idempotent; the first reason wins. */
  cut(reason: EndReason, detail?: string): void {
    if (!this.open) {
      this.lateCut?.({ reason, ...(detail ? { detail } : {}) });
      return;
    }
    this.open = false;
    this.cutRequest = { reason, ...(detail ? { detail } : {}) };
    this.leaveClock();
    clearTimeout(this.warningTimer);
    // Nothing passes from here on (every chunk checks `open`). The agent's Status goes first and
    // upstream is torn down on the loop's next turn (or once the Status is out, if sooner): a
    // deadline that cuts 200 sessions at once sends 200 Statuses before 200 teardowns.
    setImmediate(() => this.destroyUpstream());
    this.wake?.();
  }

  private upstreamDestroyed = false;

  private destroyUpstream(): void {
    if (this.upstreamDestroyed) return;
    this.upstreamDestroyed = true;
    this.opts.upstream.destroy();
  }

  private pastDeadline(now = Date.now()): boolean {
    return this.opts.deadline !== undefined && now >= this.opts.deadline;
  }

  /** Runs every sink for one event; a sink failure cuts the session before the bytes move. */
  private observe(event: (sink: SessionSink) => void): boolean {
    try {
      for (const sink of this.opts.sinks) event(sink);
      return true;
    } catch (err) {
      this.cut('recording-failed', (err as Error).message);
      return false;
    }
  }

  /** observe() for one relayed chunk, without a closure per chunk (this runs for every chunk). */
  private record(channel: DataChannel, chunk: Buffer): boolean {
    try {
      for (const sink of this.opts.sinks) sink[channel]?.(chunk);
      return true;
    } catch (err) {
      this.cut('recording-failed', (err as Error).message);
      return false;
    }
  }

  /** Undefined when every sink can take more now; else when all of them can. */
  private sinksReady(): Promise<unknown> | undefined {
    let waits: Promise<void>[] | undefined;
    for (const sink of this.opts.sinks) {
      const w = sink.ready?.();
      if (w) (waits ??= []).push(w);
    }
    return waits && Promise.all(waits);
  }

  /**
   * Forwards one readable into one writable, checking the cut and the deadline per chunk. The
   * source is paused while the writable or a sink is full, and resumed once neither is; per chunk
   * that costs a counter, not a promise.
   */
  private forward(from: Readable, to: Writable | null, channel: DataChannel): Promise<void> {
    return new Promise((resolve) => {
      let holds = 0;
      const release = (): void => {
        if (--holds === 0) from.resume();
      };
      const hold = (): void => {
        if (holds++ === 0) from.pause();
      };
      from.on('data', (chunk: Buffer) => {
        // Any session's chunk past an instant cuts every session due at it (deadline-clock.ts);
        // `now` is read again if it did (those cuts take time).
        const now = deadlines.poll(Date.now());
        if (!this.open) return;
        if (this.pastDeadline(now)) {
          this.cut('expired');
          return;
        }
        if (!this.record(channel, chunk)) return;
        if (channel === 'stdin') this.bytesIn += chunk.length;
        else this.bytesOut += chunk.length;
        if (to && !to.write(chunk)) {
          hold();
          to.once('drain', release);
        }
        // A sink whose unwritten batch is full holds this stream like a slow receiver does (a
        // sink that fails cuts the session through onFailure; resuming then relays nothing).
        const recorded = this.sinksReady();
        if (recorded) {
          hold();
          recorded.then(release, release);
        }
      });
      from.once('end', resolve);
      from.once('close', resolve);
      from.once('error', () => resolve());
    });
  }

  async run(): Promise<SessionEnd> {
    const { agent, upstream, sinks } = this.opts;
    // On the clock before anything can cut (a recording that has failed already cuts in onFailure):
    // a cut leaves the clock, so an entry added after one would stay there until its deadline.
    if (this.opts.deadline !== undefined) {
      if (this.pastDeadline()) this.cut('expired');
      else this.leaveClock = deadlines.add(this.opts.deadline, () => this.cut('expired'));
    }
    // A batched write that fails after its chunks were relayed cuts the session at that moment.
    for (const sink of sinks) sink.onFailure?.((err) => this.cut('recording-failed', err.message));
    const warning = this.opts.warning;
    if (warning && warning.at > Date.now()) {
      this.warningTimer = setTimeout(() => {
        if (!this.open) return;
        // A loop stalled across the deadline runs this timer late: past the deadline nothing more
        // reaches the agent, not even the bastion's own words.
        if (this.pastDeadline()) return this.cut('expired');
        if (!this.observe((s) => s.marker?.(`warning: ${warning.message}`))) return;
        (agent.stderr ?? agent.stdout)?.write(`\r\n[kube-bastion] ${warning.message}\r\n`);
      }, warning.at - Date.now());
    }
    agent.onResize((size) => {
      if (!this.open) return;
      if (this.pastDeadline()) return this.cut('expired');
      if (!this.observe((s) => s.resize?.(size))) return;
      upstream.resize(size);
    });
    // stdin runs on its own; its end (the client's half-close) is passed upstream while the session
    // is open and, like a byte, not at or after the deadline: a command waiting for EOF would go on.
    if (agent.stdin) {
      void this.forward(agent.stdin, upstream.stdin, 'stdin').then(() => {
        if (this.open && this.pastDeadline()) this.cut('expired');
        if (this.open) upstream.stdin?.end();
      });
    }
    const outputs = Promise.all([
      this.forward(upstream.stdout, agent.stdout, 'stdout'),
      // With a TTY the agent has no stderr stream; upstream sends none either.
      this.forward(upstream.stderr, agent.stderr ?? agent.stdout, 'stderr'),
    ]);

    const cutSignal = new Promise<'cut'>((resolve) => {
      this.wake = () => resolve('cut');
      if (!this.open) resolve('cut');
    });
    const completed = upstream.status.then(async (status) => {
      await outputs;
      return status;
    });
    const winner = await Promise.race([
      completed.then((status) => ({ kind: 'done' as const, status })),
      agent.closed.then(() => ({ kind: 'client' as const })),
      cutSignal.then(() => ({ kind: 'cut' as const })),
    ]);

    clearTimeout(this.warningTimer);
    let end: SessionEnd;
    if (winner.kind === 'done' && this.open && !this.pastDeadline()) {
      this.open = false;
      this.leaveClock();
      // A connection lost without a Status is not a completed command: the record says so.
      const lost = upstream.statusFromUpstream === false;
      const code = lost ? null : exitCodeOf(winner.status);
      const status = lost ? this.opts.cutStatus('upstream-closed', winner.status.message) : winner.status;
      end = { reason: lost ? 'upstream-closed' : 'completed', exitCode: code, status, bytesIn: this.bytesIn, bytesOut: this.bytesOut };
      if (lost) this.observe((s) => s.marker?.(`cutoff: upstream-closed (${winner.status.message ?? 'no Status'})`));
      // The command is over: its recording is complete and on disk before the agent hears how it
      // ended. (A cut tells the agent first: its close must not wait for a flush.) A recording that
      // cannot be completed, or a cut that comes while it is, is what the agent hears instead.
      const flushed = await this.endSinksCuttable(end);
      if (flushed.kind !== 'ok') {
        const reason: EndReason = flushed.kind === 'cut' ? flushed.reason : 'recording-failed';
        const cutStatus = this.opts.cutStatus(reason, flushed.detail);
        end = { ...end, reason, exitCode: null, status: cutStatus };
        await this.finishAgent(cutStatus);
        if (flushed.kind === 'cut') await this.endSinks(end);
        return end;
      }
      await this.finishAgent(status);
    } else if (winner.kind === 'client') {
      this.open = false;
      this.leaveClock();
      upstream.destroy();
      // Gone at or after the deadline, before its timer ran (a stalled loop): the approval ended first.
      const reason: EndReason = this.pastDeadline() ? 'expired' : 'client-closed';
      const status = this.opts.cutStatus(reason);
      end = { reason, exitCode: null, status, bytesIn: this.bytesIn, bytesOut: this.bytesOut };
    } else {
      if (this.open) this.cut('expired');
      const { reason, detail } = this.cutRequest ?? { reason: 'expired' as EndReason };
      const status = this.opts.cutStatus(reason, detail);
      this.observe((s) => s.marker?.(`cutoff: ${reason}${detail ? ` (${detail})` : ''}`));
      end = { reason, exitCode: null, status, bytesIn: this.bytesIn, bytesOut: this.bytesOut };
      await this.finishAgent(status);
      this.destroyUpstream();
    }
    await this.endSinks(end);
    return end;
  }

  /**
   * Ends every sink once (the first call wins), waiting at most `sinkEndTimeoutMs` (a disk that
   * never answers must not keep the session from ending). Resolves with the first failure, if any.
   */
  private endSinks(end: SessionEnd): Promise<string | undefined> {
    // A second call (a cut that came while a completed command's recording was being completed)
    // waits for the same end: the session's row must not be ended before its recording's hashes.
    this.sinksEnding ??= this.endSinksOnce(end);
    return this.sinksEnding;
  }

  private endSinksOnce(end: SessionEnd): Promise<string | undefined> {
    return endSinksWithin(this.opts.sinks, end, this.opts.sinkEndTimeoutMs);
  }

  /** endSinks on the completed path, where a cut (revocation, expiry, shutdown) may still come. */
  private async endSinksCuttable(end: SessionEnd): Promise<{ kind: 'ok' } | { kind: 'failed'; detail: string } | { kind: 'cut'; reason: EndReason; detail?: string }> {
    const cut = new Promise<{ reason: EndReason; detail?: string }>((resolve) => (this.lateCut = resolve));
    const result = await Promise.race([this.endSinks(end).then((failure) => ({ failure })), cut.then((c) => ({ cut: c }))]);
    this.lateCut = undefined;
    if ('cut' in result) return { kind: 'cut', reason: result.cut.reason, ...(result.cut.detail ? { detail: result.cut.detail } : {}) };
    return result.failure === undefined ? { kind: 'ok' } : { kind: 'failed', detail: result.failure };
  }

  private async finishAgent(status: Status): Promise<void> {
    const timeout = this.opts.finishTimeoutMs ?? 1000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.opts.agent.finish(status),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.opts.agent.destroy(new Error('client did not take the final status in time'));
          resolve();
        }, timeout);
      }),
    ]);
    clearTimeout(timer);
  }
}

/**
 * Ends every sink in order, waiting at most `timeoutMs` in all: a disk that never answers must not
 * keep a session (or a refusal) from ending. Resolves with the first failure, if any.
 */
export async function endSinksWithin(sinks: readonly SessionSink[], end: SessionEnd, timeoutMs = DEFAULT_SINK_END_TIMEOUT_MS): Promise<string | undefined> {
  let failure: string | undefined;
  const all = (async () => {
    for (const sink of sinks) {
      try {
        await sink.end?.(end);
      } catch (err) {
        failure ??= (err as Error).message;
      }
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([all.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)))]);
  clearTimeout(timer);
  return done ? failure : `the recording was not completed within ${timeoutMs} ms`;
}
