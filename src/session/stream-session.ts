// One exec/attach session through the bastion: dial upstream (so its refusals reach the agent as
// a Status before any upgrade), accept the agent's transport, record the session row, relay with
// the approval's deadline, and cut at once if the approval is revoked.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { isBastionError, statusFor } from '../errors/index.js';
import type { Logger } from '../observability/log.js';
import { effectiveStreamOptions, type RemoteCommandRequest } from '../protocol/options.js';
import type { Status } from '../protocol/status.js';
import { acceptRemoteCommand } from '../transport/accept.js';
import { writeStatusToSocket } from '../transport/http-response.js';
import type { StreamOperation } from '../model/request.js';
import type { Approval, ApprovalService } from '../model/approval.js';
import { dialUpstreamExec } from '../upstream/executor.js';
import type { UpstreamTarget } from '../upstream/upstream.js';
import { impersonationHeaders, type UpstreamIdentity } from '../upstream/headers.js';
import { Relay } from './relay.js';
import type { EndReason, SessionEnd, SessionSink } from '../model/session.js';
import type { TransportKind } from '../protocol/streams.js';

export interface SessionRowPort {
  start(input: {
    approvalId: string | null;
    agent: { id: string; name: string };
    operation: StreamOperation;
    transport: TransportKind;
    protocol: string;
    upstreamProtocol: string;
    namespace: string;
    pod: string;
    container: string;
    command: string[];
    tty: boolean;
  }): Promise<{ id: string }>;
  end(id: string, end: SessionEnd): Promise<unknown>;
}

/** What a sink knows about the session it observes. */
export interface SessionInfo {
  id: string;
  approvalId: string | null;
  agent: { id: string; name: string };
  operation: StreamOperation;
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  tty: boolean;
  transport: TransportKind;
  protocol: string;
  upstreamProtocol: string;
}

export interface StreamSessionContext {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  agent: { id: string; name: string };
  operation: StreamOperation;
  namespace: string;
  pod: string;
  query: RemoteCommandRequest & { container: string };
  approval: Approval | null;
  upstream: UpstreamTarget;
  identity?: UpstreamIdentity;
  approvals: ApprovalService;
  sessions: SessionRowPort;
  /** Sinks for this session (recorder, metrics); created once the session row exists. Throwing cuts the session. */
  sinks(session: SessionInfo): SessionSink[];
  /** Live sessions register here so shutdown can cut them. */
  track(cut: (reason: EndReason) => void): () => void;
  /** The Status the agent receives when the bastion ends the session for `reason` (endpoint/refusals.ts). */
  cutStatus(reason: EndReason, detail?: string): Status;
  /** Seconds before the deadline to warn the agent (0: never). */
  expiryWarningSeconds: number;
  log: Logger;
}

function upstreamRequestTarget(ctx: StreamContextLike): string {
  const q = new URLSearchParams();
  for (const arg of ctx.query.command) q.append('command', arg);
  q.set('container', ctx.query.container);
  if (ctx.query.stdin) q.set('stdin', 'true');
  if (ctx.query.stdout) q.set('stdout', 'true');
  if (ctx.query.stderr && !ctx.query.tty) q.set('stderr', 'true');
  if (ctx.query.tty) q.set('tty', 'true');
  return `/api/v1/namespaces/${encodeURIComponent(ctx.namespace)}/pods/${encodeURIComponent(ctx.pod)}/${ctx.operation}?${q.toString()}`;
}
type StreamContextLike = Pick<StreamSessionContext, 'query' | 'namespace' | 'pod' | 'operation'>;

export async function runStreamSession(ctx: StreamSessionContext): Promise<SessionEnd | undefined> {
  const { log } = ctx;
  let upstream;
  try {
    upstream = await dialUpstreamExec(ctx.upstream, {
      path: upstreamRequestTarget(ctx),
      ...(ctx.identity ? { headers: impersonationHeaders(ctx.identity) as Record<string, string> } : {}),
    });
  } catch (err) {
    // An UpstreamRefusal carries upstream's own Status (pod not found, RBAC denial) unchanged.
    const status = isBastionError(err) ? err.toStatus() : statusFor('UPSTREAM_UNAVAILABLE', 'kube-bastion could not open the session upstream');
    writeStatusToSocket(ctx.socket, status);
    return undefined;
  }

  let agent;
  try {
    agent = await acceptRemoteCommand(ctx.req, ctx.socket, ctx.head, effectiveStreamOptions(ctx.query));
  } catch (err) {
    upstream.destroy();
    if (isBastionError(err)) writeStatusToSocket(ctx.socket, err.toStatus());
    else throw err;
    return undefined;
  }

  const row = await ctx.sessions.start({
    approvalId: ctx.approval?.id ?? null,
    agent: ctx.agent,
    operation: ctx.operation,
    transport: agent.transport,
    protocol: agent.protocolName || agent.protocol.name,
    upstreamProtocol: upstream.protocol,
    namespace: ctx.namespace,
    pod: ctx.pod,
    container: ctx.query.container,
    command: ctx.query.command,
    tty: ctx.query.tty,
  });
  let sinks: SessionSink[];
  try {
    sinks = ctx.sinks({
      id: row.id,
      approvalId: ctx.approval?.id ?? null,
      agent: ctx.agent,
      operation: ctx.operation,
      namespace: ctx.namespace,
      pod: ctx.pod,
      container: ctx.query.container,
      command: ctx.query.command,
      tty: ctx.query.tty,
      transport: agent.transport,
      protocol: agent.protocolName || agent.protocol.name,
      upstreamProtocol: upstream.protocol,
    });
  } catch (err) {
    upstream.destroy();
    const status = ctx.cutStatus('recording-failed', (err as Error).message);
    await agent.finish(status);
    const end: SessionEnd = { reason: 'recording-failed', exitCode: null, status, bytesIn: 0, bytesOut: 0 };
    await ctx.sessions.end(row.id, end);
    return end;
  }
  const deadline = ctx.approval?.expiresAt ? Date.parse(ctx.approval.expiresAt) : undefined;
  const relay = new Relay({
    agent,
    upstream,
    ...(deadline !== undefined ? { deadline } : {}),
    sinks,
    cutStatus: ctx.cutStatus,
    ...(deadline !== undefined && ctx.expiryWarningSeconds > 0
      ? { warning: { at: deadline - ctx.expiryWarningSeconds * 1000, message: `approval ${ctx.approval!.id} expires in ${ctx.expiryWarningSeconds}s, at ${ctx.approval!.expiresAt}` } }
      : {}),
  });
  // Revocation (or an earlier expiry written by an approver) cuts the live session at once.
  const onChange = (a: Approval): void => {
    if (ctx.approval && a.id === ctx.approval.id && (a.state === 'revoked' || a.state === 'expired')) relay.cut(a.state);
  };
  ctx.approvals.on('changed', onChange);
  const untrack = ctx.track((reason) => relay.cut(reason));
  log.info({ sessionId: row.id, approvalId: ctx.approval?.id ?? null, agent: ctx.agent.name, transport: agent.transport, protocol: agent.protocolName, upstreamProtocol: upstream.protocol, pod: `${ctx.namespace}/${ctx.pod}`, container: ctx.query.container, command: ctx.query.command }, 'session start');
  let end: SessionEnd;
  try {
    end = await relay.run();
    // Still tracked until the row is written, so a shutdown waits for it before closing the store.
    await ctx.sessions.end(row.id, end);
  } finally {
    ctx.approvals.off('changed', onChange);
    untrack();
  }
  log.info({ sessionId: row.id, reason: end.reason, exitCode: end.exitCode, bytesIn: end.bytesIn, bytesOut: end.bytesOut }, 'session end');
  return end;
}
