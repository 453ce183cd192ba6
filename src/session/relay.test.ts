// The relay between the agent's accepted streams and the upstream session, over fakes of both
// sides built from PassThrough streams: what crosses, what does not after a cut, how it ends.
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SessionEnd, SessionSink, EndReason } from '../model/session.js';
import type { TerminalSize } from '../protocol/resize.js';
import { apiStatus, exitCodeStatus, successStatus, type Status } from '../protocol/status.js';
import type { ServerStreams } from '../protocol/streams.js';
import { v5 } from '../protocol/versions/index.js';
import { deadlines } from '../approvals/deadline-clock.js';
import { endSinksWithin, Relay, type RelayOptions, type UpstreamStreams } from './relay.js';

/** Collects everything written into a PassThrough (the far side of a relayed stream). */
function collect(stream: PassThrough): { text: () => string; bytes: () => Buffer; ended: () => boolean } {
  const chunks: Buffer[] = [];
  let ended = false;
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => (ended = true));
  return { text: () => Buffer.concat(chunks).toString(), bytes: () => Buffer.concat(chunks), ended: () => ended };
}

/** The agent's side as a transport would hand it over; the test plays the client. */
class FakeAgent implements ServerStreams {
  readonly transport = 'websocket' as const;
  readonly protocol = v5;
  readonly protocolName = 'v5.channel.k8s.io';
  readonly options;
  readonly stdin = new PassThrough();
  readonly stdout = new PassThrough();
  readonly stderr: PassThrough | null;
  readonly closed: Promise<void>;
  /** What the client sees on each output. */
  readonly seenStdout = collect(this.stdout);
  readonly seenStderr: ReturnType<typeof collect> | null;
  finished: Status[] = [];
  destroyed: (Error | undefined)[] = [];
  /** A client that never takes the final Status. */
  stallFinish = false;
  private resizeListeners = new Set<(size: TerminalSize) => void>();
  private closeNow!: () => void;

  constructor(opts: { tty?: boolean } = {}) {
    this.options = { stdin: true, stdout: true, stderr: !opts.tty, tty: opts.tty === true };
    this.stderr = opts.tty ? null : new PassThrough();
    this.seenStderr = this.stderr ? collect(this.stderr) : null;
    this.closed = new Promise((resolve) => (this.closeNow = resolve));
  }

  onResize(listener: (size: TerminalSize) => void): () => void {
    this.resizeListeners.add(listener);
    return () => this.resizeListeners.delete(listener);
  }

  /** The client sends a terminal size. */
  resize(size: TerminalSize): void {
    for (const l of this.resizeListeners) l(size);
  }

  finish(status: Status): Promise<void> {
    this.finished.push(status);
    if (this.stallFinish) return new Promise(() => undefined);
    this.stdout.end();
    this.stderr?.end();
    this.closeNow();
    return Promise.resolve();
  }

  destroy(reason?: Error): void {
    this.destroyed.push(reason);
    this.closeNow();
  }

  /** The client goes away (peer close). */
  peerClose(): void {
    this.closeNow();
  }
}

/** The upstream exec session; the test plays the container. */
class FakeUpstream implements UpstreamStreams {
  readonly stdin = new PassThrough();
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly status: Promise<Status>;
  readonly closed: Promise<void>;
  readonly seenStdin = collect(this.stdin);
  resizes: TerminalSize[] = [];
  destroyCalls = 0;
  private settle!: (s: Status) => void;
  private closeNow!: () => void;

  constructor() {
    this.status = new Promise((resolve) => (this.settle = resolve));
    this.closed = new Promise((resolve) => (this.closeNow = resolve));
  }

  resize(size: TerminalSize): void {
    this.resizes.push(size);
  }

  /**
   * Like the real session: the status becomes a Failure and the connection goes. The streams are
   * left alone on purpose, so the tests can prove the relay itself stops bytes after a cut.
   */
  destroy(): void {
    this.destroyCalls++;
    this.settle(apiStatus(500, 'InternalError', 'upstream session destroyed'));
    this.closeNow();
  }

  /** The command exits: outputs end, then the Status arrives. */
  exit(status: Status): void {
    this.stdout.end();
    this.stderr.end();
    this.settle(status);
    this.closeNow();
  }
}

/** A sink that keeps every event in order, as `kind:payload` strings. */
function recordingSink(): SessionSink & { events: string[]; ends: SessionEnd[] } {
  const events: string[] = [];
  const ends: SessionEnd[] = [];
  return {
    events,
    ends,
    stdin: (c) => events.push(`stdin:${c.toString()}`),
    stdout: (c) => events.push(`stdout:${c.toString()}`),
    stderr: (c) => events.push(`stderr:${c.toString()}`),
    resize: (s) => events.push(`resize:${s.width}x${s.height}`),
    marker: (label) => events.push(`marker:${label}`),
    end: (e) => {
      ends.push(e);
    },
  };
}

const cutStatus = (reason: EndReason, detail?: string): Status =>
  apiStatus(403, 'Forbidden', `cut: ${reason}${detail ? ` (${detail})` : ''}`, { causes: [{ reason: 'KubeBastionSessionCut', message: reason }] });

/** Lets stream events (nextTick / microtasks) settle without depending on wall-clock time. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};

function setup(over: Partial<RelayOptions> & { tty?: boolean } = {}) {
  const agent = new FakeAgent({ tty: over.tty === true });
  const upstream = new FakeUpstream();
  const sink = recordingSink();
  const cutCalls: [EndReason, string | undefined][] = [];
  const relay = new Relay({
    agent,
    upstream,
    sinks: [sink],
    cutStatus: (reason, detail) => {
      cutCalls.push([reason, detail]);
      return cutStatus(reason, detail);
    },
    ...over,
  });
  return { agent, upstream, sink, relay, cutCalls };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('Relay: a session that completes', () => {
  it('relays stdin, stdout and stderr byte for byte, passes the exit Status through and counts bytes', async () => {
    const { agent, upstream, sink, relay } = setup();
    const run = relay.run();
    agent.stdin.write('hello ');
    agent.stdin.write(Buffer.from([0, 1, 2, 255]));
    agent.stdin.end();
    upstream.stdout.write('out-1\n');
    upstream.stderr.write('err-1\n');
    upstream.stdout.write('out-2\n');
    await settle();
    // The client's half-close reaches the container.
    expect(upstream.seenStdin.ended()).toBe(true);
    expect(upstream.seenStdin.bytes()).toEqual(Buffer.concat([Buffer.from('hello '), Buffer.from([0, 1, 2, 255])]));
    upstream.exit(exitCodeStatus(3));
    const end = await run;

    expect(end).toEqual({ reason: 'completed', exitCode: 3, status: exitCodeStatus(3), bytesIn: 10, bytesOut: 18 });
    expect(agent.finished).toEqual([exitCodeStatus(3)]);
    expect(agent.seenStdout.text()).toBe('out-1\nout-2\n');
    expect(agent.seenStderr!.text()).toBe('err-1\n');
    expect(upstream.destroyCalls).toBe(0);
    expect(sink.ends).toEqual([end]);
    expect(sink.events.filter((e) => !e.startsWith('stdin:'))).toEqual(['stdout:out-1\n', 'stderr:err-1\n', 'stdout:out-2\n']);
    expect(sink.events.filter((e) => e.startsWith('stdin:'))).toEqual(['stdin:hello ', `stdin:${Buffer.from([0, 1, 2, 255]).toString()}`]);
  });

  it('a Success Status ends with exit code 0', async () => {
    const { agent, upstream, relay } = setup();
    const run = relay.run();
    upstream.stdout.write('done');
    upstream.exit(successStatus());
    const end = await run;
    expect(end).toMatchObject({ reason: 'completed', exitCode: 0, status: successStatus(), bytesIn: 0, bytesOut: 4 });
    expect(agent.finished).toEqual([successStatus()]);
  });

  it('with a TTY (no agent stderr) upstream stderr goes to the agent stdout', async () => {
    const { agent, upstream, relay } = setup({ tty: true });
    const run = relay.run();
    upstream.stdout.write('a');
    await settle();
    upstream.stderr.write('b');
    await settle();
    upstream.exit(successStatus());
    await run;
    expect(agent.stderr).toBeNull();
    expect(agent.seenStdout.text()).toBe('ab');
  });

  it('forwards terminal sizes upstream and to the sinks', async () => {
    const { agent, upstream, sink, relay } = setup({ tty: true });
    const run = relay.run();
    agent.resize({ width: 120, height: 40 });
    agent.resize({ width: 80, height: 24 });
    upstream.exit(successStatus());
    await run;
    expect(upstream.resizes).toEqual([
      { width: 120, height: 40 },
      { width: 80, height: 24 },
    ]);
    expect(sink.events).toEqual(['resize:120x40', 'resize:80x24']);
  });

  it('drops the client that does not take the final Status after finishTimeoutMs', async () => {
    const { agent, upstream, relay } = setup({ finishTimeoutMs: 50 });
    agent.stallFinish = true;
    const run = relay.run();
    upstream.exit(successStatus());
    const end = await run;
    expect(end.reason).toBe('completed');
    expect(agent.finished).toEqual([successStatus()]);
    expect(agent.destroyed.map((e) => e?.message)).toEqual(['client did not take the final status in time']);
  });
});

describe('Relay: the deadline', () => {
  const T0 = Date.parse('2025-03-01T10:00:00.000Z');

  it('cuts at the deadline: nothing relayed afterwards either way, upstream destroyed, the agent gets the cut Status', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    const { agent, upstream, sink, relay, cutCalls } = setup({ deadline: T0 + 1000 });
    let end: SessionEnd | undefined;
    const run = relay.run().then((e) => (end = e));
    agent.stdin.write('before-in');
    upstream.stdout.write('before-out');
    await settle();
    await vi.advanceTimersByTimeAsync(999);
    expect(end).toBeUndefined();
    expect(upstream.destroyCalls).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    await run;
    expect(end).toEqual({ reason: 'expired', exitCode: null, status: cutStatus('expired'), bytesIn: 9, bytesOut: 10 });
    expect(cutCalls).toEqual([['expired', undefined]]);
    expect(agent.finished).toEqual([cutStatus('expired')]);
    expect(upstream.destroyCalls).toBe(1);

    // A container and a client that keep going get nothing through.
    agent.stdin.write('after-in');
    upstream.stdout.write('after-out');
    upstream.stderr.write('after-err');
    await settle();
    expect(upstream.seenStdin.text()).toBe('before-in');
    expect(agent.seenStdout.text()).toBe('before-out');
    expect(agent.seenStderr!.text()).toBe('');
    expect(sink.events).toEqual(['stdin:before-in', 'stdout:before-out', 'marker:cutoff: expired']);
    expect(sink.ends).toEqual([end]);
  });

  it('a chunk that arrives after the deadline, before the timer has fired, is not relayed', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    const { agent, upstream, sink, relay } = setup({ deadline: T0 + 1000 });
    const run = relay.run();
    upstream.stdout.write('on-time');
    await settle();
    // The clock passes the deadline; the deadline timer has not run yet.
    vi.setSystemTime(T0 + 1000);
    upstream.stdout.write('late-out');
    agent.stdin.write('late-in');
    await settle();
    const end = await run;
    expect(end.reason).toBe('expired');
    expect(agent.seenStdout.text()).toBe('on-time');
    expect(upstream.seenStdin.text()).toBe('');
    expect(end.bytesOut).toBe(7);
    expect(end.bytesIn).toBe(0);
    expect(sink.events).toEqual(['stdout:on-time', 'marker:cutoff: expired']);
    expect(upstream.destroyCalls).toBe(1);
  });

  it("one session's chunk after the deadline cuts every session due at it, before any timer has run (a loop busy relaying)", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'setImmediate'], now: T0 });
    const busy = setup({ deadline: T0 + 1000 });
    const quiet = setup({ deadline: T0 + 1000 });
    const later = setup({ deadline: T0 + 5000 });
    const ends: SessionEnd[] = [];
    for (const s of [busy, quiet, later]) void s.relay.run().then((e) => ends.push(e));
    quiet.upstream.stdout.write('on-time');
    await Promise.resolve();
    // The clock passes the deadline; no timer runs (faked and not advanced), only busy's chunk is handled.
    vi.setSystemTime(T0 + 1000);
    busy.upstream.stdout.write('late');
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(busy.agent.finished).toEqual([cutStatus('expired')]);
    expect(quiet.agent.finished).toEqual([cutStatus('expired')]);
    expect(later.agent.finished).toEqual([]);
    expect(busy.agent.seenStdout.text()).toBe('');
    expect(quiet.agent.seenStdout.text()).toBe('on-time');
    quiet.upstream.stdout.write('after');
    later.upstream.exit(successStatus());
    await vi.runAllTimersAsync();
    expect(quiet.agent.seenStdout.text()).toBe('on-time');
    expect(ends.map((e) => e.reason).sort()).toEqual(['completed', 'expired', 'expired']);
  });

  it("a chunk whose poll ran other sessions' cuts past this session's deadline is not relayed (the time is read again)", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    // Stands for the cuts of many sessions due at T0 + 1000 taking a millisecond of the loop.
    const offSlowCuts = deadlines.add(T0 + 1000, () => vi.setSystemTime(T0 + 1001));
    const { agent, upstream, sink, relay } = setup({ deadline: T0 + 1001 });
    const run = relay.run();
    upstream.stdout.write('on-time');
    await settle();
    vi.setSystemTime(T0 + 1000);
    upstream.stdout.write('at-the-deadline');
    await settle();
    await vi.advanceTimersByTimeAsync(0);
    const end = await run;
    offSlowCuts();
    expect(agent.seenStdout.text()).toBe('on-time');
    expect(end).toMatchObject({ reason: 'expired', bytesOut: 7 });
    expect(sink.events).toEqual(['stdout:on-time', 'marker:cutoff: expired']);
  });

  it('a recording that failed before run() (its onFailure calls at once) cuts, and leaves no deadline on the clock', async () => {
    const held = deadlines.size;
    const failed: SessionSink = { onFailure: (listener) => listener(new Error('cannot write x.raw: EMFILE')) };
    const { agent, relay } = setup({ deadline: Date.now() + 60_000, sinks: [failed] });
    const end = await relay.run();
    expect(end.reason).toBe('recording-failed');
    expect(agent.finished).toEqual([cutStatus('recording-failed', 'cannot write x.raw: EMFILE')]);
    expect(deadlines.size).toBe(held);
  });

  it("the client's half-close after the deadline, before the timer has fired, does not reach the container (its EOF would let the command go on)", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    const { agent, upstream, relay } = setup({ deadline: T0 + 1000 });
    const run = relay.run();
    agent.stdin.write('typed');
    await settle();
    vi.setSystemTime(T0 + 1000);
    agent.stdin.end();
    await settle();
    expect(upstream.seenStdin.ended()).toBe(false);
    const end = await run;
    expect(end).toMatchObject({ reason: 'expired', bytesIn: 5 });
    expect(upstream.seenStdin.text()).toBe('typed');
    expect(upstream.seenStdin.ended()).toBe(false);
  });

  it('a client gone at or after the deadline, before the timer has fired, ends expired (the approval ended first), still without a Status to it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    const { agent, upstream, sink, relay, cutCalls } = setup({ deadline: T0 + 1000 });
    const run = relay.run();
    agent.stdin.write('abc');
    await settle();
    vi.setSystemTime(T0 + 1000);
    agent.peerClose();
    const end = await run;
    expect(end).toEqual({ reason: 'expired', exitCode: null, status: cutStatus('expired'), bytesIn: 3, bytesOut: 0 });
    expect(cutCalls).toEqual([['expired', undefined]]);
    expect(upstream.destroyCalls).toBe(1);
    expect(agent.finished).toEqual([]);
    expect(sink.ends).toEqual([end]);
  });

  it('a deadline already past cuts before anything is relayed', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    const { agent, upstream, relay } = setup({ deadline: T0 - 1 });
    const run = relay.run();
    upstream.stdout.write('never');
    await settle();
    const end = await run;
    expect(end).toMatchObject({ reason: 'expired', bytesOut: 0 });
    expect(agent.seenStdout.text()).toBe('');
    expect(agent.finished).toEqual([cutStatus('expired')]);
  });

  it('an exit Status that arrives after the deadline is not passed through: the session expired', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    const { agent, upstream, relay } = setup({ deadline: T0 + 1000 });
    const run = relay.run();
    vi.setSystemTime(T0 + 1000);
    upstream.exit(exitCodeStatus(0));
    const end = await run;
    expect(end).toMatchObject({ reason: 'expired', exitCode: null, status: cutStatus('expired') });
    expect(agent.finished).toEqual([cutStatus('expired')]);
  });

  it('warns the agent (stderr) and marks the recording before the deadline, once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    const { agent, sink, relay } = setup({ deadline: T0 + 1000, warning: { at: T0 + 600, message: 'approval apr_1 expires in 0.4s' } });
    const run = relay.run();
    await vi.advanceTimersByTimeAsync(599);
    expect(agent.seenStderr!.text()).toBe('');
    expect(sink.events).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(agent.seenStderr!.text()).toBe('\r\n[kube-bastion] approval apr_1 expires in 0.4s\r\n');
    expect(sink.events).toEqual(['marker:warning: approval apr_1 expires in 0.4s']);
    await vi.advanceTimersByTimeAsync(400);
    const end = await run;
    expect(end.reason).toBe('expired');
    expect(sink.events).toEqual(['marker:warning: approval apr_1 expires in 0.4s', 'marker:cutoff: expired']);
    // The warning is the bastion's own text, not the container's output.
    expect(end.bytesOut).toBe(0);
  });

  it('a warning whose timer runs only after the deadline (a stalled loop) is not sent; the session is cut expired', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    const { agent, sink, relay } = setup({ deadline: T0 + 1000, warning: { at: T0 + 600, message: 'approval apr_1 expires in 0.4s' } });
    let end: SessionEnd | undefined;
    const run = relay.run().then((e) => (end = e));
    // The event loop stalls across the deadline: the warning timer is the first to run afterwards.
    vi.setSystemTime(T0 + 1000);
    await vi.advanceTimersByTimeAsync(600);
    await settle();
    expect(Date.now()).toBeGreaterThan(T0 + 1000);
    expect(agent.seenStderr!.text()).toBe('');
    expect(sink.events).not.toContain('marker:warning: approval apr_1 expires in 0.4s');
    await vi.advanceTimersByTimeAsync(1000);
    await run;
    expect(end?.reason).toBe('expired');
    expect(agent.seenStderr!.text()).toBe('');
  });

  it('a terminal size that arrives after the deadline, before the timer has fired, is not forwarded upstream', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    const { agent, upstream, sink, relay } = setup({ tty: true, deadline: T0 + 1000 });
    const run = relay.run();
    agent.resize({ width: 80, height: 24 });
    vi.setSystemTime(T0 + 1000);
    agent.resize({ width: 1, height: 1 });
    await settle();
    const end = await run;
    expect(end.reason).toBe('expired');
    expect(upstream.resizes).toEqual([{ width: 80, height: 24 }]);
    expect(sink.events).toEqual(['resize:80x24', 'marker:cutoff: expired']);
  });

  it('with a TTY the warning goes to stdout', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    const { agent, upstream, relay } = setup({ tty: true, deadline: T0 + 1000, warning: { at: T0 + 500, message: 'soon' } });
    const run = relay.run();
    await vi.advanceTimersByTimeAsync(500);
    await settle();
    expect(agent.seenStdout.text()).toBe('\r\n[kube-bastion] soon\r\n');
    upstream.exit(successStatus());
    expect((await run).reason).toBe('completed');
  });

  it('no warning once the session has ended', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
    const { agent, upstream, sink, relay } = setup({ deadline: T0 + 1000, warning: { at: T0 + 500, message: 'soon' } });
    const run = relay.run();
    upstream.exit(successStatus());
    await run;
    await vi.advanceTimersByTimeAsync(2000);
    expect(agent.seenStderr!.text()).toBe('');
    expect(sink.events).toEqual([]);
  });
});

describe('Relay: cuts', () => {
  it("cut('revoked') mid-stream: no byte after the cut, upstream destroyed, ends revoked with the cut Status", async () => {
    const { agent, upstream, sink, relay, cutCalls } = setup();
    const run = relay.run();
    agent.stdin.write('ls\n');
    upstream.stdout.write('file-a\n');
    await settle();
    expect(agent.seenStdout.text()).toBe('file-a\n');
    relay.cut('revoked');
    agent.stdin.write('rm -rf /\n');
    upstream.stdout.write('file-b\n');
    upstream.stderr.write('oops\n');
    const end = await run;
    await settle();
    expect(upstream.destroyCalls).toBe(1);
    expect(end).toEqual({ reason: 'revoked', exitCode: null, status: cutStatus('revoked'), bytesIn: 3, bytesOut: 7 });
    expect(cutCalls).toEqual([['revoked', undefined]]);
    expect(agent.finished).toEqual([cutStatus('revoked')]);
    expect(upstream.seenStdin.text()).toBe('ls\n');
    expect(upstream.seenStdin.ended()).toBe(false); // a cut is not the client's EOF
    expect(agent.seenStdout.text()).toBe('file-a\n');
    expect(agent.seenStderr!.text()).toBe('');
    expect(sink.events).toEqual(['stdin:ls\n', 'stdout:file-a\n', 'marker:cutoff: revoked']);
    expect(sink.ends).toEqual([end]);
  });

  it('200 relays cut in one synchronous run: every agent has its Status before any upstream is torn down, then all are', async () => {
    const all = Array.from({ length: 200 }, () => setup());
    const order: string[] = [];
    for (const [i, { agent, upstream }] of all.entries()) {
      const finish = agent.finish.bind(agent);
      agent.finish = (status) => (order.push(`status:${i}`), finish(status));
      const destroy = upstream.destroy.bind(upstream);
      upstream.destroy = () => (order.push(`destroy:${i}`), destroy());
    }
    const runs = all.map(({ relay }) => relay.run());
    await settle();
    // The lease's listeners run one after another in one turn of the loop, as at a deadline.
    for (const { relay } of all) relay.cut('expired');
    // Nothing passes once cut, though upstream is still there for a moment.
    all[0]!.upstream.stdout.write('late');
    const ends = await Promise.all(runs);
    await settle();
    expect(ends.every((e) => e.reason === 'expired' && e.bytesOut === 0)).toBe(true);
    expect(all[0]!.agent.seenStdout.text()).toBe('');
    expect(order.slice(0, 200).every((o) => o.startsWith('status:'))).toBe(true);
    expect(order.slice(200).sort()).toEqual(all.map((_, i) => `destroy:${i}`).sort());
    expect(all.every(({ upstream }) => upstream.destroyCalls === 1)).toBe(true);
  });

  it('the first cut reason wins; later cuts change nothing', async () => {
    const { agent, upstream, relay } = setup();
    const run = relay.run();
    relay.cut('shutdown');
    relay.cut('revoked');
    const end = await run;
    expect(end.reason).toBe('shutdown');
    expect(agent.finished).toEqual([cutStatus('shutdown')]);
    expect(upstream.destroyCalls).toBe(1);
  });

  it('a cut before run() starts still ends the session without relaying', async () => {
    const { agent, upstream, relay } = setup();
    relay.cut('revoked');
    upstream.stdout.write('x');
    const end = await relay.run();
    expect(end.reason).toBe('revoked');
    expect(agent.seenStdout.text()).toBe('');
  });

  it('resizes after a cut are not forwarded', async () => {
    const { agent, upstream, relay } = setup({ tty: true });
    const run = relay.run();
    relay.cut('revoked');
    agent.resize({ width: 10, height: 10 });
    await run;
    expect(upstream.resizes).toEqual([]);
  });
});

describe('Relay: the client goes away', () => {
  it('destroys upstream and ends client-closed, without a final Status to the agent', async () => {
    const { agent, upstream, sink, relay, cutCalls } = setup();
    const run = relay.run();
    agent.stdin.write('abc');
    upstream.stdout.write('12345');
    await settle();
    agent.peerClose();
    const end = await run;
    expect(end).toEqual({ reason: 'client-closed', exitCode: null, status: cutStatus('client-closed'), bytesIn: 3, bytesOut: 5 });
    expect(cutCalls).toEqual([['client-closed', undefined]]);
    expect(upstream.destroyCalls).toBe(1);
    expect(agent.finished).toEqual([]);
    upstream.stdout.write('later');
    agent.stdin.write('later');
    await settle();
    expect(agent.seenStdout.text()).toBe('12345');
    expect(upstream.seenStdin.text()).toBe('abc');
    expect(sink.ends).toEqual([end]);
  });
});

describe('Relay: a sink that throws', () => {
  it('cuts with recording-failed before the failing chunk moves; nothing after it is relayed', async () => {
    const { agent, upstream, relay, cutCalls } = setup({
      sinks: [
        {
          stdout: (c) => {
            if (c.toString().includes('BOOM')) throw new Error('disk full');
          },
        },
      ],
    });
    const run = relay.run();
    upstream.stdout.write('fine\n');
    await settle();
    upstream.stdout.write('BOOM\n');
    await settle();
    upstream.stdout.write('after\n');
    agent.stdin.write('typed');
    const end = await run;
    await settle();
    expect(end).toEqual({
      reason: 'recording-failed',
      exitCode: null,
      status: cutStatus('recording-failed', 'disk full'),
      bytesIn: 0,
      bytesOut: 5,
    });
    expect(cutCalls).toEqual([['recording-failed', 'disk full']]);
    expect(agent.seenStdout.text()).toBe('fine\n');
    expect(upstream.seenStdin.text()).toBe('');
    expect(agent.finished).toEqual([cutStatus('recording-failed', 'disk full')]);
    expect(upstream.destroyCalls).toBe(1);
  });

  it('a stdin sink failure keeps the keystroke from reaching the container', async () => {
    const { agent, upstream, relay } = setup({
      sinks: [
        {
          stdin: () => {
            throw new Error('cannot write the raw sidecar');
          },
        },
      ],
    });
    const run = relay.run();
    agent.stdin.write('x');
    const end = await run;
    await settle();
    expect(end.reason).toBe('recording-failed');
    expect(upstream.seenStdin.text()).toBe('');
    expect(end.bytesIn).toBe(0);
  });

  it('a sink whose end() throws does not keep the others from ending', async () => {
    const second = recordingSink();
    const { upstream, relay } = setup({
      sinks: [
        {
          end: () => {
            throw new Error('flush failed');
          },
        },
        second,
      ],
    });
    const run = relay.run();
    upstream.exit(successStatus());
    const end = await run;
    // The other sink ended; the session did not complete: its recording could not be finished.
    expect(second.ends.map((e) => e.reason)).toEqual(['completed']);
    expect({ reason: end.reason, exitCode: end.exitCode }).toEqual({ reason: 'recording-failed', exitCode: null });
    expect(end.status.message).toContain('flush failed');
  });
});

describe('endSinksWithin (the relay and a refusal before the relay)', () => {
  it('a sink whose end never settles is given up after the bound; the sinks before it ended, with their failure kept', async () => {
    const ended: string[] = [];
    const sinks = [
      { end: () => void ended.push('first') },
      {
        end: () => {
          ended.push('second');
          throw new Error('second failed');
        },
      },
      { end: () => new Promise<void>(() => {}) },
    ];
    const t0 = Date.now();
    const failure = await endSinksWithin(sinks, { reason: 'expired', exitCode: null, status: cutStatus('expired'), bytesIn: 0, bytesOut: 0 }, 50);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(ended).toEqual(['first', 'second']);
    expect(failure).toBe('the recording was not completed within 50 ms');
  });

  it('resolves with the first failure once every sink ended', async () => {
    const failure = await endSinksWithin(
      [
        {
          end: () => {
            throw new Error('disk full');
          },
        },
        { end: async () => {} },
      ],
      { reason: 'completed', exitCode: 0, status: cutStatus('expired'), bytesIn: 0, bytesOut: 0 },
      1000,
    );
    expect(failure).toBe('disk full');
  });
});

describe('Relay: a cut while a completed command is being recorded', () => {
  it('the agent hears the cut at once, but run() ends only once the recording has (its hashes precede the row)', async () => {
    let finishRecording!: () => void;
    const recordingDone = new Promise<void>((r) => (finishRecording = r));
    let recordingEnded = false;
    const { agent, upstream, relay } = setup({
      sinks: [
        {
          end: async () => {
            await recordingDone;
            recordingEnded = true;
          },
        },
      ],
    });
    let runEnded = false;
    const run = relay.run().then((end) => {
      runEnded = true;
      return end;
    });
    upstream.exit(successStatus());
    await settle();
    relay.cut('revoked');
    await settle();
    // Told at once...
    expect(agent.finished.map((st) => st.message)).toEqual(['cut: revoked']);
    // ...but the session is not over while its recording is still being completed.
    expect(runEnded).toBe(false);
    finishRecording();
    const end = await run;
    expect(recordingEnded).toBe(true);
    expect(end.reason).toBe('revoked');
  });
});

describe('Relay: backpressure from a sink', () => {
  it('a sink whose batch is full holds the stream until it can take more; then every byte follows in order', async () => {
    const { agent, upstream, sink, relay } = setup();
    let release!: () => void;
    let full = true;
    const gate = new Promise<void>((resolve) => (release = resolve));
    sink.ready = () => (full ? gate : undefined);
    const run = relay.run();
    upstream.stdout.write('first,');
    await settle();
    expect(agent.seenStdout.text()).toBe('first,');
    // The chunk that filled the batch was relayed; the stream is held from there on.
    expect(upstream.stdout.isPaused()).toBe(true);
    upstream.stdout.write('second');
    await settle();
    expect(agent.seenStdout.text()).toBe('first,');
    full = false;
    release();
    await settle();
    expect(upstream.stdout.isPaused()).toBe(false);
    expect(agent.seenStdout.text()).toBe('first,second');
    upstream.exit(successStatus());
    const end = await run;
    expect(end.reason).toBe('completed');
    expect(end.bytesOut).toBe('first,second'.length);
    expect(sink.events.filter((e) => e.startsWith('stdout:')).join('')).toBe('stdout:first,stdout:second');
  });
});
