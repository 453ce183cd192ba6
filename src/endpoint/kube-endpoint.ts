// The Kubernetes endpoint agents talk to: TLS, one classification for REST and upgrades, holds
// for requests that need an approval, forwarding of REST calls, stream sessions through the relay,
// refusals as metav1.Status, one audit row per request.
import https from 'node:https';
import { boundUrl, listen } from '../net/listen.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { writeStatusResponse, writeStatusToSocket } from '../transport/http-response.js';
import type { Status } from '../protocol/status.js';
import { parseRemoteCommandQuery } from '../protocol/options.js';
import { proxyRest } from '../upstream/rest-proxy.js';
import { getPod, resolveContainer } from '../upstream/pods.js';
import { IMPERSONATE_EXTRA, type UpstreamIdentity } from '../upstream/headers.js';
import type { UpstreamTarget } from '../upstream/upstream.js';
import type { BastionMetrics } from '../observability/metrics.js';
import type { Logger } from '../observability/log.js';
import type { KubeRequest, ResourceRequest, StreamOperation } from '../model/request.js';
import { refusedApprovalId, type HoldManager } from '../approvals/holds.js';
import { ApprovalLease } from '../approvals/lease.js';
import { isBastionError } from '../errors/index.js';
import { restOperation, scopeFor, shapeScope, streamOperation } from '../approvals/operation.js';
import type { Approval, ApprovalService, Operation } from '../model/approval.js';
import type { HeldRequestInfo } from '../model/approval-schema.js';
import { READ_VERBS } from '../model/vocabulary.js';
import { describeHeldBody, duplicateJsonKey } from '../model/held-body.js';
import { readBoundedBody } from './request-body.js';
import { runStreamSession, type SessionRowPort } from '../session/stream-session.js';
import { runPortForwardSession, type ForwardRowPort, type PortForwardSessionContext } from '../session/portforward-session.js';
import { queryPorts } from '../protocol/query.js';
import type { EndReason, SessionInfo, SessionSink } from '../model/session.js';
import { classify, type Classification } from './classify.js';
import * as refusals from './refusals.js';
import type { AgentAuthenticator, AuditDecision, PolicyDecider, RequestAuditor, RequestAuditRecord } from './ports.js';
import { FailureLimiter, type FailureAuditLimits } from './failure-audit.js';

export interface KubeEndpointOptions {
  host: string;
  port: number;
  tls: { cert: string; key: string };
  upstream: UpstreamTarget;
  agents: AgentAuthenticator;
  policy: PolicyDecider;
  audit: RequestAuditor;
  approvals: ApprovalService;
  holds: HoldManager;
  sessions: SessionRowPort & ForwardRowPort;
  sinks(session: SessionInfo): SessionSink[];
  /** The raw sidecar of one forwarded connection of a port-forward session. */
  recordConnection: PortForwardSessionContext['recordConnection'];
  metrics: BastionMetrics;
  log: Logger;
  /** Whether an agent is still active (leases end when it is revoked; re-read before a session dials). */
  agentActive(agentId: string): Promise<boolean>;
  /** How long a stream session's setup (agent streams, upstream dial) may take. */
  sessionSetupSeconds: number;
  /** Impersonate the agent upstream (needs `impersonate` RBAC for the bastion's credentials). */
  impersonate: boolean;
  expiryWarningSeconds: number;
  /** How many unauthenticated and malformed requests per address get their own audit row. */
  failureAudit: FailureAuditLimits;
}

interface AuditResult {
  decision: AuditDecision;
  rule: string;
  policyHash: string | null;
  status: number;
  bytesIn: number;
  bytesOut: number;
  approvalId?: string | null;
  /** How the request ended beyond its status code (a session's end reason, why it was refused). */
  outcome?: string;
  /** What the outcome alone does not say (a refused handshake's error, who revoked). */
  outcomeDetail?: string;
  sessionId?: string;
  /**
   * The row may be group-committed (RequestAuditor.recordBatched): an allowed read whose response
   * is complete, or an upgrade whose session row exists (its start was committed before it ran,
   * and its end rows are group-committed too).
   */
  batched?: boolean;
}

/**
 * A watch. The request parser decides the verb from the `watch` parameter as the API server does
 * (every spelling it reads as true: `true`, `True`, `1`, `t`...) and refuses the spellings it could
 * misread, so the verb is the one place to ask.
 */
function isWatch(req: KubeRequest): boolean {
  return req.verb === 'watch';
}

/** A request that changes nothing (get, list, watch). */
function isRead(req: KubeRequest): boolean {
  return (READ_VERBS as readonly string[]).includes(req.verb);
}

/**
 * The client's `ip:port`, as every audit row shows it. Read when the request arrives: once the
 * client has gone (a held request given up, a session ended) its socket no longer knows it.
 */
function clientAddress(req: IncomingMessage): string {
  return `${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? ''}`;
}

/** The IP of an `ip:port` client address. */
function clientIp(address: string): string {
  const colon = address.lastIndexOf(':');
  return colon < 0 ? address : address.slice(0, colon);
}

/** Characters of a path a log line shows (the audit row keeps its length and hash). */
const LOGGED_PATH_CHARS = 256;

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

type Gated = { ok: true; approval: Approval | null } | { ok: false; status: Status; approvalId: string | null; outcome: string };

export class KubeEndpoint {
  private readonly server: https.Server;
  private readonly sockets = new Set<Socket>();
  private readonly active = new Set<ServerResponse>();
  private readonly liveSessions = new Set<(reason: EndReason) => void>();
  private readonly holdsInFlight = new Set<AbortController>();
  /** Requests whose audit row is written. */
  private readonly audited = new WeakSet<IncomingMessage>();
  /** Each request's client address, read on arrival. */
  private readonly clients = new WeakMap<IncomingMessage, string>();
  private draining = false;
  /** Upgrade requests being handled (held, set up or relaying). */
  private upgrading = 0;
  /** Set once shutdown cuts live sessions: a session that reaches its relay later is cut at once. */
  private cutAll: EndReason | undefined;
  private readonly failures: FailureLimiter;
  private readonly failureTimer: NodeJS.Timeout;
  /** Aggregate rows being written (a shutdown waits for them). */
  private readonly aggregateWrites = new Set<Promise<void>>();

  constructor(private readonly opts: KubeEndpointOptions) {
    this.failures = new FailureLimiter(opts.failureAudit);
    this.failureTimer = setInterval(() => this.flushFailures(), opts.failureAudit.intervalSeconds * 1000);
    this.failureTimer.unref();
    this.server = https.createServer({ cert: opts.tls.cert, key: opts.tls.key, ALPNProtocols: ['http/1.1'] });
    this.server.on('request', (req, res) => {
      this.onRequest(req, res).catch((err) => {
        opts.log.error({ err }, 'request handler failed');
        if (!res.headersSent) writeStatusResponse(res, refusals.internalError());
        else res.destroy();
      });
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {});
      // Counted from the start: a shutdown waits for sessions still being set up, not only live ones.
      this.upgrading++;
      this.onUpgrade(req, socket, head)
        .catch((err) => {
          opts.log.error({ err }, 'upgrade handler failed');
          writeStatusToSocket(socket, refusals.internalError());
        })
        .finally(() => this.upgrading--);
    });
    this.server.on('secureConnection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server.on('clientError', (_err, socket) => socket.destroy());
    this.server.on('tlsClientError', () => {});
  }

  listen(): Promise<void> {
    return listen(this.server, this.opts.host, this.opts.port);
  }

  get url(): string {
    return boundUrl(this.server, 'https');
  }

  private lease(principal: { id: string; name: string }, approval: Approval | null): ApprovalLease {
    return new ApprovalLease({ approvals: this.opts.approvals, agentActive: this.opts.agentActive }, { id: principal.id, name: principal.name }, approval);
  }

  private client(req: IncomingMessage): string {
    let address = this.clients.get(req);
    if (address === undefined) this.clients.set(req, (address = clientAddress(req)));
    return address;
  }

  private identity(c: { principal: { id: string; name: string } }): UpstreamIdentity | undefined {
    return this.opts.impersonate ? { user: `kube-bastion:agent:${c.principal.name}`, extra: { [IMPERSONATE_EXTRA.agentId]: c.principal.id } } : undefined;
  }

  private finish(req: IncomingMessage, c: Classification, start: number, result: AuditResult): void {
    // Exactly one row per request.
    if (this.audited.has(req)) return;
    this.audited.add(req);
    const durationMs = Date.now() - start;
    const hints: RequestAuditRecord['hints'] = {};
    const command = header(req, 'kubectl-command');
    const session = header(req, 'kubectl-session');
    const agent = header(req, 'user-agent');
    if (command) hints.kubectlCommand = command;
    if (session) hints.kubectlSession = session;
    if (agent) hints.userAgent = agent;
    const record: RequestAuditRecord = {
      time: new Date(start).toISOString(),
      agent: c.principal ? { id: c.principal.id, name: c.principal.name } : null,
      source: this.client(req),
      method: req.method ?? '',
      path: req.url ?? '',
      request: c.request,
      hints,
      approvalId: result.approvalId ?? null,
      sessionId: result.sessionId ?? null,
      outcome: result.outcome ?? null,
      outcomeDetail: result.outcomeDetail ?? null,
      decision: result.decision,
      rule: result.rule,
      policyHash: result.policyHash,
      status: result.status,
      bytesIn: result.bytesIn,
      bytesOut: result.bytesOut,
      durationMs,
      ...(c.outcome === 'refuse' && c.failure ? { failure: c.failure } : {}),
    };
    const verb = c.request?.kind === 'resource' ? (c.request.stream ?? c.request.verb) : (c.request?.verb ?? 'unknown');
    this.opts.metrics.requests.inc({ decision: result.decision, verb, code: String(result.status) });
    this.opts.metrics.requestDuration.observe({ decision: result.decision }, durationMs / 1000);
    const logged = { agent: record.agent?.name ?? null, method: record.method, path: record.path.slice(0, LOGGED_PATH_CHARS), decision: result.decision, rule: result.rule, approvalId: record.approvalId, status: result.status, bytesIn: result.bytesIn, bytesOut: result.bytesOut, durationMs };
    // Over its address's rate, a failure is counted into the interval's aggregate row instead.
    if (record.failure && !this.failures.admit(clientIp(record.source), record.failure, record)) {
      this.opts.metrics.auditAggregated.inc({ failure: record.failure });
      this.opts.log.debug(logged, 'request (aggregated)');
      return;
    }
    // The response is already on its way; an audit failure is loud in the log (a batched row that
    // cannot be committed stays queued and stops the endpoint forwarding: RequestAuditor.accepting).
    (result.batched ? this.opts.audit.recordBatched(record) : this.opts.audit.record(record)).catch((err: unknown) => this.opts.log.error({ err }, 'audit write failed'));
    // An allowed read's line is at debug: its audit row holds all of it, and a line per read (a
    // synchronous write when stderr is a file or pipe) was a measured share of a GET's cost.
    // Everything else (denials, approvals, sessions, errors) stays at info.
    if (result.batched) this.opts.log.debug(logged, 'request');
    else this.opts.log.info(logged, 'request');
  }

  /** Writes the ending interval's aggregate rows (one per address and failure class). */
  private flushFailures(): void {
    for (const aggregate of this.failures.drain()) {
      const write = this.opts.audit
        .recordAggregate(aggregate)
        .then(() => this.opts.metrics.auditAggregateRows.inc())
        .catch((err: unknown) => this.opts.log.error({ err }, 'audit write failed'))
        .finally(() => this.aggregateWrites.delete(write));
      this.aggregateWrites.add(write);
      this.opts.log.info({ address: aggregate.address, failure: aggregate.failure, count: aggregate.count, first: aggregate.first, last: aggregate.last }, 'requests aggregated');
    }
  }

  /**
   * For a request that needs an approval: a usable approval, a policy auto-approval, or a hold
   * until an approver decides. `gone` fires when the client leaves while held.
   */
  private async gate(c: Extract<Classification, { outcome: 'approval' }>, op: Operation, shown: Partial<HeldRequestInfo>, client: { address: string; run: string | undefined }, gone: (abort: () => void) => void): Promise<Gated> {
    const agent = { id: c.principal.id, name: c.principal.name };
    try {
      return await this.decide(c, op, shown, client, gone);
    } catch (err) {
      // The agent was revoked while its request was on its way (the pod lookup, the hold): no
      // approval can be asked for or granted to it any more. Answered as its next request will be.
      if (!(await this.opts.agentActive(agent.id).catch(() => true))) return { ok: false, status: refusals.unauthenticated(true), approvalId: null, outcome: 'agent-revoked' };
      // What the agent asked cannot be an approval's scope (an empty program, an argv longer than
      // an approval holds): the agent shapes it, so it is answered and audited, never a 500.
      if (isBastionError(err, 'INVALID_FIELD')) return { ok: false, status: refusals.notApprovable(c.request, err.message), approvalId: null, outcome: 'not-approvable' };
      throw err;
    }
  }

  /** `shown`: what the approver sees beyond method and path (the command; the query, body and its risk). */
  private async decide(c: Extract<Classification, { outcome: 'approval' }>, op: Operation, shown: Partial<HeldRequestInfo>, client: { address: string; run: string | undefined }, gone: (abort: () => void) => void): Promise<Gated> {
    const agent = { id: c.principal.id, name: c.principal.name };
    // What the approver sees: the request, where it came from, and the rule (and policy version) that held it.
    const request = { ...shown, method: c.request.method, path: c.request.path, client: client.address, rule: c.decision.rule, policyHash: c.decision.policyHash };
    if (c.decision.autoApprove) {
      const usable = await this.opts.approvals.findUsable(agent.id, op);
      if (usable) return { ok: true, approval: usable };
      // A policy rule approves a shape (it cannot read bodies): any request of it until expiry.
      const scope = op.kind === 'rest' ? shapeScope(op) : { ...scopeFor(op), ...(c.decision.autoApprove.maxSessions ? { maxSessions: c.decision.autoApprove.maxSessions } : {}) };
      const approval = await this.opts.approvals.autoApprove({ agent, scope, request }, c.decision.rule, c.decision.policyHash, c.decision.autoApprove.ttlSeconds);
      return { ok: true, approval };
    }
    const controller = new AbortController();
    this.holdsInFlight.add(controller);
    gone(() => controller.abort());
    try {
      const outcome = await this.opts.holds.obtain(agent, op, request, controller.signal, client.run);
      if (outcome.ok) return { ok: true, approval: outcome.approval };
      // A client that left while held was not refused: it went away.
      return { ok: false, status: refusals.holdRefused(c.request, outcome.refusal), approvalId: refusedApprovalId(outcome.refusal), outcome: outcome.refusal.reason === 'gone' ? 'client-closed' : 'not-approved' };
    } finally {
      this.holdsInFlight.delete(controller);
    }
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const start = Date.now();
    this.client(req);
    const c = await classify(req, this.opts.agents, this.opts.policy);
    try {
      await this.handleRequest(req, res, c, start);
    } catch (err) {
      this.finishFailed(req, c, start);
      throw err;
    }
  }

  private async handleRequest(req: IncomingMessage, res: ServerResponse, c: Classification, start: number): Promise<void> {
    if (this.draining) {
      req.resume();
      res.setHeader('Connection', 'close');
      writeStatusResponse(res, refusals.shuttingDown());
      this.finish(req, c, start, { decision: 'deny', rule: 'shutting-down', policyHash: null, status: 503, bytesIn: 0, bytesOut: 0, outcome: 'shutdown' });
      return;
    }
    if (c.outcome === 'refuse') {
      req.resume();
      writeStatusResponse(res, c.status);
      this.finish(req, c, start, { ...c.audit, status: c.status.code ?? 500, bytesIn: 0, bytesOut: 0 });
      return;
    }
    const policy = { rule: c.decision.rule, policyHash: c.decision.policyHash };
    if (c.request.kind === 'resource' && c.request.stream) {
      req.resume();
      const status = refusals.upgradeRequired();
      writeStatusResponse(res, status);
      this.finish(req, c, start, { decision: 'deny', ...policy, status: 400, bytesIn: 0, bytesOut: 0 });
      return;
    }
    // Fail closed: nothing is forwarded while the audit log cannot commit what it would record.
    if (!this.opts.audit.accepting()) {
      req.resume();
      const status = refusals.auditUnavailable();
      writeStatusResponse(res, status);
      this.finish(req, c, start, { decision: 'error', ...policy, status: status.code ?? 503, bytesIn: 0, bytesOut: 0, outcome: 'audit-unavailable' });
      return;
    }
    let approval: Approval | null = null;
    let body: Buffer | undefined;
    if (c.outcome === 'approval') {
      const admitted = await this.admitRest(req, res, c, start);
      if (!admitted) return;
      ({ approval, body } = admitted);
    }
    this.active.add(res);
    this.opts.metrics.inflight.inc();
    // A watch, `logs -f` or proxied stream under an approval ends with it, like a session.
    const lease = this.lease(c.principal, approval);
    const request = c.request;
    try {
      const outcome = await proxyRest(
        req,
        res,
        this.opts.upstream,
        this.identity(c),
        {
          unreachable: (error) => refusals.upstreamUnavailable(error),
          onEnd: (listener) => lease.onEnd(listener),
          ...(lease.deadline !== undefined ? { deadline: lease.deadline } : {}),
          status: () => refusals.restCut(request, approval, lease.ended!),
          finalChunk: (contentType) => (isWatch(request) && /json/i.test(contentType ?? '') ? refusals.watchErrorEvent(refusals.restCut(request, approval, lease.ended!)) : undefined),
        },
        body,
        { approvalId: approval?.id ?? null },
      );
      const unreachable = outcome.error?.code === 'UPSTREAM_UNAVAILABLE';
      if (unreachable) {
        this.opts.metrics.upstreamErrors.inc();
        this.opts.log.warn({ err: outcome.error }, 'upstream unavailable');
      }
      this.finish(req, c, start, {
        decision: unreachable ? 'error' : c.outcome === 'approval' ? 'approval' : 'allow',
        ...policy,
        status: outcome.status,
        bytesIn: outcome.bytesIn,
        bytesOut: outcome.bytesOut,
        approvalId: approval?.id ?? null,
        outcome: outcome.cut ? lease.ended!.reason : unreachable ? 'upstream-unavailable' : outcome.error ? 'client-closed' : 'completed',
        // Only a read allowed outright: a request under an approval used it durably and is recorded so.
        batched: c.outcome === 'forward' && !unreachable && isRead(request),
      });
    } finally {
      lease.release();
      this.active.delete(res);
      this.opts.metrics.inflight.dec();
    }
  }

  /**
   * A REST request that needs an approval: its body read whole (bounded) and hashed, the gate for
   * exactly that request (the approver sees the body, redacted, and its risk summary), then one use
   * of the approval counted as it is forwarded. Undefined when it was answered here (refused).
   */
  private async admitRest(req: IncomingMessage, res: ServerResponse, c: Extract<Classification, { outcome: 'approval' }>, start: number): Promise<{ approval: Approval; body: Buffer } | undefined> {
    const policy = { rule: c.decision.rule, policyHash: c.decision.policyHash };
    const refuse = (status: Status, result: Pick<AuditResult, 'approvalId' | 'outcome' | 'outcomeDetail'>, bytesIn = 0): undefined => {
      req.resume();
      if (!res.destroyed) writeStatusResponse(res, status);
      this.finish(req, c, start, { decision: 'approval', ...policy, status: status.code ?? 403, bytesIn, bytesOut: 0, ...result });
      return undefined;
    };
    const read = await readBoundedBody(req);
    if (!read.ok) {
      if (read.reason === 'gone') return refuse(refusals.clientGone(), { approvalId: null, outcome: 'client-closed' });
      return refuse(refusals.bodyTooLarge(read.limit), { approvalId: null, outcome: 'body-too-large' });
    }
    const resource = c.request as ResourceRequest;
    const contentType = header(req, 'content-type') ?? null;
    // Refused before any approval: the approver would be shown one of the values, upstream merges both.
    const duplicate = duplicateJsonKey(read.body, contentType);
    if (duplicate !== null) return refuse(refusals.duplicateJsonKey(c.request, duplicate), { approvalId: null, outcome: 'duplicate-json-key', outcomeDetail: duplicate }, read.body.length);
    const op = restOperation(resource, { sha256: read.sha256, contentType, contentEncoding: header(req, 'content-encoding') ?? null });
    const shown: Partial<HeldRequestInfo> = { ...(op.request!.query ? { query: op.request!.query } : {}) };
    if (read.sha256 !== null) {
      const described = describeHeldBody(read.body, { contentType, resource: resource.resource, sha256: read.sha256 });
      shown.body = described.body;
      shown.risk = described.risk;
    }
    const gated = await this.gate(c, op, shown, { address: this.client(req), run: header(req, 'kubectl-session') }, (abort) => res.on('close', abort));
    if (!gated.ok) return refuse(gated.status, { approvalId: gated.approvalId, outcome: gated.outcome }, read.body.length);
    const approval = gated.approval!;
    // Counted as it is forwarded, compare-and-set: of two requests joined on one single-use
    // approval, one is forwarded and the other is told, naming the approval.
    if (!(await this.opts.approvals.useForRequest(approval.id))) {
      return refuse(refusals.approvalUsedUp(c.request, approval), { approvalId: approval.id, outcome: 'approval-used' }, read.body.length);
    }
    return { approval, body: read.body };
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const start = Date.now();
    this.client(req);
    const c = await classify(req, this.opts.agents, this.opts.policy);
    try {
      await this.handleUpgrade(req, socket, head, c, start);
    } catch (err) {
      this.finishFailed(req, c, start);
      throw err;
    }
  }

  /**
   * A request whose handling failed unexpectedly (the caller answers it with an internal error):
   * its one audit row, unless it already has it.
   */
  private finishFailed(req: IncomingMessage, c: Classification, start: number): void {
    if (this.audited.has(req)) return;
    const policy = c.outcome === 'refuse' ? { rule: c.audit.rule, policyHash: c.audit.policyHash } : { rule: c.decision.rule, policyHash: c.decision.policyHash };
    this.finish(req, c, start, { decision: 'error', ...policy, status: 500, bytesIn: 0, bytesOut: 0, outcome: 'error', outcomeDetail: 'internal error' });
  }

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, c: Classification, start: number): Promise<void> {
    if (this.draining) {
      writeStatusToSocket(socket, refusals.shuttingDown());
      this.finish(req, c, start, { decision: 'deny', rule: 'shutting-down', policyHash: null, status: 503, bytesIn: 0, bytesOut: 0, outcome: 'shutdown' });
      return;
    }
    const refuse = (status: Status, result: Omit<AuditResult, 'status' | 'bytesIn' | 'bytesOut'>): void => {
      writeStatusToSocket(socket, status);
      this.finish(req, c, start, { ...result, status: status.code ?? 500, bytesIn: 0, bytesOut: 0 });
    };
    if (c.outcome === 'refuse') return refuse(c.status, c.audit);
    const policy = { rule: c.decision.rule, policyHash: c.decision.policyHash };
    if (!this.opts.audit.accepting()) return refuse(refusals.auditUnavailable(), { decision: 'error', ...policy, outcome: 'audit-unavailable' });
    if (c.request.kind !== 'resource' || !c.request.stream) {
      return refuse(refusals.notAStreamUpgrade(), { decision: 'deny', ...policy });
    }
    const request = c.request as ResourceRequest & { stream: StreamOperation };
    const query = parseRemoteCommandQuery(request.query);
    if (request.stream === 'exec' && query.command.length === 0) {
      return refuse(refusals.noCommand(), { decision: 'deny', ...policy });
    }
    // Resolve the container before any scope check, so omitting -c cannot reach another container.
    let pod: Awaited<ReturnType<typeof getPod>>;
    try {
      pod = await getPod(this.opts.upstream, request.namespace, request.name);
    } catch (err) {
      if (!isBastionError(err)) throw err;
      this.opts.metrics.upstreamErrors.inc();
      return refuse(refusals.upstreamUnavailable(err), { decision: 'error', ...policy, outcome: 'upstream-unavailable' });
    }
    const decision = c.outcome === 'approval' ? 'approval' : 'allow';
    if (!pod.ok) return refuse(pod.status ?? refusals.upstreamAnswered(pod.httpStatus, `pod ${request.namespace}/${request.name}`), { decision, ...policy });
    let op: Operation & { kind: 'stream' };
    let container = '';
    if (request.stream === 'portforward') {
      // A port-forward reaches the pod, not a container; its ports come per connection (SPDY,
      // tunnel) or in the query (channel protocol), and each connection is checked on its own.
      // (The request parser has refused a bad `ports` already.)
      const asked = queryPorts(request.query);
      const ports = asked.ok && asked.value.length > 0 ? [...new Set(asked.value)] : undefined;
      op = { ...streamOperation(request, '', []), ...(ports ? { ports } : {}) };
    } else {
      const resolved = resolveContainer(pod.pod, query.container);
      if (!resolved.ok) return refuse(refusals.containerRefused(request.name, resolved), { decision, ...policy });
      container = resolved.container;
      op = streamOperation(request, container, query.command);
    }

    let approval: Approval | null = null;
    if (c.outcome === 'approval') {
      const shown = request.stream === 'portforward' ? {} : { command: query.command };
      const gated = await this.gate(c, op, shown, { address: this.client(req), run: header(req, 'kubectl-session') }, (abort) => socket.once('close', abort));
      if (!gated.ok) return refuse(gated.status, { decision: 'approval', ...policy, approvalId: gated.approvalId, outcome: gated.outcome });
      const granted = gated.approval!;
      approval = granted;
      if (!(await this.opts.approvals.startSession(granted.id))) {
        return refuse(refusals.noSessionsLeft(request.name, granted.id), { decision: 'approval', ...policy, approvalId: granted.id, outcome: 'no-sessions-left' });
      }
    }
    // From this instant every change to the approval or the agent ends what runs under it.
    const lease = this.lease(c.principal, approval);
    try {
      if (socket.destroyed) {
        this.finish(req, c, start, { decision, ...policy, status: 499, bytesIn: 0, bytesOut: 0, approvalId: approval?.id ?? null, outcome: 'client-closed' });
        return;
      }
      const identity = this.identity(c);
      const granted = approval;
      const common = {
        req,
        socket,
        head,
        agent: { id: c.principal.id, name: c.principal.name },
        client: this.client(req),
        namespace: request.namespace,
        pod: request.name,
        lease,
        upstream: this.opts.upstream,
        ...(identity ? { identity } : {}),
        sessions: this.opts.sessions,
        sinks: (session: SessionInfo) => this.opts.sinks(session),
        track: (cut: (reason: EndReason) => void) => {
          if (this.cutAll) cut(this.cutAll);
          this.liveSessions.add(cut);
          return () => this.liveSessions.delete(cut);
        },
        cutStatus: (reason: EndReason, detail?: string) => refusals.sessionCut(granted, request.name, reason, detail),
        setupTimeoutMs: this.opts.sessionSetupSeconds * 1000,
        log: this.opts.log,
      };
      const result =
        request.stream === 'portforward'
          ? await runPortForwardSession({
              ...common,
              query: request.query,
              recordConnection: (session, seq, port, startedAt) => this.opts.recordConnection(session, seq, port, startedAt),
              portRefused: (port) => refusals.portNotApproved(granted!, request.name, port),
            })
          : await runStreamSession({
              ...common,
              operation: request.stream,
              query: { ...query, container },
              expiryWarningSeconds: this.opts.expiryWarningSeconds,
            });
      this.finish(req, c, start, {
        decision,
        ...policy,
        status: result.status,
        bytesIn: result.bytesIn,
        bytesOut: result.bytesOut,
        approvalId: approval?.id ?? null,
        outcome: result.reason,
        ...(result.detail ? { outcomeDetail: result.detail } : {}),
        ...(result.sessionId ? { sessionId: result.sessionId, batched: true } : {}),
      });
    } finally {
      lease.release();
    }
  }

  /**
   * Graceful shutdown: stop accepting, let requests and sessions in flight finish for up to
   * `graceMs`, then cut sessions with a Status and end the rest.
   */
  async close(graceMs: number): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    for (const hold of this.holdsInFlight) hold.abort();
    const deadline = Date.now() + graceMs;
    while ((this.active.size > 0 || this.upgrading > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    this.cutAll = 'shutdown';
    for (const cut of this.liveSessions) cut('shutdown');
    // Sessions still in setup are cut as they reach their relay; setup itself is bounded.
    const cutDeadline = Date.now() + Math.max(2000, this.opts.sessionSetupSeconds * 1000);
    while (this.upgrading > 0 && Date.now() < cutDeadline) await new Promise((r) => setTimeout(r, 20));
    for (const res of this.active) res.destroy();
    for (const socket of this.sockets) socket.destroy();
    await closed;
    // The last interval's failures are written before the store closes.
    clearInterval(this.failureTimer);
    this.flushFailures();
    await Promise.all([...this.aggregateWrites]);
  }
}
