// The Kubernetes endpoint agents talk to: TLS, one classification for REST and upgrades,
// forwarding of allowed REST calls, refusals as metav1.Status, one audit row per request.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo, Socket } from 'node:net';
import { writeStatusResponse, writeStatusToSocket } from '../transport/http-response.js';
import { apiStatus, type Status } from '../protocol/status.js';
import { proxyRest } from '../upstream/rest-proxy.js';
import type { UpstreamTarget } from '../upstream/upstream.js';
import type { BastionMetrics } from '../metrics.js';
import type { Logger } from '../log.js';
import { classify, type Classification } from './classify.js';
import type { AgentAuthenticator, AuditDecision, PolicyDecider, RequestAuditor, RequestAuditRecord } from './ports.js';

export interface KubeEndpointOptions {
  host: string;
  port: number;
  tls: { cert: string; key: string };
  upstream: UpstreamTarget;
  agents: AgentAuthenticator;
  policy: PolicyDecider;
  audit: RequestAuditor;
  metrics: BastionMetrics;
  log: Logger;
  /** Impersonate the agent upstream (needs `impersonate` RBAC for the bastion's credentials). */
  impersonate: boolean;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export class KubeEndpoint {
  private readonly server: https.Server;
  private readonly sockets = new Set<Socket>();
  private readonly active = new Set<ServerResponse>();
  private draining = false;

  constructor(private readonly opts: KubeEndpointOptions) {
    this.server = https.createServer({ cert: opts.tls.cert, key: opts.tls.key, ALPNProtocols: ['http/1.1'] });
    this.server.on('request', (req, res) => {
      this.onRequest(req, res).catch((err) => {
        opts.log.error({ err }, 'request handler failed');
        if (!res.headersSent) writeStatusResponse(res, apiStatus(500, 'InternalError', 'kube-bastion internal error'));
        else res.destroy();
      });
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {});
      this.onUpgrade(req, socket, head).catch((err) => {
        opts.log.error({ err }, 'upgrade handler failed');
        socket.destroy();
      });
    });
    this.server.on('secureConnection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server.on('clientError', (_err, socket) => socket.destroy());
    this.server.on('tlsClientError', () => {});
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    return `https://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  private baseRecord(req: IncomingMessage, c: Classification, start: number): Omit<RequestAuditRecord, 'decision' | 'rule' | 'policyHash' | 'status' | 'bytesIn' | 'bytesOut' | 'durationMs'> {
    const principal = c.principal;
    const hints: RequestAuditRecord['hints'] = {};
    const command = header(req, 'kubectl-command');
    const session = header(req, 'kubectl-session');
    const agent = header(req, 'user-agent');
    if (command) hints.kubectlCommand = command;
    if (session) hints.kubectlSession = session;
    if (agent) hints.userAgent = agent;
    return {
      time: new Date(start).toISOString(),
      agent: principal ? { id: principal.id, name: principal.name } : null,
      source: `${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? ''}`,
      method: req.method ?? '',
      path: req.url ?? '',
      request: c.request,
      approvalId: null,
      hints,
    };
  }

  private finish(
    req: IncomingMessage,
    c: Classification,
    start: number,
    result: { decision: AuditDecision; rule: string; policyHash: string | null; status: number; bytesIn: number; bytesOut: number },
  ): void {
    const durationMs = Date.now() - start;
    const record: RequestAuditRecord = { ...this.baseRecord(req, c, start), ...result, durationMs };
    // The response is already on its way; an audit failure is loud in the log.
    this.opts.audit.record(record).catch((err: unknown) => this.opts.log.error({ err }, 'audit write failed'));
    const verb = c.request?.kind === 'resource' ? (c.request.stream ?? c.request.verb) : (c.request?.verb ?? 'unknown');
    this.opts.metrics.requests.inc({ decision: result.decision, verb, code: String(result.status) });
    this.opts.metrics.requestDuration.observe(durationMs / 1000, { decision: result.decision });
    this.opts.log.info(
      {
        agent: record.agent?.name ?? null,
        method: record.method,
        path: record.path,
        decision: result.decision,
        rule: result.rule,
        status: result.status,
        bytesIn: result.bytesIn,
        bytesOut: result.bytesOut,
        durationMs,
      },
      'request',
    );
  }

  private refuseRequest(res: ServerResponse, status: Status): number {
    writeStatusResponse(res, status);
    return status.code ?? 500;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const start = Date.now();
    if (this.draining) {
      res.setHeader('Connection', 'close');
      writeStatusResponse(res, apiStatus(503, 'ServiceUnavailable', 'kube-bastion is shutting down'));
      return;
    }
    const c = await classify(req, this.opts.agents, this.opts.policy);
    if (c.outcome === 'refuse') {
      req.resume();
      const status = this.refuseRequest(res, c.status);
      this.finish(req, c, start, { ...c.audit, status, bytesIn: 0, bytesOut: 0 });
      return;
    }
    if (c.request.kind === 'resource' && c.request.stream) {
      // exec/attach/portforward without an upgrade: what kube-apiserver answers too.
      req.resume();
      const status = this.refuseRequest(res, apiStatus(400, 'BadRequest', 'Upgrade request required'));
      this.finish(req, c, start, { decision: 'allow', rule: c.decision.rule, policyHash: c.decision.policyHash, status, bytesIn: 0, bytesOut: 0 });
      return;
    }
    this.active.add(res);
    this.opts.metrics.inflight.add(1);
    try {
      const identity = this.opts.impersonate ? { user: `kube-bastion:agent:${c.principal.name}`, extra: { 'kube-bastion.io/agent-id': c.principal.id } } : undefined;
      const outcome = await proxyRest(req, res, this.opts.upstream, identity);
      if (outcome.error && outcome.status === 502) {
        this.opts.metrics.upstreamErrors.inc();
        this.opts.log.warn({ err: outcome.error }, 'upstream unavailable');
      }
      this.finish(req, c, start, {
        decision: outcome.status === 502 && outcome.error ? 'error' : 'allow',
        rule: c.decision.rule,
        policyHash: c.decision.policyHash,
        status: outcome.status,
        bytesIn: outcome.bytesIn,
        bytesOut: outcome.bytesOut,
      });
    } finally {
      this.active.delete(res);
      this.opts.metrics.inflight.add(-1);
    }
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, _head: Buffer): Promise<void> {
    const start = Date.now();
    if (this.draining) {
      writeStatusToSocket(socket, apiStatus(503, 'ServiceUnavailable', 'kube-bastion is shutting down'));
      return;
    }
    const c = await classify(req, this.opts.agents, this.opts.policy);
    let status: Status;
    let audit: { decision: AuditDecision; rule: string; policyHash: string | null };
    if (c.outcome === 'refuse') {
      status = c.status;
      audit = c.audit;
    } else if (c.request.kind === 'resource' && c.request.stream) {
      // Fail closed: a stream session runs only through the recording relay, which is not here yet.
      status = apiStatus(403, 'Forbidden', `kube-bastion allowed this ${c.request.stream} by rule "${c.decision.rule}", but it never runs a stream session it cannot record, and this bastion has no recording relay yet`);
      audit = { decision: 'deny', rule: c.decision.rule, policyHash: c.decision.policyHash };
    } else {
      status = apiStatus(400, 'BadRequest', 'kube-bastion upgrades only exec, attach and portforward requests');
      audit = { decision: 'deny', rule: c.decision.rule, policyHash: c.decision.policyHash };
    }
    writeStatusToSocket(socket, status);
    this.finish(req, c, start, { ...audit, status: status.code ?? 500, bytesIn: 0, bytesOut: 0 });
  }

  /**
   * Graceful shutdown: stop accepting, let requests in flight finish for up to `graceMs`, then
   * end the rest (long watches and log follows end there).
   */
  async close(graceMs: number): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const res of this.active) res.destroy();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}
