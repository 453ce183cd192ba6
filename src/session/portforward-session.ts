// One port-forward session through the bastion, in the same order as exec (stream-session.ts):
//   gate decided (the caller holds a lease) -> the agent's transport accepted (any of the three
//   forms) -> the session row and its recorder -> the lease re-checked -> only then upstream dialed
//   (plain SPDY, which every API server accepts) -> each forwarded connection relayed on its own.
// Each connection is checked against the approval's ports, written to the store and given its own
// raw sidecar before a byte moves; a connection outside the ports is refused on its error stream
// and recorded as refused. At the lease's end (expiry, revocation, agent revoked, shutdown) every
// open connection is cut with the reason on its error stream and the session closes.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { isBastionError, UpstreamRefusal } from '../errors/index.js';
import type { Logger } from '../observability/log.js';
import { successStatus, type Status } from '../protocol/status.js';
import { acceptPortForward, type ForwardStream, type PortForwardServer } from '../transport/portforward/index.js';
import type { ApprovalLease } from '../approvals/lease.js';
import { deadlines } from '../approvals/deadline-clock.js';
import { portAllowed } from '../model/scope.js';
import type { ForwardedConnectionEnd, ForwardedConnectionStart } from '../model/forward.js';
import type { EndReason, SessionEnd, SessionInfo, SessionSink } from '../model/session.js';
import type { ForwardOutcome } from '../model/vocabulary.js';
import type { ForwardRecording, ForwardRecordingResult } from '../recording/forward-recorder.js';
import { dialUpstreamPortForward, type UpstreamForward, type UpstreamPortForward } from '../upstream/portforward.js';
import type { UpstreamTarget } from '../upstream/upstream.js';
import { impersonationHeaders, type UpstreamIdentity } from '../upstream/headers.js';
import { leaseEndDetail, outcome, raceSetup, STATUS_GRACE_MS, type SessionOutcome } from './setup.js';
import type { SessionRowPort } from './stream-session.js';

/** Who and what a connection's audit row names. */
export interface ForwardedConnectionAbout {
  port: number;
  approvalId: string | null;
  agent: { id: string; name: string };
}

/** The store's record of each forwarded connection. */
export interface ForwardRowPort {
  connectionStarted(start: ForwardedConnectionStart): Promise<void>;
  /** `about`: what the connection's audit row names besides its end. */
  connectionEnded(sessionId: string, seq: number, end: ForwardedConnectionEnd, about: ForwardedConnectionAbout): Promise<void>;
}

export interface PortForwardSessionContext {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  /** The request's query (the channel protocol's ports). */
  query: URLSearchParams;
  agent: { id: string; name: string };
  client: string;
  namespace: string;
  pod: string;
  lease: ApprovalLease;
  upstream: UpstreamTarget;
  identity?: UpstreamIdentity;
  sessions: SessionRowPort & ForwardRowPort;
  /** Session-level sinks (the recorder: markers for each connection, the end). */
  sinks(session: SessionInfo): SessionSink[];
  /** The raw sidecar of connection `seq`; throws when it cannot be created (the connection is then refused). */
  recordConnection(session: SessionInfo, seq: number, port: number, startedAt: Date): ForwardRecording;
  track(cut: (reason: EndReason) => void): () => void;
  /** The Status for a cut; its message is what each open connection's error stream carries. */
  cutStatus(reason: EndReason, detail?: string): Status;
  /** The error-stream text for a connection to a port the approval does not name. */
  portRefused(port: number): string;
  setupTimeoutMs: number;
  log: Logger;
}

/** How long connections still being set up at a cut may take to refuse themselves before the agent is closed. */
const SETUP_DRAIN_MS = 2000;

/** Resolves when every job has settled, or after `ms`. */
async function settled(jobs: Iterable<Promise<unknown>>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled([...jobs]), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** How long upstream may take to say how a connection ended once its data has. */
const ERROR_STREAM_GRACE_MS = 1000;


export async function runPortForwardSession(ctx: PortForwardSessionContext): Promise<SessionOutcome> {
  const { lease } = ctx;
  const deadline = Date.now() + ctx.setupTimeoutMs;

  // 1. The agent's transport; a refused handshake has been answered by the transport.
  const accepting = acceptPortForward(ctx.req, ctx.socket, ctx.head, ctx.query, { streamCreationTimeoutMs: ctx.setupTimeoutMs });
  accepting.catch(() => {});
  const accepted = await raceSetup(accepting, lease, deadline, () => {});
  if (!accepted.ok) {
    if (accepted.error !== undefined) {
      const err = accepted.error;
      if (!isBastionError(err)) ctx.log.error({ err }, 'accepting the agent port-forward failed');
      const detail = isBastionError(err) ? `handshake refused (${err.code}): ${err.message}` : 'handshake failed';
      return outcome({ reason: 'error', detail, status: isBastionError(err) ? err.httpStatus : 500 });
    }
    // The lease ended while the agent was still connecting: there is no stream to say why on.
    const late = await Promise.race([accepting.then((a) => a, () => undefined), new Promise<undefined>((r) => setTimeout(() => r(undefined), STATUS_GRACE_MS).unref())]);
    if (late) late.destroy();
    else ctx.socket.destroy();
    return outcome({ reason: accepted.reason, ...(accepted.detail ? { detail: accepted.detail } : {}), status: late ? 101 : 408, upgraded: late !== undefined });
  }
  const agent = accepted.value;
  try {
    return await new PortForwardRun(ctx, agent, deadline).run();
  } catch (err) {
    ctx.log.error({ err }, 'port-forward session failed');
    agent.destroy();
    return outcome({ reason: 'error', detail: 'internal error', status: 101, upgraded: true, dialed: true });
  }
}

interface Connection {
  seq: number;
  stream: ForwardStream;
  recording: ForwardRecording;
  upstream?: UpstreamForward;
  /** Ends the connection with `outcome` (idempotent); resolves once its row is written. */
  end(outcome: ForwardOutcome, detail: string | null): Promise<void>;
}

/** Steps 2-5 for one accepted agent connection. */
class PortForwardRun {
  private sessionId = '';
  private info!: SessionInfo;
  private sinks: SessionSink[] = [];
  private upstream: UpstreamPortForward | undefined;
  private readonly open = new Map<number, Connection>();
  private readonly pending = new Set<Promise<void>>();
  private seq = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private cutRequest: { reason: EndReason; detail?: string } | undefined;
  /** Connections told on their error stream that the bastion cut them. */
  private told = 0;
  private wake: (() => void) | undefined;
  private leaveClock = (): void => {};

  constructor(
    private readonly ctx: PortForwardSessionContext,
    private readonly agent: PortForwardServer,
    private readonly setupDeadline: number,
  ) {}

  async run(): Promise<SessionOutcome> {
    const { ctx, agent } = this;
    const { lease, log } = ctx;
    const refuse = async (reason: EndReason, detail: string | undefined, recorded: boolean, dialed = false): Promise<SessionOutcome> => {
      const status = ctx.cutStatus(reason, detail);
      // Connections the agent opened meanwhile (kubectl announces its ports at the upgrade), and
      // any whose streams are still on their way, hear why before the connection closes.
      agent.onConnection((stream) => stream.fail(status.message ?? reason));
      await this.closeAgent(true);
      if (recorded) await this.endSinks({ reason, exitCode: null, status, bytesIn: 0, bytesOut: 0 });
      if (this.sessionId) await ctx.sessions.end(this.sessionId, { reason, exitCode: null, status, bytesIn: 0, bytesOut: 0 }).catch((err: unknown) => log.error({ err }, 'ending the session row failed'));
      return outcome({ reason, ...(detail ? { detail } : {}), status: 101, upgraded: true, sessionId: this.sessionId || null, dialed });
    };

    // 2. The session row and its recorder: if either cannot be written, nothing runs.
    try {
      this.sessionId = (
        await ctx.sessions.start({
          approvalId: lease.approval?.id ?? null,
          agent: ctx.agent,
          operation: 'portforward',
          transport: agent.transport,
          protocol: agent.protocolName,
          namespace: ctx.namespace,
          pod: ctx.pod,
          container: '',
          command: [],
          tty: false,
          client: ctx.client,
        })
      ).id;
    } catch (err) {
      log.error({ err }, 'writing the session row failed; the port-forward is not run');
      return refuse('error', 'the session could not be recorded', false);
    }
    this.info = {
      id: this.sessionId,
      approvalId: lease.approval?.id ?? null,
      agent: ctx.agent,
      operation: 'portforward',
      namespace: ctx.namespace,
      pod: ctx.pod,
      container: '',
      command: [],
      tty: false,
      transport: agent.transport,
      protocol: agent.protocolName,
      upstreamProtocol: '',
    };
    try {
      this.sinks = ctx.sinks(this.info);
    } catch (err) {
      return refuse('recording-failed', (err as Error).message, false);
    }

    // 3. The state the session starts under, read again now that our side is ready.
    let ended;
    try {
      ended = await lease.confirm();
    } catch (err) {
      log.error({ err }, 'reading the approval state failed; the port-forward is not run');
      return refuse('error', 'the approval state could not be read', true);
    }
    if (ended) return refuse(ended.reason, leaseEndDetail(ended), true);

    // 4. Only now is upstream dialed.
    const dialAbort = new AbortController();
    const dial = dialUpstreamPortForward(ctx.upstream, {
      path: `/api/v1/namespaces/${encodeURIComponent(ctx.namespace)}/pods/${encodeURIComponent(ctx.pod)}/portforward`,
      signal: dialAbort.signal,
      handshakeTimeoutMs: Math.max(1, this.setupDeadline - Date.now()),
      ...(ctx.identity ? { headers: impersonationHeaders(ctx.identity, { approvalId: lease.approval?.id ?? null, sessionId: this.sessionId }) } : {}),
    });
    dial.then((u) => dialAbort.signal.aborted && u.destroy(), () => {});
    const dialed = await raceSetup(dial, lease, this.setupDeadline, () => dialAbort.abort(), `the upstream API server did not answer within ${Math.round(ctx.setupTimeoutMs / 1000)} s`);
    if (!dialed.ok) {
      if (dialed.error === undefined) return refuse(dialed.reason, dialed.detail, true, true);
      const err = dialed.error;
      const detail = err instanceof UpstreamRefusal ? `upstream refused: ${err.status.message ?? err.message}` : isBastionError(err) ? err.message : 'could not open the port-forward upstream';
      return refuse(err instanceof UpstreamRefusal ? 'upstream-refused' : 'upstream-closed', detail, true, true);
    }
    this.upstream = dialed.value;
    ctx.sessions.upstreamChosen(this.sessionId, this.upstream.protocol).catch((err: unknown) => log.error({ err }, 'storing the upstream protocol failed'));
    if (!this.observe((sink) => sink.marker?.(`upstream: ${this.upstream!.protocol}`))) return refuse('recording-failed', this.cutRequest?.detail, true, true);

    // 5. Relay each connection until the agent leaves, upstream goes, or the lease ends.
    return this.relay();
  }

  private async relay(): Promise<SessionOutcome> {
    const { ctx, agent, upstream } = this;
    const { lease, log } = ctx;
    const offLease = lease.onEnd((end) => this.cut(end.reason, leaseEndDetail(end)));
    const untrack = ctx.track((reason) => this.cut(reason));
    if (lease.deadline !== undefined) this.leaveClock = deadlines.add(lease.deadline, () => this.cut('expired'));
    log.info({ sessionId: this.sessionId, approvalId: this.info.approvalId, agent: ctx.agent.name, transport: agent.transport, protocol: agent.protocolName, form: agent.form, pod: `${ctx.namespace}/${ctx.pod}` }, 'port-forward start');
    let reason: EndReason = 'completed';
    let detail: string | undefined;
    try {
      agent.onConnection((stream) => this.track(this.connection(stream)));
      const stopped = new Promise<void>((resolve) => (this.wake = resolve));
      const which = await Promise.race([agent.closed.then(() => 'agent' as const), upstream!.closed.then(() => 'upstream' as const), stopped.then(() => 'cut' as const)]);
      // Whichever side ended it, at or after the deadline (its timer not run yet: a stalled loop) the session expired.
      if (!this.cutNow()) {
        if (which === 'upstream') this.cut('upstream-closed', 'the upstream API server closed the port-forward');
        else if (which === 'agent' && agent.failure) this.cut('error', `the client broke the port-forward protocol: ${agent.failure.message}`);
      }
      if (this.cutRequest) {
        reason = this.cutRequest.reason;
        detail = this.cutRequest.detail;
        await this.endAll('cut', this.cutText());
        // Connections still being set up refuse themselves with the same text; let them, then close.
        await settled(this.pending, SETUP_DRAIN_MS);
        await this.closeAgent(this.told > 0);
      } else {
        // The agent ended the session (kubectl exits, or every channel-protocol port is done).
        await this.endAll('closed', null);
      }
    } finally {
      this.leaveClock();
      offLease();
      upstream!.destroy();
      await Promise.all(this.pending);
      const status = reason === 'completed' ? successStatus() : ctx.cutStatus(reason, detail);
      const end: SessionEnd = { reason, exitCode: null, status, bytesIn: this.bytesIn, bytesOut: this.bytesOut };
      await this.endSinks(end);
      await ctx.sessions.end(this.sessionId, end).catch((err: unknown) => log.error({ err, sessionId: this.sessionId }, 'ending the session row failed'));
      untrack();
    }
    log.info({ sessionId: this.sessionId, reason, connections: this.seq, bytesIn: this.bytesIn, bytesOut: this.bytesOut }, 'port-forward end');
    return outcome({ reason, ...(detail ? { detail } : {}), status: 101, upgraded: true, sessionId: this.sessionId, dialed: true, bytesIn: this.bytesIn, bytesOut: this.bytesOut });
  }

  /** Cuts the session now; the first reason wins. */
  cut(reason: EndReason, detail?: string): void {
    if (this.cutRequest) return;
    this.cutRequest = { reason, ...(detail ? { detail } : {}) };
    this.leaveClock();
    // Nothing more moves upstream from this instant.
    for (const c of this.open.values()) c.upstream?.data.destroy();
    this.wake?.();
  }

  private track(job: Promise<void>): void {
    this.pending.add(job);
    void job.finally(() => this.pending.delete(job));
  }

  private pastDeadline(now = Date.now()): boolean {
    const d = this.ctx.lease.deadline;
    return d !== undefined && now >= d;
  }

  /** Whether the session is cut, cutting it now if its deadline has passed (a late timer). */
  private cutNow(): boolean {
    if (!this.cutRequest && this.pastDeadline()) this.cut('expired');
    return this.cutRequest !== undefined;
  }

  /** The text a connection's error stream carries when the session is cut. */
  private cutText(): string {
    const c = this.cutRequest ?? { reason: 'expired' as const };
    return this.ctx.cutStatus(c.reason, c.detail).message ?? c.reason;
  }

  /** One forwarded connection, from its check to its row's end. */
  private async connection(stream: ForwardStream): Promise<void> {
    const { ctx } = this;
    const seq = ++this.seq;
    const startedAt = new Date();
    const base = { sessionId: this.sessionId, seq, port: stream.port, startedAt: startedAt.toISOString() };
    const refuseConnection = async (outcomeName: ForwardOutcome, text: string): Promise<void> => {
      stream.fail(text);
      if (outcomeName === 'cut') this.told += 1;
      this.observe((sink) => sink.marker?.(`connection ${seq}: port ${stream.port} ${outcomeName}: ${text}`));
      await ctx.sessions.connectionStarted({ ...base, rawPath: null }).catch(() => {});
      await ctx.sessions
        .connectionEnded(this.sessionId, seq, { endedAt: new Date().toISOString(), outcome: outcomeName, detail: text, bytesIn: 0, bytesOut: 0, sha256In: null, sha256Out: null, rawSha256: null, protocol: null }, this.about(stream.port))
        .catch((err: unknown) => ctx.log.error({ err, sessionId: this.sessionId, seq }, 'recording the refused connection failed'));
    };
    if (this.cutNow()) return refuseConnection('cut', this.cutText());
    const approval = ctx.lease.approval;
    if (approval && !portAllowed(approval.scope, stream.port)) return refuseConnection('refused', ctx.portRefused(stream.port));

    // Recorded before a byte moves: its sidecar, then its row.
    let recording: ForwardRecording;
    try {
      recording = ctx.recordConnection(this.info, seq, stream.port, startedAt);
    } catch (err) {
      this.cut('recording-failed', (err as Error).message);
      await refuseConnection('cut', this.cutText());
      return;
    }
    try {
      await ctx.sessions.connectionStarted({ ...base, rawPath: recording.relativePath });
    } catch (err) {
      ctx.log.error({ err, sessionId: this.sessionId, seq }, 'writing the connection row failed; the connection is not run');
      recording.abandon();
      this.cut('error', 'a connection could not be recorded');
      await refuseConnection('cut', this.cutText());
      return;
    }
    // A batched write that fails cuts the session, as a failed append does: every open connection
    // then hears the recording-failed reason on its error stream.
    recording.onFailure((err) => this.cut('recording-failed', err.message));
    this.observe((sink) => sink.marker?.(`connection ${seq}: port ${stream.port} opened`));
    let finished: Promise<void> | undefined;
    const conn: Connection = {
      seq,
      stream,
      recording,
      end: (outcomeName, detail) => (finished ??= this.endConnection(conn, outcomeName, detail)),
    };
    this.open.set(seq, conn);
    // The lease may have ended (or its deadline passed) while the row was written: nothing is
    // dialed, and the row ends with the sidecar's hashes.
    if (this.cutNow()) return conn.end('cut', this.cutText());
    try {
      conn.upstream = this.upstream!.open(stream.port, String(seq - 1));
    } catch (err) {
      await conn.end('cut', `kube-bastion could not open the connection upstream: ${(err as Error).message}`);
      return;
    }
    await this.pipe(conn);
  }

  private about(port: number): ForwardedConnectionAbout {
    return { port, approvalId: this.info.approvalId, agent: this.ctx.agent };
  }

  /**
   * Copies both ways, each chunk accepted into the recording's batch before it moves. A side is
   * paused while its receiver is full or the recording's unwritten bytes are over their bound
   * (backpressure, never an unbounded buffer); resolves when the connection has ended.
   */
  private async pipe(conn: Connection): Promise<void> {
    const { stream, recording } = conn;
    const up = conn.upstream!;
    const copy = (from: Duplex, to: Duplex, record: (chunk: Buffer) => void, count: (n: number) => void): void => {
      // Reasons the source is paused (the receiver's drain, the recording's ready()); resumed when none is left.
      let holds = 0;
      const hold = (until: Promise<void>): void => {
        holds += 1;
        from.pause();
        void until.then(() => {
          holds -= 1;
          if (holds === 0 && !this.cutRequest) from.resume();
        });
      };
      from.on('data', (chunk: Buffer) => {
        // Any session's chunk past an instant cuts every session due at it (deadline-clock.ts);
        // `now` is read again if it did (those cuts take time).
        const now = deadlines.poll(Date.now());
        if (this.cutRequest) return;
        if (this.pastDeadline(now)) {
          this.cut('expired');
          return;
        }
        try {
          record(chunk);
        } catch (err) {
          this.cut('recording-failed', (err as Error).message);
          return;
        }
        count(chunk.length);
        if (!to.write(chunk)) hold(new Promise<void>((resolve) => to.once('drain', resolve)));
        const ready = recording.ready();
        if (ready) hold(ready);
      });
      // The end is passed on like a byte: not after a cut, nor at or after the deadline.
      from.once('end', () => {
        if (!this.cutNow() && !to.writableEnded && !to.destroyed) to.end();
      });
    };
    copy(stream.data, up.data, (c) => recording.toPod(c), (n) => (this.bytesIn += n));
    copy(up.data, stream.data, (c) => recording.fromPod(c), (n) => (this.bytesOut += n));
    const gone = (d: Duplex): Promise<void> => new Promise((resolve) => (d.destroyed ? resolve() : d.once('close', () => resolve())));
    // Over when upstream says so (its error stream), or either side's data is gone.
    const errorText = up.error.then((text) => ({ kind: 'error' as const, text }));
    const first = await Promise.race([errorText, gone(up.data).then(() => ({ kind: 'upstream' as const })), gone(stream.data).then(() => ({ kind: 'agent' as const }))]);
    // A cut ends the connection with its reason, whatever else happened first; so does the deadline
    // before its timer ran (a stalled loop): a held (paused) stream that is reset closes without
    // 'end', so only this check sees it.
    if (this.cutNow()) return conn.end('cut', this.cutText());
    if (first.kind === 'agent') {
      // The agent reset or lost the connection: nobody reads the rest.
      up.data.destroy();
      return conn.end('closed', null);
    }
    let text = first.kind === 'error' ? first.text : '';
    if (first.kind === 'upstream') {
      // Data is done; the kubelet ends the error stream right after, with a message on failure.
      text = await Promise.race([up.error, new Promise<string>((r) => setTimeout(() => r(''), ERROR_STREAM_GRACE_MS).unref())]);
    }
    if (this.cutNow()) return conn.end('cut', this.cutText());
    if (text !== '') return conn.end('failed', text);
    if (!this.upstream!.isOpen || (first.kind === 'upstream' && !up.data.readableEnded)) {
      // Upstream's data stream went away without its end (reset), or the whole connection was
      // lost: not the pod closing, and the agent is told so.
      return conn.end('cut', this.ctx.cutStatus('upstream-closed', 'the upstream API server ended the connection').message ?? 'upstream-closed');
    }
    // Let what the pod sent drain to the agent before its error stream says the connection is
    // over; kubectl resets its data stream once it has read the pod's end.
    await Promise.race([gone(up.data), gone(stream.data)]);
    if (this.cutNow()) return conn.end('cut', this.cutText());
    return conn.end('closed', null);
  }

  private async endConnection(conn: Connection, outcomeName: ForwardOutcome, detail: string | null): Promise<void> {
    const { ctx } = this;
    this.open.delete(conn.seq);
    conn.upstream?.data.destroy();
    // The row gets the hashes only once the sidecar is complete (written, synced, closed).
    let result: ForwardRecordingResult | undefined;
    try {
      if (detail !== null) conn.recording.errorText(detail);
      result = await conn.recording.end();
    } catch (err) {
      conn.recording.abandon();
      ctx.log.error({ err, sessionId: this.sessionId, seq: conn.seq }, 'completing the connection recording failed');
      this.cut('recording-failed', (err as Error).message);
    }
    if (detail !== null) conn.stream.fail(detail);
    else conn.stream.done();
    if (outcomeName === 'cut') this.told += 1;
    this.observe((sink) => sink.marker?.(`connection ${conn.seq}: port ${conn.stream.port} ${outcomeName}${detail ? `: ${detail}` : ''}`));
    await ctx.sessions
      .connectionEnded(this.sessionId, conn.seq, {
        endedAt: new Date().toISOString(),
        outcome: outcomeName,
        detail,
        bytesIn: result?.bytesIn ?? 0,
        bytesOut: result?.bytesOut ?? 0,
        sha256In: result?.sha256In ?? null,
        sha256Out: result?.sha256Out ?? null,
        rawSha256: result?.rawSha256 ?? null,
        protocol: result?.protocol ?? null,
      }, this.about(conn.stream.port))
      .catch((err: unknown) => ctx.log.error({ err, sessionId: this.sessionId, seq: conn.seq }, 'ending the connection row failed'));
  }

  /** Ends every open connection (their rows written); true when there was one. */
  private async endAll(outcomeName: ForwardOutcome, detail: string | null): Promise<boolean> {
    const open = [...this.open.values()];
    await Promise.all(open.map((c) => c.end(outcomeName, detail)));
    return open.length > 0;
  }

  /**
   * Ends the agent's side after a cut. When connections were told why on their error streams, the
   * client gets a moment to read that and close by itself (kubectl prints the message and ends its
   * session; closing first would race it into "lost connection to pod"); then the connection is
   * closed, and a client that does not read is dropped.
   */
  private async closeAgent(told: boolean): Promise<void> {
    const timers: NodeJS.Timeout[] = [];
    const grace = (): Promise<void> => new Promise<void>((r) => timers.push(setTimeout(r, STATUS_GRACE_MS)));
    if (told) await Promise.race([this.agent.closed, grace()]);
    await Promise.race([this.agent.close().catch(() => {}), grace()]);
    for (const t of timers) clearTimeout(t);
    this.agent.destroy();
  }

  /** Runs every sink for one event; a failure cuts the session. */
  private observe(event: (sink: SessionSink) => void): boolean {
    try {
      for (const sink of this.sinks) event(sink);
      return true;
    } catch (err) {
      this.cut('recording-failed', (err as Error).message);
      return false;
    }
  }

  private async endSinks(end: SessionEnd): Promise<void> {
    for (const sink of this.sinks) await Promise.resolve(sink.end?.(end)).catch(() => {});
  }
}
