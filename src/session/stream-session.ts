// One exec/attach session through the bastion, in the order that keeps every promise:
//   gate decided (the caller holds a lease on the approval from that instant)
//   -> the agent's transport fully accepted (WebSocket handshake, SPDY streams), within the setup deadline
//   -> the session row written and the recorder created and writable
//   -> the lease re-checked against the store
//   -> only then is upstream dialed, and the relay runs until the command ends or the lease does.
// Nothing runs upstream that could not be recorded, a revocation at any of these instants ends the
// session before (or at) the next byte, and every way out ends in one SessionOutcome.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { isBastionError, UpstreamRefusal } from '../errors/index.js';
import type { Logger } from '../observability/log.js';
import { effectiveStreamOptions, type RemoteCommandRequest } from '../protocol/options.js';
import type { Status } from '../protocol/status.js';
import type { ServerStreams, TransportKind } from '../protocol/streams.js';
import { acceptRemoteCommand } from '../transport/accept.js';
import type { StreamOperation } from '../model/request.js';
import type { ApprovalLease } from '../approvals/lease.js';
import { dialUpstreamExec } from '../upstream/executor.js';
import type { UpstreamSession } from '../upstream/executor/types.js';
import type { UpstreamTarget } from '../upstream/upstream.js';
import { impersonationHeaders, type UpstreamIdentity } from '../upstream/headers.js';
import { endSinksWithin, Relay } from './relay.js';
import { leaseEndDetail, outcome, raceSetup, STATUS_GRACE_MS, type SessionOutcome } from './setup.js';

export { leaseEndDetail, type SessionOutcome } from './setup.js';
import type { EndReason, SessionEnd, SessionInfo, SessionSink } from '../model/session.js';

export interface SessionRowPort {
  start(input: {
    approvalId: string | null;
    agent: { id: string; name: string };
    operation: StreamOperation;
    transport: TransportKind;
    protocol: string;
    namespace: string;
    pod: string;
    container: string;
    command: string[];
    tty: boolean;
    /** The client's address and port (`ip:port`), for the session row and its audit rows. */
    client: string;
  }): Promise<{ id: string }>;
  /** The upstream subprotocol, once dialed. */
  upstreamChosen(id: string, protocol: string): Promise<unknown>;
  end(id: string, end: SessionEnd): Promise<unknown>;
}

export interface StreamSessionContext {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  agent: { id: string; name: string };
  /** The client's address and port (`ip:port`), read when the request arrived. */
  client: string;
  operation: StreamOperation;
  namespace: string;
  pod: string;
  query: RemoteCommandRequest & { container: string };
  /** What the request was admitted under, live since the gate decided. */
  lease: ApprovalLease;
  upstream: UpstreamTarget;
  identity?: UpstreamIdentity;
  sessions: SessionRowPort;
  /** Sinks for this session (the recorder); created once the session row exists. Throwing means it is not run. */
  sinks(session: SessionInfo): SessionSink[];
  /** Live sessions register here so shutdown can cut them. */
  track(cut: (reason: EndReason) => void): () => void;
  /** The Status the agent receives when the bastion ends the session for `reason` (endpoint/refusals.ts). */
  cutStatus(reason: EndReason, detail?: string): Status;
  /** How long setup (agent streams, upstream dial) may take before the session is abandoned. */
  setupTimeoutMs: number;
  /** Seconds before the deadline to warn the agent (0: never). */
  expiryWarningSeconds: number;
  log: Logger;
}

function upstreamRequestTarget(ctx: Pick<StreamSessionContext, 'query' | 'namespace' | 'pod' | 'operation'>): string {
  const q = new URLSearchParams();
  for (const arg of ctx.query.command) q.append('command', arg);
  q.set('container', ctx.query.container);
  if (ctx.query.stdin) q.set('stdin', 'true');
  if (ctx.query.stdout) q.set('stdout', 'true');
  if (ctx.query.stderr && !ctx.query.tty) q.set('stderr', 'true');
  if (ctx.query.tty) q.set('tty', 'true');
  return `/api/v1/namespaces/${encodeURIComponent(ctx.namespace)}/pods/${encodeURIComponent(ctx.pod)}/${ctx.operation}?${q.toString()}`;
}

export async function runStreamSession(ctx: StreamSessionContext): Promise<SessionOutcome> {
  const { log, lease } = ctx;
  const deadline = Date.now() + ctx.setupTimeoutMs;

  // 1. The agent's transport. A refused handshake answers the agent itself (transport's own Status).
  const accepting = acceptRemoteCommand(ctx.req, ctx.socket, ctx.head, effectiveStreamOptions(ctx.query), Math.max(1, deadline - Date.now()));
  accepting.catch(() => {});
  const accepted = await raceSetup(accepting, lease, deadline, () => {});
  let agent: ServerStreams;
  if (accepted.ok) {
    agent = accepted.value;
  } else if (accepted.error !== undefined) {
    const err = accepted.error;
    if (isBastionError(err) && err.code === 'STREAM_SETUP_TIMEOUT') return outcome({ reason: 'setup-timeout', detail: err.message, status: 408, upgraded: true });
    if (!isBastionError(err)) log.error({ err }, 'accepting the agent transport failed');
    // The transport answered the handshake itself; the audit row says why it refused.
    const detail = isBastionError(err) ? `handshake refused (${err.code}): ${err.message}` : 'handshake failed';
    return outcome({ reason: 'error', detail, status: isBastionError(err) ? err.httpStatus : 500 });
  } else {
    // The lease ended (or setup ran out) while the agent was still opening its streams: give the
    // transport a moment to be able to carry the Status, then drop the connection.
    const late = await Promise.race([accepting.then((a) => a, () => undefined), new Promise<undefined>((r) => setTimeout(() => r(undefined), STATUS_GRACE_MS).unref())]);
    if (late) await finishQuietly(late, ctx.cutStatus(accepted.reason, accepted.detail));
    else ctx.socket.destroy();
    return outcome({ reason: accepted.reason, status: late ? 101 : 408, upgraded: late !== undefined });
  }

  // Once upgraded, nothing may escape as an exception (the endpoint would answer HTTP text into
  // the upgraded socket): an unexpected failure ends the session here, with a Status.
  const live: { upstream?: UpstreamSession } = {};
  try {
    return await runAccepted(ctx, agent, deadline, live);
  } catch (err) {
    log.error({ err }, 'stream session failed');
    live.upstream?.destroy();
    await finishQuietly(agent, ctx.cutStatus('error', 'internal error'));
    return outcome({ reason: 'error', status: 101, upgraded: true, dialed: live.upstream !== undefined });
  }
}

/** Steps 2-5, once the agent's transport is accepted. `live.upstream` is set once dialed. */
async function runAccepted(ctx: StreamSessionContext, agent: ServerStreams, deadline: number, live: { upstream?: UpstreamSession }): Promise<SessionOutcome> {
  const { log, lease } = ctx;
  const transport = agent.transport;
  const protocol = agent.protocolName || agent.protocol.name;
  const refuse = async (reason: EndReason, detail: string | undefined, sessionId: string | null, status?: Status): Promise<SessionOutcome> => {
    const sent = status ?? ctx.cutStatus(reason, detail);
    await finishQuietly(agent, sent);
    if (sessionId) await ctx.sessions.end(sessionId, { reason, exitCode: null, status: sent, bytesIn: 0, bytesOut: 0 }).catch((err: unknown) => log.error({ err, sessionId }, 'ending the session row failed'));
    return outcome({ reason, ...(detail ? { detail } : {}), status: 101, upgraded: true, sessionId });
  };

  // 2. The session row and the recorder: if either cannot be written, nothing runs.
  let sessionId: string;
  try {
    sessionId = (
      await ctx.sessions.start({
        approvalId: lease.approval?.id ?? null,
        agent: ctx.agent,
        operation: ctx.operation,
        transport,
        protocol,
        namespace: ctx.namespace,
        pod: ctx.pod,
        container: ctx.query.container,
        command: ctx.query.command,
        tty: ctx.query.tty,
        client: ctx.client,
      })
    ).id;
  } catch (err) {
    log.error({ err }, 'writing the session row failed; the session is not run');
    return refuse('error', 'the session could not be recorded', null);
  }
  const info: SessionInfo = {
    id: sessionId,
    approvalId: lease.approval?.id ?? null,
    agent: ctx.agent,
    operation: ctx.operation,
    namespace: ctx.namespace,
    pod: ctx.pod,
    container: ctx.query.container,
    command: ctx.query.command,
    tty: ctx.query.tty,
    transport,
    protocol,
    upstreamProtocol: '',
  };
  let sinks: SessionSink[];
  try {
    sinks = ctx.sinks(info);
  } catch (err) {
    return refuse('recording-failed', (err as Error).message, sessionId);
  }
  // Bounded as in the relay: a disk that hangs on the last write must not keep a refusal's row open.
  const endSinks = async (end: SessionEnd): Promise<void> => {
    await endSinksWithin(sinks, end);
  };
  const refuseRecorded = async (reason: EndReason, detail: string | undefined, status?: Status): Promise<SessionOutcome> => {
    const sent = status ?? ctx.cutStatus(reason, detail);
    // The agent hears first, as from a cut in the relay: its Status does not wait for the
    // recording's last write and fsync (nothing ran upstream; the sidecar records the same Status).
    const told = finishQuietly(agent, sent);
    await endSinks({ reason, exitCode: null, status: sent, bytesIn: 0, bytesOut: 0 });
    await told;
    // finish() is idempotent: refuse() only waits for the same Status again and writes the row.
    return refuse(reason, detail, sessionId, sent);
  };

  // 3. The state the session starts under, read again now that everything on our side is ready.
  let ended;
  try {
    ended = await lease.confirm();
  } catch (err) {
    log.error({ err, sessionId }, 'reading the approval state failed; the session is not run');
    return refuseRecorded('error', 'the approval state could not be read');
  }
  if (ended) return refuseRecorded(ended.reason, leaseEndDetail(ended));

  // 4. Only now is anything run upstream.
  const dialAbort = new AbortController();
  const dial = dialUpstreamExec(ctx.upstream, {
    path: upstreamRequestTarget(ctx),
    signal: dialAbort.signal,
    handshakeTimeoutMs: Math.max(1, deadline - Date.now()),
    // The cluster's own audit log names the approval and the session, so the two records join.
    ...(ctx.identity ? { headers: impersonationHeaders(ctx.identity, { approvalId: lease.approval?.id ?? null, sessionId }) as Record<string, string> } : {}),
  });
  dial.then((s) => dialAbort.signal.aborted && s.destroy(), () => {});
  const dialed = await raceSetup(dial, lease, deadline, () => dialAbort.abort(), `the upstream API server did not answer within ${Math.round(ctx.setupTimeoutMs / 1000)} s`);
  if (!dialed.ok) {
    if (dialed.error === undefined) return { ...(await refuseRecorded(dialed.reason, dialed.detail)), dialed: true };
    // An UpstreamRefusal carries upstream's own Status (RBAC denial, container gone) unchanged.
    const err = dialed.error;
    if (err instanceof UpstreamRefusal) return { ...(await refuseRecorded('upstream-refused', undefined, err.status)), dialed: true };
    // Unreachable, a broken handshake, an unusable subprotocol: the bastion words it.
    const detail = isBastionError(err) ? err.message : 'could not open the session upstream';
    return { ...(await refuseRecorded('upstream-closed', detail)), dialed: true };
  }
  const upstream: UpstreamSession = dialed.value;
  live.upstream = upstream;
  ctx.sessions.upstreamChosen(sessionId, upstream.protocol).catch((err: unknown) => log.error({ err, sessionId }, 'storing the upstream protocol failed'));
  try {
    for (const sink of sinks) sink.marker?.(`upstream: ${upstream.protocol}`);
  } catch (err) {
    upstream.destroy();
    return { ...(await refuseRecorded('recording-failed', (err as Error).message)), dialed: true };
  }

  // 5. Relay until the command ends, the client leaves, or the lease ends.
  const expiry = lease.deadline;
  const relay = new Relay({
    agent,
    upstream,
    ...(expiry !== undefined ? { deadline: expiry } : {}),
    sinks,
    cutStatus: ctx.cutStatus,
    ...(expiry !== undefined && ctx.expiryWarningSeconds > 0 && lease.approval
      ? { warning: { at: expiry - ctx.expiryWarningSeconds * 1000, message: `approval ${lease.approval.id} expires in ${ctx.expiryWarningSeconds}s, at ${lease.approval.expiresAt}` } }
      : {}),
  });
  const offLease = lease.onEnd((end) => relay.cut(end.reason, leaseEndDetail(end)));
  const untrack = ctx.track((reason) => relay.cut(reason));
  log.info({ sessionId, approvalId: info.approvalId, agent: ctx.agent.name, transport, protocol: agent.protocolName, upstreamProtocol: upstream.protocol, pod: `${ctx.namespace}/${ctx.pod}`, container: ctx.query.container, command: ctx.query.command }, 'session start');
  let end: SessionEnd;
  try {
    end = await relay.run();
    // Still tracked until the row is written, so a shutdown waits for it before closing the store.
    await ctx.sessions.end(sessionId, end).catch((err: unknown) => log.error({ err, sessionId }, 'ending the session row failed'));
  } finally {
    offLease();
    untrack();
  }
  log.info({ sessionId, reason: end.reason, exitCode: end.exitCode, bytesIn: end.bytesIn, bytesOut: end.bytesOut }, 'session end');
  return outcome({ reason: end.reason, status: 101, upgraded: true, sessionId, dialed: true, bytesIn: end.bytesIn, bytesOut: end.bytesOut });
}

/** Ends the agent's side with `status`; a client that does not take it in time is dropped. */
async function finishQuietly(agent: ServerStreams, status: Status): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    agent.finish(status).catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        agent.destroy(new Error('client did not take the final status in time'));
        resolve();
      }, STATUS_GRACE_MS);
    }),
  ]);
  clearTimeout(timer);
}
